//! Merkle tree hashing, proofs and verification: RFC vectors, a naive reference model and
//! property tests.

use cellops_tlog::{
    EMPTY_ROOT, Hash, MerkleTree, ProofKind, TlogError, consistency_proof_len, hash_from_base64,
    hash_from_hex, hash_to_base64, hash_to_hex, inclusion_proof_len, leaf_hash, node_hash,
    verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

// ---- A naive model written straight from RFC 9162 §2.1, for comparison. ----

fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = k_of(n);
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n == 1 {
        return Vec::new();
    }
    let k = k_of(n);
    if m < k {
        let mut p = naive_path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

fn naive_subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete {
            Vec::new()
        } else {
            vec![mth(leaves)]
        };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = naive_subproof(m, &leaves[..k], complete);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &leaves[k..], false);
        p.push(mth(&leaves[..k]));
        p
    }
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

fn h(hex_text: &str) -> Hash {
    hash_from_hex(hex_text).unwrap()
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    out[bit / 8 % 32] ^= 1 << (bit % 8);
    out
}

// ---- Vectors from standards §7.2 and §7.5. ----

#[test]
fn empty_tree_root_is_sha256_of_nothing() {
    assert_eq!(
        hash_to_hex(&EMPTY_ROOT),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let tree = MerkleTree::new();
    assert!(tree.is_empty());
    assert_eq!(tree.len(), 0);
    assert_eq!(tree.root(), EMPTY_ROOT);
    assert_eq!(tree.root_at(0).unwrap(), EMPTY_ROOT);
    assert_eq!(tree.leaf(0), None);
}

#[test]
fn rfc_vectors_for_small_trees() {
    assert_eq!(
        leaf_hash(b""),
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    let cases: [(&[&[u8]], &str); 3] = [
        (
            &[b"a"],
            "022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c",
        ),
        (
            &[b"a", b"b"],
            "b137985ff484fb600db93107c77b0365c80d78f5b429ded0fd97361d077999eb",
        ),
        (
            &[b"a", b"b", b"c"],
            "36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1",
        ),
    ];
    for (data, root_hex) in cases {
        let tree = MerkleTree::from_leaf_hashes(data.iter().map(|d| leaf_hash(d)));
        assert_eq!(hash_to_hex(&tree.root()), root_hex, "leaves {data:?}");
    }
}

fn ct_tree() -> MerkleTree {
    let data = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    MerkleTree::from_leaf_hashes(data.iter().map(|d| leaf_hash(&hex::decode(d).unwrap())))
}

#[test]
fn certificate_transparency_eight_leaves_root() {
    let tree = ct_tree();
    assert_eq!(tree.len(), 8);
    assert_eq!(
        hash_to_hex(&tree.root()),
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    );
}

#[test]
fn certificate_transparency_intermediate_roots_and_proofs() {
    // Roots and proofs published with the Certificate Transparency reference tests
    // (RFC 6962 test data, also used by transparency-dev/merkle).
    let tree = ct_tree();
    let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    for (i, root) in roots.iter().enumerate() {
        assert_eq!(
            hash_to_hex(&tree.root_at(i as u64 + 1).unwrap()),
            *root,
            "size {}",
            i + 1
        );
    }
    // Inclusion of leaf 5 in size 8.
    let proof = tree.inclusion_proof(5, 8).unwrap();
    let expected = [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ];
    assert_eq!(proof.iter().map(hash_to_hex).collect::<Vec<_>>(), expected);
    // Consistency 6 -> 8.
    let proof = tree.consistency_proof(6, 8).unwrap();
    let expected = [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ];
    assert_eq!(proof.iter().map(hash_to_hex).collect::<Vec<_>>(), expected);
    // Consistency 1 -> 8 and 2 -> 5.
    let proof = tree.consistency_proof(1, 8).unwrap();
    let expected = [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ];
    assert_eq!(proof.iter().map(hash_to_hex).collect::<Vec<_>>(), expected);
    let proof = tree.consistency_proof(2, 5).unwrap();
    let expected = [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ];
    assert_eq!(proof.iter().map(hash_to_hex).collect::<Vec<_>>(), expected);
}

// ---- Edge cases and errors. ----

#[test]
fn proofs_out_of_range_are_typed_errors() {
    let tree = MerkleTree::from_leaf_hashes(leaves(5));
    assert_eq!(
        tree.root_at(6),
        Err(TlogError::SizeOutOfRange { size: 6, len: 5 })
    );
    assert_eq!(
        tree.inclusion_proof(5, 5),
        Err(TlogError::IndexOutOfRange { index: 5, size: 5 })
    );
    assert_eq!(
        tree.inclusion_proof(0, 0),
        Err(TlogError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        tree.inclusion_proof(0, 6),
        Err(TlogError::SizeOutOfRange { size: 6, len: 5 })
    );
    assert_eq!(
        tree.consistency_proof(3, 2),
        Err(TlogError::SizesOutOfOrder {
            first: 3,
            second: 2
        })
    );
    assert_eq!(
        tree.consistency_proof(1, 6),
        Err(TlogError::SizeOutOfRange { size: 6, len: 5 })
    );
    assert_eq!(tree.leaf(5), None);
    assert_eq!(tree.leaf(4), Some(leaves(5)[4]));
}

#[test]
fn consistency_edge_cases_follow_the_application_rule() {
    let tree = MerkleTree::from_leaf_hashes(leaves(7));
    let r7 = tree.root();
    let r3 = tree.root_at(3).unwrap();
    // first == second: empty proof, equal roots only.
    assert_eq!(tree.consistency_proof(7, 7).unwrap(), Vec::<Hash>::new());
    assert_eq!(verify_consistency(7, 7, &r7, &r7, &[]), Ok(()));
    assert!(matches!(
        verify_consistency(7, 7, &r7, &r3, &[]),
        Err(TlogError::ProofMismatch {
            kind: ProofKind::Consistency,
            ..
        })
    ));
    assert!(matches!(
        verify_consistency(7, 7, &r7, &r7, &[r3]),
        Err(TlogError::ProofLength {
            expected: 0,
            got: 1,
            ..
        })
    ));
    // first == 0: trivially consistent with an empty proof, whatever the sizes.
    assert_eq!(tree.consistency_proof(0, 7).unwrap(), Vec::<Hash>::new());
    assert_eq!(verify_consistency(0, 7, &EMPTY_ROOT, &r7, &[]), Ok(()));
    assert_eq!(
        verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]),
        Ok(())
    );
    assert!(matches!(
        verify_consistency(0, 7, &EMPTY_ROOT, &r7, &[r3]),
        Err(TlogError::ProofLength { .. })
    ));
    // A shrinking log is a rollback.
    assert_eq!(
        verify_consistency(7, 3, &r7, &r3, &[]),
        Err(TlogError::SizesOutOfOrder {
            first: 7,
            second: 3
        })
    );
    // first < second needs a non-empty proof.
    assert!(matches!(
        verify_consistency(3, 7, &r3, &r7, &[]),
        Err(TlogError::ProofLength { .. })
    ));
}

#[test]
fn verify_inclusion_rejects_index_at_or_past_size() {
    let leaf = leaf_hash(b"x");
    assert_eq!(
        verify_inclusion(1, 1, &leaf, &[], &leaf),
        Err(TlogError::IndexOutOfRange { index: 1, size: 1 })
    );
    assert_eq!(
        verify_inclusion(0, 0, &leaf, &[], &EMPTY_ROOT),
        Err(TlogError::IndexOutOfRange { index: 0, size: 0 })
    );
    // A one-leaf tree: empty proof, the root is the leaf hash.
    assert_eq!(verify_inclusion(0, 1, &leaf, &[], &leaf), Ok(()));
}

#[test]
fn hash_text_round_trips_and_names_errors() {
    let hash = leaf_hash(b"a");
    assert_eq!(hash_from_hex(&hash_to_hex(&hash)).unwrap(), hash);
    assert_eq!(
        hash_from_hex(&hash_to_hex(&hash).to_uppercase()).unwrap(),
        hash
    );
    assert_eq!(hash_from_base64(&hash_to_base64(&hash)).unwrap(), hash);
    let short = hash_from_hex("abcd").unwrap_err().to_string();
    assert!(short.contains("4 characters, expected 64"), "{short}");
    let not_hex = hash_from_hex(&"zz".repeat(32)).unwrap_err().to_string();
    assert!(not_hex.contains("not hexadecimal"), "{not_hex}");
    let wrong_len = hash_from_base64("AAAA").unwrap_err().to_string();
    assert!(wrong_len.contains("3 bytes, expected 32"), "{wrong_len}");
}

// ---- Exhaustive agreement with the naive model on small trees. ----

#[test]
fn every_root_proof_and_pair_matches_the_naive_model_up_to_40_leaves() {
    let all = leaves(40);
    let tree = MerkleTree::from_leaf_hashes(all.iter().copied());
    for size in 0..=all.len() {
        let root = mth(&all[..size]);
        assert_eq!(tree.root_at(size as u64).unwrap(), root, "root_at({size})");
        for index in 0..size {
            let proof = tree.inclusion_proof(index as u64, size as u64).unwrap();
            assert_eq!(
                proof,
                naive_path(index, &all[..size]),
                "PATH({index}, {size})"
            );
            assert_eq!(proof.len(), inclusion_proof_len(index as u64, size as u64));
            verify_inclusion(index as u64, size as u64, &all[index], &proof, &root).unwrap();
        }
        for first in 1..size {
            let proof = tree.consistency_proof(first as u64, size as u64).unwrap();
            assert_eq!(
                proof,
                naive_subproof(first, &all[..size], true),
                "PROOF({first}, {size})"
            );
            assert_eq!(
                proof.len(),
                consistency_proof_len(first as u64, size as u64)
            );
            let first_root = mth(&all[..first]);
            verify_consistency(first as u64, size as u64, &first_root, &root, &proof).unwrap();
        }
    }
}

// ---- Property tests on random sizes up to 300. ----

fn size_and_index() -> impl Strategy<Value = (usize, usize)> {
    (1usize..=300).prop_flat_map(|size| (Just(size), 0..size))
}

fn pair() -> impl Strategy<Value = (usize, usize)> {
    (1usize..=300).prop_flat_map(|second| (0..=second, Just(second)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn root_at_matches_naive_mth(len in 0usize..=300, seed in any::<u64>()) {
        let all: Vec<Hash> = (0..len as u64).map(|i| leaf_hash(&(i ^ seed).to_le_bytes())).collect();
        let tree = MerkleTree::from_leaf_hashes(all.iter().copied());
        prop_assert_eq!(tree.len(), len as u64);
        prop_assert_eq!(tree.root(), mth(&all));
        for size in [0, len / 3, len / 2, len.saturating_sub(1), len] {
            prop_assert_eq!(tree.root_at(size as u64).unwrap(), mth(&all[..size]));
        }
    }

    #[test]
    fn inclusion_proofs_verify_and_tampering_fails(
        (size, index) in size_and_index(),
        extra in 0usize..20,
        bit in 0usize..256,
        other in any::<prop::sample::Index>(),
    ) {
        let all = leaves(size + extra);
        let tree = MerkleTree::from_leaf_hashes(all.iter().copied());
        let (size_u, index_u) = (size as u64, index as u64);
        let root = tree.root_at(size_u).unwrap();
        let proof = tree.inclusion_proof(index_u, size_u).unwrap();
        prop_assert_eq!(&proof, &naive_path(index, &all[..size]));
        prop_assert!(verify_inclusion(index_u, size_u, &all[index], &proof, &root).is_ok());

        // Any flipped bit in any proof hash fails.
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i] = flip(&bad[i], bit);
            prop_assert!(verify_inclusion(index_u, size_u, &all[index], &bad, &root).is_err());
        }
        // A flipped leaf or root fails.
        prop_assert!(verify_inclusion(index_u, size_u, &flip(&all[index], bit), &proof, &root).is_err());
        prop_assert!(verify_inclusion(index_u, size_u, &all[index], &proof, &flip(&root, bit)).is_err());
        // Another index with the same leaf and proof fails.
        let wrong_index = other.index(size) as u64;
        if wrong_index != index_u {
            prop_assert!(verify_inclusion(wrong_index, size_u, &all[index], &proof, &root).is_err());
        }
        // Dropping or adding a hash fails.
        if !proof.is_empty() {
            prop_assert!(verify_inclusion(index_u, size_u, &all[index], &proof[1..], &root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(index_u, size_u, &all[index], &longer, &root).is_err());
        // The same proof against a bigger tree's root fails (when that root differs).
        if extra > 0 {
            let bigger = tree.root();
            prop_assert!(verify_inclusion(index_u, size_u + extra as u64, &all[index], &proof, &bigger).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_tampering_fails(
        (first, second) in pair(),
        bit in 0usize..256,
    ) {
        let all = leaves(second);
        let tree = MerkleTree::from_leaf_hashes(all.iter().copied());
        let (f, s) = (first as u64, second as u64);
        let first_root = tree.root_at(f).unwrap();
        let second_root = tree.root_at(s).unwrap();
        let proof = tree.consistency_proof(f, s).unwrap();
        if first > 0 && first < second {
            prop_assert_eq!(&proof, &naive_subproof(first, &all, true));
        } else {
            prop_assert!(proof.is_empty());
        }
        prop_assert!(verify_consistency(f, s, &first_root, &second_root, &proof).is_ok());

        if first == 0 {
            return Ok(());
        }
        // Flipped bits in either root fail.
        prop_assert!(verify_consistency(f, s, &flip(&first_root, bit), &second_root, &proof).is_err());
        prop_assert!(verify_consistency(f, s, &first_root, &flip(&second_root, bit), &proof).is_err());
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i] = flip(&bad[i], bit);
            prop_assert!(verify_consistency(f, s, &first_root, &second_root, &bad).is_err());
        }
        if !proof.is_empty() {
            prop_assert!(verify_consistency(f, s, &first_root, &second_root, &proof[1..]).is_err());
            // The older root of a different size does not pass.
            if first > 1 {
                let older = tree.root_at(f - 1).unwrap();
                prop_assert!(verify_consistency(f, s, &older, &second_root, &proof).is_err());
            }
        }
        // A diverging newer tree (one leaf replaced before `first`) is not consistent.
        let mut forked = all.clone();
        forked[first - 1] = leaf_hash(b"forked");
        let forked_tree = MerkleTree::from_leaf_hashes(forked);
        if first < second {
            let forked_proof = forked_tree.consistency_proof(f, s).unwrap();
            prop_assert!(verify_consistency(f, s, &first_root, &forked_tree.root(), &forked_proof).is_err());
        } else {
            prop_assert!(verify_consistency(f, s, &first_root, &forked_tree.root(), &[]).is_err());
        }
    }
}

#[test]
fn frontier_root_equals_the_tree_root() {
    let mut tree = MerkleTree::new();
    let mut frontier = cellops_tlog::MerkleFrontier::new();
    assert_eq!(frontier.root(), EMPTY_ROOT);
    let mut leaves = Vec::new();
    for i in 0u32..300 {
        let leaf = leaf_hash(&i.to_be_bytes());
        leaves.push(leaf);
        tree.push(leaf);
        frontier.push(leaf);
        assert_eq!(frontier.len(), tree.len());
        assert_eq!(frontier.root(), tree.root(), "size {}", i + 1);
        assert_eq!(frontier.root(), mth(&leaves), "size {}", i + 1);
    }
}

#[test]
fn frontier_subtrees_equal_their_leaves() {
    // Every way of cutting 300 leaves into aligned complete subtrees gives the same roots as
    // pushing the leaves one by one.
    let leaves: Vec<_> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for max_height in 0..9u32 {
        let mut frontier = cellops_tlog::MerkleFrontier::new();
        let mut at = 0usize;
        while at < leaves.len() {
            let height = (0..=max_height)
                .rev()
                .find(|h| at.is_multiple_of(1 << h) && at + (1 << h) <= leaves.len())
                .unwrap();
            let block = &leaves[at..at + (1 << height)];
            frontier.push_subtree(mth(block), height);
            at += block.len();
            assert_eq!(frontier.len(), at as u64);
            assert_eq!(
                frontier.root(),
                mth(&leaves[..at]),
                "size {at}, height {height}"
            );
        }
    }
}

#[test]
#[should_panic(expected = "cannot start at leaf 1")]
fn frontier_refuses_a_misaligned_subtree() {
    let mut frontier = cellops_tlog::MerkleFrontier::new();
    frontier.push(leaf_hash(b"a"));
    frontier.push_subtree(leaf_hash(b"b"), 1);
}

#[test]
fn short_messages_hash_as_sha256() {
    use sha2::{Digest, Sha256};
    let bytes: Vec<u8> = (0..=255u8).cycle().skip(7).take(200).collect();
    for len in 0..=cellops_tlog::SHORT_MESSAGE_MAX {
        let message = &bytes[..len];
        let expected: [u8; 32] = Sha256::digest(message).into();
        assert_eq!(
            cellops_tlog::sha256_short(&[message]),
            expected,
            "{len} bytes"
        );
        let (a, b) = message.split_at(len / 3);
        assert_eq!(
            cellops_tlog::sha256_short(&[a, &[], b]),
            expected,
            "{len} bytes in parts"
        );
    }
    // Leaves longer than a short message take the streaming path; both agree.
    for len in [117, 118, 119, 200] {
        let mut prefixed = vec![0u8];
        prefixed.extend_from_slice(&bytes[..len]);
        let expected: [u8; 32] = Sha256::digest(&prefixed).into();
        assert_eq!(leaf_hash(&bytes[..len]), expected, "leaf of {len} bytes");
    }
}

#[test]
#[should_panic(expected = "at most 119 bytes")]
fn short_messages_are_short() {
    cellops_tlog::sha256_short(&[&[0u8; 100], &[0u8; 20]]);
}
