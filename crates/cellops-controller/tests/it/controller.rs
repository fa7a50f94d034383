//! The controller with the simulated device, an in-memory lease store and sink.

use std::sync::{Arc, Mutex};

use cellops_controller::{
    ControlEvent, Controller, ControllerConfig, ControllerError, MemoryLeaseStore, MemorySink,
};
use cellops_device::{CultureDevice, DeviceState};
use time::Duration;

use crate::support::{Mode, TestDevice, assert_gap_free, expansion, hours, t0};

type Shared<T> = Arc<Mutex<T>>;

/// Memory lease store shared by several controllers in one test.
#[derive(Clone, Default)]
struct SharedLeases(Shared<MemoryLeaseStore>);

impl cellops_controller::LeaseStore for SharedLeases {
    fn acquire(
        &mut self,
        device: &str,
        holder: &str,
        now: time::OffsetDateTime,
        ttl: Duration,
    ) -> Result<cellops_controller::LeaseDecision, cellops_controller::LeaseError> {
        self.0.lock().unwrap().acquire(device, holder, now, ttl)
    }
    fn release(
        &mut self,
        lease: &cellops_controller::Lease,
    ) -> Result<(), cellops_controller::LeaseError> {
        self.0.lock().unwrap().release(lease)
    }
    fn current(
        &mut self,
        device: &str,
    ) -> Result<Option<cellops_controller::Lease>, cellops_controller::LeaseError> {
        self.0.lock().unwrap().current(device)
    }
}

fn config(holder: &str) -> ControllerConfig {
    ControllerConfig {
        holder: holder.into(),
        lease_ttl: Duration::seconds(30),
        contact_grace: Duration::seconds(60),
        samples_per_poll_max: 20_000,
    }
}

type TestController = Controller<TestDevice, SharedLeases, Shared<MemorySink>>;

fn controller(
    device: &TestDevice,
    leases: &SharedLeases,
    sink: &Shared<MemorySink>,
    holder: &str,
) -> TestController {
    Controller::new(device.clone(), leases.clone(), sink.clone(), config(holder)).unwrap()
}

fn deviations(events: &[ControlEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ControlEvent::Deviation(d) => Some(d.description.clone()),
            _ => None,
        })
        .collect()
}

fn last_seq(device: &TestDevice) -> u64 {
    device.sim.lock().unwrap().status().unwrap().last_sample_seq
}

#[test]
fn telemetry_is_backfilled_after_a_disconnect_without_loss_or_duplicates() {
    let device = TestDevice::new("bio-1");
    let (leases, sink) = (SharedLeases::default(), Shared::<MemorySink>::default());
    let mut c = controller(&device, &leases, &sink, "ctl-a");
    let events = c.poll(t0());
    assert!(
        events.contains(&ControlEvent::LeaseAcquired { epoch: 1 }),
        "{events:?}"
    );
    c.start_program(&expansion("B-1", "expand", 48.0), t0())
        .unwrap();

    device.advance_to(t0() + hours(1.0));
    c.poll(t0() + hours(1.0));
    let before = c.stored_seq().unwrap();
    assert!(before > 0);

    // The device disappears for 30 s of controller time while it keeps sampling 2 hours
    // (accelerated device clock); then it answers again.
    device.set_mode(Mode::Unreachable);
    let down_at = t0() + hours(1.0) + Duration::seconds(5);
    let events = c.poll(down_at);
    assert!(
        matches!(events[..], [ControlEvent::DeviceUnreachable { .. }]),
        "{events:?}"
    );
    device.advance_to(t0() + hours(3.0));
    assert!(
        deviations(&c.poll(down_at + Duration::seconds(30))).is_empty(),
        "within the grace: no deviation"
    );
    device.set_mode(Mode::Normal);
    let events = c.poll(down_at + Duration::seconds(35));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ControlEvent::DeviceReconnected { .. })),
        "{events:?}"
    );
    assert!(deviations(&events).is_empty(), "{events:?}");

    // Every sample exactly once, including the two hours sampled during the disconnect.
    let n = last_seq(&device);
    assert!(n > before);
    assert_gap_free(sink.lock().unwrap().samples("bio-1"), n);
    // A second poll finds nothing new and stores nothing twice.
    let events = c.poll(down_at + Duration::seconds(40));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ControlEvent::TelemetryStored { .. })),
        "{events:?}"
    );
    assert_gap_free(sink.lock().unwrap().samples("bio-1"), n);
    assert_eq!(
        device.sim.lock().unwrap().status().unwrap().state,
        DeviceState::Running
    );
}

#[test]
fn control_lost_raises_a_deviation_and_makes_a_running_device_safe_on_reconnect() {
    let device = TestDevice::new("bio-2");
    let (leases, sink) = (SharedLeases::default(), Shared::<MemorySink>::default());
    let mut c = controller(&device, &leases, &sink, "ctl-a");
    c.poll(t0());
    c.start_program(&expansion("B-2", "expand", 48.0), t0())
        .unwrap();
    device.advance_to(t0() + hours(1.0));
    c.poll(t0() + hours(1.0));

    device.set_mode(Mode::Unreachable);
    let down = t0() + hours(1.0) + Duration::seconds(1);
    c.poll(down);
    let events = c.poll(down + Duration::seconds(61));
    let raised = deviations(&events);
    assert_eq!(raised.len(), 1, "{events:?}");
    assert!(
        raised[0].contains("lost contact with device bio-2"),
        "{}",
        raised[0]
    );
    assert!(
        raised[0].contains("step expand of batch B-2"),
        "{}",
        raised[0]
    );
    // Raised once, not on every poll.
    assert!(deviations(&c.poll(down + Duration::seconds(90))).is_empty());
    // Commands are refused while the device is away.
    let e = c
        .set_points(&Default::default(), down + Duration::seconds(91))
        .unwrap_err();
    assert!(matches!(e, ControllerError::Device(_)), "{e}");

    device.set_mode(Mode::Normal);
    device.advance_to(t0() + hours(2.0));
    let events = c.poll(down + Duration::seconds(120));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ControlEvent::SafeStateCommanded { .. })),
        "{events:?}"
    );
    assert_eq!(
        device.sim.lock().unwrap().status().unwrap().state,
        DeviceState::Safe
    );
    // The controller's own safe-state command is not reported as a deviation again.
    assert!(deviations(&c.poll(down + Duration::seconds(130))).is_empty());
    assert_gap_free(sink.lock().unwrap().samples("bio-2"), last_seq(&device));
}

#[test]
fn garbage_from_the_device_raises_a_deviation_and_asks_for_the_safe_state() {
    let device = TestDevice::new("bio-3");
    let (leases, sink) = (SharedLeases::default(), Shared::<MemorySink>::default());
    let mut c = controller(&device, &leases, &sink, "ctl-a");
    c.poll(t0());
    c.start_program(&expansion("B-3", "expand", 48.0), t0())
        .unwrap();
    device.set_mode(Mode::Garbage);
    let events = c.poll(t0() + Duration::seconds(10));
    let raised = deviations(&events);
    assert_eq!(raised.len(), 1, "{events:?}");
    assert!(
        raised[0].contains("answered garbage to status"),
        "{}",
        raised[0]
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ControlEvent::SafeStateCommanded { .. }))
    );
    assert_eq!(
        device.sim.lock().unwrap().status().unwrap().state,
        DeviceState::Safe
    );
}

#[test]
fn samples_the_device_lost_are_a_deviation_not_a_silent_gap() {
    let device = TestDevice::new("bio-4");
    let (leases, sink) = (SharedLeases::default(), Shared::<MemorySink>::default());
    let mut c = controller(&device, &leases, &sink, "ctl-a");
    c.poll(t0());
    c.start_program(&expansion("B-4", "expand", 48.0), t0())
        .unwrap();
    device.set_mode(Mode::DropSamples);
    device.advance_to(t0() + hours(1.0));
    let events = c.poll(t0() + hours(1.0));
    let raised = deviations(&events);
    assert_eq!(raised.len(), 1, "{events:?}");
    assert!(
        raised[0].contains("missing samples seq 101..=150"),
        "{}",
        raised[0]
    );
}

#[test]
fn only_the_lease_holder_commands_and_a_successor_resumes_telemetry_exactly() {
    let device = TestDevice::new("bio-5");
    let (leases, sink) = (SharedLeases::default(), Shared::<MemorySink>::default());
    let mut a = controller(&device, &leases, &sink, "ctl-a");
    let mut b = controller(&device, &leases, &sink, "ctl-b");
    a.poll(t0());
    assert!(
        b.poll(t0()).is_empty(),
        "b must not get the lease or touch the device"
    );
    let e = b
        .start_program(&expansion("B-5", "expand", 48.0), t0())
        .unwrap_err();
    assert!(
        matches!(&e, ControllerError::NotLeaseHolder { held_by: Some(h), .. } if h == "ctl-a"),
        "{e}"
    );
    a.start_program(&expansion("B-5", "expand", 48.0), t0())
        .unwrap();
    device.advance_to(t0() + hours(1.0));
    // Halfway through its lease `a` renews it: now it runs to t0 + 50 s.
    a.poll(t0() + Duration::seconds(20));

    // `a` stops (crash); `b` takes over once the lease lapsed and continues the telemetry.
    device.advance_to(t0() + hours(2.0));
    assert!(
        b.poll(t0() + Duration::seconds(49)).is_empty(),
        "a's lease is still live"
    );
    let events = b.poll(t0() + Duration::seconds(51));
    assert!(
        events.contains(&ControlEvent::LeaseAcquired { epoch: 2 }),
        "{events:?}"
    );
    // `a` comes back: it learns it lost the lease and may no longer command.
    let events = a.poll(t0() + Duration::seconds(52));
    assert!(
        matches!(&events[..], [ControlEvent::LeaseLost { reason }] if reason.contains("ctl-b")),
        "{events:?}"
    );
    assert!(matches!(
        a.safe_state("stale controller", t0() + Duration::seconds(53)),
        Err(ControllerError::NotLeaseHolder { .. })
    ));
    assert_eq!(
        device.sim.lock().unwrap().status().unwrap().state,
        DeviceState::Running
    );
    assert_gap_free(sink.lock().unwrap().samples("bio-5"), last_seq(&device));

    // A clean shutdown releases the lease: `a` may take it at once.
    b.release().unwrap();
    let events = a.poll(t0() + Duration::seconds(54));
    assert!(
        events.contains(&ControlEvent::LeaseAcquired { epoch: 3 }),
        "{events:?}"
    );
}

#[test]
fn a_device_that_goes_safe_on_its_own_raises_a_deviation() {
    let device = TestDevice::new("bio-6");
    let (leases, sink) = (SharedLeases::default(), Shared::<MemorySink>::default());
    let mut c = controller(&device, &leases, &sink, "ctl-a");
    c.poll(t0());
    c.start_program(&expansion("B-6", "expand", 48.0), t0())
        .unwrap();
    c.poll(t0() + Duration::seconds(1));
    // The device's watchdog (or an operator at the device) stops it.
    device
        .sim
        .lock()
        .unwrap()
        .safe_state("controller watchdog: no client contact")
        .unwrap();
    let raised = deviations(&c.poll(t0() + Duration::seconds(2)));
    assert_eq!(raised.len(), 1);
    assert!(
        raised[0].contains("went into its safe state on its own"),
        "{}",
        raised[0]
    );
    assert!(raised[0].contains("watchdog"), "{}", raised[0]);
}

#[test]
fn deviation_requests_become_open_deviation_commands() {
    let request = cellops_controller::DeviationRequest {
        device: "bio-1".into(),
        description: "lost contact".into(),
        hold: true,
        blocks_release: true,
    };
    let by = cellops_process::engine::PersonId::parse("svc-controller").unwrap();
    match request.to_command(by, t0()) {
        cellops_process::engine::Command::OpenDeviation {
            description,
            hold,
            blocks_release,
            ..
        } => {
            assert_eq!(description, "lost contact");
            assert!(hold && blocks_release);
        }
        other => panic!("expected OpenDeviation, got {other:?}"),
    }
}
