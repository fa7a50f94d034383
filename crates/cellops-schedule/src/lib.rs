//! cellops-schedule: scheduling and capacity across a cell-therapy network.
//!
//! Architecture invariant: pure and deterministic. No IO, no clock, no global randomness;
//! "today" and every seed are passed in. The HTTP face is
//! `cellops-server/src/routes/schedule.rs`, the CLI `cellops schedule plan`, the benchmark
//! against OR-Tools CP-SAT `cellops bench schedule` (model: `tools/schedule_cpsat.py`).
//!
//! Entry points: [`Network::from_json`] (read and validate an instance, format in
//! docs/scheduling.md), [`optimise::optimise`] (plan every order), [`booking::Planner`]
//! (answer and reserve bookings, predict dates), [`replan::replan`] (react to a failed batch,
//! an OOS, a breakdown or a late courier), [`output`] (plan report, Gantt data),
//! [`generate::generate`] (realistic instances).

pub mod booking;
pub mod date;
pub mod error;
pub mod generate;
pub mod instance;
pub mod network;
pub mod optimise;
pub mod output;
pub mod plan;
pub mod replan;
pub mod staffing;
pub mod verify;

pub use error::{FieldError, ScheduleError};
pub use instance::Instance;
pub use network::{Day, Network};
pub use plan::{Schedule, Slot};
