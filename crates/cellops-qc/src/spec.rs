//! Release specifications as data: one TOML file per product and version (see `specs/` in
//! the repository). A [`Specification`] exists only through [`Specification::parse`], so
//! every test below has a unique id, a known unit, ordered limits or a non-empty accepted
//! outcome list.

use crate::error::QcError;
use crate::units::QcUnit;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The specification file format this crate reads.
pub const SPEC_FORMAT_VERSION: u32 = 1;
/// Most tests in one specification.
pub const SPEC_TESTS_MAX: usize = 64;
/// Longest identifier (product, version, test, method, outcome), in characters.
pub const SPEC_IDENT_CHARS_MAX: usize = 64;

/// Whether a test's result must be in before release, or may follow it (release at risk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseTiming {
    /// The result must be in and within limits before QA releases.
    Required,
    /// The batch may be released at risk before this result (e.g. 14-day sterility).
    MayFollow,
}

/// The acceptance criterion of a test.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Criterion {
    /// A number in `unit` within the bounds (each bound is optional; at least one is set).
    Numeric {
        unit: QcUnit,
        /// Pass when value ≥ this.
        at_least: Option<f64>,
        /// Pass when value > this.
        above: Option<f64>,
        /// Pass when value ≤ this.
        at_most: Option<f64>,
        /// Pass when value < this.
        below: Option<f64>,
    },
    /// One of `allowed` outcomes; pass when it is one of `accepted`.
    Qualitative {
        allowed: Vec<String>,
        accepted: Vec<String>,
    },
}

impl Criterion {
    /// The criterion as a reader sees it on the certificate, e.g. `>= 70 %`.
    pub fn text(&self) -> String {
        match self {
            Criterion::Numeric {
                unit,
                at_least,
                above,
                at_most,
                below,
            } => {
                let mut parts = Vec::new();
                if let Some(v) = at_least {
                    parts.push(format!(">= {} {unit}", number(*v)));
                }
                if let Some(v) = above {
                    parts.push(format!("> {} {unit}", number(*v)));
                }
                if let Some(v) = at_most {
                    parts.push(format!("<= {} {unit}", number(*v)));
                }
                if let Some(v) = below {
                    parts.push(format!("< {} {unit}", number(*v)));
                }
                parts.join(" and ")
            }
            Criterion::Qualitative { accepted, .. } => accepted.join(" or "),
        }
    }
}

/// A number as people write it in a specification: `70`, `0.5`, `1e7`.
pub fn number(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// One release test of a specification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestSpec {
    /// Identifier, unique within the specification (e.g. `viability`).
    pub id: String,
    /// Name on the certificate.
    pub name: String,
    /// Method identifier; qualification to enter results is `qc.result.<method>`.
    pub method: String,
    /// Method as a reader sees it.
    pub method_name: String,
    /// The recipe step after which the sample is drawn.
    pub sample_point: String,
    /// Sample volume this test needs, in mL (0 when it shares another test's sample).
    pub sample_volume_ml: f64,
    /// Required before release, or may follow.
    pub release: ReleaseTiming,
    /// The acceptance criterion.
    pub criterion: Criterion,
    /// Optional wording of the criterion for the certificate (else generated).
    pub criterion_text: Option<String>,
    /// Where the limit comes from.
    pub source: String,
}

impl TestSpec {
    /// The criterion as printed.
    pub fn criterion_display(&self) -> String {
        let generated = self.criterion.text();
        match &self.criterion_text {
            Some(t) => format!("{generated} ({t})"),
            None => generated,
        }
    }
}

/// A validated specification: one version of one product's release tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Specification {
    product: String,
    product_name: String,
    version: String,
    recipe_versions: Vec<String>,
    tests: Vec<TestSpec>,
}

impl Specification {
    /// Product identifier, the same as the recipe's (e.g. `prime-car-t`).
    pub fn product(&self) -> &str {
        &self.product
    }
    pub fn product_name(&self) -> &str {
        &self.product_name
    }
    /// The specification version.
    pub fn version(&self) -> &str {
        &self.version
    }
    /// Recipe versions this specification applies to.
    pub fn recipe_versions(&self) -> &[String] {
        &self.recipe_versions
    }
    /// Tests in the file's order; never empty.
    pub fn tests(&self) -> &[TestSpec] {
        &self.tests
    }
    /// `product@version`, as records and messages name a specification.
    pub fn key(&self) -> String {
        format!("{}@{}", self.product, self.version)
    }
    /// The test with `id`, or an error listing the known tests.
    pub fn test(&self, id: &str) -> Result<&TestSpec, QcError> {
        self.tests
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| QcError::UnknownTest {
                test: id.to_string(),
                spec: self.key(),
                known: self
                    .tests
                    .iter()
                    .map(|t| t.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Parses and validates a specification file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Specification, QcError> {
        let raw: RawSpec = toml::from_str(text).map_err(|e| QcError::SpecSyntax {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        raw.validate(file)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    format_version: u32,
    product: String,
    product_name: String,
    version: String,
    recipe_versions: Vec<String>,
    tests: Vec<RawTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    id: String,
    name: String,
    method: String,
    method_name: String,
    sample_point: String,
    sample_volume_ml: f64,
    release: ReleaseTiming,
    unit: Option<String>,
    at_least: Option<f64>,
    above: Option<f64>,
    at_most: Option<f64>,
    below: Option<f64>,
    allowed: Option<Vec<String>>,
    accepted: Option<Vec<String>>,
    criterion_text: Option<String>,
    source: String,
}

fn invalid(file: &str, field: String, rule: impl Into<String>) -> QcError {
    QcError::SpecInvalid {
        file: file.to_string(),
        field,
        rule: rule.into(),
    }
}

/// An identifier: 1–64 lower-case letters, digits, `-`, `_` or `.`.
fn check_ident(file: &str, field: String, value: &str) -> Result<(), QcError> {
    let ok = !value.is_empty()
        && value.chars().count() <= SPEC_IDENT_CHARS_MAX
        && value.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.'
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            file,
            field,
            format!(
                "{value:?} must be 1-{SPEC_IDENT_CHARS_MAX} characters of a-z, 0-9, '-', '_' or '.'"
            ),
        ))
    }
}

impl RawSpec {
    fn validate(self, file: &str) -> Result<Specification, QcError> {
        if self.format_version != SPEC_FORMAT_VERSION {
            return Err(invalid(
                file,
                "format_version".into(),
                format!(
                    "is {}; this cellops reads {SPEC_FORMAT_VERSION}",
                    self.format_version
                ),
            ));
        }
        check_ident(file, "product".into(), &self.product)?;
        check_ident(file, "version".into(), &self.version)?;
        if self.recipe_versions.is_empty() {
            return Err(invalid(
                file,
                "recipe_versions".into(),
                "must list at least one recipe version",
            ));
        }
        if self.tests.is_empty() || self.tests.len() > SPEC_TESTS_MAX {
            return Err(invalid(
                file,
                "tests".into(),
                format!("must have 1 to {SPEC_TESTS_MAX} tests"),
            ));
        }
        let mut ids = BTreeSet::new();
        let mut tests = Vec::with_capacity(self.tests.len());
        for (i, raw) in self.tests.into_iter().enumerate() {
            let at = format!("tests[{i}]");
            check_ident(file, format!("{at}.id"), &raw.id)?;
            if !ids.insert(raw.id.clone()) {
                return Err(invalid(
                    file,
                    format!("{at}.id"),
                    format!("{:?} is used twice; test ids are unique", raw.id),
                ));
            }
            tests.push(raw.validate(file, &at)?);
        }
        Ok(Specification {
            product: self.product,
            product_name: self.product_name,
            version: self.version,
            recipe_versions: self.recipe_versions,
            tests,
        })
    }
}

impl RawTest {
    fn validate(self, file: &str, at: &str) -> Result<TestSpec, QcError> {
        check_ident(file, format!("{at}.method"), &self.method)?;
        check_ident(file, format!("{at}.sample_point"), &self.sample_point)?;
        if !self.sample_volume_ml.is_finite() || self.sample_volume_ml < 0.0 {
            return Err(invalid(
                file,
                format!("{at}.sample_volume_ml"),
                "must be a number >= 0 (mL)",
            ));
        }
        let numeric = [self.at_least, self.above, self.at_most, self.below];
        let any_bound = numeric.iter().any(Option::is_some);
        let criterion = match (&self.unit, any_bound, &self.allowed, &self.accepted) {
            (Some(unit), true, None, None) => numeric_criterion(file, at, unit, numeric)?,
            (None, false, Some(allowed), Some(accepted)) => {
                qualitative_criterion(file, at, allowed, accepted)?
            }
            _ => {
                return Err(invalid(
                    file,
                    at.to_string(),
                    "needs either `unit` with at least one of at_least/above/at_most/below, or `allowed` and `accepted` outcomes (not both)",
                ));
            }
        };
        Ok(TestSpec {
            id: self.id,
            name: self.name,
            method: self.method,
            method_name: self.method_name,
            sample_point: self.sample_point,
            sample_volume_ml: self.sample_volume_ml,
            release: self.release,
            criterion,
            criterion_text: self.criterion_text,
            source: self.source,
        })
    }
}

fn numeric_criterion(
    file: &str,
    at: &str,
    unit: &str,
    [at_least, above, at_most, below]: [Option<f64>; 4],
) -> Result<Criterion, QcError> {
    let unit = QcUnit::parse(unit).ok_or_else(|| {
        invalid(
            file,
            format!("{at}.unit"),
            format!(
                "{unit:?} is unknown; use one of {}",
                QcUnit::known_symbols()
            ),
        )
    })?;
    if at_least.is_some() && above.is_some() {
        return Err(invalid(file, at.into(), "give at_least or above, not both"));
    }
    if at_most.is_some() && below.is_some() {
        return Err(invalid(file, at.into(), "give at_most or below, not both"));
    }
    let low = at_least.or(above);
    let high = at_most.or(below);
    for v in [low, high].into_iter().flatten() {
        if !v.is_finite() {
            return Err(invalid(file, at.into(), "limits must be finite numbers"));
        }
    }
    if let (Some(l), Some(h)) = (low, high)
        && l >= h
    {
        return Err(invalid(
            file,
            at.into(),
            format!("the lower limit {l} must be below the upper limit {h}"),
        ));
    }
    Ok(Criterion::Numeric {
        unit,
        at_least,
        above,
        at_most,
        below,
    })
}

fn qualitative_criterion(
    file: &str,
    at: &str,
    allowed: &[String],
    accepted: &[String],
) -> Result<Criterion, QcError> {
    for (i, o) in allowed.iter().enumerate() {
        check_ident(file, format!("{at}.allowed[{i}]"), o)?;
    }
    if allowed.len() < 2 {
        return Err(invalid(
            file,
            format!("{at}.allowed"),
            "must list at least two outcomes (a passing and a failing one)",
        ));
    }
    if accepted.is_empty() || accepted.iter().any(|a| !allowed.contains(a)) {
        return Err(invalid(
            file,
            format!("{at}.accepted"),
            "must be a non-empty subset of `allowed`",
        ));
    }
    if accepted.len() == allowed.len() {
        return Err(invalid(
            file,
            format!("{at}.accepted"),
            "accepts every outcome, so the test could never fail",
        ));
    }
    Ok(Criterion::Qualitative {
        allowed: allowed.to_vec(),
        accepted: accepted.to_vec(),
    })
}
