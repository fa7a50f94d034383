use crate::support::*;
use cellops_domain::Timestamp;
use cellops_ledger::bundle;
use cellops_ledger::postgres::Postgres;
use cellops_ledger::sqlite::Sqlite;
use cellops_ledger::store::{AttemptOutcome, DeliveryAttempt, DeliveryState, OutboxItem};
use cellops_ledger::verify::Damage;
use cellops_ledger::{AppendRequest, Backend, Ledger, LedgerError};

/// Stamps each test out once per backend.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { let db = crate::support::TestDb::sqlite(); super::$name::<super::Sqlite>(&db); })*
        }
        mod postgres {
            $(#[test] fn $name() { if let Some(db) = crate::support::TestDb::postgres() { super::$name::<super::Postgres>(&db); } })*
        }
    };
}

backend_tests!(
    appends_read_back_and_verify,
    chain_survives_reopen,
    idempotent_retry_appends_nothing_twice,
    bad_input_is_refused_and_loses_nothing,
    corrections_reference_the_corrected_record,
    checkpoints_are_signed_every_n_records,
    proofs_verify_against_signed_checkpoints,
    rows_cannot_be_updated_or_deleted,
    detects_edited_record,
    detects_deleted_record,
    detects_reordered_records,
    detects_truncated_log,
    detects_moved_index_column,
    detects_forked_chain,
    detects_bad_checkpoint_signature,
    bundle_verifies_offline_and_detects_tampering,
    concurrent_writers_keep_one_gap_free_chain,
    outbox_delivery_state_survives_reopen,
    outbox_claims_are_disjoint_across_connections,
    signed_records_verify,
    damage_is_found_across_pages,
);

fn append_notes<B: Backend>(ledger: &Ledger<B>, n: usize) {
    for i in 0..n {
        ledger
            .append(one(note(&format!("batch/b-{}", i % 3), &format!("n{i}"))))
            .unwrap();
    }
}

fn verify_db<B: Backend>(ledger: &Ledger<B>) -> cellops_ledger::verify::VerifyReport {
    let key = ledger.verifier().clone();
    ledger.read(|b| verify_both_ways(b, &key)).unwrap()
}

fn verify_db_fresh<B: Backend>(
    db: &TestDb,
    key: &cellops_tlog::NoteVerifier,
) -> cellops_ledger::verify::VerifyReport {
    let mut b = B::open(&db.url).unwrap();
    verify_both_ways(&mut b, key).unwrap()
}

/// Verifies with the read-ahead thread and on one thread; both must find the same.
fn verify_both_ways<B: Backend>(
    b: &mut B,
    key: &cellops_tlog::NoteVerifier,
) -> Result<cellops_ledger::verify::VerifyReport, LedgerError> {
    let two = bundle::verify_store(b, key)?;
    let one = bundle::verify_store_single_thread(b, key)?;
    assert_eq!(two.problem, one.problem, "both verification paths agree");
    assert_eq!(
        (
            two.records_checked,
            two.checkpoints_checked,
            two.verified_checkpoint_size
        ),
        (
            one.records_checked,
            one.checkpoints_checked,
            one.verified_checkpoint_size
        )
    );
    Ok(two)
}

fn appends_read_back_and_verify<B: Backend>(db: &TestDb) {
    let ledger = db.open::<B>(10);
    let out = ledger
        .append(AppendRequest {
            records: vec![note("batch/b-1", "first"), note("batch/b-1", "second")],
            idempotency_key: None,
        })
        .unwrap();
    assert_eq!(
        out.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(out.records[1].prev_hash, out.records[0].hash);
    append_notes(&ledger, 5);
    let stream = ledger
        .read(|b| b.stream_records("batch/b-1", 0, 100))
        .unwrap();
    assert_eq!(
        stream.len(),
        4,
        "two from the first request, two of five notes"
    );
    assert_eq!(ledger.record(2).unwrap(), out.records[1]);
    let report = verify_db(&ledger);
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records_checked, 7);
}

fn chain_survives_reopen<B: Backend>(db: &TestDb) {
    let key = {
        let ledger = db.open::<B>(4);
        append_notes(&ledger, 6);
        ledger.verifier().clone()
    };
    let ledger = db.open::<B>(4);
    assert_eq!(ledger.size(), 6);
    assert_eq!(
        ledger.verifier().to_vkey(),
        key.to_vkey(),
        "the site key persists"
    );
    append_notes(&ledger, 3);
    let r7 = ledger.record(7).unwrap();
    assert_eq!(r7.prev_hash, ledger.record(6).unwrap().hash);
    assert!(verify_db(&ledger).is_ok());
}

fn idempotent_retry_appends_nothing_twice<B: Backend>(db: &TestDb) {
    let ledger = db.open::<B>(100);
    let request = AppendRequest {
        records: vec![note("batch/b-1", "scan"), note("batch/b-1", "scan 2")],
        idempotency_key: Some("client-7f3a".into()),
    };
    let first = ledger.append(request.clone()).unwrap();
    assert!(!first.replayed);
    let retry = ledger.append(request.clone()).unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.records, first.records);
    assert_eq!(ledger.size(), 2);
    let mut different = request;
    different.records.pop();
    let err = ledger.append(different).unwrap_err();
    assert!(
        matches!(err, LedgerError::IdempotencyConflict { .. }),
        "{err}"
    );
    assert_eq!(ledger.size(), 2);
}

fn bad_input_is_refused_and_loses_nothing<B: Backend>(db: &TestDb) {
    let ledger = db.open::<B>(100);
    append_notes(&ledger, 2);
    let mut unknown = note("batch/b-1", "x");
    unknown.event_type = "batch.teleported".into();
    let err = ledger.append(one(unknown)).unwrap_err();
    assert!(err.to_string().contains("batch.teleported"), "{err}");
    let mut bad_stream = note("Batch One", "x");
    bad_stream.stream = "Batch One".into();
    let err = ledger.append(one(bad_stream)).unwrap_err();
    assert!(err.to_string().starts_with("stream:"), "{err}");
    // A bad record in a multi-record request rejects the whole request.
    let mut second = note("batch/b-1", "x");
    second.site = "".into();
    let err = ledger
        .append(AppendRequest {
            records: vec![note("batch/b-1", "ok"), second],
            idempotency_key: None,
        })
        .unwrap_err();
    assert!(err.to_string().starts_with("records[1].site"), "{err}");
    let mut huge = note("batch/b-1", "x");
    huge.payload = serde_json::json!({"ids": [1, 9_007_199_254_740_993u64]});
    let err = ledger.append(one(huge)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("payload.ids[1]: 9007199254740993 is beyond"),
        "{err}"
    );
    assert_eq!(ledger.size(), 2);
    assert!(verify_db(&ledger).is_ok());
}

fn corrections_reference_the_corrected_record<B: Backend>(db: &TestDb) {
    let ledger = db.open::<B>(100);
    append_notes(&ledger, 1);
    let mut fix = note("batch/b-0", "n0 (volume was 52 mL, not 25 mL)");
    fix.corrects = Some(1);
    let err = ledger.append(one(fix.clone())).unwrap_err();
    assert!(err.to_string().contains("must say why"), "{err}");
    fix.corrects = Some(9);
    fix.reason = Some("transposed digits".into());
    let err = ledger.append(one(fix.clone())).unwrap_err();
    assert!(err.to_string().contains("record 9 does not exist"), "{err}");
    fix.corrects = Some(1);
    let out = ledger.append(one(fix)).unwrap();
    assert_eq!(out.records[0].corrects, Some(1));
    assert_eq!(out.records[0].reason.as_deref(), Some("transposed digits"));
    let original = ledger.record(1).unwrap();
    assert!(
        original.payload.contains("n0"),
        "the original stays as it was"
    );
}

fn checkpoints_are_signed_every_n_records<B: Backend>(db: &TestDb) {
    let ledger = db.open::<B>(10);
    append_notes(&ledger, 25);
    let cps = ledger.read(|b| b.checkpoints(0, 100)).unwrap();
    let sizes: Vec<u64> = cps.iter().map(|c| c.size).collect();
    assert_eq!(sizes, vec![10, 20]);
    let forced = ledger.checkpoint_now().unwrap().unwrap();
    assert_eq!(forced.size, 25);
    assert!(
        ledger.checkpoint_now().unwrap().is_none(),
        "nothing new to sign"
    );
    let opened = cellops_tlog::open_checkpoint(&forced.note, &[ledger.verifier().clone()]).unwrap();
    assert_eq!(opened.size, 25);
    assert_eq!(opened.origin, "test.cellops/ledger");
}

fn proofs_verify_against_signed_checkpoints<B: Backend>(db: &TestDb) {
    let ledger = db.open::<B>(8);
    append_notes(&ledger, 21);
    let latest = ledger.checkpoint_now().unwrap().unwrap();
    let key = ledger.verifier().clone();
    for seq in [1, 8, 13, 21] {
        let p = ledger.inclusion_proof(seq, None).unwrap();
        assert_eq!(p.tree_size, 21);
        let record = ledger.record(seq).unwrap();
        cellops_tlog::verify_inclusion_against_checkpoint(
            &latest.note,
            &key,
            seq - 1,
            &record.leaf_hash(),
            &p.path,
        )
        .unwrap();
        // The proof does not prove another record.
        let other = ledger.record(if seq == 1 { 2 } else { 1 }).unwrap();
        assert!(
            cellops_tlog::verify_inclusion_against_checkpoint(
                &latest.note,
                &key,
                seq - 1,
                &other.leaf_hash(),
                &p.path
            )
            .is_err()
        );
    }
    let older = ledger.read(|b| b.checkpoints(0, 1)).unwrap().remove(0);
    let c = ledger.consistency_proof(older.size, latest.size).unwrap();
    cellops_tlog::verify_consistency_between_checkpoints(&older.note, &latest.note, &key, &c.path)
        .unwrap();
    assert!(matches!(
        ledger.inclusion_proof(0, None),
        Err(LedgerError::BadProofRequest(_))
    ));
    assert!(matches!(
        ledger.consistency_proof(9, 3),
        Err(LedgerError::BadProofRequest(_))
    ));
    assert!(ledger.inclusion_proof(5, Some(1000)).is_err());
}

fn rows_cannot_be_updated_or_deleted<B: Backend>(db: &TestDb) {
    let ledger = db.open::<B>(2);
    append_notes(&ledger, 3);
    let e = raw(
        db,
        "UPDATE ledger_records SET stream = 'batch/other' WHERE seq = 1",
    )
    .unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    let e = raw(db, "DELETE FROM ledger_records WHERE seq = 3").unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    let e = raw(db, "DELETE FROM ledger_checkpoints").unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    assert!(verify_db(&ledger).is_ok());
}

fn damaged<B: Backend>(db: &TestDb, sql: &str) -> cellops_ledger::verify::Finding {
    let key = {
        let ledger = db.open::<B>(5);
        append_notes(&ledger, 12);
        ledger.checkpoint_now().unwrap();
        assert!(verify_db(&ledger).is_ok());
        ledger.verifier().clone()
    };
    tamper(db, sql);
    let report = verify_db_fresh::<B>(db, &key);
    report.problem.expect("damage must be found")
}

fn detects_edited_record<B: Backend>(db: &TestDb) {
    let f = damaged::<B>(
        db,
        "UPDATE ledger_records SET entry = replace(entry, '\"n6\"', '\"n6 edited\"') WHERE seq = 7",
    );
    assert_eq!((f.damage, f.seq), (Damage::Edited, 7), "{f:?}");
}

fn detects_deleted_record<B: Backend>(db: &TestDb) {
    let f = damaged::<B>(db, "DELETE FROM ledger_records WHERE seq = 4");
    assert_eq!((f.damage, f.seq), (Damage::Deleted, 4), "{f:?}");
}

fn detects_reordered_records<B: Backend>(db: &TestDb) {
    // Swap every column but the position of records 5 and 6.
    let f = damaged::<B>(
        db,
        "UPDATE ledger_records SET seq = 1000 WHERE seq = 5;
         UPDATE ledger_records SET seq = 5 WHERE seq = 6;
         UPDATE ledger_records SET seq = 6 WHERE seq = 1000;",
    );
    assert_eq!((f.damage, f.seq), (Damage::Reordered, 5), "{f:?}");
}

fn detects_moved_index_column<B: Backend>(db: &TestDb) {
    // Pointing a record at another stream would hide it from that stream's view.
    let f = damaged::<B>(
        db,
        "UPDATE ledger_records SET stream = 'batch/b-9' WHERE seq = 3",
    );
    assert_eq!((f.damage, f.seq), (Damage::Edited, 3), "{f:?}");
    assert!(f.detail.contains("index columns"), "{f:?}");
}

fn detects_truncated_log<B: Backend>(db: &TestDb) {
    let f = damaged::<B>(db, "DELETE FROM ledger_records WHERE seq > 9");
    assert_eq!((f.damage, f.seq), (Damage::Truncated, 10), "{f:?}");
}

fn detects_forked_chain<B: Backend>(db: &TestDb) {
    // An attacker rewrites record 8 and re-hashes everything after it: the chain is
    // self-consistent again, but the signed checkpoints no longer match.
    let key = {
        let ledger = db.open::<B>(5);
        append_notes(&ledger, 12);
        ledger.checkpoint_now().unwrap();
        ledger.verifier().clone()
    };
    let mut b = B::open(&db.url).unwrap();
    let mut records = b.records(1, 100).unwrap();
    drop(b);
    records[7].payload = "{\"text\":\"rewritten\"}".into();
    for i in 7..records.len() {
        if i > 7 {
            records[i].prev_hash = records[i - 1].hash;
        }
        records[i].hash = records[i].computed_hash();
    }
    let mut sql = String::new();
    for r in &records[7..] {
        sql.push_str(&format!(
            "UPDATE ledger_records SET entry = '{}', prev_hash = {}, hash = {} WHERE seq = {};",
            String::from_utf8(r.entry_bytes())
                .unwrap()
                .replace('\'', "''"),
            blob(db, &r.prev_hash),
            blob(db, &r.hash),
            r.seq
        ));
    }
    tamper(db, &sql);
    let f = verify_db_fresh::<B>(db, &key).problem.expect("fork found");
    assert_eq!(f.damage, Damage::ForkedChain, "{f:?}");
    assert_eq!(
        f.seq, 6,
        "the first records not covered by a matching checkpoint: {f:?}"
    );
}

fn blob(db: &TestDb, h: &[u8; 32]) -> String {
    if db.url.starts_with("sqlite://") {
        format!("X'{}'", hex::encode(h))
    } else {
        format!("'\\x{}'::bytea", hex::encode(h))
    }
}

fn detects_bad_checkpoint_signature<B: Backend>(db: &TestDb) {
    let f = damaged::<B>(
        db,
        "UPDATE ledger_checkpoints SET note = replace(note, 'test.cellops/ledger\n10\n', 'test.cellops/ledger\n11\n') WHERE size = 10",
    );
    assert_eq!((f.damage, f.seq), (Damage::BadSignature, 10), "{f:?}");
}

fn bundle_verifies_offline_and_detects_tampering<B: Backend>(db: &TestDb) {
    let ledger = db.open::<B>(4);
    append_notes(&ledger, 10);
    ledger.checkpoint_now().unwrap();
    let key = ledger.verifier().clone();
    let mut out = Vec::new();
    let origin = ledger.config().origin.clone();
    let header = ledger
        .read(|b| bundle::export(b, &origin, &key, &mut out))
        .unwrap();
    assert_eq!(header.records, 10);
    drop(ledger);
    let (_, report) = bundle::verify_bundle(&out[..], Some(&key)).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.verified_checkpoint_size, 10);
    let text = String::from_utf8(out).unwrap();
    let edited = text.replacen(r#"\"n5\""#, r#"\"n5 but edited\""#, 1);
    assert_ne!(edited, text);
    let (_, report) = bundle::verify_bundle(edited.as_bytes(), Some(&key)).unwrap();
    assert_eq!(report.problem.unwrap().damage, Damage::Edited);
    let mut lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    lines.swap(n - 3, n - 2);
    let swapped = lines.join("\n");
    let (_, report) = bundle::verify_bundle(swapped.as_bytes(), Some(&key)).unwrap();
    let f = report.problem.unwrap();
    assert_eq!((f.damage, f.seq), (Damage::Reordered, 8), "{f:?}");
    let without_8: String = text
        .lines()
        .filter(|l| !l.contains(r#""seq":8,"#))
        .collect::<Vec<_>>()
        .join("\n");
    let (_, report) = bundle::verify_bundle(without_8.as_bytes(), Some(&key)).unwrap();
    let f = report.problem.unwrap();
    assert_eq!((f.damage, f.seq), (Damage::Deleted, 8), "{f:?}");
    let other_key =
        cellops_tlog::NoteSigner::generate("test.cellops/ledger", &mut rand::rngs::OsRng)
            .unwrap()
            .verifier();
    let (_, report) = bundle::verify_bundle(text.as_bytes(), Some(&other_key)).unwrap();
    assert_eq!(report.problem.unwrap().damage, Damage::BadSignature);
}

fn concurrent_writers_keep_one_gap_free_chain<B: Backend>(db: &TestDb) {
    // Two independent Ledger instances (as two processes would) plus several threads each.
    let a = db.open::<B>(50);
    let b = db.open::<B>(50);
    std::thread::scope(|s| {
        for t in 0..4 {
            let ledger = if t % 2 == 0 { a.clone() } else { b.clone() };
            s.spawn(move || append_notes(&ledger, 50));
        }
    });
    a.catch_up().unwrap();
    assert_eq!(a.size(), 200);
    a.checkpoint_now().unwrap();
    b.checkpoint_now().unwrap();
    let report = verify_db(&a);
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records_checked, 200);
}

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_unix_us(1_764_000_000_000_000 + seconds * 1_000_000).unwrap()
}

fn item(subscription: &str, seq: u64) -> OutboxItem {
    OutboxItem {
        subscription: subscription.into(),
        seq,
        kind: "batch.started".into(),
        body: format!("{{\"seq\":{seq}}}"),
        created_at: t(0),
    }
}

fn attempt(at: i64, status: Option<u16>, outcome: AttemptOutcome) -> DeliveryAttempt {
    DeliveryAttempt {
        at: t(at),
        status,
        error: status
            .filter(|s| *s >= 300)
            .map(|s| format!("receiver answered {s}")),
        outcome,
    }
}

/// The webhook outbox: enqueueing is idempotent, a claim leases rows, an attempt only
/// changes a pending row, and a delivered notification stays delivered after a reopen.
fn outbox_delivery_state_survives_reopen<B: Backend>(db: &TestDb) {
    let ledger = db.open::<B>(10);
    let items = [item("wh-a", 1), item("wh-a", 2), item("wh-b", 2)];
    assert_eq!(ledger.read(|b| b.outbox_enqueue(&items)).unwrap(), 3);
    assert_eq!(
        ledger.read(|b| b.outbox_enqueue(&items)).unwrap(),
        0,
        "enqueueing again adds nothing"
    );
    assert_eq!(ledger.read(|b| b.outbox_high_seq()).unwrap(), 2);

    let claimed = ledger.read(|b| b.outbox_claim(t(0), t(60), 10)).unwrap();
    let keys: Vec<(String, u64)> = claimed
        .iter()
        .map(|e| (e.item.subscription.clone(), e.item.seq))
        .collect();
    assert_eq!(
        keys,
        [("wh-a".into(), 1), ("wh-a".into(), 2), ("wh-b".into(), 2)]
    );
    assert_eq!(claimed[0].item.body, "{\"seq\":1}");
    assert_eq!(claimed[0].state, DeliveryState::Pending);
    assert_eq!(
        claimed[0].next_attempt_at,
        t(0),
        "the due time before the claim"
    );
    assert!(
        ledger
            .read(|b| b.outbox_claim(t(59), t(120), 10))
            .unwrap()
            .is_empty(),
        "leased rows are not due"
    );

    // (a,1) delivered, (a,2) answered 503 and is retried at +300 s, (b,2) gave up.
    let ok = attempt(1, Some(204), AttemptOutcome::Delivered);
    assert!(ledger.read(|b| b.outbox_record("wh-a", 1, &ok)).unwrap());
    assert!(
        !ledger.read(|b| b.outbox_record("wh-a", 1, &ok)).unwrap(),
        "a delivered row does not change again"
    );
    let retry = attempt(2, Some(503), AttemptOutcome::RetryAt(t(300)));
    assert!(ledger.read(|b| b.outbox_record("wh-a", 2, &retry)).unwrap());
    let gave_up = attempt(3, None, AttemptOutcome::GaveUp);
    assert!(
        ledger
            .read(|b| b.outbox_record("wh-b", 2, &gave_up))
            .unwrap()
    );
    drop(ledger);

    // A new process on the same database.
    let mut b = B::open(&db.url).unwrap();
    assert_eq!(b.outbox_enqueue(&items).unwrap(), 0, "nothing is re-queued");
    let a = b.outbox_entries("wh-a", 0, 10).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].state, DeliveryState::Delivered);
    assert_eq!(a[0].delivered_at, Some(t(1)));
    assert_eq!(a[0].attempts, 1);
    assert_eq!(a[0].last_status, Some(204));
    assert_eq!(a[1].state, DeliveryState::Pending);
    assert_eq!(a[1].next_attempt_at, t(300));
    assert_eq!(a[1].last_status, Some(503));
    assert_eq!(a[1].last_error.as_deref(), Some("receiver answered 503"));
    assert_eq!(a[1].last_attempt_at, Some(t(2)));
    assert_eq!(
        b.outbox_entries("wh-a", 1, 10).unwrap().len(),
        1,
        "after_seq"
    );
    let bb = b.outbox_entries("wh-b", 0, 10).unwrap();
    assert_eq!(bb[0].state, DeliveryState::Failed);
    assert!(b.outbox_claim(t(299), t(400), 10).unwrap().is_empty());
    let due = b.outbox_claim(t(300), t(400), 10).unwrap();
    assert_eq!(due.len(), 1, "only the pending one is due: {due:?}");
    assert_eq!(
        (due[0].item.subscription.as_str(), due[0].item.seq),
        ("wh-a", 2)
    );
    assert_eq!(due[0].attempts, 1);
    let cancel = attempt(301, None, AttemptOutcome::Cancelled);
    assert!(b.outbox_record("wh-a", 2, &cancel).unwrap());
    assert!(b.outbox_claim(t(10_000), t(10_060), 10).unwrap().is_empty());
}

/// Two dispatchers (two connections, as two processes would have) claiming from one
/// outbox never get the same notification while its lease runs.
fn outbox_claims_are_disjoint_across_connections<B: Backend>(db: &TestDb) {
    let mut setup = B::open(&db.url).unwrap();
    let items: Vec<OutboxItem> = (1..=120).map(|seq| item("wh-a", seq)).collect();
    assert_eq!(setup.outbox_enqueue(&items).unwrap(), 120);
    let claimed: Vec<Vec<u64>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let mut b = B::connect(&db.url).unwrap();
                    let mut mine = Vec::new();
                    loop {
                        let got = b.outbox_claim(t(0), t(600), 7).unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.iter().map(|e| e.item.seq));
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = claimed.concat();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=120).collect::<Vec<_>>(),
        "each claimed exactly once"
    );
}

fn signed_records_verify<B: Backend>(db: &TestDb) {
    let ledger = db.open::<B>(3);
    append_notes(&ledger, 2);
    let mut signed = note("batch/b-1", "released");
    signed.signature = Some(cellops_ledger::PendingSignature {
        signer: "qa".into(),
        signer_name: "Q. A. Person".into(),
        meaning: "Released".into(),
        signed_at: Timestamp::EPOCH,
        authentication: "password".into(),
    });
    ledger.append(one(signed)).unwrap();
    append_notes(&ledger, 2);
    ledger.checkpoint_now().unwrap();
    let report = verify_db(&ledger);
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records_checked, 5);
    assert_eq!(report.verified_checkpoint_size, 5);
}

/// A log of several verification pages (1,024 rows each), with checkpoints that fall inside
/// pages and across their boundaries: the parallel path assembles the tree from subtrees
/// hashed page by page, and must find every damage exactly where the one-thread path does.
fn damage_is_found_across_pages<B: Backend>(db: &TestDb) {
    const RECORDS: usize = 20_000;
    let ledger = db.open::<B>(3000);
    for chunk in 0..RECORDS / 1000 {
        let records = (0..1000)
            .map(|i| {
                note(
                    &format!("batch/b-{}", i % 7),
                    &format!("n{}", chunk * 1000 + i),
                )
            })
            .collect();
        ledger
            .append(AppendRequest {
                records,
                idempotency_key: None,
            })
            .unwrap();
    }
    ledger.checkpoint_now().unwrap();
    let report = verify_db(&ledger);
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records_checked, RECORDS as u64);
    assert_eq!(report.verified_checkpoint_size, RECORDS as u64);
    assert_eq!(
        report.checkpoints_checked, 7,
        "3000, 6000, …, 18000 and 20000"
    );
    let key = ledger.verifier().clone();
    drop(ledger);
    let found = |sql: &str, undo: &str| {
        tamper(db, sql);
        let f = verify_db_fresh::<B>(db, &key)
            .problem
            .expect("damage found");
        tamper(db, undo);
        assert!(verify_db_fresh::<B>(db, &key).is_ok(), "undone: {undo}");
        f
    };
    let f = found(
        "UPDATE ledger_records SET entry = replace(entry, '\"n12344\"', '\"n12344 edited\"') WHERE seq = 12345",
        "UPDATE ledger_records SET entry = replace(entry, '\"n12344 edited\"', '\"n12344\"') WHERE seq = 12345",
    );
    assert_eq!((f.damage, f.seq), (Damage::Edited, 12345), "{f:?}");
    // The first row of a page (the 17th).
    let f = found(
        "CREATE TABLE saved AS SELECT * FROM ledger_records WHERE seq = 16385;
         DELETE FROM ledger_records WHERE seq = 16385;",
        "INSERT INTO ledger_records SELECT * FROM saved; DROP TABLE saved;",
    );
    assert_eq!((f.damage, f.seq), (Damage::Deleted, 16385), "{f:?}");
    // The last row of a page (the 8th) and the first of the next, swapped.
    let swap = "UPDATE ledger_records SET seq = 100000 WHERE seq = 8192;
         UPDATE ledger_records SET seq = 8192 WHERE seq = 8193;
         UPDATE ledger_records SET seq = 8193 WHERE seq = 100000;";
    let f = found(swap, swap);
    assert_eq!((f.damage, f.seq), (Damage::Reordered, 8192), "{f:?}");
    let f = found(
        "UPDATE ledger_records SET stream = 'batch/b-9' WHERE seq = 9000",
        "UPDATE ledger_records SET stream = 'batch/b-5' WHERE seq = 9000",
    );
    assert_eq!((f.damage, f.seq), (Damage::Edited, 9000), "{f:?}");
    // The last record rewritten and re-hashed: its chain is consistent, the tree is not the
    // one the last checkpoint signed.
    let mut b = B::open(&db.url).unwrap();
    let mut last = b.records(RECORDS as u64, 1).unwrap().remove(0);
    drop(b);
    last.payload = "{\"text\":\"rewritten\"}".into();
    last.hash = last.computed_hash();
    tamper(
        db,
        &format!(
            "UPDATE ledger_records SET entry = '{}', hash = {} WHERE seq = {RECORDS}",
            String::from_utf8(last.entry_bytes()).unwrap(),
            blob(db, &last.hash)
        ),
    );
    let f = verify_db_fresh::<B>(db, &key).problem.expect("fork found");
    assert_eq!((f.damage, f.seq), (Damage::ForkedChain, 18001), "{f:?}");
}
