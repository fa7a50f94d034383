//! The canonical content hash: stable across formatting, sensitive to meaning, pinned.

use cellops_process::Recipe;
use cellops_process::recipe::hash::{ApprovalStatus, ApprovedVersion, ContentHash};

use crate::validation::MINIMAL;

fn hash(text: &str) -> ContentHash {
    Recipe::parse("t.toml", text).unwrap().content_hash()
}

#[test]
fn hash_ignores_whitespace_comments_and_number_spelling() {
    let reformatted = MINIMAL
        .replace("duration_hours = 24", "# a comment\nduration_hours   =   24.0   # hours")
        .replace("\n\n", "\n\n\n")
        .replace(
            "limits.viability_percent = { min = 70, on_out_of_limit = \"open_deviation\" }",
            "[phases.steps.limits.viability_percent]\non_out_of_limit = \"open_deviation\"\nmin = 70.0",
        );
    assert_ne!(reformatted, MINIMAL);
    assert_eq!(hash(&reformatted), hash(MINIMAL));
}

#[test]
fn hash_changes_with_meaning() {
    let changed = MINIMAL.replace("temperature_c = 37", "temperature_c = 36.5");
    assert_ne!(hash(&changed), hash(MINIMAL));
    let renamed = MINIMAL.replace(
        "instruction_ja = \"細胞を播種する。\"",
        "instruction_ja = \"播種する。\"",
    );
    assert_ne!(hash(&renamed), hash(MINIMAL));
}

#[test]
fn canonical_encoding_is_pinned() {
    // Golden vector: if this changes, every QA approval in the field is invalidated.
    // Change the encoding only with a new CANONICAL_PREFIX and a migration note.
    let recipe = Recipe::parse("t.toml", MINIMAL).unwrap();
    let bytes = String::from_utf8(recipe.canonical_bytes()).unwrap();
    assert!(
        bytes.starts_with("cellops-recipe-canonical-v1\n{\"product\":\"demo\",\"product_name\":\"Demo product\",\"version\":{\"major\":1,\"minor\":0,\"patch\":0}"),
        "{bytes}"
    );
    assert_eq!(
        hash(MINIMAL).to_string(),
        "sha256:5a71507448bb3bf36e085446b22f4b2ad0085c3785526060a7c569706e46afb0"
    );
}

#[test]
fn content_hash_round_trips_as_text() {
    let h = hash(MINIMAL);
    assert_eq!(ContentHash::parse(&h.to_string()).unwrap(), h);
    assert!(ContentHash::parse("sha256:00").is_err());
    assert!(ContentHash::parse(&h.to_string().to_uppercase()).is_err());
}

#[test]
fn approval_is_for_the_exact_content() {
    let recipe = Recipe::parse("t.toml", MINIMAL).unwrap();
    let approved = ApprovedVersion {
        product: "demo".into(),
        version: "1.0.0".into(),
        content_hash: recipe.content_hash(),
    };
    assert_eq!(
        recipe.approval_status([&approved]),
        ApprovalStatus::Approved
    );
    assert_eq!(recipe.approval_status([]), ApprovalStatus::NotApproved);

    let edited = Recipe::parse("t.toml", &MINIMAL.replace("min = 70", "min = 75")).unwrap();
    assert_eq!(
        edited.approval_status([&approved]),
        ApprovalStatus::ContentChangedSinceApproval {
            approved_hash: recipe.content_hash()
        }
    );
    let other_version = ApprovedVersion {
        version: "0.9.0".into(),
        ..approved.clone()
    };
    assert_eq!(
        recipe.approval_status([&other_version]),
        ApprovalStatus::NotApproved
    );
}
