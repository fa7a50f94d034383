//! Temperature-logger import (CSV) and excursion detection.
//!
//! Two formats: a generic `timestamp,temperature` CSV with configurable columns, delimiter,
//! unit and (for local times) a UTC offset; and the "vendor-a" export documented in
//! `docs/cold-chain.md` (a metadata block with serial, time zone and unit, then
//! `No.,Time,Temperature` rows). Times without a zone are refused unless the offset is given:
//! a logger trace is stored in UTC.

use cellops_domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::ColdError;
use crate::event::{ExcursionEpisode, ExcursionKind, ExcursionLimits, Reading};
use crate::ids::ExcursionId;

/// Most samples in one logger file (30 days at 1-minute intervals, and some).
pub const LOGGER_SAMPLES_MAX: usize = 50_000;
/// A step between samples longer than this many intervals is a gap.
pub const GAP_INTERVALS_MAX: i64 = 2;
/// Lowest possible temperature, °C (absolute zero).
const ABSOLUTE_ZERO_C: f64 = -273.15;
/// Highest plausible temperature of a cell-therapy logger, °C.
const PLAUSIBLE_C_MAX: f64 = 100.0;

/// The unit of the temperature column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemperatureUnit {
    /// °C.
    Celsius,
    /// °F.
    Fahrenheit,
    /// K.
    Kelvin,
}

impl TemperatureUnit {
    fn to_celsius(self, v: f64) -> f64 {
        match self {
            TemperatureUnit::Celsius => v,
            TemperatureUnit::Fahrenheit => (v - 32.0) * 5.0 / 9.0,
            TemperatureUnit::Kelvin => v + ABSOLUTE_ZERO_C,
        }
    }

    fn parse(text: &str) -> Option<TemperatureUnit> {
        match text
            .trim()
            .trim_start_matches('°')
            .to_ascii_lowercase()
            .as_str()
        {
            "c" | "celsius" => Some(TemperatureUnit::Celsius),
            "f" | "fahrenheit" => Some(TemperatureUnit::Fahrenheit),
            "k" | "kelvin" => Some(TemperatureUnit::Kelvin),
            _ => None,
        }
    }
}

/// The generic CSV layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenericCsv {
    /// Field delimiter (`,` or `;` or tab).
    pub delimiter: char,
    /// Header name of the time column.
    pub timestamp_column: String,
    /// Header name of the temperature column.
    pub temperature_column: String,
    /// Unit of the temperature column.
    pub unit: TemperatureUnit,
    /// UTC offset (`+09:00`) for times written without a zone; none = such times are refused.
    pub utc_offset: Option<String>,
}

impl Default for GenericCsv {
    fn default() -> GenericCsv {
        GenericCsv {
            delimiter: ',',
            timestamp_column: "timestamp".to_string(),
            temperature_column: "temperature_c".to_string(),
            unit: TemperatureUnit::Celsius,
            utc_offset: None,
        }
    }
}

/// A logger file format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "format")]
pub enum LoggerFormat {
    /// `timestamp,temperature` with configurable columns.
    Generic(GenericCsv),
    /// The "vendor-a" export (see `docs/cold-chain.md`).
    VendorA,
}

impl LoggerFormat {
    /// A short name recorded with the upload.
    pub fn name(&self) -> &'static str {
        match self {
            LoggerFormat::Generic(_) => "generic",
            LoggerFormat::VendorA => "vendor-a",
        }
    }
}

/// An imported trace.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedTrace {
    /// The logger serial, when the file names it.
    pub serial: Option<String>,
    /// Samples, strictly ascending in time, °C.
    pub samples: Vec<Reading>,
    /// Data-quality findings recorded with the upload (dropped duplicates).
    pub warnings: Vec<String>,
}

/// Parses a logger time: RFC 3339 (`T` or a space between date and time); a time without a
/// zone takes `offset` or is refused.
fn parse_time(text: &str, offset: Option<&str>, line: usize) -> Result<Timestamp, ColdError> {
    let text = text.trim();
    let mut s = text.replacen(' ', "T", 1);
    let has_zone = s.len() > 19 && {
        let tail = &s[19..];
        tail.ends_with('Z') || tail.ends_with('z') || tail.contains(['+', '-'])
    };
    if !has_zone {
        match offset {
            Some(o) => s.push_str(o),
            None => {
                return Err(ColdError::LoggerFile {
                    line,
                    rule: format!(
                        "time {text:?} has no zone: add Z or an offset to the file, or give the logger's UTC offset (utc_offset, e.g. +09:00)"
                    ),
                });
            }
        }
    }
    Timestamp::parse(&s).map_err(|e| ColdError::LoggerFile {
        line,
        rule: format!("time {text:?} is not a date-time: {e}"),
    })
}

fn parse_temperature(text: &str, unit: TemperatureUnit, line: usize) -> Result<f64, ColdError> {
    let v: f64 = text.trim().parse().map_err(|_| ColdError::LoggerFile {
        line,
        rule: format!("temperature {:?} is not a number", text.trim()),
    })?;
    let c = unit.to_celsius(v);
    if !c.is_finite() || !(ABSOLUTE_ZERO_C..=PLAUSIBLE_C_MAX).contains(&c) {
        return Err(ColdError::LoggerFile {
            line,
            rule: format!(
                "temperature {v} read as {unit:?} is {c:.1} °C, outside {ABSOLUTE_ZERO_C}–{PLAUSIBLE_C_MAX} °C: check the unit setting"
            ),
        });
    }
    Ok(c)
}

/// Adds a sample in order: a duplicate time with the same value is dropped with a warning; a
/// duplicate with another value, or a time going backwards, is refused.
fn push_sample(trace: &mut ImportedTrace, r: Reading, line: usize) -> Result<(), ColdError> {
    if trace.samples.len() >= LOGGER_SAMPLES_MAX {
        return Err(ColdError::LoggerFile {
            line,
            rule: format!("more than {LOGGER_SAMPLES_MAX} samples: split the file"),
        });
    }
    if let Some(last) = trace.samples.last() {
        if r.at == last.at {
            if r.temperature_c == last.temperature_c {
                trace
                    .warnings
                    .push(format!("line {line}: duplicate sample at {} dropped", r.at));
                return Ok(());
            }
            return Err(ColdError::LoggerFile {
                line,
                rule: format!(
                    "two different temperatures ({} and {} °C) at the same time {}: the file is inconsistent",
                    last.temperature_c, r.temperature_c, r.at
                ),
            });
        }
        if r.at < last.at {
            return Err(ColdError::LoggerFile {
                line,
                rule: format!(
                    "time {} is before the previous sample {}: samples must be in time order",
                    r.at, last.at
                ),
            });
        }
    }
    trace.samples.push(r);
    Ok(())
}

fn split_row(line: &str, delimiter: char) -> Vec<&str> {
    line.split(delimiter)
        .map(|f| f.trim().trim_matches('"'))
        .collect()
}

fn import_generic(text: &str, f: &GenericCsv) -> Result<ImportedTrace, ColdError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(ColdError::LoggerFile {
        line: 1,
        rule: "the file is empty".to_string(),
    })?;
    let header = split_row(header.trim_start_matches('\u{feff}'), f.delimiter);
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| ColdError::LoggerFile {
                line: 1,
                rule: format!("no column {name:?} in the header {header:?}: set the column names"),
            })
    };
    let (t_ix, v_ix) = (column(&f.timestamp_column)?, column(&f.temperature_column)?);
    let mut trace = ImportedTrace {
        serial: None,
        samples: Vec::new(),
        warnings: Vec::new(),
    };
    for (i, l) in lines {
        let line = i + 1;
        let row = split_row(l, f.delimiter);
        let (Some(t), Some(v)) = (row.get(t_ix), row.get(v_ix)) else {
            return Err(ColdError::LoggerFile {
                line,
                rule: format!("expected at least {} fields", t_ix.max(v_ix) + 1),
            });
        };
        let r = Reading {
            at: parse_time(t, f.utc_offset.as_deref(), line)?,
            temperature_c: parse_temperature(v, f.unit, line)?,
        };
        push_sample(&mut trace, r, line)?;
    }
    Ok(trace)
}

fn import_vendor_a(text: &str) -> Result<ImportedTrace, ColdError> {
    let mut serial = None;
    let mut zone: Option<String> = None;
    let mut unit = None;
    let mut lines = text.lines().enumerate();
    for (i, l) in lines.by_ref() {
        let row = split_row(l.trim_start_matches('\u{feff}'), ',');
        match row.first().map(|k| k.to_ascii_lowercase()).as_deref() {
            Some("serial") => serial = row.get(1).map(|s| s.to_string()),
            Some("time zone") => {
                let z = row.get(1).copied().unwrap_or_default();
                let offset = z.strip_prefix("UTC").unwrap_or(z);
                zone = Some(if offset.is_empty() {
                    "Z".to_string()
                } else {
                    offset.to_string()
                });
            }
            Some("unit") => {
                unit = Some(row.get(1).and_then(|u| TemperatureUnit::parse(u)).ok_or(
                    ColdError::LoggerFile {
                        line: i + 1,
                        rule: "unit must be °C, °F or K".to_string(),
                    },
                )?)
            }
            Some("no.") => break,
            _ => {}
        }
    }
    let zone = zone.ok_or(ColdError::LoggerFile {
        line: 1,
        rule: "vendor-a file has no 'Time zone' line: local times without a zone cannot be stored in UTC".to_string(),
    })?;
    let unit = unit.ok_or(ColdError::LoggerFile {
        line: 1,
        rule: "vendor-a file has no 'Unit' line".to_string(),
    })?;
    let mut trace = ImportedTrace {
        serial,
        samples: Vec::new(),
        warnings: Vec::new(),
    };
    for (i, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        let line = i + 1;
        let row = split_row(l, ',');
        let (Some(t), Some(v)) = (row.get(1), row.get(2)) else {
            return Err(ColdError::LoggerFile {
                line,
                rule: "expected No.,Time,Temperature".to_string(),
            });
        };
        let r = Reading {
            at: parse_time(t, Some(&zone), line)?,
            temperature_c: parse_temperature(v, unit, line)?,
        };
        push_sample(&mut trace, r, line)?;
    }
    Ok(trace)
}

/// Imports a logger file. Errors name the line and the fix.
pub fn import_csv(text: &str, format: &LoggerFormat) -> Result<ImportedTrace, ColdError> {
    let trace = match format {
        LoggerFormat::Generic(f) => import_generic(text, f)?,
        LoggerFormat::VendorA => import_vendor_a(text)?,
    };
    if trace.samples.is_empty() {
        return Err(ColdError::LoggerFile {
            line: 1,
            rule: "no samples in the file".to_string(),
        });
    }
    Ok(trace)
}

/// Finds excursion episodes in `samples` (ascending): runs above `limits.alarm_above_c`, and
/// gaps longer than [`GAP_INTERVALS_MAX`] × `interval_seconds` (including a late first sample
/// after `covered_from`). Episode ids are `<prefix>.<n>`.
pub fn detect_excursions(
    samples: &[Reading],
    limits: &ExcursionLimits,
    interval_seconds: u32,
    covered_from: Option<Timestamp>,
    prefix: &str,
) -> Vec<ExcursionEpisode> {
    let gap_us = GAP_INTERVALS_MAX * i64::from(interval_seconds.max(1)) * 1_000_000;
    let mut out = Vec::new();
    let next_id = |out: &Vec<ExcursionEpisode>| {
        ExcursionId::parse(&format!("{prefix}.{}", out.len() + 1))
            .expect("prefix is a valid id and '.n' keeps it valid")
    };
    let gap = |out: &mut Vec<ExcursionEpisode>, id, start, end| {
        out.push(ExcursionEpisode {
            excursion: id,
            kind: ExcursionKind::DataGap,
            start,
            end,
            temperature_c_max: None,
            reject_limit_exceeded: false,
        })
    };
    if let (Some(from), Some(first)) = (covered_from, samples.first()) {
        if first.at.unix_us() - from.unix_us() > gap_us {
            let id = next_id(&out);
            gap(&mut out, id, from, first.at);
        }
    }
    let mut open: Option<(Timestamp, f64)> = None;
    let mut prev: Option<&Reading> = None;
    for r in samples {
        if let Some(p) = prev {
            if r.at.unix_us() - p.at.unix_us() > gap_us {
                let id = next_id(&out);
                gap(&mut out, id, p.at, r.at);
            }
        }
        if r.temperature_c > limits.alarm_above_c {
            let entry = open.get_or_insert((r.at, r.temperature_c));
            entry.1 = entry.1.max(r.temperature_c);
        } else if let Some((start, max)) = open.take() {
            let id = next_id(&out);
            out.push(temperature_episode(id, start, r.at, max, limits));
        }
        prev = Some(r);
    }
    if let (Some((start, max)), Some(last)) = (open, samples.last()) {
        let id = next_id(&out);
        out.push(temperature_episode(id, start, last.at, max, limits));
    }
    out
}

fn temperature_episode(
    excursion: ExcursionId,
    start: Timestamp,
    end: Timestamp,
    max: f64,
    limits: &ExcursionLimits,
) -> ExcursionEpisode {
    ExcursionEpisode {
        excursion,
        kind: ExcursionKind::Temperature,
        start,
        end,
        temperature_c_max: Some(max),
        reject_limit_exceeded: max > limits.reject_above_c,
    }
}
