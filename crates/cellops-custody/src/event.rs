//! The facts custody records in the ledger. Each has a stable `type` name and a `version`;
//! the JSON form is `{"type": "...", "version": 1, ...fields}`.

use cellops_domain::events::EventType;
use cellops_domain::{SiteId, Timestamp, UserId};
use cellops_isbt::{Din, Fin};
use serde::{Deserialize, Serialize};

use crate::error::CustodyError;
use crate::ids::{LocationId, OrderId, ReagentLot, SubjectId, UnitCode, din_text, fin_text};
use crate::step::CustodyStep;

/// The payload version every event of this crate is written with; `from_json` refuses others
/// (upcasting of future versions belongs here).
pub const EVENT_VERSION: u32 = 1;

/// The operation that made child units out of parent units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Derivation {
    /// One parent divided into several children; the parent is used up.
    Split,
    /// Several parents combined into one child; the parents are used up.
    Pool,
    /// Portions taken from one parent; the parent remains.
    Aliquot,
    /// QC or retention samples taken from one parent; the parent remains.
    Sample,
    /// Parents formulated (and filled) into final product containers; the parents are used up.
    Formulate,
}

impl Derivation {
    /// The name used in events and messages (`split`, `pool`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Derivation::Split => "split",
            Derivation::Pool => "pool",
            Derivation::Aliquot => "aliquot",
            Derivation::Sample => "sample",
            Derivation::Formulate => "formulate",
        }
    }

    /// True when the parents are used up by the operation (no longer usable afterwards).
    pub fn consumes_parents(self) -> bool {
        matches!(
            self,
            Derivation::Split | Derivation::Pool | Derivation::Formulate
        )
    }
}

/// One child unit made by a derivation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildUnit {
    /// The child's code (DIN + product code with division).
    pub code: UnitCode,
    /// When the child expires (UTC).
    pub expires_at: Timestamp,
}

/// What the receiver found when taking custody.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptCondition {
    /// True when the container, label and seal were intact and acceptable.
    pub acceptable: bool,
    /// Temperature read on receipt (shipper or logger display), in °C, when measured.
    pub temperature_c: Option<f64>,
    /// Free-text remark, at most [`NOTE_CHARS_MAX`] characters.
    pub note: String,
}

/// Longest free-text note or reason, in characters.
pub const NOTE_CHARS_MAX: usize = 1000;

/// A custody fact. Serialized with its `type` name (see [`Event::type_name`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// A DIN sequence number was handed out; it is never handed out again.
    #[serde(rename = "din.allocated")]
    DinAllocated {
        /// The allocated DIN (13 characters).
        #[serde(with = "din_text")]
        din: Din,
        /// The facility it belongs to.
        #[serde(with = "fin_text")]
        fin: Fin,
        /// Nominal year (last two digits of the year of `at`).
        nominal_year: u8,
        /// Sequence number within FIN and year.
        sequence: u32,
        /// The site that asked.
        site: SiteId,
        /// Who asked.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A unit was collected and labelled (a root of the genealogy).
    #[serde(rename = "unit.created")]
    UnitCreated {
        /// Its code.
        code: UnitCode,
        /// The pseudonymous patient it belongs to (autologous), or none (allogeneic donor material).
        patient: Option<SubjectId>,
        /// When it expires.
        expires_at: Timestamp,
        /// Site holding it.
        site: SiteId,
        /// Where it is.
        location: LocationId,
        /// Who collected and labelled it (first custodian).
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// Child units were made from parent units.
    #[serde(rename = "unit.derived")]
    UnitDerived {
        /// Which operation.
        operation: Derivation,
        /// The parents, all existing units.
        parents: Vec<UnitCode>,
        /// The children, all new codes.
        children: Vec<ChildUnit>,
        /// Site where it happened.
        site: SiteId,
        /// Where.
        location: LocationId,
        /// Who did it (custodian of the children).
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// Custody passed from one person to another.
    #[serde(rename = "custody.handed_off")]
    CustodyHandedOff {
        /// The unit.
        code: UnitCode,
        /// Who gave it.
        from: UserId,
        /// Who received it.
        to: UserId,
        /// The receiver's site.
        site: SiteId,
        /// Where it was received.
        location: LocationId,
        /// What the receiver found.
        condition: ReceiptCondition,
        /// When.
        at: Timestamp,
    },
    /// A scanned label matched the unit a step expected.
    #[serde(rename = "scan.accepted")]
    ScanAccepted {
        /// The unit.
        code: UnitCode,
        /// The step.
        step: CustodyStep,
        /// Site of the scanner.
        site: SiteId,
        /// Where the scan happened.
        location: LocationId,
        /// Who scanned.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A scan was refused: wrong unit, wrong step, expired, unknown facility or unreadable.
    #[serde(rename = "scan.refused")]
    ScanRefused {
        /// The unit the step expected.
        expected: UnitCode,
        /// What was scanned, as read (at most the scanner limit).
        scanned: String,
        /// The unit the scan identified, when it could be read.
        scanned_code: Option<UnitCode>,
        /// Stable machine name of the reason.
        reason: String,
        /// The message shown to the person scanning.
        message: String,
        /// The step.
        step: CustodyStep,
        /// Site of the scanner.
        site: SiteId,
        /// Where.
        location: LocationId,
        /// Who scanned.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// Two qualified people verified patient and unit against the order at the bedside.
    #[serde(rename = "bedside.verified")]
    BedsideVerified {
        /// The order.
        order: OrderId,
        /// The patient (wristband).
        patient: SubjectId,
        /// The unit.
        code: UnitCode,
        /// The first checker.
        first_checker: UserId,
        /// The second, different checker.
        second_checker: UserId,
        /// Site.
        site: SiteId,
        /// Where (bed).
        location: LocationId,
        /// When.
        at: Timestamp,
    },
    /// Bedside verification failed: a hard stop; infusion cannot be recorded on this check.
    #[serde(rename = "bedside.mismatch")]
    BedsideMismatch {
        /// The order.
        order: OrderId,
        /// The order's patient.
        expected_patient: SubjectId,
        /// The order's unit.
        expected_unit: UnitCode,
        /// What each checker scanned on the wristband, as read.
        scanned_wristbands: Vec<String>,
        /// What each checker scanned on the unit, as read.
        scanned_units: Vec<String>,
        /// The checkers.
        checkers: Vec<UserId>,
        /// Stable machine name of the reason.
        reason: String,
        /// The message shown at the bedside.
        message: String,
        /// Site.
        site: SiteId,
        /// Where.
        location: LocationId,
        /// When.
        at: Timestamp,
    },
    /// A unit passed its expiry and may no longer be used.
    #[serde(rename = "unit.expired")]
    UnitExpired {
        /// The unit.
        code: UnitCode,
        /// When this was recorded (at or after the expiry).
        at: Timestamp,
    },
    /// A unit was destroyed (discarded), with the reason.
    #[serde(rename = "unit.destroyed")]
    UnitDestroyed {
        /// The unit.
        code: UnitCode,
        /// Why.
        reason: String,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A reagent lot went into making these units.
    #[serde(rename = "reagent.lot_used")]
    ReagentLotUsed {
        /// The reagent lot.
        lot: ReagentLot,
        /// The units it went into.
        units: Vec<UnitCode>,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A unit was infused into the order's patient after a bedside verification.
    #[serde(rename = "infusion.recorded")]
    InfusionRecorded {
        /// The order.
        order: OrderId,
        /// The patient.
        patient: SubjectId,
        /// The unit.
        code: UnitCode,
        /// Who administered.
        by: UserId,
        /// Site.
        site: SiteId,
        /// When.
        at: Timestamp,
    },
}

/// The catalogue of custody event types, in the ledger's [`EventType`] form.
pub const CUSTODY_EVENT_TYPES: &[EventType] = &[
    ev(
        "din.allocated",
        "a DIN sequence number was allocated; never reused",
    ),
    ev("unit.created", "a unit was collected and labelled"),
    ev(
        "unit.derived",
        "units were split, pooled, aliquoted, sampled or formulated",
    ),
    ev(
        "custody.handed_off",
        "custody of a unit passed between people",
    ),
    ev(
        "scan.accepted",
        "a scan matched the expected unit at a custody step",
    ),
    ev(
        "scan.refused",
        "a scan was refused (expected vs scanned, step, location, who)",
    ),
    ev(
        "bedside.verified",
        "two qualified people verified patient and unit at the bedside",
    ),
    ev(
        "bedside.mismatch",
        "bedside verification failed: a hard stop",
    ),
    ev("unit.expired", "a unit passed its expiry"),
    ev("unit.destroyed", "a unit was destroyed, with the reason"),
    ev("reagent.lot_used", "a reagent lot went into making units"),
    ev(
        "infusion.recorded",
        "a unit was infused after bedside verification",
    ),
];

const fn ev(name: &'static str, description: &'static str) -> EventType {
    EventType {
        name,
        version: EVENT_VERSION,
        description,
    }
}

#[derive(Serialize)]
struct VersionedRef<'a> {
    version: u32,
    #[serde(flatten)]
    event: &'a Event,
}

#[derive(Deserialize)]
struct Versioned {
    version: u32,
    #[serde(flatten)]
    event: Event,
}

impl Event {
    /// The stable `type` name, e.g. `din.allocated`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::DinAllocated { .. } => "din.allocated",
            Event::UnitCreated { .. } => "unit.created",
            Event::UnitDerived { .. } => "unit.derived",
            Event::CustodyHandedOff { .. } => "custody.handed_off",
            Event::ScanAccepted { .. } => "scan.accepted",
            Event::ScanRefused { .. } => "scan.refused",
            Event::BedsideVerified { .. } => "bedside.verified",
            Event::BedsideMismatch { .. } => "bedside.mismatch",
            Event::UnitExpired { .. } => "unit.expired",
            Event::UnitDestroyed { .. } => "unit.destroyed",
            Event::ReagentLotUsed { .. } => "reagent.lot_used",
            Event::InfusionRecorded { .. } => "infusion.recorded",
        }
    }

    /// When the fact happened.
    pub fn at(&self) -> Timestamp {
        match self {
            Event::DinAllocated { at, .. }
            | Event::UnitCreated { at, .. }
            | Event::UnitDerived { at, .. }
            | Event::CustodyHandedOff { at, .. }
            | Event::ScanAccepted { at, .. }
            | Event::ScanRefused { at, .. }
            | Event::BedsideVerified { at, .. }
            | Event::BedsideMismatch { at, .. }
            | Event::UnitExpired { at, .. }
            | Event::UnitDestroyed { at, .. }
            | Event::ReagentLotUsed { at, .. }
            | Event::InfusionRecorded { at, .. } => *at,
        }
    }

    /// The JSON form `{"type": ..., "version": 1, ...}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&VersionedRef {
            version: EVENT_VERSION,
            event: self,
        })
        .expect("custody events contain only strings, numbers, booleans and lists")
    }

    /// Reads the JSON form; refuses an unknown `type`, a missing or unsupported `version`,
    /// and any field that does not parse (codes are re-validated).
    pub fn from_json(text: &str) -> Result<Event, CustodyError> {
        let versioned: Versioned =
            serde_json::from_str(text).map_err(|e| CustodyError::EventJson {
                reason: e.to_string(),
            })?;
        if versioned.version != EVENT_VERSION {
            return Err(CustodyError::EventVersion {
                found: versioned.version,
                supported: EVENT_VERSION,
            });
        }
        Ok(versioned.event)
    }
}
