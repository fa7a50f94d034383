//! `cellops schedule plan | generate | check`, run as the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn instances_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cellops-schedule/instances")
}

/// Runs `cellops schedule <args>`; returns (exit code, stdout, stderr).
fn cellops_schedule(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cellops"))
        .arg("schedule")
        .args(args)
        .output()
        .expect("the cellops binary runs");
    (
        output.status.code().expect("exit code"),
        String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    )
}

fn temp_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_schedule");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn plan_prints_every_order_and_gantt_rows_within_capacity() {
    let path = instances_dir().join("gen-n50-s1.json");
    let instance: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (code, stdout, stderr) = cellops_schedule(&[
        "plan",
        path.to_str().unwrap(),
        "--gantt",
        "--iterations",
        "500",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).expect("plan is JSON");
    let orders = plan["orders"].as_array().unwrap();
    assert_eq!(orders.len(), instance["orders"].as_array().unwrap().len());
    assert_eq!(plan["unplanned"], serde_json::json!([]));
    // The objective is the sum of the orders' costs and never below the proven bound nor
    // above what construction alone achieved.
    let sum: i64 = orders.iter().map(|o| o["cost"].as_i64().unwrap()).sum();
    let objective = plan["objective"].as_i64().unwrap();
    assert_eq!(objective, sum);
    assert!(plan["lower_bound"].as_i64().unwrap() <= objective, "{plan}");
    assert!(objective <= plan["construction_objective"].as_i64().unwrap());
    for o in orders {
        let stages = o["stages"].as_array().unwrap();
        assert!(!stages.is_empty(), "{o}");
        assert_eq!(
            o["infusion"].as_str(),
            stages.last().unwrap()["end"].as_str(),
            "{o}"
        );
    }
    // One Gantt row per resource; no lane beyond the resource's most units per day.
    let rows = plan["gantt"].as_array().unwrap();
    assert_eq!(rows.len(), instance["resources"].as_array().unwrap().len());
    let mut bars = 0;
    for row in rows {
        let cap = row["capacity_max"].as_u64().unwrap();
        for bar in row["bars"].as_array().unwrap() {
            assert!(bar["lane"].as_u64().unwrap() < cap, "{row}");
            bars += 1;
        }
    }
    assert!(bars >= orders.len(), "every order occupies something");
}

#[test]
fn generate_then_plan_is_deterministic() {
    let out = temp_path("gen-n60-s3.json");
    let (code, _, stderr) = cellops_schedule(&[
        "generate",
        "--patients",
        "60",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let instance: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(instance["orders"].as_array().unwrap().len(), 60);
    let plan = |seed: &str| {
        let (code, stdout, stderr) = cellops_schedule(&[
            "plan",
            out.to_str().unwrap(),
            "--seed",
            seed,
            "--iterations",
            "300",
        ]);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<Value>(&stdout).unwrap()
    };
    assert_eq!(plan("7"), plan("7"), "same seed, same plan");
}

#[test]
fn a_bad_instance_is_refused_naming_the_field_and_the_fix() {
    let mut instance: Value = serde_json::from_str(
        &std::fs::read_to_string(instances_dir().join("gen-n50-s1.json")).unwrap(),
    )
    .unwrap();
    instance["products"][0]["stages"][2]["duration_days"] = (-3).into();
    let path = temp_path("negative-duration.json");
    std::fs::write(&path, instance.to_string()).unwrap();
    let (code, stdout, stderr) = cellops_schedule(&["plan", path.to_str().unwrap()]);
    assert_ne!(code, 0, "{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("products[0].stages[2].duration_days") && stderr.contains("fix"),
        "{stderr}"
    );
}

#[test]
fn check_answers_a_closed_day_with_the_binding_constraint_and_alternatives() {
    let path = instances_dir().join("gen-n50-s1.json");
    let instance: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let hospital = instance["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "hospital")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let product = instance["products"][0]["id"].as_str().unwrap().to_string();
    // Hospital chairs are closed at weekends: 2027-01-09 is a Saturday, asked that day.
    let (code, stdout, stderr) = cellops_schedule(&[
        "check",
        path.to_str().unwrap(),
        "--product",
        &product,
        "--hospital",
        &hospital,
        "--date",
        "2027-01-09",
        "--today",
        "2027-01-09",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).expect("answer is JSON");
    let binding = &answer["binding"];
    assert_eq!(binding["constraint"], "closed", "{answer:#}");
    assert_eq!(binding["stage"], "collection", "{answer:#}");
    assert_eq!(
        binding["resource"],
        format!("{hospital}/collection_chair"),
        "{answer:#}"
    );
    assert!(
        binding["message"].as_str().unwrap().contains("2027-01-09"),
        "{answer:#}"
    );
    // The earliest feasible alternatives start on Monday.
    let collections: Vec<&str> = answer["alternatives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["collection"].as_str().unwrap())
        .collect();
    assert_eq!(collections.first(), Some(&"2027-01-11"), "{answer:#}");
}
