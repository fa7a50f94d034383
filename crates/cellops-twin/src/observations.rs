//! A batch's observations so far, parsed from CSV text whose header names carry units
//! (`time_h`, `viable_cells_per_ml`, `viability_percent`, …). Parsing is pure: the caller
//! reads the file. Errors name the row (1-based line, header = 1) and the column.

use crate::error::TwinError;

/// Most observation rows accepted.
pub const OBSERVATIONS_MAX: usize = 10_000;

/// One observation, in canonical units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Hours since seeding.
    pub time_h: f64,
    /// Viable cells per mL.
    pub viable_cells_per_ml: f64,
    /// Working volume, mL, if measured.
    pub volume_ml: Option<f64>,
    /// Viability, fraction 0..1, if measured.
    pub viability: Option<f64>,
    /// CAR+ fraction 0..1, if measured.
    pub car_pos_fraction: Option<f64>,
    /// Glucose, mM, if measured.
    pub glucose_mm: Option<f64>,
    /// Lactate, mM, if measured.
    pub lactate_mm: Option<f64>,
}

/// Observations in strictly ascending time, each value checked. Private field: only
/// [`Observations::new`] and [`parse_csv`] build it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    rows: Vec<Observation>,
}

impl Observations {
    /// Checks order (strictly ascending time), ranges and count, naming row and column.
    /// Rows are numbered from 2 as if a header were row 1.
    pub fn new(rows: Vec<Observation>) -> Result<Observations, TwinError> {
        if rows.is_empty() {
            return Err(obs_err(
                1,
                "time_h",
                "no observations: give at least one row",
            ));
        }
        if rows.len() > OBSERVATIONS_MAX {
            return Err(obs_err(
                rows.len() + 1,
                "time_h",
                &format!("more than OBSERVATIONS_MAX = {OBSERVATIONS_MAX} rows"),
            ));
        }
        let mut prev: Option<f64> = None;
        for (i, r) in rows.iter().enumerate() {
            let row = i + 2;
            non_negative(row, "time_h", r.time_h)?;
            non_negative(row, "viable_cells_per_ml", r.viable_cells_per_ml)?;
            if r.viable_cells_per_ml == 0.0 {
                return Err(obs_err(
                    row,
                    "viable_cells_per_ml",
                    "must be > 0 (the fit works on log counts)",
                ));
            }
            for (name, v) in [
                ("volume_ml", r.volume_ml),
                ("glucose_mm", r.glucose_mm),
                ("lactate_mm", r.lactate_mm),
            ] {
                if let Some(v) = v {
                    non_negative(row, name, v)?;
                }
            }
            for (name, v) in [
                ("viability", r.viability),
                ("car_pos_fraction", r.car_pos_fraction),
            ] {
                if let Some(v) = v
                    && !(v.is_finite() && (0.0..=1.0).contains(&v))
                {
                    return Err(obs_err(
                        row,
                        name,
                        &format!("{v} is not a fraction in [0, 1]"),
                    ));
                }
            }
            if let Some(p) = prev
                && r.time_h <= p
            {
                return Err(obs_err(
                    row,
                    "time_h",
                    &format!(
                        "{} h is not after the previous row's {p} h (rule: rows in strictly ascending time)",
                        r.time_h
                    ),
                ));
            }
            prev = Some(r.time_h);
        }
        Ok(Observations { rows })
    }

    /// The rows, ascending in time.
    pub fn rows(&self) -> &[Observation] {
        &self.rows
    }

    /// The latest observed CAR+ fraction, if any row has one.
    pub fn latest_car_pos_fraction(&self) -> Option<f64> {
        self.rows.iter().rev().find_map(|r| r.car_pos_fraction)
    }
}

fn obs_err(row: usize, column: &str, problem: &str) -> TwinError {
    TwinError::Observation {
        row,
        column: column.to_string(),
        problem: problem.to_string(),
    }
}

fn non_negative(row: usize, column: &str, v: f64) -> Result<(), TwinError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(obs_err(row, column, &format!("{v} must be finite and ≥ 0")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quantity {
    Time,
    ViableDensity,
    Volume,
    Viability,
    CarPos,
    Glucose,
    Lactate,
}

/// Accepted column names: (name, quantity, factor to the canonical unit).
const COLUMNS: [(&str, Quantity, f64); 16] = [
    ("time_h", Quantity::Time, 1.0),
    ("time_d", Quantity::Time, 24.0),
    ("time_min", Quantity::Time, 1.0 / 60.0),
    ("viable_cells_per_ml", Quantity::ViableDensity, 1.0),
    ("viable_1e6_cells_per_ml", Quantity::ViableDensity, 1e6),
    ("volume_ml", Quantity::Volume, 1.0),
    ("volume_l", Quantity::Volume, 1000.0),
    ("viability_percent", Quantity::Viability, 0.01),
    ("viability_fraction", Quantity::Viability, 1.0),
    ("car_pos_percent", Quantity::CarPos, 0.01),
    ("car_pos_fraction", Quantity::CarPos, 1.0),
    ("glucose_mm", Quantity::Glucose, 1.0),
    // 180.16 g/mol.
    ("glucose_g_per_l", Quantity::Glucose, 1000.0 / 180.16),
    ("lactate_mm", Quantity::Lactate, 1.0),
    // 90.08 g/mol.
    ("lactate_g_per_l", Quantity::Lactate, 1000.0 / 90.08),
    ("viable_cells_per_l", Quantity::ViableDensity, 1e-3),
];

/// Column stems without a unit, for the "missing unit" message.
const STEMS: [&str; 7] = [
    "time",
    "viable_cells",
    "volume",
    "viability",
    "car_pos",
    "glucose",
    "lactate",
];

fn accepted_for(stem: &str) -> String {
    COLUMNS
        .iter()
        .filter(|(n, _, _)| n.starts_with(stem))
        .map(|(n, _, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_header(line: &str) -> Result<Vec<(Quantity, f64, String)>, TwinError> {
    let mut cols: Vec<(Quantity, f64, String)> = Vec::new();
    for raw in line.split(',') {
        let name = raw.trim().to_ascii_lowercase();
        let Some(&(_, q, f)) = COLUMNS.iter().find(|(n, _, _)| *n == name) else {
            let problem = match STEMS
                .iter()
                .find(|s| name == **s || name.starts_with(&format!("{s}_")))
            {
                Some(stem) => format!("no recognised unit; write one of: {}", accepted_for(stem)),
                None => format!(
                    "unknown column; accepted: {}",
                    COLUMNS.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
                ),
            };
            return Err(obs_err(1, &name, &problem));
        };
        if let Some((_, _, other)) = cols.iter().find(|(cq, _, _)| *cq == q) {
            return Err(obs_err(
                1,
                &name,
                &format!("same quantity as column {other:?}; keep one"),
            ));
        }
        cols.push((q, f, name));
    }
    for (q, name) in [
        (Quantity::Time, "time_h"),
        (Quantity::ViableDensity, "viable_cells_per_ml"),
    ] {
        if !cols.iter().any(|(cq, _, _)| *cq == q) {
            return Err(obs_err(1, name, "required column is missing"));
        }
    }
    Ok(cols)
}

/// Parses CSV text: a header of unit-carrying names, then one row per observation. Blank
/// lines and lines starting with `#` are skipped. Required columns: a time column and a
/// viable-density column; the others may be absent or have empty cells.
pub fn parse_csv(text: &str) -> Result<Observations, TwinError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let Some((_, header)) = lines.next() else {
        return Err(obs_err(
            1,
            "time_h",
            "empty file: expected a header such as time_h,viable_cells_per_ml",
        ));
    };
    let cols = parse_header(header)?;
    let mut rows = Vec::new();
    let mut prev_time: Option<f64> = None;
    for (line_no, line) in lines {
        if rows.len() >= OBSERVATIONS_MAX {
            return Err(obs_err(
                line_no,
                "time_h",
                &format!("more than OBSERVATIONS_MAX = {OBSERVATIONS_MAX} rows"),
            ));
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != cols.len() {
            return Err(obs_err(
                line_no,
                &cols[cells.len().min(cols.len() - 1)].2,
                &format!(
                    "{} cells but the header has {} columns",
                    cells.len(),
                    cols.len()
                ),
            ));
        }
        let mut r = Observation {
            time_h: f64::NAN,
            viable_cells_per_ml: f64::NAN,
            volume_ml: None,
            viability: None,
            car_pos_fraction: None,
            glucose_mm: None,
            lactate_mm: None,
        };
        for ((q, factor, name), cell) in cols.iter().zip(&cells) {
            let value = if cell.is_empty() {
                None
            } else {
                let v: f64 = cell
                    .parse()
                    .map_err(|_| obs_err(line_no, name, &format!("{cell:?} is not a number")))?;
                if !(v.is_finite() && v >= 0.0) {
                    return Err(obs_err(
                        line_no,
                        name,
                        &format!("{v} must be finite and ≥ 0"),
                    ));
                }
                Some(v * factor)
            };
            match q {
                Quantity::Time | Quantity::ViableDensity => {
                    let v =
                        value.ok_or_else(|| obs_err(line_no, name, "required value is empty"))?;
                    if *q == Quantity::Time {
                        r.time_h = v;
                    } else {
                        r.viable_cells_per_ml = v;
                    }
                }
                Quantity::Volume => r.volume_ml = value,
                Quantity::Viability => r.viability = value,
                Quantity::CarPos => r.car_pos_fraction = value,
                Quantity::Glucose => r.glucose_mm = value,
                Quantity::Lactate => r.lactate_mm = value,
            }
        }
        if let Some(p) = prev_time
            && r.time_h <= p
        {
            let name = &cols
                .iter()
                .find(|c| c.0 == Quantity::Time)
                .expect("header has a time column")
                .2;
            return Err(obs_err(
                line_no,
                name,
                &format!(
                    "{} h is not after the previous row's {p} h (rule: rows in strictly ascending time)",
                    r.time_h
                ),
            ));
        }
        prev_time = Some(r.time_h);
        for (label, v) in [("viability", r.viability), ("car_pos", r.car_pos_fraction)] {
            if let Some(v) = v
                && v > 1.0
            {
                let col = cols
                    .iter()
                    .find(|c| c.2.starts_with(label))
                    .map_or(label, |c| c.2.as_str());
                return Err(obs_err(
                    line_no,
                    col,
                    &format!("{v} exceeds 100 % (rule: a fraction in [0, 1])"),
                ));
            }
        }
        if r.viable_cells_per_ml == 0.0 {
            let col = &cols
                .iter()
                .find(|c| c.0 == Quantity::ViableDensity)
                .expect("header has a density column")
                .2;
            return Err(obs_err(
                line_no,
                col,
                "must be > 0 (the fit works on log counts)",
            ));
        }
        rows.push(r);
    }
    if rows.is_empty() {
        return Err(obs_err(2, &cols[0].2, "no data rows after the header"));
    }
    Observations::new(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_converted() {
        let o = parse_csv("time_d,viable_1e6_cells_per_ml,viability_percent,glucose_g_per_l\n1,0.5,90,1.8016\n2,1.0,,\n").unwrap();
        let r = o.rows();
        assert_eq!(r[0].time_h, 24.0);
        assert_eq!(r[0].viable_cells_per_ml, 5e5);
        assert!((r[0].viability.unwrap() - 0.9).abs() < 1e-12);
        assert!((r[0].glucose_mm.unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(r[1].viability, None);
    }

    #[test]
    fn missing_unit_names_row_and_column() {
        let err = parse_csv("time_h,viable_cells_per_ml,glucose\n0,1e6,10\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("row 1") && msg.contains("\"glucose\"") && msg.contains("glucose_mm"),
            "{msg}"
        );
    }

    #[test]
    fn out_of_order_names_row_and_column() {
        let err = parse_csv("time_h,viable_cells_per_ml\n0,1e6\n48,2e6\n24,3e6\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("row 4") && msg.contains("time_h"), "{msg}");
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let o = parse_csv("# batch 7\ntime_h,viable_cells_per_ml\n\n0,1e6\n").unwrap();
        assert_eq!(o.rows().len(), 1);
    }
}
