//! `cellops recipe validate | diff | hash`, run as the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

fn recipes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes")
}

/// Runs `cellops recipe <args>`; returns (exit code, stdout).
fn cellops_recipe(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cellops"))
        .arg("recipe")
        .args(args)
        .output()
        .expect("the cellops binary runs");
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    (output.status.code().expect("exit code"), stdout)
}

/// Writes `text` to a file in this test target's temporary directory.
fn write_temp(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_recipe");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn prime_text() -> String {
    std::fs::read_to_string(recipes_dir().join("prime-car-t.toml")).unwrap()
}

#[test]
fn shipped_recipes_validate() {
    let files: Vec<String> = ["prime-car-t.toml", "allo-car-t-lot.toml", "bm-msc.toml"]
        .iter()
        .map(|f| recipes_dir().join(f).display().to_string())
        .collect();
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(String::as_str))
        .collect();
    let (code, stdout) = cellops_recipe(&args);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.contains(": ok: ")).count(),
        3,
        "{stdout}"
    );
}

#[test]
fn invalid_recipe_prints_every_problem_and_exits_1() {
    let bad = prime_text()
        .replace(
            "limits.viability_percent = { min = 80,",
            "limits.viability_percent = { min = 120,",
        )
        .replace("duration_hours = 4\n", "duration_hours = 0\n");
    let path = write_temp("bad-prime.toml", &bad);
    let (code, stdout) = cellops_recipe(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let line = bad.lines().position(|l| l.contains("min = 120")).unwrap() + 1;
    let file = path.display().to_string();
    assert!(lines[0].starts_with(&format!("{file}:{line}:")), "{stdout}");
    assert!(
        lines[0].ends_with(
            "phases[0].steps[1].limits.viability_percent.min: 120 is above 100 (rule: a percentage is 0–100)"
        ),
        "{stdout}"
    );
    assert!(
        lines[1].contains("phases[1].steps[1].duration_hours: 0 is not above 0"),
        "{stdout}"
    );
}

#[test]
fn diff_lists_changes_between_versions() {
    let new = prime_text()
        .replace("version = \"1.0.0\"", "version = \"1.1.0\"")
        .replace("target_min = 3.0e8", "target_min = 1.0e8");
    let old_path = recipes_dir().join("prime-car-t.toml");
    let new_path = write_temp("prime-1.1.0.toml", &new);
    let (code, stdout) = cellops_recipe(&[
        "diff",
        old_path.to_str().unwrap(),
        new_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        vec![
            "prime-car-t 1.0.0 -> prime-car-t 1.1.0: 2 change(s)",
            "~ version: 1.0.0 -> 1.1.0",
            "~ phases.expansion.steps.harvest-decision.decision.target_min: 300000000 -> 100000000",
        ]
    );
}

#[test]
fn hash_is_stable_across_formatting() {
    let original = recipes_dir().join("prime-car-t.toml");
    let reformatted = write_temp(
        "prime-reformatted.toml",
        &format!(
            "# reformatted copy\n\n{}",
            prime_text().replace(" = ", "   =   ")
        ),
    );
    let (code, stdout) = cellops_recipe(&[
        "hash",
        original.to_str().unwrap(),
        reformatted.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}");
    let hashes: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(hashes.len(), 2);
    assert!(
        hashes[0].starts_with("sha256:") && hashes[0].len() == 7 + 64,
        "{stdout}"
    );
    assert_eq!(hashes[0], hashes[1]);
}

#[test]
fn missing_file_is_a_clear_error() {
    let (code, stdout) = cellops_recipe(&["validate", "/nonexistent/recipe.toml"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("/nonexistent/recipe.toml: cannot read the file"),
        "{stdout}"
    );
}
