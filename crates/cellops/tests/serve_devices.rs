//! `cellops serve --devices FILE` with a real device over OPC UA: `cellops device
//! serve-opcua` (the simulated device behind the OPC UA server, in its own process) is the
//! device, the real `cellops serve` on PostgreSQL runs its controller (lease in
//! `device_leases`). A batch's device step started over HTTP runs on the device, its
//! telemetry lands in the server's store (`GET /api/batches/{id}/telemetry`), the step
//! completes in the ledger when the device reports the program completed, and a device
//! killed mid-step becomes a deviation after the contact grace. A malformed device file is
//! refused naming the file, line, field and fix.

mod common;

use common::{PgDb, Response, Server, SqliteDb, bin, cellops, http};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for the device and the server (a bound on a wait, not a speed test).
const WAIT: Duration = Duration::from_secs(60);

fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    body: Option<&Value>,
) -> Response {
    let body = body.map(Value::to_string);
    http(addr, method, path, &[("Cookie", cookie)], body.as_deref())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// A demo user signed in (session cookie), e-signature policy acknowledged.
struct Session {
    addr: SocketAddr,
    cookie: String,
    user: String,
}

impl Session {
    fn demo(addr: SocketAddr, user: &str) -> Session {
        let password = cellops_server::provision::demo_password(user);
        let body = json!({"user_id": user, "password": password}).to_string();
        let r = http(addr, "POST", "/api/auth/login", &[], Some(&body)).unwrap();
        assert_eq!(r.status, 200, "login {user}: {}", r.text());
        let cookie = r
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let s = Session {
            addr,
            cookie,
            user: user.to_string(),
        };
        s.post("/api/auth/esig-policy", json!({}));
        s
    }

    fn signature(&self) -> Value {
        json!({"password": cellops_server::provision::demo_password(&self.user), "user_id": self.user})
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let r = call(self.addr, "POST", path, &self.cookie, Some(&body));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json().unwrap()
    }

    fn get(&self, path: &str) -> Value {
        let r = call(self.addr, "GET", path, &self.cookie, None);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json().unwrap()
    }

    fn records(&self, batch: &str) -> Vec<Value> {
        self.get(&format!(
            "/api/ledger/records?stream=batch/{batch}&limit=1000"
        ))["records"]
            .as_array()
            .unwrap()
            .clone()
    }
}

/// `cellops device serve-opcua` on a free port; killed when dropped.
struct DeviceProcess {
    child: Child,
    endpoint: String,
}

impl DeviceProcess {
    fn start(device_id: &str) -> DeviceProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(bin())
            .args([
                "device",
                "serve-opcua",
                "--device-id",
                device_id,
                "--port",
                &port.to_string(),
                // One simulated hour per wall second: the 4 h selection takes 4 s.
                "--speed",
                "3600",
                "--sample-period-s",
                "600",
                "--watchdog-seconds",
                "0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cellops device serve-opcua starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("serving simulated device"), "{line:?}");
        let endpoint = line
            .split_whitespace()
            .find(|w| w.starts_with("opc.tcp://"))
            .unwrap()
            .to_string();
        DeviceProcess { child, endpoint }
    }

    /// SIGKILL: the device vanishes mid-step.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DeviceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn step_completed(records: &[Value], step: &str) -> bool {
    records.iter().any(|r| {
        r["type"] == "batch.step_completed" && r["payload"]["step"]["id"].as_str() == Some(step)
    })
}

fn wait_until(what: &str, server: &Server, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}; server log:\n{}",
            server.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_device_step_runs_on_a_configured_opc_ua_device_through_the_controller() {
    let Some(db) = PgDb::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    let device_id = format!("bio-e2e-{}", std::process::id());
    let mut device = DeviceProcess::start(&device_id);
    let config = dir.path().join("devices.toml");
    std::fs::write(
        &config,
        format!(
            "format_version = 1\n\n[[devices]]\nid = \"{device_id}\"\nsite = \"cpc-kyoto\"\nkind = \"opcua\"\nendpoint = \"{}\"\nlease_ttl_s = 6\ncontact_grace_s = 3\npoll_interval_ms = 500\n",
            device.endpoint
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let server = Server::start(
        &db.url,
        &[
            "--demo",
            "--demo-history-days",
            "0",
            "--devices",
            &config_arg,
        ],
        dir.path(),
    );
    let announced = format!("device {device_id} at site cpc-kyoto: controller for opc.tcp://");
    wait_until("serve announces the device's controller", &server, || {
        server.stdout_text().contains(&announced)
    });
    let addr = server.addr;
    let op = Session::demo(addr, "op-tanaka");
    let qa = Session::demo(addr, "qa-ito");
    op.post(
        "/api/recipes",
        json!({"site": "cpc-kyoto", "shipped": "prime-car-t.toml"}),
    );
    qa.post("/api/recipes/prime-car-t/1.0.0/approve", qa.signature());
    // A configured device stands at one site: a batch elsewhere cannot use it.
    let r = call(
        addr,
        "POST",
        "/api/batches",
        &op.cookie,
        Some(
            &json!({"site": "hosp-kyoto", "product": "prime-car-t", "starting_unit": "A999026000008-S1234100",
                     "batch": "real-x", "device": device_id}),
        ),
    );
    assert_ne!(r.status, 200, "{}", r.text());
    let batch = "real-1";
    op.post(
        "/api/batches",
        json!({"site": "cpc-kyoto", "product": "prime-car-t", "starting_unit": "A999026000007-S1234100",
               "batch": batch, "device": device_id}),
    );
    // A second batch on the same device is refused while the first runs.
    let r = call(
        addr,
        "POST",
        "/api/batches",
        &op.cookie,
        Some(
            &json!({"site": "cpc-kyoto", "product": "prime-car-t", "starting_unit": "A999026000009-S1234100",
                     "batch": "real-2", "device": device_id}),
        ),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("runs batch real-1"), "{}", r.text());

    // The operator's steps before the first device step.
    let steps = |s: &str| format!("/api/batches/{batch}/steps/{s}");
    op.post(&format!("{}/start", steps("receive-apheresis")), json!({}));
    op.post(
        &format!("{}/complete", steps("receive-apheresis")),
        op.signature(),
    );
    op.post(&format!("{}/start", steps("receipt-count")), json!({}));
    op.post(
        &format!("{}/results", steps("receipt-count")),
        json!({"results": {"viability_percent": 94.0, "cd3_total_viable_cells": 1.2e9}}),
    );
    op.post(
        &format!("{}/start", steps("install-kit")),
        json!({"lots": {"tubing-set": "TS-1", "cd4-cd8-microbeads": "MB-1", "culture-medium": "CM-1"}}),
    );
    op.post(
        &format!("{}/complete", steps("install-kit")),
        op.signature(),
    );

    // The device step: started over HTTP, run by the device, completed by the controller.
    op.post(&format!("{}/start", steps("selection")), json!({}));
    wait_until("the selection step completes", &server, || {
        step_completed(&op.records(batch), "selection")
    });
    let records = op.records(batch);
    let completed = records
        .iter()
        .find(|r| r["type"] == "batch.step_completed" && r["payload"]["step"]["id"] == "selection")
        .unwrap();
    assert_eq!(completed["actor"], "system-controller", "{completed:#}");
    let telemetry = op.get(&format!("/api/batches/{batch}/telemetry?limit=50000"));
    let samples = telemetry["samples"].as_array().unwrap();
    assert!(!samples.is_empty(), "{telemetry:#}");
    // The device's own signal list, and gap-free sequence numbers from 1.
    assert!(
        telemetry["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "temperature_c"),
        "{telemetry:#}"
    );
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(s[0].as_u64(), Some(i as u64 + 1), "{s}");
    }

    // The next device step starts; the device dies mid-step: after the contact grace the
    // controller's deviation is recorded on the batch and holds it.
    op.post(
        &format!("{}/start", steps("activation-culture")),
        json!({"lots": {"activation-reagent": "AR-1"}}),
    );
    let before = samples.len();
    wait_until("telemetry of the second step arrives", &server, || {
        op.get(&format!("/api/batches/{batch}/telemetry?limit=50000"))["samples"]
            .as_array()
            .unwrap()
            .len()
            > before
    });
    device.kill();
    wait_until("the lost contact is a deviation", &server, || {
        op.records(batch).iter().any(|r| {
            r["type"] == "batch.deviation_opened"
                && r["payload"]
                    .to_string()
                    .contains("lost contact with device")
        })
    });
    let records = op.records(batch);
    let deviation = records
        .iter()
        .find(|r| {
            r["type"] == "batch.deviation_opened"
                && r["payload"].to_string().contains("lost contact")
        })
        .unwrap();
    assert_eq!(deviation["actor"], "system-controller");
    let text = deviation["payload"].to_string();
    assert!(
        text.contains(&device_id) && text.contains("activation-culture"),
        "{text}"
    );
    assert!(
        !step_completed(&records, "activation-culture"),
        "a dead device completes nothing"
    );
    let status = op.get(&format!("/api/batches/{batch}"));
    assert!(
        status.to_string().contains("lost contact"),
        "the batch shows the deviation: {status:#}"
    );
    // The lease is the server's, in PostgreSQL.
    let mut pg = db.client();
    let row = pg
        .query_one(
            "SELECT holder FROM device_leases WHERE device = $1",
            &[&device_id],
        )
        .unwrap();
    let holder: String = row.get(0);
    assert!(holder.starts_with("cellops-serve@"), "{holder}");
    drop(server);
}

#[test]
fn a_malformed_device_file_is_refused_naming_file_line_and_field() {
    let db = SqliteDb::new();
    let path = db.dir.path().join("devices.toml");
    std::fs::write(
        &path,
        "format_version = 1\n\n[[devices]]\nid = \"bio-1\"\nsite = \"cpc-kyoto\"\nkind = \"opcua\"\nendpoint = \"10.0.0.5:4840\"\n",
    )
    .unwrap();
    let url = db.url();
    let path_arg = path.display().to_string();
    let out = cellops(
        &[
            "serve",
            "--database",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--devices",
            &path_arg,
        ],
        None,
    );
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("{path_arg}:7:12: devices[0].endpoint:"))
            && out.stderr.contains("opc.tcp://HOST:PORT/"),
        "{}",
        out.stderr
    );
}

/// Sequence numbers of the batch's stored telemetry, in order.
fn telemetry_seqs(op: &Session, batch: &str) -> Vec<u64> {
    op.get(&format!("/api/batches/{batch}/telemetry?limit=50000"))["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_u64().unwrap())
        .collect()
}

#[test]
fn a_simulated_batch_goes_on_after_the_server_restarts() {
    let db = SqliteDb::new();
    let url = db.url();
    let demo = ["--demo", "--demo-history-days", "0"];
    let mut server = Server::start(&url, &demo, db.dir.path());
    let op = Session::demo(server.addr, "op-tanaka");
    let qa = Session::demo(server.addr, "qa-ito");
    op.post(
        "/api/recipes",
        json!({"site": "cpc-kyoto", "shipped": "prime-car-t.toml"}),
    );
    qa.post("/api/recipes/prime-car-t/1.0.0/approve", qa.signature());
    op.post(
        "/api/batches",
        json!({"site": "cpc-kyoto", "product": "prime-car-t", "starting_unit": "A999026000011-S1234100",
               "batch": "sim-r", "simulation": {"seed": 7, "sample_period_s": 900}}),
    );
    let mut simulate = json!({"hours": 30});
    simulate
        .as_object_mut()
        .unwrap()
        .extend(op.signature().as_object().unwrap().clone());
    let r = op.post("/api/batches/sim-r/simulate", simulate.clone());
    assert_eq!(r["stopped"], "time_reached", "{r:#}");
    // A fault with parameters: the rebuilt device has it too.
    op.post(
        "/api/batches/sim-r/faults",
        json!({"fault": "sensor_drift", "sensor": "ph", "per_h": 0.01}),
    );
    let before = op.get("/api/batches/sim-r");
    let seqs_before = telemetry_seqs(&op, "sim-r");
    assert!(!seqs_before.is_empty());
    assert_eq!(server.terminate().code(), Some(0));

    let server = Server::start(&url, &demo, db.dir.path());
    assert!(
        server
            .stdout_text()
            .contains("simulated devices rebuilt from the ledger for batch(es) sim-r"),
        "{}",
        server.stdout_text()
    );
    let op = Session::demo(server.addr, "op-tanaka");
    let after = op.get("/api/batches/sim-r");
    // The device's clock is where it was: the batch time does not go back.
    assert!(
        after["batch_time"].as_str() >= before["batch_time"].as_str(),
        "{} then {}",
        before["batch_time"],
        after["batch_time"]
    );
    let r = op.post("/api/batches/sim-r/simulate", simulate);
    assert_eq!(r["stopped"], "time_reached", "{r:#}");
    assert_ne!(
        r["due_step"], before["due_step"],
        "the batch went on: {r:#}"
    );
    // Telemetry goes on where it stopped: every sample once, no gap.
    let seqs = telemetry_seqs(&op, "sim-r");
    assert!(seqs.len() > seqs_before.len(), "{} samples", seqs.len());
    assert_eq!(seqs[..seqs_before.len()], seqs_before[..]);
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(*s, i as u64 + 1, "sample {i}");
    }
    drop(server);
}

/// The independent asyncua device (`crates/cellops-opcua/tests/peer/device_server.py`,
/// written from docs/devices.md, not from our server) in real time; killed when dropped.
struct Peer(Child, String);

impl Peer {
    fn start(asset_id: &str) -> Peer {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../cellops-opcua/tests/peer/device_server.py"
        );
        let mut child = Command::new("python3")
            .args([
                script,
                "--asset-id",
                asset_id,
                "--period",
                "0.2",
                // One program hour per wall hour: the device runs in real time.
                "--hours-per-second",
                &(1.0 / 3600.0).to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with asyncua must be installed (scripts/setup-test-deps)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let endpoint = line
            .trim()
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("the peer did not start: {line:?}"))
            .to_string();
        Peer(child, endpoint)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One device step of 7.2 s, so that the peer runs it in real time.
const SHORT_RECIPE: &str = r#"format_version = 1
product = "prime-car-t"
product_name = "PRIME CAR-T, one short device step (test)"
version = "9.1.0"
description = "A device step of 0.002 h on a real-time device."

[[qualifications]]
id = "cpc-device-operation"
name_en = "Operation of the automated culture device"
name_ja = "自動培養装置の操作"

[[phases]]
id = "culture"
name = "Culture"

[[phases.steps]]
id = "short-culture"
name = "Short culture"
kind = "device"
operation = "expansion"
duration_hours = 0.002
set_points = { temperature_c = 36.5, ph = 7.1 }
"#;

fn at(record: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        record["payload"]["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[test]
fn a_device_step_runs_on_the_independent_asyncua_peer_in_real_time() {
    let db = SqliteDb::new();
    let asset = format!("peer-{}", std::process::id());
    let peer = Peer::start(&asset);
    let config = db.dir.path().join("devices.toml");
    std::fs::write(
        &config,
        format!(
            "format_version = 1\n\n[[devices]]\nid = \"{asset}\"\nsite = \"cpc-kyoto\"\nkind = \"opcua\"\nendpoint = \"{}\"\npoll_interval_ms = 250\n",
            peer.1
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let server = Server::start(
        &db.url(),
        &[
            "--demo",
            "--demo-history-days",
            "0",
            "--devices",
            &config_arg,
        ],
        db.dir.path(),
    );
    let op = Session::demo(server.addr, "op-tanaka");
    let qa = Session::demo(server.addr, "qa-ito");
    op.post(
        "/api/recipes",
        json!({"site": "cpc-kyoto", "text": SHORT_RECIPE, "file": "short.toml"}),
    );
    qa.post("/api/recipes/prime-car-t/9.1.0/approve", qa.signature());
    op.post(
        "/api/batches",
        json!({"site": "cpc-kyoto", "product": "prime-car-t", "version": "9.1.0",
               "starting_unit": "A999026000012-S1234100", "batch": "peer-1", "device": asset}),
    );
    // The controller may still be connecting: the step starts once the device is reached.
    let deadline = Instant::now() + WAIT;
    loop {
        let r = call(
            server.addr,
            "POST",
            "/api/batches/peer-1/steps/short-culture/start",
            &op.cookie,
            Some(&json!({})),
        );
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 409, "{}", r.text());
        assert!(r.text().contains("not connected"), "{}", r.text());
        assert!(Instant::now() < deadline, "{}", r.text());
        std::thread::sleep(Duration::from_millis(250));
    }
    wait_until("the peer completes the step", &server, || {
        step_completed(&op.records("peer-1"), "short-culture")
    });
    let records = op.records("peer-1");
    let started = records
        .iter()
        .find(|r| r["type"] == "batch.step_started")
        .unwrap();
    let completed = records
        .iter()
        .find(|r| r["type"] == "batch.step_completed")
        .unwrap();
    assert_eq!(completed["actor"], "system-controller");
    // Not before its duration on the device's (real-time) clock.
    assert!(
        at(completed) - at(started) >= time::Duration::milliseconds(7_200),
        "{} → {}",
        started["payload"]["at"],
        completed["payload"]["at"]
    );
    assert!(
        records.iter().any(|r| r["type"] == "batch.batch_completed"),
        "the recipe's only step completed the batch"
    );
    // The peer's own signals, and its temperature at the step's set point (36.5 °C).
    let telemetry = op.get("/api/batches/peer-1/telemetry?limit=50000");
    assert_eq!(
        telemetry["signals"],
        json!(["temperature_c", "ph", "do_percent"]),
        "{telemetry:#}"
    );
    let temperatures: Vec<f64> = telemetry["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s[2] == 0)
        .map(|s| s[3].as_f64().unwrap())
        .collect();
    assert!(
        temperatures.iter().any(|t| (36.5..36.6).contains(t)),
        "{temperatures:?}"
    );
    drop(server);
}
