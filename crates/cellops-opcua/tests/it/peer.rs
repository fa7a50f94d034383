//! The client adapter against the independent Python asyncua peer.

use std::collections::BTreeMap;

use cellops_device::{CultureDevice, DeviceError, DeviceState, Program, ProgramRef};
use cellops_opcua::OpcUaDevice;
use cellops_process::recipe::model::DeviceOperation;
use cellops_process::units::SetPoint;

use crate::support::{Peer, client_options};

fn program(step: &str) -> Program {
    Program {
        reference: ProgramRef {
            batch: "B-100".into(),
            step: step.into(),
        },
        operation: DeviceOperation::Expansion,
        set_points: BTreeMap::from([(SetPoint::TemperatureC, 37.0), (SetPoint::Ph, 7.2)]),
        duration_hours: 48.0,
    }
}

#[test]
fn adapter_drives_the_asyncua_peer() {
    let peer = Peer::start(&["--asset-id", "peer-bio-1"]);
    let pki = tempfile::tempdir().unwrap();
    let mut device = OpcUaDevice::connect(&peer.endpoint, client_options(&pki)).unwrap();

    let info = device.info();
    assert_eq!(info.id, "peer-bio-1");
    assert_eq!(info.model, "python asyncua peer");
    let names: Vec<&str> = info.signals.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["temperature_c", "ph", "do_percent"]);

    let status = device.status().unwrap();
    assert_eq!(status.state, DeviceState::Idle);
    assert_eq!(status.program, None);

    device.start_program(&program("expand")).unwrap();
    let status = device.status().unwrap();
    assert_eq!(status.state, DeviceState::Running);
    assert_eq!(
        status.program,
        Some(ProgramRef {
            batch: "B-100".into(),
            step: "expand".into()
        })
    );
    assert_eq!(status.set_points.get(&SetPoint::TemperatureC), Some(&37.0));

    // A second program while one runs is refused with the peer's reason.
    match device.start_program(&program("again")) {
        Err(DeviceError::Rejected { reason, .. }) => {
            assert!(reason.contains("still running"), "{reason}")
        }
        other => panic!("expected Rejected, got {other:?}"),
    }

    device
        .set_points(&BTreeMap::from([(SetPoint::TemperatureC, 36.5)]))
        .unwrap();
    assert_eq!(
        device
            .status()
            .unwrap()
            .set_points
            .get(&SetPoint::TemperatureC),
        Some(&36.5)
    );

    // Samples come in rising seq; reading after the last one continues without overlap.
    let first = device.read_samples(0, 1_000).unwrap();
    assert!(!first.is_empty());
    assert!(first.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    let last = first.last().unwrap().seq;
    // The peer samples every 50 ms; a bounded number of reads sees the next ones.
    let later = (0..10_000)
        .map(|_| device.read_samples(last, 1_000).unwrap())
        .find(|s| !s.is_empty())
        .expect("the peer keeps sampling");
    assert_eq!(later[0].seq, last + 1);

    device.safe_state("operator stop").unwrap();
    let status = device.status().unwrap();
    assert_eq!(status.state, DeviceState::Safe);
    assert!(
        status
            .alarms
            .iter()
            .any(|a| a.code == "safe_state" && a.message == "operator stop")
    );
}

fn garbage_detail(result: Result<impl std::fmt::Debug, DeviceError>) -> String {
    match result {
        Err(DeviceError::Garbage { detail, .. }) => detail,
        other => panic!("expected Garbage, got {other:?}"),
    }
}

#[test]
fn adapter_reports_garbage_from_the_peer() {
    let pki = tempfile::tempdir().unwrap();

    let peer = Peer::start(&["--garbage", "state"]);
    let mut device = OpcUaDevice::connect(&peer.endpoint, client_options(&pki)).unwrap();
    assert!(garbage_detail(device.status()).contains("CurrentState `Exploded`"));

    let peer = Peer::start(&["--garbage", "types"]);
    let mut device = OpcUaDevice::connect(&peer.endpoint, client_options(&pki)).unwrap();
    assert!(garbage_detail(device.status()).contains("LastSampleSeq must be a UInt64"));

    let peer = Peer::start(&["--garbage", "samples"]);
    let mut device = OpcUaDevice::connect(&peer.endpoint, client_options(&pki)).unwrap();
    let answer = (0..10_000)
        .map(|_| device.read_samples(0, 100))
        .find(|r| !matches!(r, Ok(s) if s.len() < 2))
        .expect("the peer keeps sampling");
    let detail = garbage_detail(answer);
    assert!(detail.contains("must rise"), "{detail}");
}

#[test]
fn adapter_reports_a_peer_that_disappears_mid_step_and_reconnects() {
    let pki = tempfile::tempdir().unwrap();
    let peer = Peer::start(&["--asset-id", "peer-bio-2"]);
    let port = peer.port();
    let mut device = OpcUaDevice::connect(&peer.endpoint, client_options(&pki)).unwrap();
    device.start_program(&program("expand")).unwrap();
    drop(peer); // killed mid-step

    match device.status() {
        Err(DeviceError::Unreachable { device: id, .. }) => assert_eq!(id, "peer-bio-2"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(!device.is_connected());

    // The device comes back on the same address (restarted: its program is gone).
    let _peer = Peer::start(&["--asset-id", "peer-bio-2", "--port", &port]);
    let status = device.status().unwrap();
    assert_eq!(status.state, DeviceState::Idle);

    // A different device on that address is not silently accepted.
    drop(_peer);
    let _other = Peer::start(&["--asset-id", "someone-else", "--port", &port]);
    // The first call may still find the old, broken connection; the next one reconnects.
    let answer = (0..3)
        .map(|_| device.status())
        .find(|r| !matches!(r, Err(DeviceError::Unreachable { .. })))
        .expect("the adapter reconnects");
    let detail = garbage_detail(answer);
    assert!(detail.contains("someone-else"), "{detail}");
}
