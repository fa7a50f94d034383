//! 100k units in pool/split/aliquot trees: recall by lot, DIN and reagent lot answer exactly,
//! through the indexed graph walk. (Speed is measured by the benchmark, not here.)

use crate::common::*;
use cellops_custody::*;
use std::collections::{BTreeSet, HashMap};

const LOTS: usize = 990;
const SPLIT_PARTS: usize = 10;
const ALIQUOTS_PER_PART: usize = 9;
const REAGENT_LOTS: usize = 7;

#[test]
fn recall_over_100k_units_finds_exactly_the_patients() {
    let mut state = network();
    let cpc = site("cpc-kyoto");
    let hospital = site("hospital-a");
    let mut lots = Vec::with_capacity(LOTS);
    let mut patient_of_lot: HashMap<usize, BTreeSet<SubjectId>> = HashMap::new();
    let mut leaves_of_lot: Vec<Vec<UnitCode>> = Vec::new();
    let dins = decide_allocate_dins(
        &state,
        &AllocateDins {
            site: cpc.clone(),
            fin: fin(CPC_FIN),
            count: LOTS as u32,
            by: user("admin"),
            at: t(0),
        },
    )
    .unwrap();
    for event in &dins {
        state.apply(event);
    }
    for (k, event) in dins.iter().enumerate() {
        let Event::DinAllocated { din, .. } = event else {
            unreachable!()
        };
        let root = UnitCode::new(*din, product("S4321000"));
        let created = decide_create_unit(
            &state,
            &CreateUnit {
                code: root,
                patient: None,
                expires_at: t(24 * 365),
                site: cpc.clone(),
                location: loc("cpc-kyoto/collection"),
                by: user("operator-1"),
                at: t(0),
            },
        )
        .unwrap();
        created.iter().for_each(|e| state.apply(e));
        let parts: Vec<UnitCode> = (0..SPLIT_PARTS).map(|i| with_division(root, i)).collect();
        let lot_name = format!("vector-{}", k % REAGENT_LOTS);
        for e in derive_quiet(&state, Derivation::Split, &[root], &parts, &[&lot_name]) {
            state.apply(&e);
        }
        let mut leaves = Vec::new();
        for (p, &part) in parts.iter().enumerate() {
            let children: Vec<UnitCode> = (0..ALIQUOTS_PER_PART)
                .map(|i| with_division(root, SPLIT_PARTS + p * ALIQUOTS_PER_PART + i))
                .collect();
            for e in derive_quiet(&state, Derivation::Aliquot, &[part], &children, &[]) {
                state.apply(&e);
            }
            leaves.extend(children);
        }
        lots.push(root);
        leaves_of_lot.push(leaves);
    }
    // Pool one leaf of each pair of neighbouring lots into a new unit (new DIN).
    let pool_dins = decide_allocate_dins(
        &state,
        &AllocateDins {
            site: cpc.clone(),
            fin: fin(CPC_FIN),
            count: (LOTS / 2) as u32,
            by: user("admin"),
            at: t(1),
        },
    )
    .unwrap();
    pool_dins.iter().for_each(|e| state.apply(e));
    let mut pools = Vec::new();
    for (j, event) in pool_dins.iter().enumerate() {
        let Event::DinAllocated { din, .. } = event else {
            unreachable!()
        };
        let pooled = UnitCode::new(*din, product("S4321000"));
        let parents = [leaves_of_lot[2 * j][0], leaves_of_lot[2 * j + 1][0]];
        for e in derive_quiet(&state, Derivation::Pool, &parents, &[pooled], &[]) {
            state.apply(&e);
        }
        pools.push((2 * j, 2 * j + 1, pooled));
    }
    assert!(
        state.unit_count() >= 100_000,
        "{} units",
        state.unit_count()
    );

    // Infuse one leaf of every 10th lot, and every 25th pool, through the real bedside path.
    let infuse_at = |state: &mut CustodyState, code: UnitCode, n: usize| -> SubjectId {
        let patient = format!("subj-{n}");
        let at = t(10);
        let handed = decide_hand_off(
            state,
            &HandOff {
                code,
                from: user("operator-1"),
                to: user("nurse-1"),
                site: hospital.clone(),
                location: loc("hospital-a/pharmacy"),
                condition: ReceiptCondition {
                    acceptable: true,
                    temperature_c: Some(-160.0),
                    note: String::new(),
                },
                at,
            },
        )
        .unwrap();
        handed.iter().for_each(|e| state.apply(e));
        infuse(state, &format!("order-{n}"), &patient, code, at);
        subject(&patient)
    };
    for k in (0..LOTS).step_by(10) {
        let leaf = leaves_of_lot[k][ALIQUOTS_PER_PART + 1];
        let patient = infuse_at(&mut state, leaf, k);
        patient_of_lot.entry(k).or_default().insert(patient);
    }
    for (n, &(a, b, pooled)) in pools.iter().enumerate().step_by(25) {
        let patient = infuse_at(&mut state, pooled, 100_000 + n);
        patient_of_lot.entry(a).or_default().insert(patient.clone());
        patient_of_lot.entry(b).or_default().insert(patient);
    }
    state.check_invariants().unwrap();

    // Recall by lot: exactly that lot's patients, including those of pools it went into.
    for k in [0usize, 1, 10, 20, 50, 51, 500, 980] {
        let recall = state.recall_by_unit(&lots[k]).unwrap();
        let expected = patient_of_lot.get(&k).cloned().unwrap_or_default();
        assert_eq!(recall.patients, expected, "lot {k}");
        assert_eq!(
            recall.units.len(),
            1 + SPLIT_PARTS * (1 + ALIQUOTS_PER_PART) + 1,
            "lot {k}"
        );
        assert_eq!(state.recall_by_din(&lots[k].din()).patients, expected);
    }
    // Recall by reagent lot: the union over the lots made with it.
    for r in 0..REAGENT_LOTS {
        let recall =
            state.recall_by_reagent_lot(&ReagentLot::parse(&format!("vector-{r}")).unwrap());
        let expected: BTreeSet<SubjectId> = (0..LOTS)
            .filter(|k| k % REAGENT_LOTS == r)
            .flat_map(|k| patient_of_lot.get(&k).cloned().unwrap_or_default())
            .collect();
        assert_eq!(recall.patients, expected, "reagent lot {r}");
        assert!(!recall.patients.is_empty());
    }
}

fn derive_quiet(
    state: &CustodyState,
    operation: Derivation,
    parents: &[UnitCode],
    children: &[UnitCode],
    lots: &[&str],
) -> Vec<Event> {
    decide_derive(
        state,
        &Derive {
            operation,
            parents: parents.to_vec(),
            children: children
                .iter()
                .map(|&code| ChildUnit {
                    code,
                    expires_at: t(24 * 365),
                })
                .collect(),
            reagent_lots: lots.iter().map(|l| ReagentLot::parse(l).unwrap()).collect(),
            site: site("cpc-kyoto"),
            location: loc("cpc-kyoto/isolator-1"),
            by: user("operator-1"),
            at: t(1),
        },
    )
    .unwrap()
}
