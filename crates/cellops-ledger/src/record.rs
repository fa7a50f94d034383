//! Ledger records, their canonical encoding and the hash chain.
//!
//! The byte-level rules are specified in `docs/ledger-format.md`; the golden vectors in the
//! tests pin them. Changing anything here changes every hash: bump `FORMAT_VERSION` instead.

use crate::LedgerError;
use cellops_domain::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// Version of the canonical entry encoding (the `"v"` member of every entry).
pub const FORMAT_VERSION: u32 = 1;
/// Longest canonical payload accepted, in bytes (a record is a fact, not a file).
pub const PAYLOAD_BYTES_MAX: usize = 256 * 1024;
/// Longest reason text, in characters.
pub const REASON_CHARS_MAX: usize = 2_000;

/// `h_0`, the chain hash before the first record: SHA-256("cellops-chain-v1" || 0x00).
pub fn genesis_hash() -> Hash {
    let mut h = Sha256::new();
    h.update(b"cellops-chain-v1");
    h.update([0u8]);
    h.finalize().into()
}

/// `h_n = SHA-256(0x02 || h_{n-1} || SHA-256(entry_n))` (standards.md §7.1).
pub fn chain_hash(prev: &Hash, entry: &[u8]) -> Hash {
    chain_hash_of_digest(prev, &Sha256::digest(entry).into())
}

/// `h_n` from `h_{n-1}` and `SHA-256(entry_n)` (computed elsewhere, e.g. on another thread).
pub fn chain_hash_of_digest(prev: &Hash, entry_digest: &Hash) -> Hash {
    cellops_tlog::sha256_short(&[&[0x02], prev, entry_digest])
}

/// An electronic signature carried by a record (Part 11 §11.50, §11.70, §11.200).
///
/// `content_hash` binds the signature to the record: it is SHA-256 of the canonical entry
/// with `signature` set to null, so a signature copied onto another record fails to verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureBlock {
    /// The signer's user id.
    pub signer: String,
    /// The signer's full printed name, as shown wherever the record is shown.
    pub signer_name: String,
    /// The meaning: Reviewed, Approved, Released, Verified, Authored, Performed…
    pub meaning: String,
    /// When the signer re-authenticated (UTC, server clock).
    pub signed_at: Timestamp,
    /// Which components were re-entered: `"password"` or `"user_id+password"`.
    pub authentication: String,
    /// Hex SHA-256 of the canonical entry without its signature.
    pub content_hash: String,
}

/// What a caller asks the ledger to append. The ledger adds `seq`, `recorded_at`,
/// `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRecord {
    pub stream: String,
    pub event_type: String,
    pub event_version: u32,
    pub payload: serde_json::Value,
    pub actor: String,
    pub site: String,
    /// Mandatory for corrections; optional otherwise.
    pub reason: Option<String>,
    /// The seq of the record this one corrects, if it is a correction.
    pub corrects: Option<u64>,
    /// An e-signature given with this record; `content_hash` is filled in by the ledger.
    pub signature: Option<PendingSignature>,
}

/// A signature whose binding hash the ledger computes at append time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignature {
    pub signer: String,
    pub signer_name: String,
    pub meaning: String,
    pub signed_at: Timestamp,
    pub authentication: String,
}

impl NewRecord {
    /// A plain record without reason, correction or signature.
    pub fn new(
        stream: &str,
        event_type: &str,
        event_version: u32,
        payload: serde_json::Value,
        actor: &str,
        site: &str,
    ) -> NewRecord {
        NewRecord {
            stream: stream.to_string(),
            event_type: event_type.to_string(),
            event_version,
            payload,
            actor: actor.to_string(),
            site: site.to_string(),
            reason: None,
            corrects: None,
            signature: None,
        }
    }
}

/// A record as stored: immutable once appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the ledger, 1-based and gap-free.
    pub seq: u64,
    pub stream: String,
    pub event_type: String,
    pub event_version: u32,
    /// The payload as canonical (RFC 8785) JSON text.
    pub payload: String,
    pub actor: String,
    pub site: String,
    pub recorded_at: Timestamp,
    pub reason: Option<String>,
    pub corrects: Option<u64>,
    pub signature: Option<SignatureBlock>,
    #[serde(with = "hex_hash")]
    pub prev_hash: Hash,
    #[serde(with = "hex_hash")]
    pub hash: Hash,
}

impl Record {
    /// The canonical entry bytes (RFC 8785 JSON of every field but the two hashes).
    pub fn entry_bytes(&self) -> Vec<u8> {
        entry_bytes(self, self.signature.as_ref())
    }

    /// The canonical entry bytes with `signature` null: what a signature binds to.
    pub fn unsigned_entry_bytes(&self) -> Vec<u8> {
        entry_bytes(self, None)
    }

    /// Recomputes this record's chain hash from its content and its stored `prev_hash`.
    pub fn computed_hash(&self) -> Hash {
        chain_hash(&self.prev_hash, &self.entry_bytes())
    }

    /// The payload parsed back into JSON.
    pub fn payload_json(&self) -> serde_json::Value {
        // Cannot fail for records built by the ledger: the payload is canonical JSON text.
        serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::Null)
    }

    /// The row that stores this record.
    pub fn to_stored(&self) -> crate::store::StoredRow {
        crate::store::StoredRow {
            seq: self.seq,
            stream: self.stream.clone(),
            event_type: self.event_type.clone(),
            site: self.site.clone(),
            entry: String::from_utf8(self.entry_bytes()).expect("canonical JSON is UTF-8"),
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }

    /// Reads a record back from its row: the entry is the record; the index columns must
    /// agree with it.
    pub fn from_stored(row: &crate::store::StoredRow) -> Result<Record, LedgerError> {
        let corrupt = |reason: String| LedgerError::Corrupt {
            reason: format!("record {}: {reason}; run cellops ledger verify", row.seq),
        };
        let e: EntryView<'_> = serde_json::from_str(&row.entry)
            .map_err(|err| corrupt(format!("its entry is not readable ({err})")))?;
        if e.v != FORMAT_VERSION {
            return Err(corrupt(format!("entry format version {} is unknown", e.v)));
        }
        if e.seq != row.seq
            || e.stream != row.stream
            || e.event_type != row.event_type
            || e.site != row.site
        {
            return Err(corrupt(
                "its index columns disagree with its entry".to_string(),
            ));
        }
        let recorded_at = Timestamp::parse(&e.recorded_at)
            .map_err(|err| corrupt(format!("recorded_at: {err}")))?;
        Ok(Record {
            seq: e.seq,
            stream: e.stream,
            event_type: e.event_type,
            event_version: e.version,
            payload: e.payload.get().to_string(),
            actor: e.actor,
            site: e.site,
            recorded_at,
            reason: e.reason,
            corrects: e.corrects,
            signature: e.signature,
            prev_hash: row.prev_hash,
            hash: row.hash,
        })
    }

    /// The Merkle leaf data of this record is its chain hash (docs/ledger-format.md).
    pub fn leaf_hash(&self) -> Hash {
        cellops_tlog::leaf_hash(&self.hash)
    }
}

/// The canonical entry, written directly: members in RFC 8785 order (all names are ASCII,
/// so UTF-16 order is byte order), strings escaped as JCS requires, and the payload
/// embedded as the canonical JSON text it is stored as. Equal, byte for byte, to the JCS of
/// the entry object (`entry_bytes_via_jcs`, the test oracle); this path avoids re-parsing
/// the payload, which keeps verification close to raw SHA-256 speed.
/// The canonical entry as read back (the payload kept as its exact text).
#[derive(Deserialize)]
struct EntryView<'a> {
    actor: String,
    corrects: Option<u64>,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
    reason: Option<String>,
    recorded_at: String,
    seq: u64,
    signature: Option<SignatureBlock>,
    site: String,
    stream: String,
    #[serde(rename = "type")]
    event_type: String,
    v: u32,
    version: u32,
}

fn entry_bytes(r: &Record, signature: Option<&SignatureBlock>) -> Vec<u8> {
    let mut out = Vec::with_capacity(320 + r.payload.len());
    out.extend_from_slice(b"{\"actor\":");
    json_string(&mut out, &r.actor);
    out.extend_from_slice(b",\"corrects\":");
    json_u64_or_null(&mut out, r.corrects);
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(r.payload.as_bytes());
    out.extend_from_slice(b",\"reason\":");
    match &r.reason {
        Some(reason) => json_string(&mut out, reason),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"recorded_at\":");
    json_string(&mut out, &r.recorded_at.to_string());
    out.extend_from_slice(b",\"seq\":");
    json_u64_or_null(&mut out, Some(r.seq));
    out.extend_from_slice(b",\"signature\":");
    match signature {
        Some(sig) => out.extend_from_slice(&canonical_json(
            &serde_json::to_value(sig).expect("signature serializes"),
        )),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"site\":");
    json_string(&mut out, &r.site);
    out.extend_from_slice(b",\"stream\":");
    json_string(&mut out, &r.stream);
    out.extend_from_slice(b",\"type\":");
    json_string(&mut out, &r.event_type);
    out.extend_from_slice(b",\"v\":");
    json_u64_or_null(&mut out, Some(u64::from(FORMAT_VERSION)));
    out.extend_from_slice(b",\"version\":");
    json_u64_or_null(&mut out, Some(u64::from(r.event_version)));
    out.push(b'}');
    out
}

/// A JSON string as RFC 8785 writes it (serde_json's escaping is the same: `\"`, `\\`,
/// the short escapes for control characters and lowercase `\u00xx` for the rest).
fn json_string(out: &mut Vec<u8>, s: &str) {
    crate::jcs::write_string(out, s);
}

fn json_u64_or_null(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// The entry as the JCS of a JSON object: the definition the fast path must equal.
#[cfg(test)]
fn entry_bytes_via_jcs(r: &Record, signature: Option<&SignatureBlock>) -> Vec<u8> {
    let payload: serde_json::Value = serde_json::from_str(&r.payload).expect("canonical payload");
    let entry = serde_json::json!({
        "v": FORMAT_VERSION,
        "seq": r.seq,
        "stream": r.stream,
        "type": r.event_type,
        "version": r.event_version,
        "payload": payload,
        "actor": r.actor,
        "site": r.site,
        "recorded_at": r.recorded_at.to_string(),
        "reason": r.reason,
        "corrects": r.corrects,
        "signature": signature,
    });
    canonical_json(&entry)
}

/// RFC 8785 canonical JSON bytes of `value`.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    crate::jcs::write(&mut out, value);
    out
}

/// Checks a new record's fields before it is hashed; every error names the field.
/// Checks a new record's fields and returns its payload as canonical JSON text (made once).
pub(crate) fn check_new(record: &NewRecord, next_seq: u64) -> Result<String, LedgerError> {
    let field_err = |field: &str, rule: String| LedgerError::InvalidRecord {
        field: field.to_string(),
        rule,
    };
    cellops_domain::Stream::parse(&record.stream)
        .map_err(|e| field_err("stream", e.to_string()))?;
    cellops_domain::SiteId::parse(&record.site).map_err(|e| field_err("site", e.to_string()))?;
    if record.actor.is_empty() {
        return Err(field_err("actor", "must name the user or device".into()));
    }
    if record.event_version == 0 {
        return Err(field_err("event_version", "starts at 1".into()));
    }
    if let Some(reason) = &record.reason {
        if reason.trim().is_empty() {
            return Err(field_err(
                "reason",
                "must not be blank: say why, or leave it out".into(),
            ));
        }
        if reason.chars().count() > REASON_CHARS_MAX {
            return Err(field_err(
                "reason",
                format!("is longer than {REASON_CHARS_MAX} characters"),
            ));
        }
    }
    if let Some(corrected) = record.corrects {
        if record.reason.is_none() {
            return Err(field_err(
                "reason",
                format!("a correction of record {corrected} must say why (give a reason)"),
            ));
        }
        if corrected == 0 || corrected >= next_seq {
            return Err(field_err(
                "corrects",
                format!(
                    "record {corrected} does not exist (the ledger holds records 1 to {})",
                    next_seq - 1
                ),
            ));
        }
    }
    if let Some(sig) = &record.signature {
        if sig.meaning.trim().is_empty() {
            return Err(field_err(
                "signature.meaning",
                "a signature must state its meaning (e.g. Reviewed, Approved, Released)".into(),
            ));
        }
        if sig.signer_name.trim().is_empty() {
            return Err(field_err(
                "signature.signer_name",
                "the signer's printed name is required".into(),
            ));
        }
    }
    check_numbers(&record.payload, "payload")?;
    let payload =
        String::from_utf8(canonical_json(&record.payload)).expect("canonical JSON is UTF-8");
    let payload_len = payload.len();
    if payload_len > PAYLOAD_BYTES_MAX {
        return Err(field_err(
            "payload",
            format!("is {payload_len} bytes; the maximum is {PAYLOAD_BYTES_MAX}"),
        ));
    }
    Ok(payload)
}

/// Largest integer JSON carries exactly (RFC 8785 numbers are IEEE 754 doubles).
const JSON_SAFE_INTEGER_MAX: u64 = (1 << 53) - 1;

/// Refuses integers that RFC 8785 would round: an id like 9007199254740993 must be sent as
/// a string, or the ledger would record another number than the one given.
fn check_numbers(value: &serde_json::Value, path: &str) -> Result<(), LedgerError> {
    match value {
        serde_json::Value::Number(n) => {
            let too_big = n.as_u64().is_some_and(|v| v > JSON_SAFE_INTEGER_MAX)
                || n.as_i64()
                    .is_some_and(|v| v.unsigned_abs() > JSON_SAFE_INTEGER_MAX);
            if too_big {
                return Err(LedgerError::InvalidRecord {
                    field: path.to_string(),
                    rule: format!(
                        "{n} is beyond ±2^53 and would be rounded in canonical JSON: send it as a string"
                    ),
                });
            }
            Ok(())
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_numbers(v, &format!("{path}[{i}]"))),
        serde_json::Value::Object(members) => members
            .iter()
            .try_for_each(|(k, v)| check_numbers(v, &format!("{path}.{k}"))),
        _ => Ok(()),
    }
}

/// Builds the stored record for `new` at `seq` after `prev_hash`.
/// Builds the stored record for `new` (whose canonical payload text is `payload`) at `seq`
/// after `prev_hash`; returns it with its canonical entry text.
pub(crate) fn seal(
    new: &NewRecord,
    payload: String,
    seq: u64,
    recorded_at: Timestamp,
    prev_hash: Hash,
) -> (Record, String) {
    let mut record = Record {
        seq,
        stream: new.stream.clone(),
        event_type: new.event_type.clone(),
        event_version: new.event_version,
        payload,
        actor: new.actor.clone(),
        site: new.site.clone(),
        recorded_at,
        reason: new.reason.clone(),
        corrects: new.corrects,
        signature: None,
        prev_hash,
        hash: [0; 32],
    };
    if let Some(sig) = &new.signature {
        let content_hash: Hash = Sha256::digest(record.unsigned_entry_bytes()).into();
        record.signature = Some(SignatureBlock {
            signer: sig.signer.clone(),
            signer_name: sig.signer_name.clone(),
            meaning: sig.meaning.clone(),
            signed_at: sig.signed_at,
            authentication: sig.authentication.clone(),
            content_hash: hex::encode(content_hash),
        });
    }
    let entry = record.entry_bytes();
    record.hash = chain_hash(&record.prev_hash, &entry);
    let entry = String::from_utf8(entry).expect("canonical JSON is UTF-8");
    (record, entry)
}

/// Whether a record's signature (if any) is bound to this record's content.
pub fn signature_binds(record: &Record) -> bool {
    match &record.signature {
        None => true,
        Some(sig) => {
            let content_hash: Hash = Sha256::digest(record.unsigned_entry_bytes()).into();
            sig.content_hash == hex::encode(content_hash)
        }
    }
}

pub(crate) mod hex_hash {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a hash is 32 bytes (64 hex digits)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seq: u64, prev: Hash) -> Record {
        let new = NewRecord::new(
            "batch/b-1",
            "batch.started",
            1,
            serde_json::json!({"z": 1, "a": [true, null, 2.5e8], "é": "cells"}),
            "alice",
            "cpc-kyoto",
        );
        let payload = check_new(&new, seq).unwrap();
        seal(
            &new,
            payload,
            seq,
            Timestamp::from_unix_us(1_764_000_000_000_000).unwrap(),
            prev,
        )
        .0
    }

    /// Golden vectors: these bytes and hashes are the format; docs/ledger-format.md repeats them.
    #[test]
    fn canonical_entry_and_hashes_are_pinned() {
        assert_eq!(
            hex::encode(genesis_hash()),
            hex::encode(Sha256::digest(b"cellops-chain-v1\0"))
        );
        let r = sample(1, genesis_hash());
        assert_eq!(
            String::from_utf8(r.entry_bytes()).unwrap(),
            r#"{"actor":"alice","corrects":null,"payload":{"a":[true,null,250000000],"z":1,"é":"cells"},"reason":null,"recorded_at":"2025-11-24T16:00:00.000000Z","seq":1,"signature":null,"site":"cpc-kyoto","stream":"batch/b-1","type":"batch.started","v":1,"version":1}"#
        );
        assert_eq!(r.hash, chain_hash(&genesis_hash(), &r.entry_bytes()));
    }

    #[test]
    fn fast_entry_encoding_equals_jcs_of_the_entry_object() {
        let mut r = sample(3, genesis_hash());
        r.actor = "quote\" back\\ tab\t nl\n bell\u{7} del\u{7f} é 細胞 😀".into();
        r.reason = Some("ctrl \u{1f} and \u{0}".into());
        r.corrects = Some(2);
        r.signature = Some(SignatureBlock {
            signer: "qa".into(),
            signer_name: "Q. A.".into(),
            meaning: "Released".into(),
            signed_at: Timestamp::EPOCH,
            authentication: "password".into(),
            content_hash: "00".into(),
        });
        assert_eq!(
            String::from_utf8(r.entry_bytes()).unwrap(),
            String::from_utf8(entry_bytes_via_jcs(&r, r.signature.as_ref())).unwrap()
        );
        let plain = sample(1, genesis_hash());
        assert_eq!(plain.entry_bytes(), entry_bytes_via_jcs(&plain, None));
    }

    #[test]
    fn any_field_change_changes_the_hash() {
        let r = sample(1, genesis_hash());
        let mut edited = r.clone();
        edited.actor = "mallory".into();
        assert_ne!(edited.computed_hash(), r.hash);
        let mut moved = r.clone();
        moved.seq = 2;
        assert_ne!(moved.computed_hash(), r.hash);
    }

    #[test]
    fn signature_is_bound_to_its_record() {
        let mut new = NewRecord::new(
            "batch/b-1",
            "batch.released",
            1,
            serde_json::json!({}),
            "qa",
            "cpc-kyoto",
        );
        new.signature = Some(PendingSignature {
            signer: "qa".into(),
            signer_name: "Q. A. Person".into(),
            meaning: "Released".into(),
            signed_at: Timestamp::EPOCH,
            authentication: "password".into(),
        });
        let payload = check_new(&new, 7).unwrap();
        let signed = seal(&new, payload, 7, Timestamp::EPOCH, genesis_hash()).0;
        assert!(signature_binds(&signed));
        let mut other = sample(7, genesis_hash());
        other.signature = signed.signature.clone();
        assert!(
            !signature_binds(&other),
            "a copied signature must not verify"
        );
    }
}
