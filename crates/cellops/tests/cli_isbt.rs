//! `cellops isbt …` run as a person would: the built binary, stdout, stderr and exit code.

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

#[test]
fn check_char_prints_the_character_alone() {
    for (din, check) in [
        ("G123417654321", "A\n"),
        ("A999921123456", "3\n"),
        ("A999818123456", "N\n"),
    ] {
        let out = cellops(&["isbt", "check-char", din]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), check);
    }
}

#[test]
fn check_char_refuses_bad_input_with_exit_2() {
    for (input, reason) in [
        ("G12341765432", "13 characters"),
        ("g123417654321", "small letter"),
        ("O123417654321", "position 1"),
        ("G123417654321A", "14 were given"),
    ] {
        let out = cellops(&["isbt", "check-char", input]);
        assert_eq!(out.status.code(), Some(2), "{input}");
        assert!(out.stdout.is_empty());
        let stderr = text(&out.stderr);
        assert!(stderr.contains(reason), "{input}: {stderr}");
    }
}

#[test]
fn check_accepts_every_supported_form() {
    for (code, says) in [
        ("=G12341765432170", "valid DIN 001: G1234 17 654321 [A]"),
        ("G1234 17 654321 A", "valid DIN (typed)"),
        ("=<S1234100", "valid product code 003"),
        ("&>0263652359", "2026-12-31 23:59"),
        ("&/CHA999926AB12C3", "chain of identity identifier 040"),
        (
            "=+02000=A99992612345689=<S1234100",
            "valid compound message: 2 data structures",
        ),
    ] {
        let out = cellops(&["isbt", "check", code]);
        assert_eq!(out.status.code(), Some(0), "{code}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.contains(says), "{code}: {stdout}");
    }
}

#[test]
fn check_refuses_with_exit_1_and_the_reason() {
    for (code, reason) in [
        ("G1234 17 654321 B", "position 17"),
        ("=G12341765432171", "flag characters 71"),
        ("=G1234176543217", "ends too early"),
        ("g123417654321", "small letter"),
        ("=<S12341AB", "position 10"),
        ("&>0253662359", "366 does not exist in 2025"),
        ("%X1234", "does not start a code"),
    ] {
        let out = cellops(&["isbt", "check", code]);
        assert_eq!(out.status.code(), Some(1), "{code}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(reason), "{code}: {stderr}");
        assert!(stderr.starts_with("invalid: "), "{stderr}");
    }
}
