//! Pure transparency-log primitives for the cellops ledger.
//!
//! - RFC 9162 Merkle tree hashing ([`leaf_hash`], [`node_hash`], [`EMPTY_ROOT`]), an
//!   append-only [`MerkleTree`] that answers roots and proofs for any earlier size, and
//!   proof verification ([`verify_inclusion`], [`verify_consistency`]).
//! - C2SP signed notes with Ed25519 keys in Go `sumdb/note` formats ([`NoteSigner`],
//!   [`NoteVerifier`], [`open_note`]) and C2SP tlog-checkpoints ([`Checkpoint`],
//!   [`sign_checkpoint`], [`open_checkpoint`]).
//! - Independent verifier entry points that trust only a signed checkpoint and a public key
//!   ([`verify_inclusion_against_checkpoint`], [`verify_consistency_between_checkpoints`]).
//!
//! Architecture invariants: no IO, no clock, no global randomness (an RNG is injected where
//! keys are generated); every function is deterministic. This crate is an **API boundary**:
//! the ledger and independent verifiers call it.

mod checkpoint;
mod error;
mod hash;
mod note;
mod tree;
mod verify;

pub use checkpoint::{
    CHECKPOINT_EXTENSION_LINES_MAX, Checkpoint, open_checkpoint, sign_checkpoint,
    verify_consistency_between_checkpoints, verify_inclusion_against_checkpoint,
};
pub use error::{ProofKind, TlogError};
pub use hash::{
    EMPTY_ROOT, Hash, SHORT_MESSAGE_MAX, hash_from_base64, hash_from_hex, hash_to_base64,
    hash_to_hex, leaf_hash, node_hash, sha256_short,
};
pub use note::{
    NOTE_BYTES_MAX, NOTE_SIGNATURES_MAX, NoteSigner, NoteVerifier, OpenedNote, open_note,
};
pub use tree::{MerkleFrontier, MerkleTree};
pub use verify::{
    consistency_proof_len, inclusion_proof_len, verify_consistency, verify_inclusion,
};
