//! The release decision: release when nothing blocks, release at risk when only results
//! that may follow are pending and the at-risk request names exactly those tests, carries a
//! clinical justification and the treating physician's acknowledgement. And the release
//! status the rest of cellops asks ("may this unit leave the CPC / be infused now?").

use crate::readiness::Readiness;
use cellops_domain::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Shortest clinical justification accepted, in characters (a reason, not a word).
pub const JUSTIFICATION_CHARS_MIN: usize = 20;
/// Longest free text (justification, conclusion, statement), in characters.
pub const TEXT_CHARS_MAX: usize = 4_000;

/// A release-at-risk request as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtRiskRequest {
    /// Ledger seq of the request record.
    pub seq: u64,
    pub pending_tests: Vec<String>,
    pub clinical_justification: String,
    /// The treating physician's user id.
    pub physician: String,
    /// The physician's signed acknowledgement, if given: (user id, signed at).
    pub acknowledged: Option<(String, Timestamp)>,
}

/// What kind of release QA may sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReleaseKind {
    Released,
    ReleasedAtRisk { pending_tests: Vec<String> },
}

/// Decides whether QA may sign a release now. `Err` lists every reason, each a sentence.
pub fn check_release(
    readiness: &Readiness,
    at_risk: Option<&AtRiskRequest>,
) -> Result<ReleaseKind, Vec<String>> {
    let hard: Vec<String> = readiness
        .blockers
        .iter()
        .filter(|b| !b.at_risk_allowed)
        .map(|b| b.explanation.clone())
        .collect();
    if !hard.is_empty() {
        return Err(hard);
    }
    let pending: BTreeSet<String> = readiness.pending_tests().into_iter().collect();
    match at_risk {
        None if pending.is_empty() => Ok(ReleaseKind::Released),
        None => Err(vec![format!(
            "results pending for {}: release now only at risk (POST a release-at-risk request, have the treating physician acknowledge it, then release with at_risk_request)",
            pending.iter().cloned().collect::<Vec<_>>().join(", ")
        )]),
        Some(request) => {
            let mut problems = Vec::new();
            let named: BTreeSet<String> = request.pending_tests.iter().cloned().collect();
            if pending.is_empty() {
                problems.push(
                    "no result is pending: release normally, without an at-risk request"
                        .to_string(),
                );
            } else if named != pending {
                problems.push(format!(
                    "the at-risk request names pending tests {:?} but the pending tests are now {:?}; file a new request",
                    named, pending
                ));
            }
            if request.acknowledged.is_none() {
                problems.push(format!(
                    "the treating physician {} has not acknowledged at-risk request {}",
                    request.physician, request.seq
                ));
            }
            if problems.is_empty() {
                Ok(ReleaseKind::ReleasedAtRisk {
                    pending_tests: pending.into_iter().collect(),
                })
            } else {
                Err(problems)
            }
        }
    }
}

/// Checks the text of a clinical justification.
pub fn check_justification(text: &str) -> Result<(), String> {
    let chars = text.trim().chars().count();
    if (JUSTIFICATION_CHARS_MIN..=TEXT_CHARS_MAX).contains(&chars) {
        Ok(())
    } else {
        Err(format!(
            "write {JUSTIFICATION_CHARS_MIN} to {TEXT_CHARS_MAX} characters: why the patient needs the product before the pending results"
        ))
    }
}

/// Release status of a batch: the answer to "may this batch's units be used now?".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReleaseStatus {
    /// Not released (in QC, blocked, or release not yet signed).
    NotReleased,
    /// Released by QA with every result in specification.
    Released {
        decision_seq: u64,
        signed_by: String,
        signed_at: Timestamp,
    },
    /// Released at risk with these results pending.
    ReleasedAtRisk {
        decision_seq: u64,
        signed_by: String,
        signed_at: Timestamp,
        pending_tests: Vec<String>,
    },
    /// Released (normally or at risk) and then a result failed: do not use.
    FailedAfterRelease {
        decision_seq: u64,
        failed_tests: Vec<String>,
        /// The alert recorded for the failure (none yet in the instant between the result
        /// and its alert record).
        alert_seq: Option<u64>,
    },
}

impl ReleaseStatus {
    /// True when the batch's units may leave the CPC and be infused (released, or released
    /// at risk with no later failure).
    pub fn permits_use(&self) -> bool {
        matches!(
            self,
            ReleaseStatus::Released { .. } | ReleaseStatus::ReleasedAtRisk { .. }
        )
    }

    /// The status name: `not_released`, `released`, `released_at_risk`, `failed_after_release`.
    pub fn name(&self) -> &'static str {
        match self {
            ReleaseStatus::NotReleased => "not_released",
            ReleaseStatus::Released { .. } => "released",
            ReleaseStatus::ReleasedAtRisk { .. } => "released_at_risk",
            ReleaseStatus::FailedAfterRelease { .. } => "failed_after_release",
        }
    }
}
