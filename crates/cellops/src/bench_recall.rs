//! `cellops bench recall`: "which patients received anything derived from unit X, or from
//! reagent lot R" on a network of 100,000 units (10,000 donations, each aliquoted into nine
//! children with one of 100 reagent lots, one child infused per donation). The units are
//! made by the custody decisions, as the server makes them. Goal: p99 < 100 ms per query.
//! Baseline, in the same process: one pass over every unit's code (what any answer that had
//! to look at every unit would cost at least).

use crate::bench::BenchResult;
use cellops_custody::{
    AllocateDins, ChildUnit, CreateUnit, CustodyState, Derivation, Derive, Event, LocationId,
    OrderId, ReagentLot, SubjectId, UnitCode, apply, decide_allocate_dins, decide_create_unit,
    decide_derive,
};
use cellops_domain::{SiteId, Timestamp, UserId};
use std::time::{Duration, Instant};

/// Longest acceptable recall answer (issue: < 100 ms for 100k units), in ms.
const RECALL_P99_MS_GOAL: f64 = 100.0;
const CHILD_DIVISIONS: [&str; 9] = ["Aa", "Ab", "Ac", "Ad", "Ae", "Af", "Ag", "Ah", "Ai"];
const REAGENT_LOTS: usize = 100;
const QUERIES: usize = 200;

struct Network {
    state: CustodyState,
    roots: Vec<UnitCode>,
    codes: Vec<UnitCode>,
}

fn build(donations: usize) -> anyhow::Result<Network> {
    let site = SiteId::parse("cpc-bench")?;
    let fin = cellops_isbt::Fin::parse("A9990")?;
    let by = UserId::parse("bench")?;
    let location = LocationId::parse("cpc-bench/isolator-1")?;
    let at = Timestamp::parse("2026-01-05T00:00:00.000000Z")?;
    let expires_at = at.plus_us(365 * 86_400_000_000);
    let mut state = CustodyState::new([(site.clone(), fin)]);
    let mut dins = Vec::with_capacity(donations);
    while dins.len() < donations {
        let count = (donations - dins.len()).min(cellops_custody::ALLOCATION_COUNT_MAX as usize);
        let events = decide_allocate_dins(
            &state,
            &AllocateDins {
                site: site.clone(),
                fin,
                count: count as u32,
                by: by.clone(),
                at,
            },
        )?;
        for e in &events {
            if let Event::DinAllocated { din, .. } = e {
                dins.push(*din);
            }
            apply(&mut state, e);
        }
    }
    let mut roots = Vec::with_capacity(donations);
    let mut codes = Vec::with_capacity(donations * (CHILD_DIVISIONS.len() + 1));
    for (i, din) in dins.iter().enumerate() {
        let root = UnitCode::parse(&format!("{din}-S1234100"))?;
        let patient = SubjectId::parse(&format!("S-BENCH{i:06}"))?;
        let created = decide_create_unit(
            &state,
            &CreateUnit {
                code: root,
                patient: Some(patient.clone()),
                expires_at,
                site: site.clone(),
                location: location.clone(),
                by: by.clone(),
                at,
            },
        )?;
        created.iter().for_each(|e| apply(&mut state, e));
        let children: Vec<ChildUnit> = CHILD_DIVISIONS
            .iter()
            .map(|d| {
                Ok(ChildUnit {
                    code: UnitCode::parse(&format!("{din}-S12341{d}"))?,
                    expires_at,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let derived = decide_derive(
            &state,
            &Derive {
                operation: Derivation::Aliquot,
                parents: vec![root],
                children: children.clone(),
                reagent_lots: vec![ReagentLot::parse(&format!("R-{}", i % REAGENT_LOTS))?],
                site: site.clone(),
                location: location.clone(),
                by: by.clone(),
                at,
            },
        )?;
        derived.iter().for_each(|e| apply(&mut state, e));
        // One dose per donation reaches its patient (the bedside path is benchmarked by
        // `bench scan` and tested end to end; here only the genealogy's size matters).
        apply(
            &mut state,
            &Event::InfusionRecorded {
                order: OrderId::parse(&format!("ORD-BENCH{i:06}"))?,
                patient,
                code: children[0].code,
                by: by.clone(),
                site: site.clone(),
                at,
            },
        );
        roots.push(root);
        codes.push(root);
        codes.extend(children.iter().map(|c| c.code));
    }
    Ok(Network {
        state,
        roots,
        codes,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let ix = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[ix.min(sorted.len() - 1)]
}

fn time_queries(n: usize, mut query: impl FnMut(usize) -> usize) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(n);
    let mut found = 0;
    for i in 0..n {
        let start = Instant::now();
        found += query(i);
        times.push(start.elapsed());
    }
    times.sort();
    (times, found)
}

pub fn run(quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    let donations = if quick { 1_000 } else { 10_000 };
    let net = build(donations)?;
    let units = net.codes.len();
    // Baseline: one pass over every unit code (median of the query count).
    let (base, seen) = time_queries(QUERIES, |_| {
        net.codes
            .iter()
            .filter(|c| c.din() == net.roots[0].din())
            .count()
    });
    anyhow::ensure!(
        seen == QUERIES * (CHILD_DIVISIONS.len() + 1),
        "baseline saw {seen}"
    );
    let (by_unit, patients) = time_queries(QUERIES, |i| {
        let root = net.roots[(i * 7919) % net.roots.len()];
        net.state
            .recall_by_unit(&root)
            .map(|r| r.patients.len())
            .unwrap_or(0)
    });
    anyhow::ensure!(
        patients == QUERIES,
        "each unit recall finds its one patient"
    );
    let (by_lot, lot_patients) = time_queries(QUERIES, |i| {
        let lot = ReagentLot::parse(&format!("R-{}", i % REAGENT_LOTS)).expect("lot id");
        net.state.recall_by_reagent_lot(&lot).patients.len()
    });
    anyhow::ensure!(
        lot_patients == QUERIES * donations / REAGENT_LOTS,
        "each reagent-lot recall finds every patient of that lot ({lot_patients})"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let base_p50 = ms(percentile(&base, 0.5));
    let suffix = if quick { "_quick" } else { "" };
    let scan = format!("one pass over all {units} unit codes, p50");
    Ok(vec![
        BenchResult::absolute(
            &format!("recall_by_unit_p99{suffix}"),
            "ms",
            ms(percentile(&by_unit, 0.99)),
            false,
            Some(RECALL_P99_MS_GOAL),
        ),
        BenchResult::absolute(
            &format!("recall_by_reagent_lot_p99{suffix}"),
            "ms",
            ms(percentile(&by_lot, 0.99)),
            false,
            Some(RECALL_P99_MS_GOAL),
        ),
        BenchResult::against(
            &format!("recall_by_reagent_lot_p50{suffix}"),
            "ms",
            ms(percentile(&by_lot, 0.5)),
            &scan,
            base_p50,
            false,
            0.1,
        ),
        BenchResult::absolute(&format!("units{suffix}"), "units", units as f64, true, None),
    ])
}
