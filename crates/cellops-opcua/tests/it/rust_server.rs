//! The Rust OPC UA server exposing the simulated device: driven by the adapter and by the
//! controller, including a server that disappears and comes back, and the watchdog.

use std::time::{Duration, Instant};

use cellops_controller::{
    ControlEvent, Controller, ControllerConfig, MemoryLeaseStore, MemorySink,
};
use cellops_device::{CultureDevice, DeviceState, Program, ProgramRef};
use cellops_opcua::OpcUaDevice;
use cellops_process::recipe::model::DeviceOperation;
use cellops_process::units::SetPoint;
use std::collections::BTreeMap;

use crate::support::{RustServer, client_options, sim, t0};

fn program() -> Program {
    Program {
        reference: ProgramRef {
            batch: "B-7".into(),
            step: "expand".into(),
        },
        operation: DeviceOperation::Expansion,
        set_points: BTreeMap::from([
            (SetPoint::TemperatureC, 37.0),
            (SetPoint::PerfusionMlPerDay, 500.0),
        ]),
        duration_hours: 24.0,
    }
}

fn hours(h: f64) -> time::Duration {
    time::Duration::seconds_f64(h * 3600.0)
}

#[test]
fn adapter_sees_the_simulated_device_through_the_rust_server() {
    let pki = tempfile::tempdir().unwrap();
    let device = sim("bio-rs-1");
    let server = RustServer::start(device.clone(), 0, None, &pki);
    let mut remote = OpcUaDevice::connect(&server.endpoint(), client_options(&pki)).unwrap();

    let local_info = device.lock().unwrap().info();
    assert_eq!(
        remote.info(),
        local_info,
        "identification and signals cross OPC UA unchanged"
    );

    remote.start_program(&program()).unwrap();
    device
        .lock()
        .unwrap()
        .advance_to(t0() + hours(2.0))
        .unwrap();
    let remote_status = remote.status().unwrap();
    let local_status = device.lock().unwrap().status().unwrap();
    assert_eq!(remote_status.state, DeviceState::Running);
    assert_eq!(remote_status.program, local_status.program);
    assert_eq!(remote_status.set_points, local_status.set_points);
    assert_eq!(remote_status.device_time, local_status.device_time);
    assert_eq!(remote_status.last_sample_seq, local_status.last_sample_seq);
    assert!((remote_status.program_elapsed_hours - 2.0).abs() < 1e-9);

    // Every sample, exactly as the device recorded it, in calls of at most 500.
    let mut samples = Vec::new();
    let mut after = 0;
    for _ in 0..1_000 {
        let batch = remote.read_samples(after, 500).unwrap();
        assert!(batch.len() <= 500);
        let Some(last) = batch.last() else { break };
        after = last.seq;
        samples.extend(batch);
    }
    assert_eq!(samples.len() as u64, local_status.last_sample_seq);
    assert!(
        samples
            .iter()
            .enumerate()
            .all(|(i, s)| s.seq == i as u64 + 1)
    );

    // Bad set points are refused with the reason, named by the server.
    let bad = BTreeMap::from([(SetPoint::TemperatureC, 95.0)]);
    let e = remote.set_points(&bad).unwrap_err();
    assert!(
        matches!(e, cellops_device::DeviceError::Rejected { .. }),
        "{e}"
    );

    remote.safe_state("end of test").unwrap();
    assert_eq!(
        device.lock().unwrap().status().unwrap().state,
        DeviceState::Safe
    );
}

#[test]
fn controller_backfills_over_opc_ua_after_the_server_disappears() {
    let pki = tempfile::tempdir().unwrap();
    let device = sim("bio-rs-2");
    let mut server = RustServer::start(device.clone(), 0, None, &pki);
    let port = server.port();
    let remote = OpcUaDevice::connect(&server.endpoint(), client_options(&pki)).unwrap();
    let config = ControllerConfig {
        holder: "ctl-1".into(),
        lease_ttl: time::Duration::seconds(30),
        contact_grace: time::Duration::seconds(60),
        samples_per_poll_max: 20_000,
    };
    let mut c = Controller::new(
        remote,
        MemoryLeaseStore::default(),
        MemorySink::default(),
        config,
    )
    .unwrap();
    c.poll(t0());
    c.start_program(&program(), t0()).unwrap();
    device
        .lock()
        .unwrap()
        .advance_to(t0() + hours(1.0))
        .unwrap();
    c.poll(t0() + time::Duration::seconds(1));

    // The server goes away while the device keeps sampling.
    server.stop();
    device
        .lock()
        .unwrap()
        .advance_to(t0() + hours(3.0))
        .unwrap();
    let events = c.poll(t0() + time::Duration::seconds(2));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ControlEvent::DeviceUnreachable { .. })),
        "{events:?}"
    );

    let _server = RustServer::start(device.clone(), port, None, &pki);
    let events = c.poll(t0() + time::Duration::seconds(3));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ControlEvent::DeviceReconnected { .. })),
        "{events:?}"
    );
    let n = device.lock().unwrap().status().unwrap().last_sample_seq;
    let stored: Vec<u64> = c
        .sink_mut()
        .samples("bio-rs-2")
        .iter()
        .map(|s| s.seq)
        .collect();
    assert_eq!(
        stored,
        (1..=n).collect::<Vec<_>>(),
        "every sample once, none lost in the outage"
    );
}

#[test]
fn watchdog_makes_a_running_device_safe_when_no_controller_is_in_contact() {
    let pki = tempfile::tempdir().unwrap();
    let device = sim("bio-rs-3");
    let server = RustServer::start(device.clone(), 0, Some(Duration::from_millis(500)), &pki);
    {
        let mut remote = OpcUaDevice::connect(&server.endpoint(), client_options(&pki)).unwrap();
        remote.start_program(&program()).unwrap();
        remote.disconnect();
    }
    // Bounded wait for the watchdog (not a speed test: the limit is generous).
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = device.lock().unwrap().status().unwrap();
        if status.state != DeviceState::Running || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.state, DeviceState::Safe);
    assert!(
        status.alarms.iter().any(|a| a.message.contains("watchdog")),
        "{:?}",
        status.alarms
    );
}
