//! Automated culture: recipe approval, batches on simulated devices, deviations, telemetry
//! storage (SQLite and PostgreSQL) and the electronic batch record.

use crate::support::{PASSWORD, TestApp};
use axum::http::StatusCode;
use cellops_device::{CultureDevice, Program, ProgramRef, SimulatedDevice};
use cellops_ledger::postgres::Postgres;
use cellops_ledger::sqlite::Sqlite;
use cellops_ledger::telemetry::{PutOutcome, TelemetryChunk, with_store};
use cellops_ledger::{Backend, Ledger, LedgerConfig};
use cellops_process::recipe::model::DeviceOperation;
use cellops_server::event_catalog;
use cellops_server::routes::batch::{BatchModel, store_samples};
use serde_json::json;
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;

async fn approved_prime(app: &TestApp) -> (String, String) {
    let op = app.login("op").await;
    let qa = app.login("qa").await;
    let r = app
        .post(
            "/api/recipes",
            json!({"site": "cpc", "shipped": "prime-car-t.toml"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    let r = app
        .post(
            "/api/recipes/prime-car-t/1.0.0/approve",
            json!({"password": PASSWORD, "user_id": "qa"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    (op, qa)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_starts_only_from_a_recipe_qa_approved() {
    let app = TestApp::new();
    let op = app.login("op").await;
    let r = app
        .post(
            "/api/recipes",
            json!({"site": "cpc", "shipped": "prime-car-t.toml"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let start = json!({"site": "cpc", "product": "prime-car-t", "version": "1.0.0", "starting_unit": "A999026000001-S1234100"});
    let r = app.post("/api/batches", start.clone(), &op).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(r.message().contains("not approved"), "{}", r.message());
    // An operator may not approve.
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    let r = app
        .post(
            "/api/recipes/prime-car-t/1.0.0/approve",
            json!({"password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    // A malformed recipe is refused naming the line.
    let r = app
        .post(
            "/api/recipes",
            json!({"site": "cpc", "text": "format_version = 1\nproduct = 3\n", "file": "bad.toml"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.message().contains("bad.toml"), "{}", r.message());
    // QA approves that exact version with an e-signature.
    let qa = app.login("qa").await;
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    let r = app
        .post(
            "/api/recipes/prime-car-t/1.0.0/approve",
            json!({"password": "wrong password", "user_id": "qa"}),
            &qa,
        )
        .await;
    assert_ne!(r.status, StatusCode::OK);
    let r = app
        .post(
            "/api/recipes/prime-car-t/1.0.0/approve",
            json!({"password": PASSWORD, "user_id": "qa"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["recipe"]["approval"]["signer"], "qa");
    let r = app.post("/api/batches", start, &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "Running");
    assert_eq!(r.body["due_step"]["id"], "receive-apheresis");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_simulated_prime_batch_runs_to_harvest_with_record_and_review() {
    let app = TestApp::new();
    let (op, qa) = approved_prime(&app).await;
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc", "product": "prime-car-t", "starting_unit": "A999026000001-S1234100", "batch": "b-1", "simulation": {"seed": 3, "sample_period_s": 900}}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-1/simulate",
            json!({"to_completion": true, "password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["stopped"], "completed", "{:#}", r.body);
    assert_eq!(r.body["status"], "Completed");
    let units = r.body["harvested_units"].as_array().unwrap();
    assert_eq!(units.len(), 1);
    assert_eq!(units[0], "A999026000001-S1234100-D01");
    assert!(
        r.body["predicted_harvest_at"].is_string(),
        "{:#}",
        r.body["prediction"]
    );
    // Every phase ended with a telemetry summary; operator steps were e-signed.
    assert_eq!(app.count("culture.phase_telemetry_summarized"), 5);
    assert!(app.count("esig.signed") >= 3);
    // The batch record, and its review by exception signed by QA.
    let html = app.get("/api/batches/b-1/record.html", &qa).await;
    let text = html.body.as_str().unwrap().to_string();
    assert!(text.contains("Electronic batch record b-1"));
    assert!(text.contains("lot SIM-tubing-set"));
    assert!(text.contains("<svg"));
    let pdf = app.get("/api/batches/b-1/record.pdf", &qa).await;
    assert!(pdf.body.as_str().unwrap().starts_with("%PDF-1.4"));
    let review = app.get("/api/batches/b-1/review", &qa).await;
    assert!(review.body["exceptions"].is_array());
    let r = app
        .post(
            "/api/batches/b-1/review",
            json!({"password": PASSWORD}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let status = app.get("/api/batches/b-1", &qa).await;
    assert_eq!(status.body["review_signed"], "Reviewed");
    // Telemetry is readable and decodes.
    let t = app
        .get(
            "/api/batches/b-1/telemetry?signal=temperature_c&limit=10",
            &qa,
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{:?}", t.body);
    assert_eq!(t.body["samples"].as_array().unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_out_of_limit_result_holds_the_batch_until_qa_closes_the_deviation() {
    let app = TestApp::new();
    let (op, qa) = approved_prime(&app).await;
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc", "product": "prime-car-t", "starting_unit": "A999026000002-S1234100", "batch": "b-2", "device": "prodigy-7"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-2/steps/receive-apheresis/start",
            json!({}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The recipe asks for an e-signature: without a password the step is not confirmed.
    let r = app
        .post(
            "/api/batches/b-2/steps/receive-apheresis/complete",
            json!({}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-2/steps/receive-apheresis/complete",
            json!({"password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.post("/api/batches/b-2/steps/receipt-count/start", json!({}), &op)
        .await;
    let r = app
        .post(
            "/api/batches/b-2/steps/receipt-count/results",
            json!({"results": {"viability_percent": 55.0, "cd3_total_viable_cells": 2.0e9}}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let status = app.get("/api/batches/b-2", &op).await;
    let dev = status.body["on_hold_by"][0].as_str().unwrap().to_string();
    assert_eq!(status.body["open_deviations"][0], dev.as_str());
    let blocked = app
        .state
        .read_model(|m: &mut BatchModel| m.open_deviations("b-2").unwrap());
    assert_eq!(blocked.len(), 1);
    // On hold: the next step is refused.
    let r = app.post("/api/batches/b-2/steps/install-kit/start", json!({"lots": {"tubing-set": "T1", "cd4-cd8-microbeads": "M1", "culture-medium": "C1"}}), &op).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // Workflow: investigation → CAPA → QA closes with e-signature; an operator cannot close.
    let base = format!("/api/batches/b-2/deviations/{dev}");
    assert_eq!(
        app.post(&format!("{base}/investigate"), json!({}), &op)
            .await
            .status,
        StatusCode::OK
    );
    let r = app.post(&format!("{base}/capa"), json!({"root_cause": "sample taken from the line, not the bag", "capa": "retrain on receipt sampling"}), &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(&format!("{base}/close"), json!({"password": PASSWORD}), &op)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    let r = app
        .post(
            &format!("{base}/close"),
            json!({"password": PASSWORD, "user_id": "qa"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let blocked = app
        .state
        .read_model(|m: &mut BatchModel| m.open_deviations("b-2").unwrap());
    assert!(blocked.is_empty());
    let r = app.post("/api/batches/b-2/steps/install-kit/start", json!({"lots": {"tubing-set": "T1", "cd4-cd8-microbeads": "M1", "culture-medium": "C1"}}), &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Review list names the out-of-limit value and the deviation.
    let review = app.get("/api/batches/b-2/review", &qa).await;
    let kinds: Vec<&str> = review.body["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"deviation") && kinds.contains(&"out_of_limit"),
        "{kinds:?}"
    );
    // Abort: nothing runs after it.
    let r = app
        .post(
            "/api/batches/b-2/abort",
            json!({"reason": "donor consent withdrawn"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-2/steps/install-kit/complete",
            json!({"password": PASSWORD}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_power_loss_opens_a_deviation_and_stops_the_demo_operator() {
    let app = TestApp::new();
    let (op, _qa) = approved_prime(&app).await;
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    app.post(
        "/api/batches",
        json!({"site": "cpc", "product": "prime-car-t", "starting_unit": "A999026000003-S1234100", "batch": "b-3", "simulation": {"seed": 5, "sample_period_s": 600}}),
        &op,
    )
    .await;
    let r = app
        .post(
            "/api/batches/b-3/simulate",
            json!({"hours": 30, "password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.body["stopped"], "time_reached", "{:#}", r.body);
    let r = app
        .post(
            "/api/batches/b-3/faults",
            json!({"fault": "power_loss", "duration_h": 2}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post("/api/batches/b-3/faults", json!({"fault": "meteor"}), &op)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            "/api/batches/b-3/simulate",
            json!({"hours": 10, "password": PASSWORD}),
            &op,
        )
        .await;
    assert_eq!(r.body["stopped"], "device_faulted", "{:#}", r.body);
    let devs = r.body["deviations"].as_array().unwrap();
    assert!(
        devs.iter().any(|d| d["source"]["description"]
            .as_str()
            .is_some_and(|t| t.contains("power_loss"))),
        "{devs:?}"
    );
}

/// Telemetry store behaviour, the same on both backends.
fn telemetry_story<B: Backend>(url: &str) {
    let clock = Arc::new(cellops_domain::SimClock::new(
        cellops_domain::Timestamp::from_unix_us(1_764_000_000_000_000).unwrap(),
    ));
    let ledger = Ledger::<B>::open(url, clock, LedgerConfig::new(event_catalog())).unwrap();
    let origin = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let mut device =
        SimulatedDevice::new("dev-a", cellops_twin::Product::PrimeCarT, 9, origin, 1).unwrap();
    device
        .start_program(&Program {
            reference: ProgramRef {
                batch: "b".into(),
                step: "expansion".into(),
            },
            operation: DeviceOperation::Expansion,
            set_points: BTreeMap::new(),
            duration_hours: 5.0,
        })
        .unwrap();
    device
        .advance_to(origin + time::Duration::minutes(20))
        .unwrap();
    let samples = device.read_samples(0, 100_000).unwrap();
    let stored = store_samples(&ledger, "dev-a", "b", &samples).unwrap();
    assert_eq!(stored, samples.len() as u64);
    // A resend after a reconnect (overlapping the stored samples) stores nothing twice.
    assert_eq!(store_samples(&ledger, "dev-a", "b", &samples).unwrap(), 0);
    device
        .advance_to(origin + time::Duration::minutes(25))
        .unwrap();
    let more = device
        .read_samples(samples.len() as u64 - 50, 100_000)
        .unwrap();
    let new = store_samples(&ledger, "dev-a", "b", &more).unwrap();
    assert_eq!(new, more.len() as u64 - 50);
    let totals = ledger.read(|b| with_store(b, |s| s.totals())).unwrap();
    assert_eq!(totals.samples, (samples.len() + more.len() - 50) as u64);
    let per_sample = totals.bytes as f64 / totals.samples as f64;
    assert!(per_sample <= 16.0, "{per_sample} bytes per sample");
    // The identical chunk is a duplicate; different content over stored numbers is refused.
    let chunks = ledger
        .read(|b| with_store(b, |s| s.chunks("dev-a", 1, 10)))
        .unwrap();
    let first = chunks[0].clone();
    assert_eq!(
        ledger
            .read(|b| with_store(b, |s| s.put_chunk(&first)))
            .unwrap(),
        PutOutcome::Duplicate
    );
    let mut forged: TelemetryChunk = first.clone();
    forged.data[5] ^= 1;
    forged.sha256 = sha2::Sha256::digest(&forged.data).into();
    let err = ledger
        .read(|b| with_store(b, |s| s.put_chunk(&forged)))
        .unwrap_err();
    assert!(err.to_string().contains("overlap"), "{err}");
    let mut bad_hash = first;
    bad_hash.first_seq = 1_000_000;
    bad_hash.last_seq = 1_000_001;
    bad_hash.sha256 = [0; 32];
    let err = ledger
        .read(|b| with_store(b, |s| s.put_chunk(&bad_hash)))
        .unwrap_err();
    assert!(err.to_string().contains("sha256"), "{err}");
}

#[test]
fn telemetry_is_stored_compactly_and_idempotently_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    telemetry_story::<Sqlite>(&format!("sqlite://{}", dir.path().join("t.db").display()));
}

#[test]
fn telemetry_is_stored_compactly_and_idempotently_on_postgres() {
    let admin = std::env::var("CELLOPS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("cellops_batch_{}", std::process::id());
    let mut client =
        postgres::Client::connect(&admin, postgres::NoTls).expect("PostgreSQL at 127.0.0.1:5432");
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    telemetry_story::<Postgres>(&format!("{base}/{name}"));
    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
