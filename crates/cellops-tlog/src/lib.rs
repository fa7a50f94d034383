//! Pure transparency-log primitives for the cellops ledger.
//!
//! - RFC 9162 Merkle tree hashing ([`leaf_hash`], [`node_hash`], [`EMPTY_ROOT`]), an
//!   append-only [`MerkleTree`] that answers roots and proofs for any earlier size, and
//!   proof verification ([`verify_inclusion`], [`verify_consistency`]).
//!
//! Architecture invariants: no IO, no clock, no global randomness (an RNG is injected where
//! keys are generated); every function is deterministic. This crate is an **API boundary**:
//! the ledger and independent verifiers call it.

mod error;
mod hash;
mod tree;
mod verify;

pub use error::{ProofKind, TlogError};
pub use hash::{
    EMPTY_ROOT, Hash, hash_from_base64, hash_from_hex, hash_to_base64, hash_to_hex, leaf_hash,
    node_hash,
};
pub use tree::MerkleTree;
pub use verify::{
    consistency_proof_len, inclusion_proof_len, verify_consistency, verify_inclusion,
};
