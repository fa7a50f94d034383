//! Why a batch command was refused. Every message names the step or deviation, the rule and
//! what to do instead.

use crate::recipe::hash::ApprovalStatus;
use crate::recipe::model::SignatureMeaning;

use super::ids::{DeviationId, PersonId};
use super::state::DeviationState;

/// A refused batch command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProcessError {
    /// The recipe is not approved in this exact content.
    #[error(
        "recipe {product} {version} is not approved for use ({status:?}) (rule: a recipe runs only once QA approved that exact content; have QA approve it or use an approved version)"
    )]
    RecipeNotApproved {
        /// Product id.
        product: String,
        /// Version.
        version: String,
        /// What the approval check found.
        status: ApprovalStatus,
    },
    /// The batch was already started.
    #[error("the batch is already started (rule: StartBatch once per batch)")]
    AlreadyStarted,
    /// The command needs a started batch.
    #[error("the batch is not started (rule: start the batch first)")]
    NotStarted,
    /// The batch has run its last step.
    #[error("the batch is completed (rule: no steps run after the last step)")]
    Completed,
    /// The batch was aborted.
    #[error("the batch was aborted (rule: nothing runs after an abort; start a new batch)")]
    Aborted,
    /// The command's time is before the last recorded event.
    #[error("command time {at} is before the last event at {last} (rule: time never goes back)")]
    TimeWentBackwards {
        /// The command's time (RFC 3339).
        at: String,
        /// The last event's time (RFC 3339).
        last: String,
    },
    /// No step of the recipe has this id.
    #[error("step `{step}` is not in the recipe")]
    UnknownStep {
        /// The step id.
        step: String,
    },
    /// The step is not the one due now.
    #[error(
        "step `{step}` is out of order: the next step is `{expected}` (rule: steps run in recipe order)"
    )]
    StepOutOfOrder {
        /// The step the command named.
        step: String,
        /// The step due now.
        expected: String,
    },
    /// Another step is still in progress.
    #[error("step `{active}` is still in progress (rule: complete it before starting `{step}`)")]
    StepInProgress {
        /// The step in progress.
        active: String,
        /// The step the command named.
        step: String,
    },
    /// The step has not been started.
    #[error("step `{step}` is not in progress (rule: start it first)")]
    StepNotStarted {
        /// The step id.
        step: String,
    },
    /// The command does not fit the step's kind.
    #[error("step `{step}` is a {kind} step; {command} applies to {expected} steps")]
    WrongStepKind {
        /// The step id.
        step: String,
        /// The step's kind.
        kind: &'static str,
        /// The command's name.
        command: &'static str,
        /// The kind the command applies to.
        expected: &'static str,
    },
    /// A deviation with action "hold" is not closed.
    #[error(
        "the batch is on hold by deviation(s) {deviations:?} (rule: no step starts until QA closes them)"
    )]
    OnHold {
        /// The deviations holding the batch.
        deviations: Vec<DeviationId>,
    },
    /// The person lacks the step's qualification.
    #[error(
        "{person} does not hold qualification `{qualification}` required by step `{step}` (rule: only qualified people perform steps)"
    )]
    NotQualified {
        /// The person.
        person: PersonId,
        /// The missing qualification.
        qualification: String,
        /// The step id.
        step: String,
    },
    /// The verifier of a four-eyes step performed the step it verifies.
    #[error(
        "{person} performed step `{verified}` and cannot also verify it in step `{step}` (rule: four-eyes, the verifier must be a second person; have another qualified person confirm `{step}`)"
    )]
    SamePersonVerifies {
        /// The person.
        person: PersonId,
        /// The verification step.
        step: String,
        /// The step it verifies.
        verified: String,
    },
    /// The step needs an e-signature and none was given.
    #[error("step `{step}` needs an e-signature meaning `{}` (rule: the recipe requires it)", meaning.name())]
    SignatureRequired {
        /// The step id.
        step: String,
        /// The required meaning.
        meaning: SignatureMeaning,
    },
    /// The e-signature has another meaning than the recipe requires.
    #[error("step `{step}` needs an e-signature meaning `{}`, got `{}`", expected.name(), got.name())]
    SignatureMeaningMismatch {
        /// The step id.
        step: String,
        /// Required meaning.
        expected: SignatureMeaning,
        /// Given meaning.
        got: SignatureMeaning,
    },
    /// A lot-controlled material's lot was not captured.
    #[error("step `{step}` uses `{material}`, whose lot must be recorded (rule: lot capture)")]
    LotMissing {
        /// The step id.
        step: String,
        /// The material id.
        material: String,
    },
    /// A lot was given for a material the step does not use.
    #[error(
        "step `{step}` does not use material `{material}` (rule: record lots only for the step's materials)"
    )]
    LotNotExpected {
        /// The step id.
        step: String,
        /// The material id.
        material: String,
    },
    /// A device step is reported complete before its duration.
    #[error(
        "device step `{step}` ran {elapsed_hours:.2} h of its {duration_hours} h (rule: a device step completes after its duration)"
    )]
    DeviceStepNotElapsed {
        /// The step id.
        step: String,
        /// Hours since it started.
        elapsed_hours: f64,
        /// Planned duration, hours.
        duration_hours: f64,
    },
    /// A sampling step's result is missing.
    #[error(
        "step `{step}` has no result for `{parameter}` (rule: every limited parameter is reported)"
    )]
    ResultMissing {
        /// The step id.
        step: String,
        /// The parameter.
        parameter: String,
    },
    /// A result names a parameter the step does not limit.
    #[error(
        "step `{step}` has no limit for `{parameter}` (rule: report only the step's parameters)"
    )]
    ResultUnknown {
        /// The step id.
        step: String,
        /// The parameter.
        parameter: String,
    },
    /// A measured or predicted value is NaN or infinite.
    #[error("`{parameter}` of step `{step}` is not a finite number (rule: values are finite)")]
    NotFinite {
        /// The step id.
        step: String,
        /// The parameter.
        parameter: String,
    },
    /// No deviation has this id.
    #[error("deviation {deviation} does not exist")]
    UnknownDeviation {
        /// The id.
        deviation: DeviationId,
    },
    /// The deviation is not in the state the action needs.
    #[error(
        "deviation {deviation} is {state:?}; {action} needs it {needed:?} (rule: open → investigating → CAPA defined → closed)"
    )]
    DeviationWrongState {
        /// The id.
        deviation: DeviationId,
        /// Its state.
        state: DeviationState,
        /// The attempted action.
        action: &'static str,
        /// The state the action needs.
        needed: DeviationState,
    },
    /// Closing a deviation needs a QA signature meaning "approved".
    #[error("closing deviation {deviation} needs a QA e-signature meaning `approved`, got `{}`", got.name())]
    ClosureNotApproved {
        /// The id.
        deviation: DeviationId,
        /// The given meaning.
        got: SignatureMeaning,
    },
    /// Free text was empty or too long.
    #[error("{field} must be 1–{max} characters (got {chars})")]
    BadText {
        /// The field.
        field: &'static str,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// A batch limit was hit.
    #[error(
        "the batch reached its limit of {max} {what} (rule: a limit on every loop; investigate the batch)"
    )]
    LimitReached {
        /// What was counted.
        what: &'static str,
        /// The limit.
        max: u32,
    },
}
