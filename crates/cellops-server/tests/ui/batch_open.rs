//! An operator opens a batch on the batch screen: the site's approved recipe, the starting
//! unit (in custody at the CPC), the device and the harvest settings, through the batch
//! API's handler; refusals shown at their field with everything typed kept.

use crate::Served;
use crate::batch_steps::trained_for_prime;
use crate::browser::Browser;
use crate::screens::{check_page, english_only_texts};
use crate::serve;
use crate::support::{PASSWORD, TestApp};
use axum::http::StatusCode;
use cellops_domain::Clock;
use serde_json::json;

/// The shipped PRIME CAR-T recipe approved by QA at the CPC, and a collected unit the
/// operator registered in custody there; its code.
async fn approved_recipe_and_unit(app: &TestApp) -> (String, String) {
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
    let r = app
        .post("/api/dins", json!({"site": "cpc", "count": 1}), &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let din = r.body["dins"][0].as_str().unwrap().to_string();
    let collected = format!("{din}-S1000100");
    let expires = app.clock.now().plus_us(40 * 86_400_000_000);
    let r = app
        .post(
            "/api/units",
            json!({"code": collected, "patient": "subj-0042", "expires_at": expires,
                   "site": "cpc", "location": "receipt"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    (din, collected)
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
async fn an_operator_opens_a_batch_from_the_batch_screen_and_a_refusal_is_shown_at_its_field() {
    let Served { app, base } = serve().await;
    trained_for_prime(&app);
    let (din, collected) = approved_recipe_and_unit(&app).await;
    let b = Browser::start(&base).await;
    // QA at the CPC reads batches but does not open them.
    b.login("qa").await;
    b.goto("/ui/batch").await;
    b.find("#batch-form").await;
    assert!(!b.exists_now("#open-form").await);
    b.goto("/ui/logout").await;
    b.login("op").await;
    b.goto("/ui/batch").await;
    // The approved recipe is offered; the form fits the screen and labels its inputs.
    assert_eq!(value(&b, "#bo-recipe").await, "prime-car-t/1.0.0");
    check_page(&b, "batch-open").await;
    // In Japanese the form speaks Japanese.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #open-form").await;
    let form = b.text("#open-form").await;
    assert!(form.contains("承認済みレシピ"), "{form}");
    for english in english_only_texts() {
        assert!(
            !form.replace("prime-car-t 1.0.0", "").contains(&english),
            "English {english:?} on the open form: {form}"
        );
    }
    b.find("#lang-select option[value='en']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='en'] #open-form").await;
    // A unit that is not in custody is refused at the starting unit, all else kept.
    let absent = format!("{din}-S1234100");
    b.fill("#bo-starting_unit", &absent).await;
    b.fill("#bo-batch_id", "b-open").await;
    b.fill("#bo-harvest_product_code", "S2000100").await;
    b.fill("#bo-shelf_life_hours", "8760").await;
    b.click_nav("#open-submit").await;
    let err = b.text("#bo-err-starting_unit").await;
    assert!(err.contains("is not in custody"), "{err}");
    assert_eq!(
        b.find("#bo-starting_unit")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert_eq!(value(&b, "#bo-starting_unit").await, absent);
    assert_eq!(value(&b, "#bo-batch_id").await, "b-open");
    assert_eq!(value(&b, "#bo-harvest_product_code").await, "S2000100");
    assert_eq!(value(&b, "#bo-shelf_life_hours").await, "8760");
    assert_eq!(app.count("culture.batch_opened"), 0);
    // A product code without its division is refused at the product code.
    b.fill("#bo-starting_unit", &collected).await;
    b.fill("#bo-harvest_product_code", "S20").await;
    b.click_nav("#open-submit").await;
    let err = b.text("#bo-err-harvest_product_code").await;
    assert!(err.contains("ISBT 128 product code"), "{err}");
    assert!(!b.exists_now("#bo-err-starting_unit").await);
    assert_eq!(value(&b, "#bo-starting_unit").await, collected);
    // A shelf life that is not a whole number of hours is refused by the form.
    b.fill("#bo-harvest_product_code", "S2000100").await;
    b.fill("#bo-shelf_life_hours", "a year").await;
    b.click_nav("#open-submit").await;
    let err = b.text("#bo-err-shelf_life_hours").await;
    assert!(err.contains("not a whole number"), "{err}");
    assert_eq!(app.count("culture.batch_opened"), 0);
    // Opened on the twin's simulated device; the new batch's view follows.
    b.fill("#bo-shelf_life_hours", "8760").await;
    b.click_nav("#open-submit").await;
    assert!(b.text("#flash-notice").await.contains("Batch opened"));
    assert!(b.text("#batch-facts").await.contains("b-open"));
    assert_eq!(
        b.find("#batch-due")
            .await
            .attr("data-step")
            .await
            .unwrap()
            .as_deref(),
        Some("receive-apheresis")
    );
    assert_eq!(app.count("culture.batch_opened"), 1);
    let op = app.login("op").await;
    let r = app.get("/api/batches/b-open", &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["starting_unit"], json!(collected), "{:#}", r.body);
    let records = app
        .get("/api/ledger/records?stream=batch/b-open", &op)
        .await;
    let opened = records.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "culture.batch_opened")
        .unwrap()["payload"]
        .clone();
    assert_eq!(
        opened["harvest"],
        json!({"product_code": "S2000100", "shelf_life_hours": 8760}),
        "{opened:#}"
    );
    assert_eq!(opened["recipe_version"], "1.0.0");
    // The same id again is refused at the batch ID.
    b.goto("/ui/batch").await;
    b.fill("#bo-starting_unit", &collected).await;
    b.fill("#bo-batch_id", "b-open").await;
    b.click_nav("#open-submit").await;
    let err = b.text("#bo-err-batch_id").await;
    assert!(err.contains("exists"), "{err}");
    assert_eq!(app.count("culture.batch_opened"), 1);
}
