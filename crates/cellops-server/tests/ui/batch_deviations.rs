//! A batch deviation worked on the batch view: the operator starts the investigation and
//! records root cause and CAPA (an empty root cause refused with the CAPA kept); QA closes
//! it with the e-signature (a wrong password closes nothing).

use crate::Served;
use crate::batch_steps::{started_batch, trained_for_prime};
use crate::browser::Browser;
use crate::screens::{check_page, english_only_texts};
use crate::serve;
use crate::support::{PASSWORD, TestApp};
use axum::http::StatusCode;
use serde_json::json;

async fn deviation_state(app: &TestApp) -> (String, String) {
    let op = app.login("op").await;
    let r = app.get("/api/batches/b-1", &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let d = &r.body["deviations"][0];
    (
        d["id"].as_str().unwrap().to_string(),
        d["state"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deviation_is_investigated_given_a_capa_and_closed_by_qa_with_the_esignature() {
    let Served { app, base } = serve().await;
    trained_for_prime(&app);
    started_batch(&app).await;
    let op = app.login("op").await;
    let r = app
        .post(
            "/api/batches/b-1/deviations",
            json!({"description": "kit bag seal creased on receipt", "blocks_release": true}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (id, st) = deviation_state(&app).await;
    assert_eq!(st, "Open");
    let b = Browser::start(&base).await;
    b.login("op").await;
    b.goto("/ui/batch?batch=b-1").await;
    let form = format!("#dev-form-{id}");
    assert_eq!(
        b.find(&form)
            .await
            .attr("data-action")
            .await
            .unwrap()
            .as_deref(),
        Some("investigate")
    );
    b.click_nav(&format!("#dev-submit-{id}")).await;
    assert!(
        b.text("#flash-notice")
            .await
            .contains("investigation has started")
    );
    assert_eq!(deviation_state(&app).await.1, "Investigating");
    // Root cause and CAPA: the form in Japanese without English, then an empty root cause
    // refused with the CAPA kept.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #batch-deviations").await;
    let section = b.text("#batch-deviations").await;
    assert!(section.contains("根本原因"), "{section}");
    for english in english_only_texts() {
        assert!(
            !section.contains(&english),
            "English {english:?} on the deviation form: {section}"
        );
    }
    b.find("#lang-select option[value='en']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='en'] #batch-deviations").await;
    check_page(&b, "batch-deviation").await;
    b.fill(
        &format!("#dev-capa-{id}"),
        "retrain receipt staff on seal checks",
    )
    .await;
    b.click_nav(&format!("#dev-submit-{id}")).await;
    b.find(&format!("#dev-err-{id}")).await;
    assert_eq!(
        b.find(&format!("#dev-capa-{id}"))
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("retrain receipt staff on seal checks")
    );
    assert_eq!(deviation_state(&app).await.1, "Investigating");
    b.fill(&format!("#dev-root-{id}"), "bag folded in the shipper")
        .await;
    b.click_nav(&format!("#dev-submit-{id}")).await;
    assert!(b.text("#flash-notice").await.contains("CAPA are recorded"));
    assert_eq!(deviation_state(&app).await.1, "CapaDefined");
    // The operator does not close it.
    assert!(!b.exists_now(&form).await);
    b.goto("/ui/logout").await;
    // QA closes it with the e-signature: a wrong password closes nothing.
    let qa = app.login("qa").await;
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    b.login("qa").await;
    b.goto("/ui/batch?batch=b-1").await;
    assert_eq!(
        b.find(&form)
            .await
            .attr("data-action")
            .await
            .unwrap()
            .as_deref(),
        Some("close")
    );
    let failed = app.count("esig.failed");
    b.fill(&format!("#dev-pw-{id}"), "not the password").await;
    b.click_nav(&format!("#dev-submit-{id}")).await;
    let err = b.text(&format!("#dev-err-{id}")).await;
    assert_eq!(app.count("esig.failed"), failed + 1, "{err}");
    assert_eq!(deviation_state(&app).await.1, "CapaDefined");
    let signed = app.count("esig.signed");
    b.fill(&format!("#dev-pw-{id}"), PASSWORD).await;
    b.click_nav(&format!("#dev-submit-{id}")).await;
    assert!(
        b.text("#flash-notice")
            .await
            .contains("deviation is closed")
    );
    assert_eq!(app.count("esig.signed"), signed + 1);
    assert_eq!(deviation_state(&app).await.1, "Closed");
    assert!(!b.exists_now(&form).await);
}
