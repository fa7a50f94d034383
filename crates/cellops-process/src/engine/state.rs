//! Batch state, rebuilt from events by `apply` (total: it never fails). `decide` reads it.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::recipe::hash::ContentHash;

use super::event::{BatchEvent, DeviationSource, LotCapture, QaSignature, StepRef};
use super::ids::{BatchId, DeviationId, PersonId};

/// Where a batch is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BatchStatus {
    /// No `BatchStarted` yet.
    NotStarted,
    /// Started, last step not completed.
    Running,
    /// The last step completed.
    Completed,
    /// Aborted before its last step; never released.
    Aborted,
}

/// The step being performed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveStep {
    /// The step.
    pub step: StepRef,
    /// Who started it.
    pub started_by: PersonId,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// Lots captured at its start.
    pub lots: Vec<LotCapture>,
}

/// Deviation workflow state: open → investigating → CAPA defined → closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum DeviationState {
    /// Opened, not yet investigated.
    Open,
    /// Investigation under way.
    Investigating,
    /// Root cause and CAPA defined; waiting for QA.
    CapaDefined,
    /// Closed by QA with an e-signature meaning "approved".
    Closed,
}

/// A deviation of this batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deviation {
    /// Id.
    pub id: DeviationId,
    /// Why it was opened.
    pub source: DeviationSource,
    /// Whether it blocks release until closed.
    pub blocks_release: bool,
    /// Whether it holds the batch until closed.
    pub hold: bool,
    /// Workflow state.
    pub state: DeviationState,
    /// When it was opened.
    pub opened_at: OffsetDateTime,
    /// Investigator, once investigating.
    pub investigator: Option<PersonId>,
    /// Root cause, once defined.
    pub root_cause: Option<String>,
    /// CAPA, once defined.
    pub capa: Option<String>,
    /// QA's closing signature.
    pub closed_by: Option<QaSignature>,
}

/// What stands between the batch and release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ReleaseBlocker {
    /// The batch has not completed its last step.
    BatchNotCompleted,
    /// A deviation that blocks release is not closed.
    OpenDeviation {
        /// The deviation.
        deviation: DeviationId,
        /// Its state.
        state: DeviationState,
    },
}

/// The state of one batch. Built only by `BatchState::new` and `apply`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchState {
    pub(crate) status: BatchStatus,
    pub(crate) batch: Option<BatchId>,
    pub(crate) recipe_hash: Option<ContentHash>,
    pub(crate) started_at: Option<OffsetDateTime>,
    pub(crate) last_at: Option<OffsetDateTime>,
    pub(crate) due: Option<StepRef>,
    pub(crate) active: Option<ActiveStep>,
    pub(crate) step_executions: u32,
    pub(crate) deviations: BTreeMap<DeviationId, Deviation>,
    /// Per step id, the people who started, sampled or confirmed its latest execution (a
    /// loop's new pass replaces the previous one): whom a four-eyes verification excludes.
    pub(crate) performers: BTreeMap<String, Vec<PersonId>>,
}

impl Default for BatchState {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchState {
    /// A batch before `BatchStarted`.
    pub fn new() -> Self {
        BatchState {
            status: BatchStatus::NotStarted,
            batch: None,
            recipe_hash: None,
            started_at: None,
            last_at: None,
            due: None,
            active: None,
            step_executions: 0,
            deviations: BTreeMap::new(),
            performers: BTreeMap::new(),
        }
    }
    /// Life-cycle status.
    pub fn status(&self) -> BatchStatus {
        self.status
    }
    /// Batch id, once started.
    pub fn batch(&self) -> Option<&BatchId> {
        self.batch.as_ref()
    }
    /// Content hash of the recipe the batch runs, once started.
    pub fn recipe_hash(&self) -> Option<ContentHash> {
        self.recipe_hash
    }
    /// When the batch started (day 0).
    pub fn started_at(&self) -> Option<OffsetDateTime> {
        self.started_at
    }
    /// Time of the last event.
    pub fn last_at(&self) -> Option<OffsetDateTime> {
        self.last_at
    }
    /// The step due now: in progress, or the next to start or evaluate. `None` when not
    /// started or completed.
    pub fn due_step(&self) -> Option<&StepRef> {
        self.due.as_ref()
    }
    /// The step in progress, if any.
    pub fn active_step(&self) -> Option<&ActiveStep> {
        self.active.as_ref()
    }
    /// Steps started or decisions evaluated so far (loops count every pass).
    pub fn step_executions(&self) -> u32 {
        self.step_executions
    }
    /// The people who started, sampled or confirmed the latest execution of `step` (empty
    /// when it has not run).
    pub fn performers(&self, step: &str) -> &[PersonId] {
        self.performers.get(step).map_or(&[], Vec::as_slice)
    }
    /// All deviations, in the order they were opened.
    pub fn deviations(&self) -> impl Iterator<Item = &Deviation> {
        self.deviations.values()
    }
    /// The deviation with `id`.
    pub fn deviation(&self, id: &DeviationId) -> Option<&Deviation> {
        self.deviations.get(id)
    }
    /// Deviations that hold the batch (action "hold", not closed).
    pub fn holding_deviations(&self) -> Vec<DeviationId> {
        self.deviations
            .values()
            .filter(|d| d.hold && d.state != DeviationState::Closed)
            .map(|d| d.id.clone())
            .collect()
    }

    /// Asserts the state's invariants; simulations call it after every applied event.
    pub fn check_invariants(&self) {
        match self.status {
            BatchStatus::NotStarted => {
                assert!(self.batch.is_none(), "unstarted batch has an id");
                assert!(self.due.is_none(), "unstarted batch has a due step");
                assert!(self.deviations.is_empty(), "unstarted batch has deviations");
            }
            BatchStatus::Running => {
                assert!(self.batch.is_some(), "running batch has no id");
                assert!(self.started_at.is_some(), "running batch has no start");
                assert!(self.due.is_some(), "running batch has no due step");
            }
            BatchStatus::Aborted => {
                assert!(self.batch.is_some(), "aborted batch has no id");
                assert!(self.due.is_none(), "aborted batch has a due step");
                assert!(self.active.is_none(), "aborted batch has an active step");
            }
            BatchStatus::Completed => {
                assert!(self.due.is_none(), "completed batch has a due step");
                assert!(self.active.is_none(), "completed batch has an active step");
            }
        }
        if let Some(active) = &self.active {
            assert_eq!(
                Some(&active.step),
                self.due.as_ref(),
                "active step is not the due step"
            );
        }
        for d in self.deviations.values() {
            let closed = d.state == DeviationState::Closed;
            assert_eq!(
                closed,
                d.closed_by.is_some(),
                "deviation {} closure without signature",
                d.id
            );
        }
    }
}

/// Open deviations that block release, plus `BatchNotCompleted` while the batch runs.
pub fn release_blockers(state: &BatchState) -> Vec<ReleaseBlocker> {
    let mut blockers = Vec::new();
    if state.status != BatchStatus::Completed {
        blockers.push(ReleaseBlocker::BatchNotCompleted);
    }
    blockers.extend(
        state
            .deviations
            .values()
            .filter(|d| d.blocks_release && d.state != DeviationState::Closed)
            .map(|d| ReleaseBlocker::OpenDeviation {
                deviation: d.id.clone(),
                state: d.state,
            }),
    );
    blockers
}

/// Applies one event. Total: an event that does not fit the state (which `decide` never
/// produces) changes only what it names, so replay of a damaged stream never panics.
pub fn apply(mut state: BatchState, event: &BatchEvent) -> BatchState {
    state.last_at = Some(event.at());
    match event {
        BatchEvent::BatchStarted {
            batch,
            recipe_hash,
            at,
            first_step,
            ..
        } => {
            state.status = BatchStatus::Running;
            state.batch = Some(batch.clone());
            state.recipe_hash = Some(*recipe_hash);
            state.started_at = Some(*at);
            state.due = Some(first_step.clone());
        }
        BatchEvent::StepStarted {
            step, by, at, lots, ..
        } => {
            state.step_executions = state.step_executions.saturating_add(1);
            state.due = Some(step.clone());
            state.active = Some(ActiveStep {
                step: step.clone(),
                started_by: by.clone(),
                started_at: *at,
                lots: lots.clone(),
            });
            state.performers.insert(step.id.clone(), vec![by.clone()]);
        }
        BatchEvent::SampleResultsRecorded { step, by, .. } => {
            add_performer(&mut state, &step.id, by);
        }
        BatchEvent::StepCompleted { step, by, next, .. } => {
            if let Some(by) = by {
                add_performer(&mut state, &step.id, by);
            }
            state.active = None;
            state.due = next.clone();
            // No next step: the batch is complete (`BatchCompleted` follows as the marker).
            if next.is_none() {
                state.status = BatchStatus::Completed;
            }
        }
        BatchEvent::DecisionEvaluated { next, .. } => {
            state.step_executions = state.step_executions.saturating_add(1);
            state.active = None;
            state.due = next.clone();
            if next.is_none() {
                state.status = BatchStatus::Completed;
            }
        }
        BatchEvent::DeviationOpened {
            deviation,
            source,
            blocks_release,
            hold,
            at,
            ..
        } => {
            state.deviations.insert(
                deviation.clone(),
                Deviation {
                    id: deviation.clone(),
                    source: source.clone(),
                    blocks_release: *blocks_release,
                    hold: *hold,
                    state: DeviationState::Open,
                    opened_at: *at,
                    investigator: None,
                    root_cause: None,
                    capa: None,
                    closed_by: None,
                },
            );
        }
        BatchEvent::DeviationInvestigationStarted { deviation, by, .. } => {
            if let Some(d) = state.deviations.get_mut(deviation) {
                d.state = DeviationState::Investigating;
                d.investigator = Some(by.clone());
            }
        }
        BatchEvent::DeviationCapaDefined {
            deviation,
            root_cause,
            capa,
            ..
        } => {
            if let Some(d) = state.deviations.get_mut(deviation) {
                d.state = DeviationState::CapaDefined;
                d.root_cause = Some(root_cause.clone());
                d.capa = Some(capa.clone());
            }
        }
        BatchEvent::DeviationClosed {
            deviation,
            qa_signature,
            ..
        } => {
            if let Some(d) = state.deviations.get_mut(deviation) {
                d.state = DeviationState::Closed;
                d.closed_by = Some(qa_signature.clone());
            }
        }
        BatchEvent::BatchAborted { .. } => {
            state.status = BatchStatus::Aborted;
            state.due = None;
            state.active = None;
        }
        BatchEvent::BatchCompleted { .. } => {
            state.status = BatchStatus::Completed;
            state.due = None;
            state.active = None;
        }
    }
    state
}

fn add_performer(state: &mut BatchState, step: &str, by: &PersonId) {
    let people = state.performers.entry(step.to_string()).or_default();
    if !people.contains(by) {
        people.push(by.clone());
    }
}
