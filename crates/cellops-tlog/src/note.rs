//! Ed25519 signed notes (C2SP signed-note), in the key formats of Go's
//! `golang.org/x/mod/sumdb/note`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::TlogError;

/// Most signature lines a note may carry; more is rejected as malformed (as Go's
/// `note.Open` does). The signed-note spec requires accepting at least 16.
pub const NOTE_SIGNATURES_MAX: usize = 100;
/// Largest signed note accepted, in bytes, so a hostile input cannot make us hash megabytes.
/// Checkpoints are a few hundred bytes.
pub const NOTE_BYTES_MAX: usize = 1 << 20;
const _: () = assert!(
    NOTE_SIGNATURES_MAX >= 16,
    "signed-note: accept at least 16 signatures"
);

/// Signature type byte of Ed25519 note keys (C2SP signed-note).
const ALG_ED25519: u8 = 0x01;
/// Every signature line starts with an em dash (U+2014) and a space.
const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";
/// Prefix of the private key text format.
const SKEY_PREFIX: &str = "PRIVATE+KEY+";
/// Ed25519 seed and public key length in bytes.
const ED25519_KEY_BYTES: usize = 32;
/// Ed25519 signature length in bytes.
const ED25519_SIGNATURE_BYTES: usize = 64;

/// A key that signs notes: key name, 32-bit key ID and an Ed25519 private key.
///
/// `Debug` prints the name and key ID only, never the private key.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl NoteSigner {
    /// Generates a new Ed25519 key named `name` from 32 bytes of the injected `rng`.
    ///
    /// The name must be non-empty without whitespace or `+`; for a log it should equal the
    /// checkpoint origin.
    pub fn generate(
        name: &str,
        rng: &mut (impl rand::CryptoRng + rand::RngCore),
    ) -> Result<Self, TlogError> {
        check_key_name(name)?;
        let mut seed = [0u8; ED25519_KEY_BYTES];
        rng.fill_bytes(&mut seed);
        Ok(Self::from_seed(name, &seed))
    }

    /// Parses a private key `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed32)>`,
    /// checking that the key ID matches the key.
    pub fn from_skey(skey: &str) -> Result<Self, TlogError> {
        let rest = skey.strip_prefix(SKEY_PREFIX).ok_or_else(|| bad_key(
            "a signer key must start with \"PRIVATE+KEY+\" (format PRIVATE+KEY+<name>+<hexid>+<base64>)",
        ))?;
        let (name, key_id, key) = split_key_text(rest)?;
        let seed = ed25519_key_bytes(&key, "private key seed")?;
        let signer = Self::from_seed(name, &seed);
        if signer.key_id != key_id {
            return Err(bad_key(&format!(
                "key ID {key_id:08x} does not match the key, whose ID is {:08x}; the key text is \
                 corrupted or its parts come from different keys",
                signer.key_id
            )));
        }
        Ok(signer)
    }

    /// The private key text `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed32)>`.
    /// It is a secret: store it like a password.
    pub fn to_skey(&self) -> String {
        format!(
            "{SKEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_key(&self.key.to_bytes())
        )
    }

    /// The matching public verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32-bit key ID: the first 4 bytes, big-endian, of
    /// `SHA-256(name || 0x0A || 0x01 || public key)`.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Signs `text` and returns the whole signed note: `text`, a blank line and one signature
    /// line `— <name> <base64(key ID || signature)>\n`.
    ///
    /// `text` must end with a newline and hold no ASCII control characters other than
    /// newline, so that [`open_note`] can read the result back.
    pub fn sign(&self, text: &str) -> Result<String, TlogError> {
        check_note_text(text)?;
        let mut note = String::with_capacity(text.len() + self.name.len() + 100);
        note.push_str(text);
        note.push('\n');
        note.push_str(&self.signature_line(text));
        Ok(note)
    }

    /// The signature line (ending in a newline) this key gives to `text`.
    fn signature_line(&self, text: &str) -> String {
        let signature = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(4 + ED25519_SIGNATURE_BYTES);
        blob.extend_from_slice(&self.key_id.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!(
            "{SIGNATURE_LINE_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(blob)
        )
    }

    fn from_seed(name: &str, seed: &[u8; ED25519_KEY_BYTES]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(name, &key.verifying_key());
        Self {
            name: name.to_owned(),
            key_id,
            key,
        }
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A public key that checks note signatures: key name, key ID and Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a verifier key `<name>+<hex key ID>+<base64(0x01 || public key32)>`, checking
    /// that the key ID matches and the key is not a weak (small-order) point.
    pub fn from_vkey(vkey: &str) -> Result<Self, TlogError> {
        let (name, key_id, key) = split_key_text(vkey)?;
        let public = ed25519_key_bytes(&key, "public key")?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| {
            bad_key("the public key is not a valid Ed25519 point; copy the verifier key again")
        })?;
        if key.is_weak() {
            return Err(bad_key(
                "the public key is a small-order (weak) Ed25519 point and cannot be trusted",
            ));
        }
        let computed = self::key_id(name, &key);
        if computed != key_id {
            return Err(bad_key(&format!(
                "key ID {key_id:08x} does not match the key, whose ID is {computed:08x}; the key \
                 text is corrupted or its parts come from different keys"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// The verifier key text `<name>+<hex key ID>+<base64(0x01 || public key32)>`.
    pub fn to_vkey(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_key(self.key.as_bytes())
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32-bit key ID (see [`NoteSigner::key_id`]).
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Strict RFC 8032 verification (canonical encodings, no small-order components).
    fn verifies(&self, text: &str, signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; ED25519_SIGNATURE_BYTES]>::try_from(signature) else {
            return false;
        };
        self.key
            .verify_strict(text.as_bytes(), &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

/// The text of a note that passed [`open_note`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedNote {
    /// The signed text, ending in a newline (the blank line and signatures removed).
    pub text: String,
    /// Names of the trusted keys whose signatures verified, in note order, once per key.
    pub verified_by: Vec<String>,
}

/// Opens a signed note against the trusted `verifiers`.
///
/// Accepts the note when at least one trusted key's signature verifies. Rejects it when any
/// signature line from a trusted (name, key ID) pair fails — including a repeated line of a
/// key that also signed correctly — and when it is malformed or has more than
/// [`NOTE_SIGNATURES_MAX`] signature lines. Signature lines of unknown (name, key ID) pairs
/// are ignored (they may be cosignatures of witnesses we do not follow).
pub fn open_note(note: &str, verifiers: &[NoteVerifier]) -> Result<OpenedNote, TlogError> {
    if note.len() > NOTE_BYTES_MAX {
        return Err(bad_note(&format!(
            "note is {} bytes, more than the {NOTE_BYTES_MAX}-byte limit",
            note.len()
        )));
    }
    check_no_control_characters(note)?;
    let split = note.rfind("\n\n").ok_or_else(|| {
        bad_note("no blank line between the text and the signatures (the text must end with a newline, then an empty line)")
    })?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    if signatures.is_empty() {
        return Err(bad_note("no signature lines after the blank line"));
    }
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(bad_note(
            "the last signature line does not end with a newline",
        ));
    };
    let mut verified_by: Vec<&NoteVerifier> = Vec::new();
    for (count, line) in signatures.split('\n').enumerate() {
        if count >= NOTE_SIGNATURES_MAX {
            return Err(bad_note(&format!(
                "more than {NOTE_SIGNATURES_MAX} signature lines"
            )));
        }
        let (name, key_id, signature) = parse_signature_line(line)?;
        let Some(verifier) = verifiers
            .iter()
            .find(|v| v.name == name && v.key_id == key_id)
        else {
            continue;
        };
        if !verifier.verifies(text, &signature) {
            return Err(TlogError::BadSignature {
                key: format!("{name}+{key_id:08x}"),
            });
        }
        if !verified_by.contains(&verifier) {
            verified_by.push(verifier);
        }
    }
    if verified_by.is_empty() {
        let trusted: Vec<String> = verifiers
            .iter()
            .map(|v| format!("{}+{:08x}", v.name, v.key_id))
            .collect();
        return Err(TlogError::NoVerifiedSignature {
            trusted: if trusted.is_empty() {
                "none configured".to_owned()
            } else {
                trusted.join(", ")
            },
        });
    }
    Ok(OpenedNote {
        text: text.to_owned(),
        verified_by: verified_by.iter().map(|v| v.name.clone()).collect(),
    })
}

/// Splits `— <name> <base64(key ID || signature)>` into its parts.
fn parse_signature_line(line: &str) -> Result<(&str, u32, Vec<u8>), TlogError> {
    let rest = line.strip_prefix(SIGNATURE_LINE_PREFIX).ok_or_else(|| {
        bad_note(&format!(
            "signature line {line:?} does not start with \"— \" (U+2014, space)"
        ))
    })?;
    let (name, encoded) = rest.split_once(' ').ok_or_else(|| {
        bad_note(&format!(
            "signature line {line:?} has no space between key name and signature"
        ))
    })?;
    if !is_valid_key_name(name) {
        return Err(bad_note(&format!(
            "signature line {line:?} has an invalid key name"
        )));
    }
    let blob = BASE64
        .decode(encoded)
        .map_err(|_| bad_note(&format!("signature line {line:?} is not standard base64")))?;
    if blob.len() < 5 {
        return Err(bad_note(&format!(
            "signature line {line:?} is shorter than a key ID plus a signature"
        )));
    }
    let (id_bytes, signature) = blob.split_at(4);
    let key_id = u32::from_be_bytes(
        id_bytes
            .try_into()
            .expect("split_at(4) gives exactly 4 bytes"),
    );
    Ok((name, key_id, signature.to_vec()))
}

/// `key ID = SHA-256(name || 0x0A || 0x01 || public key)[0:4]`, big-endian.
fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ALG_ED25519]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Splits `<name>+<hex key ID>+<base64 key>` (base64 may itself contain `+`).
fn split_key_text(text: &str) -> Result<(&str, u32, Vec<u8>), TlogError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_key(
            "expected <name>+<8 hex digit key ID>+<base64 key> with two '+' separators",
        ));
    };
    check_key_name(name)?;
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_key(&format!(
            "key ID {id_hex:?} must be exactly 8 hex digits"
        )));
    }
    let key_id = u32::from_str_radix(id_hex, 16)
        .map_err(|_| bad_key(&format!("key ID {id_hex:?} must be exactly 8 hex digits")))?;
    let key = BASE64
        .decode(key_b64)
        .map_err(|_| bad_key("the key part is not standard padded base64"))?;
    Ok((name, key_id, key))
}

/// Checks the type byte and length of `0x01 || 32 key bytes`.
fn ed25519_key_bytes(key: &[u8], what: &str) -> Result<[u8; ED25519_KEY_BYTES], TlogError> {
    let Some((&alg, bytes)) = key.split_first() else {
        return Err(bad_key(&format!("the {what} is empty")));
    };
    if alg != ALG_ED25519 {
        return Err(bad_key(&format!(
            "key type byte is 0x{alg:02x}; only Ed25519 (0x01) is supported"
        )));
    }
    <[u8; ED25519_KEY_BYTES]>::try_from(bytes).map_err(|_| {
        bad_key(&format!(
            "the Ed25519 {what} is {} bytes, expected {ED25519_KEY_BYTES}",
            bytes.len()
        ))
    })
}

fn encode_key(bytes: &[u8; ED25519_KEY_BYTES]) -> String {
    let mut blob = Vec::with_capacity(1 + ED25519_KEY_BYTES);
    blob.push(ALG_ED25519);
    blob.extend_from_slice(bytes);
    BASE64.encode(blob)
}

/// Key names (and checkpoint origins) are non-empty, without whitespace or `+`.
pub(crate) fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

fn check_key_name(name: &str) -> Result<(), TlogError> {
    if is_valid_key_name(name) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(bad_key(&format!(
            "key name {name:?} must be non-empty, without spaces or '+'"
        )))
    }
}

/// Note text rules shared by signing and opening.
fn check_note_text(text: &str) -> Result<(), TlogError> {
    if !text.ends_with('\n') {
        return Err(bad_note("the text to sign must end with a newline"));
    }
    if text.len() > NOTE_BYTES_MAX {
        return Err(bad_note(&format!(
            "the text is {} bytes, more than the {NOTE_BYTES_MAX}-byte limit",
            text.len()
        )));
    }
    check_no_control_characters(text)
}

/// Signed notes hold no ASCII control characters except newline (as Go's `note.Open`).
fn check_no_control_characters(text: &str) -> Result<(), TlogError> {
    match text.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        Some((at, c)) => Err(bad_note(&format!(
            "control character {c:?} at byte {at}; notes allow no ASCII control characters except newline"
        ))),
        None => Ok(()),
    }
}

fn bad_key(reason: &str) -> TlogError {
    TlogError::BadKey {
        reason: reason.to_owned(),
    }
}

fn bad_note(reason: &str) -> TlogError {
    TlogError::BadNote {
        reason: reason.to_owned(),
    }
}
