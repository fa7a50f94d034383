//! The ledger half of `cellops bench ledger`, buildable on its own (also with
//! `cargo run --release -p cellops-ledger --example ledger_perf`, which builds only this
//! crate and its dependencies): full verification against single-core SHA-256 over the
//! same canonical entry bytes, and durable appends against raw SQLite inserts of the same
//! rows. The figures that count are those of `cellops bench ledger --json`; this is for
//! profiling (`perf record`) and for seeing what an optimised build of the ledger gives.
//!
//! Usage: `ledger_perf [verify|append|all] [RECORDS]`.

use cellops_domain::{SimClock, Timestamp};
use cellops_ledger::sqlite::Sqlite;
use cellops_ledger::{AppendRequest, Backend, EventCatalog, Ledger, LedgerConfig, NewRecord};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const BATCH_RECORDS: usize = 100;

fn note(i: usize) -> NewRecord {
    NewRecord::new(
        &format!("batch/b-{}", i % 97),
        "note.recorded",
        1,
        serde_json::json!({ "text": format!("cell count {i}: 2.4e6 viable cells/mL, viability 94.1 %"), "n": i }),
        "op-tanaka",
        "cpc-kyoto",
    )
}

fn open(url: &str, every: u64) -> Ledger<Sqlite> {
    let mut config = LedgerConfig::new(EventCatalog::new().with("note.recorded", 1));
    config.checkpoint_every_records = every;
    config.checkpoint_every_seconds = 3600;
    let clock = Arc::new(SimClock::new(
        Timestamp::from_unix_us(1_764_000_000_000_000).expect("a valid instant"),
    ));
    Ledger::open(url, clock, config).expect("open the ledger")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn verify(dir: &std::path::Path, n: usize) {
    let url = format!("sqlite://{}", dir.join("verify.db").display());
    let ledger = open(&url, 10_000);
    let mut done = 0;
    while done < n {
        let take = 1000.min(n - done);
        let records = (done..done + take).map(note).collect();
        ledger
            .append(AppendRequest {
                records,
                idempotency_key: None,
            })
            .expect("append");
        done += take;
    }
    ledger.checkpoint_now().expect("checkpoint");
    let key = ledger.verifier().clone();
    let rows = ledger.read(|b| b.rows(1, n)).expect("rows");
    drop(ledger);
    // The baseline hashes the entries in one pass, as `cellops bench ledger` does.
    let entries: Vec<u8> = rows
        .iter()
        .flat_map(|r| r.entry.as_bytes())
        .copied()
        .collect();
    let total = entries.len();
    let mut backend = Sqlite::open(&url).expect("open");
    let (mut ours, mut single, mut base) = (Vec::new(), Vec::new(), Vec::new());
    let (mut scan, mut hashing) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        // Reading alone: what the reading thread costs before any hashing.
        let started = Instant::now();
        let mut next = 1;
        loop {
            let mut last = None;
            backend
                .scan_rows(next, 8192, &mut |row| {
                    last = Some(row.seq);
                    std::hint::black_box(row);
                })
                .expect("scan");
            let Some(last) = last else { break };
            next = last + 1;
        }
        scan.push(started.elapsed());
        // Hashing alone, on one thread: every entry digest, chain hash, leaf and node hash
        // verification computes, over rows already in memory.
        let started = Instant::now();
        let mut hashes = cellops_ledger::verify::PageHashes::default();
        for page in rows.chunks(8192) {
            hashes.compute(page.iter().map(|r| r.as_row_ref()));
            std::hint::black_box(&hashes);
        }
        hashing.push(started.elapsed());
        let started = Instant::now();
        let report = cellops_ledger::bundle::verify_store(&mut backend, &key).expect("verify");
        ours.push(started.elapsed());
        assert!(report.is_ok(), "{:?}", report.problem);
        let started = Instant::now();
        let report =
            cellops_ledger::bundle::verify_store_single_thread(&mut backend, &key).expect("verify");
        single.push(started.elapsed());
        assert!(report.is_ok(), "{:?}", report.problem);
        let started = Instant::now();
        std::hint::black_box(Sha256::digest(std::hint::black_box(&entries)));
        base.push(started.elapsed());
    }
    let mb = total as f64 / 1e6;
    let (ours, single, base) = (median(ours), median(single), median(base));
    let (scan, hashing) = (median(scan), median(hashing));
    let us = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "per record: reading the rows alone {:.3} µs, all of verification's hashing alone {:.3} µs, SHA-256 over the entries alone {:.3} µs",
        us(scan),
        us(hashing),
        us(base)
    );
    println!(
        "verify single thread: {:.1} MB/s ({:.2} µs/record), ratio {:.3}",
        mb / single.as_secs_f64(),
        single.as_secs_f64() * 1e6 / n as f64,
        base.as_secs_f64() / single.as_secs_f64()
    );
    println!(
        "verify {n} records, {mb:.1} MB: ours {:.1} MB/s ({:.2} µs/record), SHA-256 {:.1} MB/s, ratio {:.3}",
        mb / ours.as_secs_f64(),
        ours.as_secs_f64() * 1e6 / n as f64,
        mb / base.as_secs_f64(),
        base.as_secs_f64() / ours.as_secs_f64()
    );
}

fn append(dir: &std::path::Path, n: usize) {
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let url = format!("sqlite://{}", dir.join(format!("a{run}.db")).display());
        let ledger = open(&url, 1000);
        let started = Instant::now();
        for chunk in 0..n / BATCH_RECORDS {
            let records = (0..BATCH_RECORDS)
                .map(|i| note(chunk * BATCH_RECORDS + i))
                .collect();
            ledger
                .append(AppendRequest {
                    records,
                    idempotency_key: None,
                })
                .expect("append");
        }
        ours.push(started.elapsed());
        let rows = ledger.read(|b| b.rows(1, n)).expect("rows");
        drop(ledger);
        let mut conn = rusqlite::Connection::open(dir.join(format!("r{run}.db"))).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE t (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, event_type TEXT NOT NULL,
               site TEXT NOT NULL, entry TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
             CREATE INDEX t_stream ON t (stream, seq);",
        )
        .expect("create");
        let started = Instant::now();
        for chunk in rows.chunks(BATCH_RECORDS) {
            let tx = conn.transaction().expect("begin");
            {
                let mut stmt = tx
                    .prepare_cached("INSERT INTO t VALUES (?1,?2,?3,?4,?5,?6,?7)")
                    .expect("prepare");
                for r in chunk {
                    stmt.execute(rusqlite::params![
                        r.seq as i64,
                        r.stream,
                        r.event_type,
                        r.site,
                        r.entry,
                        &r.prev_hash[..],
                        &r.hash[..]
                    ])
                    .expect("insert");
                }
            }
            tx.commit().expect("commit");
        }
        raw.push(started.elapsed());
    }
    let (ours, raw) = (median(ours), median(raw));
    println!(
        "append {n} records, {BATCH_RECORDS}/request: ours {:.0}/s, raw SQLite {:.0}/s, ratio {:.3}",
        n as f64 / ours.as_secs_f64(),
        n as f64 / raw.as_secs_f64(),
        raw.as_secs_f64() / ours.as_secs_f64()
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "all".into());
    let n: usize = args
        .next()
        .map(|s| s.parse().expect("RECORDS is a number"))
        .unwrap_or(0);
    let dir = tempfile::tempdir().expect("temp dir");
    if what == "verify" || what == "all" {
        verify(dir.path(), if n == 0 { 200_000 } else { n });
    }
    if what == "append" || what == "all" {
        append(dir.path(), if n == 0 { 20_000 } else { n });
    }
}
