//! Batch events: the facts the ledger stores. Each carries everything `apply` needs, so a
//! batch replays from its events alone, without the recipe.
//!
//! JSON form: `{"type": "<snake_case name>", "version": 1, ...fields}`; times are RFC 3339.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::recipe::hash::ContentHash;
use crate::recipe::model::{LimitAction, SignatureMeaning, StepPosition};
use crate::units::Unit;

use super::ids::{BatchId, DeviationId, LotNumber, PersonId, SignatureId};

/// Version of every event's JSON schema. Older versions are upcast in `BatchEvent::from_json`.
pub const EVENT_VERSION: u32 = 1;

/// A step of the recipe: its id and position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRef {
    /// Step id (unique in the recipe).
    pub id: String,
    /// Position in the recipe.
    pub position: StepPosition,
}

/// A captured material lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotCapture {
    /// Material id from the recipe.
    pub material: String,
    /// Lot number as scanned.
    pub lot: LotNumber,
}

/// An e-signature on a step, recorded by the caller in the ledger before the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSignature {
    /// Meaning of the signature.
    pub meaning: SignatureMeaning,
    /// Id of the e-signature record.
    pub signature: SignatureId,
}

/// QA's e-signature closing a deviation. Its meaning must be `approved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QaSignature {
    /// The QA person (the caller checks the `qa_reviewer` role).
    pub signer: PersonId,
    /// Meaning of the signature.
    pub meaning: SignatureMeaning,
    /// Id of the e-signature record.
    pub signature: SignatureId,
}

/// One in-process result and its evaluation against the recipe's limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpcResult {
    /// Parameter name (carries the unit).
    pub parameter: String,
    /// Measured value, in `unit`.
    pub value: f64,
    /// Unit of value and limits.
    pub unit: Unit,
    /// Lower limit, inclusive.
    pub min: Option<f64>,
    /// Upper limit, inclusive.
    pub max: Option<f64>,
    /// Whether value is inside the limits.
    pub within_limits: bool,
}

/// Why a deviation was opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeviationSource {
    /// An in-process result outside its limits.
    IpcOutOfLimit {
        /// The sampling step id.
        step: String,
        /// The result.
        result: IpcResult,
    },
    /// A decision reached its latest day without its target.
    DecisionLatestDay {
        /// The decision step id.
        step: String,
        /// Parameter name.
        parameter: String,
        /// Value at the latest day.
        value: f64,
        /// Target.
        target_min: f64,
    },
    /// Opened by a person.
    Manual {
        /// What happened.
        description: String,
    },
}

/// What a decision concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    /// Before the earliest day: go on, whatever the value.
    ContinueBeforeEarliestDay,
    /// In the window, target not met: go on.
    ContinueTargetNotMet,
    /// Target met in the window (or at the latest day): proceed.
    ProceedTargetMet,
    /// Latest day reached without the target: proceed and open a deviation.
    ProceedLatestDayReached,
}

impl DecisionOutcome {
    /// True when the batch leaves the loop and goes to the next step.
    pub fn proceeds(self) -> bool {
        matches!(
            self,
            DecisionOutcome::ProceedTargetMet | DecisionOutcome::ProceedLatestDayReached
        )
    }
}

/// A fact about a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BatchEvent {
    /// The batch started on an approved recipe.
    BatchStarted {
        /// Batch id.
        batch: BatchId,
        /// Product id.
        product: String,
        /// Recipe version.
        recipe_version: String,
        /// Content hash of the approved recipe.
        recipe_hash: ContentHash,
        /// Who started it.
        by: PersonId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// The first step.
        first_step: StepRef,
    },
    /// A device, operator or sampling step started.
    StepStarted {
        /// The step.
        step: StepRef,
        /// Who started it.
        by: PersonId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Lots captured.
        lots: Vec<LotCapture>,
        /// Device set points to send (device steps; empty otherwise), by set-point name.
        set_points: BTreeMap<String, f64>,
        /// Planned duration (device steps), hours.
        duration_hours: Option<f64>,
        /// The recipe qualification the performer was checked for at `at` (operator and
        /// sampling steps; absent for device steps and in records written before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qualification: Option<String>,
    },
    /// In-process results were recorded and evaluated.
    SampleResultsRecorded {
        /// The sampling step.
        step: StepRef,
        /// Who sampled.
        by: PersonId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Results in parameter order.
        results: Vec<IpcResult>,
        /// The recipe qualification the performer was checked for at `at` (operator and
        /// sampling steps; absent for device steps and in records written before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qualification: Option<String>,
    },
    /// A step completed; `next` is the step due now (`None` after the last step).
    StepCompleted {
        /// The step.
        step: StepRef,
        /// Who confirmed it (`None` for device steps reported by the device).
        by: Option<PersonId>,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// The performer's e-signature, where given.
        signature: Option<StepSignature>,
        /// The step due next.
        next: Option<StepRef>,
        /// The recipe qualification the performer was checked for at `at` (operator and
        /// sampling steps; absent for device steps and in records written before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qualification: Option<String>,
    },
    /// A decision was evaluated; `next` is the loop target or the following step.
    DecisionEvaluated {
        /// The decision step.
        step: StepRef,
        /// Who asked for the evaluation.
        by: PersonId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Parameter name.
        parameter: String,
        /// The value passed in (e.g. the twin's predicted dose).
        value: f64,
        /// Target.
        target_min: f64,
        /// Hours since batch start.
        elapsed_hours: f64,
        /// Conclusion.
        outcome: DecisionOutcome,
        /// The step due next.
        next: Option<StepRef>,
    },
    /// A deviation was opened.
    DeviationOpened {
        /// Its id.
        deviation: DeviationId,
        /// Why.
        source: DeviationSource,
        /// Whether it blocks release until closed.
        blocks_release: bool,
        /// Whether it holds the batch until closed.
        hold: bool,
        /// Who opened it (`None` when opened automatically).
        by: Option<PersonId>,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// An investigation of the deviation started.
    DeviationInvestigationStarted {
        /// The deviation.
        deviation: DeviationId,
        /// Investigator.
        by: PersonId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Root cause and corrective/preventive action were defined.
    DeviationCapaDefined {
        /// The deviation.
        deviation: DeviationId,
        /// Root cause found.
        root_cause: String,
        /// Corrective and preventive action.
        capa: String,
        /// Who defined them.
        by: PersonId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// QA closed the deviation with an e-signature meaning "approved".
    DeviationClosed {
        /// The deviation.
        deviation: DeviationId,
        /// QA's signature.
        qa_signature: QaSignature,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The batch was aborted; no step runs after this.
    BatchAborted {
        /// Why.
        reason: String,
        /// Who aborted it.
        by: PersonId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The last step completed.
    BatchCompleted {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

/// An event's JSON could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    /// The JSON is not an object with a `version` number.
    #[error("batch event JSON has no numeric `version` field")]
    NoVersion,
    /// The version is newer than this code knows.
    #[error(
        "batch event version {version} is not known (rule: this build reads versions up to {EVENT_VERSION})"
    )]
    UnknownVersion {
        /// The version found.
        version: u64,
    },
    /// The fields do not match the event type.
    #[error("batch event JSON does not match its type: {0}")]
    Fields(#[from] serde_json::Error),
}

impl BatchEvent {
    /// The `type` name stored with the event.
    pub fn type_name(&self) -> &'static str {
        match self {
            BatchEvent::BatchStarted { .. } => "batch_started",
            BatchEvent::StepStarted { .. } => "step_started",
            BatchEvent::SampleResultsRecorded { .. } => "sample_results_recorded",
            BatchEvent::StepCompleted { .. } => "step_completed",
            BatchEvent::DecisionEvaluated { .. } => "decision_evaluated",
            BatchEvent::DeviationOpened { .. } => "deviation_opened",
            BatchEvent::DeviationInvestigationStarted { .. } => "deviation_investigation_started",
            BatchEvent::DeviationCapaDefined { .. } => "deviation_capa_defined",
            BatchEvent::DeviationClosed { .. } => "deviation_closed",
            BatchEvent::BatchAborted { .. } => "batch_aborted",
            BatchEvent::BatchCompleted { .. } => "batch_completed",
        }
    }

    /// When the event happened.
    pub fn at(&self) -> OffsetDateTime {
        match self {
            BatchEvent::BatchStarted { at, .. }
            | BatchEvent::StepStarted { at, .. }
            | BatchEvent::SampleResultsRecorded { at, .. }
            | BatchEvent::StepCompleted { at, .. }
            | BatchEvent::DecisionEvaluated { at, .. }
            | BatchEvent::DeviationOpened { at, .. }
            | BatchEvent::DeviationInvestigationStarted { at, .. }
            | BatchEvent::DeviationCapaDefined { at, .. }
            | BatchEvent::DeviationClosed { at, .. }
            | BatchEvent::BatchAborted { at, .. }
            | BatchEvent::BatchCompleted { at } => *at,
        }
    }

    /// JSON with `type` and `version` fields, as stored in the ledger.
    pub fn to_json(&self) -> serde_json::Value {
        // Cannot fail: every field is a string, number, bool, sequence or string-keyed map.
        let mut value = serde_json::to_value(self).expect("batch events always encode as JSON");
        if let Some(object) = value.as_object_mut() {
            object.insert("version".into(), EVENT_VERSION.into());
        }
        value
    }

    /// Reads the JSON written by `to_json`, upcasting older versions (none exist yet).
    pub fn from_json(value: &serde_json::Value) -> Result<BatchEvent, EventDecodeError> {
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .ok_or(EventDecodeError::NoVersion)?;
        if version != u64::from(EVENT_VERSION) {
            return Err(EventDecodeError::UnknownVersion { version });
        }
        let mut fields = value.clone();
        if let Some(object) = fields.as_object_mut() {
            object.remove("version");
        }
        Ok(serde_json::from_value(fields)?)
    }
}

/// What out-of-limit and latest-day deviations do to the batch, from the recipe's action.
pub(crate) fn holds(action: LimitAction) -> bool {
    matches!(action, LimitAction::Hold)
}
