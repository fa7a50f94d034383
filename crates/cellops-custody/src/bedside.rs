//! Bedside verification (item 6) and infusion: two different qualified people each scan the
//! wristband and the unit; both must match the order. Any mismatch is a hard stop recorded as
//! `bedside.mismatch`; `infusion.recorded` requires a fresh `bedside.verified`.

use cellops_domain::{SiteId, Timestamp, UserId};

use crate::error::CustodyError;
use crate::event::Event;
use crate::ids::{LocationId, OrderId, SubjectId, UnitCode};
use crate::scan::{ReadFailure, clip, read_unit_code};
use crate::state::CustodyState;
use crate::unit::UnitStatus;

/// Longest time between bedside verification and the infusion record, in minutes. A
/// conservative default ("immediately before administration", FACT-JACIE); to be made a site
/// setting when the exact clause is confirmed.
pub const BEDSIDE_TO_INFUSION_MINUTES_MAX: i64 = 30;
const MICROS_PER_MINUTE: i64 = 60_000_000;

/// Answers "is user U qualified for the bedside identity check at site S at time T" (roles
/// and training live elsewhere). Implemented for any `Fn(&UserId, &SiteId, Timestamp) -> bool`.
pub trait BedsideQualification {
    /// True when `user` may act as a bedside checker at `site` at `at`.
    fn is_qualified(&self, user: &UserId, site: &SiteId, at: Timestamp) -> bool;
}

impl<F: Fn(&UserId, &SiteId, Timestamp) -> bool> BedsideQualification for F {
    fn is_qualified(&self, user: &UserId, site: &SiteId, at: Timestamp) -> bool {
        self(user, site, at)
    }
}

/// The part of an infusion order the bedside check compares against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfusionOrder {
    /// The order.
    pub order: OrderId,
    /// The patient the order is for.
    pub patient: SubjectId,
    /// The unit the order is for.
    pub unit: UnitCode,
    /// Where it is to be infused.
    pub site: SiteId,
}

/// What one checker scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerScan {
    /// The checker.
    pub user: UserId,
    /// The wristband content (pseudonymous subject id), as read.
    pub wristband: String,
    /// The unit label content (ISBT 128 scan with DIN and product code), as read.
    pub unit: String,
}

/// A two-person bedside identity check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedsideCheck {
    /// The order.
    pub order: InfusionOrder,
    /// The first checker's scans.
    pub first: CheckerScan,
    /// The second checker's scans.
    pub second: CheckerScan,
    /// Where (bed).
    pub location: LocationId,
    /// When.
    pub at: Timestamp,
}

/// A refused bedside check: the reason, and the `bedside.mismatch` event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct BedsideRefusal {
    /// Why, in words for the bedside.
    pub error: CustodyError,
    /// The fact to record.
    pub event: Event,
}

fn check_checker(order: &InfusionOrder, scan: &CheckerScan) -> Result<(), CustodyError> {
    let wristband =
        SubjectId::parse(&scan.wristband).map_err(|e| CustodyError::WristbandUnreadable {
            checker: scan.user.clone(),
            reason: e.to_string(),
        })?;
    if wristband != order.patient {
        return Err(CustodyError::WrongPatient {
            checker: scan.user.clone(),
            order: order.order.clone(),
            scanned: wristband,
            expected: order.patient.clone(),
        });
    }
    let wrong_unit = |scanned: String| CustodyError::WrongOrderUnit {
        checker: scan.user.clone(),
        order: order.order.clone(),
        scanned,
        expected: order.unit,
    };
    match read_unit_code(&scan.unit) {
        Ok(code) if code == order.unit => Ok(()),
        Ok(code) => Err(wrong_unit(code.eye_readable())),
        Err(ReadFailure::Unreadable(reason)) => {
            Err(wrong_unit(format!("an unreadable label ({reason})")))
        }
        Err(ReadFailure::Missing(missing)) => Err(wrong_unit(format!("a label without {missing}"))),
    }
}

fn check_unit(state: &CustodyState, check: &BedsideCheck) -> Result<(), CustodyError> {
    let order = &check.order;
    if let Some(code) = state.infused_unit(&order.order) {
        return Err(CustodyError::AlreadyInfused {
            order: order.order.clone(),
            code,
        });
    }
    let unit = state
        .unit(&order.unit)
        .ok_or(CustodyError::UnknownUnit { code: order.unit })?;
    if unit.is_expired_at(check.at) || unit.status() == UnitStatus::Expired {
        return Err(CustodyError::Expired {
            code: order.unit,
            expires_at: unit.expires_at(),
            at: check.at,
        });
    }
    if unit.status() != UnitStatus::Available {
        return Err(CustodyError::NotUsable {
            code: order.unit,
            status: unit.status(),
            operation: "infuse",
            needed: UnitStatus::Available,
        });
    }
    if unit.site() != &order.site {
        return Err(CustodyError::AtOtherSite {
            code: order.unit,
            unit_site: unit.site().clone(),
            site: order.site.clone(),
        });
    }
    if let Some(unit_patient) = unit.patient() {
        if unit_patient != &order.patient {
            return Err(CustodyError::UnitForOtherPatient {
                code: order.unit,
                unit_patient: unit_patient.clone(),
                order: order.order.clone(),
                order_patient: order.patient.clone(),
            });
        }
    }
    Ok(())
}

fn check_all(
    state: &CustodyState,
    check: &BedsideCheck,
    qualification: &impl BedsideQualification,
) -> Result<(), CustodyError> {
    if check.first.user == check.second.user {
        return Err(CustodyError::SameChecker {
            user: check.first.user.clone(),
        });
    }
    for checker in [&check.first, &check.second] {
        if !qualification.is_qualified(&checker.user, &check.order.site, check.at) {
            return Err(CustodyError::NotQualified {
                user: checker.user.clone(),
                site: check.order.site.clone(),
                at: check.at,
            });
        }
    }
    check_checker(&check.order, &check.first)?;
    check_checker(&check.order, &check.second)?;
    check_unit(state, check)
}

/// Decides a bedside check: `bedside.verified` when two different users, both qualified at
/// the order's site at `at`, each scanned the order's patient's wristband and the order's
/// unit, and the unit is available, unexpired, at the site, not made for another patient,
/// and the order not yet infused. Otherwise a hard stop with a `bedside.mismatch` event
/// naming who, what and where.
pub fn decide_bedside(
    state: &CustodyState,
    check: &BedsideCheck,
    qualification: &impl BedsideQualification,
) -> Result<Event, Box<BedsideRefusal>> {
    let order = &check.order;
    match check_all(state, check, qualification) {
        Ok(()) => Ok(Event::BedsideVerified {
            order: order.order.clone(),
            patient: order.patient.clone(),
            code: order.unit,
            first_checker: check.first.user.clone(),
            second_checker: check.second.user.clone(),
            site: order.site.clone(),
            location: check.location.clone(),
            at: check.at,
        }),
        Err(error) => {
            let event = Event::BedsideMismatch {
                order: order.order.clone(),
                expected_patient: order.patient.clone(),
                expected_unit: order.unit,
                scanned_wristbands: vec![
                    clip(&check.first.wristband),
                    clip(&check.second.wristband),
                ],
                scanned_units: vec![clip(&check.first.unit), clip(&check.second.unit)],
                checkers: vec![check.first.user.clone(), check.second.user.clone()],
                reason: error.reason_code().to_string(),
                message: error.to_string(),
                site: order.site.clone(),
                location: check.location.clone(),
                at: check.at,
            };
            Err(Box::new(BedsideRefusal { error, event }))
        }
    }
}

/// Record that the verified unit of `order` was infused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInfusion {
    /// The order.
    pub order: OrderId,
    /// Who administered.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// Decides `infusion.recorded`: the order needs a `bedside.verified` not older than
/// [`BEDSIDE_TO_INFUSION_MINUTES_MAX`] minutes (and not in the future), no earlier infusion,
/// and the unit still available and unexpired.
pub fn decide_infusion(
    state: &CustodyState,
    command: &RecordInfusion,
) -> Result<Vec<Event>, CustodyError> {
    if let Some(code) = state.infused_unit(&command.order) {
        return Err(CustodyError::AlreadyInfused {
            order: command.order.clone(),
            code,
        });
    }
    let not_verified = || CustodyError::NotVerified {
        order: command.order.clone(),
    };
    let verification = state
        .verification(&command.order)
        .ok_or_else(not_verified)?;
    if command.at < verification.at {
        return Err(not_verified());
    }
    let age_us = command.at.unix_us() - verification.at.unix_us();
    if age_us > BEDSIDE_TO_INFUSION_MINUTES_MAX * MICROS_PER_MINUTE {
        return Err(CustodyError::VerificationStale {
            order: command.order.clone(),
            verified_at: verification.at,
            at: command.at,
            minutes_max: BEDSIDE_TO_INFUSION_MINUTES_MAX,
        });
    }
    let code = verification.code;
    let unit = state
        .unit(&code)
        .ok_or(CustodyError::UnknownUnit { code })?;
    if unit.is_expired_at(command.at) {
        return Err(CustodyError::Expired {
            code,
            expires_at: unit.expires_at(),
            at: command.at,
        });
    }
    if unit.status() != UnitStatus::Available {
        return Err(CustodyError::NotUsable {
            code,
            status: unit.status(),
            operation: "infuse",
            needed: UnitStatus::Available,
        });
    }
    Ok(vec![Event::InfusionRecorded {
        order: command.order.clone(),
        patient: verification.patient.clone(),
        code,
        by: command.by.clone(),
        site: verification.site.clone(),
        at: command.at,
    }])
}
