//! Release readiness: a pure function from everything QA must see (specification, results,
//! investigations, the batch record's deviations, label reconciliation, temperature
//! excursions) to a list of blockers, each explained. QA releases only when the list is
//! empty, or releases at risk when every blocker is a result that may follow release.

use crate::evaluate::Verdict;
use crate::results::{BatchResults, InvestigationState};
use crate::spec::{ReleaseTiming, Specification};
use cellops_process::engine::{DeviationState, ReleaseBlocker};
use serde::Serialize;

/// What the batch record (process engine) says about release.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessFacts {
    /// No batch record was found for this batch.
    NotRecorded,
    /// The batch engine's release blockers (not completed, open deviations).
    Recorded(Vec<ReleaseBlocker>),
}

/// Label reconciliation of the batch (printed = applied + destroyed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelFacts {
    NonePrinted,
    Counts {
        printed: u64,
        applied: u64,
        destroyed: u64,
    },
}

/// QA's assessment of a temperature excursion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExcursionAssessment {
    NotAssessed,
    /// QA assessed it and the product may be used.
    Acceptable,
    /// QA assessed it and the product may not be used.
    Unacceptable,
}

/// A temperature excursion affecting the batch's units (from the cold chain).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExcursionFact {
    pub id: String,
    pub unit: String,
    pub summary: String,
    pub assessment: ExcursionAssessment,
}

/// Everything release readiness looks at.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseInputs<'a> {
    pub spec: &'a Specification,
    pub results: &'a BatchResults,
    pub process: &'a ProcessFacts,
    pub labels: LabelFacts,
    pub excursions: &'a [ExcursionFact],
}

/// One reason the batch cannot be released now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocker {
    /// Stable code: `missing_result`, `failed_result`, `open_investigation`,
    /// `confirmed_oos`, `batch_record_missing`, `batch_not_completed`, `open_deviation`,
    /// `labels_not_printed`, `labels_not_reconciled`, `excursion_not_assessed`,
    /// `excursion_unacceptable`.
    pub code: &'static str,
    /// What it is about: a test id, deviation id, excursion id or the batch.
    pub subject: String,
    /// A sentence QA can act on.
    pub explanation: String,
    /// True when release at risk may proceed despite it (a result that may follow release).
    pub at_risk_allowed: bool,
}

/// Exceptional but not blocking: shown to QA on the release page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exception {
    pub code: &'static str,
    pub subject: String,
    pub explanation: String,
}

/// The release page's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    pub blockers: Vec<Blocker>,
    pub exceptions: Vec<Exception>,
}

impl Readiness {
    /// Releasable now, with no pending result.
    pub fn releasable(&self) -> bool {
        self.blockers.is_empty()
    }
    /// Releasable at risk: every blocker is a result that may follow release.
    pub fn releasable_at_risk(&self) -> bool {
        !self.blockers.is_empty() && self.blockers.iter().all(|b| b.at_risk_allowed)
    }
    /// Tests whose results may follow release and are not in yet.
    pub fn pending_tests(&self) -> Vec<String> {
        self.blockers
            .iter()
            .filter(|b| b.at_risk_allowed)
            .map(|b| b.subject.clone())
            .collect()
    }
}

fn blocker(code: &'static str, subject: &str, explanation: String) -> Blocker {
    Blocker {
        code,
        subject: subject.to_string(),
        explanation,
        at_risk_allowed: false,
    }
}

/// The blockers and exceptions of a batch. Pure and total; the order is: results, batch
/// record, labels, excursions.
pub fn release_readiness(inputs: &ReleaseInputs<'_>) -> Readiness {
    let mut blockers = Vec::new();
    let mut exceptions = Vec::new();
    result_blockers(inputs, &mut blockers, &mut exceptions);
    process_blockers(inputs.process, &mut blockers);
    label_blockers(inputs.labels, &mut blockers);
    for e in inputs.excursions {
        match e.assessment {
            ExcursionAssessment::NotAssessed => blockers.push(blocker(
                "excursion_not_assessed",
                &e.id,
                format!(
                    "temperature excursion {} on unit {} ({}) is not assessed by QA; an excursion blocks use until QA assesses it",
                    e.id, e.unit, e.summary
                ),
            )),
            ExcursionAssessment::Unacceptable => blockers.push(blocker(
                "excursion_unacceptable",
                &e.id,
                format!(
                    "QA assessed temperature excursion {} on unit {} as unacceptable: the unit may not be used",
                    e.id, e.unit
                ),
            )),
            ExcursionAssessment::Acceptable => exceptions.push(Exception {
                code: "excursion_assessed",
                subject: e.id.clone(),
                explanation: format!(
                    "temperature excursion {} on unit {} ({}) was assessed acceptable by QA",
                    e.id, e.unit, e.summary
                ),
            }),
        }
    }
    Readiness {
        blockers,
        exceptions,
    }
}

fn result_blockers(
    inputs: &ReleaseInputs<'_>,
    blockers: &mut Vec<Blocker>,
    exceptions: &mut Vec<Exception>,
) {
    let results = inputs.results;
    for test in inputs.spec.tests() {
        match results.current(&test.id) {
            None => {
                let may_follow = test.release == ReleaseTiming::MayFollow;
                let explanation = if may_follow {
                    format!(
                        "no result yet for {} ({}); it may follow release, so QA may release at risk with a clinical justification and the treating physician's acknowledgement",
                        test.id, test.name
                    )
                } else {
                    format!(
                        "no valid result for {} ({}), which the specification requires before release; enter it (method {})",
                        test.id, test.name, test.method_name
                    )
                };
                blockers.push(Blocker {
                    code: "missing_result",
                    subject: test.id.clone(),
                    explanation,
                    at_risk_allowed: may_follow,
                });
            }
            Some(r) => {
                if let Verdict::Fail { reason } = &r.verdict {
                    let confirmed = results.investigations().iter().any(|i| {
                        i.result_seq == r.seq && i.state == InvestigationState::ConfirmedOos
                    });
                    let (code, what) = if confirmed {
                        (
                            "confirmed_oos",
                            "an investigation confirmed it: the batch fails this test",
                        )
                    } else {
                        ("failed_result", "out of specification")
                    };
                    blockers.push(blocker(
                        code,
                        &test.id,
                        format!(
                            "{} ({}): {reason}; {what} (result {})",
                            test.id, test.name, r.seq
                        ),
                    ));
                }
            }
        }
    }
    for i in results.investigations() {
        if i.state == InvestigationState::Open {
            blockers.push(blocker(
                "open_investigation",
                &i.id,
                format!(
                    "OOS investigation {} of {} (result {}) is open; QA must conclude it as confirmed or invalidated",
                    i.id, i.test, i.result_seq
                ),
            ));
        }
    }
    for r in results.results() {
        if let (Some(old), Some(reason)) = (r.corrects, &r.reason) {
            exceptions.push(Exception {
                code: "corrected_result",
                subject: r.test.clone(),
                explanation: format!(
                    "result {old} of {} was corrected by result {} ({}): {reason}",
                    r.test,
                    r.seq,
                    r.value.text()
                ),
            });
        }
        if results.is_invalidated(r.seq) {
            exceptions.push(Exception {
                code: "invalidated_result",
                subject: r.test.clone(),
                explanation: format!(
                    "result {} of {} ({}) was invalidated by an OOS investigation",
                    r.seq,
                    r.test,
                    r.value.text()
                ),
            });
        }
    }
}

fn process_blockers(process: &ProcessFacts, blockers: &mut Vec<Blocker>) {
    match process {
        ProcessFacts::NotRecorded => blockers.push(blocker(
            "batch_record_missing",
            "batch",
            "no batch record was found for this batch; release needs the executed batch record"
                .into(),
        )),
        ProcessFacts::Recorded(list) => {
            for b in list {
                blockers.push(match b {
                    ReleaseBlocker::BatchNotCompleted => blocker(
                        "batch_not_completed",
                        "batch",
                        "the batch record is not complete: its last recipe step has not finished"
                            .into(),
                    ),
                    ReleaseBlocker::OpenDeviation { deviation, state } => blocker(
                        "open_deviation",
                        deviation.as_str(),
                        format!(
                            "deviation {deviation} blocks release and is {}; QA must close it",
                            deviation_state(*state)
                        ),
                    ),
                });
            }
        }
    }
}

fn deviation_state(state: DeviationState) -> &'static str {
    match state {
        DeviationState::Open => "open",
        DeviationState::Investigating => "under investigation",
        DeviationState::CapaDefined => "waiting for QA with CAPA defined",
        DeviationState::Closed => "closed",
    }
}

fn label_blockers(labels: LabelFacts, blockers: &mut Vec<Blocker>) {
    match labels {
        LabelFacts::NonePrinted => blockers.push(blocker(
            "labels_not_printed",
            "labels",
            "no labels were printed for this batch; label the product units before release".into(),
        )),
        LabelFacts::Counts {
            printed,
            applied,
            destroyed,
        } => {
            let accounted = applied.saturating_add(destroyed);
            if accounted != printed {
                blockers.push(blocker(
                    "labels_not_reconciled",
                    "labels",
                    format!(
                        "labels do not reconcile: {printed} printed, {applied} applied, {destroyed} destroyed ({} unaccounted); apply or destroy (with reason) every printed label",
                        printed.saturating_sub(accounted)
                    ),
                ));
            }
        }
    }
}
