//! Cryo storage, cold chain and the allogeneic dose bank, the pure domain core (issue 8,
//! items 5, 6 and 7).
//!
//! - Storage: [`StorageConfig`] (freezers and dewars → racks → boxes → slots, [`Position`]),
//!   [`decide_put_away`] and [`decide_retrieve`] by scan (wrong position, occupied, expired,
//!   storage limit, first-expiry-first-out via [`fefo_queue`]), [`storage_review`].
//! - Monitoring: [`decide_readings`] raises and clears high-temperature and no-data alarms
//!   (with a delay) and opens an excursion on the units stored during an episode;
//!   [`decide_acknowledge`].
//! - Shipping: qualified dry shippers with a charge log, [`decide_pack`] (hold time ≥ transit plus
//!   margin, qualification and logger calibration valid until arrival), [`decide_dispatch`],
//!   [`import_csv`] (generic and vendor-a logger files), [`decide_logger_upload`] with
//!   [`detect_excursions`], [`decide_receive`].
//!   [`decide_receipt_gap`] (data ending long before receipt), [`logger_watchdog`] (shipments
//!   whose temperature has not been known for too long, at an injected now).
//! - Excursions and their deviations: every excursion (temperature or data gap) opens a
//!   deviation ([`with_deviations`]) that QA works through: [`decide_investigate`],
//!   [`decide_assess`], e-signature, [`decide_close`]; [`check_usable`]: an excursion whose
//!   deviation is not closed, a rejected one, or missing logger data, is a hard stop.
//! - Dose bank: [`decide_register_lot`], [`decide_allocate`] (released, unallocated, stored,
//!   not expiring before the need, no excursion, HLA-compatible, first expiry first),
//!   [`decide_cancel_allocation`], [`recall_lot`].
//!
//! Every `decide_*` is a pure function of the state and a command (time and actor inside)
//! returning [`ColdEvent`]s or a [`ColdError`] naming the field or rule and the fix;
//! [`ColdState::apply`] is total.
//!
//! Architecture invariant: no IO, no clock, no randomness; depends on `cellops-domain`,
//! `cellops-isbt`, `cellops-custody` (unit codes and custody status), `cellops-twin` (the
//! dry-shipper model and its limits), serde and thiserror.

mod bank;
mod config;
pub mod demo;
mod deviation;
mod error;
mod event;
mod excursion;
mod ids;
mod logger;
mod monitor;
mod shipment;
mod state;
mod storage;

pub use bank::{
    DoseOrder, DoseRecall, HLA_ENTRIES_MAX, LOT_DOSES_MAX, LotRecall, RegisterLot, decide_allocate,
    decide_cancel_allocation, decide_register_lot, recall_lot,
};
pub use config::{
    HOLD_HOURS_MAX, STORAGE_POSITIONS_MAX, decide_charge_shipper, decide_configure_storage,
    decide_qualify_shipper, decide_register_logger,
};
pub use deviation::{
    Closure, Deviation, DeviationState, Investigation, decide_close, decide_investigate,
    with_deviations,
};
pub use error::ColdError;
pub use event::{
    AlarmKind, AlarmRule, AssessmentDecision, BankDose, COLD_EVENT_TYPES, ColdEvent, EVENT_VERSION,
    ExcursionEpisode, ExcursionKind, ExcursionLimits, ExcursionSource, Reading, RetrievePurpose,
    ShipmentCondition, StorageConfig, StorageKind,
};
pub use excursion::{check_usable, decide_assess};
pub use ids::{
    ExcursionId, LoggerId, POSITION_INDEX_MAX, Position, ShipmentId, ShipperId, StorageId,
    TEXT_ID_BYTES_MAX,
};
pub use logger::{
    GAP_INTERVALS_MAX, GenericCsv, ImportedTrace, LOGGER_SAMPLES_MAX, LoggerFormat,
    TemperatureUnit, detect_excursions, import_csv,
};
pub use monitor::{READINGS_BATCH_MAX, REASON_CHARS_MAX, decide_acknowledge, decide_readings};
pub use shipment::{
    GAP_MINUTES_MAX, LOGGER_INTERVAL_SECONDS_MAX, LoggerSilence, PackShipment,
    SHIPMENT_MARGIN_HOURS_MIN, SHIPMENT_UNITS_MAX, SilenceReason, decide_dispatch,
    decide_logger_upload, decide_pack, decide_receipt_gap, decide_receive, hold_remaining_hours,
    logger_watchdog,
};
pub use state::{
    ActiveAlarm, Allocation, Assessment, ColdState, Excursion, LoggerAsset, Lot, Shipment,
    ShipmentStatus, ShipperAsset, StorageUnit, Stored,
};
pub use storage::{
    PutAway, Refusal, Retrieve, ReviewReason, decide_put_away, decide_retrieve, fefo_queue,
    storage_review, suggest_position,
};
