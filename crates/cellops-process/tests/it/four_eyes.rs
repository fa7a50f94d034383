//! Four-eyes verification: a step with `verifies` is a second person's check of an earlier
//! step, so whoever started, sampled or confirmed that step may not confirm it.

use cellops_process::Recipe;
use cellops_process::engine::{
    ApprovedRecipe, BatchEngine, BatchEvent, BatchId, BatchState, Command, PersonId, ProcessError,
    SignatureId, StepSignature, apply,
};
use cellops_process::recipe::diff::diff;
use cellops_process::recipe::hash::ApprovedVersion;
use cellops_process::recipe::model::{SignatureMeaning, StepKind};
use cellops_process::recipe::problem::ProblemKind;
use time::{Duration, OffsetDateTime, macros::datetime};

use crate::validation::MINIMAL;

const DAY0: OffsetDateTime = datetime!(2027-03-01 08:00 UTC);

const VERIFY_STEP: &str = r#"[[phases.steps]]
id = "verify-seed"
name = "Second-person check of the seeding"
kind = "operator"
instruction_en = "A second person checks the seeding record against the batch record."
instruction_ja = "第二者が播種記録を製造記録と照合する。"
qualification = "op"
esignature = "verified"
verifies = "seed"

[[phases.steps]]
id = "grow""#;

/// MINIMAL with a verification of its `seed` step right after it.
fn with_verification() -> String {
    let text = MINIMAL.replacen("[[phases.steps]]\nid = \"grow\"", VERIFY_STEP, 1);
    assert_ne!(text, MINIMAL);
    text
}

fn parse(text: &str) -> Result<Recipe, Vec<(String, ProblemKind)>> {
    Recipe::parse("t.toml", text).map_err(|e| {
        e.problems
            .into_iter()
            .map(|p| (p.path, p.kind))
            .collect::<Vec<_>>()
    })
}

#[test]
fn a_verification_step_names_the_step_it_verifies() {
    let recipe = parse(&with_verification()).unwrap();
    let step = &recipe.phases()[0].steps[1];
    let StepKind::Operator(o) = &step.kind else {
        panic!("operator step expected")
    };
    assert_eq!(o.verifies.as_deref(), Some("seed"));
    assert_eq!(o.esignature, Some(SignatureMeaning::Verified));
    // It is part of the approved content and of change control.
    let without = with_verification().replace("verifies = \"seed\"\n", "");
    let without = parse(&without).unwrap();
    assert_ne!(recipe.content_hash(), without.content_hash());
    let changes: Vec<String> = diff(&without, &recipe)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        changes,
        vec!["+ phases.culture.steps.verify-seed.verifies: seed"]
    );
}

#[test]
fn verifies_must_name_an_earlier_step_a_person_performed() {
    for (target, earlier) in [("grow", "seed"), ("sample", "seed"), ("nothing", "seed")] {
        let text =
            with_verification().replace("verifies = \"seed\"", &format!("verifies = \"{target}\""));
        let problems = parse(&text).unwrap_err();
        assert_eq!(
            problems,
            vec![(
                "phases[0].steps[1].verifies".to_string(),
                ProblemKind::VerifiesNotEarlierPersonStep {
                    target: target.to_string(),
                    earlier: earlier.to_string(),
                }
            )],
            "{target}"
        );
    }
    // The report names the rule and the file position.
    let text = with_verification().replace("verifies = \"seed\"", "verifies = \"grow\"");
    let report = Recipe::parse("t.toml", &text).unwrap_err().to_string();
    assert!(
        report.contains("phases[0].steps[1].verifies: `grow` is not an earlier operator or sampling step (rule: a verification step verifies an earlier step a person performed; earlier such steps: seed)"),
        "{report}"
    );
    // A step cannot verify itself.
    let text = with_verification().replace("verifies = \"seed\"", "verifies = \"verify-seed\"");
    assert!(matches!(
        &parse(&text).unwrap_err()[..],
        [(_, ProblemKind::VerifiesNotEarlierPersonStep { .. })]
    ));
}

#[test]
fn verifies_needs_a_verified_signature_and_an_operator_step() {
    let text = with_verification().replace(
        "esignature = \"verified\"\nverifies",
        "esignature = \"performed\"\nverifies",
    );
    assert_eq!(
        parse(&text).unwrap_err(),
        vec![(
            "phases[0].steps[1].verifies".to_string(),
            ProblemKind::VerifiesWithoutSignature
        )]
    );
    let text = with_verification().replace("esignature = \"verified\"\nverifies", "verifies");
    assert_eq!(
        parse(&text).unwrap_err(),
        vec![(
            "phases[0].steps[1].verifies".to_string(),
            ProblemKind::VerifiesWithoutSignature
        )]
    );
    // Only operator steps verify: on a sampling step the field is unknown.
    let text = MINIMAL.replace(
        "limits.viability_percent",
        "verifies = \"seed\"\nlimits.viability_percent",
    );
    let problems = parse(&text).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "phases[0].steps[2].verifies");
    assert!(matches!(problems[0].1, ProblemKind::UnknownField { .. }));
}

fn person(id: &str) -> PersonId {
    PersonId::parse(id).unwrap()
}

fn signed(meaning: SignatureMeaning) -> Option<StepSignature> {
    Some(StepSignature {
        meaning,
        signature: SignatureId::parse("sig-1").unwrap(),
    })
}

struct Batch<'r> {
    engine: BatchEngine<'r, fn(&PersonId, &str, OffsetDateTime) -> bool>,
    state: BatchState,
    now: OffsetDateTime,
}

impl Batch<'_> {
    fn send(&mut self, command: Command) -> Result<Vec<BatchEvent>, ProcessError> {
        let events = self.engine.decide(&self.state, command)?;
        for e in &events {
            self.state = apply(std::mem::take(&mut self.state), e);
            self.state.check_invariants();
        }
        Ok(events)
    }

    fn start_step(&mut self, step: &str, by: &str) {
        self.now += Duration::minutes(5);
        let lots = if step == "seed" {
            [(
                "medium".to_string(),
                cellops_process::engine::LotNumber::parse("M-1").unwrap(),
            )]
            .into()
        } else {
            Default::default()
        };
        self.send(Command::StartStep {
            step: step.into(),
            by: person(by),
            at: self.now,
            lots,
        })
        .unwrap();
    }

    fn complete(
        &mut self,
        step: &str,
        by: &str,
        meaning: SignatureMeaning,
    ) -> Result<(), ProcessError> {
        self.now += Duration::minutes(5);
        self.send(Command::CompleteOperatorStep {
            step: step.into(),
            by: person(by),
            at: self.now,
            signature: signed(meaning),
        })
        .map(|_| ())
    }
}

fn run(recipe: &Recipe, scenario: impl FnOnce(&mut Batch<'_>)) {
    let approved = [ApprovedVersion {
        product: recipe.product().into(),
        version: recipe.version().to_string(),
        content_hash: recipe.content_hash(),
    }];
    let everyone: fn(&PersonId, &str, OffsetDateTime) -> bool = |_, _, _| true;
    let mut batch = Batch {
        engine: BatchEngine::new(ApprovedRecipe::check(recipe, &approved).unwrap(), everyone),
        state: BatchState::new(),
        now: DAY0,
    };
    batch
        .send(Command::StartBatch {
            batch: BatchId::parse("B-4EYES").unwrap(),
            by: person("op-1"),
            at: DAY0,
        })
        .unwrap();
    scenario(&mut batch);
}

#[test]
fn the_performer_cannot_verify_their_own_step() {
    let recipe = parse(&with_verification()).unwrap();
    run(&recipe, |b| {
        b.start_step("seed", "op-1");
        b.complete("seed", "op-1", SignatureMeaning::Performed)
            .unwrap();
        assert_eq!(b.state.performers("seed"), &[person("op-1")]);
        // The performer may start the verification (bring the record); confirming it is the
        // verification, and that needs a second person.
        b.start_step("verify-seed", "op-1");
        let refused = b
            .complete("verify-seed", "op-1", SignatureMeaning::Verified)
            .unwrap_err();
        assert_eq!(
            refused,
            ProcessError::SamePersonVerifies {
                person: person("op-1"),
                step: "verify-seed".into(),
                verified: "seed".into(),
            }
        );
        assert_eq!(
            refused.to_string(),
            "op-1 performed step `seed` and cannot also verify it in step `verify-seed` (rule: four-eyes, the verifier must be a second person; have another qualified person confirm `verify-seed`)"
        );
        // Nothing changed: the step is still in progress, and the second person confirms it.
        assert_eq!(b.state.active_step().unwrap().step.id, "verify-seed");
        b.complete("verify-seed", "op-2", SignatureMeaning::Verified)
            .unwrap();
        assert_eq!(b.state.due_step().unwrap().id, "grow");
    });
}

#[test]
fn whoever_started_the_verified_step_is_excluded_too() {
    let recipe = parse(&with_verification()).unwrap();
    run(&recipe, |b| {
        b.start_step("seed", "op-1");
        b.complete("seed", "op-2", SignatureMeaning::Performed)
            .unwrap();
        assert_eq!(
            b.state.performers("seed"),
            &[person("op-1"), person("op-2")]
        );
        b.start_step("verify-seed", "op-3");
        for performer in ["op-1", "op-2"] {
            let refused = b
                .complete("verify-seed", performer, SignatureMeaning::Verified)
                .unwrap_err();
            assert!(
                matches!(refused, ProcessError::SamePersonVerifies { .. }),
                "{refused}"
            );
        }
        b.complete("verify-seed", "op-3", SignatureMeaning::Verified)
            .unwrap();
    });
}

#[test]
fn a_verified_signature_without_verifies_stays_a_self_check() {
    // `esignature = "verified"` alone (e.g. a receipt check) is the performer's own
    // verification; only `verifies` asks for a second person.
    let text = with_verification().replace("verifies = \"seed\"\n", "");
    let recipe = parse(&text).unwrap();
    run(&recipe, |b| {
        b.start_step("seed", "op-1");
        b.complete("seed", "op-1", SignatureMeaning::Performed)
            .unwrap();
        b.start_step("verify-seed", "op-1");
        b.complete("verify-seed", "op-1", SignatureMeaning::Verified)
            .unwrap();
    });
}
