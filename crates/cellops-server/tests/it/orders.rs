//! Vein to vein through the HTTP API, on the demo network in a simulated clock, for each
//! product, on SQLite and on PostgreSQL; then the ledger verifies and the trace is complete.

use crate::support::*;
use axum::http::StatusCode;
use cellops_domain::Clock;
use cellops_ledger::Backend;
use serde_json::{Value, json};

const HOSP: &str = "hosp-kyoto";
const CPC: &str = "cpc-kyoto";
/// Product codes of the demo site configuration: starting material, final product.
const COLLECTED_CODE: &str = "S1000100";
const PRODUCT_CODE: &str = "S2000100";

struct Staff {
    doctor: String,
    nurse: String,
    op: String,
    qa: String,
    courier: String,
}

async fn staff<B: Backend>(app: &TestApp<B>) -> Staff {
    Staff {
        doctor: app.demo_login("dr-yamada").await,
        nurse: app.demo_login("ns-kato").await,
        op: app.demo_login("op-tanaka").await,
        qa: app.demo_login("qa-ito").await,
        courier: app.demo_login("courier-abe").await,
    }
}

fn ok(r: &Reply) -> &Value {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    &r.body
}

fn at_hours<B: Backend>(app: &TestApp<B>, hours: i64) -> String {
    app.clock.now().plus_us(hours * 3_600_000_000).to_string()
}

fn scan_text(code: &str) -> String {
    let (din, product) = code.split_once('-').unwrap();
    format!("={din}00=<{product}")
}

/// Registers a unit at `site` (a fresh DIN of that site's facility) for `patient`.
async fn new_unit<B: Backend>(
    app: &TestApp<B>,
    who: &str,
    site: &str,
    patient: Option<&str>,
    product_code: &str,
) -> String {
    let r = app
        .post("/api/dins", json!({"site": site, "count": 1}), who)
        .await;
    let din = ok(&r)["dins"][0].as_str().unwrap().to_string();
    let code = format!("{din}-{product_code}");
    let r = app
        .post(
            "/api/units",
            json!({"code": code, "patient": patient, "expires_at": at_hours(app, 24 * 60),
                   "site": site, "location": format!("{site}/room-1")}),
            who,
        )
        .await;
    ok(&r);
    code
}

async fn hand_off<B: Backend>(app: &TestApp<B>, to: &str, from: &str, code: &str, site: &str) {
    let r = app
        .post(
            &format!("/api/units/{code}/handoffs"),
            json!({"from": from, "site": site, "location": format!("{site}/dock"),
                   "condition": {"acceptable": true, "temperature_c": 4.0, "note": "sealed"}}),
            to,
        )
        .await;
    ok(&r);
}

async fn milestone<B: Backend>(
    app: &TestApp<B>,
    who: &str,
    user: &str,
    order: &str,
    site: &str,
    extra: Value,
) -> Reply {
    let mut body = json!({"site": site, "password": cellops_server::provision::demo_password(user),
                          "user_id": user});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.post(&format!("/api/orders/{order}/milestones"), body, who)
        .await
}

/// Enrols, orders and signs; returns (subject, order).
async fn order<B: Backend>(
    app: &TestApp<B>,
    s: &Staff,
    product: &str,
    dose: Value,
) -> (String, String) {
    let r = app
        .post("/api/patients", json!({"site": HOSP}), &s.doctor)
        .await;
    let subject = ok(&r)["subject"].as_str().unwrap().to_string();
    assert!(subject.starts_with("S-"), "pseudonymous: {subject}");
    let mut body = json!({"site": HOSP, "subject": subject, "product": product,
        "manufacturer": CPC, "window_earliest": at_hours(app, 24),
        "window_latest": at_hours(app, 24 * 90)});
    for (k, v) in dose.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = app.post("/api/orders", body, &s.doctor).await;
    let order = ok(&r)["order"].as_str().unwrap().to_string();
    assert_eq!(r.body["stage"], "ordered");
    assert_eq!(r.body["next"], "the treating physician's e-signature");
    // Only the ordering physician signs; a nurse cannot.
    let r = app
        .post(
            &format!("/api/orders/{order}/sign"),
            json!({"password": cellops_server::provision::demo_password("ns-kato"), "user_id": "ns-kato"}),
            &s.nurse,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app
        .post(
            &format!("/api/orders/{order}/sign"),
            json!({"password": cellops_server::provision::demo_password("dr-yamada"), "user_id": "dr-yamada"}),
            &s.doctor,
        )
        .await;
    assert_eq!(ok(&r)["stage"], "signed");
    (subject, order)
}

/// Collection, shipment to the CPC, receipt, manufacturing (recorded as signed manual
/// steps), harvest into a formulated product unit, release; returns the product unit.
async fn collect_and_make<B: Backend>(
    app: &TestApp<B>,
    s: &Staff,
    subject: &str,
    order: &str,
    volume_ml: f64,
) -> String {
    let collected = new_unit(app, &s.nurse, HOSP, Some(subject), COLLECTED_CODE).await;
    let r = app
        .post(
            &format!("/api/orders/{order}/collection"),
            json!({"site": HOSP, "unit": collected, "volume_ml": volume_ml, "cd3_cells": 2.6e9}),
            &s.nurse,
        )
        .await;
    assert_eq!(ok(&r)["stage"], "collected");
    hand_off(app, &s.courier, "ns-kato", &collected, HOSP).await;
    let r = milestone(
        app,
        &s.courier,
        "courier-abe",
        order,
        HOSP,
        json!({"milestone": "shipped_to_cpc"}),
    )
    .await;
    ok(&r);
    app.advance_hours(6);
    hand_off(app, &s.op, "courier-abe", &collected, CPC).await;
    let r = milestone(
        app,
        &s.op,
        "op-tanaka",
        order,
        CPC,
        json!({"milestone": "received_at_cpc"}),
    )
    .await;
    ok(&r);
    let batch = format!("B-{}", &order[4..]);
    let r = milestone(
        app,
        &s.op,
        "op-tanaka",
        order,
        CPC,
        json!({"milestone": "manufacturing_started", "batch": batch}),
    )
    .await;
    assert_eq!(ok(&r)["stage"], "manufacturing");
    let r = milestone(
        app,
        &s.op,
        "op-tanaka",
        order,
        CPC,
        json!({"milestone": "dose_predicted", "predicted_at": at_hours(app, 24 * 9)}),
    )
    .await;
    let harvest = ok(&r)["predicted"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["step"] == "harvest")
        .unwrap()
        .clone();
    assert_eq!(harvest["basis"], "twin prediction of the dose");
    app.advance_hours(24 * 9);
    let product_unit = collected.replace(COLLECTED_CODE, PRODUCT_CODE);
    let r = app
        .post(
            "/api/units/derive",
            json!({"operation": "formulate", "parents": [collected],
                   "children": [{"code": product_unit, "expires_at": at_hours(app, 24 * 365)}],
                   "reagent_lots": ["LV-2026-001"], "site": CPC, "location": "cpc-kyoto/isolator-1"}),
            &s.op,
        )
        .await;
    ok(&r);
    let r = milestone(
        app,
        &s.op,
        "op-tanaka",
        order,
        CPC,
        json!({"milestone": "harvested", "unit": product_unit}),
    )
    .await;
    assert_eq!(ok(&r)["stage"], "harvested");
    product_unit
}

/// Release (or at risk), shipment, receipt, thaw, bedside, infusion, follow-up.
async fn deliver_and_infuse<B: Backend>(
    app: &TestApp<B>,
    s: &Staff,
    subject: &str,
    order: &str,
    product_unit: &str,
    release: &str,
    route: &str,
) {
    let path = format!("/api/orders/{order}");
    if release != "dose_allocated" {
        // Nothing leaves the CPC unreleased.
        let r = milestone(
            app,
            &s.courier,
            "courier-abe",
            order,
            CPC,
            json!({"milestone": "shipped_to_hospital"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
        app.advance_hours(24 * 7);
        let r = milestone(
            app,
            &s.qa,
            "qa-ito",
            order,
            CPC,
            json!({"milestone": release}),
        )
        .await;
        assert_eq!(ok(&r)["stage"], "released");
    }
    hand_off(app, &s.courier, "op-tanaka", product_unit, CPC).await;
    let r = milestone(
        app,
        &s.courier,
        "courier-abe",
        order,
        CPC,
        json!({"milestone": "shipped_to_hospital"}),
    )
    .await;
    ok(&r);
    app.advance_hours(20);
    // Receipt at the hospital is the hospital's step: the courier cannot record it.
    let r = milestone(
        app,
        &s.courier,
        "courier-abe",
        order,
        HOSP,
        json!({"milestone": "received_at_hospital"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    hand_off(app, &s.nurse, "courier-abe", product_unit, HOSP).await;
    ok(&milestone(
        app,
        &s.nurse,
        "ns-kato",
        order,
        HOSP,
        json!({"milestone": "received_at_hospital"}),
    )
    .await);
    // Infusion before the bedside check: refused.
    let infusion = json!({"site": HOSP, "volume_ml": 50.0, "route": route});
    let r = app
        .post(&format!("{path}/infusion"), infusion.clone(), &s.nurse)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    ok(&milestone(
        app,
        &s.nurse,
        "ns-kato",
        order,
        HOSP,
        json!({"milestone": "thawed"}),
    )
    .await);

    // Bedside: the second nurse scans another patient's wristband: hard stop, recorded.
    let bedside = |wristband2: &str, second: &str| {
        json!({"site": HOSP, "location": "hosp-kyoto/ward-7/bed-3",
               "first": {"wristband": subject, "unit": scan_text(product_unit)},
               "second": {"user_id": second, "password": cellops_server::provision::demo_password(second),
                          "wristband": wristband2, "unit": scan_text(product_unit)}})
    };
    let r = app
        .post(
            &format!("{path}/bedside"),
            bedside("S-OTHERPATNT", "ns-mori"),
            &s.nurse,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.message().starts_with("STOP"), "{}", r.message());
    assert!(app.count("bedside.mismatch") >= 1);
    // The same person twice is not a two-person check.
    let r = app
        .post(
            &format!("{path}/bedside"),
            bedside(subject, "ns-kato"),
            &s.nurse,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = app
        .post(
            &format!("{path}/bedside"),
            bedside(subject, "ns-mori"),
            &s.nurse,
        )
        .await;
    assert_eq!(ok(&r)["stage"], "verified");
    let r = app
        .post(&format!("{path}/infusion"), infusion, &s.nurse)
        .await;
    assert_eq!(ok(&r)["stage"], "infused");
    app.advance_hours(24);
    let r = app
        .post(
            &format!("{path}/follow-up"),
            json!({"site": HOSP, "kind": "adverse_event", "term": "cytokine release syndrome", "grade": 1}),
            &s.doctor,
        )
        .await;
    let happened: Vec<String> = ok(&r)["happened"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap().to_string())
        .collect();
    for step in [
        "order.placed",
        "order.signed",
        "shipped_to_hospital",
        "received_at_hospital",
        "thawed",
        "bedside.mismatch",
        "bedside.verified",
        "infusion.recorded",
        "infusion_details",
        "adverse_event",
    ] {
        assert!(happened.iter().any(|h| h == step), "{step} in {happened:?}");
    }
    // The trace of the product unit shows its custody through to the infusion.
    let r = app
        .get(&format!("/api/units/{product_unit}/trace"), &s.nurse)
        .await;
    let infusions: Vec<&Value> = ok(&r)["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "infusion.recorded")
        .collect();
    assert_eq!(infusions.len(), 1, "{:?}", r.body["timeline"]);
    assert_eq!(infusions[0]["order"], order);
    assert_eq!(infusions[0]["patient"], subject);
}

async fn autologous_prime<B: Backend>(app: TestApp<B>) {
    let s = staff(&app).await;
    // Bad input first: a dose above the product's maximum is refused, named, recorded.
    let r = app
        .post("/api/patients", json!({"site": HOSP}), &s.doctor)
        .await;
    let subject = ok(&r)["subject"].as_str().unwrap().to_string();
    let r = app
        .post(
            "/api/orders",
            json!({"site": HOSP, "subject": subject, "product": "prime-car-t", "manufacturer": CPC,
                   "dose_cells": 5e9, "dose_basis": "per_body",
                   "window_earliest": at_hours(&app, 24), "window_latest": at_hours(&app, 24 * 90)}),
            &s.doctor,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "dose_out_of_range");
    assert_eq!(r.body["error"]["field"], "dose_cells");
    assert_eq!(app.count("order.refused"), 1);
    // An order whose window is already over.
    let r = app
        .post(
            "/api/orders",
            json!({"site": HOSP, "subject": subject, "product": "prime-car-t", "manufacturer": CPC,
                   "dose_cells": 1e8, "dose_basis": "per_body",
                   "window_earliest": at_hours(&app, -48), "window_latest": at_hours(&app, -24)}),
            &s.doctor,
        )
        .await;
    assert_eq!(r.body["error"]["code"], "treatment_window", "{:?}", r.body);

    let (subject, order) = order(
        &app,
        &s,
        "prime-car-t",
        json!({"dose_cells": 1e8, "dose_basis": "per_body"}),
    )
    .await;
    let unit = collect_and_make(&app, &s, &subject, &order, 180.0).await;
    deliver_and_infuse(
        &app,
        &s,
        &subject,
        &order,
        &unit,
        "released_at_risk",
        "intravenous",
    )
    .await;
    // Other sites' users do not see the order.
    let qc = app.demo_login("qc-sato").await;
    let r = app.get(&format!("/api/orders/{order}"), &qc).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = app.get(&format!("/api/orders?site={HOSP}"), &s.nurse).await;
    assert_eq!(ok(&r)["orders"].as_array().unwrap().len(), 1);
    assert!(app.verify_ledger() > 100);
}

async fn autologous_msc_with_a_failed_batch<B: Backend>(app: TestApp<B>) {
    let s = staff(&app).await;
    let (subject, order) = order(
        &app,
        &s,
        "bm-msc",
        json!({"dose_cells": 2e6, "dose_basis": "per_kg", "body_weight_kg": 62.0}),
    )
    .await;
    let collected = new_unit(&app, &s.nurse, HOSP, Some(&subject), COLLECTED_CODE).await;
    ok(&app
        .post(
            &format!("/api/orders/{order}/collection"),
            json!({"site": HOSP, "unit": collected, "volume_ml": 30.0, "nucleated_cells": 6e8}),
            &s.nurse,
        )
        .await);
    ok(&milestone(
        &app,
        &s.courier,
        "courier-abe",
        &order,
        HOSP,
        json!({"milestone": "shipped_to_cpc"}),
    )
    .await);
    app.advance_hours(30);
    // Marrow held beyond 24 h: refused at receipt, recorded.
    let r = milestone(
        &app,
        &s.op,
        "op-tanaka",
        &order,
        CPC,
        json!({"milestone": "received_at_cpc"}),
    )
    .await;
    assert_eq!(
        r.body["error"]["code"], "hold_time_exceeded",
        "{:?}",
        r.body
    );
    let r = milestone(
        &app,
        &s.op,
        "op-tanaka",
        &order,
        CPC,
        json!({"milestone": "batch_failed", "note": "starting material past its hold time"}),
    )
    .await;
    assert_eq!(ok(&r)["next"], "a new collection");
    // A new collection, this time on time.
    let unit = collect_and_make(&app, &s, &subject, &order, 30.0).await;
    deliver_and_infuse(
        &app,
        &s,
        &subject,
        &order,
        &unit,
        "released",
        "hepatic artery",
    )
    .await;
    let r = app.get(&format!("/api/orders/{order}"), &s.doctor).await;
    assert_eq!(ok(&r)["collected_units"].as_array().unwrap().len(), 2);
    app.verify_ledger();
}

async fn allogeneic_from_the_bank<B: Backend>(app: TestApp<B>) {
    let s = staff(&app).await;
    let (subject, order) = order(
        &app,
        &s,
        "allo-car-t",
        json!({"dose_cells": 1e8, "dose_basis": "per_body"}),
    )
    .await;
    // A banked dose (no patient on the label) at the CPC.
    let dose = new_unit(&app, &s.op, CPC, None, PRODUCT_CODE).await;
    let r = app
        .post(
            &format!("/api/orders/{order}/collection"),
            json!({"site": HOSP, "unit": dose, "volume_ml": 10.0}),
            &s.nurse,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = milestone(
        &app,
        &s.op,
        "op-tanaka",
        &order,
        CPC,
        json!({"milestone": "dose_allocated", "unit": dose}),
    )
    .await;
    assert_eq!(ok(&r)["stage"], "dose_allocated");
    deliver_and_infuse(
        &app,
        &s,
        &subject,
        &order,
        &dose,
        "dose_allocated",
        "intravenous",
    )
    .await;
    app.verify_ledger();
}

#[tokio::test(flavor = "multi_thread")]
async fn prime_car_t_vein_to_vein_on_sqlite() {
    autologous_prime(TestApp::demo()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prime_car_t_vein_to_vein_on_postgres() {
    autologous_prime(TestApp::demo_postgres()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bm_msc_vein_to_vein_with_a_failed_batch_on_sqlite() {
    autologous_msc_with_a_failed_batch(TestApp::demo()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bm_msc_vein_to_vein_with_a_failed_batch_on_postgres() {
    autologous_msc_with_a_failed_batch(TestApp::demo_postgres()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allogeneic_dose_vein_to_vein_on_sqlite() {
    allogeneic_from_the_bank(TestApp::demo()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allogeneic_dose_vein_to_vein_on_postgres() {
    allogeneic_from_the_bank(TestApp::demo_postgres()).await;
}
