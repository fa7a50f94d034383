//! `diff` for change control.

use cellops_process::Recipe;
use cellops_process::recipe::diff::{ChangeArea, ChangeKind, diff};

use crate::validation::MINIMAL;

fn parse(text: &str) -> Recipe {
    Recipe::parse("t.toml", text).unwrap_or_else(|e| panic!("{e}"))
}

fn lines(old: &str, new: &str) -> Vec<String> {
    diff(&parse(old), &parse(new))
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn equal_recipes_have_no_changes() {
    let reformatted = MINIMAL.replace("duration_hours = 24", "duration_hours = 24.0 # h");
    assert!(diff(&parse(MINIMAL), &parse(&reformatted)).is_empty());
}

#[test]
fn set_point_limit_and_version_changes_are_listed() {
    let new = MINIMAL
        .replace("version = \"1.0.0\"", "version = \"1.1.0\"")
        .replace("temperature_c = 37", "temperature_c = 36.5")
        .replace("{ min = 70, on_out", "{ min = 75, max = 100, on_out");
    let changes = diff(&parse(MINIMAL), &parse(&new));
    let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        vec![
            "~ version: 1.0.0 -> 1.1.0",
            "~ phases.culture.steps.grow.set_points.temperature_c: 37 -> 36.5",
            "+ phases.culture.steps.sample.limits.viability_percent.max: 100",
            "~ phases.culture.steps.sample.limits.viability_percent.min: 70 -> 75",
        ]
    );
    let areas: Vec<ChangeArea> = changes.iter().map(|c| c.area).collect();
    assert_eq!(
        areas,
        vec![
            ChangeArea::Metadata,
            ChangeArea::SetPoint,
            ChangeArea::Limit,
            ChangeArea::Limit
        ]
    );
}

#[test]
fn added_removed_and_reordered_steps() {
    let extra_step = "[[phases.steps]]\nid = \"feed\"\nname = \"Feed\"\nkind = \"device\"\noperation = \"medium_exchange\"\nduration_hours = 1\n\n[[phases.steps]]\nid = \"sample\"";
    let new = MINIMAL.replacen("[[phases.steps]]\nid = \"sample\"", extra_step, 1);
    let text = lines(MINIMAL, &new);
    assert_eq!(
        text,
        vec![
            "+ phases.culture.steps.feed: duration_hours=1, kind=device, name=Feed, operation=medium_exchange"
        ]
    );
    let back = lines(&new, MINIMAL);
    assert_eq!(back.len(), 1);
    assert!(
        back[0].starts_with("- phases.culture.steps.feed: "),
        "{back:?}"
    );
}

#[test]
fn decision_window_change_is_a_decision_change() {
    let new = MINIMAL.replace("latest_day = 5", "latest_day = 6");
    let changes = diff(&parse(MINIMAL), &parse(&new));
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].kind, ChangeKind::Changed);
    assert_eq!(changes[0].area, ChangeArea::Decision);
    assert_eq!(
        changes[0].path,
        "phases.culture.steps.decide.decision.latest_day"
    );
}
