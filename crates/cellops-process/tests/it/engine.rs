//! Batch engine scenarios: every shipped recipe runs to completion with simulated inputs;
//! wrong commands get typed errors; out-of-limit results open deviations.

use std::collections::BTreeMap;

use cellops_process::Recipe;
use cellops_process::engine::{
    ApprovedRecipe, BatchEngine, BatchEvent, BatchId, BatchState, BatchStatus, Command,
    DecisionOutcome, DeviationId, DeviationSource, DeviationState, LotNumber, PersonId,
    ProcessError, QaSignature, ReleaseBlocker, SignatureId, StepSignature, apply, release_blockers,
};
use cellops_process::recipe::hash::ApprovedVersion;
use cellops_process::recipe::model::{Limit, SignatureMeaning, StepKind};
use cellops_process::shipped::shipped_recipes;
use time::{Duration, OffsetDateTime, macros::datetime};

const DAY0: OffsetDateTime = datetime!(2027-03-01 08:00 UTC);

fn approval(recipe: &Recipe) -> ApprovedVersion {
    ApprovedVersion {
        product: recipe.product().into(),
        version: recipe.version().to_string(),
        content_hash: recipe.content_hash(),
    }
}

fn person(id: &str) -> PersonId {
    PersonId::parse(id).unwrap()
}

fn everyone_qualified(_: &PersonId, _: &str, _: OffsetDateTime) -> bool {
    true
}

type Check = fn(&PersonId, &str, OffsetDateTime) -> bool;

/// A batch driven step by step: applies every event, checks invariants and JSON round trips.
struct Sim<'r> {
    engine: BatchEngine<'r, Check>,
    state: BatchState,
    now: OffsetDateTime,
    events: Vec<BatchEvent>,
}

impl<'r> Sim<'r> {
    fn new(recipe: &'r Recipe, check: Check) -> Self {
        let approved = [approval(recipe)];
        let engine = BatchEngine::new(ApprovedRecipe::check(recipe, &approved).unwrap(), check);
        Sim {
            engine,
            state: BatchState::new(),
            now: DAY0,
            events: Vec::new(),
        }
    }

    fn send(&mut self, command: Command) -> Result<Vec<BatchEvent>, ProcessError> {
        let events = self.engine.decide(&self.state, command)?;
        for event in &events {
            let json = event.to_json();
            assert_eq!(json["type"], event.type_name());
            assert_eq!(json["version"], 1);
            assert_eq!(&BatchEvent::from_json(&json).unwrap(), event);
            self.state = apply(std::mem::take(&mut self.state), event);
            self.state.check_invariants();
        }
        self.events.extend(events.iter().cloned());
        Ok(events)
    }

    fn start(&mut self) {
        self.send(Command::StartBatch {
            batch: BatchId::parse("B-001").unwrap(),
            by: person("op-1"),
            at: self.now,
        })
        .unwrap();
    }

    fn due(&self) -> (String, StepKind) {
        let due = self.state.due_step().expect("a step is due");
        let step = self.engine.recipe().step_at(due.position).unwrap();
        (due.id.clone(), step.kind.clone())
    }

    fn lots_for(&self, kind: &StepKind) -> BTreeMap<String, LotNumber> {
        kind.materials()
            .iter()
            .map(|u| {
                (
                    u.material.clone(),
                    LotNumber::parse(&format!("LOT-{}", u.material)).unwrap(),
                )
            })
            .collect()
    }

    fn start_step(&mut self, id: &str, kind: &StepKind) -> Result<Vec<BatchEvent>, ProcessError> {
        if self.state.active_step().is_some_and(|a| a.step.id == id) {
            return Ok(Vec::new());
        }
        let lots = self.lots_for(kind);
        self.send(Command::StartStep {
            step: id.into(),
            by: person("op-1"),
            at: self.now,
            lots,
        })
    }

    fn elapsed_days(&self) -> f64 {
        (self.now - DAY0).as_seconds_f64() / 86_400.0
    }

    /// Runs the due step with in-limit values; decisions get `value(day, target)`.
    fn run_due_step(&mut self, value: &dyn Fn(f64, f64) -> f64) {
        let (id, kind) = self.due();
        match &kind {
            StepKind::Device(d) => {
                self.start_step(&id, &kind).unwrap();
                self.now += Duration::seconds_f64(d.duration_hours * 3600.0);
                self.send(Command::CompleteDeviceStep {
                    step: id,
                    at: self.now,
                })
                .unwrap();
            }
            StepKind::Operator(o) => {
                self.start_step(&id, &kind).unwrap();
                self.now += Duration::minutes(15);
                let signature = o.esignature.map(|meaning| StepSignature {
                    meaning,
                    signature: SignatureId::parse("sig-1").unwrap(),
                });
                // A four-eyes step is confirmed by a second person.
                let by = if o.verifies.is_some() { "op-2" } else { "op-1" };
                self.send(Command::CompleteOperatorStep {
                    step: id,
                    by: person(by),
                    at: self.now,
                    signature,
                })
                .unwrap();
            }
            StepKind::Sampling(s) => {
                self.start_step(&id, &kind).unwrap();
                self.now += Duration::minutes(30);
                let results = s
                    .limits
                    .iter()
                    .map(|(p, l)| (p.clone(), inside(l)))
                    .collect();
                self.send(Command::RecordSampleResults {
                    step: id,
                    by: person("op-1"),
                    at: self.now,
                    results,
                })
                .unwrap();
            }
            StepKind::Decision(d) => {
                let v = value(self.elapsed_days(), d.target_min);
                self.send(Command::EvaluateDecision {
                    step: id,
                    by: person("op-1"),
                    at: self.now,
                    value: v,
                })
                .unwrap();
            }
        }
    }

    /// Runs until the batch completes; returns the number of steps run.
    fn run_to_completion(&mut self, value: &dyn Fn(f64, f64) -> f64) -> usize {
        let mut steps = 0;
        while self.state.status() == BatchStatus::Running {
            self.run_due_step(value);
            steps += 1;
            assert!(steps < 1_000, "batch did not complete");
        }
        steps
    }
}

/// A value inside the limit.
fn inside(limit: &Limit) -> f64 {
    match (limit.min, limit.max) {
        (Some(lo), Some(hi)) => (lo + hi) / 2.0,
        (Some(lo), None) => lo * 1.05 + 1.0,
        (None, Some(hi)) => hi * 0.5,
        (None, None) => 0.0,
    }
}

/// The twin's prediction reaches the target on day 8.
fn reaches_target_on_day_8(day: f64, target: f64) -> f64 {
    if day >= 8.0 {
        target * 1.2
    } else {
        target * day / 10.0
    }
}

#[test]
fn every_shipped_recipe_runs_to_completion() {
    for recipe in shipped_recipes().unwrap() {
        let mut sim = Sim::new(&recipe, everyone_qualified);
        sim.start();
        let steps =
            sim.run_to_completion(&|day, target| if day >= 8.0 { target } else { target / 2.0 });
        assert_eq!(
            sim.state.status(),
            BatchStatus::Completed,
            "{}",
            recipe.product()
        );
        assert_eq!(sim.state.deviations().count(), 0, "{}", recipe.product());
        assert!(
            release_blockers(&sim.state).is_empty(),
            "{}",
            recipe.product()
        );
        assert!(steps >= recipe.steps().count(), "{}", recipe.product());
        // Every decision proceeded inside its window.
        for event in &sim.events {
            if let BatchEvent::DecisionEvaluated {
                outcome,
                elapsed_hours,
                step,
                ..
            } = event
            {
                let Some(StepKind::Decision(d)) = recipe.step_at(step.position).map(|s| &s.kind)
                else {
                    panic!("decision event for a non-decision step");
                };
                if outcome.proceeds() {
                    assert_eq!(*outcome, DecisionOutcome::ProceedTargetMet);
                    assert!(*elapsed_hours >= f64::from(d.earliest_day) * 24.0);
                    assert!(*elapsed_hours < f64::from(d.latest_day) * 24.0);
                }
            }
        }
        // Lots were captured for every lot-controlled material use.
        let captured: usize = sim
            .events
            .iter()
            .map(|e| match e {
                BatchEvent::StepStarted { lots, .. } => lots.len(),
                _ => 0,
            })
            .sum();
        assert!(captured > 0);
    }
}

#[test]
fn prime_car_t_harvests_when_the_predicted_dose_is_reached() {
    let recipe = prime();
    let mut sim = Sim::new(&recipe, everyone_qualified);
    sim.start();
    sim.run_to_completion(&reaches_target_on_day_8);
    let decisions: Vec<(DecisionOutcome, f64)> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            BatchEvent::DecisionEvaluated {
                outcome,
                elapsed_hours,
                ..
            } => Some((*outcome, *elapsed_hours / 24.0)),
            _ => None,
        })
        .collect();
    let (last_outcome, last_day) = *decisions.last().unwrap();
    assert_eq!(last_outcome, DecisionOutcome::ProceedTargetMet);
    assert!(
        (8.0..9.0).contains(&last_day),
        "harvest decided on day {last_day}"
    );
    assert!(
        decisions[..decisions.len() - 1]
            .iter()
            .all(|(o, _)| !o.proceeds())
    );
    assert!(
        decisions
            .iter()
            .any(|(o, _)| *o == DecisionOutcome::ContinueBeforeEarliestDay)
    );
    assert!(
        decisions
            .iter()
            .any(|(o, _)| *o == DecisionOutcome::ContinueTargetNotMet)
    );
}

#[test]
fn latest_day_without_the_dose_proceeds_and_opens_a_deviation() {
    let recipe = prime();
    let mut sim = Sim::new(&recipe, everyone_qualified);
    sim.start();
    sim.run_to_completion(&|_, target| target * 0.1);
    assert_eq!(sim.state.status(), BatchStatus::Completed);
    let deviations: Vec<_> = sim.state.deviations().collect();
    assert_eq!(deviations.len(), 1);
    assert!(matches!(
        deviations[0].source,
        DeviationSource::DecisionLatestDay { .. }
    ));
    assert_eq!(
        release_blockers(&sim.state),
        vec![ReleaseBlocker::OpenDeviation {
            deviation: DeviationId::parse("B-001-DEV-001").unwrap(),
            state: DeviationState::Open
        }]
    );
    assert!(sim.events.iter().any(|e| matches!(
        e,
        BatchEvent::DecisionEvaluated { outcome: DecisionOutcome::ProceedLatestDayReached, elapsed_hours, .. }
            if *elapsed_hours >= 12.0 * 24.0
    )));
}

fn prime() -> Recipe {
    shipped_recipes()
        .unwrap()
        .into_iter()
        .find(|r| r.product() == "prime-car-t")
        .unwrap()
}

#[test]
fn out_of_order_step_is_a_typed_error() {
    let recipe = prime();
    let mut sim = Sim::new(&recipe, everyone_qualified);
    sim.start();
    let error = sim
        .send(Command::StartStep {
            step: "selection".into(),
            by: person("op-1"),
            at: sim.now,
            lots: BTreeMap::new(),
        })
        .unwrap_err();
    assert_eq!(
        error,
        ProcessError::StepOutOfOrder {
            step: "selection".into(),
            expected: "receive-apheresis".into()
        }
    );
    let unknown = sim
        .send(Command::CompleteDeviceStep {
            step: "nope".into(),
            at: sim.now,
        })
        .unwrap_err();
    assert_eq!(
        unknown,
        ProcessError::UnknownStep {
            step: "nope".into()
        }
    );
    let before_start = Sim::new(&recipe, everyone_qualified)
        .send(Command::CompleteDeviceStep {
            step: "selection".into(),
            at: DAY0,
        })
        .unwrap_err();
    assert_eq!(before_start, ProcessError::NotStarted);
}

/// Runs the PRIME recipe up to (not including) the step `id`.
fn run_until(sim: &mut Sim<'_>, id: &str) {
    while sim.due().0 != id {
        sim.run_due_step(&reaches_target_on_day_8);
    }
}

#[test]
fn out_of_limit_result_opens_a_deviation_and_hold_stops_the_batch() {
    let recipe = prime();
    let mut sim = Sim::new(&recipe, everyone_qualified);
    sim.start();
    run_until(&mut sim, "receipt-count");
    let (id, kind) = sim.due();
    sim.start_step(&id, &kind).unwrap();
    let results = BTreeMap::from([
        ("viability_percent".to_string(), 72.0),
        ("cd3_total_viable_cells".to_string(), 9.0e8),
    ]);
    let events = sim
        .send(Command::RecordSampleResults {
            step: id,
            by: person("op-1"),
            at: sim.now,
            results,
        })
        .unwrap();
    let opened: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            BatchEvent::DeviationOpened {
                deviation,
                source,
                hold,
                blocks_release,
                ..
            } => Some((deviation.clone(), source.clone(), *hold, *blocks_release)),
            _ => None,
        })
        .collect();
    assert_eq!(opened.len(), 1);
    let (deviation, source, hold, blocks_release) = opened[0].clone();
    assert_eq!(deviation.as_str(), "B-001-DEV-001");
    assert!(hold && blocks_release);
    let DeviationSource::IpcOutOfLimit { result, .. } = source else {
        panic!("{source:?}")
    };
    assert_eq!(result.parameter, "viability_percent");
    assert_eq!(result.min, Some(80.0));
    assert!(!result.within_limits);

    // The hold stops the next step.
    let (next, kind) = sim.due();
    assert_eq!(next, "install-kit");
    let held = sim.start_step(&next, &kind).unwrap_err();
    assert_eq!(
        held,
        ProcessError::OnHold {
            deviations: vec![deviation.clone()]
        }
    );
    assert!(
        release_blockers(&sim.state).contains(&ReleaseBlocker::OpenDeviation {
            deviation: deviation.clone(),
            state: DeviationState::Open
        })
    );

    // Workflow: close needs CAPA first, then a QA signature meaning "approved".
    let qa = |meaning| QaSignature {
        signer: person("qa-1"),
        meaning,
        signature: SignatureId::parse("sig-qa").unwrap(),
    };
    let early = sim
        .send(Command::CloseDeviation {
            deviation: deviation.clone(),
            qa_signature: qa(SignatureMeaning::Approved),
            at: sim.now,
        })
        .unwrap_err();
    assert!(matches!(
        early,
        ProcessError::DeviationWrongState {
            state: DeviationState::Open,
            ..
        }
    ));
    sim.send(Command::StartInvestigation {
        deviation: deviation.clone(),
        by: person("qa-2"),
        at: sim.now,
    })
    .unwrap();
    sim.send(Command::DefineCapa {
        deviation: deviation.clone(),
        root_cause: "Apheresis held 40 h at the hospital before shipment.".into(),
        capa: "Proceed; remind the site of the 24 h shipping target.".into(),
        by: person("qa-2"),
        at: sim.now,
    })
    .unwrap();
    let reviewed = sim
        .send(Command::CloseDeviation {
            deviation: deviation.clone(),
            qa_signature: qa(SignatureMeaning::Reviewed),
            at: sim.now,
        })
        .unwrap_err();
    assert!(matches!(reviewed, ProcessError::ClosureNotApproved { .. }));
    sim.send(Command::CloseDeviation {
        deviation: deviation.clone(),
        qa_signature: qa(SignatureMeaning::Approved),
        at: sim.now,
    })
    .unwrap();
    assert_eq!(
        sim.state.deviation(&deviation).unwrap().state,
        DeviationState::Closed
    );

    // Released from hold, the batch runs to the end with no release blockers.
    sim.run_to_completion(&reaches_target_on_day_8);
    assert!(release_blockers(&sim.state).is_empty());
}

#[test]
fn unqualified_person_cannot_perform_an_operator_step() {
    let recipe = prime();
    let only_receipt: Check = |p, q, _| p.as_str() == "op-1" && q == "cpc-receipt";
    let mut sim = Sim::new(&recipe, only_receipt);
    sim.start();
    sim.run_due_step(&reaches_target_on_day_8); // receive-apheresis: op-1 holds cpc-receipt
    let (id, kind) = sim.due();
    assert_eq!(id, "receipt-count");
    let error = sim.start_step(&id, &kind).unwrap_err();
    assert_eq!(
        error,
        ProcessError::NotQualified {
            person: person("op-1"),
            qualification: "cpc-ipc-sampling".into(),
            step: "receipt-count".into()
        }
    );
}

#[test]
fn step_records_name_the_qualification_their_performer_was_checked_for() {
    let recipe = prime();
    let mut sim = Sim::new(&recipe, everyone_qualified);
    sim.start();
    sim.run_due_step(&reaches_target_on_day_8); // receive-apheresis (operator)
    sim.run_due_step(&reaches_target_on_day_8); // receipt-count (sampling)
    let qualification_of = |e: &BatchEvent| match e {
        BatchEvent::StepStarted {
            step,
            qualification,
            ..
        }
        | BatchEvent::StepCompleted {
            step,
            qualification,
            ..
        } => Some((step.id.clone(), qualification.clone())),
        BatchEvent::SampleResultsRecorded {
            step,
            qualification,
            ..
        } => Some((step.id.clone(), qualification.clone())),
        _ => None,
    };
    let named: Vec<(String, Option<String>)> =
        sim.events.iter().filter_map(qualification_of).collect();
    let receipt = Some("cpc-receipt".to_string());
    let sampling = Some("cpc-ipc-sampling".to_string());
    assert_eq!(
        named,
        vec![
            ("receive-apheresis".into(), receipt.clone()),
            ("receive-apheresis".into(), receipt),
            ("receipt-count".into(), sampling.clone()),
            ("receipt-count".into(), sampling.clone()),
            ("receipt-count".into(), sampling),
        ]
    );
    // The JSON names it for auditors; records written before the field existed still read.
    let completed = sim
        .events
        .iter()
        .find(|e| matches!(e, BatchEvent::StepCompleted { .. }))
        .unwrap();
    let mut json = completed.to_json();
    assert_eq!(json["qualification"], "cpc-receipt");
    json.as_object_mut().unwrap().remove("qualification");
    match BatchEvent::from_json(&json).unwrap() {
        BatchEvent::StepCompleted { qualification, .. } => assert_eq!(qualification, None),
        other => panic!("{other:?}"),
    }
    // Device steps declare no qualification.
    let (id, kind) = sim.due();
    assert!(matches!(kind, StepKind::Operator(_)), "{id}");
    while !matches!(sim.due().1, StepKind::Device(_)) {
        sim.run_due_step(&reaches_target_on_day_8);
    }
    let (id, kind) = sim.due();
    let started = sim.start_step(&id, &kind).unwrap();
    assert!(matches!(
        &started[0],
        BatchEvent::StepStarted {
            qualification: None,
            ..
        }
    ));
}

#[test]
fn signature_lots_and_device_duration_are_enforced() {
    let recipe = prime();
    let mut sim = Sim::new(&recipe, everyone_qualified);
    sim.start();
    let (id, kind) = sim.due();
    sim.start_step(&id, &kind).unwrap();
    let unsigned = sim
        .send(Command::CompleteOperatorStep {
            step: id.clone(),
            by: person("op-1"),
            at: sim.now,
            signature: None,
        })
        .unwrap_err();
    assert_eq!(
        unsigned,
        ProcessError::SignatureRequired {
            step: id.clone(),
            meaning: SignatureMeaning::Verified
        }
    );
    let wrong = sim
        .send(Command::CompleteOperatorStep {
            step: id.clone(),
            by: person("op-1"),
            at: sim.now,
            signature: Some(StepSignature {
                meaning: SignatureMeaning::Performed,
                signature: SignatureId::parse("s").unwrap(),
            }),
        })
        .unwrap_err();
    assert!(matches!(
        wrong,
        ProcessError::SignatureMeaningMismatch { .. }
    ));

    run_until(&mut sim, "install-kit");
    let (id, _) = sim.due();
    let missing_lot = sim
        .send(Command::StartStep {
            step: id.clone(),
            by: person("op-1"),
            at: sim.now,
            lots: BTreeMap::from([("tubing-set".to_string(), LotNumber::parse("T1").unwrap())]),
        })
        .unwrap_err();
    assert_eq!(
        missing_lot,
        ProcessError::LotMissing {
            step: id.clone(),
            material: "cd4-cd8-microbeads".into()
        }
    );
    let (_, kind) = sim.due();
    let mut lots = sim.lots_for(&kind);
    lots.insert("cryobag".to_string(), LotNumber::parse("C1").unwrap());
    let stray = sim
        .send(Command::StartStep {
            step: id,
            by: person("op-1"),
            at: sim.now,
            lots,
        })
        .unwrap_err();
    assert_eq!(
        stray,
        ProcessError::LotNotExpected {
            step: "install-kit".into(),
            material: "cryobag".into()
        }
    );

    sim.run_due_step(&reaches_target_on_day_8); // install-kit
    let (id, kind) = sim.due();
    assert_eq!(id, "selection");
    sim.start_step(&id, &kind).unwrap();
    let early = sim
        .send(Command::CompleteDeviceStep {
            step: id.clone(),
            at: sim.now + Duration::hours(3),
        })
        .unwrap_err();
    assert!(
        matches!(early, ProcessError::DeviceStepNotElapsed { duration_hours, .. } if duration_hours == 4.0)
    );
    let backwards = sim
        .send(Command::CompleteDeviceStep {
            step: id,
            at: sim.now - Duration::hours(1),
        })
        .unwrap_err();
    assert!(matches!(backwards, ProcessError::TimeWentBackwards { .. }));
}

#[test]
fn unapproved_or_changed_recipe_does_not_run() {
    let recipe = prime();
    let none = ApprovedRecipe::check(&recipe, []).unwrap_err();
    assert!(matches!(none, ProcessError::RecipeNotApproved { .. }));
    let mut stale = approval(&recipe);
    stale.content_hash = shipped_recipes().unwrap()[2].content_hash();
    let changed = ApprovedRecipe::check(&recipe, [&stale]).unwrap_err();
    assert!(matches!(
        changed,
        ProcessError::RecipeNotApproved {
            status: cellops_process::recipe::hash::ApprovalStatus::ContentChangedSinceApproval { .. },
            ..
        }
    ));
}

#[test]
fn replaying_events_rebuilds_the_same_state() {
    let recipe = prime();
    let mut sim = Sim::new(&recipe, everyone_qualified);
    sim.start();
    sim.run_to_completion(&reaches_target_on_day_8);
    let replayed = sim.events.iter().fold(BatchState::new(), apply);
    assert_eq!(replayed, sim.state);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// One deviation per out-of-limit value, none for in-limit values.
        #[test]
        fn deviations_match_out_of_limit_values(values in proptest::collection::vec(0.0f64..30.0, 4)) {
            let recipe = prime();
            let mut sim = Sim::new(&recipe, everyone_qualified);
            sim.start();
            run_until(&mut sim, "ipc-day5");
            let (id, kind) = sim.due();
            let StepKind::Sampling(sampling) = &kind else { panic!() };
            let limits = sampling.limits.clone();
            sim.start_step(&id, &kind).unwrap();
            let results: BTreeMap<String, f64> = limits.keys().cloned().zip(values.iter().map(|v| v * 4.0)).collect();
            let expected = results.iter().filter(|(p, v)| !limits[*p].contains(**v)).count();
            let events = sim.send(Command::RecordSampleResults { step: id, by: person("op-1"), at: sim.now, results }).unwrap();
            let opened = events.iter().filter(|e| matches!(e, BatchEvent::DeviationOpened { .. })).count();
            prop_assert_eq!(opened, expected);
            prop_assert_eq!(sim.state.deviations().count(), expected);
        }

        /// The decision never proceeds before the earliest day and always from the latest day.
        #[test]
        fn decision_window_is_respected(hours in 0.0f64..400.0, fraction in 0.0f64..2.0) {
            let recipe = prime();
            let decision = recipe.steps().find_map(|(_, s)| match &s.kind {
                StepKind::Decision(d) => Some(d.clone()),
                _ => None,
            }).unwrap();
            let outcome = cellops_process::engine::evaluate_decision(&decision, hours, decision.target_min * fraction);
            if hours < f64::from(decision.earliest_day) * 24.0 {
                prop_assert!(!outcome.proceeds());
            }
            if hours >= f64::from(decision.latest_day) * 24.0 {
                prop_assert!(outcome.proceeds());
            }
            if outcome == DecisionOutcome::ProceedTargetMet {
                prop_assert!(fraction >= 1.0);
            }
        }
    }
}

#[test]
fn an_aborted_batch_runs_no_more_steps_and_is_never_releasable() {
    let recipes = shipped_recipes().unwrap();
    let mut sim = Sim::new(&recipes[0], everyone_qualified);
    sim.start();
    let err = sim
        .send(Command::AbortBatch {
            reason: " ".into(),
            by: person("op-1"),
            at: sim.now,
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProcessError::BadText {
                field: "reason",
                ..
            }
        ),
        "{err}"
    );
    sim.send(Command::AbortBatch {
        reason: "bag leaked at receipt".into(),
        by: person("op-1"),
        at: sim.now,
    })
    .unwrap();
    assert_eq!(sim.state.status(), BatchStatus::Aborted);
    assert!(sim.state.due_step().is_none());
    let err = sim
        .send(Command::StartStep {
            step: "receive-apheresis".into(),
            by: person("op-1"),
            at: sim.now,
            lots: BTreeMap::new(),
        })
        .unwrap_err();
    assert_eq!(err, ProcessError::Aborted);
    assert!(release_blockers(&sim.state).contains(&ReleaseBlocker::BatchNotCompleted));
    let err = sim
        .send(Command::AbortBatch {
            reason: "again".into(),
            by: person("op-1"),
            at: sim.now,
        })
        .unwrap_err();
    assert_eq!(err, ProcessError::Aborted);
}
