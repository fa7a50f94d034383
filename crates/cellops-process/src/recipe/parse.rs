//! Reading a recipe file into drafts: every field is read, every structural problem is
//! recorded, and what could be read is kept so that the semantic rules in `validate.rs` can
//! still run and report their problems in the same pass.

use std::collections::BTreeMap;

use super::model::{
    DEVICE_OPERATIONS, DecisionStep, DeviceOperation, DeviceStep, Limit, LimitAction, Material,
    MaterialUse, OperatorStep, Qualification, RecipeVersion, SamplingStep, SignatureMeaning,
    StepKind,
};
use super::problem::ProblemKind;
use super::reader::{Reader, Tbl, join};
use crate::units::{MATERIAL_UNITS, SetPoint, Unit};

/// The only file format version this crate reads (`format_version = 1`).
pub const FORMAT_VERSION: i64 = 1;
/// Most phases in a recipe.
pub const RECIPE_PHASES_MAX: usize = 32;
/// Most steps in a phase.
pub const PHASE_STEPS_MAX: usize = 256;
/// Most declared materials or qualifications.
pub const RECIPE_MATERIALS_MAX: usize = 256;
/// Most materials used by one step.
pub const STEP_MATERIALS_MAX: usize = 32;
/// Most in-process-control limits in one sampling step.
pub const STEP_LIMITS_MAX: usize = 32;
/// Longest device step, in hours (four weeks).
pub const STEP_DURATION_HOURS_MAX: f64 = 24.0 * 28.0;
/// Latest day a decision window may name, counted from batch start.
pub const BATCH_DAYS_MAX: u32 = 90;

pub(crate) struct Draft {
    pub(crate) product: Option<String>,
    pub(crate) product_name: Option<String>,
    pub(crate) version: Option<RecipeVersion>,
    pub(crate) description: String,
    pub(crate) qualifications: Vec<Drafted<Qualification>>,
    pub(crate) materials: Vec<Drafted<Material>>,
    pub(crate) phases: Vec<DraftPhase>,
}

/// An element read from the file: its path, its id (if readable) and the value (if fully readable).
pub(crate) struct Drafted<T> {
    pub(crate) path: String,
    pub(crate) id: Option<String>,
    pub(crate) value: Option<T>,
}

pub(crate) struct DraftPhase {
    pub(crate) path: String,
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) steps: Vec<DraftStep>,
}

pub(crate) struct DraftStep {
    pub(crate) path: String,
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) kind: Option<StepKind>,
}

const TOP_FIELDS: &[&str] = &[
    "format_version",
    "product",
    "product_name",
    "version",
    "description",
    "qualifications",
    "materials",
    "phases",
];

pub(crate) fn read_draft(r: &mut Reader<'_>, root: Tbl<'_>) -> Draft {
    r.check_fields(root, "", TOP_FIELDS);
    read_format_version(r, root);
    let product = r.req_id(root, "", "product");
    let product_name = r.req_str(root, "", "product_name");
    let version = read_version(r, root);
    let description = r.opt_str(root, "", "description").unwrap_or_default();
    let qualifications = r
        .tables(root, "", "qualifications", true, RECIPE_MATERIALS_MAX)
        .into_iter()
        .map(|(path, t)| read_qualification(r, t, path))
        .collect();
    let materials = r
        .tables(root, "", "materials", false, RECIPE_MATERIALS_MAX)
        .into_iter()
        .map(|(path, t)| read_material(r, t, path))
        .collect();
    let phases = r
        .tables(root, "", "phases", true, RECIPE_PHASES_MAX)
        .into_iter()
        .map(|(path, t)| read_phase(r, t, path))
        .collect();
    Draft {
        product,
        product_name,
        version,
        description,
        qualifications,
        materials,
        phases,
    }
}

fn read_format_version(r: &mut Reader<'_>, root: Tbl<'_>) {
    let Some((item, offset)) = r.get(root, "", "format_version") else {
        r.report_at(
            "format_version",
            0,
            ProblemKind::Missing {
                expected: "format_version = 1",
            },
        );
        return;
    };
    if item.as_integer() != Some(FORMAT_VERSION) {
        r.report_at(
            "format_version",
            offset,
            ProblemKind::NotOneOf {
                value: describe(item),
                allowed: FORMAT_VERSION.to_string(),
            },
        );
    }
}

/// A short rendering of a scalar for messages (the type name for anything else).
fn describe(item: &toml_edit::Item) -> String {
    if let Some(i) = item.as_integer() {
        i.to_string()
    } else if let Some(f) = item.as_float() {
        f.to_string()
    } else if let Some(s) = item.as_str() {
        s.to_string()
    } else if let Some(b) = item.as_bool() {
        b.to_string()
    } else {
        item.type_name().to_string()
    }
}

fn read_version(r: &mut Reader<'_>, root: Tbl<'_>) -> Option<RecipeVersion> {
    let Some((item, offset)) = r.get(root, "", "version") else {
        r.report_at(
            "version",
            root.offset,
            ProblemKind::Missing {
                expected: "version = \"1.0.0\" or version = 1",
            },
        );
        return None;
    };
    let parsed = if let Some(i) = item.as_integer() {
        u64::try_from(i).ok().map(RecipeVersion::Integer)
    } else {
        item.as_str().and_then(RecipeVersion::parse)
    };
    if parsed.is_none() {
        r.report_at(
            "version",
            offset,
            ProblemKind::BadVersion {
                value: describe(item),
            },
        );
    }
    parsed
}

fn read_qualification(r: &mut Reader<'_>, t: Tbl<'_>, path: String) -> Drafted<Qualification> {
    r.check_fields(t, &path, &["id", "name_en", "name_ja"]);
    let id = r.req_id(t, &path, "id");
    let name_en = r.req_str(t, &path, "name_en");
    let name_ja = r.req_str(t, &path, "name_ja");
    let value = match (&id, name_en, name_ja) {
        (Some(id), Some(name_en), Some(name_ja)) => Some(Qualification {
            id: id.clone(),
            name_en,
            name_ja,
        }),
        _ => None,
    };
    Drafted { path, id, value }
}

fn read_material(r: &mut Reader<'_>, t: Tbl<'_>, path: String) -> Drafted<Material> {
    r.check_fields(t, &path, &["id", "name", "unit", "lot_required"]);
    let id = r.req_id(t, &path, "id");
    let name = r.req_str(t, &path, "name");
    let unit = read_material_unit(r, t, &path);
    let lot_required = r.req_bool(t, &path, "lot_required");
    let value = match (&id, name, unit, lot_required) {
        (Some(id), Some(name), Some(unit), Some(lot_required)) => Some(Material {
            id: id.clone(),
            name,
            unit,
            lot_required,
        }),
        _ => None,
    };
    Drafted { path, id, value }
}

fn read_material_unit(r: &mut Reader<'_>, t: Tbl<'_>, path: &str) -> Option<String> {
    let unit = r.req_str(t, path, "unit")?;
    if MATERIAL_UNITS.contains(&unit.as_str()) {
        Some(unit)
    } else {
        r.report(
            &join(path, "unit"),
            ProblemKind::NotOneOf {
                value: unit,
                allowed: MATERIAL_UNITS.join(", "),
            },
        );
        None
    }
}

fn read_phase(r: &mut Reader<'_>, t: Tbl<'_>, path: String) -> DraftPhase {
    r.check_fields(t, &path, &["id", "name", "steps"]);
    let id = r.req_id(t, &path, "id");
    let name = r.req_str(t, &path, "name");
    let steps = r
        .tables(t, &path, "steps", true, PHASE_STEPS_MAX)
        .into_iter()
        .map(|(step_path, st)| read_step(r, st, step_path))
        .collect();
    DraftPhase {
        path,
        id,
        name,
        steps,
    }
}

const STEP_COMMON: &[&str] = &["id", "name", "kind"];
const DEVICE_FIELDS: &[&str] = &["operation", "duration_hours", "set_points", "materials"];
const OPERATOR_FIELDS: &[&str] = &[
    "instruction_en",
    "instruction_ja",
    "qualification",
    "esignature",
    "verifies",
    "materials",
];
const SAMPLING_FIELDS: &[&str] = &[
    "instruction_en",
    "instruction_ja",
    "qualification",
    "limits",
];
const DECISION_FIELDS: &[&str] = &[
    "parameter",
    "target_min",
    "earliest_day",
    "latest_day",
    "loop_back_to",
    "on_latest_day_not_met",
];

fn read_step(r: &mut Reader<'_>, t: Tbl<'_>, path: String) -> DraftStep {
    let id = r.req_id(t, &path, "id");
    let name = r.req_str(t, &path, "name");
    let kind_name = r.req_str(t, &path, "kind");
    let specific: &[&str] = match kind_name.as_deref() {
        Some("device") => DEVICE_FIELDS,
        Some("operator") => OPERATOR_FIELDS,
        Some("sampling") => SAMPLING_FIELDS,
        Some("decision") => DECISION_FIELDS,
        Some(other) => {
            r.report(
                &join(&path, "kind"),
                ProblemKind::NotOneOf {
                    value: other.to_string(),
                    allowed: "device, operator, sampling, decision".into(),
                },
            );
            &[]
        }
        None => &[],
    };
    if !specific.is_empty() {
        let allowed: Vec<&str> = STEP_COMMON.iter().chain(specific).copied().collect();
        r.check_fields(t, &path, &allowed);
    }
    let kind = match kind_name.as_deref() {
        Some("device") => read_device(r, t, &path).map(StepKind::Device),
        Some("operator") => read_operator(r, t, &path).map(StepKind::Operator),
        Some("sampling") => read_sampling(r, t, &path).map(StepKind::Sampling),
        Some("decision") => read_decision(r, t, &path).map(StepKind::Decision),
        _ => None,
    };
    DraftStep {
        path,
        id,
        name,
        kind,
    }
}

fn read_device(r: &mut Reader<'_>, t: Tbl<'_>, path: &str) -> Option<DeviceStep> {
    let operation = r.req_str(t, path, "operation").and_then(|name| {
        let op = DeviceOperation::parse(&name);
        if op.is_none() {
            let allowed: Vec<&str> = DEVICE_OPERATIONS.iter().map(|(_, n)| *n).collect();
            r.report(
                &join(path, "operation"),
                ProblemKind::NotOneOf {
                    value: name,
                    allowed: allowed.join(", "),
                },
            );
        }
        op
    });
    let duration_hours = r.req_f64(t, path, "duration_hours").and_then(|hours| {
        check_range(
            r,
            &join(path, "duration_hours"),
            hours,
            f64::MIN_POSITIVE,
            STEP_DURATION_HOURS_MAX,
            "a device step lasts more than 0 and at most 672 hours",
        )
    });
    let set_points = read_set_points(r, t, path);
    let materials = read_material_uses(r, t, path);
    Some(DeviceStep {
        operation: operation?,
        duration_hours: duration_hours?,
        set_points: set_points?,
        materials: materials?,
    })
}

/// Reports `value` outside `[min, max]`; returns it when inside.
fn check_range(
    r: &mut Reader<'_>,
    field: &str,
    value: f64,
    min: f64,
    max: f64,
    rule: &str,
) -> Option<f64> {
    if value < min {
        // `f64::MIN_POSITIVE` as `min` means "strictly positive".
        let kind = if min == f64::MIN_POSITIVE {
            ProblemKind::NotPositive {
                value,
                rule: rule.to_string(),
            }
        } else {
            ProblemKind::Below {
                value,
                min,
                rule: rule.to_string(),
            }
        };
        r.report(field, kind);
        return None;
    }
    if value > max {
        r.report(
            field,
            ProblemKind::Above {
                value,
                max,
                rule: rule.to_string(),
            },
        );
        return None;
    }
    Some(value)
}

fn read_set_points(r: &mut Reader<'_>, t: Tbl<'_>, path: &str) -> Option<BTreeMap<SetPoint, f64>> {
    let field = join(path, "set_points");
    let Some((item, offset)) = r.get(t, path, "set_points") else {
        return Some(BTreeMap::new());
    };
    let table = r.table(item, &field, offset)?;
    let mut out = BTreeMap::new();
    let mut ok = true;
    let names: Vec<String> = table.table.iter().map(|(k, _)| k.to_string()).collect();
    for name in names {
        let Some(set_point) = SetPoint::parse(&name) else {
            r.get(table, &field, &name);
            r.report(
                &join(&field, &name),
                ProblemKind::NotOneOf {
                    value: name.clone(),
                    allowed: SetPoint::known_names(),
                },
            );
            ok = false;
            continue;
        };
        let (min, max) = set_point.range();
        let rule = format!("set point {name} is {min}–{max}");
        let value = r
            .req_f64(table, &field, &name)
            .and_then(|v| check_range(r, &join(&field, &name), v, min, max, &rule));
        match value {
            Some(v) => {
                out.insert(set_point, v);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_material_uses(r: &mut Reader<'_>, t: Tbl<'_>, path: &str) -> Option<Vec<MaterialUse>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (use_path, ut) in r.tables(t, path, "materials", false, STEP_MATERIALS_MAX) {
        r.check_fields(ut, &use_path, &["material", "quantity", "unit"]);
        let material = r.req_id(ut, &use_path, "material");
        let quantity = r.req_f64(ut, &use_path, "quantity").and_then(|q| {
            check_range(
                r,
                &join(&use_path, "quantity"),
                q,
                f64::MIN_POSITIVE,
                f64::MAX,
                "a material quantity is positive",
            )
        });
        let unit = read_material_unit(r, ut, &use_path);
        match (material, quantity, unit) {
            (Some(material), Some(quantity), Some(unit)) => out.push(MaterialUse {
                material,
                quantity,
                unit,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_instructions(
    r: &mut Reader<'_>,
    t: Tbl<'_>,
    path: &str,
) -> Option<(String, String, String)> {
    let en = r.req_str(t, path, "instruction_en");
    let ja = r.req_str(t, path, "instruction_ja");
    let qualification = r.req_id(t, path, "qualification");
    Some((en?, ja?, qualification?))
}

fn read_operator(r: &mut Reader<'_>, t: Tbl<'_>, path: &str) -> Option<OperatorStep> {
    let instructions = read_instructions(r, t, path);
    let esignature = match r.opt_str(t, path, "esignature") {
        None => Some(None),
        Some(name) => match SignatureMeaning::parse(&name) {
            Some(meaning) => Some(Some(meaning)),
            None => {
                r.report(
                    &join(path, "esignature"),
                    ProblemKind::NotOneOf {
                        value: name,
                        allowed: "performed, verified, reviewed, approved".into(),
                    },
                );
                None
            }
        },
    };
    let verifies = match t.table.get("verifies") {
        None => Some(None),
        Some(_) => r.req_id(t, path, "verifies").map(Some),
    };
    let materials = read_material_uses(r, t, path);
    let (instruction_en, instruction_ja, qualification) = instructions?;
    Some(OperatorStep {
        instruction_en,
        instruction_ja,
        qualification,
        esignature: esignature?,
        verifies: verifies?,
        materials: materials?,
    })
}

fn read_sampling(r: &mut Reader<'_>, t: Tbl<'_>, path: &str) -> Option<SamplingStep> {
    let instructions = read_instructions(r, t, path);
    let limits = read_limits(r, t, path);
    let (instruction_en, instruction_ja, qualification) = instructions?;
    Some(SamplingStep {
        instruction_en,
        instruction_ja,
        qualification,
        limits: limits?,
    })
}

fn read_limits(r: &mut Reader<'_>, t: Tbl<'_>, path: &str) -> Option<BTreeMap<String, Limit>> {
    let field = join(path, "limits");
    let Some((item, offset)) = r.get(t, path, "limits") else {
        r.report_at(
            &field,
            t.offset,
            ProblemKind::Missing {
                expected: "a table of limits, e.g. limits.viability_percent = { min = 70, on_out_of_limit = \"open_deviation\" }",
            },
        );
        return None;
    };
    let table = r.table(item, &field, offset)?;
    let names: Vec<String> = table.table.iter().map(|(k, _)| k.to_string()).collect();
    if names.is_empty() {
        r.report_at(&field, offset, ProblemKind::Empty);
        return None;
    }
    if names.len() > STEP_LIMITS_MAX {
        r.report_at(
            &field,
            offset,
            ProblemKind::TooMany {
                what: "limits",
                count: names.len(),
                max: STEP_LIMITS_MAX,
            },
        );
        return None;
    }
    let mut out = BTreeMap::new();
    let mut ok = true;
    for name in names {
        let limit_path = join(&field, &name);
        let limit = r
            .get(table, &field, &name)
            .and_then(|(item, offset)| r.table(item, &limit_path, offset))
            .and_then(|lt| read_limit(r, lt, &limit_path, &name));
        match limit {
            Some(limit) => {
                out.insert(name, limit);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_limit(r: &mut Reader<'_>, t: Tbl<'_>, path: &str, name: &str) -> Option<Limit> {
    r.check_fields(
        t,
        path,
        &["min", "max", "on_out_of_limit", "blocks_release"],
    );
    let unit = parameter_unit(r, path, name);
    let min = r.opt_f64(t, path, "min");
    let max = r.opt_f64(t, path, "max");
    let action = read_action(r, t, path, "on_out_of_limit", true);
    let blocks_release = r.opt_bool(t, path, "blocks_release").unwrap_or(true);
    let unit = unit?;
    let range = unit.physical_range();
    let mut ok = true;
    for (key, value) in [("min", min), ("max", max)] {
        if let Some(v) = value {
            ok &= check_range(r, &join(path, key), v, range.min, range.max, range.rule).is_some();
        }
    }
    match (min, max) {
        (None, None) if t.table.get("min").is_none() && t.table.get("max").is_none() => {
            r.report(path, ProblemKind::NoBound);
            ok = false;
        }
        (Some(lo), Some(hi)) if lo >= hi => {
            r.report(
                &join(path, "min"),
                ProblemKind::LimitsNotOrdered { min: lo, max: hi },
            );
            ok = false;
        }
        _ => {}
    }
    let bounds_readable = min.is_some() || max.is_some();
    (ok && bounds_readable).then_some(())?;
    Some(Limit {
        unit,
        min,
        max,
        on_out_of_limit: action?,
        blocks_release,
    })
}

fn parameter_unit(r: &mut Reader<'_>, path: &str, name: &str) -> Option<Unit> {
    let unit = Unit::of_parameter(name);
    if unit.is_none() {
        r.report(
            path,
            ProblemKind::UnknownUnit {
                name: name.to_string(),
                suffixes: Unit::known_suffixes(),
            },
        );
    }
    unit
}

fn read_action(
    r: &mut Reader<'_>,
    t: Tbl<'_>,
    path: &str,
    key: &str,
    required: bool,
) -> Option<LimitAction> {
    let name = if required {
        r.req_str(t, path, key)?
    } else {
        match r.opt_str(t, path, key) {
            Some(name) => name,
            None if t.table.get(key).is_some() => return None,
            None => return Some(LimitAction::OpenDeviation),
        }
    };
    let action = LimitAction::parse(&name);
    if action.is_none() {
        r.report(
            &join(path, key),
            ProblemKind::NotOneOf {
                value: name,
                allowed: "open_deviation, hold".into(),
            },
        );
    }
    action
}

fn read_decision(r: &mut Reader<'_>, t: Tbl<'_>, path: &str) -> Option<DecisionStep> {
    let parameter = r.req_str(t, path, "parameter");
    let unit = parameter
        .as_deref()
        .and_then(|name| parameter_unit(r, &join(path, "parameter"), name));
    let target_min = r.req_f64(t, path, "target_min");
    let earliest_day = r.req_u32(t, path, "earliest_day");
    let latest_day = r.req_u32(t, path, "latest_day").and_then(|d| {
        check_range(
            r,
            &join(path, "latest_day"),
            f64::from(d),
            0.0,
            f64::from(BATCH_DAYS_MAX),
            "a decision window ends by day 90",
        )
        .map(|_| d)
    });
    let loop_back_to = r.req_id(t, path, "loop_back_to");
    let on_latest = read_action(r, t, path, "on_latest_day_not_met", false);
    let target_min = match (unit, target_min) {
        (Some(unit), Some(v)) => {
            let range = unit.physical_range();
            check_range(
                r,
                &join(path, "target_min"),
                v,
                range.min,
                range.max,
                range.rule,
            )
        }
        _ => None,
    };
    if let (Some(earliest), Some(latest)) = (earliest_day, latest_day)
        && earliest > latest
    {
        r.report(
            &join(path, "earliest_day"),
            ProblemKind::WindowNotOrdered { earliest, latest },
        );
        return None;
    }
    Some(DecisionStep {
        parameter: parameter?,
        unit: unit?,
        target_min: target_min?,
        earliest_day: earliest_day?,
        latest_day: latest_day?,
        loop_back_to: loop_back_to?,
        on_latest_day_not_met: on_latest?,
    })
}
