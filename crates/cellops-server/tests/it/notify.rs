//! Webhook notifications with real components: a real HTTP receiver (axum on 127.0.0.1:0)
//! that checks every signature, a receiver that fails first and is retried, a restart (a
//! new AppState on the same database) that neither resends what was delivered nor loses
//! what was pending, revocation, site scoping; on SQLite and on PostgreSQL. The dispatcher
//! runs rounds in the simulated clock, so retries are driven by time, not by sleeping.

use crate::support::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use cellops_domain::{Clock, SimClock, Timestamp};
use cellops_ledger::postgres::Postgres;
use cellops_ledger::sqlite::Sqlite;
use cellops_ledger::{Backend, Ledger, LedgerConfig, NewRecord};
use cellops_server::routes::notify::{Dispatcher, RetryPolicy, RoundReport, sign};
use cellops_server::{AppState, ServerConfig, event_catalog};
use rand::SeedableRng;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const HOSP: &str = "hosp-kyoto";
const CPC: &str = "cpc-kyoto";
const VERIFIER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/verify_webhook.py");

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    delivery: String,
    event: String,
    signature: String,
    body: Bytes,
    /// What the receiver answered.
    status: u16,
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Answer 500 to this many more requests.
    fail_next: Arc<AtomicUsize>,
    secret: Arc<Mutex<String>>,
    clock: Arc<SimClock>,
}

impl Receiver {
    /// Starts a receiver on a free loopback port; returns it and its URL.
    async fn start(clock: Arc<SimClock>) -> (Receiver, String) {
        let r = Receiver {
            seen: Arc::default(),
            fail_next: Arc::default(),
            secret: Arc::default(),
            clock,
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, format!("http://{addr}/hook"))
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Delivery ids accepted (2xx), in order.
    fn accepted(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.status < 300)
            .map(|s| s.delivery)
            .collect()
    }
}

/// The receiver: refuses a bad signature with 401 (as a real one must), fails on purpose
/// while `fail_next` > 0, else accepts.
async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let signature = header("x-cellops-signature");
    let secret = r.secret.lock().unwrap().clone();
    let now = r.clock.now().unix_us() / 1_000_000;
    let status = if sign::verify(&signature, &secret, &body, now, sign::TOLERANCE_SECONDS).is_err()
    {
        StatusCode::UNAUTHORIZED
    } else if r
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    assert_eq!(header("idempotency-key"), header("x-cellops-delivery"));
    r.seen.lock().unwrap().push(Seen {
        delivery: header("x-cellops-delivery"),
        event: header("x-cellops-event"),
        signature,
        body,
        status: status.as_u16(),
    });
    status
}

/// A database for one test that outlives the app instances opened on it.
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                    let _ =
                        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            })
            .join();
        }
    }
}

fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        url: format!("sqlite://{}", dir.path().join("t.db").display()),
        _dir: Some(dir),
        pg: None,
    }
}

fn postgres_db() -> Db {
    std::thread::spawn(|| {
        let admin = std::env::var("CELLOPS_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "cellops_notify_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut c = postgres::Client::connect(&admin, postgres::NoTls)
            .expect("PostgreSQL at 127.0.0.1:5432 (scripts/setup-test-deps starts it)");
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        Db {
            url,
            _dir: None,
            pg: Some((admin, name)),
        }
    })
    .join()
    .unwrap()
}

/// A second server process on the same database: a new ledger handle and new read models
/// (rebuilt from the ledger), the demo network's configuration, the same simulated time.
fn reopen<B: Backend>(url: &str, clock: Arc<SimClock>) -> AppState<B> {
    tokio::task::block_in_place(|| {
        let ledger =
            Ledger::<B>::open(url, clock.clone(), LedgerConfig::new(event_catalog())).unwrap();
        let facilities = [(CPC, "A9990"), (HOSP, "A9991"), ("qc-kyoto", "A9992")]
            .iter()
            .map(|(s, f)| {
                (
                    cellops_domain::SiteId::parse(s).unwrap(),
                    cellops_isbt::Fin::parse(f).unwrap(),
                )
            })
            .collect();
        let state = AppState::new(
            ledger,
            clock,
            rand::rngs::StdRng::seed_from_u64(99),
            ServerConfig {
                facilities,
                ..ServerConfig::default()
            },
        );
        state.sync_blocking().unwrap();
        state
    })
}

/// Short timeouts for loopback receivers; the backoff is the default (10 s, 20 s, …).
fn policy() -> RetryPolicy {
    RetryPolicy {
        timeout_ms: 2_000,
        lease_us: 30_000_000,
        ..RetryPolicy::DEFAULT
    }
}

fn dispatcher<B: Backend>(state: &AppState<B>) -> Dispatcher<B> {
    Dispatcher::new(state.clone(), policy()).unwrap()
}

async fn book<B: Backend>(app: &TestApp<B>, nurse: &str, date: &str, order: &str) {
    let r = app
        .post(
            "/api/bookings",
            json!({"product": "prime-car-t", "hospital": HOSP, "collection_date": date, "order": order}),
            nurse,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

fn advance_s(clock: &SimClock, s: u64) {
    clock.advance_us(s * 1_000_000);
}

async fn deliveries<B: Backend>(app: &TestApp<B>, token: &str, sub: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/webhooks/{sub}/deliveries"), token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["deliveries"].as_array().unwrap().clone()
}

/// Runs the independent Python verifier on one received request.
fn python_verify(secret: &str, seen: &Seen, body: &[u8], now: i64) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body.json");
    std::fs::write(&path, body).unwrap();
    let out = std::process::Command::new("python3")
        .arg(VERIFIER)
        .args(["--secret", secret, "--signature", &seen.signature])
        .arg("--body")
        .arg(&path)
        .args(["--now", &now.to_string()])
        .output()
        .expect("python3 runs tools/verify_webhook.py (standard library only)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_signed_retried_and_survive_a_restart_sqlite() {
    let db = sqlite_db();
    webhooks_are_signed_retried_and_survive_a_restart::<Sqlite>(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_signed_retried_and_survive_a_restart_postgres() {
    let db = postgres_db();
    webhooks_are_signed_retried_and_survive_a_restart::<Postgres>(&db).await;
}

async fn webhooks_are_signed_retried_and_survive_a_restart<B: Backend>(db: &Db) {
    let app = tokio::task::block_in_place(|| TestApp::<B>::demo_on(&db.url, None));
    let admin = app.demo_login("admin").await;
    let nurse = app.demo_login("ns-kato").await;
    let (rx, url) = Receiver::start(app.clock.clone()).await;

    let r = app
        .post(
            "/api/webhooks",
            json!({"url": url, "kinds": ["slot.confirmed", "product.shipped"], "sites": [HOSP]}),
            &admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let sub = r.body["subscription"]["id"].as_str().unwrap().to_string();
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 64,
        "{secret}"
    );
    *rx.secret.lock().unwrap() = secret.clone();
    let listed = app.get("/api/webhooks", &admin).await;
    assert_eq!(listed.body["subscriptions"][0]["id"], sub.as_str());
    assert!(
        !listed.body.to_string().contains(&secret),
        "the secret is shown once"
    );
    assert!(
        !tokio::task::block_in_place(|| app.state.ledger.read(|b| b.records(1, 100_000)))
            .unwrap()
            .iter()
            .any(|r| r.payload.contains(&secret)),
        "the secret is not in the ledger"
    );
    // A subscription for the CPC only: hospital bookings are not its business.
    let r = app
        .post(
            "/api/webhooks",
            json!({"url": url, "kinds": ["slot.confirmed"], "sites": [CPC]}),
            &admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let cpc_sub = r.body["subscription"]["id"].as_str().unwrap().to_string();

    // Slot confirmed; the receiver fails twice, then accepts.
    rx.fail_next.store(2, Ordering::SeqCst);
    book(&app, &nurse, "2025-11-25", "o1").await;
    let mut d = dispatcher(&app.state);
    let r1 = d.round().await.unwrap();
    assert_eq!(
        (r1.enqueued, r1.attempted, r1.retrying),
        (1, 1, 1),
        "{r1:?}"
    );
    assert_eq!(
        d.round().await.unwrap(),
        RoundReport::default(),
        "not due before the backoff"
    );
    advance_s(&app.clock, 9);
    assert_eq!(d.round().await.unwrap().attempted, 0);
    advance_s(&app.clock, 1);
    let r2 = d.round().await.unwrap();
    assert_eq!((r2.attempted, r2.retrying), (1, 1), "{r2:?}");
    let list = deliveries(&app, &admin, &sub).await;
    assert_eq!(list[0]["state"], "pending");
    assert_eq!(list[0]["attempts"], 2);
    assert_eq!(list[0]["last_status"], 500);
    assert!(
        list[0]["last_error"].as_str().unwrap().contains("HTTP 500"),
        "{list:?}"
    );
    let next = Timestamp::parse(list[0]["next_attempt_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        next,
        app.clock.now().plus_us(20_000_000),
        "second wait doubles"
    );
    advance_s(&app.clock, 20);
    let r3 = d.round().await.unwrap();
    assert_eq!((r3.attempted, r3.delivered), (1, 1), "{r3:?}");
    let list = deliveries(&app, &admin, &sub).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["state"], "delivered");
    assert_eq!(list[0]["attempts"], 3);
    assert_eq!(list[0]["last_status"], 200);
    assert!(list[0]["next_attempt_at"].is_null());

    // The three attempts were one notification: same id, same bytes, each signed.
    let seen = rx.seen();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|s| s.delivery == seen[0].delivery && s.body == seen[0].body)
    );
    assert_eq!(
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    assert_eq!(seen[0].event, "slot.confirmed");
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["kind"], "slot.confirmed");
    assert_eq!(body["subscription"], sub.as_str());
    assert_eq!(body["id"], seen[0].delivery.as_str());
    assert_eq!(body["site"], HOSP);
    assert_eq!(body["orders"], json!(["o1"]));
    assert_eq!(body["booking"], "bk-o1");
    assert_eq!(body["detail"]["collection"], "2025-11-25");
    let seq = body["seq"].as_u64().unwrap();
    assert_eq!(seen[0].delivery, format!("{sub}.{seq}"));
    let record = app.get(&format!("/api/ledger/records/{seq}"), &admin).await;
    assert_eq!(record.body["type"], "schedule.booked", "{:?}", record.body);

    // An independent verifier (Python, standard library) accepts the signature, and
    // refuses a changed body, a wrong secret and a replay outside the window.
    let now = app.clock.now().unix_us() / 1_000_000;
    let (ok, out) = python_verify(&secret, &seen[2], &seen[2].body, now);
    assert!(ok, "{out}");
    assert_eq!(
        out,
        format!("OK: slot.confirmed {} seq {seq}", seen[2].delivery)
    );
    let mut tampered = seen[2].body.to_vec();
    tampered.extend_from_slice(b" ");
    assert!(!python_verify(&secret, &seen[2], &tampered, now).0);
    assert!(!python_verify("whsec_wrong", &seen[2], &seen[2].body, now).0);
    assert!(!python_verify(&secret, &seen[2], &seen[2].body, now + 3_600).0);

    // A second booking is delivered at once; a third fails once and stays pending; a
    // fourth is made while no dispatcher runs.
    book(&app, &nurse, "2025-11-27", "o2").await;
    assert_eq!(d.round().await.unwrap().delivered, 1);
    rx.fail_next.store(1, Ordering::SeqCst);
    book(&app, &nurse, "2025-12-02", "o3").await;
    assert_eq!(d.round().await.unwrap().retrying, 1);
    drop(d);
    book(&app, &nurse, "2025-12-04", "o4").await;
    let accepted_before = rx.accepted();
    assert_eq!(accepted_before.len(), 2);

    // Restart: a new server on the same database. Delivered ones are not sent again; the
    // pending one and the one never enqueued are.
    let restarted = reopen::<B>(&db.url, app.clock.clone());
    let mut d2 = dispatcher(&restarted);
    advance_s(&app.clock, 10);
    let r4 = d2.round().await.unwrap();
    assert_eq!(
        (r4.enqueued, r4.attempted, r4.delivered),
        (1, 2, 2),
        "{r4:?}"
    );
    assert_eq!(d2.round().await.unwrap(), RoundReport::default());
    let accepted = rx.accepted();
    assert_eq!(accepted.len(), 4);
    let mut unique = accepted.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        4,
        "each notification accepted once: {accepted:?}"
    );
    let mut orders: Vec<String> = rx
        .seen()
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| serde_json::from_slice::<Value>(&s.body).unwrap()["orders"][0].to_string())
        .collect();
    orders.sort();
    assert_eq!(orders, ["\"o1\"", "\"o2\"", "\"o3\"", "\"o4\""]);
    assert!(
        deliveries(&app, &admin, &cpc_sub).await.is_empty(),
        "site filter: the CPC subscription got no hospital booking"
    );

    // Revocation: a pending delivery is cancelled, later events are not enqueued.
    rx.fail_next.store(1, Ordering::SeqCst);
    book(&app, &nurse, "2025-12-09", "o5").await;
    assert_eq!(d2.round().await.unwrap().retrying, 1);
    let r = app
        .call(
            "DELETE",
            &format!("/api/webhooks/{sub}"),
            Some(json!({"reason": "receiver moved"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["subscription"]["active"], false);
    assert_eq!(
        r.body["subscription"]["revoked"]["reason"],
        "receiver moved"
    );
    book(&app, &nurse, "2025-12-11", "o6").await;
    advance_s(&app.clock, 10);
    let r5 = d2.round().await.unwrap();
    assert_eq!(
        (r5.enqueued, r5.attempted, r5.cancelled),
        (0, 0, 1),
        "{r5:?}"
    );
    let list = deliveries(&app, &admin, &sub).await;
    assert_eq!(list.len(), 5);
    assert_eq!(list[4]["state"], "cancelled");
    let again = app
        .call(
            "DELETE",
            &format!("/api/webhooks/{sub}"),
            Some(json!({"reason": "twice"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    assert_eq!(app.count("webhook.revoked"), 1, "a record, never a delete");
    app.verify_ledger();
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_refuse_bad_input_and_other_sites() {
    let app = TestApp::demo();
    let admin = app.demo_login("admin").await;
    let nurse = app.demo_login("ns-kato").await;
    let post = |body: Value, who: String| {
        let app = &app;
        async move { app.post("/api/webhooks", body, &who).await }
    };
    let good =
        json!({"url": "http://127.0.0.1:9/hook", "kinds": ["product.ready"], "sites": [HOSP]});
    let cases = [
        ("url", json!({"url": "https://h.example/x"}), "TLS"),
        ("url", json!({"url": "ftp://h.example/x"}), "http://"),
        (
            "url",
            json!({"url": "http://user:pw@h.example/x"}),
            "credentials",
        ),
        (
            "kinds",
            json!({"kinds": ["product.teleported"]}),
            "product.ready",
        ),
        ("kinds", json!({"kinds": []}), "at least one"),
        ("sites", json!({"sites": []}), "site_admin"),
    ];
    for (field, patch, words) in cases {
        let mut body = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = post(body, admin.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {:?}",
            r.body
        );
        assert_eq!(r.body["error"]["field"], field, "{:?}", r.body);
        assert!(r.message().contains(words), "{field}: {}", r.message());
    }
    let r = post(good.clone(), nurse.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = post(good.clone(), admin.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let sub = r.body["subscription"]["id"].as_str().unwrap().to_string();
    // Another site's staff neither see nor end it.
    let r = app.get("/api/webhooks", &nurse).await;
    assert_eq!(r.body["subscriptions"], json!([]));
    let r = app
        .call(
            "DELETE",
            &format!("/api/webhooks/{sub}"),
            Some(json!({"reason": "x"})),
            Some(&nurse),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = app
        .call(
            "DELETE",
            &format!("/api/webhooks/{sub}"),
            Some(json!({"reason": " "})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = app.get("/api/webhooks/kinds", &nurse).await;
    assert_eq!(r.body["kinds"].as_array().unwrap().len(), 9);
}

/// Order milestones (however they are recorded) notify the order's hospital and
/// manufacturer; a body names only the orders of the subscriber's sites; a shipment
/// moving two orders is one notification.
#[tokio::test(flavor = "multi_thread")]
async fn order_milestones_become_notifications_for_the_orders_sites() {
    use cellops_custody::{OrderId, SubjectId};
    use cellops_domain::{SiteId, UserId};
    use cellops_orders::{Milestone, MilestoneRecorded, OrderEvent};

    let app = TestApp::demo();
    let admin = app.demo_login("admin").await;
    // The CPC makes PRIME CAR-T (an order's manufacturer must).
    let operator = app.demo_login("op-tanaka").await;
    let qa = app.demo_login("qa-ito").await;
    let qa_password = cellops_server::provision::demo_password("qa-ito");
    app.approved_recipe(
        CPC,
        "prime-car-t.toml",
        "prime-car-t",
        &operator,
        (&qa, "qa-ito", &qa_password),
    )
    .await;
    let (rx, url) = Receiver::start(app.clock.clone()).await;
    let r = app
        .post(
            "/api/webhooks",
            json!({"url": url, "kinds": ["batch.started", "product.ready"], "sites": [HOSP]}),
            &admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    *rx.secret.lock().unwrap() = r.body["secret"].as_str().unwrap().to_string();

    // Two orders of the hospital placed through the API's own records.
    let doctor = app.demo_login("dr-yamada").await;
    let mut orders = Vec::new();
    for _ in 0..2 {
        let r = app
            .post("/api/patients", json!({"site": HOSP}), &doctor)
            .await;
        let subject = r.body["subject"].as_str().unwrap().to_string();
        let at = |h: i64| app.clock.now().plus_us(h * 3_600_000_000).to_string();
        let r = app
            .post(
                "/api/orders",
                json!({"site": HOSP, "subject": subject, "product": "prime-car-t",
                       "manufacturer": CPC, "window_earliest": at(24), "window_latest": at(24 * 90),
                       "dose_cells": 1.0e8, "dose_basis": "per_body"}),
                &doctor,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        orders.push((
            OrderId::parse(r.body["order"].as_str().unwrap()).unwrap(),
            SubjectId::parse(&subject).unwrap(),
        ));
    }
    // The milestone records as the flow writes them (here appended directly: which
    // module writes them is the orders module's business, the notification follows).
    let milestone = |order: &OrderId, m: Milestone, site: &str| {
        let e = OrderEvent::Milestone(MilestoneRecorded {
            order: order.clone(),
            milestone: m,
            unit: None,
            batch: Some("B-1".into()),
            predicted_at: None,
            manual: true,
            note: None,
            by: UserId::parse("op-tanaka").unwrap(),
            site: SiteId::parse(site).unwrap(),
            at: app.clock.now(),
        });
        NewRecord::new(
            &e.stream(),
            e.type_name(),
            1,
            e.to_json(),
            "op-tanaka",
            site,
        )
    };
    let records = vec![
        milestone(&orders[0].0, Milestone::ManufacturingStarted, CPC),
        milestone(&orders[1].0, Milestone::ReceivedAtHospital, HOSP),
    ];
    app.state.append(records, None).await.unwrap();
    let mut d = dispatcher(&app.state);
    let r = d.round().await.unwrap();
    let seen = rx.seen();
    // Sent concurrently: put them in ledger order.
    let mut kinds: Vec<(String, Value)> = seen
        .iter()
        .map(|s| {
            let b: Value = serde_json::from_slice(&s.body).unwrap();
            (s.event.clone(), b)
        })
        .collect();
    kinds.sort_by_key(|(_, b)| b["seq"].as_u64());
    assert_eq!(r.delivered, 2, "{r:?} {kinds:?}");
    assert_eq!(kinds[0].0, "batch.started");
    assert_eq!(kinds[0].1["orders"], json!([orders[0].0.as_str()]));
    assert_eq!(kinds[0].1["site"], CPC, "where it happened");
    assert_eq!(kinds[1].0, "product.ready");
    assert_eq!(kinds[1].1["orders"], json!([orders[1].0.as_str()]));
    assert_eq!(kinds[1].1["site"], HOSP);
}
