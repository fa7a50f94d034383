//! The controller of one device: holds its lease, watches it, moves its telemetry and
//! commands it, and says what happened as [`ControlEvent`]s.
//!
//! `poll(now)` does one round: renew or take the lease; if held, read the device's status;
//! then move telemetry from the device to the sink, starting after the sink's high-water
//! mark (so after a disconnect, a restart or a take-over it backfills exactly what is
//! missing). It does no IO of its own and reads no clock: the device, the lease store and
//! the sink are injected, time is an argument, so a run replays exactly.
//!
//! Control is lost when the lease is lost (another holder, or the store cannot confirm it)
//! or the device stays unreachable longer than `contact_grace`. Then: the controller stops
//! commanding; a deviation is raised; when the device answers again and is still running
//! unsupervised, it is put into its safe state (the device's own watchdog, see
//! `cellops device serve-opcua --watchdog-seconds`, covers the time it cannot be reached).

use std::collections::{BTreeMap, BTreeSet};

use cellops_device::{
    Alarm, CultureDevice, DeviceError, DeviceState, DeviceStatus, Program, SAMPLES_READ_MAX, Sample,
};
use cellops_process::engine::{Command, PersonId};
use cellops_process::units::SetPoint;
use time::{Duration, OffsetDateTime};

use crate::lease::{Lease, LeaseDecision, LeaseError, LeaseStore, validate};
use crate::telemetry::TelemetrySink;

/// Most samples one `poll` moves (bounds the work of one round; the rest follows next round).
pub const POLL_SAMPLES_MAX: usize = 50_000;
/// Shortest grace before an unreachable device counts as control lost.
pub const CONTACT_GRACE_MIN: Duration = Duration::seconds(1);

/// How the controller behaves.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// This controller instance (host, process, start time), unique among controllers.
    pub holder: String,
    /// Lease duration; renewed halfway.
    pub lease_ttl: Duration,
    /// How long the device may be unreachable before control counts as lost.
    pub contact_grace: Duration,
    /// Most samples moved per poll (≤ [`POLL_SAMPLES_MAX`]).
    pub samples_per_poll_max: usize,
}

/// The controller could not do what it was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControllerError {
    /// The configuration is invalid.
    #[error("controller configuration invalid: {0}")]
    Config(String),
    /// This controller does not hold the device's lease (now).
    #[error("controller {holder} does not hold the lease on device {device}{}; (fix: command the device through its lease holder)", held_by.as_ref().map(|h| format!(" (held by {h})")).unwrap_or_default())]
    NotLeaseHolder {
        /// Device id.
        device: String,
        /// This controller.
        holder: String,
        /// Who holds it, when known.
        held_by: Option<String>,
    },
    /// The device failed the command.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// A deviation the controller asks the batch to open.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviationRequest {
    /// Device id.
    pub device: String,
    /// What happened (names the device, the step when known, and what was done).
    pub description: String,
    /// Whether it should hold the batch until closed.
    pub hold: bool,
    /// Whether it blocks release until closed.
    pub blocks_release: bool,
}

impl DeviationRequest {
    /// The batch engine command that opens it, by the controller's service account.
    pub fn to_command(&self, by: PersonId, at: OffsetDateTime) -> Command {
        Command::OpenDeviation {
            description: self.description.clone(),
            blocks_release: self.blocks_release,
            hold: self.hold,
            by,
            at,
        }
    }
}

/// What happened during a poll or command.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlEvent {
    /// The lease was taken (new epoch): this controller now commands the device.
    LeaseAcquired {
        /// Fencing epoch.
        epoch: u64,
    },
    /// The lease is lost: this controller stopped commanding the device.
    LeaseLost {
        /// Why (another holder, lapse, store unavailable).
        reason: String,
    },
    /// The device stopped answering.
    DeviceUnreachable {
        /// The transport's reason.
        reason: String,
    },
    /// The device answers again.
    DeviceReconnected {
        /// How long it was unreachable.
        after: Duration,
    },
    /// The controller put the device into its safe state.
    SafeStateCommanded {
        /// The reason sent to the device.
        reason: String,
    },
    /// The device raised an alarm the controller had not seen.
    Alarm(Alarm),
    /// Samples moved from the device into the sink.
    TelemetryStored {
        /// First new `seq`.
        first_seq: u64,
        /// Last new `seq`.
        last_seq: u64,
        /// Samples newly stored (duplicates skipped by the sink are not counted).
        count: usize,
    },
    /// The sink could not store; samples stay on the device for the next round.
    TelemetryDelayed {
        /// Why.
        reason: String,
    },
    /// Open a deviation.
    Deviation(DeviationRequest),
}

#[derive(Debug, Clone)]
enum Link {
    Up,
    Down {
        since: OffsetDateTime,
        /// The grace ran out (deviation raised); on reconnect a running device goes safe.
        control_lost: bool,
    },
}

/// The controller of one device.
pub struct Controller<D, L, S> {
    device_id: String,
    device: D,
    leases: L,
    sink: S,
    config: ControllerConfig,
    lease: Option<Lease>,
    link: Link,
    stored_seq: Option<u64>,
    raised: BTreeSet<String>,
    alarms_seen: BTreeSet<(String, i128)>,
    last_status: Option<DeviceStatus>,
    commanded_safe: Option<String>,
}

impl<D: CultureDevice, L: LeaseStore, S: TelemetrySink> Controller<D, L, S> {
    /// A controller for `device` (its id from `device.info()`); holds no lease yet.
    pub fn new(
        device: D,
        leases: L,
        sink: S,
        config: ControllerConfig,
    ) -> Result<Self, ControllerError> {
        let device_id = device.info().id;
        validate(&device_id, &config.holder, config.lease_ttl)
            .map_err(|e| ControllerError::Config(e.to_string()))?;
        if config.contact_grace < CONTACT_GRACE_MIN {
            return Err(ControllerError::Config(format!(
                "contact_grace {} must be at least {CONTACT_GRACE_MIN}",
                config.contact_grace
            )));
        }
        if config.samples_per_poll_max == 0 || config.samples_per_poll_max > POLL_SAMPLES_MAX {
            return Err(ControllerError::Config(format!(
                "samples_per_poll_max {} must be within 1..={POLL_SAMPLES_MAX}",
                config.samples_per_poll_max
            )));
        }
        Ok(Controller {
            device_id,
            device,
            leases,
            sink,
            config,
            lease: None,
            link: Link::Up,
            stored_seq: None,
            raised: BTreeSet::new(),
            alarms_seen: BTreeSet::new(),
            last_status: None,
            commanded_safe: None,
        })
    }

    /// Device id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The lease, when this controller may command the device at `now`.
    pub fn lease(&self, now: OffsetDateTime) -> Option<&Lease> {
        self.lease.as_ref().filter(|l| now < l.usable_until())
    }

    /// The device status read by the last successful poll.
    pub fn last_status(&self) -> Option<&DeviceStatus> {
        self.last_status.as_ref()
    }

    /// Highest `seq` this controller knows is stored (None before the first poll with a lease).
    pub fn stored_seq(&self) -> Option<u64> {
        self.stored_seq
    }

    /// The device (tests inject faults through it).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The sink.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// One round: lease, status, telemetry.
    pub fn poll(&mut self, now: OffsetDateTime) -> Vec<ControlEvent> {
        let mut events = Vec::new();
        if !self.keep_lease(now, &mut events) {
            return events;
        }
        match self.device.status() {
            Ok(status) => self.on_status(now, status, &mut events),
            Err(e) => {
                self.on_device_error(now, "status", e, &mut events);
                return events;
            }
        }
        self.move_telemetry(now, &mut events);
        events
    }

    /// Starts `program` on the device (only while holding the lease).
    pub fn start_program(
        &mut self,
        program: &Program,
        now: OffsetDateTime,
    ) -> Result<Vec<ControlEvent>, ControllerError> {
        self.command(now, |d| d.start_program(program))
    }

    /// Changes set points of the running program (only while holding the lease).
    pub fn set_points(
        &mut self,
        set_points: &BTreeMap<SetPoint, f64>,
        now: OffsetDateTime,
    ) -> Result<Vec<ControlEvent>, ControllerError> {
        self.command(now, |d| d.set_points(set_points))
    }

    /// Puts the device into its safe state (only while holding the lease).
    pub fn safe_state(
        &mut self,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<ControlEvent>, ControllerError> {
        let mut events = self.command(now, |d| d.safe_state(reason))?;
        self.commanded_safe = Some(reason.to_string());
        events.push(ControlEvent::SafeStateCommanded {
            reason: reason.to_string(),
        });
        Ok(events)
    }

    /// Gives the lease up (shutdown), so a successor need not wait for it to expire.
    pub fn release(&mut self) -> Result<(), LeaseError> {
        if let Some(lease) = self.lease.take() {
            self.leases.release(&lease)?;
        }
        Ok(())
    }

    fn command(
        &mut self,
        now: OffsetDateTime,
        f: impl FnOnce(&mut D) -> Result<(), DeviceError>,
    ) -> Result<Vec<ControlEvent>, ControllerError> {
        let mut events = Vec::new();
        if !self.keep_lease(now, &mut events) || self.lease(now).is_none() {
            let held_by = self
                .leases
                .current(&self.device_id)
                .ok()
                .flatten()
                .filter(|l| l.expires_at > now)
                .map(|l| l.holder);
            return Err(ControllerError::NotLeaseHolder {
                device: self.device_id.clone(),
                holder: self.config.holder.clone(),
                held_by,
            });
        }
        match f(&mut self.device) {
            Ok(()) => Ok(events),
            Err(e) => {
                if matches!(e, DeviceError::Unreachable { .. }) {
                    self.on_device_error(now, "command", e.clone(), &mut events);
                }
                Err(ControllerError::Device(e))
            }
        }
    }

    /// Renews or takes the lease when due; false when this controller must not command.
    fn keep_lease(&mut self, now: OffsetDateTime, events: &mut Vec<ControlEvent>) -> bool {
        if let Some(l) = &self.lease
            && now < l.renew_at()
        {
            return true;
        }
        let decision = self.leases.acquire(
            &self.device_id,
            &self.config.holder,
            now,
            self.config.lease_ttl,
        );
        match decision {
            Ok(LeaseDecision::Renewed(l)) => {
                self.lease = Some(l);
                true
            }
            Ok(LeaseDecision::Acquired(l)) => {
                if self.lease.take().is_some() {
                    events.push(ControlEvent::LeaseLost {
                        reason: "the lease lapsed before it was renewed".into(),
                    });
                }
                events.push(ControlEvent::LeaseAcquired { epoch: l.epoch });
                self.lease = Some(l);
                // Someone else may have stored telemetry meanwhile: ask the sink again.
                self.stored_seq = None;
                true
            }
            Ok(LeaseDecision::HeldBy(other)) => {
                if self.lease.take().is_some() {
                    events.push(ControlEvent::LeaseLost {
                        reason: format!(
                            "controller {} holds the lease (epoch {})",
                            other.holder, other.epoch
                        ),
                    });
                }
                false
            }
            Err(e) => {
                if self.lease(now).is_some() {
                    // Still inside the safe part of the current lease: go on, retry next round.
                    return true;
                }
                if self.lease.take().is_some() {
                    events.push(ControlEvent::LeaseLost {
                        reason: e.to_string(),
                    });
                }
                false
            }
        }
    }

    fn step_text(&self) -> String {
        match self.last_status.as_ref().and_then(|s| s.program.as_ref()) {
            Some(p) => format!(" during step {} of batch {}", p.step, p.batch),
            None => String::new(),
        }
    }

    fn deviation(
        &mut self,
        key: String,
        description: String,
        hold: bool,
        events: &mut Vec<ControlEvent>,
    ) {
        if self.raised.insert(key) {
            events.push(ControlEvent::Deviation(DeviationRequest {
                device: self.device_id.clone(),
                description,
                hold,
                blocks_release: true,
            }));
        }
    }

    fn on_device_error(
        &mut self,
        now: OffsetDateTime,
        request: &str,
        e: DeviceError,
        events: &mut Vec<ControlEvent>,
    ) {
        match e {
            DeviceError::Unreachable { reason, .. } => self.on_unreachable(now, reason, events),
            DeviceError::Garbage {
                request: what,
                detail,
                ..
            } => {
                let description = format!(
                    "device {} answered garbage to {what}{}: {detail}; the device was told to go to its safe state",
                    self.device_id,
                    self.step_text()
                );
                self.deviation(format!("garbage:{what}"), description, true, events);
                self.try_safe_state(
                    format!("controller: the device answered garbage to {what}"),
                    events,
                );
            }
            DeviceError::Rejected { reason, .. } => {
                let description = format!(
                    "device {} refused {request}{}: {reason}",
                    self.device_id,
                    self.step_text()
                );
                self.deviation(
                    format!("rejected:{request}:{reason}"),
                    description,
                    false,
                    events,
                );
            }
        }
    }

    fn on_unreachable(
        &mut self,
        now: OffsetDateTime,
        reason: String,
        events: &mut Vec<ControlEvent>,
    ) {
        let since = match self.link {
            Link::Up => {
                self.link = Link::Down {
                    since: now,
                    control_lost: false,
                };
                events.push(ControlEvent::DeviceUnreachable { reason });
                return;
            }
            Link::Down {
                control_lost: true, ..
            } => return,
            Link::Down {
                since,
                control_lost: false,
            } => since,
        };
        let down_for = now - since;
        if down_for < self.config.contact_grace {
            return;
        }
        self.link = Link::Down {
            since,
            control_lost: true,
        };
        let description = format!(
            "lost contact with device {} for {:.0} s (limit {:.0} s){}: {reason}; control lost, the device's watchdog holds it safe; telemetry is backfilled on reconnect",
            self.device_id,
            down_for.as_seconds_f64(),
            self.config.contact_grace.as_seconds_f64(),
            self.step_text()
        );
        self.deviation(
            format!("contact-lost:{}", since.unix_timestamp()),
            description,
            true,
            events,
        );
    }

    fn on_status(
        &mut self,
        now: OffsetDateTime,
        status: DeviceStatus,
        events: &mut Vec<ControlEvent>,
    ) {
        let previous = std::mem::replace(&mut self.link, Link::Up);
        if let Link::Down {
            since,
            control_lost,
        } = previous
        {
            events.push(ControlEvent::DeviceReconnected { after: now - since });
            if control_lost && status.state == DeviceState::Running {
                let reason = format!(
                    "controller: control was lost for {:.0} s; holding the culture safe until an operator resumes",
                    (now - since).as_seconds_f64()
                );
                self.try_safe_state(reason, events);
            }
        }
        for alarm in &status.alarms {
            let key = (alarm.code.clone(), alarm.at.unix_timestamp_nanos());
            if !self.alarms_seen.insert(key) {
                continue;
            }
            events.push(ControlEvent::Alarm(alarm.clone()));
            let ours = self.commanded_safe.as_deref() == Some(alarm.message.as_str());
            if alarm.code == "safe_state" && !ours {
                let description = format!(
                    "device {} went into its safe state on its own{}: {}",
                    self.device_id,
                    self.step_text(),
                    alarm.message
                );
                self.deviation(
                    format!("safe:{}", key_time(alarm)),
                    description,
                    true,
                    events,
                );
            }
        }
        if let Some(stored) = self.stored_seq
            && status.last_sample_seq < stored
        {
            let description = format!(
                "device {} reports newest sample seq {} but {} are stored: the device was reset or replaced; telemetry stops until it is reconciled",
                self.device_id, status.last_sample_seq, stored
            );
            self.deviation(
                format!("seq-reset:{}", status.last_sample_seq),
                description,
                true,
                events,
            );
        }
        self.last_status = Some(status);
    }

    fn try_safe_state(&mut self, reason: String, events: &mut Vec<ControlEvent>) {
        if self.device.safe_state(&reason).is_ok() {
            self.commanded_safe = Some(reason.clone());
            events.push(ControlEvent::SafeStateCommanded { reason });
        }
    }

    fn move_telemetry(&mut self, now: OffsetDateTime, events: &mut Vec<ControlEvent>) {
        let mut stored = match self.stored_seq {
            Some(s) => s,
            None => match self.sink.last_seq(&self.device_id) {
                Ok(s) => s,
                Err(e) => {
                    events.push(ControlEvent::TelemetryDelayed {
                        reason: e.to_string(),
                    });
                    return;
                }
            },
        };
        self.stored_seq = Some(stored);
        if self
            .last_status
            .as_ref()
            .is_some_and(|s| s.last_sample_seq < stored)
        {
            return; // seq reset: deviation raised in on_status
        }
        let mut moved = 0;
        while moved < self.config.samples_per_poll_max {
            let max = (self.config.samples_per_poll_max - moved).min(SAMPLES_READ_MAX);
            let samples = match self.device.read_samples(stored, max) {
                Ok(s) if s.is_empty() => return,
                Ok(s) => s,
                Err(e) => return self.on_device_error(now, "read_samples", e, events),
            };
            self.check_gaps(stored, &samples, events);
            let (first_seq, last_seq) = (samples[0].seq, samples[samples.len() - 1].seq);
            match self.sink.store(&self.device_id, &samples) {
                Ok(count) => {
                    stored = last_seq;
                    self.stored_seq = Some(stored);
                    moved += samples.len();
                    events.push(ControlEvent::TelemetryStored {
                        first_seq,
                        last_seq,
                        count,
                    });
                }
                Err(e) => {
                    events.push(ControlEvent::TelemetryDelayed {
                        reason: e.to_string(),
                    });
                    return;
                }
            }
        }
    }

    /// A jump in `seq` means the device dropped samples (its buffer overflowed): data loss
    /// is recorded as a deviation, never silent.
    fn check_gaps(&mut self, stored: u64, samples: &[Sample], events: &mut Vec<ControlEvent>) {
        let mut expected = stored + 1;
        for s in samples {
            if s.seq > expected {
                let description = format!(
                    "telemetry of device {} is missing samples seq {}..={}{} (the device dropped them before they could be read)",
                    self.device_id,
                    expected,
                    s.seq - 1,
                    self.step_text()
                );
                self.deviation(format!("gap:{expected}"), description, false, events);
            }
            expected = s.seq + 1;
        }
    }
}

fn key_time(alarm: &Alarm) -> i128 {
    alarm.at.unix_timestamp_nanos()
}
