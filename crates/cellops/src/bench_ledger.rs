//! `cellops bench ledger`: durable appends against raw inserts of the same bytes (SQLite and
//! PostgreSQL), full verification against single-core SHA-256 over the same bytes, and
//! proof latency on a large log. Everything runs in this process, on this machine.

use crate::bench::{BenchResult, median};
use crate::database;
use crate::wall_clock::WallClock;
use anyhow::Context;
use cellops_ledger::postgres::Postgres;
use cellops_ledger::sqlite::Sqlite;
use cellops_ledger::{AppendRequest, Backend, Ledger, NewRecord, StoredRow, bundle};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records per request/transaction on both sides of the append comparison.
const BATCH_RECORDS: usize = 100;
const RUNS: usize = 5;

struct Sizes {
    append_records: usize,
    verify_records: usize,
    proof_records: u64,
}

pub fn run(quick: bool) -> anyhow::Result<(Option<String>, Vec<BenchResult>)> {
    let sizes = if quick {
        Sizes {
            append_records: 1_000,
            verify_records: 5_000,
            proof_records: 10_000,
        }
    } else {
        Sizes {
            append_records: 20_000,
            verify_records: 200_000,
            proof_records: 1_000_000,
        }
    };
    let dir = tempfile::tempdir()?;
    let mut results = Vec::new();
    let mut backends = vec!["sqlite".to_string()];

    results.push(append_vs_raw_sqlite(dir.path(), &sizes)?);
    match postgres_admin() {
        Some(mut admin) => {
            results.push(append_vs_raw_postgres(&mut admin, &sizes)?);
            backends.push("postgres".into());
        }
        None => eprintln!(
            "bench ledger: PostgreSQL at {} is unreachable; the PostgreSQL comparison is skipped",
            admin_url()
        ),
    }
    results.extend(verify_vs_sha256(dir.path(), &sizes)?);
    results.extend(proof_latency(dir.path(), &sizes)?);
    Ok((Some(backends.join("+")), results))
}

/// The benches' typical record: a cell-count note on one of 97 batch streams.
pub(crate) fn note(i: usize) -> NewRecord {
    NewRecord::new(
        &format!("batch/b-{}", i % 97),
        "note.recorded",
        1,
        serde_json::json!({ "text": format!("cell count {i}: 2.4e6 viable cells/mL, viability 94.1 %"), "n": i }),
        "op-tanaka",
        "cpc-kyoto",
    )
}

fn open<B: Backend>(url: &str, checkpoint_every_records: u64) -> anyhow::Result<Ledger<B>> {
    Ok(Ledger::<B>::open(
        url,
        Arc::new(WallClock),
        database::ledger_config(checkpoint_every_records, 3600),
    )?)
}

/// Appends `n` records in requests of `BATCH_RECORDS`, one after another; returns records/s.
/// The requests are built before the clock starts, as the raw side's rows are: the time
/// is the ledger's (validate, canonicalize, seal, commit), not the caller's.
fn append_run<B: Backend>(ledger: &Ledger<B>, n: usize, offset: usize) -> anyhow::Result<f64> {
    let requests: Vec<AppendRequest> = (0..n / BATCH_RECORDS)
        .map(|chunk| AppendRequest {
            records: (0..BATCH_RECORDS)
                .map(|i| note(offset + chunk * BATCH_RECORDS + i))
                .collect(),
            idempotency_key: None,
        })
        .collect();
    let started = Instant::now();
    for request in requests {
        ledger.append(request)?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn rate_median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn append_vs_raw_sqlite(dir: &std::path::Path, sizes: &Sizes) -> anyhow::Result<BenchResult> {
    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for run in 0..RUNS {
        let url = format!(
            "sqlite://{}",
            dir.join(format!("append-{run}.db")).display()
        );
        let ledger = open::<Sqlite>(&url, 1000)?;
        append_run(&ledger, BATCH_RECORDS, 0)?; // warm-up
        ours.push(append_run(&ledger, sizes.append_records, BATCH_RECORDS)?);
        let records = ledger.read(|b| b.rows(1, sizes.append_records + BATCH_RECORDS))?;
        drop(ledger);
        raw.push(raw_sqlite_inserts(
            &dir.join(format!("raw-{run}.db")),
            &records,
        )?);
    }
    Ok(BenchResult::against(
        "append_durable_batch100_sqlite",
        "records/s",
        rate_median(ours),
        "raw SQLite inserts of the same stored rows (same bytes), WAL, synchronous=FULL, 100 per transaction",
        rate_median(raw),
        true,
        0.8,
    ))
}

/// Inserts exactly the rows the ledger stored (same columns, same bytes, same index).
fn raw_sqlite_inserts(path: &std::path::Path, rows: &[StoredRow]) -> anyhow::Result<f64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE t (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, event_type TEXT NOT NULL,
           site TEXT NOT NULL, entry TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
         CREATE INDEX t_stream ON t (stream, seq);",
    )?;
    let started = Instant::now();
    for chunk in rows.chunks(BATCH_RECORDS) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO t VALUES (?1,?2,?3,?4,?5,?6,?7)")?;
            for r in chunk {
                stmt.execute(rusqlite::params![
                    r.seq as i64,
                    r.stream,
                    r.event_type,
                    r.site,
                    r.entry,
                    &r.prev_hash[..],
                    &r.hash[..]
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}

fn admin_url() -> String {
    std::env::var("CELLOPS_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn postgres_admin() -> Option<postgres::Client> {
    postgres::Client::connect(&admin_url(), postgres::NoTls).ok()
}

/// A fresh PostgreSQL database, dropped when the guard goes.
struct PgDb {
    url: String,
    name: String,
}

impl PgDb {
    fn create(admin: &mut postgres::Client, tag: &str) -> anyhow::Result<PgDb> {
        let name = format!("cellops_bench_{tag}_{}", std::process::id());
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let base = admin_url()
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .context("admin URL has no database part")?;
        Ok(PgDb {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Some(mut admin) = postgres_admin() {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn append_vs_raw_postgres(
    admin: &mut postgres::Client,
    sizes: &Sizes,
) -> anyhow::Result<BenchResult> {
    let n = (sizes.append_records / 2).max(BATCH_RECORDS);
    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for run in 0..RUNS {
        let db = PgDb::create(admin, &format!("a{run}"))?;
        let ledger = open::<Postgres>(&db.url, 1000)?;
        append_run(&ledger, BATCH_RECORDS, 0)?;
        ours.push(append_run(&ledger, n, BATCH_RECORDS)?);
        let records = ledger.read(|b| b.rows(1, n + BATCH_RECORDS))?;
        drop(ledger);
        let raw_db = PgDb::create(admin, &format!("r{run}"))?;
        raw.push(raw_postgres_inserts(&raw_db.url, &records)?);
    }
    Ok(BenchResult::against(
        "append_durable_batch100_postgres",
        "records/s",
        rate_median(ours),
        "raw PostgreSQL inserts of the same stored rows (same bytes), synchronous_commit=on, 100 per transaction",
        rate_median(raw),
        true,
        0.8,
    ))
}

/// Inserts exactly the rows the ledger stored (same columns, same bytes, same index).
fn raw_postgres_inserts(url: &str, rows: &[StoredRow]) -> anyhow::Result<f64> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    c.batch_execute(
        "CREATE TABLE t (seq BIGINT PRIMARY KEY, stream TEXT NOT NULL, event_type TEXT NOT NULL,
           site TEXT NOT NULL, entry TEXT NOT NULL, prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL);
         CREATE INDEX t_stream ON t (stream, seq);",
    )?;
    let started = Instant::now();
    for chunk in rows.chunks(BATCH_RECORDS) {
        let mut tx = c.transaction()?;
        let stmt = tx.prepare("INSERT INTO t VALUES ($1,$2,$3,$4,$5,$6,$7)")?;
        for r in chunk {
            tx.execute(
                &stmt,
                &[
                    &(r.seq as i64),
                    &r.stream,
                    &r.event_type,
                    &r.site,
                    &r.entry,
                    &&r.prev_hash[..],
                    &&r.hash[..],
                ],
            )?;
        }
        tx.commit()?;
    }
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}

/// Builds a ledger of `n` records quickly (large requests, group commit).
fn build_ledger(
    url: &str,
    n: u64,
    checkpoint_every_records: u64,
) -> anyhow::Result<Ledger<Sqlite>> {
    let ledger = open::<Sqlite>(url, checkpoint_every_records)?;
    let request_records = 1000u64;
    let mut done = ledger.size();
    while done < n {
        let take = request_records.min(n - done);
        let records = (0..take).map(|i| note((done + i) as usize)).collect();
        ledger.append(AppendRequest {
            records,
            idempotency_key: None,
        })?;
        done += take;
    }
    ledger.checkpoint_now()?;
    Ok(ledger)
}

/// Full verification of a SQLite ledger (chain, index columns, tree, every checkpoint
/// signature), on every core and on one thread, against single-core SHA-256 over exactly
/// the stored entry bytes (one pass over them in memory, no per-record finalisation: the
/// most favourable baseline). The bytes are hashed in one call so that the baseline runs
/// at the optimised hash's speed: this crate is built without optimisation in dev, and a
/// call per entry through the generic hasher API measured about half of that speed.
fn verify_vs_sha256(dir: &std::path::Path, sizes: &Sizes) -> anyhow::Result<Vec<BenchResult>> {
    let url = format!("sqlite://{}", dir.join("verify.db").display());
    let ledger = build_ledger(&url, sizes.verify_records as u64, 10_000)?;
    let key = ledger.verifier().clone();
    let rows = ledger.read(|b| b.rows(1, sizes.verify_records))?;
    drop(ledger);
    let entries: Vec<u8> = rows
        .iter()
        .flat_map(|r| r.entry.as_bytes())
        .copied()
        .collect();
    let total_bytes = entries.len();
    drop(rows);
    let mut ours = Vec::new();
    let mut single = Vec::new();
    let mut base = Vec::new();
    let mut read = Vec::new();
    let mut backend = Sqlite::open(&url)?;
    for _ in 0..RUNS {
        // Reading the rows alone, as verification's reading thread does (no checks, no
        // hashing): the ceiling of any verification that reads through one connection.
        let started = Instant::now();
        let mut next = 1;
        loop {
            let mut last = None;
            backend.scan_rows(next, 1024, &mut |row| {
                last = Some(std::hint::black_box(row).seq);
            })?;
            let Some(last) = last else { break };
            next = last + 1;
        }
        read.push(started.elapsed());
        let started = Instant::now();
        let report = bundle::verify_store(&mut backend, &key)?;
        ours.push(started.elapsed());
        anyhow::ensure!(
            report.is_ok(),
            "verification failed in the bench: {:?}",
            report.problem
        );
        let started = Instant::now();
        let report = bundle::verify_store_single_thread(&mut backend, &key)?;
        single.push(started.elapsed());
        anyhow::ensure!(
            report.is_ok(),
            "verification failed in the bench: {:?}",
            report.problem
        );
        let started = Instant::now();
        std::hint::black_box(Sha256::digest(std::hint::black_box(&entries)));
        base.push(started.elapsed());
    }
    let mb = total_bytes as f64 / 1e6;
    let base = mb / median(&mut base).as_secs_f64();
    let mut read_only = BenchResult::against(
        "verify_read_rows_sqlite",
        "MB/s",
        mb / median(&mut read).as_secs_f64(),
        "single-core SHA-256 over the same stored entry bytes, in memory, one pass (reading the rows alone, no checks or hashing: the ceiling of verify_full_sqlite)",
        base,
        true,
        0.7,
    );
    read_only.goal = None;
    Ok(vec![
        read_only,
        BenchResult::against(
            "verify_full_sqlite",
            "MB/s",
            mb / median(&mut ours).as_secs_f64(),
            "single-core SHA-256 over the same stored entry bytes, in memory, one pass (verification reads on one thread and hashes on every core)",
            base,
            true,
            0.7,
        ),
        BenchResult::against(
            "verify_full_sqlite_single_thread",
            "MB/s",
            mb / median(&mut single).as_secs_f64(),
            "single-core SHA-256 over the same stored entry bytes, in memory, one pass (verification on one thread)",
            base,
            true,
            0.7,
        ),
    ])
}

fn proof_latency(dir: &std::path::Path, sizes: &Sizes) -> anyhow::Result<Vec<BenchResult>> {
    let url = format!("sqlite://{}", dir.join("proofs.db").display());
    let n = sizes.proof_records;
    let ledger = build_ledger(&url, n, 100_000)?;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift: a fixed, reproducible sequence of positions.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let samples = 2_000;
    let mut inclusion = Vec::with_capacity(samples);
    let mut consistency = Vec::with_capacity(samples);
    for _ in 0..samples {
        let seq = next() % n + 1;
        let started = Instant::now();
        std::hint::black_box(ledger.inclusion_proof(seq, Some(n))?);
        inclusion.push(started.elapsed());
        let first = next() % n + 1;
        let started = Instant::now();
        std::hint::black_box(ledger.consistency_proof(first, n)?);
        consistency.push(started.elapsed());
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(vec![
        BenchResult::absolute(
            &format!("inclusion_proof_{n}_records"),
            "µs",
            us(median(&mut inclusion)),
            false,
            Some(1000.0),
        ),
        BenchResult::absolute(
            &format!("consistency_proof_{n}_records"),
            "µs",
            us(median(&mut consistency)),
            false,
            Some(1000.0),
        ),
    ])
}
