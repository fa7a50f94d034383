//! PostgreSQL backend: for a network of sites sharing one system, with several `cellops
//! serve` processes appending concurrently. A transaction-scoped advisory lock is the append
//! lock, so the log stays one gap-free chain across processes.

use crate::LedgerError;
use crate::record::Hash;
use crate::store::{
    Backend, DeliveryAttempt, DeliveryState, Head, IdempotencyEntry, OutboxEntry, OutboxItem,
    RowRef, StoredCheckpoint, StoredRow, WriteTx, outbox_time,
};
use cellops_domain::Timestamp;
use postgres::{Client, NoTls, Row, Transaction};

/// Advisory lock key of the ledger's append lock ("cellops" in ASCII).
const APPEND_LOCK_KEY: i64 = 0x63_656c_6c6f_7073;

const MIGRATIONS: &str = r#"
SELECT pg_advisory_lock(7199);
-- The entry is the record (the canonical bytes its hash covers); stream, event_type and
-- site are index columns for queries, checked against the entry by verification.
CREATE TABLE IF NOT EXISTS ledger_records (
    seq BIGINT PRIMARY KEY,
    stream TEXT NOT NULL,
    event_type TEXT NOT NULL,
    site TEXT NOT NULL,
    entry TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_records_stream ON ledger_records (stream, seq);
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    size BIGINT PRIMARY KEY,
    root BYTEA NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_idempotency (
    key TEXT PRIMARY KEY,
    fingerprint BYTEA NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL
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
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_attempt_at BIGINT,
    last_status INTEGER,
    last_error TEXT,
    delivered_at BIGINT,
    PRIMARY KEY (subscription, seq)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
-- Architecture invariant: no ledger row is ever updated or deleted.
CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;
DROP TRIGGER IF EXISTS ledger_records_append_only ON ledger_records;
CREATE TRIGGER ledger_records_append_only BEFORE UPDATE OR DELETE ON ledger_records
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
DROP TRIGGER IF EXISTS ledger_checkpoints_append_only ON ledger_checkpoints;
CREATE TRIGGER ledger_checkpoints_append_only BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
INSERT INTO ledger_meta (name, value) VALUES ('schema_version', '2')
    ON CONFLICT (name) DO UPDATE SET value = excluded.value;
SELECT pg_advisory_unlock(7199);
"#;

/// Bumped with every change to `MIGRATIONS`.
const SCHEMA_VERSION: &str = "2";

/// A connection to a PostgreSQL ledger database.
pub struct Postgres {
    client: OwnThreadClose,
}

/// The client, closed on a thread of its own when dropped: the synchronous `postgres` client
/// blocks on a runtime to close, which panics when the last owner drops it inside an async
/// runtime (a server task, an async test).
struct OwnThreadClose(Option<Client>);

impl std::ops::Deref for OwnThreadClose {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.0.as_ref().expect("client present until drop")
    }
}

impl std::ops::DerefMut for OwnThreadClose {
    fn deref_mut(&mut self) -> &mut Client {
        self.0.as_mut().expect("client present until drop")
    }
}

impl Drop for OwnThreadClose {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

impl Postgres {
    /// The raw client, for tests that simulate tampering.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Backend for Postgres {
    fn open(url: &str) -> Result<Postgres, LedgerError> {
        let mut db = Postgres::connect(url)?;
        // DDL takes table locks: run it only when the schema is missing or older, so that a
        // process starting beside busy writers does not deadlock with them.
        let has_meta: bool = db
            .client
            .query_one("SELECT to_regclass('ledger_meta') IS NOT NULL", &[])
            .map_err(|e| storage("schema version", e))?
            .get(0);
        let current: Option<String> = if has_meta {
            db.client
                .query_opt(
                    "SELECT value FROM ledger_meta WHERE name = 'schema_version'",
                    &[],
                )
                .map_err(|e| storage("schema version", e))?
                .map(|r| r.get(0))
        } else {
            None
        };
        if current.as_deref() != Some(SCHEMA_VERSION) {
            db.client
                .batch_execute(MIGRATIONS)
                .map_err(|e| storage("migrations", e))?;
        }
        Ok(db)
    }

    fn connect(url: &str) -> Result<Postgres, LedgerError> {
        let mut client = Client::connect(url, NoTls).map_err(|e| LedgerError::Storage {
            reason: format!("cannot connect to {}: {e}", crate::store::redact_url(url)),
        })?;
        client
            .batch_execute("SET client_min_messages = warning")
            .map_err(|e| storage("settings", e))?;
        Ok(Postgres {
            client: OwnThreadClose(Some(client)),
        })
    }

    fn write<T>(
        &mut self,
        f: impl FnOnce(&mut dyn WriteTx) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut tx = self.client.transaction().map_err(|e| storage("begin", e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK_KEY])
            .map_err(|e| storage("append lock", e))?;
        let value = {
            let mut wtx = PgTx { tx: &mut tx };
            f(&mut wtx)?
        };
        tx.commit().map_err(|e| storage("commit", e))?;
        Ok(value)
    }

    fn write_relaxed<T>(
        &mut self,
        f: impl FnOnce(&mut dyn WriteTx) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut tx = self.client.transaction().map_err(|e| storage("begin", e))?;
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .map_err(|e| storage("synchronous_commit", e))?;
        let value = {
            let mut wtx = PgTx { tx: &mut tx };
            f(&mut wtx)?
        };
        tx.commit().map_err(|e| storage("commit", e))?;
        Ok(value)
    }

    fn head(&mut self) -> Result<Option<Head>, LedgerError> {
        head(&mut *self.client)
    }

    fn rows(&mut self, from_seq: u64, limit: usize) -> Result<Vec<StoredRow>, LedgerError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {ROW_COLUMNS} FROM ledger_records WHERE seq >= $1 ORDER BY seq LIMIT $2"
                ),
                &[&to_i64(from_seq), &(limit as i64)],
            )
            .map_err(|e| storage("records", e))?;
        rows.iter().map(row_from_sql).collect()
    }

    fn scan_rows(
        &mut self,
        from_seq: u64,
        limit: usize,
        visit: &mut dyn FnMut(RowRef<'_>),
    ) -> Result<usize, LedgerError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {ROW_COLUMNS} FROM ledger_records WHERE seq >= $1 ORDER BY seq LIMIT $2"
                ),
                &[&to_i64(from_seq), &(limit as i64)],
            )
            .map_err(|e| storage("records", e))?;
        for r in &rows {
            let hash = |i: usize, what: &str| -> Result<&Hash, LedgerError> {
                r.get::<_, &[u8]>(i)
                    .try_into()
                    .map_err(|_| LedgerError::Corrupt {
                        reason: format!("a stored {what} is not 32 bytes"),
                    })
            };
            visit(RowRef {
                seq: r.get::<_, i64>(0) as u64,
                stream: r.get::<_, &str>(1).as_bytes(),
                event_type: r.get::<_, &str>(2).as_bytes(),
                site: r.get::<_, &str>(3).as_bytes(),
                entry: r.get::<_, &str>(4).as_bytes(),
                prev_hash: hash(5, "prev_hash")?,
                hash: hash(6, "hash")?,
            });
        }
        Ok(rows.len())
    }

    fn stream_rows(
        &mut self,
        stream: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredRow>, LedgerError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {ROW_COLUMNS} FROM ledger_records WHERE stream = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                ),
                &[&stream, &to_i64(after_seq), &(limit as i64)],
            )
            .map_err(|e| storage("stream records", e))?;
        rows.iter().map(row_from_sql).collect()
    }

    fn hashes_after(&mut self, after_seq: u64, limit: usize) -> Result<Vec<Hash>, LedgerError> {
        hashes_after(&mut *self.client, after_seq, limit)
    }

    fn checkpoints(
        &mut self,
        after_size: u64,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>, LedgerError> {
        let rows = self
            .client
            .query(
                "SELECT size, root, note, created_at FROM ledger_checkpoints WHERE size > $1 ORDER BY size LIMIT $2",
                &[&to_i64(after_size), &(limit as i64)],
            )
            .map_err(|e| storage("checkpoints", e))?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        latest_checkpoint(&mut *self.client)
    }

    fn meta_init(&mut self, name: &str, value: &str) -> Result<String, LedgerError> {
        self.client
            .execute(
                "INSERT INTO ledger_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &value],
            )
            .map_err(|e| storage("meta", e))?;
        let row = self
            .client
            .query_one("SELECT value FROM ledger_meta WHERE name = $1", &[&name])
            .map_err(|e| storage("meta", e))?;
        Ok(row.get(0))
    }

    fn meta_get(&mut self, name: &str) -> Result<Option<String>, LedgerError> {
        let row = self
            .client
            .query_opt("SELECT value FROM ledger_meta WHERE name = $1", &[&name])
            .map_err(|e| storage("meta", e))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn secret_put(&mut self, name: &str, value: &str) -> Result<(), LedgerError> {
        self.client
            .execute(
                "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[&name, &value],
            )
            .map_err(|e| storage("secret", e))?;
        Ok(())
    }

    fn secret_get(&mut self, name: &str) -> Result<Option<String>, LedgerError> {
        let row = self
            .client
            .query_opt("SELECT value FROM secrets WHERE name = $1", &[&name])
            .map_err(|e| storage("secret", e))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn outbox_enqueue(&mut self, items: &[OutboxItem]) -> Result<usize, LedgerError> {
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| storage("outbox begin", e))?;
        let stmt = tx
            .prepare(
                "INSERT INTO webhook_deliveries (subscription, seq, kind, body, created_at, state, attempts, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $5) ON CONFLICT (subscription, seq) DO NOTHING",
            )
            .map_err(|e| storage("outbox enqueue", e))?;
        let mut added = 0;
        for item in items {
            added += tx
                .execute(
                    &stmt,
                    &[
                        &item.subscription,
                        &to_i64(item.seq),
                        &item.kind,
                        &item.body,
                        &item.created_at.unix_us(),
                    ],
                )
                .map_err(|e| storage("outbox enqueue", e))?;
        }
        tx.commit().map_err(|e| storage("outbox commit", e))?;
        Ok(added as usize)
    }

    fn outbox_claim(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, LedgerError> {
        // One statement: rows another process is claiming right now are skipped, not waited
        // for. RETURNING gives the new row; the entry reports the due time before the claim.
        let rows = self
            .client
            .query(
                &format!(
                    "WITH due AS (SELECT subscription, seq, next_attempt_at AS was_due FROM webhook_deliveries \
                     WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, seq LIMIT $3 \
                     FOR UPDATE SKIP LOCKED) \
                     UPDATE webhook_deliveries w SET next_attempt_at = $2 FROM due \
                     WHERE w.subscription = due.subscription AND w.seq = due.seq \
                     RETURNING {}, due.was_due",
                    OUTBOX_COLUMNS
                        .split(", ")
                        .map(|c| format!("w.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &[&now.unix_us(), &lease_until.unix_us(), &(limit as i64)],
            )
            .map_err(|e| storage("outbox claim", e))?;
        let mut due = rows
            .iter()
            .map(|r| {
                let mut entry = outbox_from_sql(r)?;
                entry.next_attempt_at = outbox_time("next_attempt_at", r.get(12))?;
                Ok(entry)
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
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
            .client
            .execute(
                "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2, \
                 last_attempt_at = $3, last_status = $4, last_error = $5, delivered_at = $6 \
                 WHERE subscription = $7 AND seq = $8 AND state = 'pending'",
                &[
                    &state.as_str(),
                    &next,
                    &attempt.at.unix_us(),
                    &attempt.status.map(i32::from),
                    &attempt.error,
                    &delivered,
                    &subscription,
                    &to_i64(seq),
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
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {OUTBOX_COLUMNS} FROM webhook_deliveries WHERE subscription = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                ),
                &[&subscription, &to_i64(after_seq), &(limit as i64)],
            )
            .map_err(|e| storage("outbox entries", e))?;
        rows.iter().map(outbox_from_sql).collect()
    }

    fn outbox_high_seq(&mut self) -> Result<u64, LedgerError> {
        let high: Option<i64> = self
            .client
            .query_one("SELECT MAX(seq) FROM webhook_deliveries", &[])
            .map_err(|e| storage("outbox high seq", e))?
            .get(0);
        Ok(high.unwrap_or(0) as u64)
    }
}

struct PgTx<'a, 'b> {
    tx: &'a mut Transaction<'b>,
}

impl WriteTx for PgTx<'_, '_> {
    fn head(&mut self) -> Result<Option<Head>, LedgerError> {
        head(self.tx)
    }

    fn hashes_after(&mut self, after_seq: u64, limit: usize) -> Result<Vec<Hash>, LedgerError> {
        hashes_after(self.tx, after_seq, limit)
    }

    fn insert_rows(&mut self, rows: &[StoredRow]) -> Result<(), LedgerError> {
        let stmt = self
            .tx
            .prepare(
                "INSERT INTO ledger_records (seq, stream, event_type, site, entry, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .map_err(|e| storage("insert", e))?;
        for r in rows {
            self.tx
                .execute(
                    &stmt,
                    &[
                        &to_i64(r.seq),
                        &r.stream,
                        &r.event_type,
                        &r.site,
                        &r.entry,
                        &&r.prev_hash[..],
                        &&r.hash[..],
                    ],
                )
                .map_err(|e| storage("insert record", e))?;
        }
        Ok(())
    }

    fn insert_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), LedgerError> {
        self.tx
            .execute(
                "INSERT INTO ledger_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING",
                &[&to_i64(cp.size), &&cp.root[..], &cp.note, &cp.created_at.to_string()],
            )
            .map_err(|e| storage("insert checkpoint", e))?;
        Ok(())
    }

    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        latest_checkpoint(self.tx)
    }

    fn idempotency_get(&mut self, key: &str) -> Result<Option<IdempotencyEntry>, LedgerError> {
        let row = self
            .tx
            .query_opt(
                "SELECT fingerprint, first_seq, last_seq FROM ledger_idempotency WHERE key = $1",
                &[&key],
            )
            .map_err(|e| storage("idempotency", e))?;
        row.map(|r| {
            Ok(IdempotencyEntry {
                fingerprint: bytes_hash(r.get(0), "idempotency fingerprint")?,
                first_seq: r.get::<_, i64>(1) as u64,
                last_seq: r.get::<_, i64>(2) as u64,
            })
        })
        .transpose()
    }

    fn idempotency_put(&mut self, key: &str, entry: &IdempotencyEntry) -> Result<(), LedgerError> {
        self.tx
            .execute(
                "INSERT INTO ledger_idempotency (key, fingerprint, first_seq, last_seq) VALUES ($1, $2, $3, $4)",
                &[
                    &key,
                    &&entry.fingerprint[..],
                    &to_i64(entry.first_seq),
                    &to_i64(entry.last_seq),
                ],
            )
            .map_err(|e| storage("idempotency", e))?;
        Ok(())
    }
}

const ROW_COLUMNS: &str = "seq, stream, event_type, site, entry, prev_hash, hash";

fn row_from_sql(r: &Row) -> Result<StoredRow, LedgerError> {
    Ok(StoredRow {
        seq: r.get::<_, i64>(0) as u64,
        stream: r.get(1),
        event_type: r.get(2),
        site: r.get(3),
        entry: r.get(4),
        prev_hash: bytes_hash(r.get(5), "prev_hash")?,
        hash: bytes_hash(r.get(6), "hash")?,
    })
}

fn checkpoint_from_row(r: &Row) -> Result<StoredCheckpoint, LedgerError> {
    let size = r.get::<_, i64>(0) as u64;
    let created_at: String = r.get(3);
    Ok(StoredCheckpoint {
        size,
        root: bytes_hash(r.get(1), "checkpoint root")?,
        note: r.get(2),
        created_at: Timestamp::parse(&created_at).map_err(|e| LedgerError::Corrupt {
            reason: format!("checkpoint {size}: created_at: {e}"),
        })?,
    })
}

const OUTBOX_COLUMNS: &str = "subscription, seq, kind, body, created_at, state, attempts, next_attempt_at, \
     last_attempt_at, last_status, last_error, delivered_at";

fn outbox_from_sql(r: &Row) -> Result<OutboxEntry, LedgerError> {
    let state: String = r.get(5);
    Ok(OutboxEntry {
        item: OutboxItem {
            subscription: r.get(0),
            seq: r.get::<_, i64>(1) as u64,
            kind: r.get(2),
            body: r.get(3),
            created_at: outbox_time("created_at", r.get(4))?,
        },
        state: DeliveryState::parse(&state)?,
        attempts: r.get::<_, i32>(6) as u32,
        next_attempt_at: outbox_time("next_attempt_at", r.get(7))?,
        last_attempt_at: r
            .get::<_, Option<i64>>(8)
            .map(|t| outbox_time("last_attempt_at", t))
            .transpose()?,
        last_status: r
            .get::<_, Option<i32>>(9)
            .map(|s| s.clamp(0, u16::MAX as i32) as u16),
        last_error: r.get(10),
        delivered_at: r
            .get::<_, Option<i64>>(11)
            .map(|t| outbox_time("delivered_at", t))
            .transpose()?,
    })
}

fn bytes_hash(bytes: Vec<u8>, what: &str) -> Result<Hash, LedgerError> {
    bytes.try_into().map_err(|_| LedgerError::Corrupt {
        reason: format!("{what} is not 32 bytes"),
    })
}

fn head(c: &mut impl postgres::GenericClient) -> Result<Option<Head>, LedgerError> {
    let row = c
        .query_opt(
            "SELECT seq, hash FROM ledger_records ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .map_err(|e| storage("head", e))?;
    row.map(|r| {
        Ok(Head {
            seq: r.get::<_, i64>(0) as u64,
            hash: bytes_hash(r.get(1), "hash")?,
        })
    })
    .transpose()
}

fn hashes_after(
    c: &mut impl postgres::GenericClient,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<Hash>, LedgerError> {
    let rows = c
        .query(
            "SELECT hash FROM ledger_records WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&to_i64(after_seq), &(limit as i64)],
        )
        .map_err(|e| storage("hashes", e))?;
    rows.iter().map(|r| bytes_hash(r.get(0), "hash")).collect()
}

fn latest_checkpoint(
    c: &mut impl postgres::GenericClient,
) -> Result<Option<StoredCheckpoint>, LedgerError> {
    let row = c
        .query_opt(
            "SELECT size, root, note, created_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1",
            &[],
        )
        .map_err(|e| storage("latest checkpoint", e))?;
    row.as_ref().map(checkpoint_from_row).transpose()
}

fn to_i64(v: u64) -> i64 {
    // Cannot fail in practice: seq values stay far below 2^63.
    i64::try_from(v).expect("seq below 2^63")
}

fn storage(what: &str, e: postgres::Error) -> LedgerError {
    if let Some(db) = e.as_db_error()
        && db.code() == &postgres::error::SqlState::DISK_FULL
    {
        return LedgerError::StorageFull {
            reason: format!("{what}: {}", db.message()),
        };
    }
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    };
    LedgerError::Storage {
        reason: format!("postgres {what}: {detail}"),
    }
}
