//! SQLite backend: the embedded default. One file, WAL mode, `synchronous=FULL`.

use crate::LedgerError;
use crate::record::Hash;
use crate::store::{
    Backend, DeliveryAttempt, DeliveryState, Head, IdempotencyEntry, OutboxEntry, OutboxItem,
    RowRef, StoredCheckpoint, StoredRow, WriteTx,
};
use cellops_domain::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

/// How long a connection waits for another writer's lock before giving up, in ms.
const BUSY_TIMEOUT_MS: u64 = 30_000;

const MIGRATIONS: &str = r#"
-- The entry is the record (the canonical bytes its hash covers); stream, event_type and
-- site are index columns for queries, checked against the entry by verification.
CREATE TABLE IF NOT EXISTS ledger_records (
    seq INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    event_type TEXT NOT NULL,
    site TEXT NOT NULL,
    entry TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_records_stream ON ledger_records (stream, seq);
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_idempotency (
    key TEXT PRIMARY KEY,
    fingerprint BLOB NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Webhook delivery state (docs/notifications.md): operational, beside the ledger. Times
-- are µs since the Unix epoch.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    subscription TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_attempt_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    delivered_at INTEGER,
    PRIMARY KEY (subscription, seq)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
-- Architecture invariant: no ledger row is ever updated or deleted.
CREATE TRIGGER IF NOT EXISTS ledger_records_no_update BEFORE UPDATE ON ledger_records
BEGIN SELECT RAISE(ABORT, 'ledger records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_records_no_delete BEFORE DELETE ON ledger_records
BEGIN SELECT RAISE(ABORT, 'ledger records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;
"#;

/// A connection to a SQLite ledger file.
pub struct Sqlite {
    conn: Connection,
}

/// Splits `sqlite://PATH[?max_page_count=N]` into the path and the page quota.
fn parse_url(url: &str) -> Result<(String, Option<u64>), LedgerError> {
    let bad = |reason: &str| LedgerError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("sqlite://")
        .ok_or_else(|| bad("a SQLite URL starts with sqlite://"))?;
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(bad("give the database file path, e.g. sqlite://cellops.db"));
    }
    let mut max_page_count = None;
    if let Some(query) = query {
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("max_page_count", n)) => {
                    max_page_count = Some(
                        n.parse()
                            .map_err(|_| bad("max_page_count must be a whole number of pages"))?,
                    );
                }
                _ => return Err(bad("the only URL option is max_page_count=N")),
            }
        }
    }
    Ok((path.to_string(), max_page_count))
}

impl Backend for Sqlite {
    fn open(url: &str) -> Result<Sqlite, LedgerError> {
        Sqlite::open_with(url, true)
    }

    fn connect(url: &str) -> Result<Sqlite, LedgerError> {
        Sqlite::open_with(url, false)
    }

    fn write<T>(
        &mut self,
        f: impl FnOnce(&mut dyn WriteTx) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        // IMMEDIATE takes the write lock at BEGIN: the append lock across processes.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage("begin", e))?;
        let mut wtx = SqliteTx { tx: &tx };
        let value = f(&mut wtx)?;
        tx.commit().map_err(|e| storage("commit", e))?;
        Ok(value)
    }

    fn write_relaxed<T>(
        &mut self,
        f: impl FnOnce(&mut dyn WriteTx) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        // In WAL mode, NORMAL commits without flushing; the next FULL commit flushes the WAL
        // including these frames.
        self.conn
            .execute_batch("PRAGMA synchronous=NORMAL")
            .map_err(|e| storage("pragma", e))?;
        let result = self.write(f);
        self.conn
            .execute_batch("PRAGMA synchronous=FULL")
            .map_err(|e| storage("pragma", e))?;
        result
    }

    fn head(&mut self) -> Result<Option<Head>, LedgerError> {
        head(&self.conn)
    }

    fn rows(&mut self, from_seq: u64, limit: usize) -> Result<Vec<StoredRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM ledger_records WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            ))
            .map_err(|e| storage("records", e))?;
        let rows = stmt
            .query_map(params![to_i64(from_seq), limit as i64], row_from_sql)
            .map_err(|e| storage("records", e))?;
        rows.map(|r| r.map_err(|e| storage("records", e))).collect()
    }

    fn scan_rows(
        &mut self,
        from_seq: u64,
        limit: usize,
        visit: &mut dyn FnMut(RowRef<'_>),
    ) -> Result<usize, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM ledger_records WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            ))
            .map_err(|e| storage("records", e))?;
        let mut rows = stmt
            .query(params![to_i64(from_seq), limit as i64])
            .map_err(|e| storage("records", e))?;
        let mut visited = 0;
        while let Some(r) = rows.next().map_err(|e| storage("records", e))? {
            let bytes = |i: usize| -> rusqlite::Result<&[u8]> {
                r.get_ref(i)?.as_bytes().map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })
            };
            let hash = |i: usize| -> rusqlite::Result<&Hash> {
                bytes(i)?.try_into().map_err(|_| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Blob,
                        "a hash column holds 32 bytes".into(),
                    )
                })
            };
            let row = (|| {
                Ok::<_, rusqlite::Error>(RowRef {
                    seq: r.get::<_, i64>(0)? as u64,
                    stream: bytes(1)?,
                    event_type: bytes(2)?,
                    site: bytes(3)?,
                    entry: bytes(4)?,
                    prev_hash: hash(5)?,
                    hash: hash(6)?,
                })
            })()
            .map_err(|e| storage("records", e))?;
            visit(row);
            visited += 1;
        }
        Ok(visited)
    }

    fn stream_rows(
        &mut self,
        stream: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM ledger_records WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            ))
            .map_err(|e| storage("stream records", e))?;
        let rows = stmt
            .query_map(
                params![stream, to_i64(after_seq), limit as i64],
                row_from_sql,
            )
            .map_err(|e| storage("stream records", e))?;
        rows.map(|r| r.map_err(|e| storage("stream records", e)))
            .collect()
    }

    fn hashes_after(&mut self, after_seq: u64, limit: usize) -> Result<Vec<Hash>, LedgerError> {
        hashes_after(&self.conn, after_seq, limit)
    }

    fn checkpoints(
        &mut self,
        after_size: u64,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT size, root, note, created_at FROM ledger_checkpoints WHERE size > ?1 ORDER BY size LIMIT ?2",
            )
            .map_err(|e| storage("checkpoints", e))?;
        let rows = stmt
            .query_map(
                params![to_i64(after_size), limit as i64],
                checkpoint_from_row,
            )
            .map_err(|e| storage("checkpoints", e))?;
        rows.map(|r| r.map_err(|e| storage("checkpoints", e))?)
            .collect()
    }

    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        latest_checkpoint(&self.conn)
    }

    fn meta_init(&mut self, name: &str, value: &str) -> Result<String, LedgerError> {
        self.conn
            .execute(
                "INSERT INTO ledger_meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![name, value],
            )
            .map_err(|e| storage("meta", e))?;
        self.conn
            .query_row(
                "SELECT value FROM ledger_meta WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .map_err(|e| storage("meta", e))
    }

    fn meta_get(&mut self, name: &str) -> Result<Option<String>, LedgerError> {
        self.conn
            .query_row(
                "SELECT value FROM ledger_meta WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| storage("meta", e))
    }

    fn secret_put(&mut self, name: &str, value: &str) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map_err(|e| storage("secret", e))?;
        Ok(())
    }

    fn secret_get(&mut self, name: &str) -> Result<Option<String>, LedgerError> {
        self.conn
            .query_row(
                "SELECT value FROM secrets WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| storage("secret", e))
    }

    fn outbox_enqueue(&mut self, items: &[OutboxItem]) -> Result<usize, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage("outbox begin", e))?;
        let mut added = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO webhook_deliveries (subscription, seq, kind, body, created_at, state, attempts, next_attempt_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?5) ON CONFLICT (subscription, seq) DO NOTHING",
                )
                .map_err(|e| storage("outbox enqueue", e))?;
            for item in items {
                added += stmt
                    .execute(params![
                        item.subscription,
                        to_i64(item.seq),
                        item.kind,
                        item.body,
                        item.created_at.unix_us()
                    ])
                    .map_err(|e| storage("outbox enqueue", e))?;
            }
        }
        tx.commit().map_err(|e| storage("outbox commit", e))?;
        Ok(added)
    }

    fn outbox_claim(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage("outbox begin", e))?;
        let mut due = {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {OUTBOX_COLUMNS} FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?1 \
                     ORDER BY next_attempt_at, seq LIMIT ?2"
                ))
                .map_err(|e| storage("outbox due", e))?;
            let rows = stmt
                .query_map(params![now.unix_us(), limit as i64], outbox_from_sql)
                .map_err(|e| storage("outbox due", e))?;
            rows.map(|r| r.map_err(|e| storage("outbox due", e))?)
                .collect::<Result<Vec<_>, _>>()?
        };
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE webhook_deliveries SET next_attempt_at = ?1 WHERE subscription = ?2 AND seq = ?3",
                )
                .map_err(|e| storage("outbox claim", e))?;
            for e in &due {
                stmt.execute(params![
                    lease_until.unix_us(),
                    e.item.subscription,
                    to_i64(e.item.seq)
                ])
                .map_err(|e| storage("outbox claim", e))?;
            }
        }
        tx.commit().map_err(|e| storage("outbox commit", e))?;
        due.sort_by(|a, b| {
            (a.item.seq, &a.item.subscription).cmp(&(b.item.seq, &b.item.subscription))
        });
        Ok(due)
    }

    fn outbox_record(
        &mut self,
        subscription: &str,
        seq: u64,
        attempt: &DeliveryAttempt,
    ) -> Result<bool, LedgerError> {
        let (state, next, delivered) = attempt.columns();
        let changed = self
            .conn
            .execute(
                "UPDATE webhook_deliveries SET state = ?1, attempts = attempts + 1, next_attempt_at = ?2, \
                 last_attempt_at = ?3, last_status = ?4, last_error = ?5, delivered_at = ?6 \
                 WHERE subscription = ?7 AND seq = ?8 AND state = 'pending'",
                params![
                    state.as_str(),
                    next,
                    attempt.at.unix_us(),
                    attempt.status.map(i64::from),
                    attempt.error,
                    delivered,
                    subscription,
                    to_i64(seq)
                ],
            )
            .map_err(|e| storage("outbox record", e))?;
        Ok(changed == 1)
    }

    fn outbox_entries(
        &mut self,
        subscription: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM webhook_deliveries WHERE subscription = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            ))
            .map_err(|e| storage("outbox entries", e))?;
        let rows = stmt
            .query_map(
                params![subscription, to_i64(after_seq), limit as i64],
                outbox_from_sql,
            )
            .map_err(|e| storage("outbox entries", e))?;
        rows.map(|r| r.map_err(|e| storage("outbox entries", e))?)
            .collect()
    }

    fn outbox_high_seq(&mut self) -> Result<u64, LedgerError> {
        let high: Option<i64> = self
            .conn
            .query_row("SELECT MAX(seq) FROM webhook_deliveries", [], |r| r.get(0))
            .map_err(|e| storage("outbox high seq", e))?;
        Ok(high.unwrap_or(0) as u64)
    }
}

impl Sqlite {
    fn open_with(url: &str, full: bool) -> Result<Sqlite, LedgerError> {
        let (path, max_page_count) = parse_url(url)?;
        if let Some(parent) = std::path::Path::new(&path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| LedgerError::Storage {
                reason: format!("cannot create directory {}: {e}", parent.display()),
            })?;
        }
        let conn = Connection::open(&path).map_err(|e| storage(&format!("open {path}"), e))?;
        conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(|e| storage("busy_timeout", e))?;
        // WAL lets readers run beside the one writer. synchronous=FULL: a commit is on disk
        // before it is acknowledged (a GMP record must survive power loss); the group commit
        // in the ledger's writer amortises the fsync.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )
        .map_err(|e| storage("pragmas", e))?;
        if full {
            let ok: String = conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| corrupt(&path, e))?;
            if ok != "ok" {
                let problems: Vec<&str> = ok.lines().collect();
                return Err(LedgerError::Corrupt {
                    reason: format!(
                        "{path}: SQLite integrity check found {} problem(s), first: {}; restore the last backup",
                        problems.len(),
                        problems
                            .iter()
                            .take(2)
                            .copied()
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                });
            }
            conn.execute_batch(MIGRATIONS)
                .map_err(|e| corrupt(&path, e))?;
        }
        if let Some(pages) = max_page_count {
            conn.query_row(&format!("PRAGMA max_page_count={pages}"), [], |_| Ok(()))
                .map_err(|e| storage("max_page_count", e))?;
        }
        Ok(Sqlite { conn })
    }

    /// The raw connection, for tests that simulate tampering and for projections that keep
    /// their own tables in the same file.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

struct SqliteTx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

impl WriteTx for SqliteTx<'_> {
    fn head(&mut self) -> Result<Option<Head>, LedgerError> {
        head(self.tx)
    }

    fn hashes_after(&mut self, after_seq: u64, limit: usize) -> Result<Vec<Hash>, LedgerError> {
        hashes_after(self.tx, after_seq, limit)
    }

    fn insert_rows(&mut self, rows: &[StoredRow]) -> Result<(), LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO ledger_records (seq, stream, event_type, site, entry, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(|e| storage("insert", e))?;
        for r in rows {
            stmt.execute(params![
                to_i64(r.seq),
                r.stream,
                r.event_type,
                r.site,
                r.entry,
                &r.prev_hash[..],
                &r.hash[..],
            ])
            .map_err(|e| storage("insert record", e))?;
        }
        Ok(())
    }

    fn insert_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), LedgerError> {
        self.tx
            .execute(
                "INSERT INTO ledger_checkpoints (size, root, note, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (size) DO NOTHING",
                params![to_i64(cp.size), &cp.root[..], cp.note, cp.created_at.to_string()],
            )
            .map_err(|e| storage("insert checkpoint", e))?;
        Ok(())
    }

    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        latest_checkpoint(self.tx)
    }

    fn idempotency_get(&mut self, key: &str) -> Result<Option<IdempotencyEntry>, LedgerError> {
        self.tx
            .query_row(
                "SELECT fingerprint, first_seq, last_seq FROM ledger_idempotency WHERE key = ?1",
                params![key],
                |r| {
                    Ok(IdempotencyEntry {
                        fingerprint: blob_hash(r, 0)?,
                        first_seq: r.get::<_, i64>(1)? as u64,
                        last_seq: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| storage("idempotency", e))
    }

    fn idempotency_put(&mut self, key: &str, entry: &IdempotencyEntry) -> Result<(), LedgerError> {
        self.tx
            .execute(
                "INSERT INTO ledger_idempotency (key, fingerprint, first_seq, last_seq) VALUES (?1, ?2, ?3, ?4)",
                params![
                    key,
                    &entry.fingerprint[..],
                    to_i64(entry.first_seq),
                    to_i64(entry.last_seq)
                ],
            )
            .map_err(|e| storage("idempotency", e))?;
        Ok(())
    }
}

const ROW_COLUMNS: &str = "seq, stream, event_type, site, entry, prev_hash, hash";

fn row_from_sql(r: &Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok(StoredRow {
        seq: r.get::<_, i64>(0)? as u64,
        stream: r.get(1)?,
        event_type: r.get(2)?,
        site: r.get(3)?,
        entry: r.get(4)?,
        prev_hash: blob_hash(r, 5)?,
        hash: blob_hash(r, 6)?,
    })
}

fn checkpoint_from_row(r: &Row<'_>) -> rusqlite::Result<Result<StoredCheckpoint, LedgerError>> {
    let size = r.get::<_, i64>(0)? as u64;
    let created_at: String = r.get(3)?;
    let created_at = match Timestamp::parse(&created_at) {
        Ok(t) => t,
        Err(e) => {
            return Ok(Err(LedgerError::Corrupt {
                reason: format!("checkpoint {size}: created_at: {e}"),
            }));
        }
    };
    Ok(Ok(StoredCheckpoint {
        size,
        root: blob_hash(r, 1)?,
        note: r.get(2)?,
        created_at,
    }))
}

const OUTBOX_COLUMNS: &str = "subscription, seq, kind, body, created_at, state, attempts, next_attempt_at, \
     last_attempt_at, last_status, last_error, delivered_at";

fn outbox_from_sql(r: &Row<'_>) -> rusqlite::Result<Result<OutboxEntry, LedgerError>> {
    let state: String = r.get(5)?;
    let created_at: i64 = r.get(4)?;
    let next: i64 = r.get(7)?;
    let last_attempt: Option<i64> = r.get(8)?;
    let status: Option<i64> = r.get(9)?;
    let delivered: Option<i64> = r.get(11)?;
    let item = OutboxItem {
        subscription: r.get(0)?,
        seq: r.get::<_, i64>(1)? as u64,
        kind: r.get(2)?,
        body: r.get(3)?,
        created_at: Timestamp::EPOCH,
    };
    let attempts = r.get::<_, i64>(6)? as u32;
    let last_error: Option<String> = r.get(10)?;
    Ok((|| {
        Ok(OutboxEntry {
            item: OutboxItem {
                created_at: crate::store::outbox_time("created_at", created_at)?,
                ..item
            },
            state: DeliveryState::parse(&state)?,
            attempts,
            next_attempt_at: crate::store::outbox_time("next_attempt_at", next)?,
            last_attempt_at: last_attempt
                .map(|t| crate::store::outbox_time("last_attempt_at", t))
                .transpose()?,
            last_status: status.map(|s| s.clamp(0, u16::MAX as i64) as u16),
            last_error,
            delivered_at: delivered
                .map(|t| crate::store::outbox_time("delivered_at", t))
                .transpose()?,
        })
    })())
}

fn blob_hash(r: &Row<'_>, index: usize) -> rusqlite::Result<Hash> {
    let bytes: Vec<u8> = r.get(index)?;
    bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Blob,
            "a hash column holds 32 bytes".into(),
        )
    })
}

fn head(conn: &Connection) -> Result<Option<Head>, LedgerError> {
    conn.query_row(
        "SELECT seq, hash FROM ledger_records ORDER BY seq DESC LIMIT 1",
        [],
        |r| {
            Ok(Head {
                seq: r.get::<_, i64>(0)? as u64,
                hash: blob_hash(r, 1)?,
            })
        },
    )
    .optional()
    .map_err(|e| storage("head", e))
}

fn hashes_after(conn: &Connection, after_seq: u64, limit: usize) -> Result<Vec<Hash>, LedgerError> {
    let mut stmt = conn
        .prepare_cached("SELECT hash FROM ledger_records WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .map_err(|e| storage("hashes", e))?;
    let rows = stmt
        .query_map(params![to_i64(after_seq), limit as i64], |r| {
            blob_hash(r, 0)
        })
        .map_err(|e| storage("hashes", e))?;
    rows.map(|r| r.map_err(|e| storage("hashes", e))).collect()
}

fn latest_checkpoint(conn: &Connection) -> Result<Option<StoredCheckpoint>, LedgerError> {
    conn.query_row(
        "SELECT size, root, note, created_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1",
        [],
        checkpoint_from_row,
    )
    .optional()
    .map_err(|e| storage("latest checkpoint", e))?
    .transpose()
}

fn to_i64(v: u64) -> i64 {
    // Cannot fail in practice: seq values stay far below 2^63.
    i64::try_from(v).expect("seq below 2^63")
}

fn storage(what: &str, e: rusqlite::Error) -> LedgerError {
    if let rusqlite::Error::SqliteFailure(err, _) = &e {
        if err.code == rusqlite::ErrorCode::DiskFull {
            return LedgerError::StorageFull {
                reason: format!("{what}: {e}"),
            };
        }
        if matches!(
            err.code,
            rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
        ) {
            return LedgerError::Corrupt {
                reason: format!("{what}: {e}"),
            };
        }
    }
    LedgerError::Storage {
        reason: format!("sqlite {what}: {e}"),
    }
}

fn corrupt(path: &str, e: rusqlite::Error) -> LedgerError {
    match storage(path, e) {
        LedgerError::Storage { reason } => LedgerError::Corrupt { reason },
        other => other,
    }
}
