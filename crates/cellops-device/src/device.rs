//! The `CultureDevice` trait: what the batch controller asks of any culture device.
//!
//! Stable contract (helper "device" implements it over OPC UA): change it only additively.

use std::collections::BTreeMap;

use cellops_process::recipe::model::DeviceOperation;
use cellops_process::units::SetPoint;
use serde::Serialize;
use time::OffsetDateTime;

/// Most samples one `read_samples` call returns; callers loop for more.
pub const SAMPLES_READ_MAX: usize = 10_000;

/// A device program: one device step of a batch, as the recipe defines it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Program {
    /// The batch and step the program belongs to.
    pub reference: ProgramRef,
    /// What the device does.
    pub operation: DeviceOperation,
    /// Set points in their units (names carry the unit, see `SetPoint`).
    pub set_points: BTreeMap<SetPoint, f64>,
    /// Planned duration, hours (> 0).
    pub duration_hours: f64,
}

/// Which batch step a program runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgramRef {
    /// Batch id.
    pub batch: String,
    /// Recipe step id.
    pub step: String,
}

/// Static description of a device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceInfo {
    /// Device id (asset number), unique per site.
    pub id: String,
    /// Model / kind, e.g. `simulated` or the OPC UA manufacturer and model.
    pub model: String,
    /// Signals the device reports; `Sample::signal` indexes this list.
    pub signals: Vec<SignalInfo>,
}

/// One signal (sensor value, set point or actuator output) a device reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignalInfo {
    /// Name with the unit as suffix (`temperature_c`, `glucose_mm`).
    pub name: String,
    /// Unit symbol for display.
    pub unit: String,
}

/// Where the device is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// No program; ready to start one.
    Idle,
    /// A program is running.
    Running,
    /// The program ran its duration; ready for the next one.
    Completed,
    /// Stopped into a safe state (by `safe_state` or by the device itself); needs a new
    /// program to go on.
    Safe,
    /// A fault stops the device from running its program (alarm raised).
    Faulted,
}

/// An alarm the device raised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alarm {
    /// Stable code (`power_loss`, `temperature_loss`, `contamination_suspected`).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// When it was raised (device time).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The device's state now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceStatus {
    /// Life-cycle state.
    pub state: DeviceState,
    /// The program running or last run.
    pub program: Option<ProgramRef>,
    /// Device time of this status.
    #[serde(with = "time::serde::rfc3339")]
    pub device_time: OffsetDateTime,
    /// Hours the current program has run.
    pub program_elapsed_hours: f64,
    /// Set points in force.
    pub set_points: BTreeMap<SetPoint, f64>,
    /// Active alarms.
    pub alarms: Vec<Alarm>,
    /// Sequence number of the newest sample the device holds (0: none yet).
    pub last_sample_seq: u64,
    /// Results of the last completed program by name with unit suffix, e.g.
    /// `harvested_viable_cells` after a harvest.
    pub results: BTreeMap<String, f64>,
}

/// One sensor sample. `seq` increases by one per sample over the device's life, so a reader
/// can resume after a disconnect and a store can drop duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Sequence number, from 1, gap-free per device.
    pub seq: u64,
    /// Device time, milliseconds since the Unix epoch.
    pub at_unix_ms: i64,
    /// Index into `DeviceInfo::signals`.
    pub signal: u16,
    /// Value in the signal's unit.
    pub value: f64,
}

/// A device call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    /// The device did not answer (network down, powered off).
    #[error(
        "device {device} is unreachable: {reason} (fix: check its connection; the controller retries and backfills telemetry)"
    )]
    Unreachable {
        /// Device id.
        device: String,
        /// What failed.
        reason: String,
    },
    /// The device refused the request.
    #[error("device {device} refused {request}: {reason}")]
    Rejected {
        /// Device id.
        device: String,
        /// What was asked.
        request: &'static str,
        /// Why.
        reason: String,
    },
    /// The device answered something that is not a valid reply.
    #[error(
        "device {device} answered garbage to {request}: {detail} (fix: check the device's firmware and node model)"
    )]
    Garbage {
        /// Device id.
        device: String,
        /// What was asked.
        request: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// A culture device as the batch controller sees it.
///
/// Synchronous and `Send`: network adapters block inside their calls and the server calls
/// them from a blocking thread.
pub trait CultureDevice: Send {
    /// Id, model and signal list. The signal list does not change while connected.
    fn info(&self) -> DeviceInfo;

    /// Starts `program`. Refused while another program runs (`Running`) or while faulted.
    fn start_program(&mut self, program: &Program) -> Result<(), DeviceError>;

    /// Changes set points of the running program (only the named ones).
    fn set_points(&mut self, set_points: &BTreeMap<SetPoint, f64>) -> Result<(), DeviceError>;

    /// The device's state now.
    fn status(&mut self) -> Result<DeviceStatus, DeviceError>;

    /// Samples with `seq > after_seq`, oldest first, at most `max` (≤ `SAMPLES_READ_MAX`).
    /// The device keeps samples until read past, so a reader that lost its connection
    /// backfills by asking again from its last stored `seq`.
    fn read_samples(&mut self, after_seq: u64, max: usize) -> Result<Vec<Sample>, DeviceError>;

    /// Stops the program and holds the culture safe (temperature held, pumps stopped).
    fn safe_state(&mut self, reason: &str) -> Result<(), DeviceError>;
}
