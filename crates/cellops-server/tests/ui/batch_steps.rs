//! The operator's batch actions in the browser: start the due step (recording material
//! lots where the recipe asks), confirm it with the e-signature, enter the sampling
//! step's results (a value that is not a number refused at its parameter, the others
//! kept).

use crate::browser::Browser;
use crate::screens::{check_page, english_only_texts};
use crate::support::{PASSWORD, TestApp};
use crate::{Served, serve};
use axum::http::StatusCode;
use cellops_domain::Clock;
use serde_json::json;

/// Courses granting every qualification the PRIME CAR-T recipe's steps declare.
const PRIME_COURSES: &[&str] = &[
    "basic-gmp-documentation",
    "basic-cell-culture-qc",
    "adv-automated-culture-device",
    "adv-viral-vector",
    "adv-cryopreservation-transport",
];

pub(crate) fn trained_for_prime(app: &TestApp) {
    tokio::task::block_in_place(|| {
        let trainee = cellops_training::demo::DemoTrainee {
            user: "op",
            courses: PRIME_COURSES,
            failed_media_fill: &[],
            days_ago: 10,
        };
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(13);
        cellops_server::routes::training::seed_training(
            &app.state.ledger,
            &mut rng,
            app.clock.now(),
            &[trainee],
        )
        .unwrap();
        app.state.sync_blocking().unwrap();
    });
}

/// The shipped PRIME CAR-T recipe approved by QA, and batch `b-1` started by `op`.
pub(crate) async fn started_batch(app: &TestApp) {
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
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc", "product": "prime-car-t", "starting_unit": "A999026000002-S1234100",
                   "batch": "b-1", "device": "prodigy-7"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

async fn attr(b: &Browser, css: &str, name: &str) -> String {
    b.find(css)
        .await
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn value(b: &Browser, css: &str) -> String {
    b.find(css)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_starts_steps_records_lots_and_enters_sample_results_on_the_batch_view() {
    let Served { app, base } = serve().await;
    trained_for_prime(&app);
    started_batch(&app).await;
    let b = Browser::start(&base).await;
    b.login("op").await;
    b.goto("/ui/batch?batch=b-1").await;
    // The first step is due: started from the page, then confirmed with the e-signature.
    assert!(b.text("#start-title").await.contains("Receive"));
    assert_eq!(
        attr(&b, "#batch-due", "data-step").await,
        "receive-apheresis"
    );
    assert!(!b.exists_now("#batch-in-progress").await);
    b.click_nav("#start-submit").await;
    assert!(b.text("#flash-notice").await.contains("started"));
    assert_eq!(app.count("batch.step_started"), 1);
    // While it is in progress the facts say so, and the step due next is the one after it.
    assert_eq!(
        attr(&b, "#batch-in-progress", "data-step").await,
        "receive-apheresis"
    );
    assert_eq!(attr(&b, "#batch-due", "data-step").await, "receipt-count");
    assert!(
        b.text("#batch-due")
            .await
            .contains("Starting-material cell count")
    );
    let signed = app.count("esig.signed");
    b.fill("#c-password", PASSWORD).await;
    b.click_nav("#confirm-submit").await;
    assert_eq!(app.count("esig.signed"), signed + 1);
    // The receipt count (sampling) is due: started, then its results entered.
    b.click_nav("#start-submit").await;
    let form = b.text("#results-form").await;
    assert!(
        form.contains("viability, %") && form.contains("≥ 80") && form.contains("≥ 5.0 × 10⁸"),
        "{form}"
    );
    check_page(&b, "batch-results").await;
    // In Japanese the forms speak Japanese.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #results-form").await;
    assert!(b.text("#results-form").await.contains("生存率（%）"));
    // The approved recipe's own names (`.recipe-text`, English in the shipped recipes) are
    // the controlled document's words and are left out.
    let main = b
        .js(
            "const m = document.querySelector('main').cloneNode(true);
             m.querySelectorAll('.recipe-text').forEach(e => e.remove());
             return m.textContent;",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    for english in english_only_texts() {
        assert!(
            !main.contains(&english),
            "English {english:?} on the batch view's results form"
        );
    }
    b.find("#lang-select option[value='en']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='en'] #results-form").await;
    b.fill("input[data-parameter='viability_percent']", "high")
        .await;
    b.fill("input[data-parameter='cd3_total_viable_cells']", "2.0e9")
        .await;
    b.click_nav("#results-submit").await;
    let err = b.text("#results-form .field-error").await;
    assert!(err.contains("not a number"), "{err}");
    assert_eq!(
        value(&b, "input[data-parameter='cd3_total_viable_cells']").await,
        "2.0e9"
    );
    assert_eq!(app.count("batch.sample_results_recorded"), 0);
    b.fill("input[data-parameter='viability_percent']", "92.5")
        .await;
    b.click_nav("#results-submit").await;
    assert!(
        b.text("#flash-notice")
            .await
            .contains("results are recorded"),
        "{}",
        b.text("main").await
    );
    assert_eq!(app.count("batch.sample_results_recorded"), 1);
    let op = app.login("op").await;
    let records = app.get("/api/ledger/records?stream=batch/b-1", &op).await;
    let results = records.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "batch.sample_results_recorded")
        .unwrap()["payload"]["results"]
        .clone();
    let values: Vec<(String, f64)> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["parameter"].as_str().unwrap().to_string(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        values,
        vec![
            ("cd3_total_viable_cells".to_string(), 2.0e9),
            ("viability_percent".to_string(), 92.5)
        ]
    );
    // Installing the kit needs three lots: one missing is refused by the batch API with
    // the typed lots kept; all three start the step.
    let lots = [
        ("tubing-set", "T-0042"),
        ("cd4-cd8-microbeads", "MB-7"),
        ("culture-medium", "CM-11"),
    ];
    for (material, lot) in &lots[..2] {
        b.fill(&format!("input[data-material='{material}']"), lot)
            .await;
    }
    b.click_nav("#start-submit").await;
    assert!(
        b.exists_now("#start-error").await,
        "{}",
        b.text("main").await
    );
    assert_eq!(
        value(&b, "input[data-material='tubing-set']").await,
        "T-0042"
    );
    let started = app.count("batch.step_started");
    let (material, lot) = lots[2];
    b.fill(&format!("input[data-material='{material}']"), lot)
        .await;
    b.click_nav("#start-submit").await;
    assert!(b.text("#flash-notice").await.contains("started"));
    assert_eq!(app.count("batch.step_started"), started + 1);
}

/// A simulated PRIME CAR-T batch `b-2` run by the demo operator up to its harvest decision
/// inside the decision window: earlier decisions (up to day 7) evaluated through the API.
async fn simulated_batch_at_the_harvest_decision(app: &TestApp) {
    let op = app.login("op").await;
    let qa = app.login("qa").await;
    app.approved_recipe(
        "cpc",
        "prime-car-t.toml",
        "prime-car-t",
        &op,
        (&qa, "qa", PASSWORD),
    )
    .await;
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc", "product": "prime-car-t", "starting_unit": "A999026000003-S1234100",
                   "batch": "b-2", "simulation": {"seed": 5, "sample_period_s": 3600}}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for _ in 0..10 {
        let r = app
            .post(
                "/api/batches/b-2/simulate",
                json!({"to_completion": true, "password": PASSWORD, "user_id": "op",
                       "stop_at": "harvest-decision"}),
                &op,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["stopped"], "step_due", "{:?}", r.body);
        let r = app.get("/api/ledger/records?stream=batch/b-2", &op).await;
        let last = r.body["records"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|r| r["type"] == "batch.decision_evaluated")
            .map(|r| r["payload"]["elapsed_hours"].as_f64().unwrap());
        // Decisions come once a day. After the one on day 7 the next is in the window with
        // three daily counts behind it, enough for the twin to fit and predict the dose day.
        if last.is_some_and(|h| h >= 7.0 * 24.0) {
            return;
        }
        let r = app
            .post(
                "/api/batches/b-2/steps/harvest-decision/evaluate",
                json!({}),
                &op,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    panic!("the harvest decision never came into its window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_culturist_signs_the_harvest_decision_with_the_twins_prediction_on_the_batch_view() {
    let Served { app, base } = serve().await;
    trained_for_prime(&app);
    simulated_batch_at_the_harvest_decision(&app).await;
    let decisions = app.count("batch.decision_evaluated");
    let b = Browser::start(&base).await;
    b.login("op").await;
    b.goto("/ui/batch?batch=b-2").await;
    // The decision is due (not a step to start); the dialog shows the twin's value now,
    // the target, the predicted dose day and the culture day in the window.
    assert_eq!(
        attr(&b, "#batch-due", "data-step").await,
        "harvest-decision"
    );
    assert!(!b.exists_now("#start-form").await);
    let form = b.text("#decision-form").await;
    assert!(
        form.contains("Harvest when the predicted dose is reached"),
        "{form}"
    );
    assert!(
        b.text("#decision-target").await.contains("3.0 × 10⁸"),
        "{form}"
    );
    let value = b.text("#decision-value").await;
    assert!(
        value.contains("× 10") && value.contains("predicted CAR+ cells at harvest"),
        "{value}"
    );
    let dose_day: f64 = b
        .text("#decision-dose-day")
        .await
        .parse()
        .unwrap_or_else(|_| panic!("no predicted dose day: {form}"));
    assert!((1.0..=14.0).contains(&dose_day), "{dose_day}");
    let day: f64 = b
        .text("#decision-day")
        .await
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((7.0..12.0).contains(&day), "culture day {day}");
    let outcome = attr(&b, "#decision-form", "data-outcome").await;
    assert!(
        ["target_met", "target_not_met"].contains(&outcome.as_str()),
        "{outcome}"
    );
    check_page(&b, "batch-decision").await;
    // In Japanese the dialog speaks Japanese.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #decision-form").await;
    let main = b
        .js(
            "const m = document.querySelector('main').cloneNode(true);
             m.querySelectorAll('.recipe-text').forEach(e => e.remove());
             return m.textContent;",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert!(main.contains("目標細胞数到達予測日"), "{main}");
    for english in english_only_texts() {
        assert!(
            !main.contains(&english),
            "English {english:?} in the decision dialog"
        );
    }
    b.find("#lang-select option[value='en']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='en'] #decision-form").await;
    // A wrong password decides nothing (the failure recorded); the right one records the
    // decision with the culturist's signature on it.
    let failed = app.count("esig.failed");
    b.fill("#d-password", "not the password").await;
    b.click_nav("#decision-submit").await;
    assert!(
        b.exists_now("#decision-error").await,
        "{}",
        b.text("main").await
    );
    assert_eq!(app.count("batch.decision_evaluated"), decisions);
    assert_eq!(app.count("esig.failed"), failed + 1);
    b.fill("#d-password", PASSWORD).await;
    b.click_nav("#decision-submit").await;
    assert!(
        b.text("#flash-notice")
            .await
            .contains("decision is recorded"),
        "{}",
        b.text("main").await
    );
    assert_eq!(app.count("batch.decision_evaluated"), decisions + 1);
    let op = app.login("op").await;
    let records = app.get("/api/ledger/records?stream=batch/b-2", &op).await;
    let decision = records.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["type"] == "batch.decision_evaluated")
        .unwrap()
        .clone();
    assert_eq!(decision["actor"], "op");
    assert_eq!(decision["signature"]["meaning"], "Performed", "{decision}");
    let harvested = decision["payload"]["outcome"]
        .as_str()
        .is_some_and(|o| o.contains("target_met") || o.contains("TargetMet"));
    assert_eq!(harvested, outcome == "target_met", "{decision}");
}
