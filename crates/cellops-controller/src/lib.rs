//! cellops-controller: connects culture devices to cellops.
//!
//! - [`lease`]: one lease per device with a fencing epoch; [`pg_lease::PgLeaseStore`] keeps
//!   them in PostgreSQL so exactly one controller commands a device across processes.
//! - [`controller::Controller`]: holds the lease, watches the device, backfills telemetry
//!   after a disconnect (by `seq`, from the sink's high-water mark), puts the device into its
//!   safe state when control was lost and asks for deviations ([`controller::ControlEvent`]).
//! - [`telemetry::TelemetrySink`]: where samples go (durable, idempotent by `seq`).
//! - [`mqtt`]: telemetry ingest from an MQTT broker into a sink.
//!
//! Architecture invariant: the controller reads no clock and does no IO itself; the device,
//! the lease store and the sink are injected, and time is an argument of every call.

pub mod controller;
pub mod lease;
pub mod mqtt;
pub mod pg_lease;
pub mod telemetry;

pub use controller::{
    ControlEvent, Controller, ControllerConfig, ControllerError, DeviationRequest,
};
pub use lease::{Lease, LeaseDecision, LeaseError, LeaseStore, MemoryLeaseStore};
pub use pg_lease::PgLeaseStore;
pub use telemetry::{MemorySink, SinkError, TelemetrySink};
