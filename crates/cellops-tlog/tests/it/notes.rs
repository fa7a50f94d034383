//! Signed notes: the Go `sumdb/note` interop vector, key formats, and how opening treats
//! tampering, unknown keys and bad signatures.

use cellops_tlog::{
    NOTE_SIGNATURES_MAX, NoteSigner, NoteVerifier, OpenedNote, TlogError, open_note,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
pub const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const SIGNATURE_LINE: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

fn vector_note() -> String {
    format!("{TEXT}\n{SIGNATURE_LINE}")
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Replaces one character of the base64 signature, keeping it valid base64 of the same length.
fn corrupt_signature(note: &str) -> String {
    let at = note.len() - 10;
    let old = &note[at..at + 1];
    let new = if old == "A" { "B" } else { "A" };
    format!("{}{new}{}", &note[..at], &note[at + 1..])
}

#[test]
fn go_interop_vector_signs_byte_for_byte() {
    let signer = NoteSigner::from_skey(SKEY).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), 0xc74f_20a3);
    assert_eq!(signer.to_skey(), SKEY);
    assert_eq!(signer.verifier().to_vkey(), VKEY);
    assert_eq!(signer.sign(TEXT).unwrap(), vector_note());
}

#[test]
fn go_interop_vector_opens_with_the_verifier_key() {
    let verifier = NoteVerifier::from_vkey(VKEY).unwrap();
    assert_eq!(verifier.name(), "PeterNeumann");
    assert_eq!(verifier.key_id(), 0xc74f_20a3);
    assert_eq!(verifier.to_vkey(), VKEY);
    assert_eq!(verifier, NoteSigner::from_skey(SKEY).unwrap().verifier());
    let opened = open_note(&vector_note(), &[verifier]).unwrap();
    assert_eq!(
        opened,
        OpenedNote {
            text: TEXT.to_owned(),
            verified_by: vec!["PeterNeumann".to_owned()],
        }
    );
}

#[test]
fn tampered_text_is_rejected_by_the_known_key() {
    let verifier = NoteVerifier::from_vkey(VKEY).unwrap();
    let tampered = vector_note().replace("cryptography", "cryptographY");
    assert_eq!(
        open_note(&tampered, &[verifier]),
        Err(TlogError::BadSignature {
            key: "PeterNeumann+c74f20a3".to_owned()
        })
    );
}

#[test]
fn a_bad_signature_from_a_known_key_is_rejected_even_beside_a_good_one() {
    let verifier = NoteVerifier::from_vkey(VKEY).unwrap();
    let bad = corrupt_signature(&vector_note());
    assert!(matches!(
        open_note(&bad, std::slice::from_ref(&verifier)),
        Err(TlogError::BadSignature { .. })
    ));
    // Good line then a corrupted repeat of the same key.
    let bad_line = &bad[TEXT.len() + 1..];
    let both = format!("{}{bad_line}", vector_note());
    assert!(matches!(
        open_note(&both, &[verifier]),
        Err(TlogError::BadSignature { .. })
    ));
}

#[test]
fn unknown_signatures_are_ignored() {
    let verifier = NoteVerifier::from_vkey(VKEY).unwrap();
    let witness = NoteSigner::generate("witness.example/w1", &mut rng(1)).unwrap();
    let witness_line = witness.sign(TEXT).unwrap()[TEXT.len() + 1..].to_owned();
    // An unknown (name, id) line, even with a garbage signature, does not matter.
    let garbage_line = "— someone.else/key AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
    let note = format!("{TEXT}\n{witness_line}{SIGNATURE_LINE}{garbage_line}");
    let opened = open_note(&note, std::slice::from_ref(&verifier)).unwrap();
    assert_eq!(opened.verified_by, vec!["PeterNeumann"]);
    // Trusting both keys reports both, in note order.
    let opened = open_note(&note, &[verifier, witness.verifier()]).unwrap();
    assert_eq!(
        opened.verified_by,
        vec!["witness.example/w1", "PeterNeumann"]
    );
}

#[test]
fn a_note_without_a_trusted_signature_is_rejected() {
    let other = NoteSigner::generate("other.example/log", &mut rng(2)).unwrap();
    let err = open_note(&vector_note(), &[other.verifier()]).unwrap_err();
    assert!(matches!(err, TlogError::NoVerifiedSignature { .. }));
    assert!(err.to_string().contains("other.example/log+"), "{err}");
    assert!(matches!(
        open_note(&vector_note(), &[]),
        Err(TlogError::NoVerifiedSignature { .. })
    ));
    // Same name, different key: a different key ID, so the line is unknown to it.
    let impostor = NoteSigner::generate("PeterNeumann", &mut rng(3)).unwrap();
    assert!(matches!(
        open_note(&vector_note(), &[impostor.verifier()]),
        Err(TlogError::NoVerifiedSignature { .. })
    ));
}

#[test]
fn signature_count_limit_is_enforced() {
    let verifier = NoteVerifier::from_vkey(VKEY).unwrap();
    let unknown = "— someone.else/key AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
    let at_limit = format!(
        "{TEXT}\n{}{SIGNATURE_LINE}",
        unknown.repeat(NOTE_SIGNATURES_MAX - 1)
    );
    assert!(open_note(&at_limit, std::slice::from_ref(&verifier)).is_ok());
    let over = format!(
        "{TEXT}\n{}{SIGNATURE_LINE}",
        unknown.repeat(NOTE_SIGNATURES_MAX)
    );
    assert!(matches!(
        open_note(&over, &[verifier]),
        Err(TlogError::BadNote { .. })
    ));
}

#[test]
fn malformed_notes_are_rejected() {
    let verifier = NoteVerifier::from_vkey(VKEY).unwrap();
    let cases = [
        format!("{TEXT}{SIGNATURE_LINE}"),                // no blank line
        format!("{TEXT}\n{}", SIGNATURE_LINE.trim_end()), // no final newline
        format!("{TEXT}\n"),                              // no signatures
        format!("{TEXT}\n- PeterNeumann AAAA\n"),         // wrong dash
        format!("{TEXT}\n— PeterNeumann\n"),              // no signature
        format!("{TEXT}\n— PeterNeumann not*base64\n"),   // not base64
        format!("{TEXT}\n— PeterNeumann AAAA\n"),         // too short
        format!("{}\t\n\n{SIGNATURE_LINE}", TEXT.trim_end()), // control character
    ];
    for note in cases {
        let result = open_note(&note, std::slice::from_ref(&verifier));
        assert!(
            matches!(result, Err(TlogError::BadNote { .. })),
            "{note:?} gave {result:?}"
        );
    }
}

#[test]
fn signing_requires_a_final_newline_and_no_control_characters() {
    let signer = NoteSigner::from_skey(SKEY).unwrap();
    assert!(matches!(
        signer.sign("no newline"),
        Err(TlogError::BadNote { .. })
    ));
    assert!(matches!(
        signer.sign("tab\there\n"),
        Err(TlogError::BadNote { .. })
    ));
}

#[test]
fn generated_keys_round_trip_and_are_deterministic_per_seed() {
    let a = NoteSigner::generate("cellops.example/site-TYO/audit", &mut rng(7)).unwrap();
    let b = NoteSigner::generate("cellops.example/site-TYO/audit", &mut rng(7)).unwrap();
    let c = NoteSigner::generate("cellops.example/site-TYO/audit", &mut rng(8)).unwrap();
    assert_eq!(a.to_skey(), b.to_skey());
    assert_ne!(a.to_skey(), c.to_skey());
    let reparsed = NoteSigner::from_skey(&a.to_skey()).unwrap();
    assert_eq!(reparsed.to_skey(), a.to_skey());
    let verifier = NoteVerifier::from_vkey(&a.verifier().to_vkey()).unwrap();
    assert_eq!(verifier, a.verifier());
    let note = a.sign("hello\n").unwrap();
    assert_eq!(open_note(&note, &[verifier]).unwrap().text, "hello\n");
    // Debug never shows the private key.
    let debug = format!("{a:?}");
    assert!(
        !debug.contains(a.to_skey().rsplit('+').next().unwrap()),
        "{debug}"
    );
    assert!(debug.contains("redacted"), "{debug}");
}

#[test]
fn bad_key_names_are_refused() {
    for name in ["", "has space", "has+plus", "tab\tname"] {
        assert!(
            matches!(
                NoteSigner::generate(name, &mut rng(1)),
                Err(TlogError::BadKey { .. })
            ),
            "{name:?}"
        );
    }
}

#[test]
fn malformed_key_texts_are_refused_with_reasons() {
    let skey_cases = [
        (
            "PRIVATE+KEX+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "PRIVATE+KEY+",
        ),
        (
            "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "does not match",
        ),
        (
            "PRIVATE+KEY+PeterNeumann+c74f20a+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "8 hex digits",
        ),
        (
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
            "base64",
        ),
        (
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "type byte",
        ),
        (
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXH",
            "bytes, expected 32",
        ),
        ("PRIVATE+KEY+PeterNeumann", "two '+'"),
    ];
    for (skey, expected) in skey_cases {
        let err = NoteSigner::from_skey(skey).unwrap_err();
        assert!(matches!(err, TlogError::BadKey { .. }), "{skey}: {err:?}");
        assert!(err.to_string().contains(expected), "{skey}: {err}");
    }
    let vkey_cases = [
        (
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "does not match",
        ),
        (
            "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "type byte",
        ),
        ("PeterNeumann+c74f20a3", "two '+'"),
        (
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "key name",
        ),
        // The identity point is a small-order key.
        (
            "weak+00000000+AQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "small-order",
        ),
    ];
    for (vkey, expected) in vkey_cases {
        let err = NoteVerifier::from_vkey(vkey).unwrap_err();
        assert!(matches!(err, TlogError::BadKey { .. }), "{vkey}: {err:?}");
        assert!(err.to_string().contains(expected), "{vkey}: {err}");
    }
}
