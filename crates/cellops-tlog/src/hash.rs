//! RFC 9162 §2.1.1 hashing and text encodings of hashes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::TlogError;

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root (32 bytes).
pub type Hash = [u8; 32];

/// Domain-separation prefix of leaf hashes (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of interior node hashes (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// Root of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1), `e3b0c442…b855`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Hash of one leaf's raw bytes: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    if data.len() < SHORT_MESSAGE_MAX {
        return sha256_short(&[&[LEAF_PREFIX], data]);
    }
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Hash of an interior node from its two children: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256_short(&[&[NODE_PREFIX], left, right])
}

/// Longest message [`sha256_short`] hashes: two blocks less the padding's 9 bytes.
pub const SHORT_MESSAGE_MAX: usize = 2 * 64 - 9;

/// SHA-256 of the concatenated `parts`, at most [`SHORT_MESSAGE_MAX`] bytes in all: the
/// message is padded in place (FIPS 180-4 §5.1.1) and compressed in one call, without the
/// streaming hasher's buffering — a leaf, node or chain hash is one or two blocks, and
/// verification computes four such hashes per record.
///
/// # Panics
/// When the parts are longer than [`SHORT_MESSAGE_MAX`] (a caller's bug).
pub fn sha256_short(parts: &[&[u8]]) -> Hash {
    use sha2::digest::generic_array::GenericArray;
    let mut message = [0u8; 128];
    let mut len = 0;
    for part in parts {
        assert!(
            len + part.len() <= SHORT_MESSAGE_MAX,
            "sha256_short hashes at most {SHORT_MESSAGE_MAX} bytes"
        );
        message[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    message[len] = 0x80;
    let count = if len + 9 <= 64 { 1 } else { 2 };
    message[count * 64 - 8..count * 64].copy_from_slice(&(len as u64 * 8).to_be_bytes());
    let blocks = [
        GenericArray::clone_from_slice(&message[..64]),
        GenericArray::clone_from_slice(&message[64..]),
    ];
    let mut state = SHA256_INITIAL_STATE;
    sha2::compress256(&mut state, &blocks[..count]);
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// SHA-256's initial hash value (FIPS 180-4 §5.3.3).
const SHA256_INITIAL_STATE: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Lower-case hex text of a hash (64 characters), for JSON and logs.
pub fn hash_to_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

/// Parses 64 hex digits (either case) into a hash; the error says what is wrong.
pub fn hash_from_hex(text: &str) -> Result<Hash, TlogError> {
    if text.len() != 64 {
        return Err(TlogError::BadHash {
            reason: format!("hex hash has {} characters, expected 64", text.len()),
        });
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).map_err(|err| TlogError::BadHash {
        reason: format!("hex hash is not hexadecimal ({err})"),
    })?;
    Ok(hash)
}

/// Standard base64 (RFC 4648 §4, padded) text of a hash, as in checkpoints (44 characters).
pub fn hash_to_base64(hash: &Hash) -> String {
    BASE64.encode(hash)
}

/// Parses standard padded base64 of exactly 32 bytes into a hash.
pub fn hash_from_base64(text: &str) -> Result<Hash, TlogError> {
    let bytes = BASE64.decode(text).map_err(|err| TlogError::BadHash {
        reason: format!("base64 hash is not standard padded base64 ({err})"),
    })?;
    Hash::try_from(bytes.as_slice()).map_err(|_| TlogError::BadHash {
        reason: format!("base64 hash decodes to {} bytes, expected 32", bytes.len()),
    })
}
