//! Fixtures: a two-site network on the ISBT 128 test FINs, and a tiny event-applying harness.

use cellops_custody::*;
use cellops_domain::{SiteId, Timestamp, UserId};
use cellops_isbt::{Din, Fin, Flags, ProductCode};

pub const HOSPITAL_FIN: &str = "A9991";
pub const CPC_FIN: &str = "A9992";
/// A test FIN outside the network.
pub const FOREIGN_FIN: &str = "A9999";

/// 2026-03-01T00:00:00Z in µs.
pub const T0_US: i64 = 1_772_323_200_000_000;
pub const HOUR_US: i64 = 3_600_000_000;
pub const MINUTE_US: i64 = 60_000_000;

pub fn t(hours: i64) -> Timestamp {
    Timestamp::from_unix_us(T0_US + hours * HOUR_US).unwrap()
}

pub fn site(s: &str) -> SiteId {
    SiteId::parse(s).unwrap()
}
pub fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}
pub fn loc(s: &str) -> LocationId {
    LocationId::parse(s).unwrap()
}
pub fn subject(s: &str) -> SubjectId {
    SubjectId::parse(s).unwrap()
}
pub fn fin(s: &str) -> Fin {
    Fin::parse(s).unwrap()
}
pub fn product(s: &str) -> ProductCode {
    ProductCode::parse(s).unwrap()
}

/// The i-th division (`A0`, `A1`, …, `Az`, `B0`, …), never `00`.
pub fn division(i: usize) -> String {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const LOWER: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let d = UPPER[(i / LOWER.len()) % UPPER.len()];
    let s = LOWER[i % LOWER.len()];
    format!("{}{}", d as char, s as char)
}

pub fn with_division(code: UnitCode, i: usize) -> UnitCode {
    UnitCode::new(
        code.din(),
        code.product().with_division(&division(i)).unwrap(),
    )
}

/// What a 2-D label scan delivers: DIN structure (check value flags) then product code.
pub fn label(code: UnitCode) -> String {
    format!(
        "{}=<{}",
        code.din().with_flags(Flags::CHECK_VALUE),
        code.product().as_str()
    )
}

pub fn network() -> CustodyState {
    CustodyState::new([
        (site("hospital-a"), fin(HOSPITAL_FIN)),
        (site("cpc-kyoto"), fin(CPC_FIN)),
    ])
}

/// Applies events and checks invariants after each.
pub fn apply_all(state: &mut CustodyState, events: &[Event]) {
    for event in events {
        state.apply(event);
        state.check_invariants().unwrap();
        // Every recorded event must survive the ledger's JSON round trip.
        assert_eq!(&Event::from_json(&event.to_json()).unwrap(), event);
    }
}

pub fn allocate(state: &mut CustodyState, site_name: &str, fin_text: &str, at: Timestamp) -> Din {
    let events = decide_allocate_dins(
        state,
        &AllocateDins {
            site: site(site_name),
            fin: fin(fin_text),
            count: 1,
            by: user("admin"),
            at,
        },
    )
    .unwrap();
    apply_all(state, &events);
    match &events[0] {
        Event::DinAllocated { din, .. } => *din,
        other => panic!("unexpected {other:?}"),
    }
}

pub fn collect(
    state: &mut CustodyState,
    site_name: &str,
    fin_text: &str,
    product_code: &str,
    patient: Option<&str>,
    by: &str,
    at: Timestamp,
) -> UnitCode {
    let din = allocate(state, site_name, fin_text, at);
    let code = UnitCode::new(din, product(product_code));
    let events = decide_create_unit(
        state,
        &CreateUnit {
            code,
            patient: patient.map(subject),
            expires_at: at.plus_us(48 * HOUR_US),
            site: site(site_name),
            location: loc(&format!("{site_name}/collection")),
            by: user(by),
            at,
        },
    )
    .unwrap();
    apply_all(state, &events);
    code
}

/// Derives at the CPC and applies the events.
pub fn derive(
    state: &mut CustodyState,
    operation: Derivation,
    parents: &[UnitCode],
    children: &[UnitCode],
    lots: &[&str],
    by: &str,
    at: Timestamp,
) -> Vec<Event> {
    let events = decide_derive(
        state,
        &Derive {
            operation,
            parents: parents.to_vec(),
            children: children
                .iter()
                .map(|&code| ChildUnit {
                    code,
                    expires_at: at.plus_us(365 * 24 * HOUR_US),
                })
                .collect(),
            reagent_lots: lots.iter().map(|l| ReagentLot::parse(l).unwrap()).collect(),
            site: site("cpc-kyoto"),
            location: loc("cpc-kyoto/isolator-1"),
            by: user(by),
            at,
        },
    )
    .unwrap();
    apply_all(state, &events);
    events
}

pub fn hand_off(
    state: &mut CustodyState,
    code: UnitCode,
    from: &str,
    to: &str,
    site_name: &str,
    at: Timestamp,
) {
    let events = decide_hand_off(
        state,
        &HandOff {
            code,
            from: user(from),
            to: user(to),
            site: site(site_name),
            location: loc(&format!("{site_name}/dock")),
            condition: ReceiptCondition {
                acceptable: true,
                temperature_c: Some(4.5),
                note: String::new(),
            },
            at,
        },
    )
    .unwrap();
    apply_all(state, &events);
}

pub fn scan_ok(
    state: &mut CustodyState,
    step: CustodyStep,
    code: UnitCode,
    site_name: &str,
    by: &str,
    at: Timestamp,
) {
    let expected = ExpectedStep {
        step,
        unit: code,
        site: site(site_name),
    };
    let event = decide_scan(
        state,
        &expected,
        &label(code),
        &loc(&format!("{site_name}/station")),
        &user(by),
        at,
    )
    .unwrap_or_else(|refusal| panic!("scan refused: {}", refusal.error));
    apply_all(state, &[event]);
}

/// Nurses and physicians are qualified at the hospital; `trainee` nowhere.
pub fn qualified(u: &UserId, s: &SiteId, _at: Timestamp) -> bool {
    s.as_str() == "hospital-a" && u.as_str() != "trainee"
}

pub fn bedside_check(
    order: &str,
    patient: &str,
    code: UnitCode,
    first: (&str, &str, String),
    second: (&str, &str, String),
    at: Timestamp,
) -> BedsideCheck {
    BedsideCheck {
        order: InfusionOrder {
            order: OrderId::parse(order).unwrap(),
            patient: subject(patient),
            unit: code,
            site: site("hospital-a"),
        },
        first: CheckerScan {
            user: user(first.0),
            wristband: first.1.to_string(),
            unit: first.2,
        },
        second: CheckerScan {
            user: user(second.0),
            wristband: second.1.to_string(),
            unit: second.2,
        },
        location: loc("hospital-a/ward-7/bed-3"),
        at,
    }
}

/// Verifies at the bedside and records the infusion 10 minutes later.
pub fn infuse(state: &mut CustodyState, order: &str, patient: &str, code: UnitCode, at: Timestamp) {
    let check = bedside_check(
        order,
        patient,
        code,
        ("nurse-1", patient, label(code)),
        ("nurse-2", patient, label(code)),
        at,
    );
    let verified = decide_bedside(state, &check, &qualified)
        .unwrap_or_else(|refusal| panic!("bedside refused: {}", refusal.error));
    apply_all(state, &[verified]);
    let events = decide_infusion(
        state,
        &RecordInfusion {
            order: OrderId::parse(order).unwrap(),
            by: user("nurse-1"),
            at: at.plus_us(10 * MINUTE_US),
        },
    )
    .unwrap();
    apply_all(state, &events);
}
