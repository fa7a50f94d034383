//! The site qualification matrix: which qualification each GMP action requires, per site.
//!
//! Site configuration, not code. A TOML file maps action keys (`custody.handoff`,
//! `qc.result.sterility`, `release.sign`, …) to qualification ids, once for every site
//! (`[actions]`) and per site (`[sites.<site>.actions]`, which wins). A key ending in `.*`
//! covers every action under that prefix (`qc.result.*`); an exact key wins over it. Recipe
//! steps name their qualification directly: the action `qualification:<id>` requires `<id>`.
//! An action the matrix does not name is refused ([`TrainingError::NotConfigured`]).

use crate::error::TrainingError;
use cellops_domain::SiteId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Prefix of an action that names a recipe qualification directly.
pub const QUALIFICATION_PREFIX: &str = "qualification:";

/// The shipped demo matrix (`config/qualification-matrix.toml`).
pub const DEMO_MATRIX_TOML: &str = include_str!("../config/qualification-matrix.toml");

/// Longest action key or qualification id, in characters.
pub const KEY_CHARS_MAX: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatrixFile {
    format_version: u32,
    #[serde(default)]
    actions: BTreeMap<String, String>,
    #[serde(default)]
    sites: BTreeMap<String, SiteFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFile {
    #[serde(default)]
    actions: BTreeMap<String, String>,
}

/// The parsed, validated matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QualificationMatrix {
    /// Actions of every site.
    actions: BTreeMap<String, String>,
    /// Per-site actions, overriding `actions`.
    sites: BTreeMap<SiteId, BTreeMap<String, String>>,
}

impl Default for QualificationMatrix {
    /// The shipped demo matrix.
    fn default() -> Self {
        QualificationMatrix::demo()
    }
}

fn check_key(field: &str, key: &str) -> Result<(), TrainingError> {
    let ok = !key.is_empty()
        && key.chars().count() <= KEY_CHARS_MAX
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.*".contains(c));
    if !ok {
        return Err(TrainingError::invalid(
            field,
            format!(
                "{key:?} is not a valid key: use 1–{KEY_CHARS_MAX} lowercase letters, digits, '-', '_' and '.'"
            ),
        ));
    }
    if let Some(i) = key.find('*')
        && (i + 1 != key.len() || !key.ends_with(".*"))
    {
        return Err(TrainingError::invalid(
            field,
            format!("{key:?}: '*' may only end a key, as in \"qc.result.*\""),
        ));
    }
    Ok(())
}

fn check_table(path: &str, table: &BTreeMap<String, String>) -> Result<(), TrainingError> {
    for (action, qualification) in table {
        check_key(&format!("{path}.{action}"), action)?;
        if action.starts_with(QUALIFICATION_PREFIX) {
            return Err(TrainingError::invalid(
                format!("{path}.{action}"),
                "\"qualification:\" actions name their qualification themselves; remove this entry",
            ));
        }
        check_key(&format!("{path}.{action} (qualification)"), qualification)?;
        if qualification.contains('*') {
            return Err(TrainingError::invalid(
                format!("{path}.{action}"),
                "a qualification id cannot contain '*'",
            ));
        }
    }
    Ok(())
}

impl QualificationMatrix {
    /// Parses and validates a matrix TOML file.
    pub fn from_toml(text: &str) -> Result<QualificationMatrix, TrainingError> {
        let file: MatrixFile = toml::from_str(text)
            .map_err(|e| TrainingError::invalid("qualification matrix", e.to_string()))?;
        if file.format_version != 1 {
            return Err(TrainingError::invalid(
                "format_version",
                format!(
                    "format_version {} is not supported: this build reads 1",
                    file.format_version
                ),
            ));
        }
        check_table("actions", &file.actions)?;
        let mut sites = BTreeMap::new();
        for (site, table) in file.sites {
            let id = SiteId::parse(&site)
                .map_err(|e| TrainingError::invalid(format!("sites.{site}"), e.to_string()))?;
            check_table(&format!("sites.{site}.actions"), &table.actions)?;
            sites.insert(id, table.actions);
        }
        Ok(QualificationMatrix {
            actions: file.actions,
            sites,
        })
    }

    /// The shipped demo matrix.
    pub fn demo() -> QualificationMatrix {
        QualificationMatrix::from_toml(DEMO_MATRIX_TOML).expect("the shipped matrix is valid")
    }

    /// The qualification `action` requires at `site`, or why none can be named.
    pub fn requirement(&self, site: &SiteId, action: &str) -> Result<String, TrainingError> {
        if let Some(id) = action.strip_prefix(QUALIFICATION_PREFIX) {
            check_key("action", id)?;
            return Ok(id.to_string());
        }
        let tables = self.sites.get(site).into_iter().chain([&self.actions]);
        let mut wildcard = None;
        for table in tables {
            if let Some(q) = table.get(action) {
                return Ok(q.clone());
            }
            if wildcard.is_none() {
                wildcard = longest_wildcard(table, action);
            }
        }
        wildcard.ok_or_else(|| TrainingError::NotConfigured {
            site: site.clone(),
            action: action.to_string(),
        })
    }

    /// Every (action, qualification) that applies at `site`, site entries first.
    pub fn actions_at(&self, site: &SiteId) -> BTreeMap<String, String> {
        let mut all = self.actions.clone();
        if let Some(own) = self.sites.get(site) {
            all.extend(own.iter().map(|(a, q)| (a.clone(), q.clone())));
        }
        all
    }

    /// Every qualification the matrix requires at `site` (for the training matrix report).
    pub fn qualifications_at(&self, site: &SiteId) -> std::collections::BTreeSet<String> {
        self.actions_at(site).into_values().collect()
    }
}

fn longest_wildcard(table: &BTreeMap<String, String>, action: &str) -> Option<String> {
    table
        .iter()
        .filter_map(|(key, q)| {
            let prefix = key.strip_suffix('*')?;
            action.starts_with(prefix).then_some((prefix.len(), q))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, q)| q.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(s: &str) -> SiteId {
        SiteId::parse(s).unwrap()
    }

    #[test]
    fn site_entries_win_and_wildcards_cover_prefixes() {
        let m = QualificationMatrix::from_toml(
            r#"
format_version = 1
[actions]
"custody.scan" = "custody-handling"
"qc.result.*" = "qc-analytical"
"qc.result.sterility" = "qc-microbiology"
[sites.hosp-a.actions]
"custody.scan" = "hosp-custody"
"#,
        )
        .unwrap();
        assert_eq!(
            m.requirement(&site("cpc-a"), "custody.scan").unwrap(),
            "custody-handling"
        );
        assert_eq!(
            m.requirement(&site("hosp-a"), "custody.scan").unwrap(),
            "hosp-custody"
        );
        assert_eq!(
            m.requirement(&site("cpc-a"), "qc.result.viability")
                .unwrap(),
            "qc-analytical"
        );
        assert_eq!(
            m.requirement(&site("cpc-a"), "qc.result.sterility")
                .unwrap(),
            "qc-microbiology"
        );
        assert_eq!(
            m.requirement(&site("cpc-a"), "qualification:cpc-receipt")
                .unwrap(),
            "cpc-receipt"
        );
        let err = m.requirement(&site("cpc-a"), "release.sign").unwrap_err();
        assert!(matches!(err, TrainingError::NotConfigured { .. }));
        assert!(err.to_string().contains("release.sign"), "{err}");
    }

    #[test]
    fn bad_matrices_name_the_field() {
        let e = QualificationMatrix::from_toml("format_version = 2").unwrap_err();
        assert!(e.to_string().starts_with("format_version"), "{e}");
        let e = QualificationMatrix::from_toml("format_version = 1\n[actions]\n\"a*b\" = \"x\"")
            .unwrap_err();
        assert!(e.to_string().contains("a*b"), "{e}");
        let e = QualificationMatrix::from_toml("format_version = 1\n[sites.\"Bad Site\".actions]")
            .unwrap_err();
        assert!(e.to_string().starts_with("sites.Bad Site"), "{e}");
        assert!(QualificationMatrix::from_toml("format_version = 1\nfoo = 1").is_err());
    }

    #[test]
    fn the_shipped_matrix_names_every_documented_action() {
        let m = QualificationMatrix::demo();
        for action in [
            "custody.handoff",
            "custody.scan",
            "collection.apheresis",
            "collection.bone_marrow",
            "bedside.verify",
            "infusion.record",
            "qc.result.sterility",
            "qc.result.viability",
            "release.sign",
            "storage.putaway",
            "shipment.pack",
        ] {
            for s in ["cpc-kyoto", "hosp-kyoto", "qc-kyoto"] {
                assert!(m.requirement(&site(s), action).is_ok(), "{action} at {s}");
            }
        }
    }
}
