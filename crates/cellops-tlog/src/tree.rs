//! Append-only in-memory Merkle tree (RFC 9162 §2.1) that keeps every complete subtree.

use std::fmt;

use crate::{EMPTY_ROOT, Hash, TlogError, hash_to_hex, node_hash};

/// Append-only Merkle tree over leaf hashes (RFC 9162 §2.1.1).
///
/// It stores every complete, aligned subtree hash: level `k` holds the hash of leaves
/// `[i·2^k, (i+1)·2^k)` for every `i` whose range is fully present. Any root of an earlier
/// size, any inclusion proof and any consistency proof is then assembled from
/// O(log² n) stored hashes and O(log n) fresh node hashes, without touching the leaves.
/// Memory: about `2 · n · 32` bytes for `n` leaves (plus `Vec` growth slack).
///
/// Architecture invariant: the tree never forgets or rewrites a leaf; `push` is the only
/// mutation.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` are the leaf hashes; `levels[k][i]` is the root of the complete subtree of
    /// leaves `[i << k, (i + 1) << k)`. Invariant: `levels[k].len() == len >> k` for every
    /// stored level, and there is a level for every `k` with `len >> k >= 1`.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// An empty tree (size 0, root [`EMPTY_ROOT`]).
    pub fn new() -> Self {
        Self { levels: Vec::new() }
    }

    /// Builds a tree holding `leaf_hashes` in order (each already a [`crate::leaf_hash`]).
    pub fn from_leaf_hashes(leaf_hashes: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = Self::new();
        for hash in leaf_hashes {
            tree.push(hash);
        }
        tree
    }

    /// Appends one leaf, given as its leaf hash (`SHA-256(0x00 || data)`, see
    /// [`crate::leaf_hash`]). Amortised cost: at most 2 node hashes, O(1) on average.
    pub fn push(&mut self, leaf_hash: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf_hash);
        // Each time a level gets an even number of hashes, its last two form a new complete
        // subtree one level up.
        let mut level = 0;
        while self.levels[level].len() & 1 == 0 {
            let row = &self.levels[level];
            let parent = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
        debug_assert!(self.check_level_lengths());
    }

    /// Number of leaves in the tree.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// True when the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hash at 0-based `index`, or `None` past the end.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        let leaves = self.levels.first()?;
        leaves.get(usize::try_from(index).ok()?).copied()
    }

    /// Root of the whole tree (RFC 9162 `MTH(D[n])`); [`EMPTY_ROOT`] when empty.
    pub fn root(&self) -> Hash {
        self.root_of_size(self.len())
    }

    /// Root of the tree made of the first `size` leaves (RFC 9162 `MTH(D[0:size])`);
    /// [`EMPTY_ROOT`] for size 0. Errors when `size` exceeds [`Self::len`].
    pub fn root_at(&self, size: u64) -> Result<Hash, TlogError> {
        self.check_size(size)?;
        Ok(self.root_of_size(size))
    }

    /// Inclusion proof of leaf `index` in the tree of the first `size` leaves: the RFC 9162
    /// §2.1.3.1 `PATH(index, D[0:size])`, sibling hashes ordered from the leaf up.
    ///
    /// Errors when `size` exceeds [`Self::len`] or `index >= size` (so size 0 has no proofs).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TlogError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TlogError::IndexOutOfRange { index, size });
        }
        // Walk down from the root, noting the sibling of each subtree that holds the leaf.
        let mut path = Vec::with_capacity(crate::inclusion_proof_len(index, size));
        let (mut lo, mut hi) = (0u64, size);
        while hi - lo > 1 {
            let k = split_point(hi - lo);
            if index < lo + k {
                path.push(self.subtree_hash(lo + k, hi));
                hi = lo + k;
            } else {
                path.push(self.subtree_hash(lo, lo + k));
                lo += k;
            }
        }
        path.reverse();
        Ok(path)
    }

    /// Consistency proof between the trees of the first `first` and the first `second`
    /// leaves: the RFC 9162 §2.1.4.1 `PROOF(first, D[0:second])`.
    ///
    /// Edge cases (RFC 9162 §2.1.4 and the cellops application rule): `first == 0` and
    /// `first == second` give an empty proof, which [`crate::verify_consistency`] accepts
    /// (for equal sizes only when the roots are equal). Errors when `second` exceeds
    /// [`Self::len`] or `first > second`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, TlogError> {
        self.check_size(second)?;
        if first > second {
            return Err(TlogError::SizesOutOfOrder { first, second });
        }
        if first == 0 || first == second {
            return Ok(Vec::new());
        }
        // Walk down SUBPROOF(m, D[lo:hi], complete) from the root; the hashes found on the
        // way down are emitted last, so collect them and reverse.
        let mut outer = Vec::new();
        let mut terminal = None;
        let (mut lo, mut hi, mut complete) = (0u64, second, true);
        loop {
            let n = hi - lo;
            let m = first - lo;
            if m == n {
                if !complete {
                    terminal = Some(self.subtree_hash(lo, hi));
                }
                break;
            }
            let k = split_point(n);
            if m <= k {
                outer.push(self.subtree_hash(lo + k, hi));
                hi = lo + k;
            } else {
                outer.push(self.subtree_hash(lo, lo + k));
                lo += k;
                complete = false;
            }
        }
        let mut proof = Vec::with_capacity(outer.len() + 1);
        proof.extend(terminal);
        proof.extend(outer.into_iter().rev());
        debug_assert_eq!(proof.len(), crate::consistency_proof_len(first, second));
        Ok(proof)
    }

    fn check_size(&self, size: u64) -> Result<(), TlogError> {
        let len = self.len();
        if size > len {
            return Err(TlogError::SizeOutOfRange { size, len });
        }
        Ok(())
    }

    /// Root of the first `size` leaves; `size` must be ≤ `len` (checked by callers).
    fn root_of_size(&self, size: u64) -> Hash {
        if size == 0 {
            EMPTY_ROOT
        } else {
            self.subtree_hash(0, size)
        }
    }

    /// `MTH(D[start:end])` for a range that occurs in RFC 9162's recursion: non-empty,
    /// `end ≤ len`, and `start` a multiple of the largest power of two ≤ `end - start`.
    ///
    /// Such a range is a run of complete aligned subtrees of strictly decreasing size (the
    /// binary digits of its length); its hash folds them from the right.
    fn subtree_hash(&self, start: u64, end: u64) -> Hash {
        debug_assert!(start < end, "empty subtree [{start}, {end})");
        debug_assert!(
            end <= self.len(),
            "subtree end {end} past len {}",
            self.len()
        );
        let mut acc: Option<Hash> = None;
        let mut block_end = end;
        let mut remaining = end - start;
        while remaining > 0 {
            let level = remaining.trailing_zeros();
            let block_size = 1u64 << level;
            let block_start = block_end - block_size;
            debug_assert_eq!(block_start % block_size, 0, "unaligned subtree");
            let block = self.stored(level, block_start >> level);
            acc = Some(match acc {
                None => block,
                Some(right) => node_hash(&block, &right),
            });
            block_end = block_start;
            remaining -= block_size;
        }
        acc.expect("the range is non-empty, so the loop ran at least once")
    }

    /// The stored complete-subtree hash at `level`, position `position`.
    fn stored(&self, level: u32, position: u64) -> Hash {
        // Cannot fail for ranges inside the tree: `push` stores every complete subtree,
        // and positions are below `len >> level`, which fits in `usize` like `len`.
        let position = usize::try_from(position).expect("position < len, which fits in usize");
        self.levels[level as usize][position]
    }

    fn check_level_lengths(&self) -> bool {
        let len = self.len();
        self.levels
            .iter()
            .enumerate()
            .all(|(level, row)| row.len() as u64 == len >> level)
    }
}

impl fmt::Debug for MerkleTree {
    /// Prints the size and root only: a tree may hold millions of hashes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleTree")
            .field("len", &self.len())
            .field("root", &hash_to_hex(&self.root()))
            .finish()
    }
}

/// RFC 9162's `k`: the largest power of two strictly less than `n` (requires `n ≥ 2`).
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2, "split_point needs n >= 2, got {n}");
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The right edge of an append-only Merkle tree: the roots of its complete subtrees, one per
/// binary digit of the size (O(log n) hashes). It answers the root of the tree as it is now,
/// and nothing older — what a verifier that streams the leaves once needs; equal to
/// [`MerkleTree`]'s root for every size (test `frontier_root_equals_the_tree_root`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MerkleFrontier {
    len: u64,
    /// Roots of the complete subtrees that make up the tree, largest (leftmost) first.
    peaks: Vec<Hash>,
}

impl MerkleFrontier {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one leaf, given as its leaf hash. At most `log2(n)` node hashes, one on
    /// average.
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut hash = leaf_hash;
        // Like a binary counter: every trailing one bit of the size merges two subtrees.
        let mut carry = self.len;
        while carry & 1 == 1 {
            let left = self.peaks.pop().expect("one peak per set bit of len");
            hash = node_hash(&left, &hash);
            carry >>= 1;
        }
        self.peaks.push(hash);
        self.len += 1;
    }

    /// Appends a complete subtree of `2^height` leaves, given as its root: the same tree as
    /// pushing those leaves one by one, without hashing them again (a verifier that hashes
    /// blocks of leaves on several threads joins their roots here).
    ///
    /// # Panics
    /// When the size is not a multiple of `2^height` (the subtree would not be complete in
    /// the RFC 9162 tree) or `height` is 64 or more: a caller's bug, not a data condition.
    pub fn push_subtree(&mut self, root: Hash, height: u32) {
        assert!(
            height < 64 && self.len.trailing_zeros() >= height,
            "a subtree of 2^{height} leaves cannot start at leaf {}",
            self.len
        );
        let mut hash = root;
        // The binary counter again, starting at bit `height`.
        let mut carry = self.len >> height;
        while carry & 1 == 1 {
            let left = self.peaks.pop().expect("one peak per set bit of len");
            hash = node_hash(&left, &hash);
            carry >>= 1;
        }
        self.peaks.push(hash);
        self.len += 1 << height;
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root of the tree of all leaves pushed so far (RFC 9162 `MTH(D[n])`).
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(last) = peaks.next() else {
            return EMPTY_ROOT;
        };
        peaks.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

impl fmt::Debug for MerkleFrontier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleFrontier")
            .field("len", &self.len)
            .field("root", &hash_to_hex(&self.root()))
            .finish()
    }
}
