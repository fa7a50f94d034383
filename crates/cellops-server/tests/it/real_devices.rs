//! A batch on a configured device (`serve --devices`): the device's controller runs in the
//! server (`start_controllers`), device steps started over HTTP go to the device through it,
//! and the device's completion of the harvest program makes the harvested unit in custody in
//! the same append, as on the simulated path. The device here is the simulated device
//! running in its own (fast) time beside the server, reached through the controller as any
//! device; the OPC UA path end to end is `crates/cellops/tests/serve_devices.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{PASSWORD, TestApp};
use axum::http::StatusCode;
use cellops_device::{
    CultureDevice, DeviceError, DeviceInfo, DeviceStatus, Program, Sample, SimulatedDevice,
};
use cellops_process::units::SetPoint;
use cellops_server::routes::batch::devices::{DevicesConfig, LeaseBackend, start_controllers};
use serde_json::json;
use std::collections::BTreeMap;

const DAY_US: i64 = 86_400_000_000;
/// Longest wait for the controller (a bound on a wait, not a speed test).
const WAIT: Duration = Duration::from_secs(60);

/// Two device steps: a day of expansion, then the harvest.
const RECIPE: &str = r#"format_version = 1
product = "prime-car-t"
product_name = "PRIME CAR-T, device steps only (test)"
version = "9.0.0"
description = "Expansion and harvest on a configured device."

[[qualifications]]
id = "cpc-device-operation"
name_en = "Operation of the automated culture device"
name_ja = "自動培養装置の操作"

[[phases]]
id = "culture"
name = "Culture and harvest"

[[phases.steps]]
id = "expansion"
name = "Expansion"
kind = "device"
operation = "expansion"
duration_hours = 24
set_points = { temperature_c = 37.0, co2_percent = 5.0 }

[[phases.steps]]
id = "harvest"
name = "Harvest"
kind = "device"
operation = "harvest"
duration_hours = 2
set_points = { temperature_c = 20 }
"#;

/// The simulated device shared between the controller (through `CultureDevice`) and the
/// thread that runs its time.
struct Shared(Arc<Mutex<SimulatedDevice>>);

impl CultureDevice for Shared {
    fn info(&self) -> DeviceInfo {
        self.0.lock().unwrap().info()
    }
    fn start_program(&mut self, program: &Program) -> Result<(), DeviceError> {
        self.0.lock().unwrap().start_program(program)
    }
    fn set_points(&mut self, set_points: &BTreeMap<SetPoint, f64>) -> Result<(), DeviceError> {
        self.0.lock().unwrap().set_points(set_points)
    }
    fn status(&mut self) -> Result<DeviceStatus, DeviceError> {
        self.0.lock().unwrap().status()
    }
    fn read_samples(&mut self, after_seq: u64, max: usize) -> Result<Vec<Sample>, DeviceError> {
        self.0.lock().unwrap().read_samples(after_seq, max)
    }
    fn safe_state(&mut self, reason: &str) -> Result<(), DeviceError> {
        self.0.lock().unwrap().safe_state(reason)
    }
}

async fn wait_for(app: &TestApp, what: &str, done: impl Fn(&TestApp) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        app.state.sync().await.unwrap();
        if done(app) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_completes_device_steps_and_the_harvest_makes_the_custody_unit() {
    let app = TestApp::new();
    let op = app.login("op").await;
    let qa = app.login("qa").await;
    let r = app
        .post(
            "/api/recipes",
            json!({"site": "cpc", "text": RECIPE, "file": "device-steps.toml"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    let r = app
        .post(
            "/api/recipes/prime-car-t/9.0.0/approve",
            json!({"password": PASSWORD, "user_id": "qa"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // The starting unit in custody, seeded into the in-process unit.
    let r = app
        .post("/api/dins", json!({"site": "cpc", "count": 1}), &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let din = r.body["dins"][0].as_str().unwrap().to_string();
    let collected = format!("{din}-S1000100");
    let in_process = format!("{din}-S1500100");
    let expires = app.state.clock.now().plus_us(40 * DAY_US);
    let r = app
        .post(
            "/api/units",
            json!({"code": collected, "patient": "subj-0042", "expires_at": expires,
                   "site": "cpc", "location": "receipt"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // The device, its time running 30 simulated minutes per 10 ms, and its controller.
    let origin = time::OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap();
    let sim = Arc::new(Mutex::new(
        SimulatedDevice::new(
            "bio-h",
            cellops_twin::product::Product::PrimeCarT,
            5,
            origin,
            600,
        )
        .unwrap(),
    ));
    let running = Arc::new(AtomicBool::new(true));
    let ticker = {
        let (sim, running) = (sim.clone(), running.clone());
        std::thread::spawn(move || {
            while running.load(Ordering::SeqCst) {
                {
                    let mut d = sim.lock().unwrap();
                    let next = d.now() + time::Duration::minutes(30);
                    d.advance_to(next).unwrap();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    // bio-down is configured but never answers.
    let config = DevicesConfig::from_toml(
        "format_version = 1\n[[devices]]\nid = \"bio-h\"\nsite = \"cpc\"\nkind = \"opcua\"\nendpoint = \"opc.tcp://127.0.0.1:4840/\"\npoll_interval_ms = 100\n\n[[devices]]\nid = \"bio-down\"\nsite = \"cpc\"\nkind = \"opcua\"\nendpoint = \"opc.tcp://127.0.0.1:4841/\"\n",
        "devices.toml",
    )
    .unwrap();
    let device = sim.clone();
    let controllers = start_controllers(
        &app.state,
        &config,
        LeaseBackend::Memory,
        "test-server",
        move |entry| match entry.id.as_str() {
            "bio-h" => Ok(Shared(device.clone())),
            other => Err(DeviceError::Unreachable {
                device: other.to_string(),
                reason: "connection refused".into(),
            }),
        },
    )
    .unwrap();

    // A device step on a device that cannot be reached does not start: 409 naming it.
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc", "product": "prime-car-t", "version": "9.0.0",
                   "starting_unit": "A999026000001-S1234100", "batch": "b-down", "device": "bio-down"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post("/api/batches/b-down/steps/expansion/start", json!({}), &op)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(
        r.message().contains("device bio-down") && r.message().contains("not connected"),
        "{}",
        r.message()
    );
    assert_eq!(app.count("batch.step_started"), 0);

    // The device stands at cpc: a batch at another site cannot use it.
    let start = json!({"site": "cpc", "product": "prime-car-t", "version": "9.0.0",
                       "starting_unit": collected, "batch": "b-real", "device": "bio-h",
                       "harvest": {"product_code": "S2000100", "shelf_life_hours": 8760}});
    let mut elsewhere = start.clone();
    elsewhere["site"] = json!("hosp");
    let r = app.post("/api/batches", elsewhere, &op).await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    let r = app.post("/api/batches", start, &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/units/derive",
            json!({"operation": "formulate", "parents": [collected],
                   "children": [{"code": in_process, "expires_at": expires}],
                   "site": "cpc", "location": "culture-device"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // Expansion: started over HTTP, run by the device, completed by the controller.
    let r = app
        .post("/api/batches/b-real/steps/expansion/start", json!({}), &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    wait_for(&app, "the expansion completes", |a| {
        a.count("batch.step_completed") == 1
    })
    .await;
    let r = app
        .post("/api/batches/b-real/steps/harvest/start", json!({}), &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The phase's telemetry summary follows the completing append.
    wait_for(
        &app,
        "the harvest completes and the phase is summarized",
        |a| {
            a.count("batch.batch_completed") == 1
                && a.count("culture.phase_telemetry_summarized") == 1
        },
    )
    .await;
    running.store(false, Ordering::SeqCst);
    ticker.join().unwrap();
    drop(controllers);

    let product = format!("{din}-S2000100");
    let r = app.get("/api/batches/b-real", &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "Completed", "{:#}", r.body);
    assert_eq!(r.body["harvested_units"], json!([product]), "{:#}", r.body);
    // The harvest record and the derivation are one append, by the controller.
    let records = tokio::task::block_in_place(|| {
        use cellops_ledger::Backend;
        app.state.ledger.read(|b| b.records(1, 100_000))
    })
    .unwrap();
    let harvest = records
        .iter()
        .position(|r| r.event_type == "culture.units_harvested")
        .expect("a harvest record");
    assert_eq!(records[harvest].actor, "system-controller");
    let derived = records
        .iter()
        .rposition(|r| r.event_type == "unit.derived")
        .expect("the product's derivation");
    assert!(
        derived > harvest,
        "derived at {derived}, harvest at {harvest}"
    );
    // Custody holds the product, made from the in-process unit, from the collected unit.
    let r = app.get(&format!("/api/units/{product}/trace"), &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["ancestors"],
        json!([in_process, collected]),
        "{:#}",
        r.body
    );
    // The device's telemetry is in the batch's telemetry, and each phase is summarized.
    let r = app
        .get("/api/batches/b-real/telemetry?limit=50000", &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(
        !r.body["samples"].as_array().unwrap().is_empty(),
        "{:#}",
        r.body
    );
    assert_eq!(app.count("culture.phase_telemetry_summarized"), 1);
}
