//! Recipe validation through the public surface: `Recipe::parse` and its error report.

use cellops_process::Recipe;
use cellops_process::recipe::problem::ProblemKind;

/// A small valid recipe; tests replace parts of it to make one or more problems.
pub const MINIMAL: &str = r#"
format_version = 1
product = "demo"
product_name = "Demo product"
version = "1.0.0"

[[qualifications]]
id = "op"
name_en = "Operator"
name_ja = "作業者"

[[materials]]
id = "medium"
name = "Medium"
unit = "mL"
lot_required = true

[[phases]]
id = "culture"
name = "Culture"

[[phases.steps]]
id = "seed"
name = "Seed"
kind = "operator"
instruction_en = "Seed the cells."
instruction_ja = "細胞を播種する。"
qualification = "op"
esignature = "performed"
materials = [{ material = "medium", quantity = 50, unit = "mL" }]

[[phases.steps]]
id = "grow"
name = "Grow"
kind = "device"
operation = "expansion"
duration_hours = 24
set_points = { temperature_c = 37, co2_percent = 5 }

[[phases.steps]]
id = "sample"
name = "Sample"
kind = "sampling"
instruction_en = "Sample 1 mL."
instruction_ja = "1 mL採取する。"
qualification = "op"
limits.viability_percent = { min = 70, on_out_of_limit = "open_deviation" }

[[phases.steps]]
id = "decide"
name = "Harvest?"
kind = "decision"
parameter = "predicted_dose_cells"
target_min = 1e9
earliest_day = 2
latest_day = 5
loop_back_to = "grow"
"#;

fn check_ok(text: &str) -> Recipe {
    match Recipe::parse("t.toml", text) {
        Ok(recipe) => recipe,
        Err(errors) => panic!("expected a valid recipe, got:\n{errors}"),
    }
}

/// Parses `text`, expects failure, returns the report lines.
fn check_err(text: &str) -> Vec<String> {
    match Recipe::parse("t.toml", text) {
        Ok(_) => panic!("expected problems, the recipe was accepted"),
        Err(errors) => errors.to_string().lines().map(str::to_string).collect(),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle} not in text"))
}

#[test]
fn minimal_recipe_is_valid() {
    let recipe = check_ok(MINIMAL);
    assert_eq!(recipe.product(), "demo");
    assert_eq!(recipe.version().to_string(), "1.0.0");
    assert_eq!(recipe.phases()[0].steps.len(), 4);
}

#[test]
fn percentage_above_100_names_file_line_column_path_and_rule() {
    let text = MINIMAL.replace("{ min = 70, on_out", "{ min = 120, on_out");
    let lines = check_err(&text);
    let line = line_of(&text, "min = 120");
    let column = text.lines().nth(line - 1).unwrap().find("120").unwrap() + 1;
    assert_eq!(
        lines,
        vec![format!(
            "t.toml:{line}:{column}: phases[0].steps[2].limits.viability_percent.min: 120 is above 100 (rule: a percentage is 0–100)"
        )]
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let text = MINIMAL
        .replace(
            "qualification = \"op\"\nesignature",
            "qualification = \"nobody\"\nesignature",
        )
        .replace("duration_hours = 24", "duration_hours = -1")
        .replace("co2_percent = 5", "co2_percnt = 5")
        .replace("{ min = 70, on_out", "{ min = 90, max = 80, on_out")
        .replace("earliest_day = 2", "earliest_day = 6")
        .replace("material = \"medium\"", "material = \"serum\"")
        .replace("operation = \"expansion\"", "operation = \"brewing\"");
    let lines = check_err(&text);
    let expect = [
        (
            "phases[0].steps[0].qualification",
            "`nobody` is not a declared qualification",
        ),
        (
            "phases[0].steps[0].materials[0].material",
            "`serum` is not a declared material",
        ),
        ("phases[0].steps[1].operation", "`brewing` is not allowed"),
        (
            "phases[0].steps[1].duration_hours",
            "-1 is not above 0 (rule: a device step lasts more than 0 and at most 672 hours)",
        ),
        (
            "phases[0].steps[1].set_points.co2_percnt",
            "`co2_percnt` is not allowed",
        ),
        (
            "phases[0].steps[2].limits.viability_percent.min",
            "min 90 is not below max 80",
        ),
        (
            "phases[0].steps[3].earliest_day",
            "earliest_day 6 is after latest_day 5",
        ),
    ];
    for (path, message) in expect {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!(": {path}: {message}"))),
            "missing `{path}: {message}` in:\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(lines.len(), expect.len(), "{}", lines.join("\n"));
    // Reported in file order.
    let positions: Vec<(usize, usize)> = lines
        .iter()
        .map(|l| {
            let mut parts = l.split(':');
            parts.next();
            let line = parts.next().unwrap().parse().unwrap();
            let column = parts.next().unwrap().parse().unwrap();
            (line, column)
        })
        .collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
}

#[test]
fn structural_and_semantic_problems_come_together() {
    // A step with a missing kind and a duplicate step id in the same file.
    let text = MINIMAL
        .replace("kind = \"operator\"\n", "")
        .replace("id = \"sample\"", "id = \"grow\"");
    let lines = check_err(&text);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("phases[0].steps[0].kind: is missing")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l
            .contains("phases[0].steps[2].id: id `grow` is already used at phases[0].steps[1]")),
        "{lines:?}"
    );
}

#[test]
fn unknown_fields_and_units_are_rejected() {
    let text = MINIMAL
        .replace(
            "lot_required = true",
            "lot_required = true\nlot_requird = false",
        )
        .replace("limits.viability_percent", "limits.viability");
    let lines = check_err(&text);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("materials[0].lot_requird: unknown field")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("limits.viability: `viability` has no known unit")),
        "{lines:?}"
    );
}

#[test]
fn decision_loops_must_go_back_and_run_a_device_step() {
    let forward = MINIMAL.replace("loop_back_to = \"grow\"", "loop_back_to = \"decide\"");
    let lines = check_err(&forward);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("loop_back_to: `decide` is not an earlier step")),
        "{lines:?}"
    );

    let no_device = MINIMAL.replace("loop_back_to = \"grow\"", "loop_back_to = \"sample\"");
    let lines = check_err(&no_device);
    assert!(
        lines.iter().any(|l| l.contains("contain no device step")),
        "{lines:?}"
    );
}

#[test]
fn unreachable_decision_window_is_rejected() {
    let text = MINIMAL
        .replace("duration_hours = 24", "duration_hours = 200")
        .replace("latest_day = 5", "latest_day = 3");
    let lines = check_err(&text);
    assert!(
        lines.iter().any(|l| l.contains(
            "latest_day: latest_day 3 (= 72 h) is before the 200 h the device steps before it need"
        )),
        "{lines:?}"
    );
}

#[test]
fn material_unit_must_match_declaration() {
    let text = MINIMAL.replace(
        "quantity = 50, unit = \"mL\"",
        "quantity = 50, unit = \"L\"",
    );
    let lines = check_err(&text);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("unit `L` differs from the material's unit `mL`")),
        "{lines:?}"
    );
}

#[test]
fn syntax_error_has_a_position() {
    let text = MINIMAL.replace("product_name = \"Demo product\"", "product_name = \"Demo");
    let lines = check_err(&text);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = line_of(&text, "product_name");
    assert!(
        lines[0].starts_with(&format!("t.toml:{line}:")),
        "{lines:?}"
    );
    assert!(lines[0].contains("TOML syntax error"), "{lines:?}");
}

#[test]
fn missing_required_fields_are_named() {
    let text = MINIMAL
        .replace("version = \"1.0.0\"\n", "")
        .replace("name_ja = \"作業者\"\n", "");
    let lines = check_err(&text);
    assert!(
        lines.iter().any(|l| l.contains(": version: is missing")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("qualifications[0].name_ja: is missing")),
        "{lines:?}"
    );
}

#[test]
fn bad_versions_and_ids() {
    let text = MINIMAL
        .replace("version = \"1.0.0\"", "version = \"1.0\"")
        .replace("id = \"seed\"", "id = \"Seed Step\"");
    let lines = check_err(&text);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("version: `1.0` is not a version")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("`Seed Step` is not a valid id")),
        "{lines:?}"
    );
    let integer = MINIMAL.replace("version = \"1.0.0\"", "version = 4");
    assert_eq!(check_ok(&integer).version().to_string(), "4");
}

#[test]
fn problem_kinds_are_typed() {
    let text = MINIMAL.replace("{ min = 70, on_out", "{ min = 120, on_out");
    let errors = Recipe::parse("t.toml", &text).unwrap_err();
    assert!(
        matches!(errors.problems[0].kind, ProblemKind::Above { value, max, .. } if value == 120.0 && max == 100.0)
    );
}
