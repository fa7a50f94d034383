//! Dry shippers as qualified assets, shipment planning (hold time ≥ transit + margin),
//! dispatch, logger upload with excursion detection, and receipt.

use cellops_custody::UnitCode;
use cellops_domain::{SiteId, Timestamp, UserId};

use serde::Serialize;

use crate::deviation::with_deviations;
use crate::error::ColdError;
use crate::event::{ColdEvent, ExcursionLimits, ExcursionSource, ShipmentCondition};
use crate::excursion::check_usable;
use crate::ids::{ExcursionId, LoggerId, ShipmentId, ShipperId};
use crate::logger::{ImportedTrace, detect_excursions, gap_episode};
use crate::state::{ColdState, Shipment, ShipmentStatus, ShipperAsset};

/// Smallest safety margin on top of the planned transit, hours.
pub const SHIPMENT_MARGIN_HOURS_MIN: f64 = 24.0;
/// Most units in one shipment.
pub const SHIPMENT_UNITS_MAX: usize = 50;
/// Longest logger interval, seconds (≤ 5 min; bioprocess.md §4, `cellops_twin::shipper`).
pub const LOGGER_INTERVAL_SECONDS_MAX: u32 =
    (cellops_twin::shipper::LOGGER_INTERVAL_MIN_MAX * 60.0) as u32;

/// Longest configurable data gap of a shipment, minutes (a day).
pub const GAP_MINUTES_MAX: u32 = 24 * 60;

const HOUR_US: f64 = 3_600e6;

/// Pack units into a shipper with a logger.
#[derive(Debug, Clone, PartialEq)]
pub struct PackShipment {
    /// New shipment id.
    pub shipment: ShipmentId,
    /// The units (already retrieved from storage for shipping).
    pub units: Vec<UnitCode>,
    /// The dry shipper.
    pub shipper: ShipperId,
    /// The logger.
    pub logger: LoggerId,
    /// From.
    pub from_site: SiteId,
    /// To.
    pub to_site: SiteId,
    /// Planned transit, hours.
    pub transit_hours: f64,
    /// Safety margin, hours (≥ [`SHIPMENT_MARGIN_HOURS_MIN`]).
    pub margin_hours: f64,
    /// The product's limits.
    pub limits: ExcursionLimits,
    /// Who.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// Hold time left on the shipper's current charge at `at`, hours; none when never charged.
pub fn hold_remaining_hours(shipper: &ShipperAsset, at: Timestamp) -> Option<f64> {
    let charged = *shipper.charges.last()?;
    let elapsed_h = (at.unix_us() - charged.unix_us()) as f64 / HOUR_US;
    Some(shipper.validated_hold_hours - elapsed_h.max(0.0))
}

fn check_hours(field: &'static str, v: f64, min: f64) -> Result<(), ColdError> {
    if !v.is_finite() || v < min {
        return Err(ColdError::InvalidNumber {
            field,
            value: v,
            rule: format!("must be a number ≥ {min}"),
        });
    }
    Ok(())
}

/// Decides packing: the shipper is qualified until after arrival, charged, its charge not
/// used by another shipment, and its remaining hold ≥ transit + margin; the logger is
/// calibrated until after arrival and samples every ≤ 5 min; every unit is out of storage,
/// in no open shipment and free of excursion blocks.
pub fn decide_pack(state: &ColdState, c: &PackShipment) -> Result<ColdEvent, ColdError> {
    check_hours("transit_hours", c.transit_hours, f64::MIN_POSITIVE)?;
    check_hours("margin_hours", c.margin_hours, SHIPMENT_MARGIN_HOURS_MIN)?;
    if state.shipment(&c.shipment).is_some() {
        return Err(ColdError::ShipmentExists {
            shipment: c.shipment.clone(),
        });
    }
    if c.units.is_empty() || c.units.len() > SHIPMENT_UNITS_MAX {
        return Err(ColdError::BatchSize {
            field: "units",
            count: c.units.len(),
            max: SHIPMENT_UNITS_MAX,
        });
    }
    let arrival = c.at.plus_us((c.transit_hours * HOUR_US) as i64);
    let shipper = state
        .shipper(&c.shipper)
        .ok_or_else(|| ColdError::UnknownShipper {
            shipper: c.shipper.clone(),
        })?;
    if shipper.qualification_expires_at <= arrival {
        return Err(ColdError::ShipperQualificationExpired {
            shipper: c.shipper.clone(),
            expires_at: shipper.qualification_expires_at,
            arrival,
        });
    }
    let remaining =
        hold_remaining_hours(shipper, c.at).ok_or_else(|| ColdError::ShipperNotCharged {
            shipper: c.shipper.clone(),
        })?;
    if let Some(other) = &shipper.charge_used_by {
        return Err(ColdError::ShipperChargeUsed {
            shipper: c.shipper.clone(),
            shipment: other.clone(),
        });
    }
    if remaining < c.transit_hours + c.margin_hours {
        return Err(ColdError::HoldTooShort {
            shipper: c.shipper.clone(),
            remaining_hours: remaining,
            needed_hours: c.transit_hours + c.margin_hours,
        });
    }
    let logger = state
        .logger(&c.logger)
        .ok_or_else(|| ColdError::UnknownLogger {
            logger: c.logger.clone(),
        })?;
    if logger.calibration_due <= arrival {
        return Err(ColdError::LoggerCalibrationDue {
            logger: c.logger.clone(),
            due: logger.calibration_due,
        });
    }
    if logger.interval_seconds == 0 || logger.interval_seconds > LOGGER_INTERVAL_SECONDS_MAX {
        return Err(ColdError::LoggerInterval {
            logger: c.logger.clone(),
            interval_seconds: logger.interval_seconds,
            max: LOGGER_INTERVAL_SECONDS_MAX,
        });
    }
    if let Some(m) = c.limits.gap_minutes_max {
        let min = logger.interval_seconds.div_ceil(60);
        if m < min || m > GAP_MINUTES_MAX {
            return Err(ColdError::InvalidNumber {
                field: "gap_minutes_max",
                value: f64::from(m),
                rule: format!(
                    "must be from the logger's interval ({min} min) to {GAP_MINUTES_MAX} min"
                ),
            });
        }
    }
    for unit in &c.units {
        if let Some(s) = state.stored(unit) {
            return Err(ColdError::StillStored {
                unit: *unit,
                position: s.position.clone(),
            });
        }
        if let Some(open) = state
            .shipments()
            .find(|s| s.status != ShipmentStatus::Received && s.units.contains(unit))
        {
            return Err(ColdError::InOpenShipment {
                unit: *unit,
                shipment: open.shipment.clone(),
            });
        }
        check_usable(state, unit)?;
    }
    Ok(ColdEvent::ShipmentPacked {
        shipment: c.shipment.clone(),
        units: c.units.clone(),
        shipper: c.shipper.clone(),
        logger: c.logger.clone(),
        from_site: c.from_site.clone(),
        to_site: c.to_site.clone(),
        transit_hours: c.transit_hours,
        margin_hours: c.margin_hours,
        hold_remaining_hours: remaining,
        limits: c.limits,
        by: c.by.clone(),
        at: c.at,
    })
}

fn shipment_in(
    state: &ColdState,
    id: &ShipmentId,
    allowed: &[ShipmentStatus],
    operation: &'static str,
) -> Result<(), ColdError> {
    let s = state
        .shipment(id)
        .ok_or_else(|| ColdError::UnknownShipment {
            shipment: id.clone(),
        })?;
    if !allowed.contains(&s.status) {
        return Err(ColdError::ShipmentStatus {
            shipment: id.clone(),
            status: s.status,
            operation,
        });
    }
    Ok(())
}

/// Decides dispatch (the shipment must be packed).
pub fn decide_dispatch(
    state: &ColdState,
    shipment: &ShipmentId,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
    shipment_in(state, shipment, &[ShipmentStatus::Packed], "dispatch")?;
    Ok(ColdEvent::ShipmentDispatched {
        shipment: shipment.clone(),
        by: by.clone(),
        at,
    })
}

/// Decides a logger upload: detects excursions against the shipment's limits, including
/// data gaps from dispatch on and, when the shipment was already received, up to receipt.
/// Allowed once, after dispatch. Returns `shipment.logger_uploaded` and one
/// `excursion.deviation_opened` per episode.
pub fn decide_logger_upload(
    state: &ColdState,
    shipment: &ShipmentId,
    trace: &ImportedTrace,
    file_sha256: &str,
    format: &str,
    by: &UserId,
    at: Timestamp,
) -> Result<Vec<ColdEvent>, ColdError> {
    shipment_in(
        state,
        shipment,
        &[ShipmentStatus::Dispatched, ShipmentStatus::Received],
        "upload logger data for",
    )?;
    let s = state.shipment(shipment).expect("checked above");
    if s.logger_file_sha256.is_some() {
        return Err(ColdError::LoggerAlreadyUploaded {
            shipment: shipment.clone(),
        });
    }
    if let Some(serial) = &trace.serial {
        if serial != s.logger.as_str() {
            return Err(ColdError::LoggerSerialMismatch {
                shipment: shipment.clone(),
                expected: s.logger.clone(),
                found: serial.clone(),
            });
        }
    }
    let interval = logger_interval(state, s);
    let excursions = detect_excursions(
        &trace.samples,
        &s.limits,
        interval,
        (s.dispatched_at, s.received.as_ref().map(|r| r.2)),
        shipment.as_str(),
        shipment_excursions(state, shipment) + 1,
    );
    Ok(with_deviations(vec![ColdEvent::LoggerUploaded {
        shipment: shipment.clone(),
        file_sha256: file_sha256.to_string(),
        format: format.to_string(),
        samples: trace.samples.clone(),
        warnings: trace.warnings.clone(),
        excursions,
        by: by.clone(),
        at,
    }]))
}

fn logger_interval(state: &ColdState, s: &Shipment) -> u32 {
    state
        .logger(&s.logger)
        .map_or(LOGGER_INTERVAL_SECONDS_MAX, |l| l.interval_seconds)
}

fn shipment_excursions(state: &ColdState, shipment: &ShipmentId) -> usize {
    state
        .excursions()
        .filter(|(_, e)| matches!(&e.source, ExcursionSource::Shipment(s) if s == shipment))
        .count()
}

/// The data gap between a shipment's logger data and its receipt at `at`: when the data
/// was uploaded before receipt and its last sample is longer than the gap limit before
/// `at`, an `excursion.opened` (kind `data_gap`) with its deviation. Nothing otherwise
/// (without data the shipment is blocked as `logger_data_missing` until the upload, which
/// then looks for this gap itself).
pub fn decide_receipt_gap(
    state: &ColdState,
    shipment: &ShipmentId,
    at: Timestamp,
) -> Vec<ColdEvent> {
    let Some(s) = state.shipment(shipment) else {
        return Vec::new();
    };
    let Some(last) = s.last_sample_at else {
        return Vec::new();
    };
    let gap_us = s.limits.gap_seconds_max(logger_interval(state, s)) * 1_000_000;
    if at.unix_us() - last.unix_us() <= gap_us {
        return Vec::new();
    }
    let n = shipment_excursions(state, shipment) + 1;
    let id = ExcursionId::parse(&format!("{shipment}.{n}"))
        .expect("a shipment id with '.' and a number is a valid excursion id");
    with_deviations(vec![ColdEvent::ExcursionOpened {
        source: ExcursionSource::Shipment(shipment.clone()),
        episode: gap_episode(id, last, at),
        units: s.units.clone(),
    }])
}

/// Why the watchdog flags a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceReason {
    /// In transit and no logger data since dispatch.
    NoDataSinceDispatch,
    /// In transit and the uploaded data ends too long ago.
    DataEnded,
    /// Received without any logger data (its units are blocked).
    ReceivedWithoutData,
}

/// A shipment the logger watchdog flags.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggerSilence {
    /// The shipment.
    pub shipment: ShipmentId,
    /// Why.
    pub reason: SilenceReason,
    /// Its status.
    pub status: ShipmentStatus,
    /// The last instant the temperature is known at: the last sample, else dispatch.
    pub known_until: Timestamp,
    /// How long nothing has been known, minutes, at the evaluation instant.
    pub silent_minutes: f64,
    /// Planned arrival (dispatch + transit).
    pub planned_arrival: Timestamp,
    /// True when the planned arrival has passed.
    pub overdue: bool,
}

/// The logger watchdog, evaluated at `now`: every dispatched shipment whose temperature has
/// not been known for longer than `silence_minutes_max` — in transit with no logger data
/// since dispatch, or with data ending that long ago — and every received shipment without
/// logger data. Longest silence first.
pub fn logger_watchdog(
    state: &ColdState,
    now: Timestamp,
    silence_minutes_max: u32,
) -> Vec<LoggerSilence> {
    let max_us = i64::from(silence_minutes_max) * 60_000_000;
    let mut out: Vec<LoggerSilence> = state
        .shipments()
        .filter_map(|s| {
            let dispatched = s.dispatched_at?;
            let known_until = s.last_sample_at.unwrap_or(dispatched);
            let silent_us = now.unix_us() - known_until.unix_us();
            let reason = match (s.status, s.last_sample_at) {
                (ShipmentStatus::Received, None) => SilenceReason::ReceivedWithoutData,
                (ShipmentStatus::Dispatched, None) if silent_us > max_us => {
                    SilenceReason::NoDataSinceDispatch
                }
                (ShipmentStatus::Dispatched, Some(_)) if silent_us > max_us => {
                    SilenceReason::DataEnded
                }
                _ => return None,
            };
            let planned_arrival = dispatched.plus_us((s.transit_hours * HOUR_US) as i64);
            Some(LoggerSilence {
                shipment: s.shipment.clone(),
                reason,
                status: s.status,
                known_until,
                silent_minutes: silent_us.max(0) as f64 / 60e6,
                planned_arrival,
                overdue: now > planned_arrival,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.silent_minutes
            .total_cmp(&a.silent_minutes)
            .then_with(|| a.shipment.cmp(&b.shipment))
    });
    out
}

/// Decides receipt at the destination site (the shipment must be dispatched). The condition
/// is recorded as found; excursions and missing logger data block use, not receipt.
pub fn decide_receive(
    state: &ColdState,
    shipment: &ShipmentId,
    site: &SiteId,
    condition: &ShipmentCondition,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
    shipment_in(state, shipment, &[ShipmentStatus::Dispatched], "receive")?;
    let s = state.shipment(shipment).expect("checked above");
    if &s.to_site != site {
        return Err(ColdError::WrongDestination {
            shipment: shipment.clone(),
            to_site: s.to_site.clone(),
            site: site.clone(),
        });
    }
    if condition.note.chars().count() > cellops_custody::NOTE_CHARS_MAX {
        return Err(ColdError::Reason {
            field: "condition.note",
            max: cellops_custody::NOTE_CHARS_MAX,
        });
    }
    Ok(ColdEvent::ShipmentReceived {
        shipment: shipment.clone(),
        condition: condition.clone(),
        by: by.clone(),
        at,
    })
}
