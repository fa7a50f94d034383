//! Training and qualification over HTTP: curriculum approval, a course from enrolment to
//! certificate, public verification, enforcement with recorded refusals, suspension after a
//! failed media fill, and the auditor's questions.

use crate::support::*;
use axum::http::StatusCode;
use cellops_domain::{Role, SiteId, Timestamp, UserId};
use cellops_ledger::{Backend, NewRecord};
use cellops_server::provision::{NewUser, add_user};
use cellops_server::routes::training::{TrainingModel, require_qualified, seed_demo_training};
use cellops_training::curriculum::CLINICAL_CULTURIST_TOML;
use serde_json::{Value, json};

const DAY_US: u64 = 86_400_000_000;

/// Adds users the core test app does not have: trainers at cpc (two, so that a trainer can
/// be a trainee) and a trainee operator.
pub(crate) fn add_training_users(app: &TestApp) {
    tokio::task::block_in_place(|| {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(9);
        for (id, name, roles) in [
            ("trainer", "Keiko Ono", vec![(Role::Trainer, "cpc")]),
            ("trainer2", "Goro Ota", vec![(Role::Trainer, "cpc")]),
            ("op2", "Yumi Suzuki", vec![(Role::Operator, "cpc")]),
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
        app.state.sync_blocking().unwrap();
    });
}

/// E-signs record `seq` as the session's user (policy acknowledged first).
pub(crate) async fn sign(
    app: &TestApp,
    session: &str,
    user: &str,
    seq: &Value,
    meaning: &str,
) -> u64 {
    app.post("/api/auth/esig-policy", json!({}), session).await;
    let r = app
        .post(
            "/api/signatures",
            json!({"seq": seq, "meaning": meaning, "password": PASSWORD, "user_id": user}),
            session,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["seq"].as_u64().unwrap()
}

/// Imports the shipped curriculum as `trainer` and has QA approve it.
pub(crate) async fn approved_curriculum(app: &TestApp, trainer: &str) {
    let r = app
        .post(
            "/api/training/curricula",
            json!({"site": "cpc", "toml": CLINICAL_CULTURIST_TOML}),
            trainer,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let qa = app.login("qa").await;
    sign(app, &qa, "qa", &r.body["records"][0]["seq"], "Approved").await;
}

/// Takes `trainee` through `course`: enrolment, every module, every assessment passed (or
/// the media fill failed when `fail_media_fill`), signatures, and the certificate when all
/// passed. Returns the certificate code, if issued.
pub(crate) async fn take_course(
    app: &TestApp,
    trainer: &str,
    trainer_id: &str,
    trainee: &str,
    course: &str,
    fail_media_fill: bool,
) -> Option<String> {
    let c = cellops_training::Curriculum::clinical_culturist();
    let course_def = c.course(course).unwrap();
    let r = app
        .post(
            "/api/training/enrolments",
            json!({"site": "cpc", "trainee": trainee, "curriculum": "clinical-culturist", "course": course}),
            trainer,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for m in &course_def.modules {
        let r = app
            .post(
                "/api/training/attendance",
                json!({"site": "cpc", "trainee": trainee, "course": course, "module": m.id}),
                trainer,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    for a in &course_def.assessments {
        let mut body =
            json!({"site": "cpc", "trainee": trainee, "course": course, "assessment": a.id});
        match a.kind {
            cellops_training::AssessmentKind::Written => body["score_percent"] = json!(95),
            cellops_training::AssessmentKind::Practical => body["passed"] = json!(true),
            cellops_training::AssessmentKind::MediaFill => {
                body["units_filled"] = json!(24);
                body["units_contaminated"] = json!(if fail_media_fill { 1 } else { 0 });
            }
        }
        let r = app.post("/api/training/assessments", body, trainer).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        if a.kind.needs_signature() {
            sign(
                app,
                trainer,
                trainer_id,
                &r.body["records"][0]["seq"],
                "Reviewed",
            )
            .await;
        }
    }
    let r = app
        .post(
            "/api/training/certificates",
            json!({"site": "cpc", "trainee": trainee, "course": course}),
            trainer,
        )
        .await;
    if fail_media_fill {
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
        assert!(
            r.message().contains("aseptic-media-fill (failed"),
            "{}",
            r.message()
        );
        return None;
    }
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    Some(r.body["code"].as_str().unwrap().to_string())
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn cpc() -> SiteId {
    SiteId::parse("cpc").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_curriculum_is_used_only_after_qa_approves_it_and_bad_ones_change_nothing() {
    let app = TestApp::new();
    add_training_users(&app);
    let trainer = app.login("trainer").await;
    let op = app.login("op").await;
    // Operators do not import curricula.
    let r = app
        .post(
            "/api/training/curricula",
            json!({"site": "cpc", "toml": CLINICAL_CULTURIST_TOML}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A cycle in the prerequisites is named; nothing is recorded.
    let cyclic = CLINICAL_CULTURIST_TOML.replacen(
        "prerequisites = [] # gmp",
        "prerequisites = [\"basic-aseptic-technique\"]",
        1,
    );
    let r = app
        .post(
            "/api/training/curricula",
            json!({"site": "cpc", "toml": cyclic}),
            &trainer,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(r.message().contains("cycle"), "{}", r.message());
    assert_eq!(app.count("training.curriculum_imported"), 0);

    let r = app
        .post(
            "/api/training/curricula",
            json!({"site": "cpc", "toml": CLINICAL_CULTURIST_TOML}),
            &trainer,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let seq = r.body["records"][0]["seq"].clone();
    // The same version again is a conflict.
    let again = app
        .post(
            "/api/training/curricula",
            json!({"site": "cpc", "toml": CLINICAL_CULTURIST_TOML}),
            &trainer,
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // Not approved yet: no enrolment.
    let enrol = json!({"site": "cpc", "trainee": "op", "curriculum": "clinical-culturist", "course": "basic-gmp-documentation"});
    let r = app
        .post("/api/training/enrolments", enrol.clone(), &trainer)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.message().contains("Approved"), "{}", r.message());
    // The importer's own approval does not count.
    sign(&app, &trainer, "trainer", &seq, "Reviewed").await;
    let r = app
        .post("/api/training/enrolments", enrol.clone(), &trainer)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let qa = app.login("qa").await;
    sign(&app, &qa, "qa", &seq, "Approved").await;
    let r = app.get("/api/training/curricula", &op).await;
    assert_eq!(r.body["curricula"][0]["approved"]["by"], "qa");
    let r = app.post("/api/training/enrolments", enrol, &trainer).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Prerequisites are checked.
    let r = app
        .post(
            "/api/training/enrolments",
            json!({"site": "cpc", "trainee": "op", "curriculum": "clinical-culturist", "course": "basic-aseptic-technique"}),
            &trainer,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.message().contains("basic-gmp-documentation"),
        "{}",
        r.message()
    );
    let r = app
        .get("/api/training/curricula/clinical-culturist", &op)
        .await;
    assert_eq!(
        r.body["versions"][0]["curriculum"]["courses"]
            .as_array()
            .unwrap()
            .len(),
        13
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_course_certifies_and_anyone_can_verify_the_certificate() {
    let app = TestApp::new();
    add_training_users(&app);
    let trainer = app.login("trainer").await;
    approved_curriculum(&app, &trainer).await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-gmp-documentation",
        false,
    )
    .await;
    // Certifying before the practical is signed names what is missing.
    let r = app
        .post(
            "/api/training/enrolments",
            json!({"site": "cpc", "trainee": "op", "curriculum": "clinical-culturist", "course": "basic-aseptic-technique"}),
            &trainer,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let code = take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-aseptic-technique",
        false,
    )
    .await
    .unwrap();

    // Public verification: no login, the record's seq and hash.
    let r = app
        .call(
            "GET",
            &format!("/api/training/certificates/{code}/verify"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["holder"], "op");
    assert_eq!(r.body["holder_name"], "Hiroshi Tanaka");
    assert_eq!(
        r.body["grants"][0]["qualification"],
        "cpc-aseptic-processing"
    );
    assert_eq!(r.body["grants"][0]["status_now"]["status"], "qualified");
    let seq = r.body["ledger"]["seq"].as_u64().unwrap();
    let record = app.state.ledger.record(seq).unwrap();
    assert_eq!(record.event_type, "training.certified");
    assert_eq!(r.body["ledger"]["hash"], hex::encode(record.hash));
    // Lower case and misread letters still find it; an unknown code is not valid.
    let r = app
        .call(
            "GET",
            &format!("/api/training/certificates/{}/verify", code.to_lowercase()),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .call(
            "GET",
            "/api/training/certificates/CC-0000-0000-0000/verify",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message().contains("does not exist"), "{}", r.message());
    let r = app
        .call(
            "GET",
            "/api/training/certificates/nonsense/verify",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The PDF, for the holder; not for another operator.
    let op = app.login("op").await;
    let r = app
        .get(&format!("/api/training/certificates/{code}/pdf"), &op)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap();
    assert!(
        text.starts_with("%PDF-1.4") && text.contains(&code),
        "{text}"
    );
    let op2 = app.login("op2").await;
    let r = app
        .get(&format!("/api/training/certificates/{code}/pdf"), &op2)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The person view.
    let r = app.get("/api/training/people/op", &op).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["certificates"].as_array().unwrap().len(), 2);
    let r = app.get("/api/training/people/op", &op2).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_assesses_or_certifies_themself() {
    let app = TestApp::new();
    add_training_users(&app);
    let trainer = app.login("trainer").await;
    approved_curriculum(&app, &trainer).await;
    let r = app
        .post(
            "/api/training/enrolments",
            json!({"site": "cpc", "trainee": "trainer", "curriculum": "clinical-culturist", "course": "basic-gmp-documentation"}),
            &trainer,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let before = app.event_types().len();
    let r = app
        .post(
            "/api/training/assessments",
            json!({"site": "cpc", "trainee": "trainer", "course": "basic-gmp-documentation", "assessment": "gmp-written", "score_percent": 100}),
            &trainer,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "assessor");
    assert!(r.message().contains("themself"), "{}", r.message());
    assert_eq!(app.event_types().len(), before, "nothing recorded");
    // Another trainer may.
    let trainer2 = app.login("trainer2").await;
    let code = take_course(
        &app,
        &trainer2,
        "trainer2",
        "trainer",
        "basic-gmp-documentation",
        false,
    )
    .await;
    assert!(code.is_some());
    // A result in the wrong form names the field.
    let r = app
        .post(
            "/api/training/assessments",
            json!({"site": "cpc", "trainee": "op", "course": "basic-gmp-documentation", "assessment": "gmp-written", "passed": true, "score_percent": 1}),
            &trainer,
        )
        .await;
    assert_eq!(r.body["error"]["field"], "result");
}

#[tokio::test(flavor = "multi_thread")]
async fn gmp_steps_are_refused_without_the_qualification_at_that_time_and_the_refusal_is_recorded()
{
    let app = TestApp::new();
    add_training_users(&app);
    let trainer = app.login("trainer").await;
    approved_curriculum(&app, &trainer).await;
    let now = app.state.clock.now();
    let refused = require_qualified(
        &app.state,
        &user("op"),
        &cpc(),
        "qualification:cpc-aseptic-processing",
        now,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code, "not_qualified");
    assert!(
        refused.message.contains("cpc-aseptic-processing"),
        "{}",
        refused.message
    );
    assert_eq!(app.count("qualification.refused"), 1);

    take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-gmp-documentation",
        false,
    )
    .await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-aseptic-technique",
        false,
    )
    .await;
    let now = app.state.clock.now();
    require_qualified(
        &app.state,
        &user("op"),
        &cpc(),
        "qualification:cpc-aseptic-processing",
        now,
    )
    .await
    .unwrap();
    require_qualified(&app.state, &user("op"), &cpc(), "custody.scan", now)
        .await
        .unwrap();
    // Before the grant, the same person was not qualified (time of the action counts).
    let earlier = Timestamp::from_unix_us(now.unix_us() - 3_600_000_000).unwrap();
    assert!(
        require_qualified(&app.state, &user("op"), &cpc(), "custody.scan", earlier)
            .await
            .is_err()
    );

    // An action missing from the matrix is a configuration error, never allowed.
    let e = require_qualified(&app.state, &user("op"), &cpc(), "custody.teleport", now)
        .await
        .unwrap_err();
    assert_eq!(e.code, "qualification_not_configured");
    assert!(e.message.contains("custody.teleport"), "{}", e.message);

    // A year and a day later the aseptic qualification (365 days) has expired; the message
    // names it and its expiry date.
    app.clock.advance_us(366 * DAY_US);
    let later = app.state.clock.now();
    let e = require_qualified(
        &app.state,
        &user("op"),
        &cpc(),
        "qualification:cpc-aseptic-processing",
        later,
    )
    .await
    .unwrap_err();
    let expiry = app.state.read_model(|m: &mut TrainingModel| {
        match m.state.status(&user("op"), "cpc-aseptic-processing", later) {
            cellops_training::QualificationStatus::Expired { expired_at, .. } => expired_at,
            other => panic!("{other:?}"),
        }
    });
    assert!(
        e.message.contains("expired on") && e.message.contains(&expiry.to_string()),
        "{}",
        e.message
    );
    // custody-handling is valid for two years and still held.
    require_qualified(&app.state, &user("op"), &cpc(), "custody.scan", later)
        .await
        .unwrap();

    // Refusals are in the ledger and listed for the site.
    let refusals: Vec<Value> = app
        .state
        .ledger
        .read(|b| b.records(1, 10_000))
        .unwrap()
        .into_iter()
        .filter(|r| r.event_type == "qualification.refused")
        .map(|r| r.payload_json())
        .collect();
    assert_eq!(refusals.len(), 4);
    assert_eq!(refusals[3]["reason"], "expired");
    assert_eq!(refusals[3]["qualification"], "cpc-aseptic-processing");
    assert_eq!(refusals[3]["user"], "op");
    assert_eq!(refusals[2]["reason"], "not_configured");
    let auditor = app.login("auditor").await;
    let r = app.get("/api/training/refusals?site=cpc", &auditor).await;
    assert_eq!(r.body["refusals"].as_array().unwrap().len(), 4);
    // The read-only check records nothing.
    let op = app.login("op").await;
    let r = app
        .get(
            "/api/training/check?site=cpc&user=op&action=qualification:cpc-aseptic-processing",
            &op,
        )
        .await;
    assert_eq!(r.body["qualified"], false);
    assert_eq!(r.body["reason"], "expired");
    assert_eq!(app.count("qualification.refused"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_media_fill_suspends_and_only_a_later_pass_reinstates() {
    let app = TestApp::new();
    add_training_users(&app);
    let trainer = app.login("trainer").await;
    approved_curriculum(&app, &trainer).await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-gmp-documentation",
        false,
    )
    .await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-aseptic-technique",
        false,
    )
    .await;
    app.clock.advance_us(300 * DAY_US);
    let trainer = app.login("trainer").await;
    // Requalification: enrol again, fail the media fill.
    let r = app
        .post(
            "/api/training/enrolments",
            json!({"site": "cpc", "trainee": "op", "curriculum": "clinical-culturist", "course": "basic-aseptic-technique"}),
            &trainer,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let fill = |contaminated: u32| json!({"site": "cpc", "trainee": "op", "course": "basic-aseptic-technique", "assessment": "aseptic-media-fill", "units_filled": 24, "units_contaminated": contaminated});
    let r = app
        .post("/api/training/assessments", fill(2), &trainer)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["records"][1]["event_type"], "training.suspended");
    let now = app.state.clock.now();
    let e = require_qualified(
        &app.state,
        &user("op"),
        &cpc(),
        "qualification:cpc-aseptic-processing",
        now,
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("suspended"), "{}", e.message);
    // Reinstatement needs a later passing, signed media fill.
    let qa = app.login("qa").await;
    let reinstate = json!({"site": "cpc", "user": "op", "qualification": "cpc-aseptic-processing", "reason": "retrained"});
    let r = app
        .post("/api/training/reinstatements", reinstate.clone(), &qa)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(
        r.message().contains("aseptic-media-fill"),
        "{}",
        r.message()
    );
    let r = app
        .post("/api/training/assessments", fill(0), &trainer)
        .await;
    let seq = r.body["records"][0]["seq"].clone();
    let r = app
        .post("/api/training/reinstatements", reinstate.clone(), &qa)
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unsigned pass does not count"
    );
    sign(&app, &trainer, "trainer", &seq, "Reviewed").await;
    let r = app
        .post("/api/training/reinstatements", reinstate.clone(), &qa)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let now = app.state.clock.now();
    require_qualified(
        &app.state,
        &user("op"),
        &cpc(),
        "qualification:cpc-aseptic-processing",
        now,
    )
    .await
    .unwrap();
    // Manual suspension needs a reason, and an operator may not suspend.
    let r = app
        .post("/api/training/suspensions", json!({"site": "cpc", "user": "op", "qualification": "cpc-aseptic-processing", "reason": " "}), &qa)
        .await;
    assert_eq!(r.body["error"]["field"], "reason");
    let op2 = app.login("op2").await;
    let r = app
        .post("/api/training/suspensions", json!({"site": "cpc", "user": "op", "qualification": "cpc-aseptic-processing", "reason": "x"}), &op2)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Requalification by the requalify_with assessments renews the expiry.
    let r = app
        .post(
            "/api/training/certificates",
            json!({"site": "cpc", "trainee": "op", "course": "basic-aseptic-technique"}),
            &trainer,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the practical is still missing"
    );
    assert!(r.message().contains("aseptic-practical"), "{}", r.message());
    let r = app
        .post("/api/training/assessments", json!({"site": "cpc", "trainee": "op", "course": "basic-aseptic-technique", "assessment": "aseptic-practical", "passed": true}), &trainer)
        .await;
    sign(
        &app,
        &trainer,
        "trainer",
        &r.body["records"][0]["seq"],
        "Reviewed",
    )
    .await;
    let r = app
        .post(
            "/api/training/certificates",
            json!({"site": "cpc", "trainee": "op", "course": "basic-aseptic-technique"}),
            &trainer,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["records"][0]["payload"]["requalification"], true);
    app.clock.advance_us(100 * DAY_US);
    let now = app.state.clock.now();
    require_qualified(
        &app.state,
        &user("op"),
        &cpc(),
        "qualification:cpc-aseptic-processing",
        now,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auditor_asks_who_was_qualified_and_whether_a_batch_was_done_by_qualified_people() {
    let app = TestApp::new();
    add_training_users(&app);
    let trainer = app.login("trainer").await;
    approved_curriculum(&app, &trainer).await;
    let before = app.state.clock.now();
    app.clock.advance_us(DAY_US);
    let trainer = app.login("trainer").await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-gmp-documentation",
        false,
    )
    .await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-aseptic-technique",
        false,
    )
    .await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op2",
        "basic-gmp-documentation",
        false,
    )
    .await;
    let after = app.state.clock.now();
    let auditor = app.login("auditor").await;
    let q = |at: Timestamp| {
        format!(
            "/api/training/qualified?site=cpc&action=qualification:cpc-aseptic-processing&at={at}"
        )
    };
    let r = app.get(&q(before), &auditor).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["qualified"].as_array().unwrap().len(), 0);
    let r = app.get(&q(after), &auditor).await;
    assert_eq!(r.body["qualified"][0]["user"], "op");
    assert_eq!(r.body["qualified"].as_array().unwrap().len(), 1);
    let r = app
        .get(
            &format!("/api/training/qualified?site=cpc&action=custody.scan&at={after}"),
            &auditor,
        )
        .await;
    assert_eq!(r.body["qualification"], "custody-handling");
    assert_eq!(r.body["qualified"].as_array().unwrap().len(), 2);

    // Batch records naming performer and qualification (or action).
    let step = |performer: &str, qualification: &str, at: Timestamp| {
        NewRecord::new(
            "batch/b-1",
            "note.recorded",
            1,
            json!({"text": "step", "performer": performer, "qualification": qualification, "at": at}),
            performer,
            "cpc",
        )
    };
    app.state
        .append(vec![step("op", "cpc-aseptic-processing", after)], None)
        .await
        .unwrap();
    let check = || {
        app.get(
            "/api/training/batch-check?site=cpc&stream=batch/b-1",
            &auditor,
        )
    };
    let r = check().await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["all_qualified"], true);
    // op2 lacks the aseptic qualification; op did it before being qualified.
    app.state
        .append(
            vec![
                step("op2", "cpc-aseptic-processing", after),
                step("op", "cpc-aseptic-processing", before),
            ],
            None,
        )
        .await
        .unwrap();
    let r = check().await;
    assert_eq!(r.body["all_qualified"], false);
    let steps = r.body["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[1]["qualified"], false);
    assert!(steps[1]["problem"].as_str().unwrap().contains("op2"));
    assert_eq!(steps[2]["qualified"], false);
    // Operators do not audit.
    let op = app.login("op").await;
    let r = app
        .get("/api/training/batch-check?site=cpc&stream=batch/b-1", &op)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_training_matrix_shows_people_by_qualification_with_expiry_as_json_and_csv() {
    let app = TestApp::new();
    add_training_users(&app);
    let trainer = app.login("trainer").await;
    approved_curriculum(&app, &trainer).await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-gmp-documentation",
        false,
    )
    .await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-aseptic-technique",
        false,
    )
    .await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op2",
        "basic-gmp-documentation",
        false,
    )
    .await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op2",
        "basic-aseptic-technique",
        true,
    )
    .await;
    let admin = app.login("admin").await;
    let r = app.get("/api/training/matrix?site=cpc", &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let quals: Vec<&str> = r.body["qualifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q.as_str().unwrap())
        .collect();
    assert!(
        quals.contains(&"custody-handling") && quals.contains(&"qa-release"),
        "{quals:?}"
    );
    let row = |id: &str| {
        r.body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["user"] == id)
            .cloned()
            .unwrap()
    };
    let cell = |row: &Value, q: &str| {
        row["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["qualification"] == q)
            .cloned()
            .unwrap()
    };
    assert_eq!(cell(&row("op2"), "custody-handling")["status"], "qualified");
    assert_eq!(cell(&row("admin"), "custody-handling")["status"], "none");
    assert!(
        r.body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["user"] != "nurse"),
        "people of the site only"
    );
    // Recipe qualifications held by people of the site are columns too.
    assert!(quals.contains(&"cpc-aseptic-processing"), "{quals:?}");
    assert_eq!(
        cell(&row("op"), "cpc-aseptic-processing")["status"],
        "qualified"
    );
    assert_eq!(
        cell(&row("op2"), "cpc-aseptic-processing")["status"],
        "none"
    );
    // 340 days later the aseptic qualification (365 days) expires within 30 days.
    app.clock.advance_us(340 * DAY_US);
    let admin = app.login("admin").await;
    let r = app
        .get("/api/training/expiring?site=cpc&days=30", &admin)
        .await;
    let list = r.body["expiring"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["qualification"], "cpc-aseptic-processing");
    assert_eq!(list[0]["days_left"], 25);
    // 720 days after training, custody-handling (730 days) expires within 30 days; the
    // aseptic qualification has expired and is no longer listed.
    app.clock.advance_us(380 * DAY_US);
    let admin = app.login("admin").await;
    let r = app
        .get("/api/training/expiring?site=cpc&days=30", &admin)
        .await;
    let list = r.body["expiring"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["qualification"], "custody-handling");
    let r = app.get("/api/training/matrix?site=cpc", &admin).await;
    assert_eq!(
        cell(&row("op"), "custody-handling")["status"],
        "qualified",
        "the earlier reply"
    );
    let op_row = r.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["user"] == "op")
        .cloned()
        .unwrap();
    assert_eq!(cell(&op_row, "custody-handling")["status"], "expiring");
    assert_eq!(cell(&op_row, "cpc-aseptic-processing")["status"], "expired");
    let csv = app
        .get("/api/training/matrix?site=cpc&format=csv", &admin)
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = csv.body.as_str().unwrap().to_string();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("user,name,"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("op,Hiroshi Tanaka,")),
        "{text}"
    );
    let bad = app
        .get("/api/training/matrix?site=cpc&format=xml", &admin)
        .await;
    assert_eq!(bad.body["error"]["field"], "format");
    // Site scoping: no role at hosp, no matrix of hosp.
    let op = app.login("op").await;
    let r = app.get("/api/training/matrix?site=hosp", &op).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_training_qualifies_the_demo_people_for_their_roles_except_one_operator() {
    let app = TestApp::new();
    let seeded = tokio::task::block_in_place(|| {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
        let now = app.state.clock.now();
        let n = seed_demo_training(&app.state.ledger, &mut rng, now).unwrap();
        let again = seed_demo_training(&app.state.ledger, &mut rng, now).unwrap();
        app.state.sync_blocking().unwrap();
        (n, again)
    });
    assert!(seeded.0 > 100, "{seeded:?}");
    assert_eq!(seeded.1, 0, "seeding twice adds nothing");
    let now = app.state.clock.now();
    let kyoto = SiteId::parse("cpc-kyoto").unwrap();
    let hosp = SiteId::parse("hosp-kyoto").unwrap();
    let checks: &[(&str, &SiteId, &str, bool)] = &[
        (
            "op-tanaka",
            &kyoto,
            "qualification:cpc-aseptic-processing",
            true,
        ),
        (
            "op-tanaka",
            &kyoto,
            "qualification:cpc-genome-editing",
            true,
        ),
        (
            "op-tanaka",
            &kyoto,
            "qualification:cpc-viral-vector-handling",
            true,
        ),
        (
            "op-suzuki",
            &kyoto,
            "qualification:cpc-aseptic-processing",
            false,
        ),
        (
            "op-suzuki",
            &kyoto,
            "qualification:cpc-device-operation",
            true,
        ),
        ("op-suzuki", &kyoto, "qualification:cpc-receipt", true),
        ("ns-kato", &hosp, "bedside.verify", true),
        ("ns-mori", &hosp, "bedside.verify", true),
        ("ns-mori", &hosp, "infusion.record", true),
        ("dr-yamada", &hosp, "collection.apheresis", true),
        ("qc-sato", &kyoto, "qc.result.sterility", true),
        ("qc-sato", &kyoto, "qc.result.viability", true),
        ("qa-ito", &kyoto, "release.sign", true),
        ("courier-abe", &kyoto, "shipment.pack", true),
        ("courier-abe", &hosp, "custody.handoff", true),
        ("ns-kato", &hosp, "storage.putaway", true),
        ("op-tanaka", &kyoto, "release.sign", false),
    ];
    for (who, site, action, expected) in checks {
        let got = app.state.read_model(|m: &mut TrainingModel| {
            cellops_training::check_action(&m.state, &m.matrix, &user(who), site, action, now)
                .is_ok()
        });
        assert_eq!(got, *expected, "{who} {action} at {site}");
    }
    // The courier's logistics qualification is about to expire (amber in the matrix).
    let status = app.state.read_model(|m: &mut TrainingModel| {
        m.state
            .status(&user("courier-abe"), "logistics-shipping", now)
    });
    match status {
        cellops_training::QualificationStatus::Qualified { expires_at, .. } => {
            assert!(expires_at.unix_us() - now.unix_us() < 30 * DAY_US as i64)
        }
        other => panic!("{other:?}"),
    }
    // The bedside check of cellops-custody uses the same model.
    let bedside_ok = app.state.read_model(|m: &mut TrainingModel| {
        use cellops_custody::BedsideQualification;
        (
            m.bedside().is_qualified(&user("ns-kato"), &hosp, now),
            m.bedside().is_qualified(&user("op-tanaka"), &hosp, now),
        )
    });
    assert_eq!(bedside_ok, (true, false));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_staffing_check_finds_a_qualified_person_for_each_planned_step_or_says_none() {
    let app = TestApp::new();
    add_training_users(&app);
    let trainer = app.login("trainer").await;
    approved_curriculum(&app, &trainer).await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-gmp-documentation",
        false,
    )
    .await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op",
        "basic-aseptic-technique",
        false,
    )
    .await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op2",
        "basic-gmp-documentation",
        false,
    )
    .await;
    let now = app.state.clock.now();
    let in_400_days = now.plus_us(400 * DAY_US as i64);
    let admin = app.login("admin").await;
    let plan = json!({"site": "cpc", "steps": [
        {"step": "seed", "action": "qualification:cpc-aseptic-processing", "at": now},
        {"step": "scan", "action": "custody.scan", "at": now},
        {"step": "harvest", "action": "qualification:cpc-aseptic-processing", "at": in_400_days},
        {"step": "edit", "action": "qualification:cpc-genome-editing", "at": now},
    ]});
    let r = app.post("/api/training/staffing", plan, &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["all_staffed"], false);
    let steps = r.body["steps"].as_array().unwrap();
    assert_eq!(steps[0]["qualified_people"], json!(["op"]));
    assert_eq!(steps[1]["qualified_people"], json!(["op", "op2"]));
    assert_eq!(steps[2]["staffed"], false, "expired by then");
    assert_eq!(steps[3]["staffed"], false);
    let bad = json!({"site": "cpc", "steps": [{"step": "x", "action": "no.such", "at": now}]});
    let r = app.post("/api/training/staffing", bad, &admin).await;
    assert_eq!(r.body["error"]["field"], "steps[0].action");
}
