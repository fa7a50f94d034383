//! Property tests: allocation never repeats; random genealogies stay acyclic, every child has
//! its parents, recall covers every descendant; every event survives JSON.

use crate::common::*;
use cellops_custody::*;
use proptest::prelude::*;
use std::collections::HashSet;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn allocation_never_repeats(requests in prop::collection::vec((1u32..20, 0i64..3, any::<bool>()), 1..30)) {
        let mut state = network();
        let mut seen = HashSet::new();
        for (count, year, at_hospital) in requests {
            let (site_name, fin_text) = if at_hospital { ("hospital-a", HOSPITAL_FIN) } else { ("cpc-kyoto", CPC_FIN) };
            let events = decide_allocate_dins(&state, &AllocateDins {
                site: site(site_name), fin: fin(fin_text), count, by: user("admin"), at: t(year * 24 * 366),
            }).unwrap();
            prop_assert_eq!(events.len() as u32, count);
            for event in &events {
                let Event::DinAllocated { din, .. } = event else { unreachable!() };
                prop_assert!(seen.insert(*din), "DIN {} handed out twice", din);
                state.apply(event);
            }
            state.check_invariants().unwrap();
        }
        prop_assert_eq!(state.allocator().allocated_count(), seen.len());
    }

    #[test]
    fn random_genealogies_are_acyclic_and_recall_covers_descendants(
        ops in prop::collection::vec((0u8..5, any::<prop::sample::Index>(), any::<prop::sample::Index>(), 1usize..4), 1..40)
    ) {
        let mut state = network();
        let mut next_division = 0usize;
        for hour in 0..3 {
            collect(&mut state, "cpc-kyoto", CPC_FIN, "S1234100", None, "operator-1", t(hour));
        }
        for (kind, pick_a, pick_b, n) in ops {
            let available: Vec<UnitCode> = state.units().filter(|u| u.status() == UnitStatus::Available).map(|u| u.code()).collect();
            if available.is_empty() { break; }
            let a = available[pick_a.index(available.len())];
            let b = available[pick_b.index(available.len())];
            let mut fresh = |parent: UnitCode| { next_division += 1; with_division(parent, next_division) };
            let (operation, parents, children) = match kind {
                0 => (Derivation::Split, vec![a], (0..n + 1).map(|_| fresh(a)).collect::<Vec<_>>()),
                1 => (Derivation::Aliquot, vec![a], (0..n).map(|_| fresh(a)).collect()),
                2 => (Derivation::Sample, vec![a], vec![fresh(a)]),
                3 => (Derivation::Formulate, vec![a], vec![fresh(a)]),
                _ => {
                    if a == b { continue; }
                    let din = allocate(&mut state, "cpc-kyoto", CPC_FIN, t(5));
                    (Derivation::Pool, vec![a, b], vec![UnitCode::new(din, product("S1234100"))])
                }
            };
            derive(&mut state, operation, &parents, &children, &["reagent-1"], "operator-1", t(6));
        }
        state.check_invariants().unwrap();
        for unit in state.units() {
            let trace = state.trace(&unit.code()).unwrap();
            prop_assert!(!trace.ancestors.contains(&unit.code()), "cycle through {}", unit.code());
            prop_assert!(!trace.descendants.contains(&unit.code()));
            for parent in unit.parents() {
                prop_assert!(state.unit(parent).is_some());
                prop_assert!(trace.ancestors.contains(parent));
                prop_assert!(state.trace(parent).unwrap().descendants.contains(&unit.code()));
            }
            let recall = state.recall_by_unit(&unit.code()).unwrap();
            prop_assert_eq!(recall.units.len(), trace.descendants.len() + 1);
        }
    }
}
