//! Property tests: parse ∘ format and format ∘ parse are the identity; corruption is caught.

use cellops_isbt::{
    ChainOfIdentityId, DataStructure, Din, Fin, Flags, IsbtDate, IsbtDateTime, ProductCode,
    SCAN_STRUCTURES_MAX, Scan, days_in_year, parse_any, parse_expected, parse_scan,
};
use proptest::prelude::*;
use proptest::sample::select;

const FIN_FIRST: &[u8] = b"ABCDEFGHIJKLMNPQRSTUVWXYZ123456789";
const FIN_MIDDLE: &[u8] = b"ABCDEFGHIJKLMNPQRSTUVWXYZ0123456789";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn fin() -> impl Strategy<Value = Fin> {
    (
        select(FIN_FIRST),
        select(FIN_MIDDLE),
        select(FIN_MIDDLE),
        0u8..100,
    )
        .prop_map(|(a, b, c, digits)| {
            Fin::parse(&format!(
                "{}{}{}{digits:02}",
                a as char, b as char, c as char
            ))
            .unwrap()
        })
}

fn din() -> impl Strategy<Value = Din> {
    (fin(), 0u8..=99, 0u32..=999_999).prop_map(|(fin, year, seq)| Din::new(fin, year, seq).unwrap())
}

fn flags() -> impl Strategy<Value = Flags> {
    prop_oneof![
        Just(Flags::NOT_USED),
        Just(Flags::CHECK_VALUE),
        (1u8..=19)
            .prop_filter("14 is reserved", |v| *v != 14)
            .prop_map(|v| Flags::iccbba_defined(v).unwrap()),
        (20u8..=59).prop_map(|v| Flags::locally_defined(v).unwrap()),
    ]
}

fn product_code() -> impl Strategy<Value = ProductCode> {
    (
        select(UPPER),
        select(UPPER),
        0u16..10_000,
        select(UPPER_ALNUM),
        select(UPPER_ALNUM),
        select(LOWER_ALNUM),
    )
        .prop_map(|(family, second, number, t, d, s)| {
            let pdc = if family == b'Y' {
                format!("Y{}{:03}", second as char, number % 1000)
            } else {
                format!("{}{number:04}", family as char)
            };
            let tds = if b"MNRTVW".contains(&family) {
                "000".to_string()
            } else {
                text_of(&[t, d, s])
            };
            ProductCode::parse(&format!("{pdc}{tds}")).unwrap()
        })
}

fn date() -> impl Strategy<Value = IsbtDate> {
    (2000u16..=2999)
        .prop_flat_map(|year| (Just(year), 1..=days_in_year(year)))
        .prop_map(|(year, day)| IsbtDate::from_ordinal(year, day).unwrap())
}

fn date_time() -> impl Strategy<Value = IsbtDateTime> {
    (date(), 0u8..=23, 0u8..=59).prop_map(|(d, h, m)| IsbtDateTime::new(d, h, m).unwrap())
}

fn coi() -> impl Strategy<Value = ChainOfIdentityId> {
    (
        fin(),
        0u8..=99,
        proptest::collection::vec(select(UPPER_ALNUM), 6),
    )
        .prop_map(|(fin, year, seq)| ChainOfIdentityId::new(fin, year, &text_of(&seq)).unwrap())
}

fn structure() -> impl Strategy<Value = DataStructure> {
    prop_oneof![
        (din(), flags()).prop_map(|(d, f)| DataStructure::Din(d.with_flags(f))),
        product_code().prop_map(DataStructure::ProductCode),
        date().prop_map(DataStructure::ExpirationDate),
        date_time().prop_map(DataStructure::ExpirationDateTime),
        date().prop_map(DataStructure::CollectionDate),
        date_time().prop_map(DataStructure::CollectionDateTime),
        date().prop_map(DataStructure::ProductionDate),
        date_time().prop_map(DataStructure::ProductionDateTime),
        coi().prop_map(DataStructure::ChainOfIdentity),
        proptest::collection::vec(select(UPPER_ALNUM), 6).prop_map(|d| parse_any(&format!(
            "=,{}",
            text_of(&d)
        ))
        .unwrap()),
        (fin(), proptest::collection::vec(select(UPPER_ALNUM), 6))
            .prop_map(|(f, c)| parse_any(&format!("&+{f}{}", text_of(&c))).unwrap()),
        (fin(), product_code()).prop_map(|(f, p)| parse_any(&format!(
            "=/{f}000000{}",
            p.description_code()
        ))
        .unwrap()),
    ]
}

/// Strings drawn from the character-class grammar alone (not from our formatter).
fn candidate_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "=[A-NP-Z1-9][A-NP-Z0-9]{2}[0-9]{10}(00|0[1-9]|1[0-35-9]|[2-5][0-9])",
        "=<[A-XZ][0-9]{4}[A-Z0-9]{2}[a-z0-9]",
        "=<Y[A-Z][0-9]{3}[A-Z0-9]{2}[a-z0-9]",
        "(=>|=\\*|=\\})[0-9]{3}[0-3][0-9]{2}",
        "(&>|&\\*|&\\})[0-9]{3}[0-3][0-9]{2}([01][0-9]|2[0-3])[0-5][0-9]",
        "&/CH[A-NP-Z1-9][A-NP-Z0-9]{2}[0-9]{4}[A-Z0-9]{6}",
        "=,[A-Z0-9]{6}",
    ]
}

proptest! {
    #[test]
    fn parse_of_format_is_identity(value in structure()) {
        let text = value.to_string();
        prop_assert_eq!(parse_any(&text), Ok(value));
        prop_assert_eq!(parse_expected(&text, value.kind()), Ok(value));
    }

    #[test]
    fn format_of_parse_is_identity(text in candidate_text()) {
        // The grammar allows impossible days (000, 399) and divided M/N/R/T/V/W codes; those
        // must be refused for that reason, everything else must come back unchanged.
        match parse_any(&text) {
            Ok(parsed) => prop_assert_eq!(parsed.to_string(), text),
            Err(error) => {
                let message = error.to_string();
                let expected = message.contains("day of the year") || message.contains("must be 000");
                prop_assert!(expected, "{}", message);
            }
        }
    }

    #[test]
    fn scans_round_trip(
        structures in proptest::collection::vec(structure(), 1..SCAN_STRUCTURES_MAX),
        sequence in proptest::option::of(0u16..=999),
    ) {
        let scan = Scan::new(structures, sequence).unwrap();
        prop_assert_eq!(parse_scan(&scan.to_string()), Ok(scan));
    }

    #[test]
    fn typed_din_round_trips(din in din()) {
        let typed = format!("{} {}", din.eye_readable(), din.check_character());
        prop_assert_eq!(Din::parse(&typed), Ok(din));
        prop_assert_eq!(Din::parse(din.as_str()), Ok(din));
        prop_assert_eq!(Din::parse(&din.with_flags(Flags::CHECK_VALUE).to_string()), Ok(din));
    }

    #[test]
    fn single_substitution_in_din_and_k_is_caught(
        din in din(),
        index in 0usize..14,
        replacement in select(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*".as_slice()),
    ) {
        let mut typed = format!("{}{}", din, din.check_character()).into_bytes();
        prop_assume!(typed[index] != replacement);
        typed[index] = replacement;
        let typed = text_of(&typed);
        prop_assert!(Din::parse(&typed).is_err(), "{} was accepted", typed);
    }

    #[test]
    fn adjacent_transposition_in_din_and_k_is_caught(din in din(), index in 0usize..13) {
        let mut typed = format!("{}{}", din, din.check_character()).into_bytes();
        prop_assume!(typed[index] != typed[index + 1]);
        typed.swap(index, index + 1);
        let typed = text_of(&typed);
        prop_assert!(Din::parse(&typed).is_err(), "{} was accepted", typed);
    }

    #[test]
    fn corrupted_type3_flags_are_caught(din in din(), flag in 60u8..=96) {
        let good = 60 + din.check_character().value();
        prop_assume!(flag != good);
        let text = format!("={din}{flag}");
        prop_assert!(Din::parse(&text).is_err());
    }
}
