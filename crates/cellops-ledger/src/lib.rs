//! The cellops ledger: the one record of who did what to whose cells, when and why.
//!
//! Architecture invariants:
//! - Appending is the only way state changes; no ledger row is ever updated or deleted
//!   (database triggers refuse it, see `sqlite.rs` / `postgres.rs`).
//! - `seq` is gap-free and every record's `prev_hash` is its predecessor's `hash`, also with
//!   several processes appending to one PostgreSQL database (an advisory lock serialises them).
//! - A record is acknowledged only after its transaction is durably committed.
//! - Checkpoints sign the RFC 9162 Merkle root over the records' chain hashes; a log never
//!   signs two inconsistent checkpoints (the tree is append-only and rebuilt from the records).
//!
//! API boundary: [`Ledger`], [`Backend`], [`Record`]/[`NewRecord`], [`verify`], [`bundle`].

pub mod bundle;
mod error;
pub mod jcs;
mod ledger;
pub mod postgres;
pub mod record;
pub mod sqlite;
pub mod store;
pub mod telemetry;
pub mod verify;

pub use error::LedgerError;
pub use ledger::{
    AppendOutcome, AppendRequest, ConsistencyProof, EventCatalog, InclusionProof, Ledger,
    LedgerConfig,
};
pub use record::{Hash, NewRecord, PendingSignature, Record, SignatureBlock};
pub use store::{Backend, BackendKind, Head, RowRef, StoredCheckpoint, StoredRow};
