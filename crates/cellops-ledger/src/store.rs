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
