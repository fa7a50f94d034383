//! The one error type of this crate. Messages name the unit, position, field or rule and
//! what to do.

use cellops_custody::{OrderId, UnitCode};
use cellops_domain::{SiteId, Timestamp};

use crate::ids::{ExcursionId, LoggerId, Position, ShipmentId, ShipperId, StorageId};
use crate::state::ShipmentStatus;

/// Every refusal of this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ColdError {
    /// field value.
    #[error("{field} {value:?} is invalid: {rule}")]
    InvalidId {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
        /// The rule.
        rule: &'static str,
    },
    /// position text.
    #[error("position {text:?} is invalid: {rule}")]
    InvalidPosition {
        /// The text.
        text: String,
        /// The rule.
        rule: String,
    },
    /// field is invalid.
    #[error("{field} is invalid: {rule}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// The rule.
        rule: String,
    },
    /// field value is invalid.
    #[error("{field} {value} is invalid: {rule}")]
    InvalidNumber {
        /// The field.
        field: &'static str,
        /// The value.
        value: f64,
        /// The rule.
        rule: String,
    },
    /// cold-chain event JSON is invalid.
    #[error("cold-chain event JSON is invalid: {reason}")]
    EventJson {
        /// The reason.
        reason: String,
    },
    /// cold-chain event version found is not supported (this build reads version supported).
    #[error(
        "cold-chain event version {found} is not supported (this build reads version {supported})"
    )]
    EventVersion {
        /// The found.
        found: u32,
        /// The supported.
        supported: u32,
    },
    /// storage storage is not configured.
    #[error("storage {storage} is not configured: configure it first (POST /api/storage)")]
    UnknownStorage {
        /// The storage.
        storage: StorageId,
    },
    /// storage storage stands at site storage_site, not at site.
    #[error(
        "storage {storage} stands at site {storage_site}, not at {site}: scan a position of your site"
    )]
    StorageAtOtherSite {
        /// The storage.
        storage: StorageId,
        /// The storage site.
        storage_site: SiteId,
        /// The site.
        site: SiteId,
    },
    /// position position does not exist (storage shape.
    #[error(
        "position {position} does not exist (storage shape: {shape}): scan a position label of this storage"
    )]
    NoSuchPosition {
        /// The position.
        position: Position,
        /// The shape.
        shape: String,
    },
    /// wrong position for unit.
    #[error(
        "wrong position for {unit}: assigned {expected}, scanned {scanned}; put the unit into {expected}"
    )]
    WrongPosition {
        /// The unit.
        unit: UnitCode,
        /// The expected.
        expected: Position,
        /// The scanned.
        scanned: Position,
    },
    /// unit is already stored at position.
    #[error("{unit} is already stored at {position}: retrieve it first")]
    AlreadyStored {
        /// The unit.
        unit: UnitCode,
        /// The position.
        position: Position,
    },
    /// position position already holds unit.
    #[error("position {position} already holds {unit}: choose a free position")]
    PositionOccupied {
        /// The position.
        position: Position,
        /// The unit.
        unit: UnitCode,
    },
    /// unit expired at expires_at.
    #[error("{unit} expired at {expires_at}: it may only be retrieved for discard")]
    Expired {
        /// The unit.
        unit: UnitCode,
        /// The expires at.
        expires_at: Timestamp,
    },
    /// storage storage is in a temperature alarm since since.
    #[error(
        "storage {storage} is in a temperature alarm since {since}: respond to the alarm first (units stay blocked until the excursion is assessed)"
    )]
    StorageInAlarm {
        /// The storage.
        storage: StorageId,
        /// The since.
        since: Timestamp,
    },
    /// unit is not in storage.
    #[error("{unit} is not in storage")]
    NotStored {
        /// The unit.
        unit: UnitCode,
    },
    /// unit is stored at actual, not at the scanned scanned.
    #[error("{unit} is stored at {actual}, not at the scanned {scanned}: take it from {actual}")]
    UnitNotAtPosition {
        /// The unit.
        unit: UnitCode,
        /// The actual.
        actual: Position,
        /// The scanned.
        scanned: Position,
    },
    /// unit passed its validated storage time at limit_at.
    #[error(
        "{unit} passed its validated storage time at {limit_at}: it may not be used (rule: storage time limit of the equipment)"
    )]
    StorageLimitExceeded {
        /// The unit.
        unit: UnitCode,
        /// The limit at.
        limit_at: Timestamp,
    },
    /// unit expires at expires_at but first at first_position expires first (first_expires_at).
    #[error(
        "{unit} expires at {expires_at} but {first} at {first_position} expires first ({first_expires_at}): take that one, or give fefo_override with a reason"
    )]
    FefoViolation {
        /// The unit.
        unit: UnitCode,
        /// The expires at.
        expires_at: Timestamp,
        /// The first.
        first: UnitCode,
        /// The first expires at.
        first_expires_at: Timestamp,
        /// The first position.
        first_position: Position,
    },
    /// field has count entries.
    #[error("{field} has {count} entries: give 1–{max}")]
    BatchSize {
        /// The field.
        field: &'static str,
        /// The count.
        count: usize,
        /// The max.
        max: usize,
    },
    /// readings[index] is invalid.
    #[error("readings[{index}] is invalid: {rule}")]
    InvalidReading {
        /// The index.
        index: usize,
        /// The rule.
        rule: String,
    },
    /// storage storage has no active alarm to acknowledge.
    #[error("storage {storage} has no active alarm to acknowledge")]
    NoActiveAlarm {
        /// The storage.
        storage: StorageId,
    },
    /// field is required and must be at most max characters.
    #[error("{field} is required and must be at most {max} characters")]
    Reason {
        /// The field.
        field: &'static str,
        /// The max.
        max: usize,
    },
    /// unit travelled in shipment shipment whose logger data has not been uploaded.
    #[error(
        "{unit} travelled in shipment {shipment} whose logger data has not been uploaded: upload the logger file (a unit is never used on incomplete cold-chain data)"
    )]
    LoggerDataMissing {
        /// The unit.
        unit: UnitCode,
        /// The shipment.
        shipment: ShipmentId,
    },
    /// unit may not be used.
    #[error("{unit} may not be used: QA rejected it after excursion {excursion}")]
    ExcursionRejected {
        /// The unit.
        unit: UnitCode,
        /// The excursion.
        excursion: ExcursionId,
    },
    /// unit is blocked by excursion excursion.
    #[error(
        "{unit} is blocked by excursion {excursion} (deviation {deviation}): QA must investigate it, assess it and close the deviation with an e-signature"
    )]
    ExcursionUnassessed {
        /// The unit.
        unit: UnitCode,
        /// The excursion.
        excursion: ExcursionId,
        /// Where its deviation stands.
        deviation: crate::DeviationState,
    },
    /// The deviation of excursion is not in the state the operation needs.
    #[error(
        "the deviation of excursion {excursion} is {state}: it must be {needed} to {operation} (investigate → assess → close)"
    )]
    DeviationState {
        /// The excursion.
        excursion: ExcursionId,
        /// Its deviation's state.
        state: crate::DeviationState,
        /// What was asked.
        operation: &'static str,
        /// The state(s) needed.
        needed: &'static str,
    },
    /// The assessment has no e-signature yet.
    #[error(
        "the assessment of excursion {excursion} (record {assessment_seq}) is not e-signed: sign it as Approved to close the deviation"
    )]
    AssessmentUnsigned {
        /// The excursion.
        excursion: ExcursionId,
        /// The assessment record.
        assessment_seq: u64,
    },
    /// excursion excursion does not exist.
    #[error("excursion {excursion} does not exist")]
    UnknownExcursion {
        /// The excursion.
        excursion: ExcursionId,
    },
    /// excursion excursion already has a signed assessment; a change needs a correction record with a reason.
    #[error(
        "excursion {excursion} already has a signed assessment; a change needs a correction record with a reason"
    )]
    AlreadyAssessed {
        /// The excursion.
        excursion: ExcursionId,
    },
    /// excursion excursion went above the reject limit.
    #[error("excursion {excursion} went above the reject limit: it can only be assessed as reject")]
    RejectLimitExceeded {
        /// The excursion.
        excursion: ExcursionId,
    },
    /// logger file line line.
    #[error("logger file line {line}: {rule}")]
    LoggerFile {
        /// The line.
        line: usize,
        /// The rule.
        rule: String,
    },
    /// shipment shipment already exists.
    #[error("shipment {shipment} already exists: choose a new id")]
    ShipmentExists {
        /// The shipment.
        shipment: ShipmentId,
    },
    /// dry shipper shipper is not qualified in the system.
    #[error("dry shipper {shipper} is not qualified in the system: record its qualification first")]
    UnknownShipper {
        /// The shipper.
        shipper: ShipperId,
    },
    /// dry shipper shipper's qualification expires at expires_at, before the planned arrival arrival.
    #[error(
        "dry shipper {shipper}'s qualification expires at {expires_at}, before the planned arrival {arrival}: use another shipper or re-qualify it"
    )]
    ShipperQualificationExpired {
        /// The shipper.
        shipper: ShipperId,
        /// The expires at.
        expires_at: Timestamp,
        /// The arrival.
        arrival: Timestamp,
    },
    /// dry shipper shipper has no recorded charge.
    #[error(
        "dry shipper {shipper} has no recorded charge: charge it with LN2 and record the charge"
    )]
    ShipperNotCharged {
        /// The shipper.
        shipper: ShipperId,
    },
    /// dry shipper shipper's current charge was used by shipment shipment.
    #[error("dry shipper {shipper}'s current charge was used by shipment {shipment}: recharge it")]
    ShipperChargeUsed {
        /// The shipper.
        shipper: ShipperId,
        /// The shipment.
        shipment: ShipmentId,
    },
    /// dry shipper shipper has remaining_hours.
    #[error(
        "dry shipper {shipper} has {remaining_hours:.1} h of hold left but the shipment needs {needed_hours:.1} h (transit + margin): recharge it or use another shipper"
    )]
    HoldTooShort {
        /// The shipper.
        shipper: ShipperId,
        /// The remaining hours.
        remaining_hours: f64,
        /// The needed hours.
        needed_hours: f64,
    },
    /// logger logger is not registered.
    #[error("logger {logger} is not registered: register it with its calibration first")]
    UnknownLogger {
        /// The logger.
        logger: LoggerId,
    },
    /// logger logger's calibration is due at due, before the planned arrival.
    #[error(
        "logger {logger}'s calibration is due at {due}, before the planned arrival: use a calibrated logger"
    )]
    LoggerCalibrationDue {
        /// The logger.
        logger: LoggerId,
        /// The due.
        due: Timestamp,
    },
    /// logger logger samples every interval_seconds s; a shipment needs an interval of 1–max s.
    #[error(
        "logger {logger} samples every {interval_seconds} s; a shipment needs an interval of 1–{max} s"
    )]
    LoggerInterval {
        /// The logger.
        logger: LoggerId,
        /// The interval seconds.
        interval_seconds: u32,
        /// The max.
        max: u32,
    },
    /// unit is still stored at position.
    #[error("{unit} is still stored at {position}: retrieve it for shipping first")]
    StillStored {
        /// The unit.
        unit: UnitCode,
        /// The position.
        position: Position,
    },
    /// unit is already in shipment shipment, not yet received.
    #[error("{unit} is already in shipment {shipment}, not yet received")]
    InOpenShipment {
        /// The unit.
        unit: UnitCode,
        /// The shipment.
        shipment: ShipmentId,
    },
    /// shipment shipment does not exist.
    #[error("shipment {shipment} does not exist")]
    UnknownShipment {
        /// The shipment.
        shipment: ShipmentId,
    },
    /// cannot operation shipment shipment.
    #[error("cannot {operation} shipment {shipment}: it is {status:?}")]
    ShipmentStatus {
        /// The shipment.
        shipment: ShipmentId,
        /// The status.
        status: ShipmentStatus,
        /// The operation.
        operation: &'static str,
    },
    /// shipment shipment already has its logger file; a replacement needs a correction record with a reason.
    #[error(
        "shipment {shipment} already has its logger file; a replacement needs a correction record with a reason"
    )]
    LoggerAlreadyUploaded {
        /// The shipment.
        shipment: ShipmentId,
    },
    /// the file is from logger found but shipment shipment carried logger expected.
    #[error(
        "the file is from logger {found} but shipment {shipment} carried logger {expected}: upload the right file"
    )]
    LoggerSerialMismatch {
        /// The shipment.
        shipment: ShipmentId,
        /// The expected.
        expected: LoggerId,
        /// The found.
        found: String,
    },
    /// shipment shipment goes to site to_site, not site.
    #[error("shipment {shipment} goes to site {to_site}, not {site}")]
    WrongDestination {
        /// The shipment.
        shipment: ShipmentId,
        /// The to site.
        to_site: SiteId,
        /// The site.
        site: SiteId,
    },
    /// lot lot is already banked.
    #[error("lot {lot} is already banked")]
    LotExists {
        /// The lot.
        lot: UnitCode,
    },
    /// field entry value.
    #[error(
        "{field} entry {value:?} is not an HLA antigen name (letters, digits, '*', ':', '-'; at most 32)"
    )]
    InvalidHla {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// unit unit is not known to custody.
    #[error("unit {unit} is not known to custody: create or derive it first")]
    UnknownUnit {
        /// The unit.
        unit: UnitCode,
    },
    /// dose dose was not made from lot lot.
    #[error("dose {dose} was not made from lot {lot}: record the split first")]
    DoseNotFromLot {
        /// The dose.
        dose: UnitCode,
        /// The lot.
        lot: UnitCode,
    },
    /// dose dose is already banked in lot lot.
    #[error("dose {dose} is already banked in lot {lot}")]
    DoseInOtherLot {
        /// The dose.
        dose: UnitCode,
        /// The lot.
        lot: UnitCode,
    },
    /// dose dose is listed twice.
    #[error("dose {dose} is listed twice")]
    DuplicateDose {
        /// The dose.
        dose: UnitCode,
    },
    /// order order already has dose dose allocated.
    #[error("order {order} already has dose {dose} allocated: cancel that allocation first")]
    OrderAllocated {
        /// The order.
        order: OrderId,
        /// The dose.
        dose: UnitCode,
    },
    /// no dose can be allocated to order order.
    #[error("no dose can be allocated to order {order}: {summary}")]
    NoDoseAvailable {
        /// The order.
        order: OrderId,
        /// The summary.
        summary: String,
    },
    /// dose dose is not allocated to order order.
    #[error("dose {dose} is not allocated to order {order}")]
    NotAllocated {
        /// The dose.
        dose: UnitCode,
        /// The order.
        order: OrderId,
    },
    /// lot lot is not banked.
    #[error("lot {lot} is not banked")]
    UnknownLot {
        /// The lot.
        lot: UnitCode,
    },
}

impl ColdError {
    /// A stable machine name for the reason (`wrong_position`, …).
    pub fn reason_code(&self) -> &'static str {
        match self {
            ColdError::InvalidId { .. } => "invalid_id",
            ColdError::InvalidPosition { .. } => "invalid_position",
            ColdError::InvalidConfig { .. } => "invalid_config",
            ColdError::InvalidNumber { .. } => "invalid_number",
            ColdError::EventJson { .. } => "event_json",
            ColdError::EventVersion { .. } => "event_version",
            ColdError::UnknownStorage { .. } => "unknown_storage",
            ColdError::StorageAtOtherSite { .. } => "storage_at_other_site",
            ColdError::NoSuchPosition { .. } => "no_such_position",
            ColdError::WrongPosition { .. } => "wrong_position",
            ColdError::AlreadyStored { .. } => "already_stored",
            ColdError::PositionOccupied { .. } => "position_occupied",
            ColdError::Expired { .. } => "expired",
            ColdError::StorageInAlarm { .. } => "storage_in_alarm",
            ColdError::NotStored { .. } => "not_stored",
            ColdError::UnitNotAtPosition { .. } => "unit_not_at_position",
            ColdError::StorageLimitExceeded { .. } => "storage_limit_exceeded",
            ColdError::FefoViolation { .. } => "fefo_violation",
            ColdError::BatchSize { .. } => "batch_size",
            ColdError::InvalidReading { .. } => "invalid_reading",
            ColdError::NoActiveAlarm { .. } => "no_active_alarm",
            ColdError::Reason { .. } => "reason",
            ColdError::LoggerDataMissing { .. } => "logger_data_missing",
            ColdError::ExcursionRejected { .. } => "excursion_rejected",
            ColdError::ExcursionUnassessed { .. } => "excursion_unassessed",
            ColdError::DeviationState { .. } => "deviation_state",
            ColdError::AssessmentUnsigned { .. } => "assessment_unsigned",
            ColdError::UnknownExcursion { .. } => "unknown_excursion",
            ColdError::AlreadyAssessed { .. } => "already_assessed",
            ColdError::RejectLimitExceeded { .. } => "reject_limit_exceeded",
            ColdError::LoggerFile { .. } => "logger_file",
            ColdError::ShipmentExists { .. } => "shipment_exists",
            ColdError::UnknownShipper { .. } => "unknown_shipper",
            ColdError::ShipperQualificationExpired { .. } => "shipper_qualification_expired",
            ColdError::ShipperNotCharged { .. } => "shipper_not_charged",
            ColdError::ShipperChargeUsed { .. } => "shipper_charge_used",
            ColdError::HoldTooShort { .. } => "hold_too_short",
            ColdError::UnknownLogger { .. } => "unknown_logger",
            ColdError::LoggerCalibrationDue { .. } => "logger_calibration_due",
            ColdError::LoggerInterval { .. } => "logger_interval",
            ColdError::StillStored { .. } => "still_stored",
            ColdError::InOpenShipment { .. } => "in_open_shipment",
            ColdError::UnknownShipment { .. } => "unknown_shipment",
            ColdError::ShipmentStatus { .. } => "shipment_status",
            ColdError::LoggerAlreadyUploaded { .. } => "logger_already_uploaded",
            ColdError::LoggerSerialMismatch { .. } => "logger_serial_mismatch",
            ColdError::WrongDestination { .. } => "wrong_destination",
            ColdError::LotExists { .. } => "lot_exists",
            ColdError::InvalidHla { .. } => "invalid_hla",
            ColdError::UnknownUnit { .. } => "unknown_unit",
            ColdError::DoseNotFromLot { .. } => "dose_not_from_lot",
            ColdError::DoseInOtherLot { .. } => "dose_in_other_lot",
            ColdError::DuplicateDose { .. } => "duplicate_dose",
            ColdError::OrderAllocated { .. } => "order_allocated",
            ColdError::NoDoseAvailable { .. } => "no_dose_available",
            ColdError::NotAllocated { .. } => "not_allocated",
            ColdError::UnknownLot { .. } => "unknown_lot",
        }
    }
}
