//! A span-aware reader over a parsed TOML document. Every accessor records a problem instead
//! of failing, so one pass collects every problem in the file; it also remembers where each
//! field path is, so later semantic rules can report positions too.

use std::collections::BTreeMap;

use toml_edit::{Item, TableLike};

use super::problem::{LineIndex, Location, Problem, ProblemKind};

/// Longest id, in characters.
pub const ID_CHARS_MAX: usize = 64;
/// Longest free text (names, instructions), in characters.
pub const TEXT_CHARS_MAX: usize = 4_000;

/// A table or inline table with the byte offset where it is defined.
#[derive(Clone, Copy)]
pub(crate) struct Tbl<'d> {
    pub(crate) table: &'d dyn TableLike,
    pub(crate) offset: usize,
}

/// Joins a field path and a key: `phases[0]` + `id` = `phases[0].id`.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

pub(crate) struct Reader<'a> {
    lines: LineIndex<'a>,
    problems: Vec<(usize, Problem)>,
    offsets: BTreeMap<String, usize>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Reader {
            lines: LineIndex::new(text),
            problems: Vec::new(),
            offsets: BTreeMap::new(),
        }
    }

    /// Records a problem at a byte offset.
    pub(crate) fn report_at(&mut self, path: &str, offset: usize, kind: ProblemKind) {
        let location: Location = self.lines.locate(offset);
        self.problems.push((
            offset,
            Problem {
                path: path.to_string(),
                location,
                kind,
            },
        ));
    }

    /// Records a problem at a field path seen earlier (or its nearest recorded ancestor).
    pub(crate) fn report(&mut self, path: &str, kind: ProblemKind) {
        let offset = self.offset_of(path);
        self.report_at(path, offset, kind);
    }

    fn offset_of(&self, path: &str) -> usize {
        let mut candidate = path;
        loop {
            if let Some(offset) = self.offsets.get(candidate) {
                return *offset;
            }
            match candidate.rfind(['.', '[']) {
                Some(cut) => candidate = &candidate[..cut],
                None => return 0,
            }
        }
    }

    pub(crate) fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// The problems in file order (stable for equal positions).
    pub(crate) fn into_problems(mut self) -> Vec<Problem> {
        self.problems.sort_by_key(|(offset, _)| *offset);
        self.problems.into_iter().map(|(_, p)| p).collect()
    }

    fn remember(&mut self, path: &str, offset: usize) {
        self.offsets.insert(path.to_string(), offset);
    }

    /// `item` as a table (standard or inline), or a problem.
    pub(crate) fn table<'d>(
        &mut self,
        item: &'d Item,
        path: &str,
        fallback: usize,
    ) -> Option<Tbl<'d>> {
        let offset = item.span().map_or(fallback, |s| s.start);
        self.remember(path, offset);
        match item.as_table_like() {
            Some(table) => Some(Tbl { table, offset }),
            None => {
                self.report_at(
                    path,
                    offset,
                    ProblemKind::WrongType {
                        expected: "a table",
                        found: item.type_name(),
                    },
                );
                None
            }
        }
    }

    /// Reports every key of `tbl` not in `allowed`.
    pub(crate) fn check_fields(&mut self, tbl: Tbl<'_>, path: &str, allowed: &[&str]) {
        let unknown: Vec<(String, usize)> = tbl
            .table
            .iter()
            .filter(|(k, _)| !allowed.contains(k))
            .map(|(k, item)| {
                let key_offset = tbl
                    .table
                    .get_key_value(k)
                    .and_then(|(key, _)| key.span())
                    .or_else(|| item.span())
                    .map_or(tbl.offset, |s| s.start);
                (k.to_string(), key_offset)
            })
            .collect();
        for (key, offset) in unknown {
            self.report_at(
                &join(path, &key),
                offset,
                ProblemKind::UnknownField {
                    allowed: allowed.join(", "),
                },
            );
        }
    }

    /// The item at `key`, remembering its position; `None` when absent (no problem recorded).
    pub(crate) fn get<'d>(
        &mut self,
        tbl: Tbl<'d>,
        path: &str,
        key: &str,
    ) -> Option<(&'d Item, usize)> {
        let item = tbl.table.get(key)?;
        if item.is_none() {
            return None;
        }
        let offset = item.span().map_or(tbl.offset, |s| s.start);
        self.remember(&join(path, key), offset);
        Some((item, offset))
    }

    fn missing(&mut self, tbl: Tbl<'_>, path: &str, key: &str, expected: &'static str) {
        self.report_at(
            &join(path, key),
            tbl.offset,
            ProblemKind::Missing { expected },
        );
    }

    /// An optional string field.
    pub(crate) fn opt_str(&mut self, tbl: Tbl<'_>, path: &str, key: &str) -> Option<String> {
        let (item, offset) = self.get(tbl, path, key)?;
        let field = join(path, key);
        match item.as_str() {
            Some(s) if s.trim().is_empty() => {
                self.report_at(&field, offset, ProblemKind::Empty);
                None
            }
            Some(s) if s.chars().count() > TEXT_CHARS_MAX => {
                self.report_at(
                    &field,
                    offset,
                    ProblemKind::TooMany {
                        what: "characters",
                        count: s.chars().count(),
                        max: TEXT_CHARS_MAX,
                    },
                );
                None
            }
            Some(s) => Some(s.to_string()),
            None => {
                self.report_at(
                    &field,
                    offset,
                    ProblemKind::WrongType {
                        expected: "a string",
                        found: item.type_name(),
                    },
                );
                None
            }
        }
    }

    /// A required, non-empty string field.
    pub(crate) fn req_str(&mut self, tbl: Tbl<'_>, path: &str, key: &str) -> Option<String> {
        if tbl.table.get(key).is_none_or(Item::is_none) {
            self.missing(tbl, path, key, "a string");
            return None;
        }
        self.opt_str(tbl, path, key)
    }

    /// A required id field (see `ProblemKind::BadId` for the rule).
    pub(crate) fn req_id(&mut self, tbl: Tbl<'_>, path: &str, key: &str) -> Option<String> {
        let value = self.req_str(tbl, path, key)?;
        if is_valid_id(&value) {
            Some(value)
        } else {
            self.report(&join(path, key), ProblemKind::BadId { value });
            None
        }
    }

    /// An optional number (integer or float) field.
    pub(crate) fn opt_f64(&mut self, tbl: Tbl<'_>, path: &str, key: &str) -> Option<f64> {
        let (item, offset) = self.get(tbl, path, key)?;
        let value = item
            .as_float()
            // TOML integers are exact up to 2^53 in f64; recipe quantities are far below that.
            .or_else(|| item.as_integer().map(|i| i as f64));
        match value {
            Some(v) if v.is_finite() => Some(v),
            Some(_) | None => {
                self.report_at(
                    &join(path, key),
                    offset,
                    ProblemKind::WrongType {
                        expected: "a finite number",
                        found: item.type_name(),
                    },
                );
                None
            }
        }
    }

    /// A required number field.
    pub(crate) fn req_f64(&mut self, tbl: Tbl<'_>, path: &str, key: &str) -> Option<f64> {
        if tbl.table.get(key).is_none_or(Item::is_none) {
            self.missing(tbl, path, key, "a number");
            return None;
        }
        self.opt_f64(tbl, path, key)
    }

    /// A required non-negative integer field that fits in `u32`.
    pub(crate) fn req_u32(&mut self, tbl: Tbl<'_>, path: &str, key: &str) -> Option<u32> {
        let Some((item, offset)) = self.get(tbl, path, key) else {
            self.missing(tbl, path, key, "a whole number");
            return None;
        };
        let field = join(path, key);
        match item.as_integer() {
            Some(i) => match u32::try_from(i) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.report_at(
                        &field,
                        offset,
                        ProblemKind::Below {
                            value: i as f64,
                            min: 0.0,
                            rule: "a day count is a whole number ≥ 0".into(),
                        },
                    );
                    None
                }
            },
            None => {
                self.report_at(
                    &field,
                    offset,
                    ProblemKind::WrongType {
                        expected: "a whole number",
                        found: item.type_name(),
                    },
                );
                None
            }
        }
    }

    /// An optional boolean field.
    pub(crate) fn opt_bool(&mut self, tbl: Tbl<'_>, path: &str, key: &str) -> Option<bool> {
        let (item, offset) = self.get(tbl, path, key)?;
        let value = item.as_bool();
        if value.is_none() {
            self.report_at(
                &join(path, key),
                offset,
                ProblemKind::WrongType {
                    expected: "true or false",
                    found: item.type_name(),
                },
            );
        }
        value
    }

    /// A required boolean field.
    pub(crate) fn req_bool(&mut self, tbl: Tbl<'_>, path: &str, key: &str) -> Option<bool> {
        if tbl.table.get(key).is_none_or(Item::is_none) {
            self.missing(tbl, path, key, "true or false");
            return None;
        }
        self.opt_bool(tbl, path, key)
    }

    /// A list of tables: `[[key]]` sections or an inline array of inline tables.
    /// Returns each element's path and table. `required` reports a missing or empty list.
    pub(crate) fn tables<'d>(
        &mut self,
        tbl: Tbl<'d>,
        path: &str,
        key: &str,
        required: bool,
        max: usize,
    ) -> Vec<(String, Tbl<'d>)> {
        let field = join(path, key);
        let Some((item, offset)) = self.get(tbl, path, key) else {
            if required {
                self.missing(tbl, path, key, "a list of tables");
            }
            return Vec::new();
        };
        if let Some(aot) = item.as_array_of_tables() {
            let count = aot.len();
            if !self.check_count(&field, offset, count, required, max) {
                return Vec::new();
            }
            return aot
                .iter()
                .enumerate()
                .map(|(i, table)| {
                    let element = format!("{field}[{i}]");
                    let table_offset = table.span().map_or(offset, |s| s.start);
                    self.remember(&element, table_offset);
                    (
                        element,
                        Tbl {
                            table,
                            offset: table_offset,
                        },
                    )
                })
                .collect();
        }
        if item.as_array().is_some() {
            return self.inline_tables(item, &field, offset, required, max);
        }
        self.report_at(
            &field,
            offset,
            ProblemKind::WrongType {
                expected: "a list of tables",
                found: item.type_name(),
            },
        );
        Vec::new()
    }

    /// Reports an empty required list or one longer than `max`; false when too long.
    fn check_count(
        &mut self,
        field: &str,
        offset: usize,
        count: usize,
        required: bool,
        max: usize,
    ) -> bool {
        if count == 0 && required {
            self.report_at(field, offset, ProblemKind::Empty);
        }
        if count > max {
            self.report_at(
                field,
                offset,
                ProblemKind::TooMany {
                    what: "entries",
                    count,
                    max,
                },
            );
            return false;
        }
        true
    }

    fn inline_tables<'d>(
        &mut self,
        item: &'d Item,
        field: &str,
        offset: usize,
        required: bool,
        max: usize,
    ) -> Vec<(String, Tbl<'d>)> {
        let Some(array) = item.as_array() else {
            return Vec::new();
        };
        if !self.check_count(field, offset, array.len(), required, max) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (i, value) in array.iter().enumerate() {
            let element = format!("{field}[{i}]");
            let value_offset = value.span().map_or(offset, |s| s.start);
            self.remember(&element, value_offset);
            match value.as_inline_table() {
                Some(t) => out.push((
                    element,
                    Tbl {
                        table: t,
                        offset: value_offset,
                    },
                )),
                None => self.report_at(
                    &element,
                    value_offset,
                    ProblemKind::WrongType {
                        expected: "an inline table",
                        found: value.type_name(),
                    },
                ),
            }
        }
        out
    }
}

/// The id rule: 1–64 characters of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
pub(crate) fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    first_ok && rest_ok && id.chars().count() <= ID_CHARS_MAX
}
