//! Proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2), trusting nothing but the inputs.

use crate::{Hash, ProofKind, TlogError, node_hash};

/// Number of hashes in the inclusion proof of leaf `index` in a tree of `size` leaves
/// (requires `index < size`): inner nodes below the split from the right edge plus the
/// left-border subtrees above it.
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    debug_assert!(index < size, "inclusion_proof_len needs index < size");
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = (index >> inner).count_ones();
    (inner + border) as usize
}

/// Number of hashes in the consistency proof between sizes `first` and `second`
/// (`0 ≤ first ≤ second`); 0 when `first == 0` or `first == second`.
pub fn consistency_proof_len(first: u64, second: u64) -> usize {
    debug_assert!(
        first <= second,
        "consistency_proof_len needs first <= second"
    );
    if first == 0 || first == second {
        return 0;
    }
    let inner_full = 64 - ((first - 1) ^ (second - 1)).leading_zeros();
    let border = ((first - 1) >> inner_full).count_ones();
    let shift = first.trailing_zeros();
    // The proof's first hash is the older tree's rightmost complete subtree, unless the
    // older tree is itself complete (a power of two), whose root the verifier already has.
    let seed = usize::from(!first.is_power_of_two());
    seed + (inner_full - shift + border) as usize
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is `root`,
/// using the RFC 9162 §2.1.3.2 algorithm.
///
/// Fails with [`TlogError::IndexOutOfRange`] when `index >= size`, [`TlogError::ProofLength`]
/// when the proof has the wrong number of hashes, and [`TlogError::ProofMismatch`] when it
/// does not lead to `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), TlogError> {
    if index >= size {
        return Err(TlogError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(TlogError::ProofLength {
            kind: ProofKind::Inclusion,
            expected,
            got: proof.len(),
            detail: format!("index {index} of size {size}"),
        });
    }
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf_hash;
    for p in proof {
        if s_n == 0 {
            return Err(mismatch(
                ProofKind::Inclusion,
                "proof is longer than the path",
            ));
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(mismatch(
            ProofKind::Inclusion,
            "proof is shorter than the path",
        ));
    }
    if r != *root {
        return Err(mismatch(
            ProofKind::Inclusion,
            &format!("leaf {index} with this proof does not hash to the root of size {size}"),
        ));
    }
    Ok(())
}

/// Checks that the tree of `second` leaves with root `second_root` extends the tree of
/// `first` leaves with root `first_root`, using the RFC 9162 §2.1.4.2 algorithm.
///
/// Edge cases (cellops application rule, standards §7.4): `first == second` is consistent
/// only with an empty proof and equal roots; `first == 0` is trivially consistent with an
/// empty proof (`first_root` is not examined: every tree extends the empty tree);
/// `first > second` is [`TlogError::SizesOutOfOrder`] (a rollback).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), TlogError> {
    if first > second {
        return Err(TlogError::SizesOutOfOrder { first, second });
    }
    let expected = consistency_proof_len(first, second);
    if proof.len() != expected {
        return Err(TlogError::ProofLength {
            kind: ProofKind::Consistency,
            expected,
            got: proof.len(),
            detail: format!("first {first} and second {second}"),
        });
    }
    if first == second {
        if first_root != second_root {
            return Err(mismatch(
                ProofKind::Consistency,
                &format!("both trees have size {first} but their roots differ"),
            ));
        }
        return Ok(());
    }
    if first == 0 {
        return Ok(());
    }
    let (seed, rest) = if first.is_power_of_two() {
        (first_root, proof)
    } else {
        // Cannot fail: the length check above requires at least one hash in this case.
        proof
            .split_first()
            .expect("a non-power-of-two first size has a seed hash")
    };
    let (f_r, s_r, s_n) = fold_consistency(first, second, seed, rest)?;
    if s_n != 0 {
        return Err(mismatch(
            ProofKind::Consistency,
            "proof is shorter than the path",
        ));
    }
    if f_r != *first_root {
        return Err(mismatch(
            ProofKind::Consistency,
            &format!("proof does not reproduce the root of the older size {first}"),
        ));
    }
    if s_r != *second_root {
        return Err(mismatch(
            ProofKind::Consistency,
            &format!("proof does not reproduce the root of the newer size {second}"),
        ));
    }
    Ok(())
}

/// The RFC 9162 §2.1.4.2 loop: returns the recomputed older root, newer root and the
/// final `sn` (which must be 0).
fn fold_consistency(
    first: u64,
    second: u64,
    seed: &Hash,
    rest: &[Hash],
) -> Result<(Hash, Hash, u64), TlogError> {
    let mut f_n = first - 1;
    let mut s_n = second - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let mut f_r = *seed;
    let mut s_r = *seed;
    for c in rest {
        if s_n == 0 {
            return Err(mismatch(
                ProofKind::Consistency,
                "proof is longer than the path",
            ));
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    Ok((f_r, s_r, s_n))
}

fn mismatch(kind: ProofKind, detail: &str) -> TlogError {
    TlogError::ProofMismatch {
        kind,
        detail: detail.to_owned(),
    }
}
