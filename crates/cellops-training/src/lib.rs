//! Training and qualification of clinical culturists (臨床培養士), pure core.
//!
//! - [`curriculum`]: curricula as versioned TOML (courses, modules, assessments,
//!   prerequisites, granted qualifications with validity and requalification rules).
//! - [`event`] and [`state`]: the training facts recorded in the ledger and their read model;
//!   [`is_qualified`] answers "does this person hold this qualification at this instant".
//! - [`decide`]: pure decisions (enrol, attend, assess, certify, suspend, reinstate).
//! - [`matrix`]: the site qualification matrix (action → qualification), site configuration.
//! - [`report`]: the training matrix, expiring qualifications and the auditor's questions.
//! - [`certificate`]: certificate codes and the certificate PDF.
//!
//! Architecture invariant: no IO, no clock, no randomness. Time and certificate codes are
//! inputs; the server records the decided events and feeds records back through
//! [`TrainingState::apply`].

pub mod adapters;
pub mod certificate;
pub mod curriculum;
pub mod decide;
pub mod demo;
pub mod enforce;
pub mod error;
pub mod event;
pub mod matrix;
pub mod report;
pub mod state;

pub use adapters::BedsideChecker;
pub use curriculum::{AssessmentKind, Curriculum, Level};
pub use enforce::check_action;
pub use error::TrainingError;
pub use event::{TRAINING_EVENT_TYPES, TrainingEvent};
pub use matrix::{QUALIFICATION_PREFIX, QualificationMatrix};
pub use state::{QualificationStatus, TrainingState, is_qualified};

/// Microseconds in a day.
pub const DAY_US: i64 = 86_400_000_000;
