//! `decide`: checks a command against the recipe and the batch state.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::recipe::model::{DecisionStep, Recipe, SignatureMeaning, Step, StepKind, StepPosition};

use super::command::Command;
use super::error::ProcessError;
use super::event::{
    BatchEvent, DecisionOutcome, DeviationSource, IpcResult, LotCapture, QaSignature, StepRef,
    StepSignature, holds,
};
use super::ids::{DeviationId, LotNumber, PersonId};
use super::state::{BatchState, BatchStatus, DeviationState};
use super::{
    ApprovedRecipe, BATCH_DEVIATIONS_MAX, BATCH_STEP_EXECUTIONS_MAX, COMMAND_TEXT_CHARS_MAX,
    QualificationCheck,
};

const SECONDS_PER_HOUR: f64 = 3600.0;

/// The outcome of a decision step for `value` at `elapsed_hours` after batch start.
///
/// Before the earliest day the batch always continues; inside the window it proceeds once
/// `value >= target_min`; from the latest day on it proceeds in any case, and a target not
/// met is `ProceedLatestDayReached` (which opens a deviation). NaN never meets the target.
pub fn evaluate_decision(
    decision: &DecisionStep,
    elapsed_hours: f64,
    value: f64,
) -> DecisionOutcome {
    let target_met = value >= decision.target_min;
    let earliest_hours = f64::from(decision.earliest_day) * 24.0;
    let latest_hours = f64::from(decision.latest_day) * 24.0;
    if elapsed_hours < earliest_hours {
        DecisionOutcome::ContinueBeforeEarliestDay
    } else if target_met {
        DecisionOutcome::ProceedTargetMet
    } else if elapsed_hours >= latest_hours {
        DecisionOutcome::ProceedLatestDayReached
    } else {
        DecisionOutcome::ContinueTargetNotMet
    }
}

pub(crate) fn decide(
    approved: ApprovedRecipe<'_>,
    qualifications: &dyn QualificationCheck,
    state: &BatchState,
    command: Command,
) -> Result<Vec<BatchEvent>, ProcessError> {
    check_time(state, command.at())?;
    let ctx = Ctx {
        recipe: approved.recipe(),
        qualifications,
        state,
    };
    match command {
        Command::StartBatch { batch, by, at } => {
            if state.status != BatchStatus::NotStarted {
                return Err(ProcessError::AlreadyStarted);
            }
            let first = StepPosition {
                phase_index: 0,
                step_index: 0,
            };
            Ok(vec![BatchEvent::BatchStarted {
                batch,
                product: ctx.recipe.product().to_string(),
                recipe_version: ctx.recipe.version().to_string(),
                recipe_hash: approved.content_hash(),
                by,
                at,
                first_step: ctx.step_ref(first),
            }])
        }
        Command::StartStep { step, by, at, lots } => ctx.start_step(&step, by, at, lots),
        Command::CompleteDeviceStep { step, at } => ctx.complete_device(&step, at),
        Command::CompleteOperatorStep {
            step,
            by,
            at,
            signature,
        } => ctx.complete_operator(&step, by, at, signature),
        Command::RecordSampleResults {
            step,
            by,
            at,
            results,
        } => ctx.record_samples(&step, by, at, &results),
        Command::EvaluateDecision {
            step,
            by,
            at,
            value,
        } => ctx.evaluate(&step, by, at, value),
        Command::OpenDeviation {
            description,
            blocks_release,
            hold,
            by,
            at,
        } => {
            ctx.require_started()?;
            check_text("description", &description)?;
            Ok(vec![ctx.deviation_opened(
                0,
                DeviationSource::Manual { description },
                blocks_release,
                hold,
                Some(by),
                at,
            )?])
        }
        Command::StartInvestigation { deviation, by, at } => {
            ctx.require_deviation(&deviation, DeviationState::Open, "start investigation")?;
            Ok(vec![BatchEvent::DeviationInvestigationStarted {
                deviation,
                by,
                at,
            }])
        }
        Command::DefineCapa {
            deviation,
            root_cause,
            capa,
            by,
            at,
        } => {
            ctx.require_deviation(&deviation, DeviationState::Investigating, "define CAPA")?;
            check_text("root_cause", &root_cause)?;
            check_text("capa", &capa)?;
            Ok(vec![BatchEvent::DeviationCapaDefined {
                deviation,
                root_cause,
                capa,
                by,
                at,
            }])
        }
        Command::CloseDeviation {
            deviation,
            qa_signature,
            at,
        } => ctx.close_deviation(deviation, qa_signature, at),
        Command::AbortBatch { reason, by, at } => {
            ctx.require_running()?;
            check_text("reason", &reason)?;
            Ok(vec![BatchEvent::BatchAborted { reason, by, at }])
        }
    }
}

fn check_time(state: &BatchState, at: OffsetDateTime) -> Result<(), ProcessError> {
    match state.last_at {
        Some(last) if at < last => Err(ProcessError::TimeWentBackwards {
            at: at.to_string(),
            last: last.to_string(),
        }),
        _ => Ok(()),
    }
}

fn check_text(field: &'static str, text: &str) -> Result<(), ProcessError> {
    let chars = text.trim().chars().count();
    if chars == 0 || chars > COMMAND_TEXT_CHARS_MAX {
        return Err(ProcessError::BadText {
            field,
            chars,
            max: COMMAND_TEXT_CHARS_MAX,
        });
    }
    Ok(())
}

struct Ctx<'a> {
    recipe: &'a Recipe,
    qualifications: &'a dyn QualificationCheck,
    state: &'a BatchState,
}

impl<'a> Ctx<'a> {
    fn step_ref(&self, position: StepPosition) -> StepRef {
        let id = self
            .recipe
            .step_at(position)
            .map_or_else(String::new, |s| s.id.clone());
        StepRef { id, position }
    }

    fn next_ref(&self, position: StepPosition) -> Option<StepRef> {
        self.recipe
            .next_position(position)
            .map(|p| self.step_ref(p))
    }

    fn require_started(&self) -> Result<(), ProcessError> {
        match self.state.status {
            BatchStatus::NotStarted => Err(ProcessError::NotStarted),
            BatchStatus::Running | BatchStatus::Completed | BatchStatus::Aborted => Ok(()),
        }
    }

    fn require_running(&self) -> Result<(), ProcessError> {
        match self.state.status {
            BatchStatus::NotStarted => Err(ProcessError::NotStarted),
            BatchStatus::Completed => Err(ProcessError::Completed),
            BatchStatus::Aborted => Err(ProcessError::Aborted),
            BatchStatus::Running => Ok(()),
        }
    }

    /// The due step, checked to be `step_id`, with its recipe definition.
    fn due_step(&self, step_id: &str) -> Result<(StepRef, &'a Step), ProcessError> {
        self.require_running()?;
        let Some(due) = self.state.due.clone() else {
            return Err(ProcessError::Completed);
        };
        if self.recipe.position_of(step_id).is_none() {
            return Err(ProcessError::UnknownStep {
                step: step_id.to_string(),
            });
        }
        if due.id != step_id {
            if let Some(active) = &self.state.active {
                return Err(ProcessError::StepInProgress {
                    active: active.step.id.clone(),
                    step: step_id.to_string(),
                });
            }
            return Err(ProcessError::StepOutOfOrder {
                step: step_id.to_string(),
                expected: due.id,
            });
        }
        let step = self
            .recipe
            .step_at(due.position)
            .ok_or_else(|| ProcessError::UnknownStep {
                step: step_id.to_string(),
            })?;
        Ok((due, step))
    }

    /// The due step, which must be in progress.
    fn active_step(&self, step_id: &str) -> Result<(StepRef, &'a Step), ProcessError> {
        let (due, step) = self.due_step(step_id)?;
        if self.state.active.is_none() {
            return Err(ProcessError::StepNotStarted {
                step: step_id.to_string(),
            });
        }
        Ok((due, step))
    }

    fn require_not_held(&self) -> Result<(), ProcessError> {
        let deviations = self.state.holding_deviations();
        if deviations.is_empty() {
            Ok(())
        } else {
            Err(ProcessError::OnHold { deviations })
        }
    }

    fn require_qualified(
        &self,
        person: &PersonId,
        qualification: &str,
        step: &str,
        at: OffsetDateTime,
    ) -> Result<(), ProcessError> {
        if self.qualifications.is_qualified(person, qualification, at) {
            Ok(())
        } else {
            Err(ProcessError::NotQualified {
                person: person.clone(),
                qualification: qualification.to_string(),
                step: step.to_string(),
            })
        }
    }

    fn count_execution(&self) -> Result<(), ProcessError> {
        if self.state.step_executions >= BATCH_STEP_EXECUTIONS_MAX {
            return Err(ProcessError::LimitReached {
                what: "step executions",
                max: BATCH_STEP_EXECUTIONS_MAX,
            });
        }
        Ok(())
    }

    fn start_step(
        &self,
        step_id: &str,
        by: PersonId,
        at: OffsetDateTime,
        lots: BTreeMap<String, LotNumber>,
    ) -> Result<Vec<BatchEvent>, ProcessError> {
        let (due, step) = self.due_step(step_id)?;
        if self.state.active.is_some() {
            return Err(ProcessError::StepInProgress {
                active: due.id.clone(),
                step: step_id.to_string(),
            });
        }
        self.require_not_held()?;
        self.count_execution()?;
        let (set_points, duration_hours) = match &step.kind {
            StepKind::Decision(_) => {
                return Err(wrong_kind(
                    step,
                    "StartStep",
                    "device, operator or sampling",
                ));
            }
            StepKind::Device(d) => (
                d.set_points
                    .iter()
                    .map(|(sp, v)| (sp.name().to_string(), *v))
                    .collect(),
                Some(d.duration_hours),
            ),
            StepKind::Operator(o) => {
                self.require_qualified(&by, &o.qualification, step_id, at)?;
                (BTreeMap::new(), None)
            }
            StepKind::Sampling(s) => {
                self.require_qualified(&by, &s.qualification, step_id, at)?;
                (BTreeMap::new(), None)
            }
        };
        let lots = self.capture_lots(step, lots)?;
        Ok(vec![BatchEvent::StepStarted {
            step: due,
            by,
            at,
            lots,
            set_points,
            duration_hours,
            qualification: step.kind.qualification().map(str::to_string),
        }])
    }

    /// Every lot-controlled material of the step needs a lot; no lot for other materials.
    fn capture_lots(
        &self,
        step: &Step,
        mut lots: BTreeMap<String, LotNumber>,
    ) -> Result<Vec<LotCapture>, ProcessError> {
        let mut captured = Vec::new();
        for u in step.kind.materials() {
            let lot_required = self
                .recipe
                .material(&u.material)
                .is_some_and(|m| m.lot_required);
            match lots.remove(&u.material) {
                Some(lot) => captured.push(LotCapture {
                    material: u.material.clone(),
                    lot,
                }),
                None if lot_required => {
                    return Err(ProcessError::LotMissing {
                        step: step.id.clone(),
                        material: u.material.clone(),
                    });
                }
                None => {}
            }
        }
        if let Some(material) = lots.into_keys().next() {
            return Err(ProcessError::LotNotExpected {
                step: step.id.clone(),
                material,
            });
        }
        Ok(captured)
    }

    /// `StepCompleted`, followed by `BatchCompleted` after the last step.
    fn completed(
        &self,
        due: StepRef,
        by: Option<PersonId>,
        at: OffsetDateTime,
        signature: Option<StepSignature>,
        qualification: Option<&str>,
    ) -> Vec<BatchEvent> {
        let next = self.next_ref(due.position);
        let last = next.is_none();
        let mut events = vec![BatchEvent::StepCompleted {
            step: due,
            by,
            at,
            signature,
            next,
            qualification: qualification.map(str::to_string),
        }];
        if last {
            events.push(BatchEvent::BatchCompleted { at });
        }
        events
    }

    fn complete_device(
        &self,
        step_id: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<BatchEvent>, ProcessError> {
        let (due, step) = self.active_step(step_id)?;
        let StepKind::Device(device) = &step.kind else {
            return Err(wrong_kind(step, "CompleteDeviceStep", "device"));
        };
        let started_at = self.state.active.as_ref().map_or(at, |a| a.started_at);
        let elapsed_hours = (at - started_at).as_seconds_f64() / SECONDS_PER_HOUR;
        if elapsed_hours < device.duration_hours {
            return Err(ProcessError::DeviceStepNotElapsed {
                step: step_id.to_string(),
                elapsed_hours,
                duration_hours: device.duration_hours,
            });
        }
        Ok(self.completed(due, None, at, None, None))
    }

    fn complete_operator(
        &self,
        step_id: &str,
        by: PersonId,
        at: OffsetDateTime,
        signature: Option<StepSignature>,
    ) -> Result<Vec<BatchEvent>, ProcessError> {
        let (due, step) = self.active_step(step_id)?;
        let StepKind::Operator(operator) = &step.kind else {
            return Err(wrong_kind(step, "CompleteOperatorStep", "operator"));
        };
        self.require_qualified(&by, &operator.qualification, step_id, at)?;
        if let Some(verified) = &operator.verifies
            && self.state.performers(verified).contains(&by)
        {
            return Err(ProcessError::SamePersonVerifies {
                person: by,
                step: step_id.to_string(),
                verified: verified.clone(),
            });
        }
        match (operator.esignature, &signature) {
            (Some(meaning), None) => {
                return Err(ProcessError::SignatureRequired {
                    step: step_id.to_string(),
                    meaning,
                });
            }
            (Some(expected), Some(given)) if given.meaning != expected => {
                return Err(ProcessError::SignatureMeaningMismatch {
                    step: step_id.to_string(),
                    expected,
                    got: given.meaning,
                });
            }
            _ => {}
        }
        Ok(self.completed(due, Some(by), at, signature, Some(&operator.qualification)))
    }

    fn record_samples(
        &self,
        step_id: &str,
        by: PersonId,
        at: OffsetDateTime,
        results: &BTreeMap<String, f64>,
    ) -> Result<Vec<BatchEvent>, ProcessError> {
        let (due, step) = self.active_step(step_id)?;
        let StepKind::Sampling(sampling) = &step.kind else {
            return Err(wrong_kind(step, "RecordSampleResults", "sampling"));
        };
        self.require_qualified(&by, &sampling.qualification, step_id, at)?;
        if let Some(parameter) = results.keys().find(|p| !sampling.limits.contains_key(*p)) {
            return Err(ProcessError::ResultUnknown {
                step: step_id.to_string(),
                parameter: parameter.clone(),
            });
        }
        let mut evaluated = Vec::new();
        for (parameter, limit) in &sampling.limits {
            let value = *results
                .get(parameter)
                .ok_or_else(|| ProcessError::ResultMissing {
                    step: step_id.to_string(),
                    parameter: parameter.clone(),
                })?;
            if !value.is_finite() {
                return Err(ProcessError::NotFinite {
                    step: step_id.to_string(),
                    parameter: parameter.clone(),
                });
            }
            let result = IpcResult {
                parameter: parameter.clone(),
                value,
                unit: limit.unit,
                min: limit.min,
                max: limit.max,
                within_limits: limit.contains(value),
            };
            evaluated.push((result, limit.on_out_of_limit, limit.blocks_release));
        }
        let mut events = vec![BatchEvent::SampleResultsRecorded {
            step: due.clone(),
            by: by.clone(),
            at,
            results: evaluated.iter().map(|(r, _, _)| r.clone()).collect(),
            qualification: Some(sampling.qualification.clone()),
        }];
        let out_of_limit = evaluated.into_iter().filter(|(r, _, _)| !r.within_limits);
        for (opened, (result, action, blocks_release)) in out_of_limit.enumerate() {
            let source = DeviationSource::IpcOutOfLimit {
                step: step_id.to_string(),
                result,
            };
            events.push(self.deviation_opened(
                opened,
                source,
                blocks_release,
                holds(action),
                None,
                at,
            )?);
        }
        events.extend(self.completed(due, Some(by), at, None, Some(&sampling.qualification)));
        Ok(events)
    }

    fn evaluate(
        &self,
        step_id: &str,
        by: PersonId,
        at: OffsetDateTime,
        value: f64,
    ) -> Result<Vec<BatchEvent>, ProcessError> {
        let (due, step) = self.due_step(step_id)?;
        let StepKind::Decision(decision) = &step.kind else {
            return Err(wrong_kind(step, "EvaluateDecision", "decision"));
        };
        self.require_not_held()?;
        self.count_execution()?;
        if !value.is_finite() {
            return Err(ProcessError::NotFinite {
                step: step_id.to_string(),
                parameter: decision.parameter.clone(),
            });
        }
        let started_at = self.state.started_at.unwrap_or(at);
        let elapsed_hours = (at - started_at).as_seconds_f64() / SECONDS_PER_HOUR;
        let outcome = evaluate_decision(decision, elapsed_hours, value);
        let next = if outcome.proceeds() {
            self.next_ref(due.position)
        } else {
            // Cannot be None: validation checked that loop_back_to is an earlier step.
            self.recipe
                .position_of(&decision.loop_back_to)
                .map(|p| self.step_ref(p))
        };
        let last = next.is_none();
        let mut events = vec![BatchEvent::DecisionEvaluated {
            step: due,
            by,
            at,
            parameter: decision.parameter.clone(),
            value,
            target_min: decision.target_min,
            elapsed_hours,
            outcome,
            next,
        }];
        if outcome == DecisionOutcome::ProceedLatestDayReached {
            let source = DeviationSource::DecisionLatestDay {
                step: step_id.to_string(),
                parameter: decision.parameter.clone(),
                value,
                target_min: decision.target_min,
            };
            let hold = holds(decision.on_latest_day_not_met);
            let blocks_release = true;
            events.push(self.deviation_opened(0, source, blocks_release, hold, None, at)?);
        }
        if last {
            events.push(BatchEvent::BatchCompleted { at });
        }
        Ok(events)
    }

    /// A `DeviationOpened` event; `already_opened` counts deviations opened earlier in the
    /// same command, so ids stay consecutive.
    fn deviation_opened(
        &self,
        already_opened: usize,
        source: DeviationSource,
        blocks_release: bool,
        hold: bool,
        by: Option<PersonId>,
        at: OffsetDateTime,
    ) -> Result<BatchEvent, ProcessError> {
        let number = self.state.deviations.len() + already_opened + 1;
        let max = usize::try_from(BATCH_DEVIATIONS_MAX).unwrap_or(usize::MAX);
        if number > max {
            return Err(ProcessError::LimitReached {
                what: "deviations",
                max: BATCH_DEVIATIONS_MAX,
            });
        }
        let batch = self.state.batch.as_ref().map_or("batch", |b| b.as_str());
        // Cannot fail: batch ids are at most 64 characters without spaces, but the suffix can
        // push the id past the limit; fall back to a batch-less id then.
        let id = DeviationId::parse(&format!("{batch}-DEV-{number:03}"))
            .or_else(|_| DeviationId::parse(&format!("DEV-{number:03}")))
            .expect("DEV-nnn is a valid deviation id");
        Ok(BatchEvent::DeviationOpened {
            deviation: id,
            source,
            blocks_release,
            hold,
            by,
            at,
        })
    }

    fn require_deviation(
        &self,
        id: &DeviationId,
        needed: DeviationState,
        action: &'static str,
    ) -> Result<(), ProcessError> {
        let deviation =
            self.state
                .deviations
                .get(id)
                .ok_or_else(|| ProcessError::UnknownDeviation {
                    deviation: id.clone(),
                })?;
        if deviation.state != needed {
            return Err(ProcessError::DeviationWrongState {
                deviation: id.clone(),
                state: deviation.state,
                action,
                needed,
            });
        }
        Ok(())
    }

    fn close_deviation(
        &self,
        deviation: DeviationId,
        qa_signature: QaSignature,
        at: OffsetDateTime,
    ) -> Result<Vec<BatchEvent>, ProcessError> {
        self.require_deviation(&deviation, DeviationState::CapaDefined, "close")?;
        if qa_signature.meaning != SignatureMeaning::Approved {
            return Err(ProcessError::ClosureNotApproved {
                deviation,
                got: qa_signature.meaning,
            });
        }
        Ok(vec![BatchEvent::DeviationClosed {
            deviation,
            qa_signature,
            at,
        }])
    }
}

fn wrong_kind(step: &Step, command: &'static str, expected: &'static str) -> ProcessError {
    ProcessError::WrongStepKind {
        step: step.id.clone(),
        kind: step.kind.name(),
        command,
        expected,
    }
}
