//! The storage trait the ledger is generic over. Each backend owns its SQL, row mapping and
//! migrations; nothing outside a backend module names SQLite or PostgreSQL.

use crate::LedgerError;
use crate::record::{Hash, Record};
use cellops_domain::Timestamp;

/// A record as one database row: the canonical entry (the record itself, exactly the
/// bytes its hash covers) plus index columns for queries. Verification checks that the
/// index columns agree with the entry, so a moved index cannot hide a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    pub seq: u64,
    pub stream: String,
    pub event_type: String,
    pub site: String,
    /// The canonical entry text (docs/ledger-format.md §2).
    pub entry: String,
    pub prev_hash: Hash,
    pub hash: Hash,
}

impl StoredRow {
    /// The row as borrowed bytes.
    pub fn as_row_ref(&self) -> RowRef<'_> {
        RowRef {
            seq: self.seq,
            stream: self.stream.as_bytes(),
            event_type: self.event_type.as_bytes(),
            site: self.site.as_bytes(),
            entry: self.entry.as_bytes(),
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }
}

/// A stored row borrowed from the database's buffers (or a page of copied rows): what
/// verification reads, without one allocation per column. The text columns are the bytes
/// as stored; nothing here has been checked yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRef<'a> {
    pub seq: u64,
    pub stream: &'a [u8],
    pub event_type: &'a [u8],
    pub site: &'a [u8],
    pub entry: &'a [u8],
    pub prev_hash: &'a Hash,
    pub hash: &'a Hash,
}

impl RowRef<'_> {
    /// An owned row; `None` when a text column is not UTF-8 (only a damaged row is not).
    pub fn to_stored(&self) -> Option<StoredRow> {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
        Some(StoredRow {
            seq: self.seq,
            stream: text(self.stream)?,
            event_type: text(self.event_type)?,
            site: text(self.site)?,
            entry: text(self.entry)?,
            prev_hash: *self.prev_hash,
            hash: *self.hash,
        })
    }
}

/// The last record of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Hash,
    /// The whole signed note (C2SP signed-note text).
    pub note: String,
    pub created_at: Timestamp,
}

/// What an idempotency key already produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyEntry {
    /// SHA-256 of the request the key was first used with.
    pub fingerprint: Hash,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Where one webhook notification stands. Delivery state is operational data kept beside
/// the ledger (table `webhook_deliveries`), never in it: the notification itself is derived
/// from a ledger record, so it cannot be lost; only whether it reached the receiver lives
/// here (docs/notifications.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet delivered; due again at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx. Never sent again.
    Delivered,
    /// Retries exhausted; kept for the operator to see.
    Failed,
    /// The subscription was revoked before delivery.
    Cancelled,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Result<DeliveryState, LedgerError> {
        Ok(match text {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            "cancelled" => DeliveryState::Cancelled,
            other => {
                return Err(LedgerError::Corrupt {
                    reason: format!("webhook delivery state {other:?} is unknown"),
                });
            }
        })
    }
}

/// A notification to deliver: one (subscription, ledger seq) pair. The body is fixed when
/// the item is enqueued, so every retry sends the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub subscription: String,
    /// Seq of the ledger record the notification is about.
    pub seq: u64,
    /// Notification kind (`batch.started`, …).
    pub kind: String,
    /// The JSON body as sent.
    pub body: String,
    /// When it was enqueued (also its first due time).
    pub created_at: Timestamp,
}

/// An outbox row: the item and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub item: OutboxItem,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it is due next (while pending; a claim moves it to the end of the lease).
    pub next_attempt_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    /// HTTP status of the last attempt, if the receiver answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
}

/// What one delivery attempt found, and what follows from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub at: Timestamp,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub outcome: AttemptOutcome,
}

/// The state an attempt leaves a pending row in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Try again at this instant.
    RetryAt(Timestamp),
    /// Retries exhausted.
    GaveUp,
    /// The subscription is gone.
    Cancelled,
}

impl DeliveryAttempt {
    /// The state, next due time and delivery time (µs) this attempt leaves a row in.
    pub(crate) fn columns(&self) -> (DeliveryState, i64, Option<i64>) {
        let at = self.at.unix_us();
        match self.outcome {
            AttemptOutcome::Delivered => (DeliveryState::Delivered, at, Some(at)),
            AttemptOutcome::RetryAt(next) => (DeliveryState::Pending, next.unix_us(), None),
            AttemptOutcome::GaveUp => (DeliveryState::Failed, at, None),
            AttemptOutcome::Cancelled => (DeliveryState::Cancelled, at, None),
        }
    }
}

/// A stored outbox time (µs since the epoch) as a timestamp.
pub(crate) fn outbox_time(what: &str, us: i64) -> Result<Timestamp, LedgerError> {
    Timestamp::from_unix_us(us).map_err(|e| LedgerError::Corrupt {
        reason: format!("webhook delivery {what}: {e}"),
    })
}

/// Operations available inside one write transaction. The transaction holds the ledger's
/// append lock: no other writer (thread or process) appends until it ends.
pub trait WriteTx {
    fn head(&mut self) -> Result<Option<Head>, LedgerError>;
    /// Chain hashes of records with seq in `(after_seq, after_seq + limit]`, in order.
    fn hashes_after(&mut self, after_seq: u64, limit: usize) -> Result<Vec<Hash>, LedgerError>;
    fn insert_rows(&mut self, rows: &[StoredRow]) -> Result<(), LedgerError>;
    fn insert_checkpoint(&mut self, checkpoint: &StoredCheckpoint) -> Result<(), LedgerError>;
    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError>;
    fn idempotency_get(&mut self, key: &str) -> Result<Option<IdempotencyEntry>, LedgerError>;
    fn idempotency_put(&mut self, key: &str, entry: &IdempotencyEntry) -> Result<(), LedgerError>;
}

/// A connection to one ledger database.
pub trait Backend: Send + Sized + 'static {
    /// Opens (and on first use creates and migrates) the database named by `url`, checking
    /// that it is a sound cellops database.
    fn open(url: &str) -> Result<Self, LedgerError>;

    /// Another connection to a database `open` already prepared: no migrations, no
    /// integrity scan (the reader pool opens these while other processes write).
    fn connect(url: &str) -> Result<Self, LedgerError>;

    /// Runs `f` in one durable write transaction holding the append lock; commits if `f`
    /// returns Ok, rolls back otherwise.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&mut dyn WriteTx) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError>;

    /// Like `write`, but the commit need not reach the disk before it returns: only for
    /// derived data that is rebuilt identically after a crash (signed checkpoints: the tree
    /// and Ed25519 are deterministic). Saves one disk flush per checkpoint.
    fn write_relaxed<T>(
        &mut self,
        f: impl FnOnce(&mut dyn WriteTx) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError>;

    fn head(&mut self) -> Result<Option<Head>, LedgerError>;
    /// Rows with seq ≥ `from_seq`, ascending, at most `limit`.
    fn rows(&mut self, from_seq: u64, limit: usize) -> Result<Vec<StoredRow>, LedgerError>;
    /// Calls `visit` with each row with seq ≥ `from_seq`, ascending, at most `limit`,
    /// borrowed from the database's buffers (no allocation per row); returns how many rows
    /// it visited. Verification reads the whole ledger through this.
    fn scan_rows(
        &mut self,
        from_seq: u64,
        limit: usize,
        visit: &mut dyn FnMut(RowRef<'_>),
    ) -> Result<usize, LedgerError> {
        let rows = self.rows(from_seq, limit)?;
        for row in &rows {
            visit(row.as_row_ref());
        }
        Ok(rows.len())
    }
    /// Rows of one stream with seq > `after_seq`, ascending, at most `limit`.
    fn stream_rows(
        &mut self,
        stream: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredRow>, LedgerError>;

    /// Records with seq ≥ `from_seq`, ascending, at most `limit`.
    fn records(&mut self, from_seq: u64, limit: usize) -> Result<Vec<Record>, LedgerError> {
        self.rows(from_seq, limit)?
            .iter()
            .map(Record::from_stored)
            .collect()
    }

    /// Records of one stream with seq > `after_seq`, ascending, at most `limit`.
    fn stream_records(
        &mut self,
        stream: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Record>, LedgerError> {
        self.stream_rows(stream, after_seq, limit)?
            .iter()
            .map(Record::from_stored)
            .collect()
    }
    /// Chain hashes of records with seq in `(after_seq, after_seq + limit]`, in order.
    fn hashes_after(&mut self, after_seq: u64, limit: usize) -> Result<Vec<Hash>, LedgerError>;
    /// Checkpoints with size > `after_size`, ascending, at most `limit`.
    fn checkpoints(
        &mut self,
        after_size: u64,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>, LedgerError>;
    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError>;
    /// Stores `value` under `name` unless a value exists; returns the value in force.
    fn meta_init(&mut self, name: &str, value: &str) -> Result<String, LedgerError>;
    /// The value stored under `name`, if any (reads only).
    fn meta_get(&mut self, name: &str) -> Result<Option<String>, LedgerError>;

    /// Secrets kept beside the ledger, never in it (password hashes, session activity):
    /// an exported ledger bundle must not carry them. Overwrites.
    fn secret_put(&mut self, name: &str, value: &str) -> Result<(), LedgerError>;
    fn secret_get(&mut self, name: &str) -> Result<Option<String>, LedgerError>;

    /// Adds notifications to the webhook outbox in one transaction. An item already there
    /// (same subscription and seq) is left as it is, so enqueueing is idempotent and a
    /// delivered notification never becomes pending again. Returns how many were new.
    fn outbox_enqueue(&mut self, items: &[OutboxItem]) -> Result<usize, LedgerError>;

    /// Claims up to `limit` pending notifications due at `now` (oldest due first): their
    /// next attempt moves to `lease_until`, so another dispatcher (another process on the
    /// same database) skips them, and a dispatcher that dies mid-send leaves them due again
    /// when the lease ends. Returns them as they were before the claim, ordered by seq.
    fn outbox_claim(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, LedgerError>;

    /// Records an attempt on a pending notification. Returns false (and changes nothing)
    /// when it is no longer pending, e.g. another dispatcher delivered it meanwhile.
    fn outbox_record(
        &mut self,
        subscription: &str,
        seq: u64,
        attempt: &DeliveryAttempt,
    ) -> Result<bool, LedgerError>;

    /// Notifications of one subscription with seq > `after_seq`, ascending, at most `limit`.
    fn outbox_entries(
        &mut self,
        subscription: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, LedgerError>;

    /// The highest seq any outbox item refers to (0 when empty). Enqueueing happens in
    /// seq order, one transaction per batch, so every notification up to here is enqueued.
    fn outbox_high_seq(&mut self) -> Result<u64, LedgerError>;
}

/// Which backend a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    /// Chooses the backend from the URL scheme: `sqlite://…` or `postgres://…`.
    pub fn of_url(url: &str) -> Result<BackendKind, LedgerError> {
        if url.starts_with("sqlite://") {
            Ok(BackendKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(BackendKind::Postgres)
        } else {
            Err(LedgerError::BadUrl {
                url: redact_url(url),
                reason: "use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE".to_string(),
            })
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        }
    }
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_backends_and_hide_passwords() {
        assert_eq!(
            BackendKind::of_url("sqlite://x.db").unwrap(),
            BackendKind::Sqlite
        );
        assert_eq!(
            BackendKind::of_url("postgresql://a@b/c").unwrap(),
            BackendKind::Postgres
        );
        assert!(BackendKind::of_url("mysql://x").is_err());
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
    }
}
