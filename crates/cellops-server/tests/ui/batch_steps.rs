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

fn trained_for_prime(app: &TestApp) {
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
async fn started_batch(app: &TestApp) {
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
    b.click_nav("#start-submit").await;
    assert!(b.text("#flash-notice").await.contains("started"));
    assert_eq!(app.count("batch.step_started"), 1);
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
