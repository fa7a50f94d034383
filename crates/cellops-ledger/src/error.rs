use thiserror::Error;

/// Everything that can go wrong in the ledger. Client faults name the field and the rule;
/// storage faults say what failed and that nothing of the request was recorded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LedgerError {
    #[error("{field}: {rule}")]
    InvalidRecord { field: String, rule: String },
    #[error(
        "event type {event_type:?} version {event_version} is unknown: known types are listed at /api/ledger/event-types"
    )]
    UnknownEventType {
        event_type: String,
        event_version: u32,
    },
    #[error(
        "idempotency key {key:?} was already used for a different request: use a new key for a new command"
    )]
    IdempotencyConflict { key: String },
    #[error("record {seq} does not exist (the ledger holds {size} records)")]
    NoSuchRecord { seq: u64, size: u64 },
    #[error("{0}")]
    BadProofRequest(String),
    #[error("database URL {url:?} is not usable: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "the database is full ({reason}): free disk space or raise the quota; nothing of this request was recorded"
    )]
    StorageFull { reason: String },
    #[error("the database is damaged or not a cellops database: {reason}")]
    Corrupt { reason: String },
    #[error("storage failed: {reason}; nothing of this request was recorded")]
    Storage { reason: String },
    #[error("the ledger has shut down")]
    Closed,
}

impl LedgerError {
    /// Whether the caller caused the error (a 4xx) rather than the system (a 5xx).
    pub fn is_client_fault(&self) -> bool {
        matches!(
            self,
            LedgerError::InvalidRecord { .. }
                | LedgerError::UnknownEventType { .. }
                | LedgerError::IdempotencyConflict { .. }
                | LedgerError::NoSuchRecord { .. }
                | LedgerError::BadProofRequest(_)
        )
    }
}
