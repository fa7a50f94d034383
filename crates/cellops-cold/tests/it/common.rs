//! Fixtures: a CPC with one dewar, units made through custody, an event-applying harness.

use cellops_cold::*;
use cellops_custody::{
    AllocateDins, ChildUnit, CreateUnit, CustodyState, Derivation, Derive, LocationId, UnitCode,
    decide_allocate_dins, decide_create_unit, decide_derive,
};
use cellops_domain::{SiteId, Timestamp, UserId};
use cellops_isbt::{Fin, ProductCode};

/// 2026-03-01T00:00:00Z in µs.
pub const T0_US: i64 = 1_772_323_200_000_000;
pub const HOUR_US: i64 = 3_600_000_000;

pub fn t(hours: f64) -> Timestamp {
    Timestamp::from_unix_us(T0_US + (hours * HOUR_US as f64) as i64).unwrap()
}
pub fn days(d: f64) -> Timestamp {
    t(d * 24.0)
}
pub fn site() -> SiteId {
    SiteId::parse("cpc").unwrap()
}
pub fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}
pub fn storage_id() -> StorageId {
    StorageId::parse("dewar-01").unwrap()
}
pub fn pos(text: &str) -> Position {
    Position::parse(text).unwrap()
}

/// Custody and cold state together, every event checked and JSON round-tripped.
pub struct World {
    pub custody: CustodyState,
    pub cold: ColdState,
    seq: u64,
}

impl World {
    pub fn new() -> World {
        let mut w = World {
            custody: CustodyState::new([(site(), Fin::parse("A9990").unwrap())]),
            cold: ColdState::default(),
            seq: 0,
        };
        let config = StorageConfig {
            storage: storage_id(),
            kind: StorageKind::Ln2Vapour,
            site: site(),
            racks: 2,
            boxes_per_rack: 2,
            slots_per_box: 4,
            rule: AlarmRule {
                alarm_above_c: -150.0,
                delay_minutes: 10,
                reading_gap_minutes_max: 30,
            },
            stored_days_max: 365,
        };
        let e = decide_configure_storage(&w.cold, &config, &user("admin"), t(0.0)).unwrap();
        w.apply(&e);
        w
    }

    /// Applies a cold event (after a JSON round trip, as the server would) and returns its seq.
    pub fn apply(&mut self, event: &ColdEvent) -> u64 {
        let json = event.to_json_value().to_string();
        let back = ColdEvent::from_json(&json).unwrap();
        assert_eq!(&back, event, "JSON round trip");
        assert!(COLD_EVENT_TYPES.iter().any(|t| t.name == event.type_name()));
        self.seq += 1;
        self.cold.apply(&back, self.seq);
        self.cold.check_invariants().unwrap();
        self.seq
    }

    pub fn apply_all(&mut self, events: &[ColdEvent]) {
        for e in events {
            self.apply(e);
        }
    }

    /// Allocates DINs and creates `n` units of product `S1234100` expiring at `expires[i]`.
    pub fn units(&mut self, expires: &[Timestamp]) -> Vec<UnitCode> {
        let events = decide_allocate_dins(
            &self.custody,
            &AllocateDins {
                site: site(),
                fin: Fin::parse("A9990").unwrap(),
                count: expires.len() as u32,
                by: user("op"),
                at: t(0.0),
            },
        )
        .unwrap();
        let mut codes = Vec::new();
        for (e, exp) in events.iter().zip(expires) {
            self.custody.apply(e);
            let cellops_custody::Event::DinAllocated { din, .. } = e else {
                panic!("allocation")
            };
            let code = UnitCode::new(*din, ProductCode::parse("S1234100").unwrap());
            for e in decide_create_unit(
                &self.custody,
                &CreateUnit {
                    code,
                    patient: None,
                    expires_at: *exp,
                    site: site(),
                    location: LocationId::parse("lab").unwrap(),
                    by: user("op"),
                    at: t(0.0),
                },
            )
            .unwrap()
            {
                self.custody.apply(&e);
            }
            codes.push(code);
        }
        codes
    }

    /// Splits `lot` into `n` doses with the given expiries.
    pub fn split(&mut self, lot: UnitCode, expires: &[Timestamp]) -> Vec<BankDose> {
        let doses: Vec<BankDose> = expires
            .iter()
            .enumerate()
            .map(|(i, exp)| BankDose {
                code: UnitCode::new(
                    lot.din(),
                    lot.product()
                        .with_division(&format!("A{}", (b'a' + i as u8) as char))
                        .unwrap(),
                ),
                expires_at: *exp,
            })
            .collect();
        for e in decide_derive(
            &self.custody,
            &Derive {
                operation: Derivation::Split,
                parents: vec![lot],
                children: doses
                    .iter()
                    .map(|d| ChildUnit {
                        code: d.code,
                        expires_at: d.expires_at,
                    })
                    .collect(),
                reagent_lots: vec![],
                site: site(),
                location: LocationId::parse("lab").unwrap(),
                by: user("op"),
                at: t(1.0),
            },
        )
        .unwrap()
        {
            self.custody.apply(&e);
        }
        doses
    }

    pub fn put_away(
        &mut self,
        unit: UnitCode,
        position: &str,
        expires_at: Timestamp,
        at: Timestamp,
    ) {
        let e = decide_put_away(
            &self.cold,
            &PutAway {
                unit,
                scanned_position: position.to_string(),
                expected_position: None,
                patient: None,
                expires_at,
                site: site(),
                by: user("op"),
                at,
            },
        )
        .unwrap();
        self.apply(&e);
    }

    pub fn retrieve(
        &self,
        unit: UnitCode,
        position: &str,
        purpose: RetrievePurpose,
        at: Timestamp,
    ) -> Result<ColdEvent, Box<Refusal>> {
        decide_retrieve(
            &self.cold,
            &Retrieve {
                unit,
                scanned_position: position.to_string(),
                purpose,
                fefo_override: None,
                site: site(),
                by: user("op"),
                at,
            },
        )
    }
}
