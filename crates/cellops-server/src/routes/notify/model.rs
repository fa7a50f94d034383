//! The notification read model, rebuilt from the ledger: webhook subscriptions (ledger
//! records), the key events that are not order milestones (slot confirmed, excursions),
//! and the pure derivation of notifications and outbox items from the ledger prefix the
//! read models have seen.

use crate::projection::Projection;
use cellops_domain::{SiteId, Timestamp};
use cellops_ledger::Record;
use cellops_ledger::store::OutboxItem;
use cellops_orders::OrderBook;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The notification kinds: (name, what it means and which records make it).
pub const KINDS: &[(&str, &str)] = &[
    (
        "slot.confirmed",
        "a collection slot and the capacity of every later stage were booked (schedule.booked)",
    ),
    (
        "batch.started",
        "manufacturing started for the order (its milestone manufacturing_started)",
    ),
    (
        "dose.predicted",
        "the twin predicted when the dose will be reached (milestone dose_predicted)",
    ),
    (
        "product.released",
        "QA released the product (milestone released)",
    ),
    (
        "product.released_at_risk",
        "QA released the product at risk, tests pending (milestone released_at_risk)",
    ),
    (
        "product.shipped",
        "the product left for the hospital (milestone shipped_to_hospital)",
    ),
    (
        "excursion.detected",
        "a temperature excursion or data gap in a shipment or storage (shipment.logger_uploaded with excursions, excursion.opened)",
    ),
    (
        "product.ready",
        "the hospital received the product: ready for thaw and infusion (milestone received_at_hospital)",
    ),
    (
        "batch.failed",
        "the batch failed or its starting material was rejected: a new collection is needed (milestone batch_failed)",
    ),
];

/// The notification kind an order milestone makes, if it is a key event.
pub fn milestone_kind(milestone: &str) -> Option<&'static str> {
    Some(match milestone {
        "manufacturing_started" => "batch.started",
        "dose_predicted" => "dose.predicted",
        "released" => "product.released",
        "released_at_risk" => "product.released_at_risk",
        "shipped_to_hospital" => "product.shipped",
        "received_at_hospital" => "product.ready",
        "batch_failed" => "batch.failed",
        _ => return None,
    })
}

/// Checks a kind name; the error lists the kinds.
pub fn parse_kind(text: &str) -> Result<&'static str, String> {
    KINDS
        .iter()
        .map(|(k, _)| *k)
        .find(|k| *k == text)
        .ok_or_else(|| {
            format!(
                "{text:?} is not a notification kind: use one of {}",
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            )
        })
}

/// `webhook.subscribed`: a webhook subscription (the secret is kept beside the ledger).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub subscription: String,
    pub url: String,
    pub kinds: Vec<String>,
    pub sites: Vec<SiteId>,
    pub by: String,
    pub at: Timestamp,
}

/// `webhook.revoked`: a subscription ends; nothing more is sent to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revoked {
    pub subscription: String,
    pub reason: String,
    pub by: String,
    pub at: Timestamp,
}

/// A subscription as the read model knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub kinds: Vec<String>,
    pub sites: Vec<SiteId>,
    pub created_by: String,
    pub created_at: Timestamp,
    /// Seq of its `webhook.subscribed` record: it gets notifications of later records.
    pub created_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Revocation {
    pub seq: u64,
    pub by: String,
    pub at: Timestamp,
    pub reason: String,
}

impl Subscription {
    /// Whether the notification goes to this subscription: made by a record after the
    /// subscription and before any revocation, of a kind it asked for, about one of its sites.
    pub fn wants(&self, n: &Notification) -> bool {
        n.seq > self.created_seq
            && self.revoked.as_ref().is_none_or(|r| n.seq < r.seq)
            && self.kinds.iter().any(|k| k == n.kind)
            && n.sites().any(|s| self.sites.contains(s))
    }
}

/// An order a notification is about, with the sites it concerns (hospital, manufacturer).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRef {
    pub order: String,
    pub sites: Vec<SiteId>,
}

/// A key event, derived from one ledger record.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Seq of the record that made it (with the subscription, the notification's id).
    pub seq: u64,
    pub kind: &'static str,
    pub at: Timestamp,
    /// Where it happened.
    pub site: SiteId,
    /// Sites it concerns besides its orders' (e.g. a shipment's two ends).
    pub sites: Vec<SiteId>,
    /// The orders it is about (a shipment may carry several patients' products).
    pub orders: Vec<OrderRef>,
    pub batch: Option<String>,
    pub units: Vec<String>,
    pub shipment: Option<String>,
    pub booking: Option<String>,
    /// Kind-specific facts (predicted dose time, excursion summary, booked dates).
    pub detail: Value,
}

/// The JSON body of one delivery (field order fixed: the bytes are what is signed).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Body {
    /// Idempotency id: `<subscription>.<seq>`, the same on every retry.
    pub id: String,
    pub subscription: String,
    pub kind: String,
    /// Seq of the ledger record (verifiable with /api/ledger/records/{seq} and its proof).
    pub seq: u64,
    pub at: Timestamp,
    pub site: SiteId,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// The delivery id of a notification for a subscription.
pub fn delivery_id(subscription: &str, seq: u64) -> String {
    format!("{subscription}.{seq}")
}

impl Notification {
    fn sites(&self) -> impl Iterator<Item = &SiteId> {
        std::iter::once(&self.site)
            .chain(&self.sites)
            .chain(self.orders.iter().flat_map(|o| &o.sites))
    }

    /// The body sent to `subscription`: it names only the orders of the subscription's
    /// sites (site scoping: a hospital never learns another hospital's order ids).
    pub fn body(&self, subscription: &Subscription) -> Body {
        Body {
            id: delivery_id(&subscription.id, self.seq),
            subscription: subscription.id.clone(),
            kind: self.kind.to_string(),
            seq: self.seq,
            at: self.at,
            site: self.site.clone(),
            orders: self
                .orders
                .iter()
                .filter(|o| o.sites.iter().any(|s| subscription.sites.contains(s)))
                .map(|o| o.order.clone())
                .collect(),
            batch: self.batch.clone(),
            units: self.units.clone(),
            shipment: self.shipment.clone(),
            booking: self.booking.clone(),
            detail: self.detail.clone(),
        }
    }
}

/// The read model.
#[derive(Debug, Default)]
pub struct NotifyModel {
    last_seq: u64,
    subscriptions: BTreeMap<String, Subscription>,
    /// Key events that are not order milestones, in seq order.
    events: Vec<Notification>,
    /// Shipment → (from, to, units), from `shipment.packed`.
    shipments: BTreeMap<String, (SiteId, SiteId, Vec<String>)>,
}

fn text(p: &Value, key: &str) -> Option<String> {
    p.get(key).and_then(|v| v.as_str()).map(str::to_string)
}

fn texts(p: &Value, key: &str) -> Vec<String> {
    p.get(key)
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

impl Projection for NotifyModel {
    fn apply(&mut self, r: &Record) {
        // Records arrive in seq order; one seen already (a concurrent sync) changes nothing.
        if r.seq <= self.last_seq {
            return;
        }
        self.last_seq = r.seq;
        if let Err(e) = self.apply_record(r) {
            tracing::error!(seq = r.seq, error = %e, "unreadable record for notifications");
        }
    }
}

impl NotifyModel {
    fn apply_record(&mut self, r: &Record) -> Result<(), String> {
        let interesting = matches!(
            r.event_type.as_str(),
            "webhook.subscribed"
                | "webhook.revoked"
                | "schedule.booked"
                | "shipment.packed"
                | "shipment.logger_uploaded"
                | "excursion.opened"
        );
        if !interesting {
            return Ok(());
        }
        let p: Value = serde_json::from_str(&r.payload).map_err(|e| e.to_string())?;
        let site = SiteId::parse(&r.site).map_err(|e| e.to_string())?;
        let event = |kind: &'static str| Notification {
            seq: r.seq,
            kind,
            at: r.recorded_at,
            site: site.clone(),
            sites: Vec::new(),
            orders: Vec::new(),
            batch: None,
            units: Vec::new(),
            shipment: None,
            booking: None,
            detail: Value::Null,
        };
        match r.event_type.as_str() {
            "webhook.subscribed" => {
                let s: Subscribed = serde_json::from_value(p).map_err(|e| e.to_string())?;
                self.subscriptions.insert(
                    s.subscription.clone(),
                    Subscription {
                        id: s.subscription,
                        url: s.url,
                        kinds: s.kinds,
                        sites: s.sites,
                        created_by: s.by,
                        created_at: s.at,
                        created_seq: r.seq,
                        revoked: None,
                    },
                );
            }
            "webhook.revoked" => {
                let v: Revoked = serde_json::from_value(p).map_err(|e| e.to_string())?;
                if let Some(s) = self.subscriptions.get_mut(&v.subscription) {
                    s.revoked.get_or_insert(Revocation {
                        seq: r.seq,
                        by: v.by,
                        at: v.at,
                        reason: v.reason,
                    });
                }
            }
            "schedule.booked" => {
                let mut n = event("slot.confirmed");
                n.booking = r
                    .stream
                    .strip_prefix("schedule/bookings/")
                    .map(str::to_string);
                // The order is the hospital's own: the booking's site is the hospital.
                if let Some(order) = text(&p, "order") {
                    n.orders.push(OrderRef {
                        order,
                        sites: vec![site.clone()],
                    });
                }
                n.detail = serde_json::json!({
                    "collection": p.get("collection"),
                    "infusion": p.get("infusion"),
                });
                self.events.push(n);
            }
            "shipment.packed" => {
                let (Some(shipment), Some(from), Some(to)) = (
                    text(&p, "shipment"),
                    text(&p, "from_site"),
                    text(&p, "to_site"),
                ) else {
                    return Err("shipment.packed without shipment, from_site, to_site".into());
                };
                let from = SiteId::parse(&from).map_err(|e| e.to_string())?;
                let to = SiteId::parse(&to).map_err(|e| e.to_string())?;
                self.shipments
                    .insert(shipment, (from, to, texts(&p, "units")));
            }
            "shipment.logger_uploaded" => {
                let excursions = p
                    .get("excursions")
                    .and_then(|e| e.as_array())
                    .cloned()
                    .unwrap_or_default();
                if excursions.is_empty() {
                    return Ok(());
                }
                let mut n = event("excursion.detected");
                let shipment = text(&p, "shipment");
                if let Some((from, to, units)) =
                    shipment.as_ref().and_then(|s| self.shipments.get(s))
                {
                    n.sites = vec![from.clone(), to.clone()];
                    n.units = units.clone();
                }
                n.shipment = shipment;
                n.detail = excursion_detail("shipment", &excursions);
                self.events.push(n);
            }
            "excursion.opened" => {
                let mut n = event("excursion.detected");
                let source = p.get("source");
                let kind = source.and_then(|s| text(s, "kind")).unwrap_or_default();
                let id = source.and_then(|s| text(s, "id"));
                let episodes: Vec<Value> = p.get("episode").cloned().into_iter().collect();
                let mut detail = excursion_detail(&kind, &episodes);
                if kind == "shipment" {
                    if let Some((from, to, _)) = id.as_ref().and_then(|s| self.shipments.get(s)) {
                        n.sites = vec![from.clone(), to.clone()];
                    }
                    n.shipment = id;
                } else if let Some(storage) = id {
                    detail["storage"] = Value::String(storage);
                }
                n.units = texts(&p, "units");
                n.detail = detail;
                self.events.push(n);
            }
            _ => {}
        }
        Ok(())
    }

    /// The last seq applied.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn subscription(&self, id: &str) -> Option<&Subscription> {
        self.subscriptions.get(id)
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = &Subscription> {
        self.subscriptions.values()
    }

    /// The key events with seq in `(after, upto]`, in seq order: this model's own events
    /// and the key milestones on the orders' timelines (however they were recorded: by the
    /// module that performed the step or by hand). One record makes one notification; a
    /// record that moves several orders (a shipment) names them all.
    pub fn notifications(&self, book: &OrderBook, after: u64, upto: u64) -> Vec<Notification> {
        let mut by_seq: BTreeMap<u64, Notification> = BTreeMap::new();
        let start = self.events.partition_point(|n| n.seq <= after);
        for n in self.events[start..].iter().take_while(|n| n.seq <= upto) {
            by_seq.insert(n.seq, n.clone());
        }
        // Excursions name units: add the orders whose material they are.
        for n in by_seq.values_mut() {
            if n.kind == "excursion.detected" && !n.units.is_empty() {
                for o in book.orders() {
                    let theirs = o
                        .product_unit
                        .iter()
                        .chain(&o.collected_units)
                        .any(|u| n.units.iter().any(|x| *x == u.to_string()));
                    if theirs {
                        n.orders.push(OrderRef {
                            order: o.id.to_string(),
                            sites: vec![o.site.clone(), o.manufacturer.clone()],
                        });
                    }
                }
            }
        }
        for o in book.orders() {
            // A timeline is in seq order: read it from the end.
            for e in o.timeline.iter().rev().take_while(|e| e.seq > after) {
                let Some(kind) = milestone_kind(&e.what).filter(|_| e.seq <= upto) else {
                    continue;
                };
                let order = OrderRef {
                    order: o.id.to_string(),
                    sites: vec![o.site.clone(), o.manufacturer.clone()],
                };
                if let Some(n) = by_seq.get_mut(&e.seq) {
                    if n.kind == kind && !n.orders.contains(&order) {
                        n.orders.push(order);
                    }
                    continue;
                }
                let site = if kind == "product.ready" {
                    o.site.clone()
                } else {
                    o.manufacturer.clone()
                };
                let detail = match (kind, o.predicted_dose_at) {
                    ("dose.predicted", Some(p)) => serde_json::json!({"predicted_at": p}),
                    _ => Value::Null,
                };
                by_seq.insert(
                    e.seq,
                    Notification {
                        seq: e.seq,
                        kind,
                        at: e.at,
                        site,
                        sites: Vec::new(),
                        orders: vec![order],
                        batch: o.batch.clone(),
                        units: o.product_unit.iter().map(|u| u.to_string()).collect(),
                        shipment: None,
                        booking: None,
                        detail,
                    },
                );
            }
        }
        by_seq.into_values().collect()
    }

    /// The outbox items for the notifications with seq in `(after, upto]`: one per
    /// notification and subscription that wants it, enqueued at `now`.
    pub fn outbox_items(
        &self,
        book: &OrderBook,
        after: u64,
        upto: u64,
        now: Timestamp,
    ) -> Vec<OutboxItem> {
        let mut items = Vec::new();
        for n in self.notifications(book, after, upto) {
            for s in self.subscriptions.values().filter(|s| s.wants(&n)) {
                let body = serde_json::to_string(&n.body(s)).expect("bodies serialize");
                items.push(OutboxItem {
                    subscription: s.id.clone(),
                    seq: n.seq,
                    kind: n.kind.to_string(),
                    body,
                    created_at: now,
                });
            }
        }
        items
    }
}

fn excursion_detail(source: &str, episodes: &[Value]) -> Value {
    let reject = episodes.iter().any(|e| {
        e.get("reject_limit_exceeded")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    });
    let max = episodes
        .iter()
        .filter_map(|e| e.get("temperature_c_max").and_then(|v| v.as_f64()))
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
    serde_json::json!({
        "source": source,
        "episodes": episodes.len(),
        "reject_limit_exceeded": reject,
        "temperature_c_max": max,
    })
}
