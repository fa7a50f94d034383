//! Scanner strings: concatenated data structures and compound messages.

use crate::check_err;
use cellops_isbt::{
    DataStructure, IsbtError, SCAN_STRUCTURES_MAX, Scan, StructureKind, parse_any, parse_scan,
};

const LABEL: &str = "=+04000=A99992612345689=<S1234100&>0263652359&/CHA999926AB12C3";

#[test]
fn compound_message_is_read_in_full() {
    let scan = parse_scan(LABEL).unwrap();
    let header = scan.compound().unwrap();
    assert_eq!((header.count(), header.sequence_code()), (4, 0));
    let kinds: Vec<_> = scan.structures().iter().map(DataStructure::kind).collect();
    assert_eq!(
        kinds,
        [
            StructureKind::Din,
            StructureKind::ProductCode,
            StructureKind::ExpirationDateTime,
            StructureKind::ChainOfIdentity
        ]
    );
    assert_eq!(scan.din().unwrap().din().as_str(), "A999926123456");
    assert_eq!(scan.to_string(), LABEL);
    assert!(scan.first(StructureKind::ProductCode).is_some());
    assert!(scan.first(StructureKind::CollectionDate).is_none());
}

#[test]
fn plain_concatenation_is_read() {
    let scan = parse_scan("=A99992612345689=<S1234100\r\n").unwrap();
    assert!(scan.compound().is_none());
    assert_eq!(scan.structures().len(), 2);
}

#[test]
fn compound_count_must_match() {
    check_err(
        parse_scan("=+03000=A99992612345689=<S1234100"),
        &["announces 3", "but 2 follow"],
    );
    check_err(
        parse_scan("=+00000=<S1234100"),
        &["position 3", "announces 0"],
    );
    check_err(
        parse_scan("=+01000=+01000=<S1234100"),
        &["position 8", "cannot contain another compound"],
    );
}

#[test]
fn errors_inside_a_scan_name_the_absolute_position() {
    // The product code starts at position 24; its last character (position 33) is bad.
    check_err(
        parse_scan("=+02000=A99992612345689=<S12341AB"),
        &["position 33", "'B'", "division"],
    );
    check_err(
        parse_scan("=A99992612345689=<S12341"),
        &[
            "position 25",
            "ends too early",
            "product code",
            "from position 17",
        ],
    );
    check_err(
        parse_scan("=A99992612345689%<S1234100"),
        &["position 17", "'%<S'", "does not start a code"],
    );
    check_err(parse_scan("=%5100"), &["position 1", "'=%5'"]);
    check_err(parse_scan("&a123"), &["position 1"]);
    check_err(parse_scan("="), &["position 1", "'='"]);
    assert_eq!(parse_scan("\r\n"), Err(IsbtError::Empty));
}

#[test]
fn a_scan_is_bounded() {
    let many = "=<S1234100".repeat(SCAN_STRUCTURES_MAX + 1);
    check_err(parse_scan(&many), &["more than 16"]);
    assert!(matches!(
        parse_scan(&"=<S1234100".repeat(60)),
        Err(IsbtError::TooLong { .. })
    ));
}

#[test]
fn parse_any_reads_one_structure_of_any_kind() {
    for text in [
        "=G12341765432170",
        "=<S1234100",
        "=>026076",
        "&>0260762359",
        "=*026076",
        "&*0260761200",
        "=}026076",
        "&}0260761200",
        "=,A1B2C3",
        "&+A9999000000",
        "=/A9999XY1234S1234",
        "&/CHA999926AB12C3",
    ] {
        let parsed = parse_any(text).unwrap();
        assert_eq!(parsed.to_string(), text);
    }
    check_err(
        parse_any("=<S1234100=<S1234100"),
        &["position 11", "after the end"],
    );
}

#[test]
fn scan_new_wraps_structures() {
    let din = parse_any("=A99992612345689").unwrap();
    let product = parse_any("=<S1234100").unwrap();
    let scan = Scan::new(vec![din, product], Some(0)).unwrap();
    assert_eq!(scan.to_string(), "=+02000=A99992612345689=<S1234100");
    assert_eq!(parse_scan(&scan.to_string()), Ok(scan));
    assert!(Scan::new(vec![], None).is_err());
}
