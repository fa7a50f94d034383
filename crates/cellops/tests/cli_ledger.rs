//! `cellops user add` and `cellops ledger verify | export | proof`, run as the real binary
//! on SQLite files: the happy paths, tampering caught with its class, and one-line errors
//! for bad input.

mod common;

use common::{Output, SqliteDb, cellops};
use rand::{RngCore, SeedableRng};
use serde_json::Value;

/// A database with the test user in it (`user add` opens the ledger, creating its site key
/// and the user's records).
fn db_with_user() -> SqliteDb {
    let db = SqliteDb::new();
    common::add_user(&db.url());
    db
}

/// Panics unless the command failed with exactly one line on stderr (and nothing on
/// stdout); returns that line.
fn one_line_error(out: &Output, what: &str) -> String {
    assert!(
        matches!(out.code, Some(c) if c != 0),
        "{what}: expected failure, got {:?}\nstdout:\n{}\nstderr:\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    assert_eq!(out.stdout, "", "{what}: stdout should be empty");
    let lines: Vec<&str> = out.stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line expected:\n{}", out.stderr);
    lines[0].to_string()
}

fn verify_db(url: &str) -> Output {
    cellops(&["ledger", "verify", "--database", url], None)
}

#[test]
fn user_add_refuses_a_short_password_naming_the_field() {
    let db = SqliteDb::new();
    let out = cellops(
        &[
            "user",
            "add",
            "--database",
            &db.url(),
            "--user-id",
            "sam",
            "--name",
            "Sam Short",
            "--role",
            "operator@cpc-kyoto",
        ],
        Some("tooshort\n"),
    );
    let line = one_line_error(&out, "user add with an 8-character password");
    assert!(line.starts_with("error: password: "), "{line}");
    assert!(line.contains("12"), "the rule names the minimum: {line}");
}

#[test]
fn user_add_refuses_a_role_without_a_site() {
    let db = SqliteDb::new();
    let out = cellops(
        &[
            "user",
            "add",
            "--database",
            &db.url(),
            "--user-id",
            "sam",
            "--name",
            "Sam",
            "--role",
            "operator",
        ],
        Some(&format!("{}\n", common::PASSWORD)),
    );
    let line = one_line_error(&out, "user add --role operator");
    assert!(line.contains("--role"), "{line}");
    assert!(line.contains("ROLE@SITE"), "{line}");
}

#[test]
fn a_fresh_database_verifies() {
    let db = db_with_user();
    let out = verify_db(&db.url());
    out.expect_code(0, "ledger verify");
    assert!(out.stdout.starts_with("OK: "), "{}", out.stdout);
    let (code, report, _) = common::verify_json(&db.url());
    assert_eq!(code, Some(0));
    assert!(report["problem"].is_null(), "{report}");
    assert!(
        report["records_checked"].as_u64().unwrap_or(0) >= 2,
        "{report}"
    );
}

#[test]
fn an_exported_bundle_verifies_offline_and_an_edited_line_is_caught() {
    let db = db_with_user();
    let bundle = db.dir.path().join("ledger.bundle");
    let bundle_arg = bundle.display().to_string();
    let out = cellops(
        &[
            "ledger",
            "export",
            "--database",
            &db.url(),
            "--out",
            &bundle_arg,
        ],
        None,
    );
    out.expect_code(0, "ledger export");
    assert!(out.stdout.starts_with("exported "), "{}", out.stdout);
    let vkey = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .expect("export prints the public key")
        .to_string();

    let out = cellops(&["ledger", "verify", "--bundle", &bundle_arg], None);
    out.expect_code(0, "ledger verify --bundle");
    assert!(out.stdout.starts_with("OK: "), "{}", out.stdout);
    assert!(
        out.stdout.contains("latest signed checkpoint covers"),
        "{}",
        out.stdout
    );
    // Pinning the key printed by export also verifies.
    cellops(
        &["ledger", "verify", "--bundle", &bundle_arg, "--key", &vkey],
        None,
    )
    .expect_code(0, "ledger verify --bundle --key");

    // Edit one record line: the user's printed name.
    let text = std::fs::read_to_string(&bundle).expect("bundle is text");
    let edited_lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("{\"record\"") && l.contains(common::USER_NAME) {
                l.replace(common::USER_NAME, "Mallory Operator")
            } else {
                l.to_string()
            }
        })
        .collect();
    let changed = text
        .lines()
        .zip(&edited_lines)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(changed, 1, "exactly one record line names the user");
    let edited = db.dir.path().join("edited.bundle");
    std::fs::write(&edited, edited_lines.join("\n") + "\n").expect("write edited bundle");
    let out = cellops(
        &[
            "ledger",
            "verify",
            "--bundle",
            &edited.display().to_string(),
        ],
        None,
    );
    out.expect_code(1, "ledger verify of an edited bundle");
    assert!(
        out.stdout.starts_with("DAMAGED (edited) at record "),
        "{}",
        out.stdout
    );
}

/// Simulates an attacker with write access to the file: drops the append-only triggers,
/// then runs `sql`.
fn tamper(db: &SqliteDb, sql: &str) {
    let c = rusqlite::Connection::open(&db.path).expect("open the ledger file");
    c.execute_batch(
        "DROP TRIGGER IF EXISTS ledger_records_no_update;
         DROP TRIGGER IF EXISTS ledger_records_no_delete;
         DROP TRIGGER IF EXISTS ledger_checkpoints_no_update;
         DROP TRIGGER IF EXISTS ledger_checkpoints_no_delete;",
    )
    .expect("drop triggers");
    c.execute_batch(sql).expect("tamper");
}

#[test]
fn an_edited_database_record_is_reported_with_its_class() {
    let db = db_with_user();
    verify_db(&db.url()).expect_code(0, "verify before tampering");
    // Without dropping the triggers, the database itself refuses the edit.
    let c = rusqlite::Connection::open(&db.path).expect("open");
    let refused = c
        .execute_batch("UPDATE ledger_records SET entry = replace(entry, 'Olivia', 'Mallory')")
        .expect_err("the append-only trigger refuses updates");
    assert!(refused.to_string().contains("append-only"), "{refused}");
    drop(c);
    let seq: i64 = rusqlite::Connection::open(&db.path)
        .expect("open")
        .query_row(
            "SELECT seq FROM ledger_records WHERE event_type = 'user.created'",
            [],
            |r| r.get(0),
        )
        .expect("the user.created record");

    tamper(
        &db,
        "UPDATE ledger_records SET entry = replace(entry, 'Olivia', 'Mallory') \
         WHERE event_type = 'user.created'",
    );
    let out = verify_db(&db.url());
    out.expect_code(1, "verify after an edit");
    assert!(
        out.stdout
            .starts_with(&format!("DAMAGED (edited) at record {seq}: ")),
        "{}",
        out.stdout
    );
    let (code, report, _) = common::verify_json(&db.url());
    assert_eq!(code, Some(1));
    assert_eq!(report["problem"]["damage"], "edited", "{report}");
    assert_eq!(report["problem"]["seq"], seq, "{report}");
}

fn proof(url: &str, args: &[&str]) -> Value {
    let mut all = vec!["ledger", "proof", "--database", url];
    all.extend_from_slice(args);
    let out = cellops(&all, None);
    out.expect_code(0, &format!("ledger proof {args:?}"));
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("proof output is not JSON ({e}): {}", out.stdout))
}

#[test]
fn proofs_verify_against_computed_roots_and_signed_checkpoints() {
    let db = db_with_user();
    let url = db.url();
    // No checkpoint yet (the policy signs one per 1000 records): checked against the root.
    let p = proof(&url, &["inclusion", "--seq", "1"]);
    let check = p["check"].as_str().unwrap_or_default();
    assert!(check.starts_with("verified"), "{p}");
    assert!(check.contains("computed root"), "{p}");
    let size = p["tree_size"].as_u64().expect("tree_size");
    assert!(size >= 2, "{p}");

    // Export signs a checkpoint over everything; proofs then check against its signature.
    let out_path = db.dir.path().join("b.bundle").display().to_string();
    cellops(
        &["ledger", "export", "--database", &url, "--out", &out_path],
        None,
    )
    .expect_code(0, "export");
    let p = proof(&url, &["inclusion", "--seq", "2"]);
    assert_eq!(p["tree_size"], size, "{p}");
    assert_eq!(p["check"], "verified against the signed checkpoint", "{p}");
    assert!(
        p["checkpoint"].as_str().is_some_and(|n| !n.is_empty()),
        "{p}"
    );

    let p = proof(
        &url,
        &["consistency", "--first", "1", "--second", &size.to_string()],
    );
    assert!(
        p["check"]
            .as_str()
            .unwrap_or_default()
            .starts_with("verified"),
        "{p}"
    );

    // A record that does not exist is a clear error.
    let out = cellops(
        &[
            "ledger",
            "proof",
            "--database",
            &url,
            "inclusion",
            "--seq",
            &(size + 10).to_string(),
        ],
        None,
    );
    let line = one_line_error(&out, "proof of a missing record");
    assert!(line.contains(&(size + 10).to_string()), "{line}");
}

#[test]
fn an_unsupported_database_url_names_the_rule() {
    for args in [
        vec!["ledger", "verify", "--database", "mysql://x"],
        vec![
            "ledger",
            "export",
            "--database",
            "mysql://x",
            "--out",
            "/nonexistent/x",
        ],
        vec![
            "serve",
            "--database",
            "mysql://x",
            "--listen",
            "127.0.0.1:0",
        ],
    ] {
        let out = cellops(&args, None);
        let line = one_line_error(&out, &format!("{args:?}"));
        assert!(line.contains("mysql://x"), "names the URL: {line}");
        assert!(
            line.contains("sqlite://") && line.contains("postgres://"),
            "names the accepted schemes: {line}"
        );
    }
    let out = cellops(&["ledger", "verify", "--database", "sqlite://"], None);
    let line = one_line_error(&out, "sqlite:// without a path");
    assert!(line.contains("path"), "{line}");
}

#[test]
fn a_file_of_random_bytes_is_refused_with_one_line() {
    let db = SqliteDb::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let mut bytes = vec![0u8; 64 * 1024];
    rng.fill_bytes(&mut bytes);
    std::fs::write(&db.path, &bytes).expect("write garbage");
    for args in [
        vec!["ledger", "verify", "--database"],
        vec!["ledger", "proof", "--database"],
    ] {
        let mut args = args;
        let url = db.url();
        args.push(&url);
        if args[1] == "proof" {
            args.extend(["inclusion", "--seq", "1"]);
        }
        let out = cellops(&args, None);
        let line = one_line_error(&out, &format!("{args:?} on random bytes"));
        assert!(line.contains("damaged or not a cellops database"), "{line}");
    }
    // The file is left as it was: nothing "repairs" evidence.
    assert_eq!(std::fs::read(&db.path).expect("read back"), bytes);
}

#[test]
fn a_database_with_overwritten_pages_is_refused_with_one_line() {
    let db = db_with_user();
    // Move everything from the WAL into the main file, so the damage below hits live pages.
    let c = rusqlite::Connection::open(&db.path).expect("open");
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    })
    .expect("wal checkpoint");
    drop(c);
    let wal = db.path.with_extension("db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the WAL is empty after a TRUNCATE checkpoint"
    );
    let mut file = std::fs::read(&db.path).expect("read db");
    let page_size = u16::from_be_bytes([file[16], file[17]]) as usize;
    assert!(file.len() >= 3 * page_size, "{} bytes", file.len());
    // Overwrite every page after the first (schema) page with random bytes.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    rng.fill_bytes(&mut file[page_size..]);
    std::fs::write(&db.path, &file).expect("write corrupted db");
    let out = verify_db(&db.url());
    let line = one_line_error(&out, "verify a database with overwritten pages");
    assert!(
        line.starts_with("error: the database is damaged or not a cellops database: ")
            && line.contains("integrity check found")
            && line.contains("restore the last backup"),
        "{line}"
    );
}

#[test]
fn verifying_a_missing_database_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    let url = format!("sqlite://{}", path.display());
    let out = verify_db(&url);
    let line = one_line_error(&out, "verify a missing database");
    assert!(line.contains("no database at"), "{line}");
    assert!(!path.exists(), "verify must not create a database");
}
