//! cellops-twin: process models (digital twin) for cell-therapy manufacturing.
//!
//! Architecture invariant: pure and deterministic. No IO, no clock, no global randomness:
//! every random draw comes from an RNG or seed the caller passes in, so a run replays bit for
//! bit. Models and equations: docs/twin.md and ../shared/reference/bioprocess.md.
//!
//! Entry points: [`sim::CultureSim`] (step a culture, act on it, read sensors),
//! [`predict::predict_dose_day`] (fit observations, predict the dose day),
//! [`freeze`] and [`shipper`] (cold chain).

pub mod error;
pub mod fit;
pub mod freeze;
pub mod msc;
pub mod observations;
pub mod ode;
#[cfg(feature = "plot")]
pub mod plot;
pub mod predict;
pub mod product;
pub mod sensors;
pub mod shipper;
pub mod sim;
pub mod tcell;
pub mod units;

pub use error::TwinError;
pub use predict::{DoseOrder, Prediction, predict_dose_day};
pub use product::Product;
pub use sim::{Action, CultureSim, TrueState};
