//! `cellops label …` run as a person would: the built binary, the file it writes, its exit code.

use std::process::{Command, Output};

fn cellops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cellops"))
        .args(args)
        .output()
        .expect("the cellops binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const BASE: [&str; 6] = [
    "label",
    "--din",
    "A9999 26 000042 R",
    "--product",
    "=<S1234100",
    "--description",
];

#[test]
fn writes_a_pdf_sheet_and_an_svg() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("labels.pdf");
    let mut args = BASE.to_vec();
    let pdf_arg = pdf.to_str().unwrap();
    args.extend([
        "HPC, Apheresis",
        "--division",
        "A0",
        "--expiry",
        "2026-12-31T23:59",
        "--time-zone",
        "CET",
        "--coi",
        "&/CHA999926AB12C3",
        "--copies",
        "12",
        "--out",
        pdf_arg,
    ]);
    let out = cellops(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("12 label(s) for DIN A9999 26 000042 [R]"));
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    assert!(
        text(&bytes).contains("/Count 2"),
        "12 labels need two A4 pages"
    );

    let svg = dir.path().join("label.svg");
    let mut args = BASE.to_vec();
    args.extend(["T Cells", "--out", svg.to_str().unwrap()]);
    let out = cellops(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains(">A9999 26 000042</text>"));
    assert!(svg.contains(">T Cells</text>"));
}

#[test]
fn refuses_bad_input_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out_pdf = dir.path().join("x.pdf");
    let out_pdf = out_pdf.to_str().unwrap();
    for (args, reason) in [
        (
            [
                "label",
                "--din",
                "A9999 26 000042 B",
                "--product",
                "S1234100",
            ],
            "position 17",
        ),
        (
            ["label", "--din", "A999926000042", "--product", "S12341AB"],
            "position 8",
        ),
    ] {
        let mut args = args.to_vec();
        args.extend(["--description", "T Cells", "--out", out_pdf]);
        let out = cellops(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
    let mut args = BASE.to_vec();
    args.extend(["T Cells", "--out", "labels.png"]);
    let out = cellops(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(".pdf or .svg"));
    let mut args = BASE.to_vec();
    args.extend(["T Cells", "--expiry", "2026-02-30", "--out", out_pdf]);
    let out = cellops(&args);
    assert!(
        text(&out.stderr).contains("--expiry"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !std::path::Path::new(out_pdf).exists(),
        "nothing written on error"
    );
}
