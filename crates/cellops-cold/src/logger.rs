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
///
/// This is the reference parser: it builds the text `Timestamp::parse` reads and words every
/// error. The import runs [`FastTime::parse`] first and only falls back to this one when the
/// fast path does not recognise the text, so errors are always this function's.
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

/// Reads `N` ASCII digits at `at` as a number; `None` when one is not a digit or the text
/// is too short.
#[inline]
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    if b.len() < at + n {
        return None;
    }
    // An index loop: the import runs unoptimised in dev builds, where iterators cost calls.
    let mut v = 0i64;
    let mut i = at;
    while i < at + n {
        let d = b[i].wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as i64;
        i += 1;
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Reads `±HH:MM` (exactly) as seconds east of UTC.
fn offset_seconds(b: &[u8]) -> Option<i64> {
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = (digits(b, 1, 2)?, digits(b, 4, 2)?);
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

/// The fast path of [`parse_time`] for the common shape
/// `YYYY-MM-DD[T ]HH:MM:SS[.fraction](Z|±HH:MM)?`, without allocating. It remembers the last
/// date it converted (consecutive samples share it). Anything it does not recognise — and
/// every error — goes to [`parse_time`], so it accepts nothing the reference refuses and
/// gives the same instant (test: `fast_time_parser_agrees_with_the_reference`).
pub(crate) struct FastTime<'a> {
    /// The offset for times without a zone, as given.
    offset: Option<&'a str>,
    /// That offset in seconds, when it has the `±HH:MM` or `Z` form.
    offset_s: Option<i64>,
    /// The last date seen and its day number.
    last_date: [u8; 10],
    last_days: i64,
}

impl<'a> FastTime<'a> {
    pub(crate) fn new(offset: Option<&'a str>) -> FastTime<'a> {
        let offset_s = offset.and_then(|o| match o {
            "Z" | "z" => Some(0),
            o => offset_seconds(o.as_bytes()),
        });
        FastTime {
            offset,
            offset_s,
            last_date: [0; 10],
            last_days: 0,
        }
    }

    /// Parses `text` (already trimmed), falling back to [`parse_time`].
    pub(crate) fn parse(&mut self, text: &str, line: usize) -> Result<Timestamp, ColdError> {
        match self.fast(text.as_bytes()) {
            Some(t) => Ok(t),
            None => parse_time(text, self.offset, line),
        }
    }

    fn fast(&mut self, b: &[u8]) -> Option<Timestamp> {
        if b.len() < 19
            || b[4] != b'-'
            || b[7] != b'-'
            || !(b[10] == b'T' || b[10] == b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let days = if b[..10] == self.last_date {
            self.last_days
        } else {
            let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
            if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
                return None;
            }
            let days = days_from_civil(year, month, day);
            self.last_date.copy_from_slice(&b[..10]);
            self.last_days = days;
            days
        };
        let (hour, minute, second) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut i = 19;
        let mut micros = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 6 {
                    micros = micros * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            let n = i - start;
            if n == 0 || n > 9 {
                return None;
            }
            for _ in n..6 {
                micros *= 10;
            }
        }
        let offset = match &b[i..] {
            [] => self.offset_s?,
            [b'Z' | b'z'] => 0,
            zone => offset_seconds(zone)?,
        };
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
        Timestamp::from_unix_us(secs.checked_mul(1_000_000)? + micros).ok()
    }
}

/// Parses a temperature field (already cleaned: no whitespace or quotes around it) and
/// converts it to °C.
fn parse_temperature(text: &str, unit: TemperatureUnit, line: usize) -> Result<f64, ColdError> {
    let v: f64 = text.parse().map_err(|_| ColdError::LoggerFile {
        line,
        rule: format!("temperature {text:?} is not a number"),
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
    if let Some(last) = trace.samples.last() {
        if r.at <= last.at {
            return out_of_order(trace, r, *last, line);
        }
    }
    if trace.samples.len() >= LOGGER_SAMPLES_MAX {
        return Err(too_many(line));
    }
    trace.samples.push(r);
    Ok(())
}

#[cold]
fn too_many(line: usize) -> ColdError {
    ColdError::LoggerFile {
        line,
        rule: format!("more than {LOGGER_SAMPLES_MAX} samples: split the file"),
    }
}

#[cold]
fn out_of_order(
    trace: &mut ImportedTrace,
    r: Reading,
    last: Reading,
    line: usize,
) -> Result<(), ColdError> {
    if trace.samples.len() >= LOGGER_SAMPLES_MAX {
        return Err(too_many(line));
    }
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
    Err(ColdError::LoggerFile {
        line,
        rule: format!(
            "time {} is before the previous sample {}: samples must be in time order",
            r.at, last.at
        ),
    })
}

/// The lines of `text` with their 1-based numbers, as `str::lines` splits them (`\n`, with
/// a `\r` before it dropped), found with `memchr`.
struct Lines<'a> {
    text: &'a str,
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines {
            text,
            pos: 0,
            number: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<(usize, &'a str)> {
        let rest = self.text.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        self.number += 1;
        let (line, advance) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        Some((self.number, line.strip_suffix('\r').unwrap_or(line)))
    }
}

/// True when a line holds only whitespace (such lines are skipped).
#[inline]
fn is_blank(line: &str) -> bool {
    match line.as_bytes().first() {
        None => true,
        // The common case: a line starting with a visible ASCII character.
        Some(c) if c.is_ascii_graphic() => false,
        Some(_) => line.trim().is_empty(),
    }
}

/// A field as the row splitter gives it: whitespace and quotes around it removed (and the
/// whitespace inside the quotes, as the value parsers trim).
#[inline]
fn clean_field(f: &str) -> &str {
    let b = f.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last))
            if first.is_ascii_graphic()
                && last.is_ascii_graphic()
                && *first != b'"'
                && *last != b'"' =>
        {
            f
        }
        _ => f.trim().trim_matches('"').trim(),
    }
}

/// The fields at `a` and `b` of a row (0-based), cleaned; `None` when the row is shorter.
#[inline]
fn two_fields(row: &str, delimiter: u8, a: usize, b: usize) -> Option<(&str, &str)> {
    let last = a.max(b);
    let (mut fa, mut fb) = (None, None);
    let mut start = 0;
    let bytes = row.as_bytes();
    for i in 0..=last {
        let end = if i == last {
            memchr::memchr(delimiter, &bytes[start..]).map_or(bytes.len(), |e| start + e)
        } else {
            start + memchr::memchr(delimiter, &bytes[start..])?
        };
        let field = &row[start..end];
        if i == a {
            fa = Some(field);
        }
        if i == b {
            fb = Some(field);
        }
        start = end + 1;
    }
    Some((clean_field(fa?), clean_field(fb?)))
}

/// Slow splitter for a delimiter that is not one ASCII byte.
fn split_row(line: &str, delimiter: char) -> Vec<&str> {
    line.split(delimiter)
        .map(|f| f.trim().trim_matches('"'))
        .collect()
}

/// Room for the samples of a file of `bytes` bytes (no row is shorter than about 20 bytes).
fn capacity_for(bytes: usize) -> usize {
    (bytes / 20 + 1).min(LOGGER_SAMPLES_MAX)
}

/// Reads the data rows after the header: fields `t_ix` and `v_ix` of each non-blank row.
fn read_rows<'a>(
    lines: impl Iterator<Item = (usize, &'a str)>,
    trace: &mut ImportedTrace,
    delimiter: char,
    (t_ix, v_ix): (usize, usize),
    offset: Option<&str>,
    unit: TemperatureUnit,
    short_row: &dyn Fn() -> String,
) -> Result<(), ColdError> {
    let mut time = FastTime::new(offset);
    let ascii = u8::try_from(delimiter).ok().filter(u8::is_ascii);
    for (line, l) in lines {
        if is_blank(l) {
            continue;
        }
        let fields = match ascii {
            Some(d) => two_fields(l, d, t_ix, v_ix),
            None => {
                let row = split_row(l, delimiter);
                row.get(t_ix)
                    .zip(row.get(v_ix))
                    .map(|(t, v)| (clean_field(t), clean_field(v)))
            }
        };
        let Some((t, v)) = fields else {
            return Err(ColdError::LoggerFile {
                line,
                rule: short_row(),
            });
        };
        let r = Reading {
            at: time.parse(t, line)?,
            temperature_c: parse_temperature(v, unit, line)?,
        };
        push_sample(trace, r, line)?;
    }
    Ok(())
}

fn import_generic(text: &str, f: &GenericCsv) -> Result<ImportedTrace, ColdError> {
    let mut lines = Lines::new(text);
    let (_, header) = lines
        .find(|(_, l)| !is_blank(l))
        .ok_or(ColdError::LoggerFile {
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
        samples: Vec::with_capacity(capacity_for(text.len())),
        warnings: Vec::new(),
    };
    read_rows(
        lines,
        &mut trace,
        f.delimiter,
        (t_ix, v_ix),
        f.utc_offset.as_deref(),
        f.unit,
        &|| format!("expected at least {} fields", t_ix.max(v_ix) + 1),
    )?;
    Ok(trace)
}

fn import_vendor_a(text: &str) -> Result<ImportedTrace, ColdError> {
    let mut serial = None;
    let mut zone: Option<String> = None;
    let mut unit = None;
    let mut lines = Lines::new(text);
    for (line, l) in lines.by_ref() {
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
                        line,
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
        samples: Vec::with_capacity(capacity_for(text.len())),
        warnings: Vec::new(),
    };
    read_rows(lines, &mut trace, ',', (1, 2), Some(&zone), unit, &|| {
        "expected No.,Time,Temperature".to_string()
    })?;
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
/// data gaps: a step between samples longer than [`ExcursionLimits::gap_seconds_max`] for a
/// logger sampling every `interval_seconds`, a first sample later than that after
/// `covered_from` (dispatch), and a last sample earlier than that before `covered_until`
/// (receipt). A gap is a finding of its own (kind `data_gap`): the temperature in it is
/// unknown, so it is never a pass. Episode ids are `<prefix>.<n>`, numbered from `first`.
pub fn detect_excursions(
    samples: &[Reading],
    limits: &ExcursionLimits,
    interval_seconds: u32,
    (covered_from, covered_until): (Option<Timestamp>, Option<Timestamp>),
    prefix: &str,
    first: usize,
) -> Vec<ExcursionEpisode> {
    let gap_us = limits.gap_seconds_max(interval_seconds) * 1_000_000;
    let mut out = Vec::new();
    let next_id = |out: &Vec<ExcursionEpisode>| {
        ExcursionId::parse(&format!("{prefix}.{}", first + out.len()))
            .expect("prefix is a valid id and '.n' keeps it valid")
    };
    let gap = |out: &mut Vec<ExcursionEpisode>, start: Timestamp, end: Timestamp| {
        let excursion = next_id(out);
        out.push(gap_episode(excursion, start, end))
    };
    if let (Some(from), Some(first)) = (covered_from, samples.first()) {
        if first.at.unix_us() - from.unix_us() > gap_us {
            gap(&mut out, from, first.at);
        }
    }
    let mut open: Option<(Timestamp, f64)> = None;
    let mut prev_at: Option<i64> = None;
    for r in samples {
        let at = r.at.unix_us();
        if let Some(p) = prev_at {
            if at - p > gap_us {
                let start = Timestamp::from_unix_us(p).expect("a sample's own instant");
                gap(&mut out, start, r.at);
            }
        }
        if r.temperature_c > limits.alarm_above_c {
            let entry = open.get_or_insert((r.at, r.temperature_c));
            entry.1 = entry.1.max(r.temperature_c);
        } else if let Some((start, max)) = open.take() {
            let id = next_id(&out);
            out.push(temperature_episode(id, start, r.at, max, limits));
        }
        prev_at = Some(at);
    }
    if let (Some((start, max)), Some(last)) = (open, samples.last()) {
        let id = next_id(&out);
        out.push(temperature_episode(id, start, last.at, max, limits));
    }
    if let (Some(until), Some(last)) = (covered_until, samples.last()) {
        if until.unix_us() - last.at.unix_us() > gap_us {
            gap(&mut out, last.at, until);
        }
    }
    out
}

/// A data-gap episode from `start` (last sample before) to `end`.
pub(crate) fn gap_episode(
    excursion: ExcursionId,
    start: Timestamp,
    end: Timestamp,
) -> ExcursionEpisode {
    ExcursionEpisode {
        excursion,
        kind: ExcursionKind::DataGap,
        start,
        end,
        temperature_c_max: None,
        reject_limit_exceeded: false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic xorshift generator (no rand dependency in a pure crate).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A time text: mostly well-formed RFC 3339 in the shapes loggers write, with random
    /// damage (digits out of range, wrong separators, odd fractions and zones).
    fn time_text(rng: &mut Rng) -> String {
        let year = [1969, 1970, 2000, 2024, 2026, 2100, 9999, 0][rng.below(8) as usize];
        let month = rng.below(14);
        let day = rng.below(33);
        let (h, m, s) = (rng.below(26), rng.below(62), rng.below(62));
        let sep = ["T", " ", "t", "_"][rng.below(4) as usize];
        let frac = match rng.below(6) {
            0 => String::new(),
            1 => ".".to_string(),
            2 => format!(".{}", rng.below(10)),
            3 => format!(".{:06}", rng.below(1_000_000)),
            4 => format!(".{:09}", rng.below(1_000_000_000)),
            _ => format!(".{:012}", rng.below(1_000_000_000_000)),
        };
        let zone = match rng.below(9) {
            0 | 1 => String::new(),
            2 => "Z".to_string(),
            3 => "z".to_string(),
            4 => format!("+{:02}:{:02}", rng.below(25), rng.below(61)),
            5 => format!("-{:02}:{:02}", rng.below(25), rng.below(61)),
            6 => "+0900".to_string(),
            7 => "+09:00 ".to_string(),
            _ => "Zx".to_string(),
        };
        let mut text =
            format!("{year:04}-{month:02}-{day:02}{sep}{h:02}:{m:02}:{s:02}{frac}{zone}");
        if rng.below(10) == 0 {
            // Damage one byte.
            let i = rng.below(text.len() as u64) as usize;
            let c = [b'/', b'9', b':', b'-', b'a'][rng.below(5) as usize];
            let mut bytes = text.into_bytes();
            bytes[i] = c;
            text = String::from_utf8(bytes).expect("ASCII");
        }
        text
    }

    #[test]
    fn fast_time_parser_agrees_with_the_reference() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let offsets = [None, Some("+09:00"), Some("Z"), Some("-05:30"), Some("+9")];
        let mut fast_hits = 0;
        for i in 0..60_000 {
            let offset = offsets[i % offsets.len()];
            let mut fast = FastTime::new(offset);
            // Twice in a row, so the remembered date is exercised too.
            for _ in 0..2 {
                let text = time_text(&mut rng);
                let reference = parse_time(&text, offset, 7);
                if fast.fast(text.as_bytes()).is_some() {
                    fast_hits += 1;
                }
                assert_eq!(fast.parse(&text, 7), reference, "{text:?} with {offset:?}");
            }
        }
        // The fast path is exercised (the generator damages most texts on purpose).
        assert!(fast_hits > 5_000, "{fast_hits}");
    }

    #[test]
    fn the_remembered_date_does_not_leak_into_another_day() {
        let mut fast = FastTime::new(None);
        let a = fast.parse("2026-02-28T23:59:00Z", 2).unwrap();
        let b = fast.parse("2026-03-01T00:00:00Z", 3).unwrap();
        assert_eq!(b.unix_us() - a.unix_us(), 60_000_000);
        assert!(fast.parse("2026-02-29T00:00:00Z", 4).is_err());
    }
}
