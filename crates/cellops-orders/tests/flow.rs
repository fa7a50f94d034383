//! The order flow through the pure core: decisions fed back into the book, as the server does.

use cellops_custody::{OrderId, SubjectId, UnitCode};
use cellops_domain::{SiteId, Timestamp, UserId};
use cellops_orders::*;

const DAY: i64 = 86_400_000_000;
const HOUR: i64 = 3_600_000_000;

struct World {
    book: OrderBook,
    seq: u64,
    now: Timestamp,
}

fn t0() -> Timestamp {
    Timestamp::parse("2026-12-01T09:00:00.000000Z").unwrap()
}
fn site(s: &str) -> SiteId {
    SiteId::parse(s).unwrap()
}
fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}
fn unit(s: &str) -> UnitCode {
    UnitCode::parse(s).unwrap()
}
const COLLECTED: &str = "A999026000001-S1234100";
const PRODUCT_UNIT: &str = "A999026000002-S1234100";

impl World {
    fn new() -> World {
        World {
            book: OrderBook::default(),
            seq: 0,
            now: t0(),
        }
    }
    fn record(&mut self, e: OrderEvent) {
        self.seq += 1;
        let payload = e.to_json().to_string();
        self.book.apply(RecordView {
            seq: self.seq,
            stream: &e.stream(),
            event_type: e.type_name(),
            payload: &payload,
            actor: "x",
            recorded_at: self.now,
            signature: None,
        });
    }
    fn sign(&mut self, order: &str, meaning: &str, signer: &str) {
        self.seq += 1;
        let placed = self
            .book
            .order(&OrderId::parse(order).unwrap())
            .unwrap()
            .placed_seq;
        let payload = format!("{{\"signs_seq\":{placed}}}");
        self.book.apply(RecordView {
            seq: self.seq,
            stream: &order_stream(&OrderId::parse(order).unwrap()),
            event_type: "esig.signed",
            payload: &payload,
            actor: signer,
            recorded_at: self.now,
            signature: Some((meaning, signer)),
        });
    }
    fn custody(&mut self, event_type: &str, order: &str) {
        self.seq += 1;
        let payload = format!(
            "{{\"order\":\"{order}\",\"at\":\"{}\",\"first_checker\":\"nurse-a\",\"second_checker\":\"nurse-b\"}}",
            self.now
        );
        self.book.apply(RecordView {
            seq: self.seq,
            stream: "unit/x",
            event_type,
            payload: &payload,
            actor: "nurse-a",
            recorded_at: self.now,
            signature: None,
        });
    }
    fn advance(&mut self, us: i64) {
        self.now = self.now.plus_us(us);
    }
    fn enrol(&mut self, subject: &str, at: &str) {
        let e = decide_enrol(
            &self.book,
            SubjectId::parse(subject).unwrap(),
            site(at),
            user("nurse-a"),
            self.now,
        )
        .unwrap();
        self.record(OrderEvent::Enrolled(e));
    }
    fn place(
        &mut self,
        order: &str,
        subject: &str,
        product: Product,
        dose: Dose,
        days: (i64, i64),
    ) -> Result<(), OrderError> {
        let e = decide_place(
            &self.book,
            PlaceOrder {
                order: OrderId::parse(order).unwrap(),
                subject: SubjectId::parse(subject).unwrap(),
                site: site("hosp"),
                manufacturer: site("cpc"),
                product,
                dose,
                window: Window {
                    earliest: self.now.plus_us(days.0 * DAY),
                    latest: self.now.plus_us(days.1 * DAY),
                },
                physician: user("dr-a"),
                at: self.now,
            },
        )?;
        self.record(OrderEvent::Placed(e));
        Ok(())
    }
    fn milestone(
        &mut self,
        order: &str,
        m: Milestone,
        at_site: &str,
        unit_code: Option<&str>,
    ) -> Result<(), OrderError> {
        let e = decide_milestone(
            &self.book,
            RecordMilestone {
                order: OrderId::parse(order).unwrap(),
                milestone: m,
                unit: unit_code.map(unit),
                batch: Some("b-1".into()),
                predicted_at: Some(self.now.plus_us(9 * DAY)),
                manual: true,
                note: None,
                by: user("op-a"),
                site: site(at_site),
                at: self.now,
            },
        )?;
        self.record(OrderEvent::Milestone(e));
        Ok(())
    }
    /// A record of another module (batch, QC, bank, shipments) as the ledger holds it.
    fn module(&mut self, event_type: &str, stream: &str, payload: serde_json::Value) {
        self.module_signed(event_type, stream, payload, None);
    }
    fn module_signed(
        &mut self,
        event_type: &str,
        stream: &str,
        payload: serde_json::Value,
        signature: Option<(&str, &str)>,
    ) {
        self.seq += 1;
        let payload = payload.to_string();
        self.book.apply(RecordView {
            seq: self.seq,
            stream,
            event_type,
            payload: &payload,
            actor: "op-a",
            recorded_at: self.now,
            signature,
        });
    }
    /// QA's release decision of `batch` and its e-signature; returns nothing.
    fn release(&mut self, batch: &str, kind: &str) {
        self.module(
            "qc.release.decided",
            &format!("qc/{batch}"),
            serde_json::json!({"batch": batch, "kind": kind}),
        );
        let decision = self.seq;
        self.module_signed(
            "esig.signed",
            &format!("qc/{batch}"),
            serde_json::json!({"signs_seq": decision}),
            Some(("Released", "qa-a")),
        );
    }
    /// A shipment of `unit` to `to`: packed and dispatched.
    fn ship(&mut self, shipment: &str, unit: &str, to: &str) {
        self.module(
            "shipment.packed",
            &format!("shipment/{shipment}"),
            serde_json::json!({"shipment": shipment, "units": [unit], "to_site": to}),
        );
        self.module(
            "shipment.dispatched",
            &format!("shipment/{shipment}"),
            serde_json::json!({"shipment": shipment}),
        );
    }
    fn collect(&mut self, order: &str, at_site: &str) -> Result<(), OrderError> {
        let e = decide_collection(
            &self.book,
            RecordCollection {
                order: OrderId::parse(order).unwrap(),
                unit: unit(COLLECTED),
                volume_ml: 180.0,
                nucleated_cells: None,
                cd3_cells: Some(2.6e9),
                collected_at: self.now,
                by: user("col-a"),
                site: site(at_site),
                at: self.now,
            },
        )?;
        self.record(OrderEvent::Collected(e));
        Ok(())
    }
    fn order(&self, id: &str) -> &Order {
        self.book.order(&OrderId::parse(id).unwrap()).unwrap()
    }
}

fn prime_dose(cells: f64) -> Dose {
    Dose {
        cells,
        basis: DoseBasis::PerBody,
        body_weight_kg: None,
    }
}

#[test]
fn autologous_order_runs_from_order_to_follow_up() {
    let mut w = World::new();
    w.enrol("s-1", "hosp");
    w.place("o-1", "s-1", Product::PrimeCarT, prime_dose(1e8), (20, 90))
        .unwrap();
    assert_eq!(w.order("o-1").stage, Stage::Ordered);
    assert_eq!(
        w.collect("o-1", "hosp").unwrap_err().rule(),
        "order_not_signed"
    );
    w.sign("o-1", "Ordered", "someone-else");
    assert_eq!(
        w.order("o-1").stage,
        Stage::Ordered,
        "only the ordering physician signs"
    );
    w.sign("o-1", "Ordered", "dr-a");
    assert_eq!(w.order("o-1").stage, Stage::Signed);
    let before = status(w.order("o-1"), w.now);
    assert_eq!(before.predicted.first().unwrap().step, "collection");
    assert_eq!(before.predicted.last().unwrap().step, "infusion");

    w.advance(7 * DAY);
    w.collect("o-1", "hosp").unwrap();
    w.milestone("o-1", Milestone::ShippedToCpc, "hosp", None)
        .unwrap();
    w.advance(20 * HOUR);
    w.milestone("o-1", Milestone::ReceivedAtCpc, "cpc", None)
        .unwrap();
    // The steps other modules perform are theirs alone: never entered by hand.
    let e = w
        .milestone("o-1", Milestone::ManufacturingStarted, "cpc", None)
        .unwrap_err();
    assert_eq!(e.field(), Some("milestone"));
    assert!(e.to_string().contains("POST /api/batches"), "{e}");
    // A batch of another patient's material does not move this order.
    w.module(
        "culture.batch_opened",
        "batch/b-other",
        serde_json::json!({"batch": "b-other", "starting_unit": PRODUCT_UNIT}),
    );
    assert_eq!(w.order("o-1").stage, Stage::ReceivedAtCpc);
    w.module(
        "culture.batch_opened",
        "batch/b-1",
        serde_json::json!({"batch": "b-1", "starting_unit": COLLECTED}),
    );
    w.module(
        "batch.batch_started",
        "batch/b-1",
        serde_json::json!({"at": w.now.to_string()}),
    );
    assert_eq!(w.order("o-1").stage, Stage::Manufacturing);
    assert_eq!(w.order("o-1").batch.as_deref(), Some("b-1"));
    w.module(
        "culture.prediction_made",
        "batch/b-1",
        serde_json::json!({"prediction": {"median_day": 9.0}}),
    );
    let s = status(w.order("o-1"), w.now);
    let harvest = s.predicted.iter().find(|p| p.step == "harvest").unwrap();
    assert_eq!(harvest.basis, "twin prediction of the dose");
    assert_eq!(harvest.at, w.now.plus_us(9 * DAY));

    w.advance(9 * DAY);
    w.module("batch.batch_completed", "batch/b-1", serde_json::json!({}));
    assert_eq!(w.order("o-1").stage, Stage::Harvested);
    w.module(
        "qc.batch.registered",
        "qc/b-1",
        serde_json::json!({"batch": "b-1", "units": [PRODUCT_UNIT]}),
    );
    assert_eq!(w.order("o-1").product_unit, Some(unit(PRODUCT_UNIT)));
    w.advance(7 * DAY);
    // A decision without its e-signature releases nothing.
    w.module(
        "qc.release.decided",
        "qc/b-1",
        serde_json::json!({"batch": "b-1", "kind": "released"}),
    );
    assert_eq!(w.order("o-1").stage, Stage::Harvested);
    w.release("b-1", "released_at_risk");
    assert_eq!(w.order("o-1").stage, Stage::Released);
    assert!(w.order("o-1").released_at_risk);
    w.ship("sh-1", PRODUCT_UNIT, "hosp");
    assert_eq!(w.order("o-1").stage, Stage::ShippedToHospital);
    w.advance(DAY);
    w.module(
        "shipment.received",
        "shipment/sh-1",
        serde_json::json!({"shipment": "sh-1"}),
    );
    assert_eq!(w.order("o-1").stage, Stage::ReceivedAtHospital);
    let entry = w
        .order("o-1")
        .timeline
        .iter()
        .find(|e| e.what == "received_at_hospital")
        .unwrap();
    assert!(!entry.manual);
    assert!(
        entry
            .detail
            .as_deref()
            .unwrap()
            .contains("shipment.received"),
        "{entry:?}"
    );
    let o = OrderId::parse("o-1").unwrap();
    assert_eq!(
        check_bedside(&w.book, &o, &site("hosp"))
            .unwrap_err()
            .rule(),
        "wrong_stage"
    );
    w.milestone("o-1", Milestone::Thawed, "hosp", None).unwrap();
    assert_eq!(
        check_bedside(&w.book, &o, &site("hosp-b"))
            .unwrap_err()
            .rule(),
        "wrong_hospital"
    );
    assert_eq!(
        check_bedside(&w.book, &o, &site("hosp")).unwrap(),
        unit(PRODUCT_UNIT)
    );
    assert_eq!(
        check_infusion(&w.book, &o, &site("hosp"), w.now)
            .unwrap_err()
            .rule(),
        "wrong_stage"
    );
    w.custody("bedside.verified", "o-1");
    check_infusion(&w.book, &o, &site("hosp"), w.now).unwrap();
    w.custody("infusion.recorded", "o-1");
    assert_eq!(w.order("o-1").stage, Stage::Infused);
    assert!(status(w.order("o-1"), w.now).predicted.is_empty());

    let follow = |grade, observed_at| RecordFollowUp {
        order: o.clone(),
        kind: FollowUpKind::AdverseEvent,
        term: "cytokine release syndrome".into(),
        grade,
        observed_at,
        by: user("dr-a"),
        site: site("hosp"),
        at: w.now.plus_us(DAY),
    };
    assert_eq!(
        decide_follow_up(&w.book, follow(None, w.now))
            .unwrap_err()
            .field(),
        Some("grade")
    );
    assert_eq!(
        decide_follow_up(&w.book, follow(Some(2), w.now.plus_us(-DAY)))
            .unwrap_err()
            .field(),
        Some("observed_at")
    );
    let e = decide_follow_up(&w.book, follow(Some(2), w.now.plus_us(HOUR))).unwrap();
    w.record(OrderEvent::FollowUp(e));
    let whats: Vec<&str> = w
        .order("o-1")
        .timeline
        .iter()
        .map(|e| e.what.as_str())
        .collect();
    assert_eq!(whats.first(), Some(&"order.placed"));
    assert_eq!(whats.last(), Some(&"adverse_event"));
    assert!(whats.contains(&"bedside.verified") && whats.contains(&"infusion.recorded"));
}

#[test]
fn bad_orders_name_the_rule() {
    let mut w = World::new();
    w.enrol("s-1", "hosp");
    w.enrol("s-2", "hosp-b");
    let e = w
        .place("o-1", "s-1", Product::PrimeCarT, prime_dose(2e9), (20, 90))
        .unwrap_err();
    assert_eq!(e.rule(), "dose_out_of_range");
    assert!(e.to_string().contains("1e9"), "{e}");
    let e = w
        .place("o-1", "s-2", Product::PrimeCarT, prime_dose(1e8), (20, 90))
        .unwrap_err();
    assert_eq!(e.rule(), "not_enrolled");
    let e = w
        .place("o-1", "s-1", Product::PrimeCarT, prime_dose(1e8), (-30, -1))
        .unwrap_err();
    assert_eq!(e.rule(), "treatment_window");
    let e = w
        .place("o-1", "s-1", Product::PrimeCarT, prime_dose(1e8), (1, 10))
        .unwrap_err();
    assert!(e.to_string().contains("typically needs"), "{e}");
    let e = w
        .place("o-1", "s-1", Product::PrimeCarT, prime_dose(1e8), (90, 20))
        .unwrap_err();
    assert!(e.to_string().contains("swap"), "{e}");
    let per_kg = Dose {
        cells: 2e6,
        basis: DoseBasis::PerKg,
        body_weight_kg: None,
    };
    assert_eq!(
        w.place("o-1", "s-1", Product::PrimeCarT, per_kg, (20, 90))
            .unwrap_err()
            .field(),
        Some("dose_basis")
    );
    assert_eq!(
        w.place("o-1", "s-1", Product::BmMsc, per_kg, (30, 90))
            .unwrap_err()
            .field(),
        Some("body_weight_kg")
    );
    let msc = Dose {
        body_weight_kg: Some(60.0),
        ..per_kg
    };
    w.place("o-1", "s-1", Product::BmMsc, msc, (35, 90))
        .unwrap();
    assert_eq!(w.order("o-1").dose.cells_total(), 1.2e8);
}

#[test]
fn fresh_material_past_its_hold_time_is_refused_and_a_failed_batch_needs_a_new_collection() {
    let mut w = World::new();
    w.enrol("s-1", "hosp");
    w.place(
        "o-1",
        "s-1",
        Product::BmMsc,
        Dose {
            cells: 2e6,
            basis: DoseBasis::PerKg,
            body_weight_kg: Some(70.0),
        },
        (35, 120),
    )
    .unwrap();
    w.sign("o-1", "Ordered", "dr-a");
    assert_eq!(
        w.collect("o-1", "hosp-b").unwrap_err().rule(),
        "wrong_hospital"
    );
    w.collect("o-1", "hosp").unwrap();
    w.milestone("o-1", Milestone::ShippedToCpc, "hosp", None)
        .unwrap();
    w.advance(25 * HOUR);
    let e = w
        .milestone("o-1", Milestone::ReceivedAtCpc, "cpc", None)
        .unwrap_err();
    assert_eq!(e.rule(), "hold_time_exceeded", "{e}");
    w.advance(-2 * HOUR);
    w.milestone("o-1", Milestone::ReceivedAtCpc, "cpc", None)
        .unwrap();
    w.module(
        "culture.batch_opened",
        "batch/b-1",
        serde_json::json!({"batch": "b-1", "starting_unit": COLLECTED}),
    );
    w.module(
        "batch.batch_aborted",
        "batch/b-1",
        serde_json::json!({"reason": "contamination"}),
    );
    let o = w.order("o-1");
    assert_eq!(
        (o.stage, o.failed_batches, o.batch.clone()),
        (Stage::Failed, 1, None)
    );
    assert_eq!(status(o, w.now).next, "a new collection");
    w.advance(DAY);
    w.collect("o-1", "hosp").unwrap();
    assert_eq!(w.order("o-1").collected_units.len(), 2);
}

#[test]
fn allogeneic_orders_are_served_from_the_bank() {
    let mut w = World::new();
    w.enrol("s-9", "hosp");
    w.place("o-9", "s-9", Product::AlloCarT, prime_dose(1e8), (2, 30))
        .unwrap();
    w.sign("o-9", "Ordered", "dr-a");
    assert_eq!(w.collect("o-9", "hosp").unwrap_err().field(), Some("order"));
    assert_eq!(
        w.milestone("o-9", Milestone::DoseAllocated, "cpc", Some(PRODUCT_UNIT))
            .unwrap_err()
            .field(),
        Some("milestone"),
        "the dose bank allocates"
    );
    // A shipment of a unit no order holds moves nothing.
    w.ship("sh-0", PRODUCT_UNIT, "hosp");
    assert_eq!(w.order("o-9").stage, Stage::Signed);
    w.module(
        "bank.dose_allocated",
        "bank/lot-1",
        serde_json::json!({"dose": PRODUCT_UNIT, "order": "o-9"}),
    );
    assert!(w.order("o-9").is_released());
    assert_eq!(w.order("o-9").product_unit, Some(unit(PRODUCT_UNIT)));
    w.ship("sh-1", PRODUCT_UNIT, "hosp");
    assert_eq!(w.order("o-9").stage, Stage::ShippedToHospital);
    let s = status(w.order("o-9"), w.now);
    assert_eq!(
        s.predicted.iter().map(|p| p.step).collect::<Vec<_>>(),
        ["receipt_at_hospital", "infusion"]
    );
}

#[test]
fn a_booked_slot_predicts_collection_and_infusion_until_it_is_cancelled() {
    let mut w = World::new();
    w.enrol("s-1", "hosp");
    w.place("o-1", "s-1", Product::PrimeCarT, prime_dose(1e8), (20, 90))
        .unwrap();
    w.sign("o-1", "Ordered", "dr-a");
    let typical = status(w.order("o-1"), w.now).predicted;
    let typical_collection = typical[0].at;
    assert_eq!(typical[0].basis, "typical duration");
    // A booking for another order changes nothing here.
    w.module(
        "schedule.booked",
        "schedule/bookings/bk-o-2",
        serde_json::json!({"order": "o-2", "collection": "2026-12-03", "infusion": "2027-01-20"}),
    );
    assert_eq!(status(w.order("o-1"), w.now).predicted, typical);
    w.module(
        "schedule.booked",
        "schedule/bookings/bk-o-1",
        serde_json::json!({"order": "o-1", "collection": "2026-12-03", "infusion": "2027-01-20"}),
    );
    let booked = status(w.order("o-1"), w.now);
    let collection = &booked.predicted[0];
    assert_eq!(collection.step, "collection");
    assert_eq!(collection.basis, "booked schedule");
    assert_eq!(
        collection.at,
        Timestamp::parse("2026-12-03T00:00:00Z").unwrap()
    );
    assert_ne!(collection.at, typical_collection);
    let infusion = booked.predicted.last().unwrap();
    assert_eq!(infusion.step, "infusion");
    assert_eq!(infusion.basis, "booked schedule");
    assert_eq!(
        infusion.at,
        Timestamp::parse("2027-01-20T00:00:00Z").unwrap()
    );
    // The steps between follow the booked collection.
    let receipt = booked
        .predicted
        .iter()
        .find(|p| p.step == "receipt_at_cpc")
        .unwrap();
    assert!(receipt.at > collection.at && receipt.at < infusion.at);
    assert!(
        w.order("o-1")
            .timeline
            .iter()
            .any(|e| e.what == "schedule.booked"),
        "the booking is on the timeline"
    );
    // Once the booked date has passed without a collection, the typical duration from now
    // predicts it again.
    w.advance(10 * DAY);
    let late = status(w.order("o-1"), w.now);
    assert_eq!(late.predicted[0].basis, "typical duration");
    // Cancelled: typical durations again.
    w.module(
        "schedule.cancelled",
        "schedule/bookings/bk-o-1",
        serde_json::json!({"booking": "bk-o-1", "reason": "patient unwell"}),
    );
    assert!(w.order("o-1").booked.is_none());
    assert!(
        status(w.order("o-1"), w.now)
            .predicted
            .iter()
            .all(|p| p.basis != "booked schedule")
    );
}
