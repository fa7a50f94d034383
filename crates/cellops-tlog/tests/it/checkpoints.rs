//! Checkpoint bodies, signed checkpoints and the independent verifier entry points.

use cellops_tlog::{
    CHECKPOINT_EXTENSION_LINES_MAX, Checkpoint, EMPTY_ROOT, Hash, MerkleTree, NoteSigner,
    NoteVerifier, ProofKind, TlogError, hash_to_base64, leaf_hash, open_checkpoint,
    sign_checkpoint, verify_consistency_between_checkpoints, verify_inclusion_against_checkpoint,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const ORIGIN: &str = "cellops.example/site-TYO/audit";

fn log_signer() -> NoteSigner {
    NoteSigner::generate(ORIGIN, &mut ChaCha20Rng::seed_from_u64(42)).unwrap()
}

fn tree(n: u64) -> MerkleTree {
    MerkleTree::from_leaf_hashes((0..n).map(|i| leaf_hash(format!("event {i}").as_bytes())))
}

fn checkpoint_of(tree: &MerkleTree, size: u64) -> Checkpoint {
    Checkpoint {
        origin: ORIGIN.to_owned(),
        size,
        root: tree.root_at(size).unwrap(),
        extensions: Vec::new(),
    }
}

fn bad_line(result: Result<Checkpoint, TlogError>) -> usize {
    match result {
        Err(TlogError::BadCheckpoint { line, .. }) => line,
        other => panic!("expected BadCheckpoint, got {other:?}"),
    }
}

#[test]
fn body_has_the_c2sp_layout() {
    let cp = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 8,
        root: EMPTY_ROOT,
        extensions: vec!["ext one".to_owned()],
    };
    assert_eq!(
        cp.body(),
        "cellops.example/site-TYO/audit\n8\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next one\n"
    );
    assert_eq!(Checkpoint::parse_body(&cp.body()).unwrap(), cp);
    let empty = Checkpoint {
        size: 0,
        extensions: Vec::new(),
        ..cp
    };
    assert!(empty.body().contains("\n0\n"));
    assert_eq!(Checkpoint::parse_body(&empty.body()).unwrap(), empty);
}

#[test]
fn malformed_bodies_name_the_line() {
    let root = hash_to_base64(&EMPTY_ROOT);
    assert_eq!(
        bad_line(Checkpoint::parse_body(&format!("o\n1\n{root}"))),
        0
    );
    assert_eq!(bad_line(Checkpoint::parse_body("o\n1\n")), 3);
    assert_eq!(
        bad_line(Checkpoint::parse_body(&format!("\n1\n{root}\n"))),
        1
    );
    assert_eq!(
        bad_line(Checkpoint::parse_body(&format!("a b\n1\n{root}\n"))),
        1
    );
    assert_eq!(
        bad_line(Checkpoint::parse_body(&format!("a+b\n1\n{root}\n"))),
        1
    );
    assert_eq!(
        bad_line(Checkpoint::parse_body(&format!("o\n01\n{root}\n"))),
        2
    );
    assert_eq!(
        bad_line(Checkpoint::parse_body(&format!("o\n-1\n{root}\n"))),
        2
    );
    assert_eq!(
        bad_line(Checkpoint::parse_body(&format!("o\n\n{root}\n"))),
        2
    );
    assert_eq!(
        bad_line(Checkpoint::parse_body(&format!(
            "o\n18446744073709551616\n{root}\n"
        ))),
        2
    );
    assert_eq!(bad_line(Checkpoint::parse_body("o\n1\nAAAA\n")), 3);
    assert_eq!(
        bad_line(Checkpoint::parse_body(&format!(
            "o\n1\n{}\n",
            "ab".repeat(32)
        ))),
        3
    );
    assert_eq!(
        bad_line(Checkpoint::parse_body(&format!("o\n1\n{root}\next\n\n"))),
        5
    );
    let too_many = "x\n".repeat(CHECKPOINT_EXTENSION_LINES_MAX + 1);
    assert_eq!(
        bad_line(Checkpoint::parse_body(&format!("o\n1\n{root}\n{too_many}"))),
        4
    );
    // The largest size parses.
    let max = Checkpoint::parse_body(&format!("o\n18446744073709551615\n{root}\n")).unwrap();
    assert_eq!(max.size, u64::MAX);
}

#[test]
fn invalid_checkpoints_are_not_signed() {
    let signer = log_signer();
    let mut cp = checkpoint_of(&tree(3), 3);
    cp.origin = "has space".to_owned();
    assert!(matches!(
        sign_checkpoint(&signer, &cp),
        Err(TlogError::BadCheckpoint { line: 1, .. })
    ));
    cp.origin = ORIGIN.to_owned();
    cp.extensions = vec![String::new()];
    assert!(matches!(
        sign_checkpoint(&signer, &cp),
        Err(TlogError::BadCheckpoint { line: 4, .. })
    ));
    cp.extensions = vec!["two\nlines".to_owned()];
    assert!(sign_checkpoint(&signer, &cp).is_err());
}

#[test]
fn signed_checkpoints_open_and_tampering_is_caught() {
    let signer = log_signer();
    let log = tree(10);
    let cp = checkpoint_of(&log, 10);
    let note = sign_checkpoint(&signer, &cp).unwrap();
    assert!(note.starts_with(&cp.body()));
    assert_eq!(open_checkpoint(&note, &[signer.verifier()]).unwrap(), cp);
    // Changing the size line breaks the signature.
    let tampered = note.replacen("\n10\n", "\n11\n", 1);
    assert!(matches!(
        open_checkpoint(&tampered, &[signer.verifier()]),
        Err(TlogError::BadSignature { .. })
    ));
    // Another log's key does not vouch for it.
    let other =
        NoteSigner::generate("other.example/log", &mut ChaCha20Rng::seed_from_u64(9)).unwrap();
    assert!(matches!(
        open_checkpoint(&note, &[other.verifier()]),
        Err(TlogError::NoVerifiedSignature { .. })
    ));
    // A witness cosignature line from an unknown key is ignored.
    let cosigned = format!(
        "{note}{}",
        &other.sign(&cp.body()).unwrap()[cp.body().len() + 1..]
    );
    assert_eq!(
        open_checkpoint(&cosigned, &[signer.verifier()]).unwrap(),
        cp
    );
}

#[test]
fn a_signed_note_that_is_not_a_checkpoint_is_rejected() {
    let signer = log_signer();
    let note = signer.sign("just some text\n").unwrap();
    assert!(matches!(
        open_checkpoint(&note, &[signer.verifier()]),
        Err(TlogError::BadCheckpoint { .. })
    ));
}

#[test]
fn inclusion_against_a_signed_checkpoint() {
    let signer = log_signer();
    let verifier = NoteVerifier::from_vkey(&signer.verifier().to_vkey()).unwrap();
    let log = tree(21);
    let note = sign_checkpoint(&signer, &checkpoint_of(&log, 21)).unwrap();
    let leaf = log.leaf(13).unwrap();
    let proof = log.inclusion_proof(13, 21).unwrap();
    let cp = verify_inclusion_against_checkpoint(&note, &verifier, 13, &leaf, &proof).unwrap();
    assert_eq!(cp.size, 21);
    assert!(matches!(
        verify_inclusion_against_checkpoint(&note, &verifier, 12, &leaf, &proof),
        Err(TlogError::ProofMismatch {
            kind: ProofKind::Inclusion,
            ..
        })
    ));
    assert!(matches!(
        verify_inclusion_against_checkpoint(&note, &verifier, 21, &leaf, &proof),
        Err(TlogError::IndexOutOfRange {
            index: 21,
            size: 21
        })
    ));
    // A proof made for an older size does not match this checkpoint.
    let old_proof = log.inclusion_proof(13, 20).unwrap();
    assert!(verify_inclusion_against_checkpoint(&note, &verifier, 13, &leaf, &old_proof).is_err());
    // A forged checkpoint (root replaced) fails on its signature first.
    let forged = note.replacen(&hash_to_base64(&log.root()), &hash_to_base64(&[7u8; 32]), 1);
    assert!(matches!(
        verify_inclusion_against_checkpoint(&forged, &verifier, 13, &leaf, &proof),
        Err(TlogError::BadSignature { .. })
    ));
}

#[test]
fn consistency_between_signed_checkpoints() {
    let signer = log_signer();
    let verifier = signer.verifier();
    let log = tree(30);
    let older = sign_checkpoint(&signer, &checkpoint_of(&log, 11)).unwrap();
    let newer = sign_checkpoint(&signer, &checkpoint_of(&log, 30)).unwrap();
    let proof = log.consistency_proof(11, 30).unwrap();
    verify_consistency_between_checkpoints(&older, &newer, &verifier, &proof).unwrap();
    // Same checkpoint twice: consistent with an empty proof.
    verify_consistency_between_checkpoints(&newer, &newer, &verifier, &[]).unwrap();
    // Swapped: a rollback.
    assert_eq!(
        verify_consistency_between_checkpoints(&newer, &older, &verifier, &proof),
        Err(TlogError::SizesOutOfOrder {
            first: 30,
            second: 11
        })
    );
    // A fork: the log signed a different history of the same size.
    let mut forked_leaves: Vec<Hash> = (0..30).map(|i| log.leaf(i).unwrap()).collect();
    forked_leaves[5] = leaf_hash(b"rewritten");
    let fork = MerkleTree::from_leaf_hashes(forked_leaves);
    let forked = sign_checkpoint(&signer, &checkpoint_of(&fork, 30)).unwrap();
    let fork_proof = fork.consistency_proof(11, 30).unwrap();
    assert!(matches!(
        verify_consistency_between_checkpoints(&older, &forked, &verifier, &fork_proof),
        Err(TlogError::ProofMismatch {
            kind: ProofKind::Consistency,
            ..
        })
    ));
    assert!(matches!(
        verify_consistency_between_checkpoints(&newer, &forked, &verifier, &[]),
        Err(TlogError::ProofMismatch { .. })
    ));
    // Checkpoints of another log cannot be compared.
    let mut other_origin = checkpoint_of(&log, 30);
    other_origin.origin = "cellops.example/site-OSA/audit".to_owned();
    let other = sign_checkpoint(&signer, &other_origin).unwrap();
    assert!(matches!(
        verify_consistency_between_checkpoints(&older, &other, &verifier, &proof),
        Err(TlogError::OriginMismatch { .. })
    ));
}

fn checkpoint_strategy() -> impl Strategy<Value = Checkpoint> {
    (
        "[a-z0-9./_-]{1,40}",
        any::<u64>(),
        any::<[u8; 32]>(),
        prop::collection::vec("[ -~]{1,30}", 0..=CHECKPOINT_EXTENSION_LINES_MAX),
    )
        .prop_map(|(origin, size, root, extensions)| Checkpoint {
            origin,
            size,
            root,
            extensions,
        })
}

proptest! {
    #[test]
    fn valid_checkpoints_round_trip_through_body_and_signature(cp in checkpoint_strategy()) {
        prop_assert!(cp.validate().is_ok());
        prop_assert_eq!(Checkpoint::parse_body(&cp.body()).unwrap(), cp.clone());
        let signer = log_signer();
        let note = sign_checkpoint(&signer, &cp).unwrap();
        prop_assert_eq!(open_checkpoint(&note, &[signer.verifier()]).unwrap(), cp);
    }
}
