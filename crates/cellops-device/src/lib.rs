//! cellops-device: the `CultureDevice` trait and the simulated device.
//!
//! - `device`: the trait every culture device implements (simulated here, OPC UA in the
//!   server's adapter): start a program with set points, change set points, read state and
//!   sensor samples, stop into a safe state. Small on purpose: it is the contract between the
//!   batch controller and every kind of device.
//! - `sim`: `SimulatedDevice`, which runs a `cellops_twin::CultureSim` in simulated time
//!   (the caller advances it from an injected clock) with the twin's faults injectable.
//! - `telemetry`: the compact byte encoding of sample runs that the telemetry store keeps.
//!
//! Architecture invariant: pure and deterministic. No IO, no clock, no threads; time arrives
//! as arguments. The trait is synchronous: adapters over a network run it on a blocking
//! thread, like the ledger's `Backend`.

pub mod device;
pub mod sim;
pub mod telemetry;

pub use device::{
    Alarm, CultureDevice, DeviceError, DeviceInfo, DeviceState, DeviceStatus, Program, ProgramRef,
    SAMPLES_READ_MAX, Sample, SignalInfo,
};
pub use sim::{SIGNALS, SimulatedDevice};
