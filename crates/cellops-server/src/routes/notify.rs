//! Notifications: webhooks with signed payloads on the key events of the vein-to-vein flow,
//! delivered at least once from an outbox derived from the ledger (docs/notifications.md).
//!
//! - Subscriptions are ledger records (`webhook.subscribed`, `webhook.revoked`); the secret
//!   each one is signed with lives in the `secrets` table, never in the ledger.
//! - Notifications are derived from ledger records ([`model`]): nothing acknowledged can be
//!   lost, because the record is already durable. Delivery state (attempts, status,
//!   delivered at, next attempt) is kept beside the ledger in `webhook_deliveries`.
//! - The dispatcher ([`dispatch`]) polls the outbox and POSTs; when to retry is pure policy
//!   ([`policy`]); the signature is [`sign`].

pub mod dispatch;
pub mod model;
pub mod policy;
pub mod sign;

pub use dispatch::{Dispatcher, RoundReport, spawn_dispatcher};
pub use model::{KINDS, Notification, NotifyModel, Subscription};
pub use policy::{RetryPolicy, SendResult};

use super::parse_site;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{AppJson, AppQuery};
use crate::openapi::RouteDoc;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use cellops_domain::events::EventType;
use cellops_domain::{Role, SiteId};
use cellops_ledger::{Backend, NewRecord};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};

/// The ledger event types of this module.
pub const EVENT_TYPES: &[EventType] = &[
    EventType {
        name: "webhook.subscribed",
        version: 1,
        description: "a webhook subscription: URL, notification kinds, sites (its secret is kept beside the ledger)",
    },
    EventType {
        name: "webhook.revoked",
        version: 1,
        description: "a webhook subscription was ended, with a reason; nothing more is sent to it",
    },
];

/// The documented endpoints of this module.
pub const ROUTES: &[RouteDoc] = &[
    (
        "get",
        "/api/webhooks",
        "Webhook subscriptions of the caller's sites",
        true,
        &[],
    ),
    (
        "post",
        "/api/webhooks",
        "Subscribe a URL to notification kinds at sites (site_admin of each); the signing secret is returned once",
        true,
        &["url", "kinds", "sites"],
    ),
    (
        "delete",
        "/api/webhooks/{subscription}",
        "End a subscription (a ledger record with the reason; nothing is deleted)",
        true,
        &["reason"],
    ),
    (
        "get",
        "/api/webhooks/{subscription}/deliveries",
        "Delivery state of a subscription's notifications: attempts, last status, delivered at, next attempt",
        true,
        &[],
    ),
    (
        "get",
        "/api/webhooks/kinds",
        "The notification kinds and the records that make them",
        true,
        &[],
    ),
];

pub fn router<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/api/webhooks", get(list::<B>).post(subscribe::<B>))
        .route("/api/webhooks/kinds", get(kinds::<B>))
        .route("/api/webhooks/{subscription}", delete(revoke::<B>))
        .route(
            "/api/webhooks/{subscription}/deliveries",
            get(deliveries::<B>),
        )
}

/// Who may create and end subscriptions.
const ADMIN: [Role; 1] = [Role::SiteAdmin];
/// Who may see subscriptions and their deliveries.
const READERS: [Role; 2] = [Role::SiteAdmin, Role::Auditor];

/// The longest URL accepted.
const URL_CHARS_MAX: usize = 2_000;

/// The name of a subscription's secret in the `secrets` table.
pub fn secret_name(subscription: &str) -> String {
    format!("webhook_secret:{subscription}")
}

/// Checks a receiver URL; the error says what to change.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > URL_CHARS_MAX {
        return Err(format!("at most {URL_CHARS_MAX} characters"));
    }
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(
                "https:// delivery is not built in yet (no TLS client in this build): point the subscription at an http:// address of a TLS-terminating egress proxy on your network"
                    .into(),
            );
        }
        _ => return Err("use an http:// URL, e.g. http://receiver.example:8080/cellops".into()),
    }
    let authority = uri
        .authority()
        .ok_or("the URL needs a host, e.g. http://receiver.example/cellops")?;
    if authority.as_str().contains('@') {
        return Err(
            "put no credentials in the URL (it is recorded in the ledger): receivers authenticate cellops by the signature"
                .into(),
        );
    }
    if authority.host().is_empty() {
        return Err("the URL needs a host".into());
    }
    Ok(())
}

fn subscription_view(s: &Subscription) -> Value {
    let mut v = serde_json::to_value(s).expect("subscriptions serialize");
    v["active"] = json!(s.revoked.is_none());
    v
}

/// Finds a subscription the caller may act on with `roles` (at one of its sites).
fn find<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    id: &str,
    roles: &[Role],
) -> ApiResult<Subscription> {
    let s = state
        .read_model(|m: &mut NotifyModel| m.subscription(id).cloned())
        .ok_or_else(|| ApiError::not_found(format!("no webhook subscription {id}")))?;
    let allowed = s
        .sites
        .iter()
        .any(|site| roles.iter().any(|r| caller.user.has_role(*r, site)));
    if !allowed {
        // Not found rather than forbidden: another site's subscriptions are not disclosed.
        return Err(ApiError::not_found(format!("no webhook subscription {id}")));
    }
    Ok(s)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeBody {
    pub url: String,
    pub kinds: Vec<String>,
    pub sites: Vec<String>,
}

/// Creates a subscription; the answer carries the secret, which is never shown again.
pub async fn subscribe<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppJson(body): AppJson<SubscribeBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    check_url(&body.url).map_err(|m| ApiError::bad_request("url", m))?;
    if body.kinds.is_empty() {
        return Err(ApiError::bad_request(
            "kinds",
            format!(
                "name at least one notification kind: {}",
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let mut kinds = Vec::new();
    for k in &body.kinds {
        let k = model::parse_kind(k).map_err(|m| ApiError::bad_request("kinds", m))?;
        if !kinds.contains(&k.to_string()) {
            kinds.push(k.to_string());
        }
    }
    if body.sites.is_empty() {
        return Err(ApiError::bad_request(
            "sites",
            "name the sites whose events the receiver may see (you must be site_admin at each)",
        ));
    }
    let mut sites: Vec<SiteId> = Vec::new();
    for s in &body.sites {
        let site = parse_site("sites", s)?;
        caller.require(&ADMIN, &site)?;
        if !sites.contains(&site) {
            sites.push(site);
        }
    }
    let (id, secret) = state.with_rng(|rng| {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        (
            format!(
                "wh-{}",
                cellops_domain::crockford_base32(rng.next_u64(), 12)
            ),
            format!("whsec_{}", hex::encode(key)),
        )
    });
    // The secret first: a subscription whose record exists can always be signed for.
    let (name, value) = (secret_name(&id), secret.clone());
    state
        .blocking(move |s| Ok(s.ledger.read(|b| b.secret_put(&name, &value))?))
        .await?;
    let payload = model::Subscribed {
        subscription: id.clone(),
        url: body.url.clone(),
        kinds,
        sites: sites.clone(),
        by: caller.user.id.to_string(),
        at: state.clock.now(),
    };
    let record = NewRecord::new(
        &format!("webhook/{}", id.to_ascii_lowercase()),
        "webhook.subscribed",
        1,
        serde_json::to_value(&payload).expect("payload serializes"),
        caller.user.id.as_str(),
        sites[0].as_str(),
    );
    state.append(vec![record], None).await?;
    let sub = state
        .read_model(|m: &mut NotifyModel| m.subscription(&id).cloned())
        .ok_or_else(|| ApiError::internal("the subscription record did not apply"))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "subscription": subscription_view(&sub),
            "secret": secret,
            "note": "keep the secret now: it is not shown again. Verify each delivery's X-Cellops-Signature (t=<unix>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>) and de-duplicate by X-Cellops-Delivery.",
        })),
    ))
}

/// Subscriptions of the sites where the caller is site_admin or auditor.
pub async fn list<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let subs: Vec<Value> = state.read_model(|m: &mut NotifyModel| {
        m.subscriptions()
            .filter(|s| {
                s.sites
                    .iter()
                    .any(|site| READERS.iter().any(|r| caller.user.has_role(*r, site)))
            })
            .map(subscription_view)
            .collect()
    });
    Ok(Json(json!({ "subscriptions": subs })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    pub reason: String,
}

/// Ends a subscription by a `webhook.revoked` record; pending deliveries are cancelled.
pub async fn revoke<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
    AppJson(body): AppJson<RevokeBody>,
) -> ApiResult<Json<Value>> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request(
            "reason",
            "say why the subscription ends (it is recorded)",
        ));
    }
    state.sync().await?;
    let sub = find(&state, &caller, &id, &ADMIN)?;
    if let Some(r) = &sub.revoked {
        return Err(ApiError::conflict(format!(
            "webhook subscription {id} already ended at {} (record {})",
            r.at, r.seq
        )));
    }
    let site = sub
        .sites
        .iter()
        .find(|s| caller.user.has_role(Role::SiteAdmin, s))
        .cloned()
        .expect("find checked the role");
    let payload = model::Revoked {
        subscription: id.clone(),
        reason: body.reason.trim().to_string(),
        by: caller.user.id.to_string(),
        at: state.clock.now(),
    };
    let record = NewRecord::new(
        &format!("webhook/{}", id.to_ascii_lowercase()),
        "webhook.revoked",
        1,
        serde_json::to_value(&payload).expect("payload serializes"),
        caller.user.id.as_str(),
        site.as_str(),
    );
    state.append(vec![record], None).await?;
    let sub = find(&state, &caller, &id, &ADMIN)?;
    Ok(Json(json!({ "subscription": subscription_view(&sub) })))
}

#[derive(Debug, Deserialize)]
pub struct DeliveriesQuery {
    /// Deliveries of records after this seq.
    pub after: Option<u64>,
    pub limit: Option<usize>,
}

/// Most deliveries one request returns.
const DELIVERIES_PAGE_MAX: usize = 500;

/// A subscription's notifications and where each stands.
pub async fn deliveries<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
    AppQuery(q): AppQuery<DeliveriesQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > DELIVERIES_PAGE_MAX {
        return Err(ApiError::bad_request(
            "limit",
            format!("between 1 and {DELIVERIES_PAGE_MAX}"),
        ));
    }
    state.sync().await?;
    let sub = find(&state, &caller, &id, &READERS)?;
    let after = q.after.unwrap_or(0);
    let entries = state
        .blocking(move |s| Ok(s.ledger.read(|b| b.outbox_entries(&sub.id, after, limit))?))
        .await?;
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let pending = e.state == cellops_ledger::store::DeliveryState::Pending;
            json!({
                "id": model::delivery_id(&e.item.subscription, e.item.seq),
                "seq": e.item.seq,
                "kind": e.item.kind,
                "state": e.state.as_str(),
                "attempts": e.attempts,
                "created_at": e.item.created_at,
                "next_attempt_at": pending.then_some(e.next_attempt_at),
                "last_attempt_at": e.last_attempt_at,
                "last_status": e.last_status,
                "last_error": e.last_error,
                "delivered_at": e.delivered_at,
                "body": serde_json::from_str::<Value>(&e.item.body).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(json!({ "subscription": id, "deliveries": list })))
}

/// The notification kinds.
pub async fn kinds<B: Backend>(_caller: Caller) -> Json<Value> {
    let list: Vec<Value> = KINDS
        .iter()
        .map(|(k, what)| json!({"kind": k, "description": what}))
        .collect();
    Json(json!({ "kinds": list }))
}
