//! `cellops twin …` through the real binary: files written, stdout, exit codes, errors.

use std::path::PathBuf;
use std::process::{Command, Output};

fn cellops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cellops"))
        .args(args)
        .output()
        .expect("cellops binary runs")
}

/// A fresh directory per test (the test name keeps parallel tests apart).
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cellops-cli-twin-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn run_writes_a_deterministic_csv() {
    let dir = scratch("run");
    let a = dir.join("a.csv");
    let b = dir.join("b.csv");
    let c = dir.join("c.csv");
    for (path, seed) in [(&a, "1"), (&b, "1"), (&c, "2")] {
        let o = cellops(&[
            "twin",
            "run",
            "--product",
            "prime-car-t",
            "--days",
            "12",
            "--seed",
            seed,
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{:?}", text(&o));
        assert!(
            text(&o).0.contains("prime-car-t day 12.0"),
            "{:?}",
            text(&o)
        );
    }
    let csv = std::fs::read_to_string(&a).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("time_h,viable_cells,viability,"),
        "{header}"
    );
    assert!(header.contains("sensor_ph") && header.ends_with("actions"));
    assert_eq!(lines.count(), 12 * 24 + 1);
    assert_eq!(
        csv,
        std::fs::read_to_string(&b).unwrap(),
        "same seed, same file"
    );
    assert_ne!(
        csv,
        std::fs::read_to_string(&c).unwrap(),
        "another seed, other noise"
    );
    assert!(csv.contains(",transduce\n") && csv.contains("feed"));
}

#[test]
fn run_with_faults_and_msc() {
    let dir = scratch("faults");
    let out = dir.join("f.csv");
    let o = cellops(&[
        "twin",
        "run",
        "--product",
        "prime-car-t",
        "--days",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--fault",
        "power-loss@24:2",
        "--fault",
        "stuck-glucose@30",
        "--donor",
        "pretreated",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let csv = std::fs::read_to_string(&out).unwrap();
    let row = csv.lines().find(|l| l.starts_with("25,")).unwrap();
    // During the power loss the sensor columns are empty.
    assert!(row.contains(",,,,,,,"), "{row}");
    assert!(csv.contains("fault:power-loss") && csv.contains("fault:sensor-stuck"));

    let msc = dir.join("m.csv");
    let o = cellops(&[
        "twin",
        "run",
        "--product",
        "bm-msc",
        "--days",
        "25",
        "--out",
        msc.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(std::fs::read_to_string(&msc).unwrap().contains("passage"));
}

#[test]
fn run_rejects_bad_arguments_with_a_clear_message() {
    let dir = scratch("badrun");
    let out = dir.join("x.csv");
    let o = cellops(&[
        "twin",
        "run",
        "--product",
        "car-x",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("product") && text(&o).1.contains("prime-car-t"),
        "{:?}",
        text(&o)
    );
    let o = cellops(&[
        "twin",
        "run",
        "--product",
        "bm-msc",
        "--days=-3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("--days"), "{:?}", text(&o));
    let o = cellops(&[
        "twin",
        "run",
        "--product",
        "bm-msc",
        "--fault",
        "meteor@3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(text(&o).1.contains("meteor"), "{:?}", text(&o));
}

const OBS: &str = "time_h,viable_cells_per_ml,volume_ml,viability_percent\n\
0,1.43e6,70,95\n24,1.39e6,70,91.4\n48,1.75e6,70,90.7\n72,2.62e6,70,91.2\n\
96,2.41e6,100,91.1\n120,3.05e6,100,90.6\n144,2.18e6,250,90.9\n168,2.98e6,250,90.9\n";

#[test]
fn predict_prints_the_dose_day_and_json() {
    let dir = scratch("predict");
    let obs = dir.join("obs.csv");
    std::fs::write(&obs, OBS).unwrap();
    let o = cellops(&[
        "twin",
        "predict",
        "--observations",
        obs.to_str().unwrap(),
        "--samples",
        "100",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("median day") && out.contains("80 % interval") && out.contains("P(dose"),
        "{out}"
    );
    let o = cellops(&[
        "twin",
        "predict",
        "--observations",
        obs.to_str().unwrap(),
        "--samples",
        "100",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = v["p_meets_specs"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    assert_eq!(v["observations"], 8);
    assert!(v["fit"]["mu_max_per_h"]["value"].as_f64().unwrap() > 0.0);
}

#[test]
fn predict_names_row_and_column_of_bad_input() {
    let dir = scratch("badobs");
    let cases = [
        ("time_h,viable_cells\n0,1e6\n", "row 1", "viable_cells"),
        (
            "time_h,viable_cells_per_ml\n0,1e6\n48,2e6\n24,3e6\n",
            "row 4",
            "time_h",
        ),
        (
            "time_h,viable_cells_per_ml\n0,1e6\n24,\n",
            "row 3",
            "viable_cells_per_ml",
        ),
        (
            "time_h,viable_cells_per_ml,glucose_mm\n0,1e6,-2\n",
            "row 2",
            "glucose_mm",
        ),
    ];
    for (i, (csv, row, column)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.csv"));
        std::fs::write(&path, csv).unwrap();
        let o = cellops(&[
            "twin",
            "predict",
            "--observations",
            path.to_str().unwrap(),
            "--samples",
            "10",
        ]);
        assert!(!o.status.success());
        let err = text(&o).1;
        assert!(err.contains(row) && err.contains(column), "case {i}: {err}");
        assert!(!err.contains("NaN"), "{err}");
    }
}

#[test]
fn plot_writes_an_svg() {
    let dir = scratch("plot");
    let obs = dir.join("obs.csv");
    let svg = dir.join("fit.svg");
    std::fs::write(&obs, OBS).unwrap();
    let o = cellops(&[
        "twin",
        "plot",
        "--observations",
        obs.to_str().unwrap(),
        "--out",
        svg.to_str().unwrap(),
        "--samples",
        "50",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let body = std::fs::read_to_string(&svg).unwrap();
    assert!(body.contains("<svg") && body.contains("culture day") && body.contains("observed"));
}
