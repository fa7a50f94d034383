//! The facts this crate records in the ledger. Each has a stable `type` name and version 1;
//! the JSON form is `{"type": "...", "version": 1, ...fields}`.

use cellops_custody::{OrderId, SubjectId, UnitCode};
use cellops_domain::events::EventType;
use cellops_domain::{SiteId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::error::ColdError;
use crate::ids::{ExcursionId, LoggerId, Position, ShipmentId, ShipperId, StorageId};

/// The payload version of every event of this crate; `from_json` refuses others.
pub const EVENT_VERSION: u32 = 1;

/// Kind of storage equipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageKind {
    /// Vapour-phase liquid nitrogen dewar (≤ −150 °C).
    Ln2Vapour,
    /// Liquid-phase liquid nitrogen dewar.
    Ln2Liquid,
    /// Mechanical freezer (about −80 °C).
    MechanicalFreezer,
    /// Refrigerator (2–8 °C), for fresh product holds.
    Refrigerator,
}

/// The alarm rule of a storage unit: alarm when the probe stays above `alarm_above_c` for
/// `delay_minutes` (a door opening is not an alarm), or when no reading arrives for
/// `reading_gap_minutes_max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlarmRule {
    /// Alarm threshold, °C.
    pub alarm_above_c: f64,
    /// How long the probe must stay above before the alarm, minutes (0 = at once).
    pub delay_minutes: u32,
    /// Longest silence of the probe before a no-data alarm, minutes.
    pub reading_gap_minutes_max: u32,
}

/// The shape and rules of one freezer or dewar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageConfig {
    /// Its id.
    pub storage: StorageId,
    /// Its kind.
    pub kind: StorageKind,
    /// The site it stands at.
    pub site: SiteId,
    /// Racks (1-based numbering).
    pub racks: u16,
    /// Boxes per rack.
    pub boxes_per_rack: u16,
    /// Slots per box.
    pub slots_per_box: u16,
    /// Temperature alarm rule.
    pub rule: AlarmRule,
    /// Longest validated storage time of a unit in this equipment, days.
    pub stored_days_max: u32,
}

/// One temperature reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// When (UTC).
    pub at: Timestamp,
    /// Probe temperature, °C.
    pub temperature_c: f64,
}

/// Why a storage alarm was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// The probe stayed above the threshold for the delay.
    HighTemperature,
    /// The probe was silent for longer than allowed.
    NoData,
}

/// Why a unit is taken out of storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrievePurpose {
    /// For thaw and administration at this site.
    Use,
    /// For packing into a shipper.
    Ship,
    /// To another position or freezer (no use checks).
    Transfer,
    /// For destruction (no use checks).
    Discard,
}

impl RetrievePurpose {
    /// True when the unit will be used or leave the site, so expiry, storage limit,
    /// first-expiry-first-out and excursions are checked.
    pub fn is_for_use(self) -> bool {
        matches!(self, RetrievePurpose::Use | RetrievePurpose::Ship)
    }
}

/// Temperature limits a shipment's logger trace is judged against (the product's limits).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExcursionLimits {
    /// Above this is an excursion that QA must assess, °C.
    pub alarm_above_c: f64,
    /// Above this the product must be rejected, °C.
    pub reject_above_c: f64,
    /// Longest step between logger samples (and between dispatch or receipt and the data)
    /// that is not a gap, minutes; none = [`crate::GAP_INTERVALS_MAX`] logger intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_minutes_max: Option<u32>,
}

impl ExcursionLimits {
    /// The project default for cryopreserved cells: alarm above −150 °C, reject above
    /// −120 °C (bioprocess.md §4; the values live in `cellops_twin::shipper`).
    pub const CRYO_DEFAULT: ExcursionLimits = ExcursionLimits {
        alarm_above_c: cellops_twin::shipper::ALARM_ABOVE_C,
        reject_above_c: cellops_twin::shipper::REJECT_ABOVE_C,
        gap_minutes_max: None,
    };

    /// The longest step without data that is not a gap, in seconds, for a logger sampling
    /// every `interval_seconds`: the configured maximum, else
    /// [`crate::GAP_INTERVALS_MAX`] intervals.
    pub fn gap_seconds_max(&self, interval_seconds: u32) -> i64 {
        match self.gap_minutes_max {
            Some(m) => i64::from(m) * 60,
            None => crate::GAP_INTERVALS_MAX * i64::from(interval_seconds.max(1)),
        }
    }
}

/// What happened: temperature above the limit, or data missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExcursionKind {
    /// The temperature was above the alarm limit.
    Temperature,
    /// The record has a gap: the temperature in it is unknown.
    DataGap,
}

/// Where an excursion happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum ExcursionSource {
    /// In a shipment (from its logger).
    Shipment(ShipmentId),
    /// In storage (from the equipment's probe).
    Storage(StorageId),
}

/// One excursion episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExcursionEpisode {
    /// Its id.
    pub excursion: ExcursionId,
    /// Temperature or data gap.
    pub kind: ExcursionKind,
    /// First sample above the limit (or last sample before the gap).
    pub start: Timestamp,
    /// First sample back within the limit (or first after the gap; the last sample if none).
    pub end: Timestamp,
    /// Highest temperature seen in the episode, °C (none for a gap).
    pub temperature_c_max: Option<f64>,
    /// True when the reject limit was exceeded.
    pub reject_limit_exceeded: bool,
}

impl ExcursionEpisode {
    /// Duration, minutes.
    pub fn duration_minutes(&self) -> f64 {
        (self.end.unix_us() - self.start.unix_us()) as f64 / 60e6
    }
}

/// QA's decision on an excursion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssessmentDecision {
    /// The product may be used.
    Accept,
    /// The product must not be used.
    Reject,
}

/// What the receiver found on receipt of a shipment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentCondition {
    /// Shipper intact, seals intact, labels readable.
    pub acceptable: bool,
    /// Temperature shown on receipt, °C, when read.
    pub temperature_c: Option<f64>,
    /// Remark (at most [`cellops_custody::NOTE_CHARS_MAX`] characters).
    pub note: String,
}

/// One dose of a lot in the bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankDose {
    /// The dose's unit code (lot DIN with its own division).
    pub code: UnitCode,
    /// When it expires.
    pub expires_at: Timestamp,
}

/// A cold-chain fact. Serialized with its `type` name (see [`ColdEvent::type_name`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ColdEvent {
    /// A freezer or dewar was set up (or its configuration replaced).
    #[serde(rename = "storage.configured")]
    StorageConfigured {
        /// The configuration.
        config: StorageConfig,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A unit was scanned into a position.
    #[serde(rename = "storage.put_away")]
    PutAway {
        /// The unit.
        unit: UnitCode,
        /// The position scanned.
        position: Position,
        /// The patient (autologous) or none (donor material): scopes first-expiry-first-out.
        patient: Option<SubjectId>,
        /// The unit's expiry.
        expires_at: Timestamp,
        /// When the validated storage time of this equipment runs out.
        storage_limit_at: Timestamp,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A unit was scanned out of its position.
    #[serde(rename = "storage.retrieved")]
    Retrieved {
        /// The unit.
        unit: UnitCode,
        /// Its position.
        position: Position,
        /// Why.
        purpose: RetrievePurpose,
        /// Why first-expiry-first-out was overridden, when it was.
        fefo_override: Option<String>,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A put-away or retrieval scan was refused (wrong position, occupied, expired, …).
    #[serde(rename = "storage.scan_refused")]
    StorageScanRefused {
        /// The unit scanned, when it could be read.
        unit: Option<UnitCode>,
        /// The position label as scanned.
        scanned_position: String,
        /// put_away or retrieve.
        operation: String,
        /// Stable machine name of the reason.
        reason: String,
        /// The message shown.
        message: String,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// Probe readings of a storage unit (ascending, after the previous batch).
    #[serde(rename = "storage.temperature_recorded")]
    TemperatureRecorded {
        /// The equipment.
        storage: StorageId,
        /// The readings.
        readings: Vec<Reading>,
    },
    /// A storage alarm started.
    #[serde(rename = "storage.alarm_raised")]
    AlarmRaised {
        /// The equipment.
        storage: StorageId,
        /// Why.
        kind: AlarmKind,
        /// The reading that raised it, °C (none for no data).
        temperature_c: Option<f64>,
        /// When the condition began.
        since: Timestamp,
        /// When the alarm was raised.
        at: Timestamp,
    },
    /// A storage alarm ended (the condition is gone).
    #[serde(rename = "storage.alarm_cleared")]
    AlarmCleared {
        /// The equipment.
        storage: StorageId,
        /// When.
        at: Timestamp,
    },
    /// Someone responded to an alarm (who and why are required).
    #[serde(rename = "storage.alarm_acknowledged")]
    AlarmAcknowledged {
        /// The equipment.
        storage: StorageId,
        /// What was done.
        reason: String,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A dry shipper was qualified (or re-qualified).
    #[serde(rename = "shipper.qualified")]
    ShipperQualified {
        /// The shipper.
        shipper: ShipperId,
        /// Make and model.
        model: String,
        /// The qualification report id.
        qualification_report: String,
        /// When the qualification expires.
        qualification_expires_at: Timestamp,
        /// Validated static hold time from a full charge, hours.
        validated_hold_hours: f64,
        /// The site that owns it.
        site: SiteId,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A dry shipper was charged with LN2 (its hold clock starts).
    #[serde(rename = "shipper.charged")]
    ShipperCharged {
        /// The shipper.
        shipper: ShipperId,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A temperature logger was registered with its calibration.
    #[serde(rename = "logger.registered")]
    LoggerRegistered {
        /// Serial.
        logger: LoggerId,
        /// Calibration certificate id.
        calibration_certificate: String,
        /// Calibration due date.
        calibration_due: Timestamp,
        /// Sampling interval, seconds.
        interval_seconds: u32,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// Units were packed into a charged, qualified shipper with a logger.
    #[serde(rename = "shipment.packed")]
    ShipmentPacked {
        /// The shipment.
        shipment: ShipmentId,
        /// The units.
        units: Vec<UnitCode>,
        /// The shipper.
        shipper: ShipperId,
        /// The logger.
        logger: LoggerId,
        /// From.
        from_site: SiteId,
        /// To.
        to_site: SiteId,
        /// Planned transit, hours.
        transit_hours: f64,
        /// Safety margin required on top of transit, hours.
        margin_hours: f64,
        /// Hold time left at packing, hours.
        hold_remaining_hours: f64,
        /// The product's limits.
        limits: ExcursionLimits,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// The courier took the shipment.
    #[serde(rename = "shipment.dispatched")]
    ShipmentDispatched {
        /// The shipment.
        shipment: ShipmentId,
        /// Who handed it over.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// The logger file was uploaded: its hash, summary, warnings and excursions.
    #[serde(rename = "shipment.logger_uploaded")]
    LoggerUploaded {
        /// The shipment.
        shipment: ShipmentId,
        /// SHA-256 of the file as uploaded, hex.
        file_sha256: String,
        /// The format used.
        format: String,
        /// Samples in the file.
        samples: Vec<Reading>,
        /// Data-quality warnings (gaps, dropped duplicates), recorded as found.
        warnings: Vec<String>,
        /// Excursion episodes found against the shipment's limits.
        excursions: Vec<ExcursionEpisode>,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// The shipment arrived and was unpacked.
    #[serde(rename = "shipment.received")]
    ShipmentReceived {
        /// The shipment.
        shipment: ShipmentId,
        /// What was found.
        condition: ShipmentCondition,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// An excursion outside a logger upload: a storage alarm episode that affected the units
    /// stored in it, or a shipment's logger data ending long before receipt.
    #[serde(rename = "excursion.opened")]
    ExcursionOpened {
        /// Where.
        source: ExcursionSource,
        /// The episode.
        episode: ExcursionEpisode,
        /// The units affected.
        units: Vec<UnitCode>,
    },
    /// QA assessed an excursion; effective once e-signed (meaning Approved).
    #[serde(rename = "excursion.assessed")]
    ExcursionAssessed {
        /// The excursion.
        excursion: ExcursionId,
        /// The decision.
        decision: AssessmentDecision,
        /// Why (product data, stability data, duration).
        justification: String,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// The deviation of an excursion was opened (with the excursion, automatically): QA
    /// investigates, assesses and closes it with an e-signature before the units may be used.
    #[serde(rename = "excursion.deviation_opened")]
    DeviationOpened {
        /// The excursion (also the deviation's id).
        excursion: ExcursionId,
        /// When.
        at: Timestamp,
    },
    /// QA recorded the investigation of an excursion's deviation (what was looked at and
    /// found: logger placement, shipper condition, product data).
    #[serde(rename = "excursion.investigated")]
    DeviationInvestigated {
        /// The excursion.
        excursion: ExcursionId,
        /// Findings.
        findings: String,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// QA closed the deviation: the assessment (ledger record `assessment_seq`) was e-signed
    /// as Approved in record `signature_seq`, and its decision is now in force.
    #[serde(rename = "excursion.deviation_closed")]
    DeviationClosed {
        /// The excursion.
        excursion: ExcursionId,
        /// The decision in force.
        decision: AssessmentDecision,
        /// The assessment record closed on.
        assessment_seq: u64,
        /// The e-signature record over it.
        signature_seq: u64,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A released lot was split into doses and banked.
    #[serde(rename = "bank.lot_registered")]
    LotRegistered {
        /// The lot (the formulated parent unit).
        lot: UnitCode,
        /// The doses.
        doses: Vec<BankDose>,
        /// HLA typing of the donor (antigens a recipient must not carry antibodies against).
        hla: Vec<String>,
        /// The bank's site.
        site: SiteId,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// A dose was allocated to a patient order.
    #[serde(rename = "bank.dose_allocated")]
    DoseAllocated {
        /// The dose.
        dose: UnitCode,
        /// Its lot.
        lot: UnitCode,
        /// The order.
        order: OrderId,
        /// The recipient.
        patient: SubjectId,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
    /// An allocation was withdrawn; the dose is free again.
    #[serde(rename = "bank.allocation_cancelled")]
    AllocationCancelled {
        /// The dose.
        dose: UnitCode,
        /// The order.
        order: OrderId,
        /// Why.
        reason: String,
        /// Who.
        by: UserId,
        /// When.
        at: Timestamp,
    },
}

const fn ev(name: &'static str, description: &'static str) -> EventType {
    EventType {
        name,
        version: EVENT_VERSION,
        description,
    }
}

/// Every event type of this crate, for the ledger's catalogue.
pub const COLD_EVENT_TYPES: &[EventType] = &[
    ev(
        "storage.configured",
        "a freezer or dewar was configured: racks, boxes, slots, alarm rule, storage limit",
    ),
    ev(
        "storage.put_away",
        "a unit was scanned into a storage position",
    ),
    ev(
        "storage.retrieved",
        "a unit was scanned out of its storage position",
    ),
    ev(
        "storage.scan_refused",
        "a put-away or retrieval scan was refused (wrong position, occupied, expired, FEFO)",
    ),
    ev("storage.temperature_recorded", "storage probe readings"),
    ev(
        "storage.alarm_raised",
        "a storage temperature or no-data alarm started",
    ),
    ev("storage.alarm_cleared", "a storage alarm condition ended"),
    ev(
        "storage.alarm_acknowledged",
        "someone responded to a storage alarm, with a reason",
    ),
    ev(
        "shipper.qualified",
        "a dry shipper was qualified: report, expiry, validated hold time",
    ),
    ev(
        "shipper.charged",
        "a dry shipper was charged with liquid nitrogen",
    ),
    ev(
        "logger.registered",
        "a temperature logger was registered with its calibration",
    ),
    ev(
        "shipment.packed",
        "units were packed into a qualified, charged shipper with a logger",
    ),
    ev("shipment.dispatched", "the courier took a shipment"),
    ev(
        "shipment.logger_uploaded",
        "a shipment's logger file: hash, samples, warnings, excursions",
    ),
    ev(
        "shipment.received",
        "a shipment was received, with its condition",
    ),
    ev(
        "excursion.opened",
        "a storage alarm episode affected stored units, or a shipment's logger data ended before receipt",
    ),
    ev(
        "excursion.assessed",
        "QA assessed an excursion (effective once e-signed as Approved and the deviation closed)",
    ),
    ev(
        "excursion.deviation_opened",
        "an excursion opened its deviation (a use and release blocker until closed)",
    ),
    ev(
        "excursion.investigated",
        "QA recorded the investigation of an excursion's deviation",
    ),
    ev(
        "excursion.deviation_closed",
        "QA closed an excursion's deviation on its e-signed assessment",
    ),
    ev("bank.lot_registered", "a lot's doses were banked"),
    ev(
        "bank.dose_allocated",
        "a banked dose was allocated to a patient order",
    ),
    ev(
        "bank.allocation_cancelled",
        "a dose allocation was withdrawn",
    ),
];

#[derive(Serialize)]
struct VersionedRef<'a> {
    version: u32,
    #[serde(flatten)]
    event: &'a ColdEvent,
}

#[derive(Deserialize)]
struct Versioned {
    version: u32,
    #[serde(flatten)]
    event: ColdEvent,
}

impl ColdEvent {
    /// The ledger event type name (e.g. `storage.put_away`).
    pub fn type_name(&self) -> &'static str {
        let json = serde_json::to_value(self).expect("cold events serialize");
        let name = json["type"].as_str().unwrap_or_default();
        COLD_EVENT_TYPES
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.name)
            .expect(
                "every event variant is in COLD_EVENT_TYPES (test: every_variant_is_catalogued)",
            )
    }

    /// The JSON form with `type` and `version`.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(VersionedRef {
            version: EVENT_VERSION,
            event: self,
        })
        .expect("cold events contain only strings, numbers, booleans and lists")
    }

    /// Reads the JSON form; refuses an unknown type or version.
    pub fn from_json(text: &str) -> Result<ColdEvent, ColdError> {
        let v: Versioned = serde_json::from_str(text).map_err(|e| ColdError::EventJson {
            reason: e.to_string(),
        })?;
        if v.version != EVENT_VERSION {
            return Err(ColdError::EventVersion {
                found: v.version,
                supported: EVENT_VERSION,
            });
        }
        Ok(v.event)
    }

    /// True when `event_type` is one of this crate's.
    pub fn is_cold_type(event_type: &str) -> bool {
        COLD_EVENT_TYPES.iter().any(|t| t.name == event_type)
    }
}
