//! Whole-ledger verification: recomputes every chain hash, rebuilds the Merkle tree, checks
//! every signed checkpoint against it, and names the first damage and its class.
//!
//! The verifier trusts nothing but the records it is given and the public key it is given.

use crate::record::{self, Hash, Record};
use crate::store::{RowRef, StoredCheckpoint, StoredRow};
use cellops_tlog::{MerkleFrontier, NoteVerifier};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// The class of damage found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Damage {
    /// A record's content no longer matches its hash.
    Edited,
    /// Records are missing from the middle of the log.
    Deleted,
    /// Records are intact but stored at the wrong position.
    Reordered,
    /// Records are missing from the end: a signed checkpoint covers more than exist.
    Truncated,
    /// Records are internally consistent but are not the history the site signed.
    ForkedChain,
    /// A checkpoint's signature does not verify with the trusted key.
    BadSignature,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Damage::Edited => "edited",
            Damage::Deleted => "deleted",
            Damage::Reordered => "reordered",
            Damage::Truncated => "truncated",
            Damage::ForkedChain => "forked chain",
            Damage::BadSignature => "bad signature",
        })
    }
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub damage: Damage,
    /// The first bad record (or the checkpoint size for checkpoint problems).
    pub seq: u64,
    pub detail: String,
}

/// What verification saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub records_checked: u64,
    pub checkpoints_checked: u64,
    /// Size of the largest checkpoint whose signature and root verified.
    pub verified_checkpoint_size: u64,
    pub problem: Option<Finding>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// How far around a bad record to look for the position it belongs at.
const REORDER_WINDOW_RECORDS: u64 = 64;

/// Streaming verifier: feed records in storage order, then `finish`.
pub struct Verifier {
    trusted: NoteVerifier,
    checkpoints: Vec<StoredCheckpoint>,
    next_checkpoint: usize,
    expected_seq: u64,
    prev_hash: Hash,
    /// The rebuilt tree's right edge: checkpoints are checked in size order as the records
    /// reach them, so only the current root is ever needed (O(log n) memory).
    tree: MerkleFrontier,
    /// While a page hashed on other threads is fed: its subtree levels, from which the tree
    /// catches up with the linked records (in complete subtrees) when a checkpoint is due
    /// and at the end of the page. `None`: every linked record is pushed as it links.
    page: Option<PageTree>,
    report: VerifyReport,
    /// Records that arrived ahead of `expected_seq`, held back to tell a reordering (the
    /// missing record turns up soon) from a deletion (it never does).
    ahead: Vec<u64>,
    /// Reused buffer for the expected entry tail (no allocation per record).
    scratch: Vec<u8>,
}

impl Verifier {
    /// `checkpoints` in any order; `trusted` is the only key whose signatures count.
    pub fn new(trusted: NoteVerifier, mut checkpoints: Vec<StoredCheckpoint>) -> Verifier {
        checkpoints.sort_by_key(|c| c.size);
        let mut v = Verifier {
            trusted,
            checkpoints,
            next_checkpoint: 0,
            expected_seq: 1,
            prev_hash: record::genesis_hash(),
            tree: MerkleFrontier::new(),
            page: None,
            report: VerifyReport::default(),
            ahead: Vec::new(),
            scratch: Vec::with_capacity(256),
        };
        v.check_checkpoints_at(0);
        v
    }

    pub fn failed(&self) -> bool {
        self.report.problem.is_some()
    }

    fn fail(&mut self, damage: Damage, seq: u64, detail: String) {
        if self.report.problem.is_none() {
            self.report.problem = Some(Finding {
                damage,
                seq,
                detail,
            });
        }
    }

    /// Checks the next stored row: the fast path over the stored entry bytes (no parsing
    /// unless the record carries a signature), with the index columns checked against the
    /// entry so that no query can be pointed at the wrong record.
    pub fn feed_row(&mut self, row: &StoredRow) {
        self.feed_row_ref(row.as_row_ref());
    }

    /// [`Verifier::feed_row`] over borrowed row bytes.
    pub fn feed_row_ref(&mut self, row: RowRef<'_>) {
        if self.failed() {
            return;
        }
        let computed =
            record::chain_hash_of_digest(row.prev_hash, &Sha256::digest(row.entry).into());
        self.feed_row_hashed(row, &computed);
    }

    /// Checks a page of rows whose chain hashes and Merkle subtrees were computed on other
    /// threads ([`PageHashes::compute`]), exactly as [`Verifier::feed_row_ref`] checks them
    /// one by one: the same checks in the same order, the same first problem.
    pub fn feed_hashed_page<'a>(
        &mut self,
        hashes: &mut PageHashes,
        rows: impl Iterator<Item = RowRef<'a>>,
    ) {
        debug_assert_eq!(self.tree.len(), self.report.records_checked);
        self.page = Some(PageTree {
            base: self.tree.len(),
            levels: std::mem::take(&mut hashes.levels),
        });
        for (row, computed) in rows.zip(&hashes.chain) {
            self.feed_row_hashed(row, computed);
        }
        self.sync_tree();
        if let Some(page) = self.page.take() {
            hashes.levels = page.levels;
        }
    }

    /// The checks of [`Verifier::feed_row_ref`], with `computed` =
    /// `SHA-256(0x02 || row.prev_hash || SHA-256(row.entry))` already computed.
    fn feed_row_hashed(&mut self, row: RowRef<'_>, computed: &Hash) {
        if self.failed() || self.held_back(row.seq) {
            return;
        }
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match index_agrees(&row, &mut self.scratch) {
            IndexCheck::Agrees { signed } => {
                if signed {
                    let bound = row
                        .to_stored()
                        .and_then(|stored| Record::from_stored(&stored).ok())
                        .is_some_and(|r| record::signature_binds(&r));
                    if !bound {
                        return self.fail(
                            Damage::Edited,
                            row.seq,
                            format!(
                                "record {}: its e-signature is not bound to its content (signature copied or altered)",
                                row.seq
                            ),
                        );
                    }
                }
            }
            IndexCheck::BelongsAt(home) => {
                return self.fail(
                    Damage::Reordered,
                    row.seq,
                    format!(
                        "the record stored at position {} is intact but belongs at position {home}",
                        row.seq
                    ),
                );
            }
            IndexCheck::Differs(detail) => {
                return self.fail(
                    Damage::Edited,
                    row.seq,
                    format!("record {}: {detail}", row.seq),
                );
            }
        }
        if computed != row.hash {
            return self.fail(
                Damage::Edited,
                row.seq,
                format!(
                    "record {} ({}, stream {}) does not match its hash: its content was changed after it was recorded",
                    row.seq,
                    lossy(row.event_type),
                    lossy(row.stream)
                ),
            );
        }
        self.link(row.seq, row.prev_hash, row.hash);
    }

    /// Appends a checked record to the chain and the tree, or reports a broken link.
    fn link(&mut self, seq: u64, prev_hash: &Hash, hash: &Hash) {
        if *prev_hash != self.prev_hash {
            return self.fail(
                Damage::ForkedChain,
                seq,
                format!(
                    "record {seq} is self-consistent but does not follow record {}: it belongs to another history",
                    seq - 1
                ),
            );
        }
        self.prev_hash = *hash;
        self.expected_seq += 1;
        if self.page.is_none() {
            self.tree.push(cellops_tlog::leaf_hash(hash));
        }
        self.report.records_checked += 1;
        let linked = self.report.records_checked;
        if matches!(self.checkpoints.get(self.next_checkpoint), Some(next) if next.size <= linked) {
            self.sync_tree();
            self.check_checkpoints_at(linked);
        }
    }

    /// Brings the tree up to every linked record, from the current page's subtrees (the
    /// largest complete, aligned ones that fit). The records linked in a page are always
    /// its first rows, in order: after a row that does not link (held back or failed), no
    /// later row links.
    fn sync_tree(&mut self) {
        let Some(page) = &self.page else { return };
        let target = self.report.records_checked;
        while self.tree.len() < target {
            let len = self.tree.len();
            let at = len - page.base;
            let fits = 63 - (target - len).leading_zeros();
            let height = at
                .trailing_zeros()
                .min(len.trailing_zeros())
                .min(fits)
                .min(page.levels.len() as u32 - 1);
            self.tree.push_subtree(
                page.levels[height as usize][(at >> height) as usize],
                height,
            );
        }
    }

    /// Handles records that arrive ahead of the expected position; true when `seq` was
    /// held back or a problem was found.
    fn held_back(&mut self, seq: u64) -> bool {
        let expected = self.expected_seq;
        if let Some(&first_ahead) = self.ahead.first() {
            if seq == expected {
                self.fail(
                    Damage::Reordered,
                    expected,
                    format!("record {expected} appears after record {first_ahead} (records must be in seq order)"),
                );
                return true;
            }
            self.ahead.push(seq);
            if self.ahead.len() as u64 >= REORDER_WINDOW_RECORDS {
                self.fail_deleted();
            }
            return true;
        }
        if seq > expected {
            self.ahead.push(seq);
            return true;
        }
        if seq < expected {
            self.fail(
                Damage::Reordered,
                seq,
                format!(
                    "record {seq} appears after record {} (records must be in seq order)",
                    expected - 1
                ),
            );
            return true;
        }
        false
    }

    /// Checks the next record in storage order (records read from a bundle).
    pub fn feed(&mut self, r: &Record) {
        if self.failed() {
            return;
        }
        let expected = self.expected_seq;
        if let Some(&first_ahead) = self.ahead.first() {
            if r.seq == expected {
                return self.fail(
                    Damage::Reordered,
                    expected,
                    format!("record {expected} appears after record {first_ahead} (records must be in seq order)"),
                );
            }
            self.ahead.push(r.seq);
            if self.ahead.len() as u64 >= REORDER_WINDOW_RECORDS {
                self.fail_deleted();
            }
            return;
        }
        if r.seq > expected {
            self.ahead.push(r.seq);
            return;
        }
        if r.seq < expected {
            return self.fail(
                Damage::Reordered,
                r.seq,
                format!(
                    "record {} appears after record {} (records must be in seq order)",
                    r.seq,
                    expected - 1
                ),
            );
        }
        if r.computed_hash() != r.hash {
            if let Some(home) = belongs_elsewhere(r) {
                return self.fail(
                    Damage::Reordered,
                    r.seq,
                    format!(
                        "the record stored at position {} is intact but belongs at position {home}",
                        r.seq
                    ),
                );
            }
            return self.fail(
                Damage::Edited,
                r.seq,
                format!(
                    "record {} ({}, stream {}) does not match its hash: its content was changed after it was recorded",
                    r.seq, r.event_type, r.stream
                ),
            );
        }
        if !record::signature_binds(r) {
            return self.fail(
                Damage::Edited,
                r.seq,
                format!(
                    "record {}: its e-signature is not bound to its content (signature copied or altered)",
                    r.seq
                ),
            );
        }
        self.link(r.seq, &r.prev_hash, &r.hash);
    }

    /// Verifies every checkpoint of exactly `size` records against the rebuilt tree.
    fn check_checkpoints_at(&mut self, size: u64) {
        loop {
            // Checked before cloning: this runs once per record.
            match self.checkpoints.get(self.next_checkpoint) {
                Some(next) if next.size <= size && !self.failed() => {}
                _ => return,
            }
            let cp = self.checkpoints[self.next_checkpoint].clone();
            self.next_checkpoint += 1;
            self.report.checkpoints_checked += 1;
            let opened = match cellops_tlog::open_checkpoint(
                &cp.note,
                std::slice::from_ref(&self.trusted),
            ) {
                Ok(c) => c,
                Err(e) => {
                    return self.fail(
                        Damage::BadSignature,
                        cp.size,
                        format!("checkpoint of size {}: {e}", cp.size),
                    );
                }
            };
            if opened.size != cp.size || opened.root != cp.root {
                return self.fail(
                    Damage::BadSignature,
                    cp.size,
                    format!(
                        "checkpoint of size {}: the stored size or root differs from the signed note",
                        cp.size
                    ),
                );
            }
            if cp.size == 0 {
                continue;
            }
            // Checked as soon as the records reach it, so its size is the tree's.
            debug_assert_eq!(cp.size, self.tree.len());
            let root = self.tree.root();
            if root != opened.root {
                let after = self
                    .checkpoints
                    .iter()
                    .take(self.next_checkpoint - 1)
                    .map(|c| c.size)
                    .next_back()
                    .unwrap_or(0);
                return self.fail(
                    Damage::ForkedChain,
                    after + 1,
                    format!(
                        "records {} to {} do not match the signed checkpoint of size {}: history was rewritten after it was signed",
                        after + 1,
                        cp.size,
                        cp.size
                    ),
                );
            }
            self.report.verified_checkpoint_size = cp.size;
        }
    }

    fn fail_deleted(&mut self) {
        let expected = self.expected_seq;
        let next_present = self.ahead.iter().copied().min().unwrap_or(expected + 1);
        let detail = if next_present == expected + 1 {
            format!("record {expected} is missing (the next record present is {next_present})")
        } else {
            format!("records {expected} to {} are missing", next_present - 1)
        };
        self.fail(Damage::Deleted, expected, detail);
    }

    pub fn finish(mut self) -> VerifyReport {
        if !self.failed() && !self.ahead.is_empty() {
            self.fail_deleted();
        }
        if !self.failed()
            && let Some(cp) = self.checkpoints.get(self.next_checkpoint)
        {
            let size = self.tree.len();
            let largest = self.checkpoints.last().map_or(cp.size, |c| c.size);
            self.fail(
                    Damage::Truncated,
                    size + 1,
                    format!(
                        "the log ends at record {size} but a signed checkpoint covers {largest} records: records {} to {largest} are missing",
                        size + 1
                    ),
                );
        }
        self.report
    }
}

/// A page's subtree levels while it is fed, and the tree size where the page starts.
struct PageTree {
    base: u64,
    levels: Vec<Vec<Hash>>,
}

/// Hashes of a page of consecutive rows, computed on any thread before the rows are fed
/// ([`Verifier::feed_hashed_page`]); reused from page to page (no allocation per row).
#[derive(Default)]
pub struct PageHashes {
    /// Per row, `SHA-256(0x02 || prev_hash || SHA-256(entry))` from the stored bytes.
    chain: Vec<Hash>,
    /// `levels[0]`: per row, the leaf hash of its stored hash; `levels[h][i]`: the root of
    /// rows `i·2^h .. (i+1)·2^h` (only complete subtrees).
    levels: Vec<Vec<Hash>>,
}

impl PageHashes {
    /// Hashes `rows` (every entry, chain link, leaf and complete subtree of the page).
    pub fn compute<'a>(&mut self, rows: impl Iterator<Item = RowRef<'a>>) {
        self.chain.clear();
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].clear();
        for row in rows {
            let digest: Hash = Sha256::digest(row.entry).into();
            self.chain
                .push(record::chain_hash_of_digest(row.prev_hash, &digest));
            self.levels[0].push(cellops_tlog::leaf_hash(row.hash));
        }
        let mut height = 0;
        while self.levels[height].len() >= 2 {
            if self.levels.len() == height + 1 {
                self.levels.push(Vec::new());
            }
            let (lower, upper) = self.levels.split_at_mut(height + 1);
            let (lower, upper) = (&lower[height], &mut upper[0]);
            upper.clear();
            upper.extend(
                lower
                    .chunks_exact(2)
                    .map(|pair| cellops_tlog::node_hash(&pair[0], &pair[1])),
            );
            height += 1;
        }
        self.levels.truncate(height + 1);
    }
}

enum IndexCheck {
    Agrees { signed: bool },
    BelongsAt(u64),
    Differs(String),
}

/// Whether a row's index columns and position agree with its entry, reading only the
/// entry's fixed tail: `…,"seq":N,"signature":…,"site":S,"stream":T,"type":U,"v":1,"version":V}`
/// (member order is fixed by RFC 8785, and no JSON string can contain an unescaped quote, so
/// a tail that ends the entry is the entry's own). No search: the expected tail is built
/// from the index columns and compared with the end of the entry.
fn index_agrees(row: &RowRef<'_>, expected_tail: &mut Vec<u8>) -> IndexCheck {
    let disagree = || {
        IndexCheck::Differs("its index columns (stream, type, site) disagree with its entry".into())
    };
    expected_tail.clear();
    expected_tail.extend_from_slice(b",\"site\":");
    let quoted = quote_into(expected_tail, row.site)
        && {
            expected_tail.extend_from_slice(b",\"stream\":");
            quote_into(expected_tail, row.stream)
        }
        && {
            expected_tail.extend_from_slice(b",\"type\":");
            quote_into(expected_tail, row.event_type)
        };
    if !quoted {
        return IndexCheck::Differs("its index columns (stream, type, site) are not text".into());
    }
    const _: () = assert!(record::FORMAT_VERSION == 1, "update the expected tail");
    expected_tail.extend_from_slice(b",\"v\":1,\"version\":");
    // `…<tail><version digits>}`
    let Some(body) = row.entry.strip_suffix(b"}") else {
        return disagree();
    };
    let Some(before_version) = strip_digits(body) else {
        return disagree();
    };
    let Some(head) = before_version.strip_suffix(expected_tail.as_slice()) else {
        return if rfind(row.entry, b",\"site\":").is_none() {
            IndexCheck::Differs("its entry has no site member".into())
        } else {
            disagree()
        };
    };
    let (head, signed) = match head.strip_suffix(b",\"signature\":null") {
        Some(h) => (h, false),
        None => match rfind(head, b",\"signature\":{") {
            Some(at) => (&head[..at], true),
            None => return IndexCheck::Differs("its entry has no signature member".into()),
        },
    };
    // `…,"seq":<digits>`
    let entry_seq = strip_digits(head).and_then(|before| {
        before.strip_suffix(b",\"seq\":")?;
        std::str::from_utf8(&head[before.len()..])
            .ok()?
            .parse::<u64>()
            .ok()
    });
    match entry_seq {
        Some(seq) if seq == row.seq => IndexCheck::Agrees { signed },
        Some(home) => IndexCheck::BelongsAt(home),
        None => IndexCheck::Differs("its entry's seq is unreadable".into()),
    }
}

/// `text` without its trailing ASCII digits; `None` when it does not end in a digit.
fn strip_digits(text: &[u8]) -> Option<&[u8]> {
    let mut end = text.len();
    while end > 0 && text[end - 1].is_ascii_digit() {
        end -= 1;
    }
    (end < text.len()).then(|| &text[..end])
}

/// Position of the last occurrence of `needle` in `haystack`.
fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Appends `text` as RFC 8785 writes a JSON string. Index columns are plain ASCII (the
/// content rules allow nothing else), which is copied as it is; anything else goes through
/// the full escaper. False when `text` is not UTF-8 (then it cannot equal any entry text).
fn quote_into(out: &mut Vec<u8>, text: &[u8]) -> bool {
    let plain = text
        .iter()
        .all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(text);
        out.push(b'"');
        return true;
    }
    match std::str::from_utf8(text) {
        Ok(s) => {
            crate::jcs::write_string(out, s);
            true
        }
        Err(_) => false,
    }
}

/// Whether `r` is intact but sits at the wrong position: does it hash correctly as the
/// record with another seq nearby?
fn belongs_elsewhere(r: &Record) -> Option<u64> {
    let low = r.seq.saturating_sub(REORDER_WINDOW_RECORDS).max(1);
    let high = r.seq + REORDER_WINDOW_RECORDS;
    (low..=high).filter(|s| *s != r.seq).find(|s| {
        let mut moved = r.clone();
        moved.seq = *s;
        moved.computed_hash() == r.hash
    })
}
