//! One patient's therapy, vein to vein, as a sequence of steps through the HTTP API. Each
//! step does what the people at one site do at one moment and says when the next step is
//! due; [`crate::run`] interleaves many patients in simulated time.

use crate::network::*;
use anyhow::{Context, bail};
use cellops_domain::Timestamp;
use cellops_ledger::Backend;
use serde::Serialize;
use serde_json::{Value, json};

/// The three products of the programme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Product {
    PrimeCarT,
    BmMsc,
    AlloCarT,
}

impl Product {
    pub const ALL: [Product; 3] = [Product::PrimeCarT, Product::BmMsc, Product::AlloCarT];

    /// The order API's product name.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::PrimeCarT => "prime-car-t",
            Product::BmMsc => "bm-msc",
            Product::AlloCarT => "allo-car-t",
        }
    }

    /// The recipe (and specification) the product is made by.
    pub fn recipe(self) -> &'static str {
        match self {
            Product::PrimeCarT => "prime-car-t",
            Product::BmMsc => "bm-msc",
            Product::AlloCarT => "allo-car-t-lot",
        }
    }

    fn dose(self) -> Value {
        match self {
            Product::PrimeCarT | Product::AlloCarT => {
                json!({"dose_cells": 1e8, "dose_basis": "per_body"})
            }
            Product::BmMsc => {
                json!({"dose_cells": 2e6, "dose_basis": "per_kg", "body_weight_kg": 62.0})
            }
        }
    }

    fn route(self) -> &'static str {
        match self {
            Product::BmMsc => "peripheral intravenous",
            _ => "intravenous",
        }
    }
}

/// Culture hours before the failed batch's contamination is found.
const FAILED_CULTURE_HOURS: f64 = 72.0;

/// What is special about a patient's run (the demo shows each once). The unqualified
/// operator's attempt needs a recipe with an aseptic-processing step (BM-MSC plates the
/// marrow in the isolator early on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Scenario {
    /// The first batch fails (a contaminated culture is aborted); the patient is collected
    /// again.
    pub failed_batch: bool,
    /// The shipment to the hospital has a temperature excursion QA must assess.
    pub excursion: bool,
    /// QA releases at risk before the 14-day sterility result, with the physician's
    /// acknowledgement.
    pub release_at_risk: bool,
    /// The operator whose media fill failed tries to run the batch and is refused.
    pub unqualified_operator: bool,
    /// No collection slot is booked in the schedule: collected three days after the order.
    /// (The year benchmark's 500 patients are more than the demo schedule's capacity, sized
    /// for 200 a year: booked, their collections would move past their treatment windows.)
    pub unbooked: bool,
    /// The excursion's deviation is left for QA (the test does it by hand): until QA closes
    /// it, the cold chain blocks thaw, bedside and infusion.
    pub excursion_left_open: bool,
}

/// Where a patient's flow stands: the step due next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Order,
    Collect,
    ReceiveAtCpc,
    Culture,
    Harvest,
    Release,
    Allocate,
    Ship,
    ReceiveAtHospital,
    Infuse,
    FollowUp,
    Done,
}

/// One patient and where their therapy stands.
#[derive(Debug)]
pub struct Patient {
    pub product: Product,
    pub hospital: Hospital,
    pub scenario: Scenario,
    step: Step,
    /// When the next step is due.
    pub due: Timestamp,
    pub subject: String,
    pub order: String,
    collected: String,
    /// The culture the starting material was seeded into (an in-process unit).
    in_process: String,
    batch: String,
    /// When the current batch's culture started.
    culture_from: Timestamp,
    pub product_unit: String,
    shipment: String,
    shipper: String,
    /// When the shipment left (the logger's first sample).
    dispatched_at: Timestamp,
    /// Batches that failed.
    pub failed_batches: u32,
    pub refusals: u32,
    /// Temperature excursions found in this patient's shipments.
    pub excursions: u32,
    pub ordered_at: Timestamp,
    pub collected_at: Option<Timestamp>,
    pub infused_at: Option<Timestamp>,
}

impl Patient {
    pub fn new(product: Product, hospital: Hospital, scenario: Scenario, due: Timestamp) -> Self {
        Patient {
            product,
            hospital,
            scenario,
            step: Step::Order,
            due,
            subject: String::new(),
            order: String::new(),
            collected: String::new(),
            in_process: String::new(),
            batch: String::new(),
            culture_from: due,
            product_unit: String::new(),
            shipment: String::new(),
            shipper: String::new(),
            dispatched_at: due,
            failed_batches: 0,
            refusals: 0,
            excursions: 0,
            ordered_at: due,
            collected_at: None,
            infused_at: None,
        }
    }

    pub fn done(&self) -> bool {
        self.step == Step::Done
    }

    /// Sends the flow back to collection at `due` (the starting material was rejected).
    pub fn collect_again(&mut self, due: Timestamp) {
        self.step = Step::Collect;
        self.due = due;
    }

    /// The step due next, by name (`order`, `collect`, `receive_at_cpc`, `culture`, `harvest`,
    /// `release`, `allocate`, `ship`, `receive_at_hospital`, `infuse`, `follow_up`, `done`).
    pub fn next_step(&self) -> &'static str {
        match self.step {
            Step::Order => "order",
            Step::Collect => "collect",
            Step::ReceiveAtCpc => "receive_at_cpc",
            Step::Culture => "culture",
            Step::Harvest => "harvest",
            Step::Release => "release",
            Step::Allocate => "allocate",
            Step::Ship => "ship",
            Step::ReceiveAtHospital => "receive_at_hospital",
            Step::Infuse => "infuse",
            Step::FollowUp => "follow_up",
            Step::Done => "done",
        }
    }

    /// Vein-to-vein days: first collection (or order, for a banked dose) to infusion.
    pub fn vein_to_vein_days(&self) -> Option<f64> {
        let from = self.collected_at.unwrap_or(self.ordered_at);
        self.infused_at
            .map(|to| (to.unix_us() - from.unix_us()) as f64 / DAY_US as f64)
    }

    /// Does the step that is due, and sets when the next one is.
    pub async fn advance<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        bank: &mut crate::bank::Bank,
    ) -> anyhow::Result<()> {
        let step = self.step;
        let next = match step {
            Step::Order => self.place_order(net).await?,
            Step::Collect => self.collect(net).await?,
            Step::ReceiveAtCpc => self.receive_and_start(net).await?,
            Step::Culture => self.culture(net).await?,
            Step::Harvest => self.harvest(net).await?,
            Step::Release => self.release(net).await?,
            Step::Allocate => self.allocate(net, bank).await?,
            Step::Ship => self.ship(net, bank).await?,
            Step::ReceiveAtHospital => self.receive_at_hospital(net, bank).await?,
            Step::Infuse => self.infuse(net).await?,
            Step::FollowUp => self.follow_up(net).await?,
            Step::Done => return Ok(()),
        };
        let (step, due) = next;
        self.step = step;
        self.due = due;
        Ok(())
    }

    fn in_hours(at: Timestamp, hours: f64) -> Timestamp {
        at.plus_us((hours * HOUR_US as f64) as i64)
    }

    async fn place_order<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<(Step, Timestamp)> {
        let h = self.hospital;
        let r = net
            .post(
                "enrol",
                h.physician,
                "/api/patients",
                json!({"site": h.site}),
            )
            .await?;
        self.subject = text(&r, "subject")?;
        let mut body = json!({"site": h.site, "subject": self.subject,
            "product": self.product.as_str(), "manufacturer": CPC,
            "window_earliest": net.in_hours(24), "window_latest": net.in_hours(24 * 120)});
        for (k, v) in self.product.dose().as_object().expect("an object") {
            body[k] = v.clone();
        }
        let r = net.post("order", h.physician, "/api/orders", body).await?;
        self.order = text(&r, "order")?;
        net.post(
            "physician signs the order",
            h.physician,
            &format!("/api/orders/{}/sign", self.order),
            Network::<B>::signature(h.physician),
        )
        .await?;
        self.ordered_at = net.now();
        Ok(match self.product {
            Product::AlloCarT => (Step::Allocate, Self::in_hours(net.now(), 4.0)),
            _ if self.scenario.unbooked => (Step::Collect, Self::in_hours(net.now(), 24.0 * 3.0)),
            _ => (Step::Collect, self.book_collection(net).await?),
        })
    }

    /// Books the collection slot (every later stage's capacity with it) three days ahead,
    /// or at the schedule's first alternative; the order's status then predicts its dates
    /// from the booking. Returns when collection is due: the booked day, not before three
    /// days from now. With no slot at all within the treatment window the patient is
    /// collected unbooked in three days.
    async fn book_collection<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<Timestamp> {
        let h = self.hospital;
        let wanted = Self::in_hours(net.now(), 24.0 * 3.0);
        let latest = Self::in_hours(net.now(), 24.0 * 120.0).date();
        let mut collection = wanted.date();
        for _ in 0..2 {
            let r = net
                .try_post(
                    h.physician,
                    "/api/bookings",
                    json!({"product": self.product.as_str(), "hospital": h.site,
                           "collection_date": collection, "latest_infusion": latest,
                           "order": self.order}),
                )
                .await?;
            if r.status.is_success() {
                let booked = r.body["booking"]["collection"]
                    .as_str()
                    .and_then(|d| Timestamp::parse(&format!("{d}T09:00:00.000000Z")).ok())
                    .context("the booking has its collection date")?;
                return Ok(booked.max(wanted));
            }
            match r.body["alternatives"][0]["collection"].as_str() {
                Some(alternative) if r.status.as_u16() == 409 => {
                    collection = alternative.to_string()
                }
                _ if r.status.as_u16() == 409 => break,
                _ => bail!("book the collection slot: {} {}", r.status, r.body),
            }
        }
        Ok(wanted)
    }

    async fn hand_off<B: Backend>(
        net: &mut Network<B>,
        to: &str,
        from: &str,
        code: &str,
        site: &str,
        temperature_c: f64,
    ) -> anyhow::Result<()> {
        net.post(
            "hand-off",
            to,
            &format!("/api/units/{code}/handoffs"),
            json!({"from": from, "site": site, "location": format!("{site}/dock"),
                   "condition": {"acceptable": true, "temperature_c": temperature_c, "note": "sealed"}}),
        )
        .await?;
        Ok(())
    }

    async fn order_step<B: Backend>(
        &self,
        net: &mut Network<B>,
        user: &str,
        site: &str,
        milestone: &str,
    ) -> anyhow::Result<Value> {
        let mut body = Network::<B>::signature(user);
        body["site"] = json!(site);
        body["milestone"] = json!(milestone);
        net.post(
            milestone,
            user,
            &format!("/api/orders/{}/milestones", self.order),
            body,
        )
        .await
    }

    async fn collect<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<(Step, Timestamp)> {
        let h = self.hospital;
        let nurse = h.nurses[0];
        let location = format!("{}/room-1", h.site);
        let unit = new_unit(
            net,
            nurse,
            h.site,
            Some(&self.subject),
            COLLECTED_CODE,
            24 * 60,
            &location,
        )
        .await?;
        let body = match self.product {
            Product::BmMsc => {
                json!({"site": h.site, "unit": unit, "volume_ml": 30.0, "nucleated_cells": 6e8})
            }
            _ => json!({"site": h.site, "unit": unit, "volume_ml": 180.0, "cd3_cells": 2.6e9}),
        };
        net.post(
            "collection",
            nurse,
            &format!("/api/orders/{}/collection", self.order),
            body,
        )
        .await?;
        self.send_to_cpc(net, unit).await
    }

    /// The collected `unit` handed to the courier and on its way to the CPC.
    async fn send_to_cpc<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        unit: String,
    ) -> anyhow::Result<(Step, Timestamp)> {
        let site = self.hospital.site;
        self.hand_to_courier(net, unit).await?;
        self.order_step(net, COURIER, site, "shipped_to_cpc")
            .await?;
        Ok((
            Step::ReceiveAtCpc,
            Self::in_hours(net.now(), TRANSIT_HOURS as f64),
        ))
    }

    /// The collected `unit` handed from the nurse to the courier (custody).
    async fn hand_to_courier<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        unit: String,
    ) -> anyhow::Result<()> {
        let h = self.hospital;
        self.collected_at.get_or_insert(net.now());
        Self::hand_off(net, COURIER, h.nurses[0], &unit, h.site, 4.0).await?;
        self.collected = unit;
        Ok(())
    }

    /// The order `order` for `subject` was placed and signed by the physician elsewhere
    /// (in the web UI): the flow books its collection and goes on from there.
    pub async fn placed_elsewhere<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        subject: &str,
        order: &str,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(self.step == Step::Order, "{} is not due", "order");
        self.subject = subject.to_string();
        self.order = order.to_string();
        self.ordered_at = net.now();
        let due = match self.scenario.unbooked {
            true => Self::in_hours(net.now(), 24.0 * 3.0),
            false => self.book_collection(net).await?,
        };
        (self.step, self.due) = (Step::Collect, due);
        Ok(())
    }

    /// The collection of `unit` was recorded elsewhere (in the web UI): the unit goes to
    /// the CPC and the flow goes on from there.
    pub async fn collected_elsewhere<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        unit: &str,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(self.step == Step::Collect, "{} is not due", "collect");
        (self.step, self.due) = self.send_to_cpc(net, unit.to_string()).await?;
        Ok(())
    }

    /// The collection of `unit` was recorded and the unit handed to the courier elsewhere
    /// (in the web UI); the courier signs the hand-off to the CPC elsewhere too (then
    /// [`Patient::shipped_elsewhere`]).
    pub fn handed_over_elsewhere(&mut self, unit: &str, now: Timestamp) -> anyhow::Result<()> {
        anyhow::ensure!(self.step == Step::Collect, "{} is not due", "collect");
        self.collected_at.get_or_insert(now);
        self.collected = unit.to_string();
        Ok(())
    }

    /// The courier signed the hand-off to the CPC elsewhere: the receipt is next.
    pub fn shipped_elsewhere(&mut self, now: Timestamp) -> anyhow::Result<()> {
        anyhow::ensure!(self.step == Step::Collect, "{} is not due", "collect");
        (self.step, self.due) = (
            Step::ReceiveAtCpc,
            Self::in_hours(now, TRANSIT_HOURS as f64),
        );
        Ok(())
    }

    /// The receipt at the CPC was signed elsewhere (in the web UI): the batch is started
    /// and the material seeded.
    pub async fn received_elsewhere<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.step == Step::ReceiveAtCpc,
            "{} is not due",
            "receive_at_cpc"
        );
        (self.step, self.due) = self.start_batch(net).await?;
        Ok(())
    }

    /// QC results and QA's release were entered elsewhere (in the web UI): shipping is next.
    pub fn released_elsewhere(&mut self, now: Timestamp) -> anyhow::Result<()> {
        anyhow::ensure!(self.step == Step::Release, "{} is not due", "release");
        (self.step, self.due) = (Step::Ship, Self::in_hours(now, 24.0));
        Ok(())
    }

    /// The batch of this patient's material (empty before it is started).
    pub fn batch(&self) -> &str {
        &self.batch
    }

    /// Receipt at the CPC: the identity check, and the batch started from the approved
    /// recipe with the material seeded into culture.
    async fn receive_and_start<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<(Step, Timestamp)> {
        Self::hand_off(net, OPERATOR, COURIER, &self.collected, CPC, 4.0).await?;
        self.order_step(net, OPERATOR, CPC, "received_at_cpc")
            .await?;
        self.start_batch(net).await
    }

    /// The batch started from the approved recipe with the received material seeded into
    /// culture.
    async fn start_batch<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<(Step, Timestamp)> {
        self.batch = net.next_id("b");
        let seed = u64::from(self.failed_batches) + self.batch.len() as u64;
        net.post(
            "start the batch",
            OPERATOR,
            "/api/batches",
            json!({"site": CPC, "product": self.product.recipe(), "starting_unit": self.collected,
                   "batch": self.batch, "simulation": {"seed": seed, "sample_period_s": 3600},
                   "harvest": {"product_code": PRODUCT_CODE, "shelf_life_hours": 24 * 365}}),
        )
        .await?;
        self.culture_from = net.now();
        self.in_process = seed_culture(net, &self.collected).await?;
        if self.scenario.unqualified_operator && self.refusals == 0 {
            let mut body = Network::<B>::signature(UNQUALIFIED_OPERATOR);
            body["hours"] = json!(24.0);
            let r = net
                .try_post(
                    UNQUALIFIED_OPERATOR,
                    &format!("/api/batches/{}/simulate", self.batch),
                    body,
                )
                .await?;
            if r.status.is_success() {
                bail!(
                    "{UNQUALIFIED_OPERATOR} (failed media fill) was allowed to run batch {}: {}",
                    self.batch,
                    r.body
                );
            }
            self.refusals += 1;
        }
        Ok((Step::Culture, net.now()))
    }

    /// The culture runs on (to completion, or one slice in a live demo); the next culture
    /// step is due when the device's time is reached.
    async fn culture<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<(Step, Timestamp)> {
        let mut hours = net.culture_slice_hours();
        if self.scenario.failed_batch && self.failed_batches == 0 {
            // Contamination is found on day 3: the culture is aborted, the order needs a
            // new collection.
            let ran = (net.now().unix_us() - self.culture_from.unix_us()) as f64 / HOUR_US as f64;
            let left = FAILED_CULTURE_HOURS - ran;
            if left <= 0.0 {
                let mut body = Network::<B>::signature(QA);
                body["reason"] =
                    json!("microbial contamination seen in the day-3 in-process sample");
                net.post(
                    "QA aborts the contaminated batch",
                    QA,
                    &format!("/api/batches/{}/abort", self.batch),
                    body,
                )
                .await?;
                self.failed_batches += 1;
                return Ok((Step::Collect, Self::in_hours(net.now(), 24.0 * 7.0)));
            }
            hours = Some(hours.map_or(left, |h| h.min(left)));
        }
        let r = culture(net, &self.batch, hours).await?;
        let at = batch_time(&r)?;
        match r["stopped"].as_str() {
            Some("completed") => Ok((Step::Harvest, Self::in_hours(at, 2.0))),
            Some("time_reached") => Ok((Step::Culture, at)),
            _ => bail!("batch {} stopped {}: {r}", self.batch, r["stopped"]),
        }
    }

    /// Fill and finish: the final product unit (same DIN, final product code), its labels
    /// reconciled, and the batch registered for QC.
    async fn harvest<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<(Step, Timestamp)> {
        // The harvest made the product unit in custody from the in-process unit.
        let product_unit = self.collected.replace(COLLECTED_CODE, PRODUCT_CODE);
        label_and_register(net, &self.batch, self.product.recipe(), &[&product_unit]).await?;
        self.product_unit = product_unit;
        Ok((Step::Release, Self::in_hours(net.now(), 24.0 * 7.0)))
    }

    /// The product unit the harvest made in custody (the collected unit's DIN with the
    /// final product code).
    pub fn harvested_unit(&self) -> String {
        self.collected.replace(COLLECTED_CODE, PRODUCT_CODE)
    }

    /// The product unit's labels were printed and applied and the batch registered for QC
    /// elsewhere (in the web UI): the release is next.
    pub fn labelled_elsewhere(&mut self, now: Timestamp) -> anyhow::Result<()> {
        anyhow::ensure!(self.step == Step::Harvest, "{} is not due", "harvest");
        self.product_unit = self.harvested_unit();
        (self.step, self.due) = (Step::Release, Self::in_hours(now, 24.0 * 7.0));
        Ok(())
    }

    async fn release<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<(Step, Timestamp)> {
        let pending: &[&str] = if self.scenario.release_at_risk {
            &["sterility"]
        } else {
            &[]
        };
        qc_results(net, &self.batch, self.product.recipe(), pending).await?;
        if pending.is_empty() {
            qa_release(net, &self.batch, None).await?;
        } else {
            let r = net
                .post(
                    "request release at risk",
                    QA,
                    &format!("/api/batches/{}/release-at-risk", self.batch),
                    json!({"site": CPC, "pending_tests": pending,
                           "clinical_justification": "rapidly progressing disease; the 7-day sterility interim is negative",
                           "physician": self.hospital.physician}),
                )
                .await?;
            let seq = r["request"].as_u64().context("the at-risk request's seq")?;
            let mut body = Network::<B>::signature(self.hospital.physician);
            body["site"] = json!(self.hospital.site);
            body["statement"] = json!("I accept release before the final sterility result");
            net.post(
                "physician acknowledges",
                self.hospital.physician,
                &format!(
                    "/api/batches/{}/release-at-risk/{seq}/acknowledgement",
                    self.batch
                ),
                body,
            )
            .await?;
            qa_release(net, &self.batch, Some(seq)).await?;
        }
        Ok((Step::Ship, Self::in_hours(net.now(), 24.0)))
    }

    async fn allocate<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        bank: &mut crate::bank::Bank,
    ) -> anyhow::Result<(Step, Timestamp)> {
        if !bank.ready() {
            bank.make_lots(net, 1).await?;
        }
        let r = net
            .post(
                "allocate a banked dose",
                QA,
                "/api/bank/allocations",
                json!({"site": CPC, "order": self.order, "patient": self.subject,
                       "product": &PRODUCT_CODE[..5], "antibodies": [],
                       "needed_by": net.in_hours(24 * 10)}),
            )
            .await?;
        self.product_unit = text(&r, "dose")?;
        bank.retrieve(net, &self.product_unit).await?;
        Ok((Step::Ship, Self::in_hours(net.now(), 2.0)))
    }

    async fn ship<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        bank: &mut crate::bank::Bank,
    ) -> anyhow::Result<(Step, Timestamp)> {
        let (shipment, shipper, logger) = self.ready_to_pack(net, bank).await?;
        net.post(
            "pack",
            COURIER,
            "/api/shipments",
            json!({"site": CPC, "shipment": shipment, "to_site": self.hospital.site,
                   "units": [scan_text(&self.product_unit)], "shipper": shipper, "logger": logger,
                   "transit_hours": TRANSIT_HOURS as f64}),
        )
        .await?;
        net.post(
            "dispatch",
            COURIER,
            &format!("/api/shipments/{shipment}/dispatch"),
            json!({}),
        )
        .await?;
        Ok(self.dispatched(net.now()))
    }

    /// Everything before packing: the product unit handed to the courier, a dry shipper
    /// and logger from the pool, the shipper charged. Returns the shipment id to use, the
    /// shipper and the logger.
    pub async fn ready_to_pack<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        bank: &mut crate::bank::Bank,
    ) -> anyhow::Result<(String, String, String)> {
        anyhow::ensure!(self.step == Step::Ship, "{} is not due", "ship");
        if self.product != Product::AlloCarT {
            Self::hand_off(net, COURIER, OPERATOR, &self.product_unit, CPC, -180.0).await?;
        }
        self.shipper_ready(net, bank).await
    }

    /// A dry shipper and logger from the pool, the shipper charged (the product unit already
    /// with the courier). Returns the shipment id to use, the shipper and the logger.
    pub async fn shipper_ready<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        bank: &mut crate::bank::Bank,
    ) -> anyhow::Result<(String, String, String)> {
        let (shipment, shipper, logger) = self.shipper_taken(net, bank).await?;
        net.post(
            "charge the dry shipper",
            COURIER,
            &format!("/api/shippers/{shipper}/charges"),
            json!({}),
        )
        .await?;
        Ok((shipment, shipper, logger))
    }

    /// A dry shipper and logger from the pool, not yet charged (the charge is recorded
    /// elsewhere, in the web UI). Returns the shipment id to use, the shipper and the logger.
    pub async fn shipper_taken<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        bank: &mut crate::bank::Bank,
    ) -> anyhow::Result<(String, String, String)> {
        anyhow::ensure!(self.step == Step::Ship, "{} is not due", "ship");
        let (shipper, logger) = bank.take_shipper(net).await?;
        self.shipment = net.next_id("shp");
        self.shipper = shipper.clone();
        Ok((self.shipment.clone(), shipper, logger))
    }

    fn dispatched(&mut self, now: Timestamp) -> (Step, Timestamp) {
        self.dispatched_at = now;
        (
            Step::ReceiveAtHospital,
            Self::in_hours(now, TRANSIT_HOURS as f64),
        )
    }

    /// The shipment from [`Patient::ready_to_pack`] was packed and dispatched elsewhere (in
    /// the web UI): the hospital's receipt is next.
    pub fn dispatched_elsewhere(&mut self, now: Timestamp) -> anyhow::Result<()> {
        anyhow::ensure!(self.step == Step::Ship, "{} is not due", "ship");
        (self.step, self.due) = self.dispatched(now);
        Ok(())
    }

    /// The shipment was received, its logger file uploaded and its excursions assessed and
    /// closed by QA elsewhere (in the web UI): the shipper goes back to the pool and the
    /// infusion is next.
    pub fn checked_in_elsewhere(
        &mut self,
        bank: &mut crate::bank::Bank,
        now: Timestamp,
        excursions: u32,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.step == Step::ReceiveAtHospital,
            "{} is not due",
            "receive_at_hospital"
        );
        bank.return_shipper(&self.shipper);
        self.excursions += excursions;
        (self.step, self.due) = (Step::Infuse, Self::in_hours(now, 20.0));
        Ok(())
    }

    /// The shipment this patient's product travels in (empty before packing).
    pub fn shipment(&self) -> &str {
        &self.shipment
    }

    async fn receive_at_hospital<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        bank: &mut crate::bank::Bank,
    ) -> anyhow::Result<(Step, Timestamp)> {
        let h = self.hospital;
        let nurse = h.nurses[0];
        net.post(
            "receive the shipment",
            nurse,
            &format!("/api/shipments/{}/receive", self.shipment),
            json!({"site": h.site, "scanned_units": [scan_text(&self.product_unit)],
                   "condition": {"acceptable": true, "temperature_c": -170.0, "note": ""},
                   "location": format!("{}/pharmacy", h.site)}),
        )
        .await?;
        self.after_receipt(net, bank).await
    }

    /// After the receipt: the shipper back in the pool, the logger file uploaded, each
    /// excursion investigated, assessed and closed by QA (unless left open).
    async fn after_receipt<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        bank: &mut crate::bank::Bank,
    ) -> anyhow::Result<(Step, Timestamp)> {
        let nurse = self.hospital.nurses[0];
        bank.return_shipper(&self.shipper);
        let csv = if self.scenario.excursion {
            cellops_cold::demo::excursion_logger_csv(self.dispatched_at)
        } else {
            clean_logger_csv(self.dispatched_at, net.now())
        };
        let r = net
            .post(
                "upload the logger file",
                nurse,
                &format!("/api/shipments/{}/logger", self.shipment),
                json!({"format": "generic", "csv": csv}),
            )
            .await?;
        self.excursions += r["excursions"].as_array().map_or(0, |e| e.len() as u32);
        let excursions = match self.scenario.excursion_left_open {
            true => None,
            false => r["excursions"].as_array(),
        };
        for e in excursions.into_iter().flatten() {
            // The excursion's deviation: QA investigates, assesses, and closes it with an
            // e-signature, which puts the assessment in force.
            let id = text(e, "excursion")?;
            let base = format!("/api/excursions/{id}");
            net.post(
                "QA investigates the excursion",
                QA,
                &format!("{base}/investigate"),
                json!({"findings": "the logger shows a brief rise above -150 °C while the lid was opened at the transfer hub; the shipper stayed charged"}),
            )
            .await?;
            net.post(
                "QA assesses the excursion",
                QA,
                &format!("{base}/assess"),
                json!({"decision": "accept",
                       "justification": "brief rise above -150 °C, far below the reject limit; product quality unaffected per the stability data"}),
            )
            .await?;
            net.post(
                "QA closes the excursion's deviation",
                QA,
                &format!("{base}/close"),
                Network::<B>::signature(QA),
            )
            .await?;
        }
        Ok((Step::Infuse, Self::in_hours(net.now(), 20.0)))
    }

    async fn infuse<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<(Step, Timestamp)> {
        let h = self.hospital;
        let [first, second] = h.nurses;
        self.order_step(net, first, h.site, "thawed").await?;
        let scan = scan_text(&self.product_unit);
        net.post(
            "two-person bedside verification",
            first,
            &format!("/api/orders/{}/bedside", self.order),
            json!({"site": h.site, "location": format!("{}/ward-7/bed-3", h.site),
                   "first": {"wristband": self.subject, "unit": scan},
                   "second": {"user_id": second, "password": cellops_server::provision::demo_password(second),
                              "wristband": self.subject, "unit": scan}}),
        )
        .await?;
        net.post(
            "infusion",
            first,
            &format!("/api/orders/{}/infusion", self.order),
            json!({"site": h.site, "volume_ml": 50.0, "route": self.product.route()}),
        )
        .await?;
        self.infused_at = Some(net.now());
        Ok((Step::FollowUp, Self::in_hours(net.now(), 24.0 * 14.0)))
    }

    async fn follow_up<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<(Step, Timestamp)> {
        let h = self.hospital;
        net.post(
            "follow-up",
            h.physician,
            &format!("/api/orders/{}/follow-up", self.order),
            json!({"site": h.site, "kind": "response", "term": "partial response"}),
        )
        .await?;
        Ok((Step::Done, net.now()))
    }
}

/// Seeds the starting material into culture: an in-process unit (same DIN, in-process
/// product code) derived from it, which lives as long as a culture may run; the starting
/// material's own short expiry stays what it was.
pub async fn seed_culture<B: Backend>(
    net: &mut Network<B>,
    starting: &str,
) -> anyhow::Result<String> {
    let code = starting.replace(COLLECTED_CODE, IN_PROCESS_CODE);
    net.post(
        "seed the culture",
        OPERATOR,
        "/api/units/derive",
        json!({"operation": "formulate", "parents": [starting],
               "children": [{"code": code, "expires_at": net.in_hours(24 * 40)}],
               "reagent_lots": ["LV-2026-001", "MED-2026-118"], "site": CPC,
               "location": "cpc-kyoto/culture-device"}),
    )
    .await?;
    Ok(code)
}

/// A fresh, labelled unit at `site` (a DIN allocated there) for `patient` (none for donor
/// material), with `product_code`, expiring in `hours`.
pub async fn new_unit<B: Backend>(
    net: &mut Network<B>,
    user: &str,
    site: &str,
    patient: Option<&str>,
    product_code: &str,
    hours: i64,
    location: &str,
) -> anyhow::Result<String> {
    let r = net
        .post(
            "allocate a DIN",
            user,
            "/api/dins",
            json!({"site": site, "count": 1}),
        )
        .await?;
    let din = r["dins"][0].as_str().context("a DIN")?.to_string();
    let code = format!("{din}-{product_code}");
    net.post(
        "label the unit",
        user,
        "/api/units",
        json!({"code": code, "patient": patient, "expires_at": net.in_hours(hours),
               "site": site, "location": location}),
    )
    .await?;
    Ok(code)
}

/// Runs the batch's culture on its simulated device (the demo operator confirms each
/// operator step with an e-signature) for `hours`, or to completion. Each deviation it opens
/// (an in-process result out of limits) goes through the deviation workflow (investigation,
/// root cause and CAPA, closed by QA with an e-signature); after a hold the culture goes on.
/// Returns the last status.
pub async fn culture<B: Backend>(
    net: &mut Network<B>,
    batch: &str,
    hours: Option<f64>,
) -> anyhow::Result<Value> {
    culture_until(net, batch, hours, None).await
}

/// [`culture`], stopping when the step `stop_at` is due (`stopped: "step_due"`) for a
/// person to do it by hand (e.g. the harvest decision in the web UI).
pub async fn culture_until<B: Backend>(
    net: &mut Network<B>,
    batch: &str,
    hours: Option<f64>,
    stop_at: Option<&str>,
) -> anyhow::Result<Value> {
    const HOLDS_MAX: usize = 8;
    let mut body = Network::<B>::signature(OPERATOR);
    // The second person of the four-eyes steps (label verification after the fill), who
    // has acknowledged the e-signature policy.
    net.token(UNQUALIFIED_OPERATOR).await?;
    body["verifier"] = json!({"user_id": UNQUALIFIED_OPERATOR,
                              "password": cellops_server::provision::demo_password(UNQUALIFIED_OPERATOR)});
    match hours {
        Some(h) => body["hours"] = json!(h),
        None => body["to_completion"] = json!(true),
    }
    if let Some(step) = stop_at {
        body["stop_at"] = json!(step);
    }
    let path = format!("/api/batches/{batch}/simulate");
    for _ in 0..HOLDS_MAX {
        let r = net.post("culture", OPERATOR, &path, body.clone()).await?;
        for deviation in r["open_deviations"].as_array().into_iter().flatten() {
            let d = deviation.as_str().context("a deviation id")?;
            let base = format!("/api/batches/{batch}/deviations/{d}");
            net.post(
                "investigate the deviation",
                QA,
                &format!("{base}/investigate"),
                json!({}),
            )
            .await?;
            net.post(
                "root cause and CAPA",
                QA,
                &format!("{base}/capa"),
                json!({"root_cause": "donor-dependent variability of the starting material, within the validated range of the process",
                       "capa": "continue per the recipe; trend the parameter across batches"}),
            )
            .await?;
            net.post(
                "QA closes the deviation",
                QA,
                &format!("{base}/close"),
                Network::<B>::signature(QA),
            )
            .await?;
        }
        if r["stopped"] != "on_hold" {
            return Ok(r);
        }
    }
    bail!("batch {batch} was held more than {HOLDS_MAX} times")
}

/// Labels printed and applied (reconciled) for each unit, and the batch registered for QC.
pub async fn label_and_register<B: Backend>(
    net: &mut Network<B>,
    batch: &str,
    recipe: &str,
    units: &[&str],
) -> anyhow::Result<()> {
    for unit in units {
        net.post(
            "print labels",
            OPERATOR,
            "/api/labels/print",
            json!({"batch": batch, "unit": unit, "copies": 1, "description": recipe, "site": CPC}),
        )
        .await?;
        net.post(
            "apply labels",
            OPERATOR,
            "/api/labels/apply",
            json!({"batch": batch, "unit": unit, "count": 1, "site": CPC}),
        )
        .await?;
    }
    register_for_qc(net, batch, recipe, units).await
}

/// The batch registered for QC with its product units (the shipped specification 1).
pub async fn register_for_qc<B: Backend>(
    net: &mut Network<B>,
    batch: &str,
    recipe: &str,
    units: &[&str],
) -> anyhow::Result<()> {
    net.post(
        "register the batch for QC",
        QC_ANALYST,
        &format!("/api/batches/{batch}/qc"),
        json!({"site": CPC, "product": recipe, "spec_version": "1",
               "recipe_version": "1.0.0", "units": units}),
    )
    .await?;
    Ok(())
}

/// A passing result for every test of the specification except `pending`.
pub async fn qc_results<B: Backend>(
    net: &mut Network<B>,
    batch: &str,
    recipe: &str,
    pending: &[&str],
) -> anyhow::Result<()> {
    let catalog = cellops_qc::SpecCatalog::shipped().map_err(|e| anyhow::anyhow!("{e}"))?;
    let spec = catalog
        .get(recipe, "1")
        .with_context(|| format!("the shipped specification of {recipe}"))?
        .clone();
    for test in spec
        .tests()
        .iter()
        .filter(|t| !pending.contains(&t.id.as_str()))
    {
        net.post(
            &format!("QC result {}", test.id),
            QC_ANALYST,
            &format!("/api/batches/{batch}/results"),
            passing(test),
        )
        .await?;
    }
    Ok(())
}

/// QA's release with the e-signature Released (at risk when `at_risk_request` is given).
pub async fn qa_release<B: Backend>(
    net: &mut Network<B>,
    batch: &str,
    at_risk_request: Option<u64>,
) -> anyhow::Result<()> {
    let readiness = net
        .get(
            "release readiness",
            QA,
            &format!("/api/batches/{batch}/release-readiness"),
        )
        .await?;
    let mut body = Network::<B>::signature(QA);
    body["site"] = json!(CPC);
    if let Some(seq) = at_risk_request {
        body["at_risk_request"] = json!(seq);
    }
    let r = net
        .try_post(QA, &format!("/api/batches/{batch}/release"), body)
        .await?;
    if !r.status.is_success() {
        bail!(
            "release of {batch}: HTTP {} {}; readiness: {readiness}",
            r.status,
            r.body
        );
    }
    Ok(())
}

/// Signs record `seq` with `meaning` as `user`.
pub async fn sign<B: Backend>(
    net: &mut Network<B>,
    user: &str,
    seq: u64,
    meaning: &str,
) -> anyhow::Result<()> {
    let mut body = Network::<B>::signature(user);
    body["seq"] = json!(seq);
    body["meaning"] = json!(meaning);
    net.post(meaning, user, "/api/signatures", body).await?;
    Ok(())
}

/// A result body that passes `test` (the middle of a two-sided range, above a lower limit,
/// below an upper one, or the accepted outcome).
pub fn passing(test: &cellops_qc::TestSpec) -> Value {
    use cellops_qc::Criterion;
    match &test.criterion {
        Criterion::Numeric {
            unit,
            at_least,
            above,
            at_most,
            below,
        } => {
            let low = at_least.or(*above);
            // A percentage has its own ceiling.
            let high = at_most
                .or(*below)
                .or((unit.symbol() == "%").then_some(100.0));
            let value = match (low, high) {
                (Some(l), Some(h)) => (l + h) / 2.0,
                (Some(l), None) => l * 1.2 + 1.0,
                (None, Some(h)) => h / 2.0,
                (None, None) => 0.0,
            };
            json!({"test": test.id, "value": value, "unit": unit.symbol(), "method": test.method, "instrument": "qc-lab-1"})
        }
        Criterion::Qualitative { accepted, .. } => {
            json!({"test": test.id, "outcome": accepted[0], "method": test.method, "instrument": "qc-lab-1"})
        }
    }
}

/// The unit's label as a barcode scanner reads it (ISBT 128 DIN and product code).
pub fn scan_text(code: &str) -> String {
    let (din, product) = code.split_once('-').unwrap_or((code, ""));
    format!("={din}00=<{product}")
}

/// A logger file of a clean journey: −180 °C every 5 minutes from `from` to `to`.
pub fn clean_logger_csv(from: Timestamp, to: Timestamp) -> String {
    let mut csv = String::from("timestamp,temperature_c\n");
    let mut at = from;
    while at <= to {
        csv.push_str(&at.to_string());
        csv.push_str(",-180.0\n");
        at = at.plus_us(5 * 60 * 1_000_000);
    }
    csv
}

/// The batch's own time (its simulated device's clock) in a batch status reply.
pub fn batch_time(status: &Value) -> anyhow::Result<Timestamp> {
    status["batch_time"]
        .as_str()
        .and_then(|t| Timestamp::parse(t).ok())
        .with_context(|| format!("the batch status has its batch_time: {status}"))
}

fn text(v: &Value, key: &str) -> anyhow::Result<String> {
    v[key]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("the reply has `{key}`: {v}"))
}
