//! Equipment set-up: freezers and dewars, dry-shipper qualification and charges, loggers.

use cellops_domain::{SiteId, Timestamp, UserId};

use crate::error::ColdError;
use crate::event::{ColdEvent, StorageConfig};
use crate::ids::{LoggerId, POSITION_INDEX_MAX, ShipperId};
use crate::state::ColdState;

/// Most positions in one storage unit.
pub const STORAGE_POSITIONS_MAX: u32 = 100_000;
/// Longest validated hold time a shipper may claim, hours (a month).
pub const HOLD_HOURS_MAX: f64 = 24.0 * 31.0;
/// Longest free text (model, report, certificate), characters.
const LABEL_CHARS_MAX: usize = 200;

fn check_label(field: &'static str, text: &str) -> Result<(), ColdError> {
    if text.trim().is_empty() || text.chars().count() > LABEL_CHARS_MAX {
        return Err(ColdError::InvalidConfig {
            field,
            rule: format!("required, at most {LABEL_CHARS_MAX} characters"),
        });
    }
    Ok(())
}

/// Decides the configuration of a freezer or dewar. Re-configuring may not shrink it below
/// an occupied position.
pub fn decide_configure_storage(
    state: &ColdState,
    config: &StorageConfig,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
    for (field, v) in [
        ("racks", config.racks),
        ("boxes_per_rack", config.boxes_per_rack),
        ("slots_per_box", config.slots_per_box),
    ] {
        if v == 0 || v > POSITION_INDEX_MAX {
            return Err(ColdError::InvalidConfig {
                field,
                rule: format!("must be 1–{POSITION_INDEX_MAX}"),
            });
        }
    }
    let positions = u32::from(config.racks)
        * u32::from(config.boxes_per_rack)
        * u32::from(config.slots_per_box);
    if positions > STORAGE_POSITIONS_MAX {
        return Err(ColdError::InvalidConfig {
            field: "racks",
            rule: format!("racks × boxes × slots = {positions} exceeds {STORAGE_POSITIONS_MAX}"),
        });
    }
    if !config.rule.alarm_above_c.is_finite()
        || !(-200.0..=40.0).contains(&config.rule.alarm_above_c)
    {
        return Err(ColdError::InvalidConfig {
            field: "rule.alarm_above_c",
            rule: "must be a temperature between −200 and 40 °C".to_string(),
        });
    }
    if config.rule.reading_gap_minutes_max == 0 {
        return Err(ColdError::InvalidConfig {
            field: "rule.reading_gap_minutes_max",
            rule: "must be at least 1 minute".to_string(),
        });
    }
    if config.stored_days_max == 0 {
        return Err(ColdError::InvalidConfig {
            field: "stored_days_max",
            rule: "must be at least 1 day".to_string(),
        });
    }
    if let Some(outside) = state.stored_units().find(|s| {
        s.position.storage() == &config.storage
            && (s.position.rack() > config.racks
                || s.position.r#box() > config.boxes_per_rack
                || s.position.slot() > config.slots_per_box)
    }) {
        return Err(ColdError::InvalidConfig {
            field: "racks",
            rule: format!(
                "{} is stored at {}, outside the new shape",
                outside.unit, outside.position
            ),
        });
    }
    Ok(ColdEvent::StorageConfigured {
        config: config.clone(),
        by: by.clone(),
        at,
    })
}

/// Records a dry shipper's qualification.
#[allow(clippy::too_many_arguments)]
pub fn decide_qualify_shipper(
    shipper: &ShipperId,
    model: &str,
    qualification_report: &str,
    qualification_expires_at: Timestamp,
    validated_hold_hours: f64,
    site: &SiteId,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
    check_label("model", model)?;
    check_label("qualification_report", qualification_report)?;
    if !validated_hold_hours.is_finite()
        || validated_hold_hours <= 0.0
        || validated_hold_hours > HOLD_HOURS_MAX
    {
        return Err(ColdError::InvalidNumber {
            field: "validated_hold_hours",
            value: validated_hold_hours,
            rule: format!("must be > 0 and ≤ {HOLD_HOURS_MAX} h"),
        });
    }
    if qualification_expires_at <= at {
        return Err(ColdError::InvalidConfig {
            field: "qualification_expires_at",
            rule: format!("{qualification_expires_at} is not in the future"),
        });
    }
    Ok(ColdEvent::ShipperQualified {
        shipper: shipper.clone(),
        model: model.trim().to_string(),
        qualification_report: qualification_report.trim().to_string(),
        qualification_expires_at,
        validated_hold_hours,
        site: site.clone(),
        by: by.clone(),
        at,
    })
}

/// Records a charge of a qualified shipper.
pub fn decide_charge_shipper(
    state: &ColdState,
    shipper: &ShipperId,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
    let s = state
        .shipper(shipper)
        .ok_or_else(|| ColdError::UnknownShipper {
            shipper: shipper.clone(),
        })?;
    if let Some(last) = s.charges.last().filter(|l| **l > at) {
        return Err(ColdError::InvalidConfig {
            field: "at",
            rule: format!("a charge at {at} is before the last charge {last}"),
        });
    }
    Ok(ColdEvent::ShipperCharged {
        shipper: shipper.clone(),
        by: by.clone(),
        at,
    })
}

/// Registers a logger with its calibration.
pub fn decide_register_logger(
    logger: &LoggerId,
    calibration_certificate: &str,
    calibration_due: Timestamp,
    interval_seconds: u32,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
    check_label("calibration_certificate", calibration_certificate)?;
    if calibration_due <= at {
        return Err(ColdError::InvalidConfig {
            field: "calibration_due",
            rule: format!("calibration was due at {calibration_due}: recalibrate the logger"),
        });
    }
    if interval_seconds == 0 || interval_seconds > crate::shipment::LOGGER_INTERVAL_SECONDS_MAX {
        return Err(ColdError::InvalidConfig {
            field: "interval_seconds",
            rule: format!(
                "must be 1–{} s (≤ 5 min)",
                crate::shipment::LOGGER_INTERVAL_SECONDS_MAX
            ),
        });
    }
    Ok(ColdEvent::LoggerRegistered {
        logger: logger.clone(),
        calibration_certificate: calibration_certificate.trim().to_string(),
        calibration_due,
        interval_seconds,
        by: by.clone(),
        at,
    })
}
