//! Telemetry store: device sensor samples kept beside the ledger, in compact chunks.
//!
//! Why not ledger records: a culture device reports ~20 signals at 1 Hz, 1.7 million samples
//! a day; one record each would dwarf every other record and make verification slow. The
//! ledger instead holds a summary record per batch phase with the hash of that phase's
//! chunks (see the batch module), so the telemetry stays tamper-evident.
//!
//! A chunk is an opaque byte string (the encoding is `cellops_device::telemetry`) covering
//! the consecutive sample numbers `first_seq..=last_seq` of one device. Storing is
//! idempotent: the same chunk again (a resend after a reconnect) is a no-op; a different
//! chunk overlapping stored numbers is refused, so nothing is stored twice.
//!
//! The store lives in the ledger's database (tables `telemetry_chunks`), reached through
//! the same connections: [`with_store`] finds the SQLite or PostgreSQL connection behind a
//! generic `Backend`.

use std::any::Any;

use crate::error::LedgerError;
use crate::postgres::Postgres;
use crate::sqlite::Sqlite;
use crate::store::Backend;

/// Most chunks one query returns.
pub const CHUNKS_READ_MAX: usize = 10_000;

/// One stored run of samples of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryChunk {
    /// Device id.
    pub device: String,
    /// Batch the samples belong to (empty when none).
    pub batch: String,
    /// First sample number.
    pub first_seq: u64,
    /// Last sample number (inclusive).
    pub last_seq: u64,
    /// Device time of the first sample, ms since the Unix epoch.
    pub first_unix_ms: i64,
    /// Device time of the last sample, ms since the Unix epoch.
    pub last_unix_ms: i64,
    /// Encoded samples.
    pub data: Vec<u8>,
    /// SHA-256 of `data`.
    pub sha256: [u8; 32],
}

/// What `put_chunk` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored.
    Stored,
    /// The identical chunk was already stored (a resend).
    Duplicate,
}

/// Totals of stored telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TelemetryTotals {
    /// Chunks.
    pub chunks: u64,
    /// Samples.
    pub samples: u64,
    /// Bytes of encoded data.
    pub bytes: u64,
}

/// Storage of telemetry chunks (SQLite and PostgreSQL).
pub trait TelemetryStore {
    /// Stores `chunk` durably; idempotent for the identical chunk, refuses overlaps.
    fn put_chunk(&mut self, chunk: &TelemetryChunk) -> Result<PutOutcome, LedgerError>;
    /// Highest stored sample number of `device` (0: none).
    fn last_seq(&mut self, device: &str) -> Result<u64, LedgerError>;
    /// Chunks of `device` whose samples lie in `from_seq..=to_seq`, ascending, at most
    /// `CHUNKS_READ_MAX`.
    fn chunks(
        &mut self,
        device: &str,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<TelemetryChunk>, LedgerError>;
    /// Totals over every device.
    fn totals(&mut self) -> Result<TelemetryTotals, LedgerError>;
}

/// Runs `f` with the telemetry store of `backend`'s database.
pub fn with_store<B: Backend, T>(
    backend: &mut B,
    f: impl FnOnce(&mut dyn TelemetryStore) -> Result<T, LedgerError>,
) -> Result<T, LedgerError> {
    let any: &mut dyn Any = backend;
    if let Some(db) = any.downcast_mut::<Sqlite>() {
        return f(db);
    }
    if let Some(db) = any.downcast_mut::<Postgres>() {
        return f(db);
    }
    Err(LedgerError::Storage {
        reason: "this database backend has no telemetry store".into(),
    })
}

fn to_i64(field: &str, v: u64) -> Result<i64, LedgerError> {
    i64::try_from(v).map_err(|_| LedgerError::InvalidRecord {
        field: field.into(),
        rule: "must be below 2^63".into(),
    })
}

fn check_chunk(chunk: &TelemetryChunk) -> Result<(), LedgerError> {
    let bad = |field: &str, rule: &str| {
        Err(LedgerError::InvalidRecord {
            field: field.into(),
            rule: rule.into(),
        })
    };
    if chunk.device.is_empty() || chunk.device.len() > 128 {
        return bad("device", "1 to 128 bytes");
    }
    if chunk.first_seq == 0 || chunk.last_seq < chunk.first_seq {
        return bad("first_seq", "1 ≤ first_seq ≤ last_seq");
    }
    if chunk.data.is_empty() {
        return bad("data", "a chunk holds at least one sample");
    }
    use sha2::Digest;
    if sha2::Sha256::digest(&chunk.data).as_slice() != chunk.sha256 {
        return bad("sha256", "must be the SHA-256 of data");
    }
    Ok(())
}

fn overlap(chunk: &TelemetryChunk, existing: &TelemetryChunk) -> LedgerError {
    LedgerError::InvalidRecord {
        field: "first_seq".into(),
        rule: format!(
            "samples {}..={} of device {} overlap the stored chunk {}..={} with different content: resend only samples after the last stored one",
            chunk.first_seq, chunk.last_seq, chunk.device, existing.first_seq, existing.last_seq
        ),
    }
}

fn sqlite_err(what: &str, e: rusqlite::Error) -> LedgerError {
    LedgerError::Storage {
        reason: format!("sqlite telemetry {what}: {e}"),
    }
}

fn pg_err(what: &str, e: postgres::Error) -> LedgerError {
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    };
    LedgerError::Storage {
        reason: format!("postgres telemetry {what}: {detail}"),
    }
}

const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS telemetry_chunks (
    device TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    batch TEXT NOT NULL,
    first_unix_ms INTEGER NOT NULL,
    last_unix_ms INTEGER NOT NULL,
    data BLOB NOT NULL,
    sha256 BLOB NOT NULL,
    PRIMARY KEY (device, first_seq)
) WITHOUT ROWID;
";

const PG_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS telemetry_chunks (
    device TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    batch TEXT NOT NULL,
    first_unix_ms BIGINT NOT NULL,
    last_unix_ms BIGINT NOT NULL,
    data BYTEA NOT NULL,
    sha256 BYTEA NOT NULL,
    PRIMARY KEY (device, first_seq)
);
";

fn sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TelemetryChunk> {
    let sha: Vec<u8> = row.get(7)?;
    Ok(TelemetryChunk {
        device: row.get(0)?,
        first_seq: row.get::<_, i64>(1)? as u64,
        last_seq: row.get::<_, i64>(2)? as u64,
        batch: row.get(3)?,
        first_unix_ms: row.get(4)?,
        last_unix_ms: row.get(5)?,
        data: row.get(6)?,
        sha256: sha.try_into().unwrap_or([0; 32]),
    })
}

const COLUMNS: &str =
    "device, first_seq, last_seq, batch, first_unix_ms, last_unix_ms, data, sha256";

impl Sqlite {
    fn telemetry_schema(&mut self) -> Result<(), LedgerError> {
        self.connection()
            .execute_batch(SQLITE_SCHEMA)
            .map_err(|e| sqlite_err("schema", e))
    }
}

impl TelemetryStore for Sqlite {
    fn put_chunk(&mut self, chunk: &TelemetryChunk) -> Result<PutOutcome, LedgerError> {
        check_chunk(chunk)?;
        self.telemetry_schema()?;
        let first = to_i64("first_seq", chunk.first_seq)?;
        let last = to_i64("last_seq", chunk.last_seq)?;
        let tx = self
            .connection()
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sqlite_err("begin", e))?;
        let existing: Option<TelemetryChunk> = {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM telemetry_chunks WHERE device = ?1 AND first_seq <= ?3 AND last_seq >= ?2 ORDER BY first_seq LIMIT 1"
                ))
                .map_err(|e| sqlite_err("overlap query", e))?;
            let mut rows = stmt
                .query_map(rusqlite::params![chunk.device, first, last], sqlite_row)
                .map_err(|e| sqlite_err("overlap query", e))?;
            rows.next()
                .transpose()
                .map_err(|e| sqlite_err("overlap query", e))?
        };
        if let Some(existing) = existing {
            return if existing == *chunk {
                Ok(PutOutcome::Duplicate)
            } else {
                Err(overlap(chunk, &existing))
            };
        }
        tx.execute(
            &format!(
                "INSERT INTO telemetry_chunks ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            rusqlite::params![
                chunk.device,
                first,
                last,
                chunk.batch,
                chunk.first_unix_ms,
                chunk.last_unix_ms,
                chunk.data,
                chunk.sha256.to_vec()
            ],
        )
        .map_err(|e| sqlite_err("insert", e))?;
        tx.commit().map_err(|e| sqlite_err("commit", e))?;
        Ok(PutOutcome::Stored)
    }

    fn last_seq(&mut self, device: &str) -> Result<u64, LedgerError> {
        self.telemetry_schema()?;
        let v: Option<i64> = self
            .connection()
            .query_row(
                "SELECT MAX(last_seq) FROM telemetry_chunks WHERE device = ?1",
                [device],
                |r| r.get(0),
            )
            .map_err(|e| sqlite_err("last_seq", e))?;
        Ok(v.unwrap_or(0) as u64)
    }

    fn chunks(
        &mut self,
        device: &str,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<TelemetryChunk>, LedgerError> {
        self.telemetry_schema()?;
        let from = to_i64("from_seq", from_seq)?;
        let to = to_i64("to_seq", to_seq)?;
        let conn = self.connection();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM telemetry_chunks WHERE device = ?1 AND last_seq >= ?2 AND first_seq <= ?3 ORDER BY first_seq LIMIT {CHUNKS_READ_MAX}"
            ))
            .map_err(|e| sqlite_err("chunks", e))?;
        let rows = stmt
            .query_map(rusqlite::params![device, from, to], sqlite_row)
            .map_err(|e| sqlite_err("chunks", e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| sqlite_err("chunks", e))
    }

    fn totals(&mut self) -> Result<TelemetryTotals, LedgerError> {
        self.telemetry_schema()?;
        self.connection()
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(last_seq - first_seq + 1), 0), COALESCE(SUM(LENGTH(data)), 0) FROM telemetry_chunks",
                [],
                |r| {
                    Ok(TelemetryTotals {
                        chunks: r.get::<_, i64>(0)? as u64,
                        samples: r.get::<_, i64>(1)? as u64,
                        bytes: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .map_err(|e| sqlite_err("totals", e))
    }
}

fn pg_row(row: &postgres::Row) -> TelemetryChunk {
    let sha: Vec<u8> = row.get(7);
    TelemetryChunk {
        device: row.get(0),
        first_seq: row.get::<_, i64>(1) as u64,
        last_seq: row.get::<_, i64>(2) as u64,
        batch: row.get(3),
        first_unix_ms: row.get(4),
        last_unix_ms: row.get(5),
        data: row.get(6),
        sha256: sha.try_into().unwrap_or([0; 32]),
    }
}

impl Postgres {
    fn telemetry_schema(&mut self) -> Result<(), LedgerError> {
        // DDL takes locks: create the table only when it is missing.
        let exists: bool = self
            .client()
            .query_one("SELECT to_regclass('telemetry_chunks') IS NOT NULL", &[])
            .map_err(|e| pg_err("schema check", e))?
            .get(0);
        if !exists {
            let mut tx = self
                .client()
                .transaction()
                .map_err(|e| pg_err("begin", e))?;
            // One creator at a time across processes.
            tx.execute("SELECT pg_advisory_xact_lock(7007)", &[])
                .map_err(|e| pg_err("schema lock", e))?;
            tx.batch_execute(PG_SCHEMA)
                .map_err(|e| pg_err("schema", e))?;
            tx.commit().map_err(|e| pg_err("schema commit", e))?;
        }
        Ok(())
    }
}

impl TelemetryStore for Postgres {
    fn put_chunk(&mut self, chunk: &TelemetryChunk) -> Result<PutOutcome, LedgerError> {
        check_chunk(chunk)?;
        self.telemetry_schema()?;
        let first = to_i64("first_seq", chunk.first_seq)?;
        let last = to_i64("last_seq", chunk.last_seq)?;
        let mut tx = self
            .client()
            .transaction()
            .map_err(|e| pg_err("begin", e))?;
        // Serialise writers of one device so the overlap check and insert are atomic.
        tx.execute(
            "SELECT pg_advisory_xact_lock(7008, hashtext($1))",
            &[&chunk.device],
        )
        .map_err(|e| pg_err("device lock", e))?;
        let existing = tx
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM telemetry_chunks WHERE device = $1 AND first_seq <= $3 AND last_seq >= $2 ORDER BY first_seq LIMIT 1"
                ),
                &[&chunk.device, &first, &last],
            )
            .map_err(|e| pg_err("overlap query", e))?
            .map(|r| pg_row(&r));
        if let Some(existing) = existing {
            return if existing == *chunk {
                Ok(PutOutcome::Duplicate)
            } else {
                Err(overlap(chunk, &existing))
            };
        }
        tx.execute(
            &format!(
                "INSERT INTO telemetry_chunks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            &[
                &chunk.device,
                &first,
                &last,
                &chunk.batch,
                &chunk.first_unix_ms,
                &chunk.last_unix_ms,
                &chunk.data,
                &chunk.sha256.to_vec(),
            ],
        )
        .map_err(|e| pg_err("insert", e))?;
        tx.commit().map_err(|e| pg_err("commit", e))?;
        Ok(PutOutcome::Stored)
    }

    fn last_seq(&mut self, device: &str) -> Result<u64, LedgerError> {
        self.telemetry_schema()?;
        let v: Option<i64> = self
            .client()
            .query_one(
                "SELECT MAX(last_seq) FROM telemetry_chunks WHERE device = $1",
                &[&device],
            )
            .map_err(|e| pg_err("last_seq", e))?
            .get(0);
        Ok(v.unwrap_or(0) as u64)
    }

    fn chunks(
        &mut self,
        device: &str,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<TelemetryChunk>, LedgerError> {
        self.telemetry_schema()?;
        let from = to_i64("from_seq", from_seq)?;
        let to = to_i64("to_seq", to_seq)?;
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM telemetry_chunks WHERE device = $1 AND last_seq >= $2 AND first_seq <= $3 ORDER BY first_seq LIMIT {CHUNKS_READ_MAX}"
                ),
                &[&device, &from, &to],
            )
            .map_err(|e| pg_err("chunks", e))?;
        Ok(rows.iter().map(pg_row).collect())
    }

    fn totals(&mut self) -> Result<TelemetryTotals, LedgerError> {
        self.telemetry_schema()?;
        let row = self
            .client()
            .query_one(
                "SELECT COUNT(*)::BIGINT, COALESCE(SUM(last_seq - first_seq + 1), 0)::BIGINT, COALESCE(SUM(LENGTH(data)), 0)::BIGINT FROM telemetry_chunks",
                &[],
            )
            .map_err(|e| pg_err("totals", e))?;
        Ok(TelemetryTotals {
            chunks: row.get::<_, i64>(0) as u64,
            samples: row.get::<_, i64>(1) as u64,
            bytes: row.get::<_, i64>(2) as u64,
        })
    }
}
