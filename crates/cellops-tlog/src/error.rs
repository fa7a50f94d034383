//! The one error type of this crate.

use std::fmt;

/// Which kind of Merkle proof an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProofKind {
    /// An RFC 9162 §2.1.3 inclusion (audit) path.
    Inclusion,
    /// An RFC 9162 §2.1.4 consistency proof.
    Consistency,
}

impl fmt::Display for ProofKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProofKind::Inclusion => "inclusion",
            ProofKind::Consistency => "consistency",
        })
    }
}

/// Everything that can go wrong when building, proving, signing or verifying.
///
/// Every message names the value at fault, the rule it broke and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    /// A leaf index is not inside the tree size it was asked about.
    #[error(
        "leaf index {index} is outside a tree of {size} leaves (rule: index < size); \
         ask about a leaf that exists in that tree size"
    )]
    IndexOutOfRange {
        /// The 0-based leaf index asked for.
        index: u64,
        /// The tree size (number of leaves) it was checked against.
        size: u64,
    },
    /// A tree size is larger than the number of leaves the log holds.
    #[error(
        "tree size {size} exceeds the {len} leaves this log holds (rule: size ≤ log length); \
         use a size no larger than the current log"
    )]
    SizeOutOfRange {
        /// The tree size (number of leaves) asked for.
        size: u64,
        /// The number of leaves the tree actually holds.
        len: u64,
    },
    /// A consistency check was asked from a larger tree to a smaller one.
    #[error(
        "consistency needs first ≤ second, got first size {first} > second size {second}; \
         a newer checkpoint smaller than a trusted one is a rollback and a security alert"
    )]
    SizesOutOfOrder {
        /// The older (trusted) tree size.
        first: u64,
        /// The newer tree size.
        second: u64,
    },
    /// A proof has the wrong number of hashes for its sizes.
    #[error(
        "{kind} proof has {got} hashes but sizes {detail} need exactly {expected}; \
         fetch the proof again for exactly these sizes"
    )]
    ProofLength {
        /// Which proof.
        kind: ProofKind,
        /// How many hashes the sizes require.
        expected: usize,
        /// How many hashes the proof had.
        got: usize,
        /// The sizes the proof was checked for, e.g. `index 3 of size 7`.
        detail: String,
    },
    /// A proof does not reproduce the expected root(s).
    #[error(
        "{kind} proof failed: {detail}; the leaf, the proof or the root is wrong — \
         treat the log as untrusted until this is explained"
    )]
    ProofMismatch {
        /// Which proof.
        kind: ProofKind,
        /// What did not match, e.g. `recomputed root differs from the given root`.
        detail: String,
    },
    /// A hash given as text could not be decoded.
    #[error("bad hash text: {reason}; give exactly 32 bytes as 64 hex digits or standard base64")]
    BadHash {
        /// What is wrong with the text.
        reason: String,
    },
    /// A checkpoint body does not follow C2SP tlog-checkpoint.
    #[error("bad checkpoint at line {line}: {reason}")]
    BadCheckpoint {
        /// 1-based line number in the checkpoint body (0 when about the whole text).
        line: usize,
        /// Which rule the line broke and how to fix it.
        reason: String,
    },
    /// A note (text plus signature block) is malformed.
    #[error("malformed signed note: {reason}")]
    BadNote {
        /// Which rule of the signed-note format was broken.
        reason: String,
    },
    /// A signer or verifier key string or key name is malformed.
    #[error("bad note key: {reason}")]
    BadKey {
        /// What is wrong with the key.
        reason: String,
    },
    /// The signature of a known key did not verify: the note was altered or forged.
    #[error(
        "signature by known key {key} does not verify over the note text; \
         the note was altered or forged — reject it and raise a security alert"
    )]
    BadSignature {
        /// The key name whose signature failed.
        key: String,
    },
    /// No signature line came from any of the trusted keys.
    #[error(
        "no signature from a trusted key (trusted: {trusted}); the note may be signed by another \
         key: configure that key's verifier key if you trust it"
    )]
    NoVerifiedSignature {
        /// The trusted key names, comma-separated.
        trusted: String,
    },
    /// Two checkpoints compared for consistency come from different logs.
    #[error(
        "checkpoint origins differ: older {older:?}, newer {newer:?}; \
         only checkpoints of one log can be compared"
    )]
    OriginMismatch {
        /// Origin line of the older checkpoint.
        older: String,
        /// Origin line of the newer checkpoint.
        newer: String,
    },
}
