//! DS 001, FIN, flags and the MOD 37-2 check character (standards.md §1.2–1.3).

use crate::check_err;
use cellops_isbt::{
    Din, DinStructure, Fin, FlagKind, Flags, IsbtError, StructureKind, check_character,
};

/// (DIN, check character, Type 3 flags) from standards.md §1.3.
const VECTORS: [(&str, char, u8); 3] = [
    ("G123417654321", 'A', 70),
    ("A999921123456", '3', 63),
    ("A999818123456", 'N', 83),
];

#[test]
fn check_character_matches_the_standard_vectors() {
    for (din, check, flags) in VECTORS {
        let parsed = Din::parse(din).unwrap();
        assert_eq!(parsed.check_character().as_char(), check, "{din}");
        assert_eq!(check_character(din).unwrap().as_char(), check, "{din}");
        let structure = parsed.with_flags(Flags::CHECK_VALUE).to_string();
        assert_eq!(structure, format!("={din}{flags}"));
    }
}

#[test]
fn worked_example_data_structure_is_read_back() {
    let structure = DinStructure::parse("=G12341765432170").unwrap();
    assert_eq!(structure.din().as_str(), "G123417654321");
    assert_eq!(structure.flags().kind(), FlagKind::CheckValue);
    let din = structure.din();
    assert_eq!(din.fin().as_str(), "G1234");
    assert_eq!(din.nominal_year(), 17);
    assert_eq!(din.sequence(), 654_321);
    assert_eq!(din.eye_readable().to_string(), "G1234 17 654321");
}

#[test]
fn every_single_substitution_changes_the_check_character() {
    let din = b"G123417654321";
    let original = check_character("G123417654321").unwrap();
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for index in 0..din.len() {
        for &replacement in alphabet {
            if replacement == din[index] {
                continue;
            }
            let mut changed = *din;
            changed[index] = replacement;
            let text = std::str::from_utf8(&changed).unwrap();
            assert_ne!(check_character(text).unwrap(), original, "{text}");
        }
    }
}

#[test]
fn every_adjacent_transposition_changes_the_check_character() {
    let din = b"G123417654321";
    let original = check_character("G123417654321").unwrap();
    for index in 0..din.len() - 1 {
        if din[index] == din[index + 1] {
            continue;
        }
        let mut changed = *din;
        changed.swap(index, index + 1);
        let text = std::str::from_utf8(&changed).unwrap();
        assert_ne!(check_character(text).unwrap(), original, "{text}");
    }
}

#[test]
fn check_character_refuses_star_lowercase_and_empty() {
    check_err(check_character("G12341765432*"), &["position 13", "'*'"]);
    check_err(
        check_character("g123417654321"),
        &["position 1", "small letter"],
    );
    assert_eq!(check_character(""), Err(IsbtError::Empty));
}

#[test]
fn typed_forms_are_accepted() {
    let expected = Din::parse("G123417654321").unwrap();
    for typed in [
        "G123417654321A",
        "G1234 17 654321 A",
        "G1234 17 654321",
        "  G1234 17 654321 A ",
        "=G12341765432170",
        "=G12341765432100",
        "G123417654321A\r\n",
    ] {
        assert_eq!(Din::parse(typed), Ok(expected), "{typed:?}");
    }
}

#[test]
fn wrong_typed_check_character_is_refused_at_its_position() {
    let message = check_err(
        Din::parse("G1234 17 654321 B"),
        &["position 17", "'B'", "does not match", "mistyped"],
    );
    assert!(message.contains("retype"));
    // The right check character is never revealed: it would be typed over a wrong DIN.
    assert!(!message.contains("'A'"), "{message}");
}

#[test]
fn fin_character_rules_name_position_and_rule() {
    check_err(
        Din::parse("O123417654321"),
        &["position 1", "'O'", "FIN", "letter O"],
    );
    check_err(
        Din::parse("0123417654321"),
        &["position 1", "'0'", "digit 0"],
    );
    check_err(Din::parse("GO23417654321"), &["position 2", "'O'", "FIN"]);
    check_err(
        Din::parse("G1O34 17 654321"),
        &["position 3", "'O'", "letter O is never used"],
    );
    // The 4th and 5th FIN characters are digits.
    check_err(Din::parse("G12A417654321"), &["position 4", "digits 0–9"]);
    // Typed with spaces: the position is the one in the typed text.
    check_err(
        Din::parse("G1234 1X 654321"),
        &["position 8", "'X'", "year"],
    );
}

#[test]
fn lowercase_is_refused_with_the_capital_to_type() {
    check_err(
        Din::parse("g123417654321"),
        &["position 1", "'g'", "small letter", "'G'"],
    );
    check_err(Din::parse("G123417654321a"), &["position 14", "'A'"]);
}

#[test]
fn wrong_length_is_refused_with_the_layout() {
    check_err(
        Din::parse("G12341765432"),
        &["13 characters", "12 were given", "FIN 5"],
    );
    check_err(Din::parse("G123417654321AB"), &["15 were given"]);
    check_err(
        Din::parse("=G123417654321"),
        &["position 15", "ends too early", "16"],
    );
    check_err(
        Din::parse("=G1234176543217000"),
        &["position 17", "after the end of a DIN"],
    );
    assert_eq!(Din::parse(""), Err(IsbtError::Empty));
    assert_eq!(Din::parse("   "), Err(IsbtError::Empty));
    assert!(matches!(
        Din::parse(&"G".repeat(40)),
        Err(IsbtError::TooLong { .. })
    ));
}

#[test]
fn din_field_refuses_other_data_structures_by_name() {
    let error = Din::parse("=<S1234100").unwrap_err();
    assert_eq!(
        error,
        IsbtError::WrongDataStructure {
            position: 1,
            expected: StructureKind::Din,
            expected_short: "DIN",
            found: StructureKind::ProductCode,
        }
    );
    assert!(error.to_string().contains("this is a product code"));
    assert!(error.to_string().contains("Scan the DIN barcode"));
}

#[test]
fn flags_are_checked() {
    check_err(
        DinStructure::parse("=G12341765432171"),
        &["position 15", "71", "do not match", "scan it again"],
    );
    check_err(DinStructure::parse("=G12341765432114"), &["reserved"]);
    check_err(DinStructure::parse("=G12341765432197"), &["reserved"]);
    check_err(DinStructure::parse("=G123417654321AB"), &["reserved"]);
    check_err(
        DinStructure::parse("=G123417654321-0"),
        &["position 15", "'-'"],
    );
    let type1 = DinStructure::parse("=G12341765432101").unwrap();
    assert_eq!(type1.flags().kind(), FlagKind::IccbbaDefined(1));
    let type2 = DinStructure::parse("=G12341765432125").unwrap();
    assert_eq!(type2.flags().kind(), FlagKind::LocallyDefined(25));
    assert_eq!(type2.to_string(), "=G12341765432125");
    assert!(Flags::iccbba_defined(14).is_err());
    assert!(Flags::iccbba_defined(20).is_err());
    assert!(Flags::locally_defined(60).is_err());
}

#[test]
fn din_new_builds_and_bounds() {
    let fin = Fin::parse("A9999").unwrap();
    assert!(fin.is_test_facility());
    assert!(!Fin::parse("G1234").unwrap().is_test_facility());
    let din = Din::new(fin, 26, 42).unwrap();
    assert_eq!(din.as_str(), "A999926000042");
    assert_eq!(Din::parse(din.as_str()), Ok(din));
    assert!(Din::new(fin, 100, 0).is_err());
    assert!(Din::new(fin, 26, 1_000_000).is_err());
    check_err(Fin::parse("A999"), &["a FIN must be 5 characters"]);
}

#[test]
fn parse_characters_takes_exactly_thirteen() {
    assert!(Din::parse_characters("G123417654321").is_ok());
    check_err(
        Din::parse_characters("G123417654321A"),
        &["13 characters", "14"],
    );
    check_err(Din::parse_characters("G1234 1765432"), &["position 6"]);
}
