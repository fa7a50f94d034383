//! Put-away and retrieval by scan, first-expiry-first-out, expiry and storage time limits.

use cellops_custody::{SubjectId, UnitCode};
use cellops_domain::{SiteId, Timestamp, UserId};
use serde::Serialize;

use crate::error::ColdError;
use crate::event::{AlarmKind, ColdEvent, RetrievePurpose};
use crate::excursion::check_usable;
use crate::ids::{Position, StorageId};
use crate::state::{ColdState, Stored};

/// Microseconds per day.
const DAY_US: i64 = 86_400_000_000;

/// A refused scan: the error to show and the refusal event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Why.
    pub error: ColdError,
    /// The `storage.scan_refused` fact.
    pub event: ColdEvent,
}

/// Put a unit into a position. The unit comes from its scanned label, the position from
/// the scanned position label.
#[derive(Debug, Clone, PartialEq)]
pub struct PutAway {
    /// The unit (from the scan).
    pub unit: UnitCode,
    /// The position label as scanned.
    pub scanned_position: String,
    /// The position the system assigned, when it assigned one (see [`suggest_position`]).
    pub expected_position: Option<Position>,
    /// The patient (autologous), none for donor material.
    pub patient: Option<SubjectId>,
    /// The unit's expiry.
    pub expires_at: Timestamp,
    /// The caller's site.
    pub site: SiteId,
    /// Who.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// Take a unit out of its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieve {
    /// The unit (from the scan).
    pub unit: UnitCode,
    /// The position label as scanned.
    pub scanned_position: String,
    /// Why.
    pub purpose: RetrievePurpose,
    /// A reason to take this unit although another one expires first.
    pub fefo_override: Option<String>,
    /// The caller's site.
    pub site: SiteId,
    /// Who.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

fn refusal(
    error: ColdError,
    unit: Option<UnitCode>,
    scanned: &str,
    operation: &str,
    by: &UserId,
    at: Timestamp,
) -> Box<Refusal> {
    let event = ColdEvent::StorageScanRefused {
        unit,
        scanned_position: scanned.chars().take(128).collect(),
        operation: operation.to_string(),
        reason: error.reason_code().to_string(),
        message: error.to_string(),
        by: by.clone(),
        at,
    };
    Box::new(Refusal { error, event })
}

/// The first free position of `storage` (rack, box, slot order), if any.
pub fn suggest_position(state: &ColdState, storage: &StorageId) -> Option<Position> {
    let s = state.storage(storage)?;
    let c = &s.config;
    for rack in 1..=c.racks {
        for bx in 1..=c.boxes_per_rack {
            for slot in 1..=c.slots_per_box {
                let p = Position::new(storage.clone(), rack, bx, slot).ok()?;
                if state.at_position(&p).is_none() {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// Checks that `position` exists in its equipment at `site`.
fn check_position(state: &ColdState, position: &Position, site: &SiteId) -> Result<(), ColdError> {
    let s = state
        .storage(position.storage())
        .ok_or_else(|| ColdError::UnknownStorage {
            storage: position.storage().clone(),
        })?;
    if &s.config.site != site {
        return Err(ColdError::StorageAtOtherSite {
            storage: position.storage().clone(),
            storage_site: s.config.site.clone(),
            site: site.clone(),
        });
    }
    let c = &s.config;
    if position.rack() > c.racks
        || position.r#box() > c.boxes_per_rack
        || position.slot() > c.slots_per_box
    {
        return Err(ColdError::NoSuchPosition {
            position: position.clone(),
            shape: format!(
                "{} racks × {} boxes × {} slots",
                c.racks, c.boxes_per_rack, c.slots_per_box
            ),
        });
    }
    Ok(())
}

fn put_away_checks(state: &ColdState, c: &PutAway) -> Result<(Position, Timestamp), ColdError> {
    let position = Position::parse(&c.scanned_position)?;
    if let Some(expected) = &c.expected_position {
        if expected != &position {
            return Err(ColdError::WrongPosition {
                unit: c.unit,
                expected: expected.clone(),
                scanned: position,
            });
        }
    }
    check_position(state, &position, &c.site)?;
    if let Some(s) = state.stored(&c.unit) {
        return Err(ColdError::AlreadyStored {
            unit: c.unit,
            position: s.position.clone(),
        });
    }
    if let Some(other) = state.at_position(&position) {
        return Err(ColdError::PositionOccupied {
            position,
            unit: *other,
        });
    }
    if c.at >= c.expires_at {
        return Err(ColdError::Expired {
            unit: c.unit,
            expires_at: c.expires_at,
        });
    }
    let storage = state
        .storage(position.storage())
        .expect("checked by check_position");
    if let Some(alarm) = storage
        .alarm
        .as_ref()
        .filter(|a| a.kind == AlarmKind::HighTemperature)
    {
        return Err(ColdError::StorageInAlarm {
            storage: position.storage().clone(),
            since: alarm.since,
        });
    }
    let limit =
        c.at.plus_us(i64::from(storage.config.stored_days_max) * DAY_US);
    Ok((position, limit))
}

/// Decides a put-away: the scanned position must exist at the caller's site, match the
/// assigned position (if any) and be free; the unit must not be stored already, not be
/// expired, and the equipment must not be in a temperature alarm.
pub fn decide_put_away(state: &ColdState, c: &PutAway) -> Result<ColdEvent, Box<Refusal>> {
    match put_away_checks(state, c) {
        Ok((position, storage_limit_at)) => Ok(ColdEvent::PutAway {
            unit: c.unit,
            position,
            patient: c.patient.clone(),
            expires_at: c.expires_at,
            storage_limit_at,
            by: c.by.clone(),
            at: c.at,
        }),
        Err(e) => Err(refusal(
            e,
            Some(c.unit),
            &c.scanned_position,
            "put_away",
            &c.by,
            c.at,
        )),
    }
}

/// The first-expiry-first-out group of a stored unit: same product description code, same
/// patient (donor material has none and forms one group per product).
fn same_group(a: &Stored, b: &Stored) -> bool {
    a.unit.product().description_code() == b.unit.product().description_code()
        && a.patient == b.patient
}

/// True when a stored unit could be issued for use at `at`: not expired, within its storage
/// limit, not blocked by an excursion, not allocated to an order, equipment not in alarm.
fn issuable(state: &ColdState, s: &Stored, at: Timestamp) -> bool {
    at < s.expires_at
        && at < s.storage_limit_at
        && check_usable(state, &s.unit).is_ok()
        && state.allocation_of(&s.unit).is_none()
        && !in_high_alarm(state, s.position.storage())
}

fn in_high_alarm(state: &ColdState, storage: &StorageId) -> bool {
    state
        .storage(storage)
        .and_then(|s| s.alarm.as_ref())
        .is_some_and(|a| a.kind == AlarmKind::HighTemperature)
}

/// Units of the same group as `unit` that could be issued at `at`, first expiry first.
pub fn fefo_queue<'a>(state: &'a ColdState, unit: &UnitCode, at: Timestamp) -> Vec<&'a Stored> {
    let Some(me) = state.stored(unit) else {
        return Vec::new();
    };
    let mut queue: Vec<&Stored> = state
        .stored_units()
        .filter(|s| same_group(s, me) && issuable(state, s, at))
        .collect();
    queue.sort_by_key(|s| (s.expires_at, s.unit));
    queue
}

fn retrieve_checks(state: &ColdState, c: &Retrieve) -> Result<Position, ColdError> {
    let scanned = Position::parse(&c.scanned_position)?;
    let stored = state
        .stored(&c.unit)
        .ok_or(ColdError::NotStored { unit: c.unit })?;
    if stored.position != scanned {
        return Err(ColdError::UnitNotAtPosition {
            unit: c.unit,
            actual: stored.position.clone(),
            scanned,
        });
    }
    check_position(state, &scanned, &c.site)?;
    if !c.purpose.is_for_use() {
        return Ok(scanned);
    }
    if c.at >= stored.expires_at {
        return Err(ColdError::Expired {
            unit: c.unit,
            expires_at: stored.expires_at,
        });
    }
    if c.at >= stored.storage_limit_at {
        return Err(ColdError::StorageLimitExceeded {
            unit: c.unit,
            limit_at: stored.storage_limit_at,
        });
    }
    if in_high_alarm(state, scanned.storage()) {
        return Err(ColdError::StorageInAlarm {
            storage: scanned.storage().clone(),
            since: state
                .storage(scanned.storage())
                .and_then(|s| s.alarm.as_ref())
                .map_or(c.at, |a| a.since),
        });
    }
    check_usable(state, &c.unit)?;
    let allocated = state.allocation_of(&c.unit).is_some();
    let overridden = c
        .fefo_override
        .as_deref()
        .is_some_and(|r| !r.trim().is_empty());
    if !allocated && !overridden {
        if let Some(first) = fefo_queue(state, &c.unit, c.at).first() {
            if first.expires_at < stored.expires_at {
                return Err(ColdError::FefoViolation {
                    unit: c.unit,
                    expires_at: stored.expires_at,
                    first: first.unit,
                    first_expires_at: first.expires_at,
                    first_position: first.position.clone(),
                });
            }
        }
    }
    Ok(scanned)
}

/// Decides a retrieval: the unit must be stored at the scanned position (at the caller's
/// site). For use or shipping it must also be unexpired, within the storage limit, free of
/// unassessed or rejected excursions, its equipment not in alarm, and the first to expire in
/// its group (unless allocated, or overridden with a reason).
pub fn decide_retrieve(state: &ColdState, c: &Retrieve) -> Result<ColdEvent, Box<Refusal>> {
    match retrieve_checks(state, c) {
        Ok(position) => Ok(ColdEvent::Retrieved {
            unit: c.unit,
            position,
            purpose: c.purpose,
            fefo_override: c.fefo_override.clone().filter(|r| !r.trim().is_empty()),
            by: c.by.clone(),
            at: c.at,
        }),
        Err(e) => Err(refusal(
            e,
            Some(c.unit),
            &c.scanned_position,
            "retrieve",
            &c.by,
            c.at,
        )),
    }
}

/// Why a stored unit needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// Past expiry: discard.
    Expired,
    /// Expires within the horizon.
    ExpiresSoon,
    /// Past the validated storage time.
    StorageLimitReached,
    /// The storage limit falls within the horizon.
    StorageLimitSoon,
}

/// Stored units that are expired, past their storage limit, or will be within
/// `horizon_days`, with the reason, soonest first.
pub fn storage_review(
    state: &ColdState,
    at: Timestamp,
    horizon_days: u32,
) -> Vec<(&Stored, ReviewReason)> {
    let horizon = at.plus_us(i64::from(horizon_days) * DAY_US);
    let mut out: Vec<(&Stored, ReviewReason)> = state
        .stored_units()
        .filter_map(|s| {
            let reason = if at >= s.expires_at {
                ReviewReason::Expired
            } else if at >= s.storage_limit_at {
                ReviewReason::StorageLimitReached
            } else if horizon >= s.expires_at {
                ReviewReason::ExpiresSoon
            } else if horizon >= s.storage_limit_at {
                ReviewReason::StorageLimitSoon
            } else {
                return None;
            };
            Some((s, reason))
        })
        .collect();
    out.sort_by_key(|(s, _)| (s.expires_at.min(s.storage_limit_at), s.unit));
    out
}
