//! The parsed, validated recipe. A `Recipe` exists only through `Recipe::parse`, so every
//! value below has passed the rules in `validate.rs`: ids are unique, references resolve,
//! limits are ordered, units are known, durations are positive.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::units::{SetPoint, Unit};

/// A validated recipe: one version of one product's manufacturing procedure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recipe {
    pub(crate) product: String,
    pub(crate) product_name: String,
    pub(crate) version: RecipeVersion,
    pub(crate) description: String,
    pub(crate) qualifications: Vec<Qualification>,
    pub(crate) materials: Vec<Material>,
    pub(crate) phases: Vec<Phase>,
}

impl Recipe {
    /// Product identifier (lower-case, e.g. `prime-car-t`).
    pub fn product(&self) -> &str {
        &self.product
    }
    /// Human-readable product name.
    pub fn product_name(&self) -> &str {
        &self.product_name
    }
    /// The recipe version; a change to the content is a new version.
    pub fn version(&self) -> &RecipeVersion {
        &self.version
    }
    /// Free-text description of the recipe.
    pub fn description(&self) -> &str {
        &self.description
    }
    /// Qualifications the recipe's operator and sampling steps refer to.
    pub fn qualifications(&self) -> &[Qualification] {
        &self.qualifications
    }
    /// Materials the recipe's steps consume.
    pub fn materials(&self) -> &[Material] {
        &self.materials
    }
    /// Phases in execution order; never empty, and no phase has zero steps.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }
    /// The material declared with `id`.
    pub fn material(&self, id: &str) -> Option<&Material> {
        self.materials.iter().find(|m| m.id == id)
    }
    /// The step at `position`, if the position is inside the recipe.
    pub fn step_at(&self, position: StepPosition) -> Option<&Step> {
        self.phases
            .get(position.phase_index)
            .and_then(|p| p.steps.get(position.step_index))
    }
    /// Where the step with `id` is. Step ids are unique across the recipe.
    pub fn position_of(&self, id: &str) -> Option<StepPosition> {
        self.phases.iter().enumerate().find_map(|(pi, phase)| {
            phase
                .steps
                .iter()
                .position(|s| s.id == id)
                .map(|si| StepPosition {
                    phase_index: pi,
                    step_index: si,
                })
        })
    }
    /// The position after `position` in execution order, or `None` after the last step.
    pub fn next_position(&self, position: StepPosition) -> Option<StepPosition> {
        let phase = self.phases.get(position.phase_index)?;
        if position.step_index + 1 < phase.steps.len() {
            return Some(StepPosition {
                phase_index: position.phase_index,
                step_index: position.step_index + 1,
            });
        }
        (position.phase_index + 1 < self.phases.len()).then_some(StepPosition {
            phase_index: position.phase_index + 1,
            step_index: 0,
        })
    }
    /// Every step in execution order (first pass; decision loops not unrolled).
    pub fn steps(&self) -> impl Iterator<Item = (StepPosition, &Step)> {
        self.phases.iter().enumerate().flat_map(|(pi, phase)| {
            phase.steps.iter().enumerate().map(move |(si, step)| {
                (
                    StepPosition {
                        phase_index: pi,
                        step_index: si,
                    },
                    step,
                )
            })
        })
    }
}

/// Index of a step: phase index and step index within the phase, both 0-based.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
pub struct StepPosition {
    /// 0-based index of the phase.
    pub phase_index: usize,
    /// 0-based index of the step within its phase.
    pub step_index: usize,
}

/// A recipe version: an integer (`3`) or a semver-like `major.minor.patch` (`1.2.0`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum RecipeVersion {
    /// A plain integer version.
    Integer(u64),
    /// `major.minor.patch`.
    Semver {
        /// Incompatible changes.
        major: u64,
        /// Compatible changes.
        minor: u64,
        /// Corrections.
        patch: u64,
    },
}

impl RecipeVersion {
    /// Parses `"1.2.0"` or `"7"`; `None` for anything else.
    pub fn parse(text: &str) -> Option<RecipeVersion> {
        let parts: Vec<&str> = text.split('.').collect();
        let number = |s: &str| -> Option<u64> {
            let digits_only = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if digits_only { s.parse().ok() } else { None }
        };
        match parts.as_slice() {
            [n] => number(n).map(RecipeVersion::Integer),
            [a, b, c] => Some(RecipeVersion::Semver {
                major: number(a)?,
                minor: number(b)?,
                patch: number(c)?,
            }),
            _ => None,
        }
    }
}

impl fmt::Display for RecipeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecipeVersion::Integer(n) => write!(f, "{n}"),
            RecipeVersion::Semver {
                major,
                minor,
                patch,
            } => write!(f, "{major}.{minor}.{patch}"),
        }
    }
}

/// A qualification (training record) an operator must hold to perform a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Qualification {
    /// Identifier the training module knows, e.g. `cpc-aseptic-processing`.
    pub id: String,
    /// Name in English.
    pub name_en: String,
    /// Name in Japanese.
    pub name_ja: String,
}

/// A material the process consumes; its lot is captured when `lot_required`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Material {
    /// Identifier within the recipe, e.g. `lentiviral-vector`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Unit in which every use of the material is given (one of `units::MATERIAL_UNITS`).
    pub unit: String,
    /// Whether the operator must record the lot number when the material is used.
    pub lot_required: bool,
}

/// One use of a material in a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaterialUse {
    /// Id of a material declared in the recipe.
    pub material: String,
    /// Quantity, in the material's unit; positive.
    pub quantity: f64,
    /// The material's unit, repeated so that a reader of the step sees it.
    pub unit: String,
}

/// A phase: a named group of steps run in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// Identifier, unique within the recipe.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Steps in order; never empty.
    pub steps: Vec<Step>,
}

/// A step of a phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Identifier, unique across the whole recipe.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// What the step does.
    pub kind: StepKind,
}

/// The four kinds of step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// The culture device runs an operation with set points for a duration.
    Device(DeviceStep),
    /// A person does something and confirms it.
    Operator(OperatorStep),
    /// A person takes a sample; its results are checked against in-process control limits.
    Sampling(SamplingStep),
    /// The batch decides whether to proceed or to loop back (e.g. harvest when the dose is reached).
    Decision(DecisionStep),
}

impl StepKind {
    /// The kind's name as written in recipe files.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Device(_) => "device",
            StepKind::Operator(_) => "operator",
            StepKind::Sampling(_) => "sampling",
            StepKind::Decision(_) => "decision",
        }
    }
    /// Materials the step consumes (device and operator steps only).
    pub fn materials(&self) -> &[MaterialUse] {
        match self {
            StepKind::Device(d) => &d.materials,
            StepKind::Operator(o) => &o.materials,
            StepKind::Sampling(_) | StepKind::Decision(_) => &[],
        }
    }
    /// The qualification the recipe requires of the person doing the step (operator and
    /// sampling steps); device steps and decisions declare none.
    pub fn qualification(&self) -> Option<&str> {
        match self {
            StepKind::Operator(o) => Some(&o.qualification),
            StepKind::Sampling(s) => Some(&s.qualification),
            StepKind::Device(_) | StepKind::Decision(_) => None,
        }
    }
}

/// What a culture device does in a device step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceOperation {
    /// Magnetic selection/enrichment of T cells.
    Selection,
    /// Activation (anti-CD3/CD28).
    Activation,
    /// Viral transduction.
    Transduction,
    /// Genome editing by electroporation of the editing reagent.
    Electroporation,
    /// Suspension expansion.
    Expansion,
    /// Adherent culture (MSC).
    AdherentCulture,
    /// Medium exchange.
    MediumExchange,
    /// Passage of adherent cells (detach, count, reseed).
    Passage,
    /// Depletion of residual TCR-alpha/beta+ cells.
    Depletion,
    /// Harvest, wash and volume reduction.
    Harvest,
    /// Formulation in cryomedium and fill.
    Formulation,
    /// Controlled-rate freezing.
    ControlledRateFreeze,
}

/// Every operation with its name in recipe files.
pub(crate) const DEVICE_OPERATIONS: &[(DeviceOperation, &str)] = &[
    (DeviceOperation::Selection, "selection"),
    (DeviceOperation::Activation, "activation"),
    (DeviceOperation::Transduction, "transduction"),
    (DeviceOperation::Electroporation, "electroporation"),
    (DeviceOperation::Expansion, "expansion"),
    (DeviceOperation::AdherentCulture, "adherent_culture"),
    (DeviceOperation::MediumExchange, "medium_exchange"),
    (DeviceOperation::Passage, "passage"),
    (DeviceOperation::Depletion, "depletion"),
    (DeviceOperation::Harvest, "harvest"),
    (DeviceOperation::Formulation, "formulation"),
    (
        DeviceOperation::ControlledRateFreeze,
        "controlled_rate_freeze",
    ),
];

impl DeviceOperation {
    /// The operation named `name` in a recipe.
    pub fn parse(name: &str) -> Option<DeviceOperation> {
        DEVICE_OPERATIONS
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(op, _)| *op)
    }
    /// The name used in recipe files.
    pub fn name(self) -> &'static str {
        DEVICE_OPERATIONS
            .iter()
            .find(|(op, _)| *op == self)
            .map(|(_, n)| *n)
            // Cannot fail: DEVICE_OPERATIONS lists every variant (see its test).
            .expect("DEVICE_OPERATIONS lists every DeviceOperation")
    }
}

/// A device step: the device runs `operation` at `set_points` for `duration_hours`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceStep {
    /// What the device does.
    pub operation: DeviceOperation,
    /// Planned duration in hours; positive. The step cannot complete earlier.
    pub duration_hours: f64,
    /// Set points in their units (`SetPoint` names carry the unit).
    pub set_points: BTreeMap<SetPoint, f64>,
    /// Materials loaded for the step; lots are captured when it starts.
    pub materials: Vec<MaterialUse>,
}

/// Meaning of an electronic signature, as recorded with it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SignatureMeaning {
    /// "I performed this."
    Performed,
    /// "I verified this (second person)."
    Verified,
    /// "I reviewed this."
    Reviewed,
    /// "I approve this" (QA).
    Approved,
}

impl SignatureMeaning {
    /// The meaning named `name` in a recipe.
    pub fn parse(name: &str) -> Option<SignatureMeaning> {
        match name {
            "performed" => Some(SignatureMeaning::Performed),
            "verified" => Some(SignatureMeaning::Verified),
            "reviewed" => Some(SignatureMeaning::Reviewed),
            "approved" => Some(SignatureMeaning::Approved),
            _ => None,
        }
    }
    /// The name used in recipe files and records.
    pub fn name(self) -> &'static str {
        match self {
            SignatureMeaning::Performed => "performed",
            SignatureMeaning::Verified => "verified",
            SignatureMeaning::Reviewed => "reviewed",
            SignatureMeaning::Approved => "approved",
        }
    }
}

/// An operator step: instructions in English and Japanese for a qualified person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorStep {
    /// Instruction in English.
    pub instruction_en: String,
    /// Instruction in Japanese.
    pub instruction_ja: String,
    /// Qualification the performer must hold (declared in the recipe).
    pub qualification: String,
    /// When `Some`, completion needs an e-signature with this meaning.
    pub esignature: Option<SignatureMeaning>,
    /// When `Some`, this step is a second person's verification of that earlier operator or
    /// sampling step (four-eyes): whoever started or confirmed that step may not confirm this
    /// one. Validation requires `esignature = "verified"` with it. Absent from the canonical
    /// encoding when `None`, so recipes without it keep their content hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verifies: Option<String>,
    /// Materials used; lots are captured when the step starts.
    pub materials: Vec<MaterialUse>,
}

/// What happens when an in-process result is outside its limits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LimitAction {
    /// Open a deviation; the batch goes on.
    OpenDeviation,
    /// Open a deviation and hold the batch: no further step starts until it is closed.
    Hold,
}

impl LimitAction {
    /// The action named `name` in a recipe.
    pub fn parse(name: &str) -> Option<LimitAction> {
        match name {
            "open_deviation" => Some(LimitAction::OpenDeviation),
            "hold" => Some(LimitAction::Hold),
            _ => None,
        }
    }
    /// The name used in recipe files.
    pub fn name(self) -> &'static str {
        match self {
            LimitAction::OpenDeviation => "open_deviation",
            LimitAction::Hold => "hold",
        }
    }
}

/// An in-process control limit. At least one of `min`, `max` is set; when both, `min < max`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limit {
    /// Unit, from the parameter name's suffix.
    pub unit: Unit,
    /// Lowest acceptable value (inclusive), in `unit`.
    pub min: Option<f64>,
    /// Highest acceptable value (inclusive), in `unit`.
    pub max: Option<f64>,
    /// What an out-of-limit result does.
    pub on_out_of_limit: LimitAction,
    /// Whether the deviation it opens blocks release until closed.
    pub blocks_release: bool,
}

impl Limit {
    /// True when `value` is inside `[min, max]` (inclusive; a missing bound does not limit).
    /// NaN is never within limits.
    pub fn contains(&self, value: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        let above_min = self.min.is_none_or(|min| value >= min);
        let below_max = self.max.is_none_or(|max| value <= max);
        above_min && below_max
    }
}

/// A sampling step: a qualified person takes a sample; results are checked against `limits`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplingStep {
    /// Instruction in English.
    pub instruction_en: String,
    /// Instruction in Japanese.
    pub instruction_ja: String,
    /// Qualification the sampler must hold.
    pub qualification: String,
    /// Limits per parameter name (the name carries the unit, e.g. `viability_percent`).
    pub limits: BTreeMap<String, Limit>,
}

/// A decision: proceed when `parameter` reaches `target_min` inside the day window,
/// otherwise loop back to `loop_back_to` (an earlier step of the same phase).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionStep {
    /// Parameter compared with the target, e.g. `predicted_dose_car_pos_cells`.
    pub parameter: String,
    /// Unit of `parameter`, from its suffix.
    pub unit: Unit,
    /// Proceed when the value is at least this, in `unit`.
    pub target_min: f64,
    /// Never proceed before this many days after batch start.
    pub earliest_day: u32,
    /// Always proceed from this many days after batch start, target met or not.
    pub latest_day: u32,
    /// Step to go back to when the decision is "not yet".
    pub loop_back_to: String,
    /// What happens when the latest day is reached without the target.
    pub on_latest_day_not_met: LimitAction,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_device_operation_listed() {
        for (op, name) in DEVICE_OPERATIONS {
            assert_eq!(DeviceOperation::parse(name), Some(*op));
            assert_eq!(op.name(), *name);
        }
        assert_eq!(
            DEVICE_OPERATIONS.len(),
            12,
            "a new DeviceOperation needs a name"
        );
    }

    #[test]
    fn versions_parse_and_display() {
        assert_eq!(RecipeVersion::parse("7"), Some(RecipeVersion::Integer(7)));
        assert_eq!(
            RecipeVersion::parse("1.2.0")
                .map(|v| v.to_string())
                .as_deref(),
            Some("1.2.0")
        );
        for bad in ["", "1.2", "1.x.0", "-1", "1.2.3.4", "+1"] {
            assert_eq!(RecipeVersion::parse(bad), None, "{bad}");
        }
    }
}
