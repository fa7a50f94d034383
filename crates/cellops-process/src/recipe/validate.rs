//! Rules that look across the recipe: unique ids, references that resolve, decision loops
//! and windows that make sense. They run on the drafts, so they report even when some
//! element of the file could not be read.

use std::collections::BTreeMap;

use super::model::{SignatureMeaning, StepKind};
use super::parse::{Draft, DraftStep};
use super::problem::ProblemKind;
use super::reader::{Reader, join};

pub(crate) fn check(r: &mut Reader<'_>, draft: &Draft) {
    check_unique_ids(r, draft);
    check_references(r, draft);
    check_decisions(r, draft);
    check_verifications(r, draft);
}

/// Reports each id seen a second time, naming where it was first used.
fn unique<'d>(r: &mut Reader<'_>, items: impl Iterator<Item = (&'d str, &'d str)>) {
    let mut first: BTreeMap<&str, &str> = BTreeMap::new();
    for (id, path) in items {
        match first.get(id) {
            Some(first_path) => r.report(
                &join(path, "id"),
                ProblemKind::DuplicateId {
                    id: id.to_string(),
                    first: (*first_path).to_string(),
                },
            ),
            None => {
                first.insert(id, path);
            }
        }
    }
}

fn check_unique_ids(r: &mut Reader<'_>, draft: &Draft) {
    unique(
        r,
        draft
            .qualifications
            .iter()
            .filter_map(|q| Some((q.id.as_deref()?, q.path.as_str()))),
    );
    unique(
        r,
        draft
            .materials
            .iter()
            .filter_map(|m| Some((m.id.as_deref()?, m.path.as_str()))),
    );
    unique(
        r,
        draft
            .phases
            .iter()
            .filter_map(|p| Some((p.id.as_deref()?, p.path.as_str()))),
    );
    // Step ids are unique across the whole recipe, so a step id alone names a step.
    unique(
        r,
        draft
            .phases
            .iter()
            .flat_map(|p| &p.steps)
            .filter_map(|s| Some((s.id.as_deref()?, s.path.as_str()))),
    );
}

fn check_references(r: &mut Reader<'_>, draft: &Draft) {
    let qualification_ids: Vec<&str> = draft
        .qualifications
        .iter()
        .filter_map(|q| q.id.as_deref())
        .collect();
    let material_units: BTreeMap<&str, Option<&str>> = draft
        .materials
        .iter()
        .filter_map(|m| Some((m.id.as_deref()?, m.value.as_ref().map(|v| v.unit.as_str()))))
        .collect();
    for step in draft.phases.iter().flat_map(|p| &p.steps) {
        let qualification = match &step.kind {
            Some(StepKind::Operator(o)) => Some(&o.qualification),
            Some(StepKind::Sampling(s)) => Some(&s.qualification),
            _ => None,
        };
        if let Some(q) = qualification
            && !qualification_ids.contains(&q.as_str())
        {
            r.report(
                &join(&step.path, "qualification"),
                ProblemKind::Unresolved {
                    id: q.clone(),
                    what: "qualification",
                    declared: qualification_ids.join(", "),
                },
            );
        }
        let uses = step.kind.as_ref().map_or(&[][..], StepKind::materials);
        for (i, u) in uses.iter().enumerate() {
            let use_path = format!("{}.materials[{i}]", step.path);
            match material_units.get(u.material.as_str()) {
                None => r.report(
                    &join(&use_path, "material"),
                    ProblemKind::Unresolved {
                        id: u.material.clone(),
                        what: "material",
                        declared: material_units
                            .keys()
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", "),
                    },
                ),
                Some(Some(declared)) if *declared != u.unit => r.report(
                    &join(&use_path, "unit"),
                    ProblemKind::UnitMismatch {
                        used: u.unit.clone(),
                        declared: (*declared).to_string(),
                    },
                ),
                Some(_) => {}
            }
        }
    }
}

fn check_decisions(r: &mut Reader<'_>, draft: &Draft) {
    // Device hours that must pass before each step on the first pass through the recipe.
    let mut hours_before = 0.0_f64;
    let mut previous: Option<(u32, &str)> = None;
    for phase in &draft.phases {
        for (index, step) in phase.steps.iter().enumerate() {
            match &step.kind {
                Some(StepKind::Device(d)) => hours_before += d.duration_hours,
                Some(StepKind::Decision(decision)) => {
                    check_loop(r, &phase.steps, index, &decision.loop_back_to);
                    let latest_hours = f64::from(decision.latest_day) * 24.0;
                    if latest_hours < hours_before {
                        r.report(
                            &join(&step.path, "latest_day"),
                            ProblemKind::WindowUnreachable {
                                latest_day: decision.latest_day,
                                latest_hours,
                                needed_hours: hours_before,
                            },
                        );
                    }
                    if let Some((previous_earliest, previous_step)) = previous
                        && decision.earliest_day < previous_earliest
                    {
                        r.report(
                            &join(&step.path, "earliest_day"),
                            ProblemKind::WindowGoesBack {
                                earliest: decision.earliest_day,
                                previous: previous_earliest,
                                previous_step: previous_step.to_string(),
                            },
                        );
                    }
                    if let Some(id) = step.id.as_deref() {
                        previous = Some((decision.earliest_day, id));
                    }
                }
                _ => {}
            }
        }
    }
}

/// The loop target must be an earlier step of the same phase, and the steps from it up to the
/// decision must include a device step, so each loop lets time pass on the device.
fn check_loop(r: &mut Reader<'_>, steps: &[DraftStep], decision_index: usize, target: &str) {
    let field = join(&steps[decision_index].path, "loop_back_to");
    let Some(target_index) = steps[..decision_index]
        .iter()
        .position(|s| s.id.as_deref() == Some(target))
    else {
        r.report(
            &field,
            ProblemKind::LoopNotBackward {
                target: target.to_string(),
            },
        );
        return;
    };
    let looped = &steps[target_index..decision_index];
    let all_readable = looped.iter().all(|s| s.kind.is_some());
    let has_device = looped
        .iter()
        .any(|s| matches!(s.kind, Some(StepKind::Device(_))));
    if all_readable && !has_device {
        r.report(
            &field,
            ProblemKind::LoopWithoutDevice {
                target: target.to_string(),
            },
        );
    }
}

/// A step with `verifies` (four-eyes) names an earlier operator or sampling step of the
/// recipe, so there is a person whose work is verified, and signs with the meaning
/// `verified`.
fn check_verifications(r: &mut Reader<'_>, draft: &Draft) {
    let mut earlier: Vec<&str> = Vec::new();
    // Steps whose kind could not be read: their own problem is reported already; a reference
    // to them is not reported a second time.
    let mut unreadable: Vec<&str> = Vec::new();
    for step in draft.phases.iter().flat_map(|p| &p.steps) {
        if let Some(StepKind::Operator(o)) = &step.kind
            && let Some(target) = &o.verifies
        {
            let field = join(&step.path, "verifies");
            if !earlier.contains(&target.as_str()) && !unreadable.contains(&target.as_str()) {
                r.report(
                    &field,
                    ProblemKind::VerifiesNotEarlierPersonStep {
                        target: target.clone(),
                        earlier: if earlier.is_empty() {
                            "none".to_string()
                        } else {
                            earlier.join(", ")
                        },
                    },
                );
            }
            if o.esignature != Some(SignatureMeaning::Verified) {
                r.report(&field, ProblemKind::VerifiesWithoutSignature);
            }
        }
        if let Some(id) = step.id.as_deref() {
            match &step.kind {
                Some(StepKind::Operator(_) | StepKind::Sampling(_)) => earlier.push(id),
                None => unreadable.push(id),
                Some(_) => {}
            }
        }
    }
}
