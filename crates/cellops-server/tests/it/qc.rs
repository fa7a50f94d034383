//! QC and release through the HTTP API: results with units and automatic pass/fail, OOS
//! investigations, corrections that never overwrite, the certificate of analysis (read back
//! with pdftotext), release blocked with reasons, release as an e-signature, release at risk
//! with the physician's acknowledgement, and the alert when a pending result later fails.

use crate::support::{PASSWORD, Reply};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cellops_domain::{Role, SimClock, SiteId, Timestamp};
use cellops_ledger::sqlite::Sqlite;
use cellops_ledger::{Backend, Ledger, LedgerConfig, NewRecord};
use cellops_qc::{Criterion, SpecCatalog, TestSpec};
use cellops_server::provision::{NewUser, add_user};
use cellops_server::{AppState, ServerConfig, app, event_catalog};
use http_body_util::BodyExt;
use rand::SeedableRng;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

/// An app whose ledger also accepts the batch module's records, so a test can lay down the
/// executed batch record that release readiness reads (the batch module writes it in
/// production).
struct Qc {
    state: AppState<Sqlite>,
    _dir: tempfile::TempDir,
}

impl Qc {
    fn new() -> Qc {
        tokio::task::block_in_place(Qc::new_blocking)
    }

    fn new_blocking() -> Qc {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("qc.db").display());
        let clock = Arc::new(SimClock::new(
            Timestamp::from_unix_us(1_764_000_000_000_000).unwrap(),
        ));
        let ledger =
            Ledger::<Sqlite>::open(&url, clock.clone(), LedgerConfig::new(event_catalog()))
                .unwrap();
        let state = AppState::new(
            ledger,
            clock,
            rand::rngs::StdRng::seed_from_u64(11),
            ServerConfig {
                facilities: vec![(
                    SiteId::parse("cpc").unwrap(),
                    cellops_isbt::Fin::parse("A9990").unwrap(),
                )],
                ..ServerConfig::default()
            },
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        type Seed<'a> = (&'a str, &'a str, &'a [(Role, &'a str)]);
        let users: &[Seed] = &[
            ("op", "Hiroshi Tanaka", &[(Role::Operator, "cpc")]),
            ("qc-sato", "Yumi Sato", &[(Role::QcAnalyst, "cpc")]),
            ("ana", "Aya Kimura", &[(Role::QcAnalyst, "cpc")]),
            (
                "qa-ito",
                "Mariko Ito",
                &[(Role::QaReviewer, "cpc"), (Role::QaReleaser, "cpc")],
            ),
            ("qa-new", "Ren Aoki", &[(Role::QaReleaser, "cpc")]),
            ("dr-yamada", "Kenji Mori", &[(Role::Physician, "hosp")]),
        ];
        for (id, name, roles) in users {
            let roles: Vec<(Role, SiteId)> = roles
                .iter()
                .map(|(r, s)| (*r, SiteId::parse(s).unwrap()))
                .collect();
            let user = NewUser {
                user_id: id,
                full_name: name,
                password: PASSWORD,
                roles: &roles,
                must_change_password: false,
            };
            add_user(&state.ledger, &mut rng, "test", &user, false).unwrap();
        }
        // The demo's training history qualifies qc-sato (QC methods), qa-ito (QA release)
        // and dr-yamada; "ana" and "qa-new" hold the roles but not the qualifications.
        let now = state.clock.now();
        cellops_server::routes::training::seed_demo_training(&state.ledger, &mut rng, now).unwrap();
        state.sync_blocking().unwrap();
        Qc { state, _dir: dir }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>, auth: &str) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::COOKIE, auth);
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
            .unwrap();
        let response = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).to_string()));
        Reply {
            status,
            body,
            set_cookie: None,
        }
    }

    async fn get(&self, path: &str, auth: &str) -> Reply {
        self.call("GET", path, None, auth).await
    }

    async fn post(&self, path: &str, body: Value, auth: &str) -> Reply {
        self.call("POST", path, Some(body), auth).await
    }

    async fn get_bytes(&self, path: &str, auth: &str) -> (StatusCode, Vec<u8>) {
        let req = Request::builder()
            .uri(path)
            .header(header::COOKIE, auth)
            .body(Body::empty())
            .unwrap();
        let response = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = response.status();
        (
            status,
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
    }

    async fn login(&self, user: &str) -> String {
        let req = Request::builder()
            .method("POST")
            .uri("/api/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"user_id": user, "password": PASSWORD}).to_string(),
            ))
            .unwrap();
        let response = app(self.state.clone()).oneshot(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    }

    fn count(&self, event_type: &str) -> usize {
        self.state
            .ledger
            .read(|b| b.records(1, 10_000))
            .unwrap()
            .iter()
            .filter(|r| r.event_type == event_type)
            .count()
    }

    /// Lays down the batch module's record of `batch` (as `routes/batch.rs` writes it, read
    /// back by its `BatchModel`): opened, started, and completed if asked.
    async fn batch_record(&self, batch: &str, completed: bool) {
        let stream = format!("batch/{batch}");
        let at = "2025-11-24T16:00:00Z";
        let opened = NewRecord::new(
            &stream,
            "culture.batch_opened",
            1,
            json!({"batch": batch, "site": "cpc", "product": "prime-car-t",
                   "recipe_version": "1.0.0", "recipe_hash": format!("sha256:{}", "ab".repeat(32)),
                   "starting_unit": "A999025000001-S1234100", "device": "dev-1", "simulation": null}),
            "op",
            "cpc",
        );
        let mut records = vec![NewRecord::new(
            &stream,
            "batch.batch_started",
            1,
            json!({"type": "batch_started", "version": 1, "batch": batch, "product": "prime-car-t",
                   "recipe_version": "1.0.0", "recipe_hash": format!("sha256:{}", "ab".repeat(32)),
                   "by": "op", "at": at,
                   "first_step": {"id": "receive-apheresis", "position": {"phase_index": 0, "step_index": 0}}}),
            "op",
            "cpc",
        )];
        if completed {
            records.push(NewRecord::new(
                &stream,
                "batch.batch_completed",
                1,
                json!({"type": "batch_completed", "version": 1, "at": at}),
                "op",
                "cpc",
            ));
        }
        for r in &records {
            cellops_process::engine::BatchEvent::from_json(&r.payload)
                .expect("a batch engine event");
        }
        records.insert(0, opened);
        self.state.append(records, None).await.unwrap();
    }
}

/// A product unit at the CPC (DIN + product code) and a registered QC batch for it.
async fn registered_batch(app: &Qc, batch: &str) -> (String, String) {
    let op = app.login("op").await;
    let r = app
        .post("/api/dins", json!({"site": "cpc", "count": 1}), &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let din = r.body["dins"][0].as_str().unwrap().to_string();
    let unit = format!("{din}-S1234100");
    let r = app
        .post(
            "/api/units",
            json!({"code": unit, "patient": "subj-0001", "expires_at": "2027-12-31T00:00:00.000000Z",
                   "site": "cpc", "location": "ln2-quarantine"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let ana = app.login("qc-sato").await;
    let r = app
        .post(
            &format!("/api/batches/{batch}/qc"),
            json!({"site": "cpc", "product": "prime-car-t", "spec_version": "1",
                   "recipe_version": "1.0.0", "units": [unit]}),
            &ana,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    (unit, din)
}

/// Prints two labels for the unit and applies both (reconciled).
async fn reconciled_labels(app: &Qc, batch: &str, unit: &str) {
    let op = app.login("op").await;
    let r = app
        .post(
            "/api/labels/print",
            json!({"batch": batch, "unit": unit, "copies": 2, "description": "PRIME CAR-T", "site": "cpc"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/labels/apply",
            json!({"batch": batch, "unit": unit, "count": 2, "site": "cpc"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

fn spec() -> cellops_qc::Specification {
    SpecCatalog::shipped()
        .unwrap()
        .get("prime-car-t", "1")
        .unwrap()
        .clone()
}

/// A result body that passes `test`.
fn passing(test: &TestSpec) -> Value {
    match &test.criterion {
        Criterion::Numeric {
            unit,
            at_least,
            above,
            at_most,
            below,
        } => {
            let low = at_least.or(*above);
            let high = at_most.or(*below);
            let value = match (low, high) {
                (Some(l), Some(h)) => (l + h) / 2.0,
                (Some(l), None) => l * 1.2 + 1.0,
                (None, Some(h)) => h / 2.0,
                (None, None) => unreachable!("a numeric criterion has a bound"),
            };
            json!({"test": test.id, "value": value, "unit": unit.symbol(), "method": test.method, "instrument": "qc-lab-1"})
        }
        Criterion::Qualitative { accepted, .. } => {
            json!({"test": test.id, "outcome": accepted[0], "method": test.method, "instrument": "qc-lab-1"})
        }
    }
}

/// Enters a passing result for every test except `skip`.
async fn pass_all(app: &Qc, batch: &str, skip: &[&str]) {
    let ana = app.login("qc-sato").await;
    for t in spec()
        .tests()
        .iter()
        .filter(|t| !skip.contains(&t.id.as_str()))
    {
        let r = app
            .post(&format!("/api/batches/{batch}/results"), passing(t), &ana)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {:?}", t.id, r.body);
        assert_eq!(
            r.body["verdict"]["verdict"], "pass",
            "{}: {:?}",
            t.id, r.body
        );
    }
}

fn blocker_codes(r: &Reply) -> Vec<String> {
    r.body["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["code"].as_str().unwrap().to_string())
        .collect()
}

fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coa.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/setup-test-deps");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn results_pass_or_fail_with_units_an_oos_opens_an_investigation_and_corrections_keep_the_original()
 {
    let app = Qc::new();
    let (unit, din) = registered_batch(&app, "b-001").await;
    let ana = app.login("qc-sato").await;

    // The sample plan comes from the recipe: samples at recipe steps, in recipe order.
    let r = app.get("/api/batches/b-001/sample-plan", &ana).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let ids: Vec<&str> = r.body["plan"]["release_samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["qc-harvest-count", "qc-formulate-fill"]);
    // A sample is a child unit of the product unit (custody derivation "sample").
    let sample = format!("{din}-S12341Aa");
    let r = app
        .post(
            "/api/batches/b-001/samples",
            json!({"planned": "qc-harvest-count", "parent": unit, "code": sample,
                   "expires_at": "2027-01-01T00:00:00.000000Z", "location": "qc-lab"}),
            &ana,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.get(&format!("/api/units/{unit}/trace"), &ana).await;
    assert_eq!(r.body["descendants"], json!([sample]), "{:?}", r.body);

    // Bad input: no unit, the wrong unit, an unknown unit, the wrong method, a number for a
    // qualitative test. Nothing is recorded.
    let base = json!({"test": "viability", "method": "flow-viability", "instrument": "facs-2", "sample": sample});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    for (body, field, needle) in [
        (with(json!({"value": 82.0})), "unit", "unit is missing"),
        (
            with(json!({"value": 8.2e5, "unit": "cells/mL"})),
            "unit",
            "does not match the specification's %",
        ),
        (
            with(json!({"value": 82.0, "unit": "pct"})),
            "unit",
            "unknown",
        ),
        (
            with(json!({"value": 82.0, "unit": "%", "method": "trypan-blue"})),
            "method",
            "flow-viability",
        ),
        (
            json!({"test": "sterility", "value": 1.0, "unit": "%", "method": "sterility", "instrument": "bact-1"}),
            "outcome",
            "not a number",
        ),
    ] {
        let r = app.post("/api/batches/b-001/results", body, &ana).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
        assert_eq!(r.body["error"]["field"], field, "{:?}", r.body);
        assert!(r.message().contains(needle), "{needle}: {}", r.message());
    }
    assert_eq!(app.count("qc.result.recorded"), 0);
    // Only QC analysts enter results.
    let op = app.login("op").await;
    let r = app
        .post(
            "/api/batches/b-001/results",
            with(json!({"value": 82.0, "unit": "%"})),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A QC analyst without the qualification for the method is refused, and it is recorded.
    let untrained = app.login("ana").await;
    let r = app
        .post(
            "/api/batches/b-001/results",
            with(json!({"value": 82.0, "unit": "%"})),
            &untrained,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "not_qualified", "{:?}", r.body);
    assert!(r.message().contains("qc-analytical"), "{}", r.message());
    // Pass.
    let r = app
        .post(
            "/api/batches/b-001/results",
            with(json!({"value": 82.0, "unit": "%"})),
            &ana,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["verdict"]["verdict"], "pass");
    // Fail: out of specification opens an investigation.
    let r = app
        .post(
            "/api/batches/b-001/results",
            with(json!({"value": 61.0, "unit": "%"})),
            &ana,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["verdict"]["verdict"], "fail");
    assert!(
        r.body["verdict"]["reason"]
            .as_str()
            .unwrap()
            .contains(">= 70 %")
    );
    let failed = r.body["seq"].as_u64().unwrap();
    let investigation = r.body["investigation"].as_str().unwrap().to_string();
    assert_eq!(investigation, format!("OOS-{failed}"));
    assert_eq!(app.count("qc.investigation.opened"), 1);
    let r = app.get("/api/batches/b-001/release-readiness", &ana).await;
    let codes = blocker_codes(&r);
    assert!(
        codes.contains(&"failed_result".to_string())
            && codes.contains(&"open_investigation".to_string()),
        "{codes:?}"
    );

    // A correction needs a reason and never overwrites: a new record supersedes the old.
    let r = app
        .post(
            &format!("/api/qc/results/{failed}/corrections"),
            json!({"value": 86.0, "unit": "%"}),
            &ana,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "reason");
    let r = app
        .post(
            &format!("/api/qc/results/{failed}/corrections"),
            json!({"value": 86.0, "unit": "%", "reason": "transcription error: 86 was typed as 61"}),
            &ana,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let corrected = r.body["seq"].as_u64().unwrap();
    let record = app.state.ledger.record(corrected).unwrap();
    assert_eq!(record.corrects, Some(failed));
    assert_eq!(record.event_type, "qc.result.corrected");
    let original = app.state.ledger.record(failed).unwrap();
    assert_eq!(
        original.payload_json()["value"]["value"],
        61.0,
        "the original stays"
    );
    let r = app
        .post(
            &format!("/api/qc/results/{failed}/corrections"),
            json!({"value": 87.0, "unit": "%", "reason": "again"}),
            &ana,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "a superseded result is not corrected twice"
    );
    let r = app.get("/api/batches/b-001/qc", &ana).await;
    let results = r.body["qc"]["results"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[1]["superseded_by"], corrected);

    // The investigation stays open until QA concludes it; analysts cannot.
    let path = format!("/api/qc/investigations/{investigation}/conclusion");
    let conclusion = json!({"conclusion": "invalidated", "summary": "transcription error, corrected with reason"});
    let r = app.post(&path, conclusion.clone(), &ana).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let qa = app.login("qa-ito").await;
    let r = app.post(&path, conclusion.clone(), &qa).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.post(&path, conclusion, &qa).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app.get("/api/batches/b-001/release-readiness", &qa).await;
    let codes = blocker_codes(&r);
    assert!(
        !codes
            .iter()
            .any(|c| c == "failed_result" || c == "open_investigation"),
        "{codes:?}"
    );
    let exceptions = r.body["exceptions"].to_string();
    assert!(exceptions.contains("transcription error"), "{exceptions}");
}

#[tokio::test(flavor = "multi_thread")]
async fn release_is_blocked_with_reasons_until_everything_is_in_then_signed_released_and_on_the_coa()
 {
    let app = Qc::new();
    let (unit, _) = registered_batch(&app, "b-002").await;
    let qa = app.login("qa-ito").await;

    let r = app.get("/api/batches/b-002/release-readiness", &qa).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["releasable"], false);
    let codes = blocker_codes(&r);
    assert_eq!(
        codes.iter().filter(|c| *c == "missing_result").count(),
        spec().tests().len()
    );
    assert!(codes.contains(&"batch_record_missing".to_string()));
    assert!(codes.contains(&"labels_not_printed".to_string()));
    let r = app
        .post(
            "/api/batches/b-002/release",
            json!({"password": PASSWORD, "user_id": "qa-ito"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "release_blocked");
    assert!(r.message().contains("no batch record"), "{}", r.message());
    assert_eq!(app.count("qc.release.decided"), 0);

    pass_all(&app, "b-002", &[]).await;
    app.batch_record("b-002", false).await;
    let op = app.login("op").await;
    let r = app
        .post(
            "/api/labels/print",
            json!({"batch": "b-002", "unit": unit, "copies": 2, "description": "PRIME CAR-T", "site": "cpc"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.get("/api/batches/b-002/release-readiness", &qa).await;
    assert_eq!(
        blocker_codes(&r),
        vec!["batch_not_completed", "labels_not_reconciled"],
        "{:?}",
        r.body
    );
    assert!(
        r.body["blockers"][1]["explanation"]
            .as_str()
            .unwrap()
            .contains("2 printed, 0 applied")
    );

    app.batch_record("b-002-rest", false).await; // another batch's record does not count
    let r = app
        .post(
            "/api/labels/apply",
            json!({"batch": "b-002", "unit": unit, "count": 2, "site": "cpc"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.state
        .append(
            vec![NewRecord::new(
                "batch/b-002",
                "batch.batch_completed",
                1,
                json!({"type": "batch_completed", "version": 1, "at": "2025-11-25T10:00:00Z"}),
                "op",
                "cpc",
            )],
            None,
        )
        .await
        .unwrap();
    let r = app.get("/api/batches/b-002/release-readiness", &qa).await;
    assert_eq!(r.body["releasable"], true, "{:?}", r.body);

    // An operator has no authority to release.
    let r = app
        .post(
            "/api/batches/b-002/release",
            json!({"password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A QA releaser without the qa-release qualification is refused.
    let new_qa = app.login("qa-new").await;
    let r = app
        .post(
            "/api/batches/b-002/release",
            json!({"password": PASSWORD, "user_id": "qa-new"}),
            &new_qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "not_qualified", "{:?}", r.body);
    // Release is an e-signature: the policy must be acknowledged, the password must match.
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    let r = app
        .post(
            "/api/batches/b-002/release",
            json!({"password": "wrong password!", "user_id": "qa-ito"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    let r = app.get("/api/batches/b-002/release-status", &qa).await;
    assert_eq!(r.body["release_status"]["status"], "not_released");
    let r = app
        .post(
            "/api/batches/b-002/release",
            json!({"password": PASSWORD, "user_id": "qa-ito"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["signature"]["signature"]["meaning"], "Released");
    assert_eq!(
        r.body["signature"]["signature"]["signer_name"],
        "Mariko Ito"
    );
    assert_eq!(r.body["release_status"]["status"], "released");
    let r = app.get("/api/batches/b-002/release-status", &qa).await;
    assert_eq!(r.body["permits_use"], true);
    let r = app
        .post(
            "/api/batches/b-002/release",
            json!({"password": PASSWORD}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "released once");

    let (status, pdf) = app.get_bytes("/api/batches/b-002/coa", &qa).await;
    assert_eq!(status, StatusCode::OK);
    let text = pdf_text(&pdf);
    for needle in [
        "Certificate of Analysis",
        "Batch: b-002",
        "prime-car-t@1",
        &unit,
        "Status: Released",
        "Mariko Ito (qa-ito)",
        "meaning: Released",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    for t in spec().tests() {
        assert!(
            text.contains(&format!("[{}]", t.id)),
            "{} missing in:\n{text}",
            t.id
        );
    }
    assert!(
        !text.contains("PENDING") && !text.contains("FAIL"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn release_at_risk_needs_the_physician_and_a_later_failing_sterility_raises_an_alert() {
    let app = Qc::new();
    let (unit, _) = registered_batch(&app, "b-003").await;
    pass_all(&app, "b-003", &["sterility"]).await;
    reconciled_labels(&app, "b-003", &unit).await;
    app.batch_record("b-003", true).await;
    let qa = app.login("qa-ito").await;
    app.post("/api/auth/esig-policy", json!({}), &qa).await;

    let r = app.get("/api/batches/b-003/release-readiness", &qa).await;
    assert_eq!(r.body["releasable"], false);
    assert_eq!(r.body["releasable_at_risk"], true, "{:?}", r.body);
    assert_eq!(r.body["pending_tests"], json!(["sterility"]));
    let r = app
        .post(
            "/api/batches/b-003/release",
            json!({"password": PASSWORD, "user_id": "qa-ito"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.message().contains("at risk"), "{}", r.message());

    let request = |tests: Value| {
        json!({"pending_tests": tests, "physician": "dr-yamada",
               "clinical_justification": "progressive disease after two lines; no alternative therapy available"})
    };
    let r = app
        .post(
            "/api/batches/b-003/release-at-risk",
            request(json!(["endotoxin"])),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "pending_tests");
    let mut short = request(json!(["sterility"]));
    short["clinical_justification"] = json!("urgent");
    let r = app
        .post("/api/batches/b-003/release-at-risk", short, &qa)
        .await;
    assert_eq!(r.body["error"]["field"], "clinical_justification");
    let r = app
        .post(
            "/api/batches/b-003/release-at-risk",
            request(json!(["sterility"])),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let request_seq = r.body["request"].as_u64().unwrap();

    let release =
        json!({"password": PASSWORD, "user_id": "qa-ito", "at_risk_request": request_seq});
    let r = app
        .post("/api/batches/b-003/release", release.clone(), &qa)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.message().contains("not acknowledged"), "{}", r.message());

    // The treating physician acknowledges with an e-signature at the hospital.
    let doc = app.login("dr-yamada").await;
    app.post("/api/auth/esig-policy", json!({}), &doc).await;
    let ack = format!("/api/batches/b-003/release-at-risk/{request_seq}/acknowledgement");
    let r = app
        .post(&ack, json!({"site": "hosp", "statement": "I accept the risk of infusing before the sterility result.", "password": PASSWORD, "user_id": "dr-yamada"}), &doc)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["signature"]["signature"]["meaning"], "Reviewed");

    let r = app.post("/api/batches/b-003/release", release, &qa).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["release_status"]["status"], "released_at_risk");
    assert_eq!(
        r.body["release_status"]["pending_tests"],
        json!(["sterility"])
    );

    // Day 14: sterility shows growth. The batch fails after release: alert and notifications.
    let ana = app.login("qc-sato").await;
    let r = app
        .post(
            "/api/batches/b-003/results",
            json!({"test": "sterility", "outcome": "growth", "method": "sterility", "instrument": "bact-alert-3"}),
            &ana,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["release_status"]["status"], "failed_after_release",
        "{:?}",
        r.body
    );
    assert_eq!(app.count("qc.alert.raised"), 1);
    assert_eq!(app.count("qc.notification.recorded"), 2);
    let r = app.get("/api/batches/b-003/release-status", &qa).await;
    assert_eq!(r.body["permits_use"], false);
    assert_eq!(
        r.body["release_status"]["failed_tests"],
        json!(["sterility"])
    );
    // The physician sees the notification at the hospital; QA sees the alert at the CPC.
    let r = app.get("/api/qc/alerts", &doc).await;
    let notes = r.body["notifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{:?}", r.body);
    assert_eq!(notes[0]["notification"]["to"], "dr-yamada");
    assert_eq!(notes[0]["notification"]["role"], "treating_physician");
    assert!(
        notes[0]["notification"]["message"]
            .as_str()
            .unwrap()
            .contains("b-003")
    );
    let r = app.get("/api/qc/alerts", &qa).await;
    assert_eq!(
        r.body["alerts"].as_array().unwrap().len(),
        1,
        "{:?}",
        r.body
    );

    let (_, pdf) = app.get_bytes("/api/batches/b-003/coa", &qa).await;
    let text = pdf_text(&pdf);
    for needle in [
        "FAILED AFTER RELEASE",
        "Pending at release: sterility",
        "no alternative therapy",
        "Kenji Mori (dr-yamada)",
        "growth - FAIL",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_temperature_excursion_blocks_release_until_qa_signs_its_assessment() {
    use cellops_cold::{
        ColdEvent, ExcursionEpisode, ExcursionId, ExcursionKind, ExcursionSource, StorageId,
    };
    let app = Qc::new();
    let (unit, _) = registered_batch(&app, "b-004").await;
    pass_all(&app, "b-004", &[]).await;
    reconciled_labels(&app, "b-004", &unit).await;
    app.batch_record("b-004", true).await;
    let qa = app.login("qa-ito").await;
    let r = app.get("/api/batches/b-004/release-readiness", &qa).await;
    assert_eq!(r.body["releasable"], true, "{:?}", r.body);

    // The storage tank warmed above its alarm limit with the bag inside.
    let start = Timestamp::from_unix_us(1_764_000_000_000_000).unwrap();
    let opened = ColdEvent::ExcursionOpened {
        source: ExcursionSource::Storage(StorageId::parse("ln2-tank-1").unwrap()),
        episode: ExcursionEpisode {
            excursion: ExcursionId::parse("exc-1").unwrap(),
            kind: ExcursionKind::Temperature,
            start,
            end: start.plus_us(12 * 60 * 1_000_000),
            temperature_c_max: Some(-140.0),
            reject_limit_exceeded: false,
        },
        units: vec![cellops_custody::UnitCode::parse(&unit).unwrap()],
    };
    let record = |e: &ColdEvent| {
        NewRecord::new(
            "storage/ln2-tank-1",
            e.type_name(),
            1,
            e.to_json_value(),
            "qa-ito",
            "cpc",
        )
    };
    app.state.append(vec![record(&opened)], None).await.unwrap();
    let r = app.get("/api/batches/b-004/release-readiness", &qa).await;
    assert_eq!(
        blocker_codes(&r),
        vec!["excursion_not_assessed"],
        "{:?}",
        r.body
    );
    assert!(
        r.body["blockers"][0]["explanation"]
            .as_str()
            .unwrap()
            .contains("-140")
    );

    // QA's assessment counts only once its deviation is closed on the e-signed assessment.
    let tank = ColdEvent::StorageConfigured {
        config: cellops_cold::StorageConfig {
            storage: StorageId::parse("ln2-tank-1").unwrap(),
            kind: cellops_cold::StorageKind::Ln2Vapour,
            site: SiteId::parse("cpc").unwrap(),
            racks: 1,
            boxes_per_rack: 1,
            slots_per_box: 10,
            rule: cellops_cold::AlarmRule {
                alarm_above_c: -150.0,
                delay_minutes: 5,
                reading_gap_minutes_max: 15,
            },
            stored_days_max: 3650,
        },
        by: cellops_domain::UserId::parse("qa-ito").unwrap(),
        at: start,
    };
    app.state.append(vec![record(&tank)], None).await.unwrap();
    let assess = json!({"decision": "accept",
        "justification": "12 min at -140 C stays within the product's stability data"});
    let r = app
        .post("/api/excursions/exc-1/assess", assess.clone(), &qa)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "deviation_state", "{:?}", r.body);
    let r = app
        .post(
            "/api/excursions/exc-1/investigate",
            json!({"findings": "tank lid left open during a fill; probe log reviewed"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.post("/api/excursions/exc-1/assess", assess, &qa).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let assessment_seq = r.body["seq"].as_u64().unwrap();
    let r = app.get("/api/batches/b-004/release-readiness", &qa).await;
    assert_eq!(blocker_codes(&r), vec!["excursion_not_assessed"]);
    assert!(
        r.body["blockers"][0]["explanation"]
            .as_str()
            .unwrap()
            .contains("deviation assessed"),
        "{:?}",
        r.body
    );
    // An e-signature alone does not close the deviation.
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    let r = app
        .post(
            "/api/signatures",
            json!({"seq": assessment_seq, "meaning": "Approved", "password": PASSWORD, "user_id": "qa-ito"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.get("/api/batches/b-004/release-readiness", &qa).await;
    assert_eq!(blocker_codes(&r), vec!["excursion_not_assessed"]);
    // Closing on the signed assessment needs no second password.
    let r = app
        .post("/api/excursions/exc-1/close", json!({}), &qa)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["decision"], "accept");
    let r = app.get("/api/batches/b-004/release-readiness", &qa).await;
    assert_eq!(r.body["releasable"], true, "{:?}", r.body);
    assert_eq!(r.body["exceptions"][0]["code"], "excursion_assessed");
}
