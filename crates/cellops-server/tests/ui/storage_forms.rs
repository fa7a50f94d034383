//! The storage screen's put-away form in the browser: refused without the storage
//! qualification; a unit scanned and its position scanned are put away and shown at that
//! position on the map; a position that does not exist or is taken, an unreadable scan and a
//! unit already stored are refused at their field with what was typed kept and nothing put
//! away; the form and its refusal in Japanese without English.

use crate::browser::Browser;
use crate::screens::{check_page, english_only_texts};
use crate::support::TestApp;
use crate::{Served, serve};
use axum::http::StatusCode;
use cellops_domain::Clock;
use serde_json::json;

/// `dewar-01` at cpc: 2 racks × 2 boxes × 4 positions.
async fn dewar(app: &TestApp) {
    let admin = app.login("admin").await;
    let r = app
        .post(
            "/api/storage",
            json!({"site": "cpc", "storage": "dewar-01", "kind": "ln2_vapour", "racks": 2, "boxes_per_rack": 2,
                   "slots_per_box": 4, "alarm_above_c": -150.0, "delay_minutes": 10, "reading_gap_minutes_max": 30,
                   "stored_days_max": 365}),
            &admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// Two units registered at cpc; returns (code, scanner text).
async fn units(app: &TestApp) -> Vec<(String, String)> {
    let op = app.login("op").await;
    let r = app
        .post("/api/dins", json!({"site": "cpc", "count": 2}), &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut out = Vec::new();
    for din in r.body["dins"].as_array().unwrap() {
        let din = din.as_str().unwrap();
        let code = format!("{din}-S1234100");
        let r = app
            .post(
                "/api/units",
                json!({"code": code, "patient": null, "expires_at": "2026-06-30T00:00:00.000000Z",
                       "site": "cpc", "location": "fill-room"}),
                &op,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        out.push((code, format!("={din}00=<S1234100")));
    }
    out
}

/// Gives `user` the storage-handling qualification (and the basic GMP course before it).
fn trained_in_storage(app: &TestApp, user: &'static str) {
    tokio::task::block_in_place(|| {
        let trainee = cellops_training::demo::DemoTrainee {
            user,
            courses: &["basic-gmp-documentation", "role-storage-handling"],
            failed_media_fill: &[],
            days_ago: 10,
        };
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(21);
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

async fn put_away(b: &Browser, unit: &str, position: &str) {
    b.goto("/ui/storage").await;
    b.fill("#pa-unit", unit).await;
    b.fill("#pa-position", position).await;
    b.click_nav("#putaway-submit").await;
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
async fn an_operator_puts_a_unit_away_by_scan_and_wrong_positions_or_units_are_refused_at_their_field()
 {
    let Served { app, base } = serve().await;
    dewar(&app).await;
    let made = units(&app).await;
    let (first, second) = (&made[0], &made[1]);
    let b = Browser::start(&base).await;

    // Nobody without a storage role sees the form (the hospital's nurse has no storage).
    b.login("nurse").await;
    b.goto("/ui/storage").await;
    assert!(!b.exists_now("#putaway-form").await);
    b.click_nav("#logout").await;

    // Not qualified for storage yet: refused, nothing put away, the scans kept.
    b.login("op").await;
    b.click_nav("nav a[href='/ui/storage']").await;
    check_page(&b, "storage-putaway").await;
    put_away(&b, &first.1, "dewar-01/R2/B1/P3").await;
    let general = b.text("#pa-err-general").await;
    assert!(general.contains("storage-handling"), "{general}");
    assert_eq!(value(&b, "#pa-unit").await, first.1);
    assert_eq!(value(&b, "#pa-position").await, "dewar-01/R2/B1/P3");
    assert_eq!(app.count("storage.put_away"), 0);

    trained_in_storage(&app, "op");
    // A position the dewar does not have (4 positions per box): refused at the position,
    // recorded as a refused scan, nothing put away, both scans kept.
    put_away(&b, &first.1, "dewar-01/R2/B1/P9").await;
    let err = b.text("#pa-err-position").await;
    assert!(err.contains("P9") || err.contains("position"), "{err}");
    let invalid = b
        .find("#pa-position")
        .await
        .attr("aria-invalid")
        .await
        .unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    assert!(!b.exists_now("#pa-err-unit").await);
    assert_eq!(value(&b, "#pa-unit").await, first.1);
    assert_eq!(value(&b, "#pa-position").await, "dewar-01/R2/B1/P9");
    assert_eq!(app.count("storage.put_away"), 0);
    assert_eq!(app.count("storage.scan_refused"), 1);
    // An unreadable unit scan: refused at the unit, nothing recorded.
    put_away(&b, "not a label", "dewar-01/R2/B1/P3").await;
    assert!(b.exists_now("#pa-err-unit").await);
    assert!(!b.exists_now("#pa-err-position").await);
    assert_eq!(value(&b, "#pa-unit").await, "not a label");
    assert_eq!(app.count("storage.put_away"), 0);

    // Put away: the box is shown with the unit at its position, and the map counts it.
    put_away(&b, &first.1, "dewar-01/R2/B1/P3").await;
    let notice = b.text("#flash-notice").await;
    assert!(
        notice.contains(&first.0) && notice.contains("dewar-01/R2/B1/P3"),
        "{notice}"
    );
    let slot = b.text("#storage-box li.slot[data-slot='3']").await;
    assert!(slot.contains(&first.0), "{slot}");
    assert!(
        b.text("#storage-box li.slot[data-slot='2']")
            .await
            .contains("free")
    );
    assert!(
        b.exists_now("section.storage a.box[data-rack='2'][data-box='1'][data-count='1']")
            .await
    );
    assert_eq!(app.count("storage.put_away"), 1);
    let op = app.login("op").await;
    let listed = app.get("/api/storage", &op).await;
    assert_eq!(
        listed.body["storages"][0]["occupied"], 1,
        "{:?}",
        listed.body
    );

    // The position is taken now: the second unit is refused there, nothing put away.
    put_away(&b, &second.1, "dewar-01/R2/B1/P3").await;
    assert!(b.exists_now("#pa-err-position").await);
    assert_eq!(value(&b, "#pa-unit").await, second.1);
    assert_eq!(app.count("storage.put_away"), 1);
    // The unit already stored, scanned again for another position: refused at the unit.
    put_away(&b, &first.1, "dewar-01/R1/B1/P1").await;
    assert!(
        b.exists_now("#pa-err-unit").await,
        "{}",
        b.text("main").await
    );
    assert!(!b.exists_now("#pa-err-position").await);
    assert_eq!(app.count("storage.put_away"), 1);

    // In Japanese: the form and a refusal at its field, no English left.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #putaway-form").await;
    put_away(&b, &second.1, "dewar-01/R2/B1/P3").await;
    b.find("html[lang='ja'] #pa-err-position").await;
    let main = b.text("main").await;
    for text in english_only_texts() {
        assert!(
            !main.contains(text.as_str()),
            "English {text:?} on the Japanese storage page: {main}"
        );
    }
    assert!(b.text("#pa-err-position").await.contains("位置"), "{main}");
    assert!(b.text("#putaway-form").await.contains("格納"));
    check_page(&b, "storage-putaway-ja").await;
    assert_eq!(app.count("storage.put_away"), 1);
}

async fn retrieve(b: &Browser, unit: &str, position: &str, purpose: &str) {
    b.goto("/ui/storage").await;
    b.fill("#rt-unit", unit).await;
    b.fill("#rt-position", position).await;
    b.js(
        "document.querySelector('#rt-purpose').value = arguments[0];",
        vec![json!(purpose)],
    )
    .await;
    b.click_nav("#retrieve-submit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_retrieves_a_unit_by_scan_and_a_wrong_position_is_refused_at_its_field() {
    let Served { app, base } = serve().await;
    dewar(&app).await;
    let made = units(&app).await;
    trained_in_storage(&app, "op");
    let op = app.login("op").await;
    for ((_, label), position) in made.iter().zip(["dewar-01/R1/B1/P1", "dewar-01/R1/B1/P2"]) {
        let r = app
            .post(
                "/api/storage/put-away",
                json!({"site": "cpc", "scanned_unit": label, "scanned_position": position}),
                &op,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let b = Browser::start(&base).await;
    b.login("op").await;
    b.goto("/ui/storage").await;
    check_page(&b, "storage-retrieve").await;

    // The first unit scanned at the second unit's position: refused at the position,
    // recorded as a refused scan, nothing retrieved, what was typed kept.
    retrieve(&b, &made[0].1, "dewar-01/R1/B1/P2", "transfer").await;
    let err = b.text("#rt-err-position").await;
    assert!(err.contains("P2") || err.contains("position"), "{err}");
    assert!(!b.exists_now("#rt-err-unit").await);
    assert_eq!(value(&b, "#rt-unit").await, made[0].1);
    assert_eq!(value(&b, "#rt-position").await, "dewar-01/R1/B1/P2");
    assert_eq!(value(&b, "#rt-purpose").await, "transfer");
    assert_eq!(app.count("storage.retrieved"), 0);
    assert_eq!(app.count("storage.scan_refused"), 1);

    // Retrieved from its own position: the box shows the position free, the other unit kept.
    retrieve(&b, &made[0].1, "dewar-01/R1/B1/P1", "transfer").await;
    let notice = b.text("#flash-notice").await;
    assert!(notice.contains(&made[0].0), "{notice}");
    assert!(
        b.text("#storage-box li.slot[data-slot='1']")
            .await
            .contains("free")
    );
    assert!(
        b.text("#storage-box li.slot[data-slot='2']")
            .await
            .contains(&made[1].0)
    );
    assert_eq!(app.count("storage.retrieved"), 1);
    let listed = app.get("/api/storage", &op).await;
    assert_eq!(
        listed.body["storages"][0]["occupied"], 1,
        "{:?}",
        listed.body
    );

    // In Japanese: retrieving it again is refused at the unit (not stored), no English.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #retrieve-form").await;
    retrieve(&b, &made[0].1, "dewar-01/R1/B1/P1", "use").await;
    b.find("html[lang='ja'] #rt-err-unit").await;
    let main = b.text("main").await;
    for text in english_only_texts() {
        assert!(
            !main.contains(text.as_str()),
            "English {text:?} on the Japanese storage page: {main}"
        );
    }
    assert!(b.text("#rt-err-unit").await.contains("製品"), "{main}");
    check_page(&b, "storage-retrieve-ja").await;
    assert_eq!(app.count("storage.retrieved"), 1);
}
