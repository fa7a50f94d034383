//! The hospital's order forms in the browser: a physician enrols a patient, places an order
//! (a dose outside the product's range refused at the dose field, nothing typed lost) and
//! signs it; a collector records the collection against the signed order.

use crate::browser::Browser;
use crate::screens::{check_page, english_only_texts};
use crate::support::{PASSWORD, TestApp};
use crate::{Served, serve};
use axum::http::StatusCode;
use cellops_domain::{Clock, Role, SiteId};
use serde_json::{Value, json};

/// Adds `doctor`, a physician at the hospital `hosp`.
fn add_physician(app: &TestApp) {
    tokio::task::block_in_place(|| {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11);
        cellops_server::provision::add_user(
            &app.state.ledger,
            &mut rng,
            "test",
            &cellops_server::provision::NewUser {
                user_id: "doctor",
                full_name: "Kenji Yamada",
                password: PASSWORD,
                roles: &[(Role::Physician, SiteId::parse("hosp").unwrap())],
                must_change_password: false,
            },
            false,
        )
        .unwrap();
        app.state.sync_blocking().unwrap();
    });
}

/// Gives `user` the courses `courses` (training records, as the demo writes them).
fn trained(app: &TestApp, user: &'static str, courses: &'static [&'static str]) {
    tokio::task::block_in_place(|| {
        let trainee = cellops_training::demo::DemoTrainee {
            user,
            courses,
            failed_media_fill: &[],
            days_ago: 10,
        };
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(12);
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

/// The PRIME CAR-T recipe approved at `cpc`: the CPC makes it, so orders may name it; the
/// manufacturers API lists it.
async fn prime_made_at_cpc(app: &TestApp) {
    let op = app.login("op").await;
    let qa = app.login("qa").await;
    let r = app.get("/api/manufacturers", &op).await;
    assert_eq!(r.body, json!({"manufacturers": []}));
    app.approved_recipe(
        "cpc",
        "prime-car-t.toml",
        "prime-car-t",
        &op,
        (&qa, "qa", PASSWORD),
    )
    .await;
    let r = app.get("/api/manufacturers", &op).await;
    assert_eq!(
        r.body,
        json!({"manufacturers": [{"site": "cpc", "products": ["prime-car-t"]}]})
    );
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
async fn a_physician_places_and_signs_an_order_and_a_bad_dose_is_refused_at_its_field() {
    let Served { app, base } = serve().await;
    add_physician(&app);
    prime_made_at_cpc(&app).await;
    let b = Browser::start(&base).await;
    b.login("doctor").await;
    b.click_nav("nav a[href='/ui/orders']").await;
    b.find("#new-order-form").await;
    // The manufacturer is chosen among the manufacturing sites (GET /api/manufacturers).
    assert_eq!(value(&b, "#no-manufacturer").await, "cpc");
    let offered = b
        .js(
            "return Array.from(document.querySelectorAll('#no-manufacturer option')).map(o => o.value);",
            vec![],
        )
        .await;
    assert_eq!(offered, json!(["cpc"]));
    // The dose typed first, then the patient enrolled: the dose is still there.
    b.fill("#no-dose", "5e10").await;
    b.click_nav("#no-enrol").await;
    let subject = value(&b, "#no-subject").await;
    assert!(subject.starts_with("S-"), "{subject}");
    assert!(b.text("#flash-notice").await.contains(&subject));
    assert_eq!(value(&b, "#no-dose").await, "5e10");
    assert_eq!(app.count("patient.enrolled"), 1);
    // PRIME CAR-T allows at most 1e9 cells: refused at the dose field, recorded, nothing
    // typed lost, nothing placed.
    b.click_nav("#no-submit").await;
    let err = b.text("#no-err-dose_cells").await;
    assert!(
        err.contains("outside the prime-car-t range"),
        "{err}\n{}",
        b.text("main").await
    );
    assert_eq!(
        b.find("#no-dose")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert!(!b.exists_now("#no-err-subject").await);
    assert_eq!(value(&b, "#no-subject").await, subject);
    assert_eq!(value(&b, "#no-dose").await, "5e10");
    assert_eq!(value(&b, "#no-product").await, "prime-car-t");
    assert_eq!(app.count("order.placed"), 0);
    assert_eq!(app.count("order.refused"), 1);
    check_page(&b, "order-new-refused").await;
    // Not a number at all: named at the same field by the form, nothing recorded.
    b.fill("#no-dose", "lots").await;
    b.click_nav("#no-submit").await;
    assert!(b.text("#no-err-dose_cells").await.contains("not a number"));
    assert_eq!(app.count("order.refused"), 1);
    // A site that makes no PRIME CAR-T (a form posted with another value) is refused at
    // the manufacturer, naming the sites that do; nothing placed, the list offered again.
    b.js(
        "const s = document.querySelector('#no-manufacturer'); s.add(new Option('hosp', 'hosp')); s.value = 'hosp';",
        vec![],
    )
    .await;
    b.fill("#no-dose", "1e8").await;
    b.click_nav("#no-submit").await;
    let err = b.text("#no-err-manufacturer").await;
    assert!(
        err.contains("hosp does not make prime-car-t") && err.contains("choose one of: cpc"),
        "{err}"
    );
    assert_eq!(app.count("order.placed"), 0);
    assert_eq!(value(&b, "#no-manufacturer").await, "cpc");
    assert_eq!(value(&b, "#no-dose").await, "1e8");
    // In range: placed; the order page asks for the physician's signature.
    b.fill("#no-dose", "1.0 × 10^8").await;
    b.click_nav("#no-submit").await;
    b.find("#sign-form").await;
    assert_eq!(app.count("order.placed"), 1);
    let stage = b.find("#order-stage").await;
    assert_eq!(
        stage.attr("data-stage").await.unwrap().as_deref(),
        Some("ordered")
    );
    let facts = b.text("#order-facts").await;
    assert!(
        facts.contains(&subject) && facts.contains("1.0 × 10⁸"),
        "{facts}"
    );
    check_page(&b, "order-sign").await;
    // A wrong password: refused at the password, no signature, the failure recorded.
    let signed = app.count("esig.signed");
    b.fill("#sign-password", "not my password").await;
    b.find("#sign-acknowledge").await.click().await.unwrap();
    b.click_nav("#sign-submit").await;
    assert!(
        b.text("#sign-err-password").await.contains("wrong"),
        "{}",
        b.text("main").await
    );
    assert_eq!(app.count("esig.signed"), signed);
    assert_eq!(app.count("esig.failed"), 1);
    // The right password: signed ("Ordered"), the form gone.
    b.fill("#sign-password", PASSWORD).await;
    if b.exists_now("#sign-acknowledge").await {
        b.find("#sign-acknowledge").await.click().await.unwrap();
    }
    b.click_nav("#sign-submit").await;
    assert!(b.text("#flash-notice").await.contains("signed"));
    assert_eq!(
        b.find("#order-stage")
            .await
            .attr("data-stage")
            .await
            .unwrap()
            .as_deref(),
        Some("signed")
    );
    assert!(!b.exists_now("#sign-form").await);
    assert_eq!(app.count("esig.signed"), signed + 1);
    let order = b.find("#order-facts code").await.text().await.unwrap();
    let doctor = app.login("doctor").await;
    let api = app.get(&format!("/api/orders/{order}"), &doctor).await;
    assert_eq!(api.status, StatusCode::OK);
    assert_eq!(api.body["stage"], "signed");
    assert_eq!(api.body["dose"]["cells"].as_f64(), Some(1e8));
    assert_eq!(api.body["subject"], json!(subject));
    // In Japanese the refusal at the dose names the range in Japanese, no English.
    b.goto("/ui/orders").await;
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #new-order-form").await;
    b.fill("#no-subject", &subject).await;
    b.fill("#no-dose", "2e9").await;
    b.click_nav("#no-submit").await;
    let err = b.text("#no-err-dose_cells").await;
    assert!(
        err.contains("投与量が製品の範囲外です") && err.contains("1.0 × 10⁹"),
        "{err}"
    );
    let main = b.text("main").await;
    for english in english_only_texts() {
        assert!(
            !main.contains(&english),
            "English {english:?} on the Japanese order form"
        );
    }
    assert!(!main.contains("outside"), "{main}");
    check_page(&b, "order-new-refused-ja").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_records_the_collection_against_the_signed_order() {
    let Served { app, base } = serve().await;
    add_physician(&app);
    trained(
        &app,
        "collector",
        &["basic-gmp-documentation", "role-hospital-collection"],
    );
    // A signed PRIME CAR-T order through the API.
    prime_made_at_cpc(&app).await;
    let doctor = app.login("doctor").await;
    let r = app
        .post("/api/patients", json!({"site": "hosp"}), &doctor)
        .await;
    let subject = r.body["subject"].as_str().unwrap().to_string();
    let at = |days: i64| app.clock.now().plus_us(days * 86_400_000_000).to_string();
    let r = app
        .post(
            "/api/orders",
            json!({"site": "hosp", "subject": subject, "product": "prime-car-t",
                   "manufacturer": "cpc", "dose_cells": 1e8, "dose_basis": "per_body",
                   "window_earliest": at(1), "window_latest": at(90)}),
            &doctor,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let order = r.body["order"].as_str().unwrap().to_string();
    app.post("/api/auth/esig-policy", json!({}), &doctor).await;
    let r = app
        .post(
            &format!("/api/orders/{order}/sign"),
            json!({"password": PASSWORD, "user_id": "doctor"}),
            &doctor,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The collection bag, registered and labelled for this patient, and one for another.
    let collector = app.login("collector").await;
    let r = app
        .post("/api/dins", json!({"site": "hosp", "count": 2}), &collector)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let dins: Vec<String> = r.body["dins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    let mut codes = Vec::new();
    for (din, patient) in dins.iter().zip([subject.as_str(), "S-OTHERPATNT"]) {
        let code = format!("{din}-S1234100");
        let r = app
            .post(
                "/api/units",
                json!({"code": code, "patient": patient, "expires_at": at(2),
                       "site": "hosp", "location": "hosp-apheresis"}),
                &collector,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        codes.push(code);
    }
    let b = Browser::start(&base).await;
    b.login("collector").await;
    b.goto(&format!("/ui/orders?order={order}")).await;
    b.find("#collection-form").await;
    check_page(&b, "order-collection").await;
    // The form in Japanese: no English text of the UI.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #collection-form").await;
    let form = b.text("#collection-form").await;
    assert!(form.contains("採取を記録"), "{form}");
    let main = b.text("main").await;
    for english in english_only_texts() {
        assert!(
            !main.contains(&english),
            "English {english:?} on the Japanese collection form"
        );
    }
    b.find("#lang-select option[value='en']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='en'] #collection-form").await;
    // Another patient's bag: refused at the unit field, what was typed kept.
    b.fill("#col-unit", &codes[1]).await;
    b.fill("#col-volume", "180").await;
    b.fill("#col-tnc", "2.6e9").await;
    b.click_nav("#col-submit").await;
    let err = b.text("#col-err-unit").await;
    assert!(err.contains("not labelled for subject"), "{err}");
    assert_eq!(value(&b, "#col-volume").await, "180");
    assert_eq!(value(&b, "#col-tnc").await, "2.6e9");
    assert_eq!(app.count("order.collected"), 0);
    // A volume that is not a number: named at the volume.
    b.fill("#col-unit", &codes[0]).await;
    b.fill("#col-volume", "a bag").await;
    b.click_nav("#col-submit").await;
    assert!(b.text("#col-err-volume_ml").await.contains("not a number"));
    assert_eq!(value(&b, "#col-unit").await, codes[0]);
    // This patient's bag: recorded, the order moves on.
    b.fill("#col-volume", "180,5").await;
    b.fill("#col-cd3", "1.1e9").await;
    b.click_nav("#col-submit").await;
    assert!(
        b.text("#flash-notice")
            .await
            .contains("collection is recorded"),
        "{}",
        b.text("main").await
    );
    assert!(!b.exists_now("#collection-form").await);
    assert_eq!(app.count("order.collected"), 1);
    let api = app.get(&format!("/api/orders/{order}"), &collector).await;
    assert_eq!(api.body["stage"], "collected", "{:?}", api.body);
    assert_eq!(api.body["collected_units"], json!([codes[0]]));
    let stream = format!("order/{}", order.to_ascii_lowercase());
    let records = app
        .get(&format!("/api/ledger/records?stream={stream}"), &collector)
        .await;
    let collected: Vec<&Value> = records.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "order.collected")
        .collect();
    assert_eq!(collected.len(), 1, "{:?}", records.body);
    let payload = &collected[0]["payload"];
    assert_eq!(payload["volume_ml"], json!(180.5), "{payload}");
    assert_eq!(payload["cd3_cells"].as_f64(), Some(1.1e9), "{payload}");
    // Typed before the first refusal and kept since.
    assert_eq!(
        payload["nucleated_cells"].as_f64(),
        Some(2.6e9),
        "{payload}"
    );
    assert_eq!(payload["by"], "collector", "{payload}");
}
