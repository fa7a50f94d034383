//! Release readiness (issue 8: "release-readiness check of a batch with 200 records: p99 <
//! 5 ms"): the QC read model is fed 200 ledger records of one batch (registration, the batch
//! engine's record, results and corrections of every test of the PRIME CAR-T specification),
//! then readiness is computed as the release page does — the batch record's blockers from
//! the batch read model, the units' excursions from the cold-chain read model, the rest from
//! the QC read model — many times; p50 and p99.
//! Absolute figures with the goal (no baseline: nothing else computes readiness).

use std::time::Instant;

use cellops_domain::Timestamp;
use cellops_ledger::Record;
use cellops_qc::{Criterion, LabelFacts, ProcessFacts, SpecCatalog};
use cellops_server::projection::Projection;
use cellops_server::routes::batch::BatchModel;
use cellops_server::routes::qc::QcModel;
use cellops_server::routes::storage::ColdModel;
use serde_json::{Value, json};

use crate::bench::BenchResult;

/// Records of the batch the readiness check reads.
const BATCH_RECORDS: usize = 200;
/// Readiness checks measured (after a warm-up of a tenth as many).
const CHECKS: usize = 5_000;
const CHECKS_QUICK: usize = 200;
/// Issue 8 goal: p99 under 5 ms.
const P99_GOAL_MS: f64 = 5.0;
const BATCH: &str = "bench-b-001";

fn record(seq: u64, event_type: &str, payload: Value, corrects: Option<u64>) -> Record {
    let at = Timestamp::from_unix_us(1_772_323_200_000_000 + seq as i64 * 60_000_000)
        .expect("a valid instant");
    Record {
        seq,
        stream: format!("qc/{BATCH}"),
        event_type: event_type.to_string(),
        event_version: 1,
        payload: payload.to_string(),
        actor: "qc-sato".to_string(),
        site: "cpc".to_string(),
        recorded_at: at,
        reason: corrects.map(|_| "transcription error".to_string()),
        corrects,
        signature: None,
        prev_hash: [0; 32],
        hash: [seq as u8; 32],
    }
}

/// 200 records of one PRIME CAR-T batch: every test passes at the end, after corrections
/// and invalidated OOS results on the way.
fn batch_records() -> Vec<Record> {
    let catalog = SpecCatalog::shipped().expect("shipped specifications are valid");
    let spec = catalog.get("prime-car-t", "1").expect("shipped spec");
    let mut records = vec![record(
        1,
        "qc.batch.registered",
        json!({"batch": BATCH, "product": "prime-car-t", "spec_version": "1",
               "recipe_version": "1.0.0", "units": ["A999026000001-S1234100"]}),
        None,
    )];
    records.push(Record {
        stream: format!("batch/{BATCH}"),
        event_type: "culture.batch_opened".to_string(),
        payload: json!({"batch": BATCH, "site": "cpc", "product": "prime-car-t",
               "recipe_version": "1.0.0", "recipe_hash": format!("sha256:{}", "ab".repeat(32)),
               "starting_unit": "A999026000000-S1234100", "device": "dev-1", "simulation": null})
        .to_string(),
        ..record(2, "", Value::Null, None)
    });
    let engine_records = [
        json!({"type": "batch_started", "version": 1, "batch": BATCH, "product": "prime-car-t",
               "recipe_version": "1.0.0", "recipe_hash": format!("sha256:{}", "ab".repeat(32)),
               "by": "op", "at": "2026-03-01T00:00:00Z",
               "first_step": {"id": "receive-apheresis", "position": {"phase_index": 0, "step_index": 0}}}),
        json!({"type": "batch_completed", "version": 1, "at": "2026-03-01T00:00:00Z"}),
    ];
    for (i, payload) in engine_records.into_iter().enumerate() {
        let kind = payload["type"].as_str().unwrap_or_default().to_string();
        records.push(Record {
            stream: format!("batch/{BATCH}"),
            event_type: format!("batch.{kind}"),
            payload: payload.to_string(),
            ..record(3 + i as u64, "", Value::Null, None)
        });
    }
    let mut seq = 4;
    let tests = spec.tests();
    let mut i = 0;
    while records.len() < BATCH_RECORDS {
        let t = &tests[i % tests.len()];
        i += 1;
        let value = match &t.criterion {
            Criterion::Numeric {
                unit,
                at_least,
                above,
                at_most,
                below,
            } => {
                let v = at_least
                    .or(*above)
                    .map(|l| l * 1.2 + 1.0)
                    .or(at_most.or(*below).map(|h| h / 2.0));
                let v = match (at_least.or(*above), at_most.or(*below)) {
                    (Some(l), Some(h)) => (l + h) / 2.0,
                    _ => v.expect("a numeric criterion has a bound"),
                };
                json!({"kind": "number", "value": v, "unit": unit.symbol()})
            }
            Criterion::Qualitative { accepted, .. } => {
                json!({"kind": "outcome", "outcome": accepted[0]})
            }
        };
        seq += 1;
        let corrects = (i > tests.len() && i % 3 == 0).then(|| seq - tests.len() as u64);
        let event_type = if corrects.is_some() {
            "qc.result.corrected"
        } else {
            "qc.result.recorded"
        };
        records.push(record(
            seq,
            event_type,
            json!({"batch": BATCH, "spec": "prime-car-t@1", "test": t.id, "sample": null,
                   "value": value, "verdict": "pass", "method": t.method, "instrument": "qc-lab-1"}),
            corrects,
        ));
    }
    records
}

/// p50 and p99 of the readiness check, in ms.
pub fn run(quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    let mut model = QcModel::new(SpecCatalog::shipped()?);
    let mut batches = BatchModel::default();
    let mut cold = ColdModel::default();
    let records = batch_records();
    for r in &records {
        model.apply(r);
        batches.apply(r);
        cold.apply(r);
    }
    let labels = LabelFacts::Counts {
        printed: 4,
        applied: 3,
        destroyed: 1,
    };
    let check = |model: &QcModel| {
        let process = batches
            .release_blockers(BATCH)
            .map_or(ProcessFacts::NotRecorded, ProcessFacts::Recorded);
        let units = &model.batch(BATCH).expect("the batch is registered").units;
        let excursions = cold.excursion_facts(units);
        model
            .readiness(BATCH, labels, &process, &excursions)
            .expect("the batch is registered")
            .expect("the specification is known")
    };
    let readiness = check(&model);
    anyhow::ensure!(
        readiness.releasable(),
        "the bench batch should be releasable: {:?}",
        readiness.blockers
    );
    let checks = if quick { CHECKS_QUICK } else { CHECKS };
    for _ in 0..checks / 10 {
        std::hint::black_box(check(&model));
    }
    let mut samples_ms: Vec<f64> = (0..checks)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(check(&model));
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    samples_ms.sort_by(f64::total_cmp);
    let at = |q: f64| samples_ms[((samples_ms.len() - 1) as f64 * q).round() as usize];
    Ok(vec![
        BenchResult::absolute(
            &format!("release_readiness_{BATCH_RECORDS}_records_p50"),
            "ms",
            at(0.50),
            false,
            None,
        ),
        BenchResult::absolute(
            &format!("release_readiness_{BATCH_RECORDS}_records_p99"),
            "ms",
            at(0.99),
            false,
            Some(P99_GOAL_MS),
        ),
    ])
}
