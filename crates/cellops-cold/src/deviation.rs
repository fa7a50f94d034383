//! The deviation an excursion opens. Every excursion — a temperature episode or a data gap,
//! in a shipment or in storage — opens a deviation with it, and QA works it through:
//! **investigate** (findings recorded), **assess** (accept or reject with a justification,
//! [`crate::decide_assess`]), **close** (the assessment e-signed as Approved, then
//! `excursion.deviation_closed`). Until it is closed the units are blocked for use, shipping,
//! allocation and release (`check_usable`, QC readiness); a closed reject blocks them for
//! good.
//!
//! The batch engine (`cellops-process`) has its own deviations, bound to a batch record and
//! its steps; a cold-chain deviation is bound to an excursion and the units in it, which may
//! belong to several batches or none, so it lives here with its own events.

use cellops_domain::{Timestamp, UserId};
use serde::Serialize;
use std::fmt;

use crate::error::ColdError;
use crate::event::{AssessmentDecision, ColdEvent};
use crate::ids::ExcursionId;
use crate::monitor::check_reason;
use crate::state::ColdState;

/// Where an excursion's deviation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviationState {
    /// Opened with the excursion; nobody has investigated yet.
    Open,
    /// Findings recorded; no assessment yet.
    Investigating,
    /// Assessed (accept or reject); waiting for the e-signed closure.
    Assessed,
    /// Closed on an e-signed assessment: its decision is in force.
    Closed,
}

impl DeviationState {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            DeviationState::Open => "open",
            DeviationState::Investigating => "investigating",
            DeviationState::Assessed => "assessed",
            DeviationState::Closed => "closed",
        }
    }
}

impl fmt::Display for DeviationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The investigation's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Investigation {
    /// What was found.
    pub findings: String,
    /// Who.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// The closure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Closure {
    /// The decision in force.
    pub decision: AssessmentDecision,
    /// The assessment record closed on.
    pub assessment_seq: u64,
    /// The e-signature record.
    pub signature_seq: u64,
    /// Who.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// An excursion's deviation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deviation {
    /// Where it stands.
    pub state: DeviationState,
    /// When its `excursion.deviation_opened` record was written (none: the excursion was
    /// recorded without one, e.g. before deviations existed; it is worked through the same).
    pub opened_at: Option<Timestamp>,
    /// The investigation.
    pub investigation: Option<Investigation>,
    /// The closure.
    pub closed: Option<Closure>,
}

impl Deviation {
    pub(crate) fn new() -> Deviation {
        Deviation {
            state: DeviationState::Open,
            opened_at: None,
            investigation: None,
            closed: None,
        }
    }
}

/// `events` with an `excursion.deviation_opened` after every event that opens excursions
/// (a logger upload with episodes, `excursion.opened`): the decisions that detect
/// excursions return their deviations with them.
pub fn with_deviations(events: Vec<ColdEvent>) -> Vec<ColdEvent> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let opened: Vec<ColdEvent> = match &e {
            ColdEvent::LoggerUploaded { excursions, at, .. } => excursions
                .iter()
                .map(|x| ColdEvent::DeviationOpened {
                    excursion: x.excursion.clone(),
                    at: *at,
                })
                .collect(),
            ColdEvent::ExcursionOpened { episode, .. } => vec![ColdEvent::DeviationOpened {
                excursion: episode.excursion.clone(),
                at: episode.end,
            }],
            _ => Vec::new(),
        };
        out.push(e);
        out.extend(opened);
    }
    out
}

fn deviation_of<'a>(
    state: &'a ColdState,
    excursion: &ExcursionId,
) -> Result<&'a crate::state::Excursion, ColdError> {
    state
        .excursion(excursion)
        .ok_or_else(|| ColdError::UnknownExcursion {
            excursion: excursion.clone(),
        })
}

fn wrong_state(
    excursion: &ExcursionId,
    state: DeviationState,
    operation: &'static str,
    needed: &'static str,
) -> ColdError {
    ColdError::DeviationState {
        excursion: excursion.clone(),
        state,
        operation,
        needed,
    }
}

/// Decides QA's investigation record: allowed while the deviation is open or under
/// investigation (a later record replaces the findings), not once assessed or closed.
pub fn decide_investigate(
    state: &ColdState,
    excursion: &ExcursionId,
    findings: &str,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
    let e = deviation_of(state, excursion)?;
    match e.deviation.state {
        DeviationState::Open | DeviationState::Investigating => {}
        s => {
            return Err(wrong_state(
                excursion,
                s,
                "investigate",
                "open or investigating",
            ));
        }
    }
    check_reason("findings", findings)?;
    Ok(ColdEvent::DeviationInvestigated {
        excursion: excursion.clone(),
        findings: findings.trim().to_string(),
        by: by.clone(),
        at,
    })
}

/// Decides the closure: the deviation must be assessed and the assessment e-signed as
/// Approved. The assessment's decision comes into force.
pub fn decide_close(
    state: &ColdState,
    excursion: &ExcursionId,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
    let e = deviation_of(state, excursion)?;
    if e.deviation.state != DeviationState::Assessed {
        return Err(wrong_state(
            excursion,
            e.deviation.state,
            "close",
            "assessed",
        ));
    }
    let a = e
        .assessment
        .as_ref()
        .expect("an assessed deviation has an assessment");
    let Some(signature_seq) = a.signature_seq.filter(|_| a.signed.is_some()) else {
        return Err(ColdError::AssessmentUnsigned {
            excursion: excursion.clone(),
            assessment_seq: a.record_seq,
        });
    };
    Ok(ColdEvent::DeviationClosed {
        excursion: excursion.clone(),
        decision: a.decision,
        assessment_seq: a.record_seq,
        signature_seq,
        by: by.clone(),
        at,
    })
}
