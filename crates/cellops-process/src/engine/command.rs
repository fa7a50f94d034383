//! Commands: what someone (or the device controller) asks the batch to do. Time, people and
//! measured values arrive here; the engine reads no clock.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::event::{QaSignature, StepSignature};
use super::ids::{BatchId, DeviationId, LotNumber, PersonId};

/// A request to the batch. Step ids are the recipe's ids.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Start the batch on the engine's approved recipe.
    StartBatch {
        /// Batch id.
        batch: BatchId,
        /// Who starts it.
        by: PersonId,
        /// When (day 0 of the batch).
        at: OffsetDateTime,
    },
    /// Start the due device, operator or sampling step, capturing material lots.
    StartStep {
        /// Step id.
        step: String,
        /// Who starts it (qualification checked for operator and sampling steps).
        by: PersonId,
        /// When.
        at: OffsetDateTime,
        /// Lot per material id; required for the step's lot-controlled materials.
        lots: BTreeMap<String, LotNumber>,
    },
    /// The device reports that the device step in progress finished.
    CompleteDeviceStep {
        /// Step id.
        step: String,
        /// When.
        at: OffsetDateTime,
    },
    /// The performer confirms the operator step in progress.
    CompleteOperatorStep {
        /// Step id.
        step: String,
        /// The performer (qualification checked).
        by: PersonId,
        /// When.
        at: OffsetDateTime,
        /// The performer's e-signature, required when the recipe says so.
        signature: Option<StepSignature>,
    },
    /// Results of the sampling step in progress; completes it.
    RecordSampleResults {
        /// Step id.
        step: String,
        /// Who reports (qualification checked).
        by: PersonId,
        /// When.
        at: OffsetDateTime,
        /// Value per parameter, in the unit its name carries; one per limit of the step.
        results: BTreeMap<String, f64>,
    },
    /// Evaluate the due decision with `value` (e.g. the twin's predicted dose).
    EvaluateDecision {
        /// Step id.
        step: String,
        /// Who asks (a person or the controller's service account).
        by: PersonId,
        /// When.
        at: OffsetDateTime,
        /// Value of the decision's parameter, in its unit.
        value: f64,
    },
    /// Open a deviation by hand.
    OpenDeviation {
        /// What happened (1–4000 characters).
        description: String,
        /// Whether it blocks release until closed.
        blocks_release: bool,
        /// Whether it holds the batch until closed.
        hold: bool,
        /// Who opens it.
        by: PersonId,
        /// When.
        at: OffsetDateTime,
    },
    /// Start investigating an open deviation.
    StartInvestigation {
        /// The deviation.
        deviation: DeviationId,
        /// Investigator.
        by: PersonId,
        /// When.
        at: OffsetDateTime,
    },
    /// Record root cause and CAPA of a deviation under investigation.
    DefineCapa {
        /// The deviation.
        deviation: DeviationId,
        /// Root cause (1–4000 characters).
        root_cause: String,
        /// Corrective and preventive action (1–4000 characters).
        capa: String,
        /// Who defines them.
        by: PersonId,
        /// When.
        at: OffsetDateTime,
    },
    /// Abort the running batch for good (the material is discarded or quarantined).
    AbortBatch {
        /// Why (1–4000 characters).
        reason: String,
        /// Who aborts it.
        by: PersonId,
        /// When.
        at: OffsetDateTime,
    },
    /// QA closes a deviation whose CAPA is defined, with an e-signature meaning "approved".
    CloseDeviation {
        /// The deviation.
        deviation: DeviationId,
        /// QA's signature.
        qa_signature: QaSignature,
        /// When.
        at: OffsetDateTime,
    },
}

impl Command {
    /// The command's time.
    pub fn at(&self) -> OffsetDateTime {
        match self {
            Command::StartBatch { at, .. }
            | Command::StartStep { at, .. }
            | Command::CompleteDeviceStep { at, .. }
            | Command::CompleteOperatorStep { at, .. }
            | Command::RecordSampleResults { at, .. }
            | Command::EvaluateDecision { at, .. }
            | Command::OpenDeviation { at, .. }
            | Command::StartInvestigation { at, .. }
            | Command::DefineCapa { at, .. }
            | Command::AbortBatch { at, .. }
            | Command::CloseDeviation { at, .. } => *at,
        }
    }
}
