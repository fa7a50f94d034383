//! Cryo storage, cold chain and the dose bank over HTTP: put-away and retrieval by scan,
//! FEFO, storage limit, temperature alarms, a shipment with an excursion blocked until QA
//! investigates, assesses and closes its deviation with an e-signature, the logger watchdog
//! and data gaps, dose allocation rules and a lot recall.

use crate::support::*;
use axum::http::StatusCode;
use cellops_domain::{Role, SiteId};
use cellops_ledger::NewRecord;
use cellops_server::provision::{NewUser, add_user};
use cellops_server::routes::training::seed_demo_training;
use serde_json::{Value, json};

const DAY_US: u64 = 86_400_000_000;

/// Adds the demo people (trained by `seed_demo_training`): op-tanaka (operator, storage
/// handling), courier-abe (logistics, shipping), ns-kato (nurse at hosp), qa-ito (QA),
/// trainer-ono.
pub(crate) fn add_trained_people(app: &TestApp) {
    tokio::task::block_in_place(|| {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(12);
        for (id, name, roles) in [
            ("trainer-ono", "Ken Ono", vec![(Role::Trainer, "cpc")]),
            (
                "qa-ito",
                "Mariko Ito",
                vec![(Role::QaReviewer, "cpc"), (Role::QaReleaser, "cpc")],
            ),
            ("op-tanaka", "Hiroshi Tanaka", vec![(Role::Operator, "cpc")]),
            (
                "courier-abe",
                "Jun Abe",
                vec![(Role::Logistics, "cpc"), (Role::Logistics, "hosp")],
            ),
            ("ns-kato", "Sachiko Kato", vec![(Role::Nurse, "hosp")]),
        ] {
            let roles: Vec<(Role, SiteId)> = roles
                .into_iter()
                .map(|(r, s)| (r, SiteId::parse(s).unwrap()))
                .collect();
            add_user(
                &app.state.ledger,
                &mut rng,
                "test",
                &NewUser {
                    user_id: id,
                    full_name: name,
                    password: PASSWORD,
                    roles: &roles,
                    must_change_password: false,
                },
                false,
            )
            .unwrap();
        }
        seed_demo_training(&app.state.ledger, &mut rng, app.state.clock.now()).unwrap();
        app.state.sync_blocking().unwrap();
    });
}

pub(crate) fn ok(r: &Reply) {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

fn advance_days(app: &TestApp, days: f64) {
    app.clock.advance_us((days * DAY_US as f64) as u64);
}

/// Configures `dewar-01` at cpc (2 racks × 2 boxes × 4 slots, alarm above −150 °C after 10
/// minutes, no-data after 30, `stored_days_max`).
async fn dewar(app: &TestApp, stored_days_max: u32) {
    let admin = app.login("admin").await;
    let r = app
        .post(
            "/api/storage",
            json!({"site": "cpc", "storage": "dewar-01", "kind": "ln2_vapour", "racks": 2, "boxes_per_rack": 2,
                   "slots_per_box": 4, "alarm_above_c": -150.0, "delay_minutes": 10, "reading_gap_minutes_max": 30,
                   "stored_days_max": stored_days_max}),
            &admin,
        )
        .await;
    ok(&r);
}

/// Allocates DINs at cpc and creates one unit per expiry (in days from now); returns codes.
pub(crate) async fn units(app: &TestApp, session: &str, expires_days: &[f64]) -> Vec<String> {
    let r = app
        .post(
            "/api/dins",
            json!({"site": "cpc", "count": expires_days.len()}),
            session,
        )
        .await;
    ok(&r);
    let mut codes = Vec::new();
    for (din, days) in r.body["dins"].as_array().unwrap().iter().zip(expires_days) {
        let code = format!("{}-S1234100", din.as_str().unwrap());
        let expires = app.state.clock.now().plus_us((days * DAY_US as f64) as i64);
        let r = app
            .post("/api/units", json!({"code": code, "patient": null, "expires_at": expires, "site": "cpc", "location": "fill-room"}), session)
            .await;
        ok(&r);
        codes.push(code);
    }
    codes
}

/// The unit's label as a scanner reads it.
pub(crate) fn label(code: &str) -> String {
    let (din, product) = code.split_once('-').unwrap();
    format!("={din}00=<{product}")
}

async fn put_away(app: &TestApp, session: &str, code: &str, position: &str) -> Reply {
    app.post(
        "/api/storage/put-away",
        json!({"site": "cpc", "scanned_unit": label(code), "scanned_position": position}),
        session,
    )
    .await
}

/// Registers a QC batch listing `units` and has QA release it (e-signed Released).
pub(crate) async fn release(app: &TestApp, batch: &str, units: &[String]) {
    let stream = format!("batch/{batch}");
    let records = vec![
        NewRecord::new(
            &stream,
            "qc.batch.registered",
            1,
            json!({"batch": batch, "product": "allo-car-t", "spec_version": "1", "recipe_version": "1", "units": units}),
            "qa-ito",
            "cpc",
        ),
        NewRecord::new(
            &stream,
            "qc.release.decided",
            1,
            json!({"batch": batch, "spec": "allo-car-t/1", "kind": "released", "at_risk_request": null, "results": [], "exceptions": []}),
            "qa-ito",
            "cpc",
        ),
    ];
    let out = app.state.append(records, None).await.unwrap();
    let qa = app.login("qa-ito").await;
    sign(app, &qa, "qa-ito", out.records[1].seq, "Released").await;
}

async fn sign(app: &TestApp, session: &str, user: &str, seq: u64, meaning: &str) {
    app.post("/api/auth/esig-policy", json!({}), session).await;
    let r = app
        .post(
            "/api/signatures",
            json!({"seq": seq, "meaning": meaning, "password": PASSWORD, "user_id": user}),
            session,
        )
        .await;
    ok(&r);
}

#[tokio::test(flavor = "multi_thread")]
async fn put_away_and_retrieval_by_scan_refuse_wrong_positions_and_follow_first_expiry_first_out() {
    let app = TestApp::new();
    add_trained_people(&app);
    dewar(&app, 3650).await;
    let op = app.login("op-tanaka").await;
    let codes = units(&app, &op, &[200.0, 100.0]).await;
    // The system assigns a position; scanning another one is refused and recorded.
    let r = app.get("/api/storage/dewar-01/suggest", &op).await;
    ok(&r);
    assert_eq!(r.body["position"], "dewar-01/R1/B1/P1");
    let r = app
        .post("/api/storage/put-away", json!({"site": "cpc", "scanned_unit": label(&codes[0]), "scanned_position": "dewar-01/R1/B1/P2", "expected_position": "dewar-01/R1/B1/P1"}), &op)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "wrong_position");
    assert_eq!(app.count("storage.scan_refused"), 1);
    ok(&put_away(&app, &op, &codes[0], "dewar-01/R1/B1/P1").await);
    assert_eq!(app.count("storage.put_away"), 1);
    // The custody store scan is recorded with the put-away.
    assert!(app.count("scan.accepted") >= 1);
    let r = put_away(&app, &op, &codes[1], "dewar-01/R1/B1/P1").await;
    assert_eq!(r.body["error"]["code"], "position_occupied", "{:?}", r.body);
    ok(&put_away(&app, &op, &codes[1], "dewar-01/R1/B1/P2").await);
    // Someone without the storage qualification is refused.
    let untrained = app.login("op").await;
    let more = units(&app, &untrained, &[50.0]).await;
    let r = put_away(&app, &untrained, &more[0], "dewar-01/R1/B1/P3").await;
    assert_ne!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(app.count("qualification.refused") >= 1);

    advance_days(&app, 1.0);
    let op = app.login("op-tanaka").await;
    let retrieve = |code: &str, position: &str, expected: Option<&str>| json!({"site": "cpc", "scanned_unit": label(code), "scanned_position": position, "purpose": "use", "expected_unit": expected});
    // The unit is not where the scan says.
    let r = app
        .post(
            "/api/storage/retrieve",
            retrieve(&codes[0], "dewar-01/R1/B1/P2", None),
            &op,
        )
        .await;
    assert_eq!(
        r.body["error"]["code"], "unit_not_at_position",
        "{:?}",
        r.body
    );
    // FEFO: the later-expiring unit is refused while the earlier one is there.
    let r = app
        .post(
            "/api/storage/retrieve",
            retrieve(&codes[0], "dewar-01/R1/B1/P1", None),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"]["code"], "fefo_violation", "{:?}", r.body);
    assert!(r.message().contains("dewar-01/R1/B1/P2"), "{}", r.message());
    // The pick list asks for the earlier unit; scanning the other one is a custody refusal.
    let r = app
        .post(
            "/api/storage/retrieve",
            retrieve(&codes[0], "dewar-01/R1/B1/P2", Some(&codes[1])),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "wrong_unit", "{:?}", r.body);
    ok(&app
        .post(
            "/api/storage/retrieve",
            retrieve(&codes[1], "dewar-01/R1/B1/P2", Some(&codes[1])),
            &op,
        )
        .await);
    ok(&app
        .post(
            "/api/storage/retrieve",
            retrieve(&codes[0], "dewar-01/R1/B1/P1", None),
            &op,
        )
        .await);
    assert_eq!(app.count("storage.retrieved"), 2);
    let r = app.get("/api/storage", &op).await;
    assert_eq!(r.body["storages"][0]["occupied"], 0, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_storage_limit_blocks_use_and_a_warm_dewar_alarms_and_blocks_its_units() {
    let app = TestApp::new();
    add_trained_people(&app);
    dewar(&app, 7).await;
    let op = app.login("op-tanaka").await;
    let codes = units(&app, &op, &[100.0, 100.0]).await;
    ok(&put_away(&app, &op, &codes[0], "dewar-01/R1/B1/P1").await);
    ok(&put_away(&app, &op, &codes[1], "dewar-01/R1/B1/P2").await);
    // Probe readings: a sustained rise above −150 °C raises an alarm (recorded).
    let t = |min: u64| app.state.clock.now().plus_us((min * 60_000_000) as i64);
    let readings: Vec<Value> = [(1, -185.0), (6, -145.0), (11, -140.0), (16, -138.0)]
        .iter()
        .map(|(m, c)| json!({"at": t(*m), "temperature_c": c}))
        .collect();
    let r = app
        .post(
            "/api/storage/dewar-01/readings",
            json!({"readings": readings}),
            &op,
        )
        .await;
    ok(&r);
    assert_eq!(app.count("storage.alarm_raised"), 1);
    assert_eq!(r.body["alarm"]["kind"], "high_temperature");
    // A retrieval for use from a dewar in alarm is refused.
    advance_days(&app, 0.02);
    let op = app.login("op-tanaka").await;
    let body = |code: &str, position: &str| json!({"site": "cpc", "scanned_unit": label(code), "scanned_position": position, "purpose": "use"});
    let r = app
        .post(
            "/api/storage/retrieve",
            body(&codes[0], "dewar-01/R1/B1/P1"),
            &op,
        )
        .await;
    assert_eq!(r.body["error"]["code"], "storage_in_alarm", "{:?}", r.body);
    let r = app
        .post(
            "/api/storage/dewar-01/acknowledge",
            json!({"reason": ""}),
            &op,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reason is required"
    );
    ok(&app
        .post(
            "/api/storage/dewar-01/acknowledge",
            json!({"reason": "lid left open; closed and topped up"}),
            &op,
        )
        .await);
    let r = app
        .post(
            "/api/storage/dewar-01/readings",
            json!({"readings": [{"at": t(40), "temperature_c": -180.0}]}),
            &op,
        )
        .await;
    ok(&r);
    assert_eq!(app.count("storage.alarm_cleared"), 1);
    assert_eq!(app.count("excursion.opened"), 1);
    // The stored units went through the episode: blocked until QA assesses it.
    let r = app.get(&format!("/api/cold/units/{}", codes[0]), &op).await;
    ok(&r);
    assert_eq!(r.body["usable"], false);
    assert_eq!(r.body["blocked"]["reason"], "excursion_unassessed");
    let excursion = r.body["excursions"][0]["excursion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(r.body["excursions"][0]["deviation"]["state"], "open");
    assert_eq!(app.count("excursion.deviation_opened"), 1);
    let qa = app.login("qa-ito").await;
    work_deviation(
        &app,
        &qa,
        &excursion,
        "14 min, max −138 °C, within the product's stability data",
    )
    .await;
    let r = app.get(&format!("/api/cold/units/{}", codes[0]), &op).await;
    assert_eq!(r.body["usable"], true, "{:?}", r.body);
    assert_eq!(r.body["excursions"][0]["deviation"]["state"], "closed");
    // Eight days later both units are past the dewar's 7-day validated storage time.
    advance_days(&app, 8.0);
    let op = app.login("op-tanaka").await;
    let r = app
        .post(
            "/api/storage/retrieve",
            body(&codes[0], "dewar-01/R1/B1/P1"),
            &op,
        )
        .await;
    assert_eq!(
        r.body["error"]["code"], "storage_limit_exceeded",
        "{:?}",
        r.body
    );
    let r = app.get("/api/storage/review?site=cpc", &op).await;
    assert_eq!(r.body["units"].as_array().unwrap().len(), 2, "{:?}", r.body);
    assert_eq!(r.body["units"][0]["reason"], "storage_limit_reached");
    // Discard is still possible.
    ok(&app
        .post("/api/storage/retrieve", json!({"site": "cpc", "scanned_unit": label(&codes[0]), "scanned_position": "dewar-01/R1/B1/P1", "purpose": "discard"}), &op)
        .await);
}

/// QA works an excursion's deviation through: investigate, assess (accept), close with the
/// e-signature (password).
async fn work_deviation(app: &TestApp, qa: &str, excursion: &str, justification: &str) {
    app.post("/api/auth/esig-policy", json!({}), qa).await;
    ok(&app
        .post(
            &format!("/api/excursions/{excursion}/investigate"),
            json!({"findings": "probe log and fill records reviewed"}),
            qa,
        )
        .await);
    ok(&app
        .post(
            &format!("/api/excursions/{excursion}/assess"),
            json!({"decision": "accept", "justification": justification}),
            qa,
        )
        .await);
    let r = app
        .post(
            &format!("/api/excursions/{excursion}/close"),
            json!({"password": PASSWORD, "user_id": "qa-ito"}),
            qa,
        )
        .await;
    ok(&r);
    assert_eq!(r.body["decision"], "accept");
    assert!(r.body["signature_seq"].as_u64().is_some(), "{:?}", r.body);
}

/// A qualified, charged shipper `ds-01` and a calibrated logger `LG-0001` at cpc.
pub(crate) async fn shipper_and_logger(app: &TestApp) {
    let admin = app.login("admin").await;
    let now = app.state.clock.now();
    let later = |days: i64| now.plus_us(days * DAY_US as i64);
    ok(&app
        .post("/api/shippers", json!({"site": "cpc", "shipper": "ds-01", "model": "CX100", "qualification_report": "QR-2026-07",
               "qualification_expires_at": later(180).to_string(), "validated_hold_hours": 240.0}), &admin)
        .await);
    let courier = app.login("courier-abe").await;
    ok(&app
        .post("/api/shippers/ds-01/charges", json!({}), &courier)
        .await);
    ok(&app
        .post(
            "/api/loggers",
            json!({"site": "cpc", "logger": "LG-0001", "calibration_certificate": "CAL-77",
               "calibration_due": later(90).to_string(), "interval_seconds": 300}),
            &admin,
        )
        .await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shipment_with_an_excursion_is_blocked_until_qa_signs_an_assessment() {
    let app = TestApp::new();
    add_trained_people(&app);
    shipper_and_logger(&app).await;
    let op = app.login("op-tanaka").await;
    let codes = units(&app, &op, &[100.0]).await;
    let courier = app.login("courier-abe").await;
    let pack = |transit_hours: f64| {
        json!({"site": "cpc", "shipment": "shp-1", "to_site": "hosp", "units": [label(&codes[0])], "shipper": "ds-01",
               "logger": "LG-0001", "transit_hours": transit_hours})
    };
    // Not released: it does not leave the CPC.
    let r = app.post("/api/shipments", pack(12.0), &courier).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(
        r.message().contains("register and release"),
        "{}",
        r.message()
    );
    release(&app, "b-100", &codes).await;
    // 240 h of hold: a 230-hour transit plus the 24-hour margin does not fit.
    let r = app.post("/api/shipments", pack(230.0), &courier).await;
    assert_eq!(r.body["error"]["code"], "hold_too_short", "{:?}", r.body);
    // An untrained operator may not pack.
    let r = app.post("/api/shipments", pack(12.0), &op).await;
    assert_ne!(r.status, StatusCode::OK);
    let r = app.post("/api/shipments", pack(12.0), &courier).await;
    ok(&r);
    ok(&app
        .post("/api/shipments/shp-1/dispatch", json!({}), &courier)
        .await);
    let start = app.state.clock.now();
    app.clock.advance_us(12 * 3_600_000_000);
    // Received at the hospital: every unit scanned, custody to the nurse.
    let nurse = app.login("ns-kato").await;
    let r = app
        .post("/api/shipments/shp-1/receive", json!({"site": "hosp", "scanned_units": [label(&codes[0])],
               "condition": {"acceptable": true, "temperature_c": -160.0, "note": ""}, "location": "pharmacy"}), &nurse)
        .await;
    ok(&r);
    // No logger data yet: blocked (incomplete data).
    assert_eq!(
        r.body["blocked"][0]["reason"], "logger_data_missing",
        "{:?}",
        r.body
    );
    assert!(app.count("custody.handed_off") >= 1);
    // The logger file holds one excursion (the demo trace).
    let csv = cellops_cold::demo::excursion_logger_csv(start);
    let r = app
        .post(
            "/api/shipments/shp-1/logger",
            json!({"format": "generic", "csv": csv}),
            &nurse,
        )
        .await;
    ok(&r);
    assert_eq!(
        r.body["excursions"].as_array().unwrap().len(),
        1,
        "{:?}",
        r.body["excursions"]
    );
    let excursion = r.body["excursions"][0]["excursion"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .get(&format!("/api/cold/units/{}", codes[0]), &nurse)
        .await;
    assert_eq!(
        r.body["blocked"]["reason"], "excursion_unassessed",
        "{:?}",
        r.body
    );
    // The nurse cannot work the deviation; QA can: investigate → assess → close.
    let body = json!({"decision": "accept", "justification": "55 min above −150 °C, maximum −126 °C, below the reject limit"});
    let findings =
        json!({"findings": "shipper tipped over (courier report); logger in the canister"});
    let r = app
        .post(
            &format!("/api/excursions/{excursion}/investigate"),
            findings.clone(),
            &nurse,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let qa = app.login("qa-ito").await;
    let r = app
        .post(
            &format!("/api/excursions/{excursion}/assess"),
            body.clone(),
            &qa,
        )
        .await;
    assert_eq!(r.body["error"]["code"], "deviation_state", "{:?}", r.body);
    ok(&app
        .post(
            &format!("/api/excursions/{excursion}/investigate"),
            findings,
            &qa,
        )
        .await);
    let r = app
        .post(&format!("/api/excursions/{excursion}/assess"), body, &qa)
        .await;
    ok(&r);
    let view = app
        .get(&format!("/api/cold/units/{}", codes[0]), &nurse)
        .await;
    assert_eq!(
        view.body["usable"], false,
        "assessed, deviation not closed: still blocked"
    );
    assert!(
        view.body["blocked"]["message"]
            .as_str()
            .unwrap()
            .contains("deviation assessed"),
        "{:?}",
        view.body
    );
    // Closing is the e-signature: without the password nothing is signed or closed.
    let close = format!("/api/excursions/{excursion}/close");
    let r = app.post(&close, json!({}), &qa).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["error"]["field"], "password");
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    let r = app
        .post(
            &close,
            json!({"password": "wrong", "user_id": "qa-ito"}),
            &qa,
        )
        .await;
    assert_ne!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(app.count("excursion.deviation_closed"), 0);
    let r = app
        .post(
            &close,
            json!({"password": PASSWORD, "user_id": "qa-ito"}),
            &qa,
        )
        .await;
    ok(&r);
    let view = app
        .get(&format!("/api/cold/units/{}", codes[0]), &nurse)
        .await;
    assert_eq!(view.body["usable"], true, "{:?}", view.body);
    let r = app.get("/api/excursions?site=cpc", &qa).await;
    assert_eq!(r.body["excursions"][0]["assessment"]["decision"], "accept");
    assert_eq!(r.body["excursions"][0]["deviation"]["state"], "closed");
    assert_eq!(
        r.body["excursions"][0]["deviation"]["closed"]["decision"],
        "accept"
    );
    // Closed is closed.
    let r = app.post(&close, json!({}), &qa).await;
    assert_eq!(r.body["error"]["code"], "deviation_state", "{:?}", r.body);
    // A second logger file is refused: the first is the record.
    let r = app.post("/api/shipments/shp-1/logger", json!({"format": "generic", "csv": "timestamp,temperature_c\n2026-01-01 00:00:00,-180\n"}), &nurse).await;
    assert_ne!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_logger_files_get_clear_errors() {
    let app = TestApp::new();
    add_trained_people(&app);
    shipper_and_logger(&app).await;
    let op = app.login("op-tanaka").await;
    let codes = units(&app, &op, &[100.0]).await;
    release(&app, "b-200", &codes).await;
    let courier = app.login("courier-abe").await;
    ok(&app
        .post("/api/shipments", json!({"site": "cpc", "shipment": "shp-2", "to_site": "hosp", "units": [codes[0]], "shipper": "ds-01", "logger": "LG-0001", "transit_hours": 12.0}), &courier)
        .await);
    ok(&app
        .post("/api/shipments/shp-2/dispatch", json!({}), &courier)
        .await);
    for (csv, needle) in [
        (
            "timestamp,temperature_c\n2026-03-01 00:00:00,-180\n",
            "no zone",
        ),
        (
            "timestamp,temperature_c\n2026-03-01T00:00:00Z,-180\n2026-03-01T00:00:00Z,-170\n",
            "same time",
        ),
        (
            "timestamp,temperature_c\n2026-03-01T00:00:00Z,-300\n",
            "check the unit",
        ),
    ] {
        let r = app
            .post(
                "/api/shipments/shp-2/logger",
                json!({"format": "generic", "csv": csv}),
                &courier,
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
        assert!(r.message().contains(needle), "{}", r.message());
    }
    // A file with a gap: recorded, and the gap is an excursion QA must assess.
    let now = app.state.clock.now();
    let at = |min: i64| now.plus_us(min * 60_000_000).to_string();
    let csv = format!(
        "timestamp,temperature_c\n{},-185\n{},-185\n{},-184\n",
        at(1),
        at(6),
        at(90)
    );
    let r = app
        .post(
            "/api/shipments/shp-2/logger",
            json!({"format": "generic", "csv": csv}),
            &courier,
        )
        .await;
    ok(&r);
    assert_eq!(r.body["excursions"][0]["kind"], "data_gap", "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_logger_watchdog_flags_silent_shipments_and_a_late_end_of_data_is_a_gap() {
    let app = TestApp::new();
    add_trained_people(&app);
    shipper_and_logger(&app).await;
    let op = app.login("op-tanaka").await;
    let codes = units(&app, &op, &[100.0]).await;
    release(&app, "b-300", &codes).await;
    let courier = app.login("courier-abe").await;
    let pack = json!({"site": "cpc", "shipment": "shp-3", "to_site": "hosp", "units": [codes[0]],
        "shipper": "ds-01", "logger": "LG-0001", "transit_hours": 12.0, "gap_minutes_max": 15});
    ok(&app.post("/api/shipments", pack, &courier).await);
    let watchdog = |q: &str| format!("/api/cold/logger-watchdog?site={q}");
    let r = app.get(&watchdog("cpc"), &courier).await;
    ok(&r);
    assert_eq!(r.body["shipments"], json!([]), "packed only: {:?}", r.body);
    ok(&app
        .post("/api/shipments/shp-3/dispatch", json!({}), &courier)
        .await);
    let start = app.state.clock.now();
    let minutes = |m: u64| app.clock.advance_us(m * 60_000_000);
    minutes(10);
    let r = app.get(&watchdog("cpc"), &courier).await;
    assert_eq!(r.body["shipments"], json!([]), "{:?}", r.body);
    minutes(10);
    let r = app.get(&watchdog("cpc"), &courier).await;
    assert_eq!(r.body["silence_minutes"], 15);
    assert_eq!(r.body["shipments"][0]["shipment"], "shp-3", "{:?}", r.body);
    assert_eq!(r.body["shipments"][0]["reason"], "no_data_since_dispatch");
    assert_eq!(r.body["shipments"][0]["silent_minutes"], 20.0);
    // The destination sees it too; another site does not, nor may an outsider ask.
    let nurse = app.login("ns-kato").await;
    let r = app.get(&watchdog("hosp"), &nurse).await;
    assert_eq!(
        r.body["shipments"].as_array().unwrap().len(),
        1,
        "{:?}",
        r.body
    );
    let r = app.get(&watchdog("cpc"), &nurse).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app
        .get(&format!("{}&silence_minutes=0", watchdog("cpc")), &courier)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = app
        .get(&format!("{}&silence_minutes=30", watchdog("cpc")), &courier)
        .await;
    assert_eq!(r.body["shipments"], json!([]));
    // A connected logger reports the first 3 hours at 5-minute intervals. (Sessions end
    // after 15 idle minutes: sign in again after each jump of the clock.)
    minutes(160);
    let courier = app.login("courier-abe").await;
    let at = |min: i64| start.plus_us(min * 60_000_000).to_string();
    let csv: String = std::iter::once("timestamp,temperature_c\n".to_string())
        .chain((0..=36).map(|i| format!("{},-185\n", at(i * 5))))
        .collect();
    let r = app
        .post(
            "/api/shipments/shp-3/logger",
            json!({"format": "generic", "csv": csv}),
            &courier,
        )
        .await;
    ok(&r);
    assert_eq!(r.body["excursions"], json!([]), "{:?}", r.body);
    let r = app.get(&watchdog("cpc"), &courier).await;
    assert_eq!(r.body["shipments"], json!([]), "{:?}", r.body);
    // Then nothing: after 15 minutes the data has ended.
    minutes(20);
    let courier = app.login("courier-abe").await;
    let r = app.get(&watchdog("cpc"), &courier).await;
    assert_eq!(
        r.body["shipments"][0]["reason"], "data_ended",
        "{:?}",
        r.body
    );
    assert_eq!(r.body["shipments"][0]["known_until"], json!(at(180)));
    // Received 12 h after dispatch: the 9 hours without data are a gap finding that
    // blocks the unit until QA closes its deviation.
    app.clock.advance_us(9 * 3_600_000_000 - 20 * 60_000_000);
    let (courier, nurse) = (app.login("courier-abe").await, app.login("ns-kato").await);
    let r = app
        .post("/api/shipments/shp-3/receive", json!({"site": "hosp", "scanned_units": [label(&codes[0])],
               "condition": {"acceptable": true, "temperature_c": -170.0, "note": ""}, "location": "pharmacy"}), &nurse)
        .await;
    ok(&r);
    assert_eq!(
        r.body["blocked"][0]["reason"], "excursion_unassessed",
        "{:?}",
        r.body
    );
    let r = app.get("/api/shipments/shp-3", &nurse).await;
    ok(&r);
    assert_eq!(
        r.body["excursions"][0]["episode"]["kind"], "data_gap",
        "{:?}",
        r.body
    );
    assert_eq!(r.body["excursions"][0]["episode"]["start"], json!(at(180)));
    assert_eq!(r.body["excursions"][0]["deviation"]["state"], "open");
    let excursion = r.body["excursions"][0]["excursion"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.get(&watchdog("cpc"), &courier).await;
    assert_eq!(
        r.body["shipments"],
        json!([]),
        "received with data: {:?}",
        r.body
    );
    let qa = app.login("qa-ito").await;
    work_deviation(
        &app,
        &qa,
        &excursion,
        "the shipper's own display log shows −180 °C throughout",
    )
    .await;
    let r = app
        .get(&format!("/api/cold/units/{}", codes[0]), &nurse)
        .await;
    assert_eq!(r.body["usable"], true, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn doses_are_allocated_by_the_rules_and_a_lot_recall_lists_every_dose_and_recipient() {
    let app = TestApp::new();
    add_trained_people(&app);
    dewar(&app, 3650).await;
    let op = app.login("op-tanaka").await;
    let lot = units(&app, &op, &[400.0]).await.remove(0);
    let (din, _) = lot.split_once('-').unwrap();
    let now = app.state.clock.now();
    let exp = |d: i64| now.plus_us(d * DAY_US as i64);
    let doses: Vec<String> = ["Aa", "Ab", "Ac"]
        .iter()
        .map(|d| format!("{din}-S12341{d}"))
        .collect();
    let r = app
        .post("/api/units/derive", json!({"operation": "split", "parents": [lot],
               "children": [{"code": doses[0], "expires_at": exp(50)}, {"code": doses[1], "expires_at": exp(30)}, {"code": doses[2], "expires_at": exp(40)}],
               "site": "cpc", "location": "fill-room"}), &op)
        .await;
    ok(&r);
    for (i, d) in doses.iter().enumerate() {
        ok(&put_away(&app, &op, d, &format!("dewar-01/R1/B1/P{}", i + 1)).await);
    }
    ok(&app
        .post(
            "/api/bank/lots",
            json!({"site": "cpc", "lot": lot, "doses": doses, "hla": ["A*02:01", "B*07:02"]}),
            &op,
        )
        .await);
    let admin = app.login("admin").await;
    let order = |id: &str, patient: &str, antibodies: &[&str]| json!({"site": "cpc", "order": id, "patient": patient, "product": "S1234", "antibodies": antibodies, "needed_by": exp(10)});
    // Not released: nothing to allocate, and the message says why.
    let r = app
        .post("/api/bank/allocations", order("ord-1", "p-1", &[]), &admin)
        .await;
    assert_eq!(r.body["error"]["code"], "no_dose_available", "{:?}", r.body);
    assert!(
        r.message().contains("3 in unreleased lots"),
        "{}",
        r.message()
    );
    release(&app, "lot-1", std::slice::from_ref(&lot)).await;
    // Incompatible: the patient has antibodies against the donor's B*07:02.
    let r = app
        .post(
            "/api/bank/allocations",
            order("ord-1", "p-1", &["B*07:02"]),
            &admin,
        )
        .await;
    assert!(r.message().contains("3 incompatible"), "{}", r.message());
    // First expiry first: the day-30 dose, then the day-40 dose.
    let r = app
        .post(
            "/api/bank/allocations",
            order("ord-1", "p-1", &["A*01:01"]),
            &admin,
        )
        .await;
    ok(&r);
    assert_eq!(r.body["dose"], doses[1].as_str());
    assert_eq!(r.body["position"], "dewar-01/R1/B1/P2");
    let r = app
        .post("/api/bank/allocations", order("ord-2", "p-2", &[]), &admin)
        .await;
    ok(&r);
    assert_eq!(r.body["dose"], doses[2].as_str());
    let r = app
        .post("/api/bank/allocations", order("ord-2", "p-2", &[]), &admin)
        .await;
    assert_eq!(r.body["error"]["code"], "order_allocated");
    // Recall: every dose, where it is, and who it is for.
    let qa = app.login("qa-ito").await;
    let r = app.get(&format!("/api/bank/lots/{lot}/recall"), &qa).await;
    ok(&r);
    assert_eq!(r.body["doses"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["recipients"], json!(["p-1", "p-2"]));
    let d1 = r.body["doses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dose"] == doses[1].as_str())
        .unwrap();
    assert_eq!(d1["allocated_to"]["patient"], "p-1");
    assert_eq!(d1["position"], "dewar-01/R1/B1/P2");
    let r = app.get(&format!("/api/bank/lots/{lot}/recall"), &op).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "operators do not run recalls"
    );
}
