//! The documented format, checked twice: an independent Python verifier written only from
//! docs/ledger-format.md (tools/verify_bundle.py) must accept the bundles this crate exports
//! and name the same damage as the Rust verifier; and the golden vectors printed in the doc
//! must be the ones the code computes.
//!
//! Needs `python3` (3.11+) with the `cryptography` package; the tests fail, saying how to
//! install them, when either is missing (CI installs both).

use crate::support::*;
use cellops_domain::Timestamp;
use cellops_ledger::bundle;
use cellops_ledger::record::{self, Hash, Record};
use cellops_ledger::sqlite::Sqlite;
use cellops_ledger::verify::Damage;
use cellops_ledger::{AppendRequest, Ledger, NewRecord, PendingSignature, SignatureBlock};
use cellops_tlog::{NoteSigner, NoteVerifier};
use rand::SeedableRng;
use sha2::{Digest, Sha256};
use std::process::{Command, Output};
use std::sync::OnceLock;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/verify_bundle.py");
const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ledger-format.md");

/// The golden vectors of docs/ledger-format.md (record.rs test
/// `canonical_entry_and_hashes_are_pinned` and `signature_is_bound_to_its_record`).
const GOLDEN_ENTRY_1: &str = r#"{"actor":"alice","corrects":null,"payload":{"a":[true,null,250000000],"z":1,"é":"cells"},"reason":null,"recorded_at":"2025-11-24T16:00:00.000000Z","seq":1,"signature":null,"site":"cpc-kyoto","stream":"batch/b-1","type":"batch.started","v":1,"version":1}"#;
const GOLDEN_GENESIS: &str = "acd2976bdc785cde8a854eab8d5d46054fbe187dce6b673c5254e98afde5c284";
const GOLDEN_ENTRY_1_SHA256: &str =
    "d150e16e76bd92c5883bb30211b2eb6e8ec04d9fb3948c2378b2c2da24cb80fd";
const GOLDEN_H1: &str = "c20a0aa6c108f7781fd364b65343151dbe0d170db7d2d09864cba9ed93681172";
const GOLDEN_LEAF_1: &str = "93326d8ba79380335e969b6f3de5a88a3ce44dfe4bbc902ba997937f70d4f0e6";
const GOLDEN_SIGNED_CONTENT_HASH: &str =
    "b552fcfd4daa4e8b5e242d6379a0cf57378bb73513ad5b10730f8b4db4728357";
const GOLDEN_SIGNED_HASH: &str = "0fbf662ad161db2f1b3c4f48fc51f3588a7772f63eb0929b212c53e12217071d";

/// Runs the Python verifier with `args`; fails the test with install instructions when
/// python3 or its `cryptography` package is missing (never a silent skip).
fn python(args: &[&str]) -> Output {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let probe = Command::new("python3")
            .args([
                "-c",
                "import sys; assert sys.version_info >= (3, 11), sys.version; \
                 import cryptography.hazmat.primitives.asymmetric.ed25519",
            ])
            .output();
        match probe {
            Err(e) => Err(format!(
                "python3 is not installed ({e}): the independent bundle verifier needs \
                 Python 3.11+ with the 'cryptography' package (apt-get install python3 \
                 python3-pip; pip install cryptography). CI installs both."
            )),
            Ok(o) if !o.status.success() => Err(format!(
                "python3 cannot run the independent bundle verifier: {}\nIt needs Python \
                 3.11+ with the 'cryptography' package: pip install cryptography (CI \
                 installs it).",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Ok(_) => Ok(()),
        }
    });
    if let Err(why) = ready {
        panic!("{why}");
    }
    Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .output()
        .expect("python3 ran a moment ago")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn doc_golden_vectors_are_what_the_code_computes() {
    // Record 1 of a fresh ledger, appended at the test clock's instant, is the golden record.
    let db = TestDb::sqlite();
    let ledger = db.open::<Sqlite>(100);
    let sample = NewRecord::new(
        "batch/b-1",
        "batch.started",
        1,
        serde_json::json!({"z": 1, "a": [true, null, 2.5e8], "é": "cells"}),
        "alice",
        "cpc-kyoto",
    );
    let r = ledger.append(one(sample)).unwrap().records.remove(0);
    assert_eq!(hex::encode(record::genesis_hash()), GOLDEN_GENESIS);
    assert_eq!(String::from_utf8(r.entry_bytes()).unwrap(), GOLDEN_ENTRY_1);
    assert_eq!(
        hex::encode(Sha256::digest(r.entry_bytes())),
        GOLDEN_ENTRY_1_SHA256
    );
    assert_eq!(hex::encode(r.hash), GOLDEN_H1);
    assert_eq!(hex::encode(r.leaf_hash()), GOLDEN_LEAF_1);
    let proof = ledger.inclusion_proof(1, Some(1)).unwrap();
    assert_eq!(
        hex::encode(proof.root),
        GOLDEN_LEAF_1,
        "a one-leaf tree's root is its leaf hash"
    );

    // The signed record of `signature_is_bound_to_its_record`.
    let mut signed = Record {
        seq: 7,
        stream: "batch/b-1".into(),
        event_type: "batch.released".into(),
        event_version: 1,
        payload: "{}".into(),
        actor: "qa".into(),
        site: "cpc-kyoto".into(),
        recorded_at: Timestamp::EPOCH,
        reason: None,
        corrects: None,
        signature: None,
        prev_hash: record::genesis_hash(),
        hash: [0; 32],
    };
    let content_hash = hex::encode(Sha256::digest(signed.unsigned_entry_bytes()));
    assert_eq!(content_hash, GOLDEN_SIGNED_CONTENT_HASH);
    signed.signature = Some(SignatureBlock {
        signer: "qa".into(),
        signer_name: "Q. A. Person".into(),
        meaning: "Released".into(),
        signed_at: Timestamp::EPOCH,
        authentication: "password".into(),
        content_hash,
    });
    assert!(record::signature_binds(&signed));
    assert_eq!(hex::encode(signed.computed_hash()), GOLDEN_SIGNED_HASH);

    let doc = std::fs::read_to_string(DOC).expect("docs/ledger-format.md exists");
    for (name, value) in [
        ("canonical entry of record 1", GOLDEN_ENTRY_1),
        ("h_0", GOLDEN_GENESIS),
        ("SHA-256(entry_1)", GOLDEN_ENTRY_1_SHA256),
        ("h_1", GOLDEN_H1),
        ("leaf hash of record 1", GOLDEN_LEAF_1),
        (
            "content_hash of the signed record",
            GOLDEN_SIGNED_CONTENT_HASH,
        ),
        ("chain hash of the signed record", GOLDEN_SIGNED_HASH),
    ] {
        assert!(
            doc.contains(value),
            "docs/ledger-format.md must print the {name} the code computes: {value}"
        );
    }

    // The Python verifier checks the same vectors (and RFC 8785 / RFC 9162 / note vectors).
    let out = python(&["--self-test"]);
    assert!(out.status.success(), "{}", describe(&out));
}

fn signed(new: NewRecord) -> NewRecord {
    NewRecord {
        signature: Some(PendingSignature {
            signer: "qa-hana".into(),
            signer_name: "Hana Sato".into(),
            meaning: "Released".into(),
            signed_at: Timestamp::from_unix_us(1_764_000_123_456_789).unwrap(),
            authentication: "user_id+password".into(),
        }),
        ..new
    }
}

/// Ten records with every feature the format has: nested payloads with arrays, unicode
/// (BMP and non-BMP, in keys and values), escapes, integers up to ±(2^53 − 1), floats in both
/// notations, a correction with a reason, and an e-signature. Checkpoints every 3 records
/// plus a forced one: sizes 3, 6, 9, 10.
fn build_ledger(ledger: &Ledger<Sqlite>) {
    ledger
        .append(one(note("batch/b-1", "thawed at 37 °C")))
        .unwrap();
    let complex = NewRecord::new(
        "batch/b-1",
        "batch.started",
        1,
        serde_json::json!({
            "volume_ml": 2.5e8,
            "viability_fraction": 0.935,
            "tiny": 1e-7,
            "huge": 1e21,
            "counts": [1, -2, 9_007_199_254_740_991_i64, -9_007_199_254_740_991_i64, 0],
            "big_id": "18446744073709551615",
            "cells": {"cd3_fraction": 0.72, "markers": ["CD19", "CD3ε", "細胞", "🧬"], "ok": true, "none": null},
            "keys": {"\u{fb33}": 1, "😀": 2, "é": 3, "Z": 4, "a": 5, "\r": 6},
            "text": "line1\nline2\t\"quoted\" \\ back\u{1}slash",
        }),
        "operator-ken",
        "cpc-kyoto",
    );
    ledger
        .append(AppendRequest {
            records: vec![complex, note("batch/b-2", "second in the same request")],
            idempotency_key: Some("python-verifier-1".into()),
        })
        .unwrap();
    for i in 0..3 {
        ledger
            .append(one(note("batch/b-2", &format!("observation {i}"))))
            .unwrap();
    }
    let mut correction = note("batch/b-1", "thawed at 36.5 °C");
    correction.reason = Some("thermometer read wrong; corrected per deviation DV-17".into());
    correction.corrects = Some(1);
    ledger.append(one(correction)).unwrap();
    let release = NewRecord::new(
        "batch/b-1",
        "batch.started",
        1,
        serde_json::json!({"release": {"decision": "released", "doses": [1, 2], "dose_cells": 2.5e8}}),
        "qa-hana",
        "cpc-kyoto",
    );
    ledger.append(one(signed(release))).unwrap();
    for i in 0..2 {
        ledger
            .append(one(note("batch/b-3", &format!("tail {i}"))))
            .unwrap();
    }
    assert_eq!(ledger.size(), 10);
    assert_eq!(ledger.checkpoint_now().unwrap().map(|c| c.size), Some(10));
}

/// Which record lines to find: the line of record `seq`.
fn record_line(lines: &[String], seq: u64) -> usize {
    let prefix = format!(r#"{{"record":{{"seq":{seq},"#);
    lines
        .iter()
        .position(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("record {seq} is in the bundle"))
}

struct Case {
    name: &'static str,
    text: String,
    damage: Damage,
    seq: u64,
}

/// Records 9 and 10 rewritten and re-hashed into a self-consistent chain (an attacker with the
/// file but not the key).
fn forked(lines: &[String]) -> String {
    let mut out = lines.to_vec();
    let mut prev: Option<Hash> = None;
    for seq in 9..=10 {
        let i = record_line(lines, seq);
        let line: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
        let mut r: Record = serde_json::from_value(line["record"].clone()).unwrap();
        if seq == 9 {
            r.payload = r#"{"text":"rewritten"}"#.into();
        }
        if let Some(p) = prev {
            r.prev_hash = p;
        }
        r.hash = r.computed_hash();
        prev = Some(r.hash);
        out[i] = serde_json::to_string(&serde_json::json!({ "record": r })).unwrap();
    }
    out.join("\n") + "\n"
}

fn python_problem_line(damage: Damage, seq: u64) -> String {
    match damage {
        Damage::BadSignature => format!("PROBLEM ({damage}) at checkpoint of size {seq} "),
        _ => format!("PROBLEM ({damage}) at record {seq}: "),
    }
}

#[test]
fn python_verifier_accepts_exported_bundle_and_names_the_same_damage() {
    let db = TestDb::sqlite();
    let ledger = db.open::<Sqlite>(3);
    build_ledger(&ledger);
    let key = ledger.verifier().clone();
    let origin = ledger.config().origin.clone();
    let mut bytes = Vec::new();
    let header = ledger
        .read(|b| bundle::export(b, &origin, &key, &mut bytes))
        .unwrap();
    assert_eq!((header.records, header.checkpoints), (10, 4));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.bundle.jsonl");
    std::fs::write(&path, &bytes).unwrap();

    let (_, rust) = bundle::verify_bundle(&bytes[..], Some(&key)).unwrap();
    assert!(rust.is_ok(), "{rust:?}");
    // RFC 8785 numbers are doubles: the ledger refuses integers beyond ±(2^53 − 1)
    // (docs/ledger-format.md §2.1), so the largest allowed ones are stored exactly.
    let stored = ledger.record(2).unwrap().payload;
    assert!(
        stored.contains(r#""counts":[1,-2,9007199254740991,-9007199254740991,0]"#),
        "{stored}"
    );
    let ok = "OK: 10 records, 4 checkpoints, latest verified checkpoint size 10\n";
    let out = python(&[path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), ok, "{}", describe(&out));
    let vkey = key.to_vkey();
    let out = python(&[path.to_str().unwrap(), "--key", &vkey]);
    assert_eq!(stdout(&out), ok, "{}", describe(&out));

    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let with = |edit: &dyn Fn(&mut Vec<String>)| {
        let mut l = lines.clone();
        edit(&mut l);
        l.join("\n") + "\n"
    };

    // The entry embeds the stored payload text verbatim (docs §2.2): the same value spelled
    // differently is not the recorded text, so it is an edit.
    let respelled = with(&|l| {
        let i = record_line(l, 2);
        let before = l[i].clone();
        l[i] = before.replacen(r#"volume_ml\":250000000"#, r#"volume_ml\":2.5e8"#, 1);
        assert_ne!(l[i], before, "record 2 holds volume_ml 250000000");
    });
    let file = dir.path().join("respelled.jsonl");
    std::fs::write(&file, &respelled).unwrap();
    let out = python(&[file.to_str().unwrap(), "--key", &vkey]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stdout(&out).starts_with(&python_problem_line(Damage::Edited, 2)),
        "{}",
        describe(&out)
    );
    let edited = with(&|l| {
        let i = record_line(l, 2);
        let before = l[i].clone();
        l[i] = before.replacen("250000000", "250000001", 1);
        assert_ne!(l[i], before, "record 2 holds 2.5e8 as 250000000");
    });
    let resigned = with(&|l| {
        let i = record_line(l, 8);
        let before = l[i].clone();
        l[i] = before.replacen(r#""meaning":"Released""#, r#""meaning":"Approved""#, 1);
        assert_ne!(l[i], before, "record 8 is signed");
    });
    let cases = [
        Case {
            name: "a payload number edited",
            text: edited,
            damage: Damage::Edited,
            seq: 2,
        },
        Case {
            name: "a signature's meaning edited",
            text: resigned,
            damage: Damage::Edited,
            seq: 8,
        },
        Case {
            name: "a record line removed",
            text: with(&|l| {
                let i = record_line(l, 6);
                l.remove(i);
            }),
            damage: Damage::Deleted,
            seq: 6,
        },
        Case {
            name: "two record lines swapped",
            text: with(&|l| {
                let (a, b) = (record_line(l, 4), record_line(l, 5));
                l.swap(a, b);
            }),
            damage: Damage::Reordered,
            seq: 4,
        },
        Case {
            name: "the last record cut off",
            text: with(&|l| {
                let i = record_line(l, 10);
                l.remove(i);
            }),
            damage: Damage::Truncated,
            seq: 10,
        },
        Case {
            name: "records 9 and 10 rewritten and re-hashed",
            text: forked(&lines),
            damage: Damage::ForkedChain,
            seq: 7,
        },
    ];
    for case in &cases {
        let (_, rust) = bundle::verify_bundle(case.text.as_bytes(), Some(&key)).unwrap();
        let finding = rust
            .problem
            .unwrap_or_else(|| panic!("{}: Rust found nothing", case.name));
        assert_eq!(
            (finding.damage, finding.seq),
            (case.damage, case.seq),
            "{}: {finding:?}",
            case.name
        );
        let file = dir.path().join("damaged.jsonl");
        std::fs::write(&file, &case.text).unwrap();
        let out = python(&[file.to_str().unwrap(), "--key", &vkey]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {}",
            case.name,
            describe(&out)
        );
        let want = python_problem_line(case.damage, case.seq);
        assert!(
            stdout(&out).starts_with(&want),
            "{}: Python must report {want:?}\n{}",
            case.name,
            describe(&out)
        );
    }

    // A key the site never used: every checkpoint fails, the first one is named.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let stranger: NoteVerifier = NoteSigner::generate(&origin, &mut rng).unwrap().verifier();
    let (_, rust) = bundle::verify_bundle(text.as_bytes(), Some(&stranger)).unwrap();
    let finding = rust.problem.expect("a foreign key verifies nothing");
    assert_eq!((finding.damage, finding.seq), (Damage::BadSignature, 3));
    let out = python(&[path.to_str().unwrap(), "--key", &stranger.to_vkey()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stdout(&out).starts_with(&python_problem_line(Damage::BadSignature, 3)),
        "{}",
        describe(&out)
    );
}
