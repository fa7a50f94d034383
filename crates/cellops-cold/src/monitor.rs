//! Storage temperature monitoring: readings, high-temperature and no-data alarms with a
//! delay, acknowledgement with a reason, and the excursion an alarm episode leaves on the
//! units stored during it.

use cellops_domain::{Timestamp, UserId};

use crate::error::ColdError;
use crate::event::{
    AlarmKind, ColdEvent, ExcursionEpisode, ExcursionKind, ExcursionSource, Reading,
};
use crate::ids::{ExcursionId, StorageId};
use crate::state::ColdState;

/// Most readings in one batch.
pub const READINGS_BATCH_MAX: usize = 1_000;
/// Longest acknowledgement reason, characters.
pub const REASON_CHARS_MAX: usize = 1_000;

const MINUTE_US: i64 = 60_000_000;

/// The alarm condition while folding a batch.
struct Fold {
    last_at: Option<Timestamp>,
    above_since: Option<Timestamp>,
    alarm: Option<(AlarmKind, Timestamp, Option<f64>)>,
    excursions_n: u32,
}

/// Decides the events for a batch of probe readings: the readings, plus any alarm raised
/// or cleared on the way, plus an excursion on the stored units for each alarm episode
/// that ended. Readings must be finite and strictly after the previous reading.
pub fn decide_readings(
    state: &ColdState,
    storage: &StorageId,
    readings: &[Reading],
) -> Result<Vec<ColdEvent>, ColdError> {
    let unit = state
        .storage(storage)
        .ok_or_else(|| ColdError::UnknownStorage {
            storage: storage.clone(),
        })?;
    if readings.is_empty() || readings.len() > READINGS_BATCH_MAX {
        return Err(ColdError::BatchSize {
            field: "readings",
            count: readings.len(),
            max: READINGS_BATCH_MAX,
        });
    }
    let rule = unit.config.rule;
    let mut fold = Fold {
        last_at: unit.last_reading.map(|r| r.at),
        above_since: unit.above_since,
        alarm: unit
            .alarm
            .as_ref()
            .map(|a| (a.kind, a.since, a.temperature_c_max)),
        excursions_n: state.storage_excursions.get(storage).copied().unwrap_or(0),
    };
    let mut events = vec![ColdEvent::TemperatureRecorded {
        storage: storage.clone(),
        readings: readings.to_vec(),
    }];
    let gap_us = i64::from(rule.reading_gap_minutes_max) * MINUTE_US;
    let delay_us = i64::from(rule.delay_minutes) * MINUTE_US;
    for (i, r) in readings.iter().enumerate() {
        if !r.temperature_c.is_finite() {
            return Err(ColdError::InvalidReading {
                index: i,
                rule: "temperature_c must be a finite number".to_string(),
            });
        }
        if let Some(last) = fold.last_at {
            if r.at <= last {
                return Err(ColdError::InvalidReading {
                    index: i,
                    rule: format!(
                        "at {} is not after the previous reading at {last} (duplicate or out of order)",
                        r.at
                    ),
                });
            }
            if r.at.unix_us() - last.unix_us() > gap_us && fold.alarm.is_none() {
                // The probe was silent: a no-data alarm, cleared by this reading.
                let raised = last.plus_us(gap_us);
                events.push(ColdEvent::AlarmRaised {
                    storage: storage.clone(),
                    kind: AlarmKind::NoData,
                    temperature_c: None,
                    since: last,
                    at: raised,
                });
                fold.alarm = Some((AlarmKind::NoData, last, None));
            }
        }
        if let Some((AlarmKind::NoData, since, _)) = fold.alarm {
            close_episode(
                state,
                storage,
                &mut fold,
                &mut events,
                ExcursionKind::DataGap,
                since,
                r.at,
                None,
            );
        }
        if r.temperature_c > rule.alarm_above_c {
            let since = *fold.above_since.get_or_insert(r.at);
            match &mut fold.alarm {
                Some((AlarmKind::HighTemperature, _, max)) => {
                    *max = Some(max.map_or(r.temperature_c, |m| m.max(r.temperature_c)));
                }
                _ if r.at.unix_us() - since.unix_us() >= delay_us => {
                    events.push(ColdEvent::AlarmRaised {
                        storage: storage.clone(),
                        kind: AlarmKind::HighTemperature,
                        temperature_c: Some(r.temperature_c),
                        since,
                        at: r.at,
                    });
                    fold.alarm = Some((AlarmKind::HighTemperature, since, Some(r.temperature_c)));
                }
                _ => {}
            }
        } else {
            fold.above_since = None;
            if let Some((AlarmKind::HighTemperature, since, max)) = fold.alarm {
                close_episode(
                    state,
                    storage,
                    &mut fold,
                    &mut events,
                    ExcursionKind::Temperature,
                    since,
                    r.at,
                    max,
                );
            }
        }
        fold.last_at = Some(r.at);
    }
    Ok(crate::deviation::with_deviations(events))
}

#[allow(clippy::too_many_arguments)]
fn close_episode(
    state: &ColdState,
    storage: &StorageId,
    fold: &mut Fold,
    events: &mut Vec<ColdEvent>,
    kind: ExcursionKind,
    start: Timestamp,
    end: Timestamp,
    temperature_c_max: Option<f64>,
) {
    events.push(ColdEvent::AlarmCleared {
        storage: storage.clone(),
        at: end,
    });
    fold.alarm = None;
    let units: Vec<_> = state
        .stored_units()
        .filter(|s| s.position.storage() == storage && s.stored_at <= end)
        .map(|s| s.unit)
        .collect();
    if units.is_empty() {
        return;
    }
    fold.excursions_n += 1;
    let excursion = ExcursionId::parse(&format!("{storage}.{}", fold.excursions_n))
        .expect("a storage id with '.' and a number is a valid excursion id");
    events.push(ColdEvent::ExcursionOpened {
        source: ExcursionSource::Storage(storage.clone()),
        episode: ExcursionEpisode {
            excursion,
            kind,
            start,
            end,
            temperature_c_max,
            reject_limit_exceeded: false,
        },
        units,
    });
}

/// Decides an acknowledgement of the active alarm of `storage` (a reason is required).
pub fn decide_acknowledge(
    state: &ColdState,
    storage: &StorageId,
    reason: &str,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
    let unit = state
        .storage(storage)
        .ok_or_else(|| ColdError::UnknownStorage {
            storage: storage.clone(),
        })?;
    if unit.alarm.is_none() {
        return Err(ColdError::NoActiveAlarm {
            storage: storage.clone(),
        });
    }
    check_reason("reason", reason)?;
    Ok(ColdEvent::AlarmAcknowledged {
        storage: storage.clone(),
        reason: reason.trim().to_string(),
        by: by.clone(),
        at,
    })
}

/// Checks a required free-text reason.
pub(crate) fn check_reason(field: &'static str, text: &str) -> Result<(), ColdError> {
    if text.trim().is_empty() || text.chars().count() > REASON_CHARS_MAX {
        return Err(ColdError::Reason {
            field,
            max: REASON_CHARS_MAX,
        });
    }
    Ok(())
}
