//! Dry shippers as qualified assets, shipment planning (hold time ≥ transit + margin),
//! dispatch, logger upload with excursion detection, and receipt.

use cellops_custody::UnitCode;
use cellops_domain::{SiteId, Timestamp, UserId};

use crate::error::ColdError;
use crate::event::{ColdEvent, ExcursionLimits, ShipmentCondition};
use crate::excursion::check_usable;
use crate::ids::{LoggerId, ShipmentId, ShipperId};
use crate::logger::{ImportedTrace, detect_excursions};
use crate::state::{ColdState, ShipmentStatus, ShipperAsset};

/// Smallest safety margin on top of the planned transit, hours.
pub const SHIPMENT_MARGIN_HOURS_MIN: f64 = 24.0;
/// Most units in one shipment.
pub const SHIPMENT_UNITS_MAX: usize = 50;
/// Longest logger interval, seconds (≤ 5 min; bioprocess.md §4, `cellops_twin::shipper`).
pub const LOGGER_INTERVAL_SECONDS_MAX: u32 =
    (cellops_twin::shipper::LOGGER_INTERVAL_MIN_MAX * 60.0) as u32;

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

/// Decides a logger upload: detects excursions against the shipment's limits (and gaps in
/// the record from dispatch on). Allowed once, after dispatch.
pub fn decide_logger_upload(
    state: &ColdState,
    shipment: &ShipmentId,
    trace: &ImportedTrace,
    file_sha256: &str,
    format: &str,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
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
    let interval = state
        .logger(&s.logger)
        .map_or(LOGGER_INTERVAL_SECONDS_MAX, |l| l.interval_seconds);
    let excursions = detect_excursions(
        &trace.samples,
        &s.limits,
        interval,
        s.dispatched_at,
        shipment.as_str(),
    );
    Ok(ColdEvent::LoggerUploaded {
        shipment: shipment.clone(),
        file_sha256: file_sha256.to_string(),
        format: format.to_string(),
        samples: trace.samples.clone(),
        warnings: trace.warnings.clone(),
        excursions,
        by: by.clone(),
        at,
    })
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
