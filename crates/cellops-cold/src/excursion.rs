//! Excursions block use until QA closes their deviation: an excursion whose deviation is
//! open, under investigation or assessed but not closed, a rejected one, or a shipment whose
//! logger data never arrived is a hard stop for release, shipping and infusion.

use cellops_custody::UnitCode;
use cellops_domain::{Timestamp, UserId};

use crate::deviation::DeviationState;
use crate::error::ColdError;
use crate::event::{AssessmentDecision, ColdEvent};
use crate::ids::ExcursionId;
use crate::monitor::check_reason;
use crate::state::{ColdState, ShipmentStatus};

/// Checks that `unit` may be used, released, shipped or infused as far as the cold chain
/// knows: every excursion it went through has its deviation closed on an e-signed
/// assessment accepting it, and every
/// shipment it travelled in has its logger data.
pub fn check_usable(state: &ColdState, unit: &UnitCode) -> Result<(), ColdError> {
    for s in state.shipments() {
        if s.status != ShipmentStatus::Packed
            && s.logger_file_sha256.is_none()
            && s.units.contains(unit)
        {
            return Err(ColdError::LoggerDataMissing {
                unit: *unit,
                shipment: s.shipment.clone(),
            });
        }
    }
    for (id, e) in state.excursions_of(unit) {
        match e.signed_decision() {
            Some(AssessmentDecision::Accept) => {}
            Some(AssessmentDecision::Reject) => {
                return Err(ColdError::ExcursionRejected {
                    unit: *unit,
                    excursion: id.clone(),
                });
            }
            None => {
                return Err(ColdError::ExcursionUnassessed {
                    unit: *unit,
                    excursion: id.clone(),
                    deviation: e.deviation.state,
                });
            }
        }
    }
    Ok(())
}

impl ColdState {
    /// The excursions of `unit` whose deviation is not closed.
    pub fn unassessed_excursions(&self, unit: &UnitCode) -> Vec<&ExcursionId> {
        self.excursions_of(unit)
            .into_iter()
            .filter(|(_, e)| e.signed_decision().is_none())
            .map(|(id, _)| id)
            .collect()
    }
}

/// Decides QA's assessment of an excursion, after the investigation of its deviation. An
/// excursion that exceeded the reject limit can only be rejected; an assessment that is
/// already signed (or a closed deviation) cannot be replaced.
pub fn decide_assess(
    state: &ColdState,
    excursion: &ExcursionId,
    decision: AssessmentDecision,
    justification: &str,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
    let e = state
        .excursion(excursion)
        .ok_or_else(|| ColdError::UnknownExcursion {
            excursion: excursion.clone(),
        })?;
    if e.assessment.as_ref().is_some_and(|a| a.signed.is_some())
        || e.deviation.state == DeviationState::Closed
    {
        return Err(ColdError::AlreadyAssessed {
            excursion: excursion.clone(),
        });
    }
    if e.deviation.state == DeviationState::Open {
        return Err(ColdError::DeviationState {
            excursion: excursion.clone(),
            state: e.deviation.state,
            operation: "assess",
            needed: "investigating (record the investigation first)",
        });
    }
    if decision == AssessmentDecision::Accept && e.episode.reject_limit_exceeded {
        return Err(ColdError::RejectLimitExceeded {
            excursion: excursion.clone(),
        });
    }
    check_reason("justification", justification)?;
    Ok(ColdEvent::ExcursionAssessed {
        excursion: excursion.clone(),
        decision,
        justification: justification.trim().to_string(),
        by: by.clone(),
        at,
    })
}
