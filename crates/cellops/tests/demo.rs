//! The README's first command and the headless demo, as the real binary: `cellops serve
//! --demo` runs the demo network's patients live beside the server in an accelerated clock
//! (or before serving), every patient infused, visible through the API to the hospital, not
//! to the licensee; and `cellops demo --until done` prints a summary per product with the
//! ledger verified.

mod common;

use common::{Client, Server, SqliteDb, cellops, http};
use serde_json::{Value, json};

fn login(addr: std::net::SocketAddr, user: &str) -> String {
    let body = json!({"user_id": user, "password": cellops_server::provision::demo_password(user)})
        .to_string();
    let r = http(addr, "POST", "/api/auth/login", &[], Some(&body)).unwrap();
    assert_eq!(r.status, 200, "login {user}: {}", r.text());
    r.header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn get(addr: std::net::SocketAddr, cookie: &str, path: &str) -> (u16, Value) {
    let r = http(addr, "GET", path, &[("Cookie", cookie)], None).unwrap();
    (r.status, r.json().unwrap_or(Value::Null))
}

#[test]
fn serve_demo_runs_the_network_history_before_serving() {
    let db = SqliteDb::new();
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(
        &db.url(),
        &["--demo", "--demo-day-seconds", "0"],
        logs.path(),
    );
    let out = server.stdout_text();
    assert!(out.contains("demo history: 120 simulated days"), "{out}");
    every_patient_infused(&server, &out);
}

#[test]
fn serve_demo_runs_the_patients_live_in_an_accelerated_clock() {
    let db = SqliteDb::new();
    let logs = tempfile::tempdir().unwrap();
    // A fast pace, and a history long enough that the clock is still behind the wall clock
    // when the patients are done.
    let server = Server::start(
        &db.url(),
        &[
            "--demo",
            "--demo-day-seconds",
            "0.05",
            "--demo-history-days",
            "3650",
        ],
        logs.path(),
    );
    // The server answers as soon as it listens (the patients run on in the background).
    let health = http(server.addr, "GET", "/health", &[], None).unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    let started = std::time::Instant::now();
    let out = loop {
        let out = server.stdout_text();
        if out.contains("demo network done") {
            break out;
        }
        assert!(
            !server.stderr_text().contains("demo network stopped"),
            "{}",
            server.stderr_text()
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(900),
            "the live demo did not finish: {out}\n{}",
            server.stderr_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        out.contains("demo: the network's patients run live, one simulated day per 0.05 s"),
        "{out}"
    );
    every_patient_infused(&server, &out);
    // Live, a culture advances a slice at a time as the clock runs: the first banked lot's
    // records were written over its days of culture, not at one instant.
    let qa = Client::login(
        server.addr,
        "qa-ito",
        &cellops_server::provision::demo_password("qa-ito"),
    );
    let recorded: Vec<cellops_domain::Timestamp> = qa
        .stream_records("batch/lot-0001")
        .iter()
        .map(|r| cellops_domain::Timestamp::parse(r["recorded_at"].as_str().unwrap()).unwrap())
        .collect();
    let days = (recorded.last().unwrap().unix_us() - recorded[0].unix_us()) as f64 / 86_400e6;
    assert!(days > 5.0, "the lot's records span {days} days");
}

/// Every demo patient was infused; the hospital sees its orders, the licensee none.
fn every_patient_infused(server: &Server, out: &str) {
    for product in ["prime-car-t", "bm-msc", "allo-car-t"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(product) && l.contains("infused   2")),
            "{product}: {out}"
        );
    }
    let doctor = login(server.addr, "dr-yamada");
    let (status, orders) = get(server.addr, &doctor, "/api/orders?site=hosp-kyoto");
    assert_eq!(status, 200, "{orders}");
    let orders = orders["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 3, "{orders:?}");
    let id = orders[0]["order"].as_str().unwrap();
    let (_, order) = get(server.addr, &doctor, &format!("/api/orders/{id}"));
    assert_eq!(order["stage"], "infused", "{order}");
    // The licensee company sees none of the hospital's patients.
    let licensee = login(server.addr, "lic-admin");
    let (status, _) = get(server.addr, &licensee, &format!("/api/orders/{id}"));
    assert_eq!(status, 404);
}

#[test]
fn demo_until_done_prints_a_summary_per_product() {
    let out = cellops(&["demo", "--until", "done"], None);
    let out = out.expect_code(0, "cellops demo");
    for product in ["prime-car-t", "bm-msc", "allo-car-t"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(product) && l.contains("patients   2")),
            "{product}: {}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("ledger verified:"), "{}", out.stdout);
    // Bad input names the argument and the fix.
    let bad = cellops(&["demo", "--until", "tomorrow"], None);
    assert!(bad.stderr.contains("--until done"), "{}", bad.stderr);
}
