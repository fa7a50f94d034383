//! C2SP tlog-checkpoint bodies, their signing, and verifier entry points that trust only a
//! signed checkpoint and a public key.

use crate::note::is_valid_key_name;
use crate::{
    Hash, NoteSigner, NoteVerifier, TlogError, hash_from_base64, hash_to_base64, open_note,
    verify_consistency, verify_inclusion,
};

/// Most extension lines a checkpoint may carry (the spec discourages them; cellops writes
/// none, but accepts a few from other logs).
pub const CHECKPOINT_EXTENSION_LINES_MAX: usize = 16;

/// A C2SP tlog-checkpoint body: which log, how many leaves, and the RFC 9162 root of them.
///
/// Fields are public for convenience; [`Checkpoint::validate`] states the rules, and
/// [`sign_checkpoint`] refuses a checkpoint that breaks them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log identity, e.g. `cellops.example/site-TYO/audit`: non-empty, no whitespace, no `+`.
    /// The log's signing key name should equal it.
    pub origin: String,
    /// Tree size: the number of leaves the root covers.
    pub size: u64,
    /// RFC 9162 root hash of the first `size` leaves.
    pub root: Hash,
    /// Optional extension lines, each non-empty (at most [`CHECKPOINT_EXTENSION_LINES_MAX`]).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The body text: origin, size in ASCII decimal and root in standard base64, then any
    /// extension lines, each line ending with `\n`.
    pub fn body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            hash_to_base64(&self.root)
        );
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    /// Checks the rules a checkpoint body must follow; [`Checkpoint::body`] of a valid
    /// checkpoint parses back to the same value.
    pub fn validate(&self) -> Result<(), TlogError> {
        check_origin(&self.origin)?;
        if self.extensions.len() > CHECKPOINT_EXTENSION_LINES_MAX {
            return Err(bad(
                4,
                &format!(
                    "{} extension lines, more than the {CHECKPOINT_EXTENSION_LINES_MAX} allowed",
                    self.extensions.len()
                ),
            ));
        }
        for (i, line) in self.extensions.iter().enumerate() {
            check_extension(i + 4, line)?;
        }
        Ok(())
    }

    /// Parses a checkpoint body (the text of a signed note, ending in a newline).
    ///
    /// Rejects a missing final newline, fewer than three lines, an invalid origin, a size with
    /// leading zeros or non-digits, a root that is not standard base64 of 32 bytes, and empty
    /// extension lines; errors name the 1-based line.
    pub fn parse_body(text: &str) -> Result<Self, TlogError> {
        let Some(text) = text.strip_suffix('\n') else {
            return Err(bad(0, "the body must end with a newline"));
        };
        let lines: Vec<&str> = text.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(bad(
                lines.len() + 1,
                "a checkpoint needs at least three lines: origin, tree size, root hash",
            ));
        };
        check_origin(origin)?;
        let size = parse_size(size)?;
        let root = hash_from_base64(root).map_err(|err| bad(3, &err.to_string()))?;
        if extensions.len() > CHECKPOINT_EXTENSION_LINES_MAX {
            return Err(bad(
                4,
                &format!(
                    "{} extension lines, more than the {CHECKPOINT_EXTENSION_LINES_MAX} allowed",
                    extensions.len()
                ),
            ));
        }
        for (i, line) in extensions.iter().enumerate() {
            check_extension(i + 4, line)?;
        }
        Ok(Self {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
        })
    }
}

/// Signs a checkpoint with the log's key: returns the signed note (body, blank line,
/// signature line). Fails when the checkpoint breaks [`Checkpoint::validate`].
pub fn sign_checkpoint(signer: &NoteSigner, checkpoint: &Checkpoint) -> Result<String, TlogError> {
    checkpoint.validate()?;
    signer.sign(&checkpoint.body())
}

/// Opens a signed checkpoint: the note must verify per [`open_note`] and its text must parse
/// per [`Checkpoint::parse_body`].
pub fn open_checkpoint(note: &str, verifiers: &[NoteVerifier]) -> Result<Checkpoint, TlogError> {
    let opened = open_note(note, verifiers)?;
    Checkpoint::parse_body(&opened.text)
}

/// Independent check that `leaf_hash` is leaf `index` of the log, trusting only the signed
/// checkpoint and the log's public key. Returns the checkpoint it was checked against.
pub fn verify_inclusion_against_checkpoint(
    signed_checkpoint: &str,
    verifier: &NoteVerifier,
    index: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
) -> Result<Checkpoint, TlogError> {
    let checkpoint = open_checkpoint(signed_checkpoint, std::slice::from_ref(verifier))?;
    verify_inclusion(index, checkpoint.size, leaf_hash, proof, &checkpoint.root)?;
    Ok(checkpoint)
}

/// Independent check that the `newer` signed checkpoint extends the `older` one (same
/// origin, append-only), trusting only the two signed checkpoints and the log's public key.
///
/// A newer size below the older one fails with [`TlogError::SizesOutOfOrder`] (rollback);
/// equal sizes need equal roots and an empty proof (standards §7.4).
pub fn verify_consistency_between_checkpoints(
    older: &str,
    newer: &str,
    verifier: &NoteVerifier,
    proof: &[Hash],
) -> Result<(), TlogError> {
    let trusted = std::slice::from_ref(verifier);
    let older = open_checkpoint(older, trusted)?;
    let newer = open_checkpoint(newer, trusted)?;
    if older.origin != newer.origin {
        return Err(TlogError::OriginMismatch {
            older: older.origin,
            newer: newer.origin,
        });
    }
    verify_consistency(older.size, newer.size, &older.root, &newer.root, proof)
}

fn check_origin(origin: &str) -> Result<(), TlogError> {
    if is_valid_key_name(origin) && !origin.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(bad(
            1,
            &format!(
                "origin {origin:?} must be non-empty, without spaces, '+' or control characters"
            ),
        ))
    }
}

fn parse_size(text: &str) -> Result<u64, TlogError> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only {
        return Err(bad(
            2,
            &format!("tree size {text:?} must be ASCII decimal digits"),
        ));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(bad(
            2,
            &format!("tree size {text:?} must have no leading zeros"),
        ));
    }
    text.parse::<u64>()
        .map_err(|_| bad(2, &format!("tree size {text:?} does not fit in 64 bits")))
}

fn check_extension(line_number: usize, line: &str) -> Result<(), TlogError> {
    if line.is_empty() {
        return Err(bad(line_number, "extension lines must not be empty"));
    }
    if line.chars().any(char::is_control) {
        return Err(bad(
            line_number,
            "extension lines must not hold newlines or control characters",
        ));
    }
    Ok(())
}

fn bad(line: usize, reason: &str) -> TlogError {
    TlogError::BadCheckpoint {
        line,
        reason: reason.to_owned(),
    }
}
