//! cellops-qc: quality control and release, pure.
//!
//! - `spec`: release specifications per product and version, read from TOML (`specs/`).
//! - `evaluate`: a result with its unit checked against a test's criterion (pass / fail).
//! - `results`: a batch's results, never overwritten (corrections supersede with a reason),
//!   and OOS investigations.
//! - `plan`: the sample plan generated from the recipe and the specification.
//! - `readiness`: release readiness, a pure function from every input to explained blockers.
//! - `release`: release and release-at-risk decisions, and the release status of a batch.
//! - `coa`: the certificate of analysis as a PDF.
//!
//! Architecture invariant: no IO, no clock, no randomness; time and people arrive as
//! arguments. The server records what these functions decide.

pub mod coa;
pub mod error;
pub mod evaluate;
pub mod plan;
pub mod readiness;
pub mod release;
pub mod results;
pub mod shipped;
pub mod spec;
pub mod units;

pub use error::QcError;
pub use evaluate::{EnteredValue, MeasuredValue, Verdict, evaluate};
pub use plan::{SamplePlan, sample_plan};
pub use readiness::{
    Blocker, ExcursionAssessment, ExcursionFact, LabelFacts, ProcessFacts, Readiness,
    ReleaseInputs, release_readiness,
};
pub use release::{AtRiskRequest, ReleaseKind, ReleaseStatus, check_release};
pub use results::{BatchResults, Investigation, InvestigationState, ResultRecord};
pub use shipped::SpecCatalog;
pub use spec::{Criterion, ReleaseTiming, Specification, TestSpec};
pub use units::QcUnit;
