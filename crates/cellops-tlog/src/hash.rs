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
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Hash of an interior node from its two children: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

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
