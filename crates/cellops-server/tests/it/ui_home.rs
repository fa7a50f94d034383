//! The web UI's home page over HTTP ("what needs me now"): the batch steps due at the
//! operator's site and the shipments on their way to the user's site, in English and
//! Japanese, only for the roles and the site they concern.

use crate::batch::approved_prime;
use crate::storage::{add_trained_people, label, ok, release, shipper_and_logger, units};
use crate::support::TestApp;
use axum::http::StatusCode;
use serde_json::json;

/// The home page's HTML as `cookie` (a session cookie, optionally with `cellops_lang` and
/// `cellops_site`) sees it.
async fn home(app: &TestApp, cookie: &str) -> String {
    let r = app.get("/ui/home", cookie).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // minijinja escapes '/' in attribute values.
    r.body
        .as_str()
        .expect("an HTML page")
        .replace("&#x2f;", "/")
}

/// The HTML of the section `id` (`home-<id>`), if the page shows it.
fn section(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"home-{id}\""))?;
    let end = page[start..].find("</section>")? + start;
    Some(page[start..end].to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn home_lists_the_batch_steps_due_at_the_operators_site_in_both_languages() {
    let app = TestApp::new();
    let (op, qa) = approved_prime(&app).await;
    let nothing = home(&app, &op).await;
    assert!(section(&nothing, "steps-due").is_none(), "{nothing}");
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc", "product": "prime-car-t", "version": "1.0.0", "batch": "b-home-1",
                   "starting_unit": "A999026000001-S1234100"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let due = r.body["due_step"]["id"].as_str().unwrap().to_string();
    let page = home(&app, &op).await;
    let steps = section(&page, "steps-due").expect("steps due on the operator's home");
    assert!(steps.contains("Batch steps due now"), "{steps}");
    assert!(
        steps.contains("href=\"/ui/batch?batch=b-home-1\"") && steps.contains("to start:"),
        "{steps}"
    );
    // The step's name from the approved recipe.
    assert!(steps.contains("Receive"), "{due}: {steps}");
    // In Japanese: Japanese labels, no English fallback.
    let ja = home(&app, &format!("{op}; cellops_lang=ja")).await;
    let steps = section(&ja, "steps-due").expect("steps due in Japanese");
    assert!(
        steps.contains("今実施すべきバッチの工程") && steps.contains("開始待ち："),
        "{steps}"
    );
    assert!(
        !steps.contains("Batch steps due now") && !steps.contains("to start:"),
        "{steps}"
    );
    // QA at the same site and the hospital's nurse have no steps to do.
    assert!(section(&home(&app, &qa).await, "steps-due").is_none());
    let nurse = app.login("nurse").await;
    assert!(section(&home(&app, &nurse).await, "steps-due").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn home_lists_shipments_on_their_way_to_the_site_until_received() {
    let app = TestApp::new();
    add_trained_people(&app);
    shipper_and_logger(&app).await;
    let op = app.login("op-tanaka").await;
    let codes = units(&app, &op, &[100.0]).await;
    release(&app, "b-200", &codes).await;
    let courier = app.login("courier-abe").await;
    ok(&app
        .post(
            "/api/shipments",
            json!({"site": "cpc", "shipment": "shp-7", "to_site": "hosp", "units": [label(&codes[0])],
                   "shipper": "ds-01", "logger": "LG-0001", "transit_hours": 12.0}),
            &courier,
        )
        .await);
    let nurse = app.login("ns-kato").await;
    // Packed, not yet dispatched: not on its way.
    assert!(section(&home(&app, &nurse).await, "shipments-arriving").is_none());
    ok(&app
        .post("/api/shipments/shp-7/dispatch", json!({}), &courier)
        .await);
    let page = home(&app, &nurse).await;
    let arriving = section(&page, "shipments-arriving").expect("the nurse's home lists it");
    assert!(
        arriving.contains("Shipments arriving")
            && arriving.contains("href=\"/ui/shipments?shipment=shp-7\"")
            && arriving.contains("from: cpc")
            && arriving.contains("units: 1")
            && arriving.contains("expected:"),
        "{arriving}"
    );
    assert!(
        !arriving.contains("class=\"warn\""),
        "not late yet: {arriving}"
    );
    let ja = home(&app, &format!("{nurse}; cellops_lang=ja")).await;
    let arriving = section(&ja, "shipments-arriving").expect("in Japanese too");
    assert!(
        arriving.contains("到着予定の出荷") && arriving.contains("出荷元：cpc"),
        "{arriving}"
    );
    assert!(
        !arriving.contains("Shipments arriving") && !arriving.contains("from:"),
        "{arriving}"
    );
    // The courier works at both sites: the shipment arrives at the hospital, not the CPC.
    let at_hosp = home(&app, &format!("{courier}; cellops_site=hosp")).await;
    assert!(
        section(&at_hosp, "shipments-arriving").is_some(),
        "{at_hosp}"
    );
    let at_cpc = home(&app, &format!("{courier}; cellops_site=cpc")).await;
    assert!(section(&at_cpc, "shipments-arriving").is_none(), "{at_cpc}");
    // Past its planned transit time it is highlighted.
    app.clock.advance_us(13 * 3_600_000_000);
    let nurse = app.login("ns-kato").await;
    let late = section(&home(&app, &nurse).await, "shipments-arriving").unwrap();
    assert!(late.contains("class=\"warn\""), "{late}");
    // Received: no longer arriving.
    ok(&app
        .post(
            "/api/shipments/shp-7/receive",
            json!({"site": "hosp", "scanned_units": [label(&codes[0])],
                   "condition": {"acceptable": true, "temperature_c": -160.0, "note": ""},
                   "location": "pharmacy"}),
            &nurse,
        )
        .await);
    assert!(section(&home(&app, &nurse).await, "shipments-arriving").is_none());
}
