//! The hospital's booking screen in a real browser: a nurse checks a collection date, sees
//! the stage dates and the risk the planner computes, books it; a taken date shows the
//! binding constraint and alternatives, and an alternative is booked from its button; the
//! Japanese page has no English left.

use crate::browser::Browser;
use crate::screens::{check_page, english_only_texts};
use crate::{Served, serve};
use axum::http::StatusCode;
use serde_json::json;

async fn check(b: &Browser, product: &str, date: &str) {
    b.goto("/ui/bookings").await;
    b.js(
        "document.querySelector('#bk-product').value = arguments[0];
         document.querySelector('#bk-date').value = arguments[1];",
        vec![json!(product), json!(date)],
    )
    .await;
    b.click_nav("#bk-check").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nurse_checks_a_date_sees_its_risk_and_books_it_or_an_alternative() {
    let Served { app, base } = serve().await;
    let nurse = app.login("nurse").await;
    // What the planner answers for Tuesday 2025-11-25 (the clock starts on Monday 24th).
    let asked =
        json!({"product": "prime-car-t", "hospital": "hosp", "collection_date": "2025-11-25"});
    let api = app.post("/api/bookings/check", asked.clone(), &nurse).await;
    assert_eq!(api.status, StatusCode::OK, "{:?}", api.body);
    assert_eq!(api.body["feasible"], true);
    let on_time = format!(
        "{:.0} %",
        api.body["risk"]["p_on_time"].as_f64().unwrap() * 100.0
    );

    let b = Browser::start(&base).await;
    b.login("nurse").await;
    b.click_nav("nav a[href='/ui/bookings']").await;
    check(&b, "prime-car-t", "2025-11-25").await;
    let feasible = b.text("#booking-feasible").await;
    assert!(
        feasible.contains(api.body["infusion"].as_str().unwrap()),
        "{feasible}"
    );
    assert_eq!(b.text("#booking-feasible .on-time").await, on_time);
    let oos = b.text("#booking-feasible .if-oos").await;
    assert!(
        oos.contains(api.body["risk"]["if_oos"]["infusion"].as_str().unwrap()),
        "{oos}"
    );
    assert!(b.exists_now("#booking-feasible .if-failed").await);
    check_page(&b, "bookings-check").await;
    // Nothing is booked by a check.
    assert_eq!(app.count("schedule.booked"), 0);
    b.click_nav("#book-asked").await;
    let made = b.text("#booking-made").await;
    assert!(made.contains("2025-11-25"), "{made}");
    assert_eq!(app.count("schedule.booked"), 1);
    let listed = app.get("/api/bookings?site=hosp", &nurse).await;
    let id = listed.body["bookings"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(made.contains(&id), "{made} names {id}");
    assert!(
        b.exists_now(&format!("#booking-list tr[data-booking='{id}']"))
            .await
    );
    // The same form posted again (back, then a second click) books nothing more: the date
    // is taken now, and the page says so.
    b.js("history.back();", vec![]).await;
    b.find("#book-asked").await;
    b.click_nav("#book-asked").await;
    assert_eq!(app.count("schedule.booked"), 1);
    assert!(b.exists_now("#flash-error").await);
    assert!(!b.exists_now("#booking-made").await);

    // The same date again: the chair is taken. The binding constraint and alternatives.
    check(&b, "prime-car-t", "2025-11-25").await;
    let binding = b.find("#booking-binding").await;
    assert_eq!(
        binding.attr("data-constraint").await.unwrap().as_deref(),
        Some("capacity")
    );
    assert!(
        b.text("#booking-binding")
            .await
            .contains("collection_chair")
    );
    let first = b
        .find("#booking-infeasible .alternative")
        .await
        .attr("data-collection")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(first, "2025-11-25");
    check_page(&b, "bookings-alternatives").await;
    b.click_nav("#book-1").await;
    assert!(b.text("#booking-made").await.contains(&first));
    assert_eq!(app.count("schedule.booked"), 2);

    // A Saturday: no apheresis that day.
    check(&b, "prime-car-t", "2025-11-29").await;
    let binding = b.find("#booking-binding").await;
    assert_eq!(
        binding.attr("data-constraint").await.unwrap().as_deref(),
        Some("closed")
    );

    // In Japanese: the same page, no English left.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #booking-binding").await;
    let main = b.text("main").await;
    for text in english_only_texts() {
        assert!(
            !main.contains(text.as_str()),
            "English {text:?} on the Japanese booking page"
        );
    }
    assert!(main.contains("休み"), "{main}");
    b.screenshot("bookings-ja").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_needs_a_booking_role_and_the_csrf_token() {
    let Served { app, base } = serve().await;
    let b = Browser::start(&base).await;
    // CPC staff see no booking entry in the navigation and cannot book for a hospital.
    b.login("op").await;
    assert!(!b.exists_now("nav a[href='/ui/bookings']").await);
    b.click_nav("#logout").await;
    b.login("nurse").await;
    check(&b, "prime-car-t", "2025-11-25").await;
    b.js(
        "document.querySelector('#booking-feasible input[name=csrf]').value = 'f'.repeat(64);",
        vec![],
    )
    .await;
    b.click_nav("#book-asked").await;
    assert_eq!(app.count("schedule.booked"), 0);
    assert!(!b.exists_now("#booking-made").await);
}
