//! The canonical content hash that names "that exact version" of a recipe for QA approval.
//!
//! Canonical encoding: the bytes `cellops-recipe-canonical-v1\n` followed by the compact JSON
//! of the parsed `Recipe` (struct fields in declaration order, maps sorted by key, numbers
//! as parsed f64 in shortest round-trip form). Whitespace, comments, key order in the file,
//! and `37` versus `37.0` therefore do not change the hash; any change of meaning does.
//! The encoding is pinned by a golden test: changing it invalidates every approval.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::Recipe;

/// Prefix of the canonical encoding; bump the suffix if the encoding ever changes.
pub const CANONICAL_PREFIX: &[u8] = b"cellops-recipe-canonical-v1\n";

/// SHA-256 of a recipe's canonical encoding. Displays and parses as `sha256:<64 hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses `sha256:<64 lower-case hex digits>`.
    pub fn parse(text: &str) -> Result<ContentHash, HashParseError> {
        let hex_part = text.strip_prefix("sha256:").ok_or(HashParseError)?;
        let is_lower_hex = hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !is_lower_hex {
            return Err(HashParseError);
        }
        let mut bytes = [0_u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| HashParseError)?;
        Ok(ContentHash(bytes))
    }
}

/// A content hash was not `sha256:` followed by 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a recipe content hash (rule: `sha256:` followed by 64 lower-case hex digits)")]
pub struct HashParseError;

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ContentHash::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Recipe {
    /// The canonical encoding described in the module documentation.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut bytes = CANONICAL_PREFIX.to_vec();
        // Cannot fail: the recipe holds only strings, finite numbers, booleans, sequences
        // and maps with string-like keys, all of which serde_json encodes.
        let json = serde_json::to_vec(self).expect("a parsed recipe always encodes as JSON");
        bytes.extend_from_slice(&json);
        bytes
    }

    /// SHA-256 of `canonical_bytes()`: identifies this exact recipe content.
    pub fn content_hash(&self) -> ContentHash {
        ContentHash(Sha256::digest(self.canonical_bytes()).into())
    }

    /// Whether QA approved this exact content, given every approved (product, version, hash).
    pub fn approval_status<'a>(
        &self,
        approved: impl IntoIterator<Item = &'a ApprovedVersion>,
    ) -> ApprovalStatus {
        let version = self.version().to_string();
        let hash = self.content_hash();
        let mut other_content = None;
        for a in approved {
            if a.product != self.product() || a.version != version {
                continue;
            }
            if a.content_hash == hash {
                return ApprovalStatus::Approved;
            }
            other_content = Some(a.content_hash);
        }
        match other_content {
            Some(approved_hash) => ApprovalStatus::ContentChangedSinceApproval { approved_hash },
            None => ApprovalStatus::NotApproved,
        }
    }
}

/// One QA approval: product, version and the content hash that was signed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ApprovedVersion {
    /// Product id.
    pub product: String,
    /// Version as displayed (`1.2.0` or `3`).
    pub version: String,
    /// The approved content.
    pub content_hash: ContentHash,
}

/// Result of checking a recipe against the approved versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    /// This exact content is approved.
    Approved,
    /// No approval exists for this product and version.
    NotApproved,
    /// This product and version were approved with other content: the file was changed
    /// without a new version. It must not run; make it a new version and have it approved.
    ContentChangedSinceApproval {
        /// Hash of the content QA approved.
        approved_hash: ContentHash,
    },
}
