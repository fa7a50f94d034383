//! Custody scans (item 5): a step expects one unit; the scan is accepted only for that unit,
//! in the status the step needs, unexpired, from the right facility. Every refusal comes with
//! a `scan.refused` event to record.

use cellops_domain::{SiteId, Timestamp, UserId};
use cellops_isbt::{DataStructure, SCAN_BYTES_MAX, StructureKind, parse_scan};

use crate::error::CustodyError;
use crate::event::Event;
use crate::ids::{LocationId, UnitCode};
use crate::state::CustodyState;
use crate::step::CustodyStep;

/// What a scanning station expects: this unit, at this step, at this site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedStep {
    /// The step.
    pub step: CustodyStep,
    /// The unit the step expects.
    pub unit: UnitCode,
    /// The site of the station.
    pub site: SiteId,
}

/// A refused scan: the reason, and the `scan.refused` event that must be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRefusal {
    /// Why, in words for the person scanning.
    pub error: CustodyError,
    /// The fact to record.
    pub event: Event,
}

/// Keeps at most [`SCAN_BYTES_MAX`] bytes of `text`, cut at a character boundary.
pub(crate) fn clip(text: &str) -> String {
    let mut end = text.len().min(SCAN_BYTES_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Reads DIN + product code from a scan (one or several concatenated data structures).
pub(crate) fn read_unit_code(text: &str) -> Result<UnitCode, ReadFailure> {
    let scan = parse_scan(text).map_err(|e| ReadFailure::Unreadable(e.to_string()))?;
    let din = scan.din().ok_or(ReadFailure::Missing("DIN"))?;
    let product = match scan.first(StructureKind::ProductCode) {
        Some(DataStructure::ProductCode(product)) => *product,
        _ => return Err(ReadFailure::Missing("product code")),
    };
    Ok(UnitCode::new(din.din(), product))
}

/// Why a scan could not be read as a unit code.
pub(crate) enum ReadFailure {
    /// The codec refused it (message names position and rule).
    Unreadable(String),
    /// A needed data structure was absent.
    Missing(&'static str),
}

fn check_scanned(
    state: &CustodyState,
    expected: &ExpectedStep,
    scanned: UnitCode,
    at: Timestamp,
) -> Result<(), CustodyError> {
    let scanned_fin = scanned.din().fin();
    if !state.is_network_fin(scanned_fin) {
        return Err(CustodyError::UnknownFacility {
            fin: scanned_fin.to_string(),
        });
    }
    let expected_fin = expected.unit.din().fin();
    if scanned_fin != expected_fin {
        return Err(CustodyError::OtherFacility {
            step: expected.step,
            expected: expected.unit,
            scanned_fin: scanned_fin.to_string(),
            expected_fin: expected_fin.to_string(),
        });
    }
    if scanned != expected.unit {
        return Err(CustodyError::WrongUnit {
            step: expected.step,
            expected: expected.unit,
            scanned,
            expected_text: expected.unit.eye_readable(),
            scanned_text: scanned.eye_readable(),
        });
    }
    let unit = state
        .unit(&scanned)
        .ok_or(CustodyError::UnknownUnit { code: scanned })?;
    if unit.is_expired_at(at) || unit.status() == crate::unit::UnitStatus::Expired {
        return Err(CustodyError::Expired {
            code: scanned,
            expires_at: unit.expires_at(),
            at,
        });
    }
    let needed = expected.step.required_status();
    if unit.status() != needed {
        return Err(CustodyError::WrongStep {
            code: scanned,
            step: expected.step,
            status: unit.status(),
            needed,
        });
    }
    if expected.step != CustodyStep::Receive && unit.site() != &expected.site {
        return Err(CustodyError::AtOtherSite {
            code: scanned,
            unit_site: unit.site().clone(),
            site: expected.site.clone(),
        });
    }
    Ok(())
}

/// Decides a custody scan. Accepts (`scan.accepted`) only the expected unit, in the status the
/// step needs (see [`CustodyStep::required_status`]), unexpired at `at`, and on site (except
/// at `receive`). Otherwise returns the reason and a `scan.refused` event naming expected vs
/// scanned, step, location and who. Malformed codes carry the codec's position and rule.
pub fn decide_scan(
    state: &CustodyState,
    expected: &ExpectedStep,
    scanned_text: &str,
    location: &LocationId,
    actor: &UserId,
    at: Timestamp,
) -> Result<Event, Box<ScanRefusal>> {
    let read = read_unit_code(scanned_text);
    let scanned_code = read.as_ref().ok().copied();
    let outcome = match read {
        Err(ReadFailure::Unreadable(reason)) => Err(CustodyError::Unreadable {
            step: expected.step,
            expected: expected.unit,
            reason,
        }),
        Err(ReadFailure::Missing(missing)) => Err(CustodyError::Incomplete {
            missing,
            expected: expected.unit,
        }),
        Ok(scanned) => check_scanned(state, expected, scanned, at),
    };
    match outcome {
        Ok(()) => Ok(Event::ScanAccepted {
            code: expected.unit,
            step: expected.step,
            site: expected.site.clone(),
            location: location.clone(),
            by: actor.clone(),
            at,
        }),
        Err(error) => {
            let event = Event::ScanRefused {
                expected: expected.unit,
                scanned: clip(scanned_text),
                scanned_code,
                reason: error.reason_code().to_string(),
                message: error.to_string(),
                step: expected.step,
                site: expected.site.clone(),
                location: location.clone(),
                by: actor.clone(),
                at,
            };
            Err(Box::new(ScanRefusal { error, event }))
        }
    }
}
