//! `diff(old, new)`: what changed between two recipe versions, for change control.
//!
//! Phases, steps, materials and qualifications are matched by id; matched items are compared
//! field by field. Paths use ids, not indices, so an inserted step does not make every later
//! step look changed: `phases.expansion.steps.ipc-day5.limits.viability_percent.min`.

use std::collections::BTreeMap;
use std::fmt;

use super::model::{Limit, Material, Qualification, Recipe, Step, StepKind};

/// Whether something was added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// Present only in the new version.
    Added,
    /// Present only in the old version.
    Removed,
    /// Present in both with different values.
    Changed,
}

/// What part of the recipe a change touches, so reviewers can sort by risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeArea {
    /// Product name, version, description.
    Metadata,
    /// A qualification declaration.
    Qualification,
    /// A material declaration or a material use in a step.
    Material,
    /// A phase added, removed, renamed or reordered.
    Phase,
    /// A step added, removed, reordered, or a general step field.
    Step,
    /// A device set point or duration.
    SetPoint,
    /// An in-process control limit.
    Limit,
    /// A decision rule (target, window, loop).
    Decision,
}

/// One change between two recipe versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeChange {
    /// Added, removed or changed.
    pub kind: ChangeKind,
    /// Area of the recipe.
    pub area: ChangeArea,
    /// Id-based path, e.g. `phases.expansion.steps.ipc-day5.limits.glucose_mm.min`.
    pub path: String,
    /// Old value as text (`None` when added).
    pub old: Option<String>,
    /// New value as text (`None` when removed).
    pub new: Option<String>,
}

impl fmt::Display for RecipeChange {
    /// `+ path: new`, `- path: old` or `~ path: old -> new`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let old = self.old.as_deref().unwrap_or("");
        let new = self.new.as_deref().unwrap_or("");
        match self.kind {
            ChangeKind::Added => write!(f, "+ {}: {new}", self.path),
            ChangeKind::Removed => write!(f, "- {}: {old}", self.path),
            ChangeKind::Changed => write!(f, "~ {}: {old} -> {new}", self.path),
        }
    }
}

/// Every change from `old` to `new`, in recipe order. Empty when the contents are equal.
pub fn diff(old: &Recipe, new: &Recipe) -> Vec<RecipeChange> {
    let mut out = Vec::new();
    compare_maps(&mut out, &metadata(old), &metadata(new));
    compare_keyed(
        &mut out,
        "qualifications",
        keyed(old.qualifications(), |q| &q.id, qualification_fields),
        keyed(new.qualifications(), |q| &q.id, qualification_fields),
    );
    compare_keyed(
        &mut out,
        "materials",
        keyed(old.materials(), |m| &m.id, material_fields),
        keyed(new.materials(), |m| &m.id, material_fields),
    );
    diff_phases(&mut out, old, new);
    out
}

type Fields = BTreeMap<String, String>;

fn metadata(r: &Recipe) -> Fields {
    let mut m = Fields::new();
    m.insert("product".into(), r.product().into());
    m.insert("product_name".into(), r.product_name().into());
    m.insert("version".into(), r.version().to_string());
    m.insert("description".into(), r.description().into());
    m
}

fn qualification_fields(q: &Qualification) -> Fields {
    Fields::from([
        ("name_en".to_string(), q.name_en.clone()),
        ("name_ja".to_string(), q.name_ja.clone()),
    ])
}

fn material_fields(m: &Material) -> Fields {
    Fields::from([
        ("name".to_string(), m.name.clone()),
        ("unit".to_string(), m.unit.clone()),
        ("lot_required".to_string(), m.lot_required.to_string()),
    ])
}

/// Items by id, in declaration order, with their flattened fields.
fn keyed<'a, T>(
    items: &'a [T],
    id: impl Fn(&'a T) -> &'a String,
    fields: impl Fn(&'a T) -> Fields,
) -> Vec<(&'a str, Fields)> {
    items.iter().map(|i| (id(i).as_str(), fields(i))).collect()
}

fn area_of(path: &str) -> ChangeArea {
    let segment = |s: &str| path.contains(s);
    if path.starts_with("qualifications.") {
        ChangeArea::Qualification
    } else if path.starts_with("materials.") || segment(".materials.") {
        ChangeArea::Material
    } else if segment(".set_points.") || path.ends_with(".duration_hours") {
        ChangeArea::SetPoint
    } else if segment(".limits.") {
        ChangeArea::Limit
    } else if segment(".decision.") {
        ChangeArea::Decision
    } else if segment(".steps.") || path.ends_with(".step_order") {
        ChangeArea::Step
    } else if path.starts_with("phases") {
        ChangeArea::Phase
    } else {
        ChangeArea::Metadata
    }
}

fn push(
    out: &mut Vec<RecipeChange>,
    kind: ChangeKind,
    path: String,
    old: Option<String>,
    new: Option<String>,
) {
    out.push(RecipeChange {
        kind,
        area: area_of(&path),
        path,
        old,
        new,
    });
}

/// Field-by-field comparison of two flattened maps (keys are full paths), in path order.
fn compare_maps(out: &mut Vec<RecipeChange>, old: &Fields, new: &Fields) {
    let paths: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for path in paths {
        let (kind, old_value, new_value) = match (old.get(path), new.get(path)) {
            (Some(o), Some(n)) if o == n => continue,
            (Some(o), Some(n)) => (ChangeKind::Changed, Some(o.clone()), Some(n.clone())),
            (Some(o), None) => (ChangeKind::Removed, Some(o.clone()), None),
            (None, Some(n)) => (ChangeKind::Added, None, Some(n.clone())),
            (None, None) => continue,
        };
        push(out, kind, path.clone(), old_value, new_value);
    }
}

fn prefixed(prefix: &str, fields: &Fields) -> Fields {
    fields
        .iter()
        .map(|(k, v)| (format!("{prefix}.{k}"), v.clone()))
        .collect()
}

/// Compares id-keyed items: added and removed items are one change each (with a summary),
/// matched items are compared field by field.
fn compare_keyed(
    out: &mut Vec<RecipeChange>,
    prefix: &str,
    old: Vec<(&str, Fields)>,
    new: Vec<(&str, Fields)>,
) {
    let new_map: BTreeMap<&str, &Fields> = new.iter().map(|(id, f)| (*id, f)).collect();
    let old_map: BTreeMap<&str, &Fields> = old.iter().map(|(id, f)| (*id, f)).collect();
    for (id, fields) in &old {
        let path = format!("{prefix}.{id}");
        match new_map.get(id) {
            None => push(out, ChangeKind::Removed, path, Some(summary(fields)), None),
            Some(new_fields) => {
                compare_maps(out, &prefixed(&path, fields), &prefixed(&path, new_fields))
            }
        }
    }
    for (id, fields) in &new {
        if !old_map.contains_key(id) {
            push(
                out,
                ChangeKind::Added,
                format!("{prefix}.{id}"),
                None,
                Some(summary(fields)),
            );
        }
    }
}

fn summary(fields: &Fields) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reports a reordering of the items both versions share.
fn compare_order(out: &mut Vec<RecipeChange>, path: String, old: &[&str], new: &[&str]) {
    let common_old: Vec<&str> = old.iter().copied().filter(|id| new.contains(id)).collect();
    let common_new: Vec<&str> = new.iter().copied().filter(|id| old.contains(id)).collect();
    if common_old != common_new {
        push(
            out,
            ChangeKind::Changed,
            path,
            Some(old.join(", ")),
            Some(new.join(", ")),
        );
    }
}

fn diff_phases(out: &mut Vec<RecipeChange>, old: &Recipe, new: &Recipe) {
    let old_ids: Vec<&str> = old.phases().iter().map(|p| p.id.as_str()).collect();
    let new_ids: Vec<&str> = new.phases().iter().map(|p| p.id.as_str()).collect();
    compare_order(out, "phases.phase_order".into(), &old_ids, &new_ids);
    for phase in old.phases() {
        let path = format!("phases.{}", phase.id);
        let Some(new_phase) = new.phases().iter().find(|p| p.id == phase.id) else {
            let steps: Vec<&str> = phase.steps.iter().map(|s| s.id.as_str()).collect();
            push(
                out,
                ChangeKind::Removed,
                path,
                Some(format!("name={}, steps={}", phase.name, steps.join(" "))),
                None,
            );
            continue;
        };
        compare_maps(
            out,
            &Fields::from([(format!("{path}.name"), phase.name.clone())]),
            &Fields::from([(format!("{path}.name"), new_phase.name.clone())]),
        );
        let old_steps: Vec<&str> = phase.steps.iter().map(|s| s.id.as_str()).collect();
        let new_steps: Vec<&str> = new_phase.steps.iter().map(|s| s.id.as_str()).collect();
        compare_order(out, format!("{path}.step_order"), &old_steps, &new_steps);
        compare_keyed(
            out,
            &format!("{path}.steps"),
            keyed(&phase.steps, |s| &s.id, step_fields),
            keyed(&new_phase.steps, |s| &s.id, step_fields),
        );
    }
    for phase in new.phases() {
        if !old.phases().iter().any(|p| p.id == phase.id) {
            let steps: Vec<&str> = phase.steps.iter().map(|s| s.id.as_str()).collect();
            push(
                out,
                ChangeKind::Added,
                format!("phases.{}", phase.id),
                None,
                Some(format!("name={}, steps={}", phase.name, steps.join(" "))),
            );
        }
    }
}

fn number(value: f64) -> String {
    format!("{value}")
}

/// A step flattened to `field path -> value` pairs.
fn step_fields(step: &Step) -> Fields {
    let mut f = Fields::new();
    f.insert("name".into(), step.name.clone());
    f.insert("kind".into(), step.kind.name().into());
    for u in step.kind.materials() {
        f.insert(
            format!("materials.{}", u.material),
            format!("{} {}", number(u.quantity), u.unit),
        );
    }
    match &step.kind {
        StepKind::Device(d) => {
            f.insert("operation".into(), d.operation.name().into());
            f.insert("duration_hours".into(), number(d.duration_hours));
            for (sp, v) in &d.set_points {
                f.insert(format!("set_points.{}", sp.name()), number(*v));
            }
        }
        StepKind::Operator(o) => {
            f.insert("instruction_en".into(), o.instruction_en.clone());
            f.insert("instruction_ja".into(), o.instruction_ja.clone());
            f.insert("qualification".into(), o.qualification.clone());
            f.insert(
                "esignature".into(),
                o.esignature.map_or("none", |m| m.name()).into(),
            );
            if let Some(target) = &o.verifies {
                f.insert("verifies".into(), target.clone());
            }
        }
        StepKind::Sampling(s) => {
            f.insert("instruction_en".into(), s.instruction_en.clone());
            f.insert("instruction_ja".into(), s.instruction_ja.clone());
            f.insert("qualification".into(), s.qualification.clone());
            for (name, limit) in &s.limits {
                limit_fields(&mut f, name, limit);
            }
        }
        StepKind::Decision(d) => {
            f.insert("decision.parameter".into(), d.parameter.clone());
            f.insert("decision.target_min".into(), number(d.target_min));
            f.insert("decision.earliest_day".into(), d.earliest_day.to_string());
            f.insert("decision.latest_day".into(), d.latest_day.to_string());
            f.insert("decision.loop_back_to".into(), d.loop_back_to.clone());
            f.insert(
                "decision.on_latest_day_not_met".into(),
                d.on_latest_day_not_met.name().into(),
            );
        }
    }
    f
}

fn limit_fields(f: &mut Fields, name: &str, limit: &Limit) {
    let prefix = format!("limits.{name}");
    if let Some(min) = limit.min {
        f.insert(format!("{prefix}.min"), number(min));
    }
    if let Some(max) = limit.max {
        f.insert(format!("{prefix}.max"), number(max));
    }
    f.insert(
        format!("{prefix}.on_out_of_limit"),
        limit.on_out_of_limit.name().into(),
    );
    f.insert(
        format!("{prefix}.blocks_release"),
        limit.blocks_release.to_string(),
    );
}
