//! The batch engine: a pure state machine that follows an approved recipe.
//!
//! `BatchEngine::decide(&state, command)` checks a command against the recipe and the state
//! and returns the events it produces; `apply(state, &event)` folds an event into the state.
//! No IO, no clock: time and people arrive in commands, the qualification check is injected.

mod command;
mod decide;
mod error;
mod event;
mod ids;
mod state;

pub use command::Command;
pub use decide::evaluate_decision;
pub use error::ProcessError;
pub use event::{
    BatchEvent, DecisionOutcome, DeviationSource, EVENT_VERSION, EventDecodeError, IpcResult,
    LotCapture, QaSignature, StepRef, StepSignature,
};
pub use ids::{
    BatchId, DeviationId, IDENT_CHARS_MAX, IdentError, LotNumber, PersonId, SignatureId,
};
pub use state::{
    ActiveStep, BatchState, BatchStatus, Deviation, DeviationState, ReleaseBlocker, apply,
    release_blockers,
};

use time::OffsetDateTime;

use crate::recipe::hash::{ApprovalStatus, ApprovedVersion, ContentHash};
use crate::recipe::model::Recipe;

/// Most step executions (starts plus decision evaluations) in one batch; a decision loop that
/// never ends hits this instead of growing the record forever.
pub const BATCH_STEP_EXECUTIONS_MAX: u32 = 10_000;
/// Most deviations in one batch (ids are numbered with three digits).
pub const BATCH_DEVIATIONS_MAX: u32 = 999;
/// Longest free text in a command (descriptions, root cause, CAPA), in characters.
pub const COMMAND_TEXT_CHARS_MAX: usize = 4_000;

/// Answers "does this person hold this qualification at this time?". The training module
/// implements it; tests pass a closure.
pub trait QualificationCheck {
    /// True when `person` holds `qualification` (a recipe qualification id) at `at`.
    fn is_qualified(&self, person: &PersonId, qualification: &str, at: OffsetDateTime) -> bool;
}

impl<F> QualificationCheck for F
where
    F: Fn(&PersonId, &str, OffsetDateTime) -> bool,
{
    fn is_qualified(&self, person: &PersonId, qualification: &str, at: OffsetDateTime) -> bool {
        self(person, qualification, at)
    }
}

/// A recipe whose exact content QA approved. Only `ApprovedRecipe::check` makes one.
#[derive(Debug, Clone, Copy)]
pub struct ApprovedRecipe<'r> {
    recipe: &'r Recipe,
    hash: ContentHash,
}

impl<'r> ApprovedRecipe<'r> {
    /// Checks `recipe` against the approved (product, version, hash) triples.
    pub fn check<'a>(
        recipe: &'r Recipe,
        approved: impl IntoIterator<Item = &'a ApprovedVersion>,
    ) -> Result<Self, ProcessError> {
        match recipe.approval_status(approved) {
            ApprovalStatus::Approved => Ok(ApprovedRecipe {
                recipe,
                hash: recipe.content_hash(),
            }),
            status => Err(ProcessError::RecipeNotApproved {
                product: recipe.product().to_string(),
                version: recipe.version().to_string(),
                status,
            }),
        }
    }
    /// The recipe.
    pub fn recipe(&self) -> &'r Recipe {
        self.recipe
    }
    /// Its approved content hash.
    pub fn content_hash(&self) -> ContentHash {
        self.hash
    }
}

/// Decides batch commands for one approved recipe.
pub struct BatchEngine<'r, Q> {
    recipe: ApprovedRecipe<'r>,
    qualifications: Q,
}

impl<'r, Q: QualificationCheck> BatchEngine<'r, Q> {
    /// An engine for `recipe`, checking qualifications with `qualifications`.
    pub fn new(recipe: ApprovedRecipe<'r>, qualifications: Q) -> Self {
        BatchEngine {
            recipe,
            qualifications,
        }
    }

    /// The recipe the engine follows.
    pub fn recipe(&self) -> &'r Recipe {
        self.recipe.recipe
    }

    /// The events `command` produces in `state`, or why it is refused. Pure.
    pub fn decide(
        &self,
        state: &BatchState,
        command: Command,
    ) -> Result<Vec<BatchEvent>, ProcessError> {
        decide::decide(self.recipe, &self.qualifications, state, command)
    }
}
