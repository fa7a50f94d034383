//! The one error type of the QC crate. Every message names the field or test and says what
//! to do about it.

/// What went wrong with a specification, a result, a sample plan or a certificate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QcError {
    #[error("specification {file}: {message}")]
    SpecSyntax { file: String, message: String },
    #[error("specification {file}: {field} {rule}")]
    SpecInvalid {
        file: String,
        field: String,
        rule: String,
    },
    #[error("no specification for product {product:?} version {version:?} (known: {known})")]
    SpecNotFound {
        product: String,
        version: String,
        known: String,
    },
    #[error("test {test:?} is not in specification {spec} (tests: {known})")]
    UnknownTest {
        test: String,
        spec: String,
        known: String,
    },
    #[error(
        "result for {test}: the unit is missing; give the value in {expected} (rule: every numeric result carries its unit)"
    )]
    UnitMissing { test: String, expected: String },
    #[error("result for {test}: unit {given:?} is unknown; use {expected} (known units: {known})")]
    UnitUnknown {
        test: String,
        given: String,
        expected: String,
        known: String,
    },
    #[error(
        "result for {test}: unit {given} does not match the specification's {expected}; enter the value in {expected} (no conversion is made)"
    )]
    UnitMismatch {
        test: String,
        given: String,
        expected: String,
    },
    #[error("result for {test}: the value must be a finite number")]
    NotFinite { test: String },
    #[error("result for {test}: {value} {unit} is outside the meaningful range {min} to {max}")]
    OutsidePhysicalRange {
        test: String,
        value: f64,
        unit: String,
        min: f64,
        max: f64,
    },
    #[error("result for {test}: expected {expected}")]
    WrongKind { test: String, expected: String },
    #[error("result for {test}: outcome {given:?} is not one of {allowed}")]
    UnknownOutcome {
        test: String,
        given: String,
        allowed: String,
    },
    #[error(
        "sample plan: specification {spec} is for product {spec_product}, the recipe is for {recipe_product}"
    )]
    PlanProductMismatch {
        spec: String,
        spec_product: String,
        recipe_product: String,
    },
    #[error(
        "sample plan: specification {spec} does not cover recipe version {recipe_version} (it lists {allowed}); issue a new specification version"
    )]
    PlanRecipeVersion {
        spec: String,
        recipe_version: String,
        allowed: String,
    },
    #[error(
        "sample plan: test {test} is sampled at step {step:?}, which recipe {recipe} does not have"
    )]
    PlanSamplePoint {
        test: String,
        step: String,
        recipe: String,
    },
    #[error("{field}: write 1 to {max} characters")]
    TextLength { field: String, max: usize },
    #[error("certificate of analysis: {0}")]
    Certificate(String),
}
