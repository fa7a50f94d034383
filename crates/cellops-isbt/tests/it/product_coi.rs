//! DS 003, 032, 033, 034 and 040.

use crate::check_err;
use cellops_isbt::{
    ChainOfIdentityId, DataStructure, Fin, ProductCode, ProductDescriptionCode, StructureKind,
    parse_any, parse_expected,
};

#[test]
fn product_code_parts() {
    let code = ProductCode::parse("=<S1234100").unwrap();
    assert_eq!(code.description_code().as_str(), "S1234");
    assert_eq!(code.description_code().family(), 'S');
    assert_eq!(code.collection_type(), '1');
    assert_eq!(code.division(), "00");
    assert!(!code.is_divided());
    assert_eq!(ProductCode::parse("S1234100"), Ok(code));
    let divided = code.with_division("Ab").unwrap();
    assert_eq!(divided.as_str(), "S12341Ab");
    assert!(divided.is_divided());
    assert!(ProductCode::parse("YA123100").is_ok());
}

#[test]
fn product_code_rules() {
    check_err(
        ProductCode::parse("S12341aB"),
        &["position 7", "'a'", "small letter"],
    );
    check_err(
        ProductCode::parse("S12341AB"),
        &["position 8", "'B'", "small letters"],
    );
    check_err(
        ProductCode::parse("s1234100"),
        &["position 1", "small letter", "'S'"],
    );
    check_err(
        ProductCode::parse("1S234100"),
        &["position 1", "capital letters A–Z"],
    );
    check_err(
        ProductCode::parse("T1234100"),
        &["position 6", "'T'", "000"],
    );
    assert!(ProductCode::parse("T1234000").is_ok());
    check_err(
        ProductCode::parse("S123410"),
        &["8 characters", "7 were given"],
    );
    check_err(
        ProductCode::parse("=G12341765432170"),
        &[
            "this is a DIN",
            "product code (data structure 003) is needed",
        ],
    );
    check_err(
        ProductCode::parse("S1234100").unwrap().with_division("A"),
        &["2 characters"],
    );
    check_err(ProductDescriptionCode::parse("S12A4"), &["position 4"]);
}

#[test]
fn divisions_and_facility_codes() {
    let parsed = parse_any("=,A1B2C3").unwrap();
    assert_eq!(parsed.kind(), StructureKind::ProductDivisions);
    check_err(parse_any("=,A1b2C3"), &["position 5", "small letter"]);
    let DataStructure::ProcessingFacility(facility) = parse_any("&+A9999000000").unwrap() else {
        panic!("wrong kind");
    };
    assert_eq!(facility.fin().as_str(), "A9999");
    assert_eq!(facility.facility_product_code(), "000000");
    let DataStructure::ProcessorProduct(product) = parse_any("=/A9999XY1234S1234").unwrap() else {
        panic!("wrong kind");
    };
    assert_eq!(product.facility().facility_product_code(), "XY1234");
    assert_eq!(product.description_code().as_str(), "S1234");
    check_err(parse_any("&+O9999000000"), &["position 3", "'O'", "FIN"]);
}

#[test]
fn chain_of_identity_identifier() {
    let fin = Fin::parse("A9999").unwrap();
    let id = ChainOfIdentityId::new(fin, 26, "AB12C3").unwrap();
    assert_eq!(id.as_str(), "CHA999926AB12C3");
    assert_eq!(id.fin(), fin);
    assert_eq!(id.nominal_year(), 26);
    assert_eq!(id.sequence(), "AB12C3");
    let scanned = ChainOfIdentityId::parse("&/CHA999926AB12C3").unwrap();
    assert_eq!(scanned, id);
    let check = id.check_character().as_char();
    assert_eq!(
        cellops_isbt::check_character("CHA999926AB12C3")
            .unwrap()
            .as_char(),
        check
    );
    let typed = format!("CH A9999 26 AB12C3 {check}");
    assert_eq!(ChainOfIdentityId::parse(&typed), Ok(id));
    // Typed without its check character: refused, K is required.
    check_err(
        ChainOfIdentityId::parse("CHA999926AB12C3"),
        &["16 characters", "check character"],
    );
    let wrong = if check == 'Z' { 'Y' } else { 'Z' };
    check_err(
        ChainOfIdentityId::parse(&format!("CHA999926AB12C3{wrong}")),
        &["position 16", "does not match"],
    );
    check_err(
        ChainOfIdentityId::parse("&/CXA999926AB12C3"),
        &["position 4", "expected 'H'"],
    );
    check_err(
        ChainOfIdentityId::parse(&format!("CH A9999 26 ab12C3 {check}")),
        &["position 13", "'a'", "small letter"],
    );
    check_err(
        parse_expected("&/CHA999926AB12C", StructureKind::ChainOfIdentity),
        &["ends too early"],
    );
    check_err(ChainOfIdentityId::new(fin, 26, "AB12C"), &["6 characters"]);
}
