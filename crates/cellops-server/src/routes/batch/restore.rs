//! Simulated devices after a restart. A simulated device lives in the server process; its
//! state is rebuilt from what the ledger says happened to it, so `simulate` goes on after
//! the server restarts.
//!
//! The device is made again exactly as at the batch's start (product, seed, sample period,
//! the batch's start as its origin) and replayed through the batch's stream in order: its
//! time advanced to each record's time, each device step's program started as
//! `start_step_as` started it (recipe operation and set points, the recorded duration),
//! each injected fault injected again, the safe state at an abort; then advanced to the
//! newest stored sample's time or the last record's, whichever is later. Samples follow the
//! sample period from the origin, so the rebuilt device numbers its samples as the old one
//! did and the next one read continues the stored telemetry without a gap or a duplicate.
//! The alarms already turned into deviations are remembered again from those records, so a
//! still-active alarm is not reported twice.

use std::sync::{Arc, Mutex};

use cellops_device::{CultureDevice, Program, ProgramRef, SimulatedDevice};
use cellops_ledger::telemetry::with_store;
use cellops_ledger::{Backend, Record};
use cellops_process::Recipe;
use cellops_process::engine::{BatchEvent, BatchStatus};
use cellops_process::recipe::model::{Step, StepKind};
use time::OffsetDateTime;

use super::{
    ADVANCE_SLICE_H, BatchModel, BatchOpened, BatchRuntime, CONTROLLER_PERSON, FaultBody, demo,
    parse_fault,
};
use crate::error::ApiResult;
use crate::state::AppState;

/// A batch whose simulated device is to be rebuilt.
struct Lost {
    opened: BatchOpened,
    recipe: Recipe,
    started_at: OffsetDateTime,
    records: Vec<Record>,
}

/// What [`restore_simulated_devices`] did.
#[derive(Debug, Default)]
pub struct Restored {
    /// Batches whose devices were rebuilt.
    pub batches: Vec<String>,
    /// Batches whose devices could not be rebuilt, and why (their `simulate` answers 409;
    /// the server starts anyway).
    pub failed: Vec<(String, String)>,
}

/// Rebuilds the simulated device of every running simulated batch that has none in this
/// process (after a restart). A batch whose device cannot be rebuilt is reported in
/// `failed` and left without one. Blocking.
pub fn restore_simulated_devices<B: Backend>(state: &AppState<B>) -> ApiResult<Restored> {
    state.sync_blocking()?;
    let have: Vec<String> =
        state.read_model(|r: &mut BatchRuntime| r.devices.keys().cloned().collect());
    let lost: Vec<Lost> = state.read_model(|m: &mut BatchModel| {
        m.batches()
            .filter(|b| {
                b.opened.simulation.is_some()
                    && b.state.status() == BatchStatus::Running
                    && !have.contains(&b.opened.batch)
            })
            .filter_map(|b| {
                Some(Lost {
                    recipe: m
                        .recipe(&b.opened.product, &b.opened.recipe_version)?
                        .recipe
                        .clone(),
                    started_at: b.state.started_at()?,
                    opened: b.opened.clone(),
                    records: b.records.clone(),
                })
            })
            .collect()
    });
    let mut restored = Restored::default();
    for batch in lost {
        let device_id = batch.opened.device.clone();
        let (stored_seq, newest_sample) = state.ledger.read(|b| {
            with_store(b, |s| {
                let last = s.last_seq(&device_id)?;
                let newest = s
                    .chunks(&device_id, last, last)?
                    .last()
                    .map(|c| c.last_unix_ms);
                Ok((last, newest))
            })
        })?;
        let device = match rebuild(&batch, stored_seq, newest_sample) {
            Ok(device) => device,
            Err(e) => {
                restored.failed.push((batch.opened.batch.clone(), e));
                continue;
            }
        };
        let alarms = reported_alarms(&batch);
        let name = batch.opened.batch.clone();
        state.read_model(|r: &mut BatchRuntime| {
            r.devices.insert(name.clone(), Arc::new(Mutex::new(device)));
            r.reported_alarms
                .extend(alarms.into_iter().map(|code| (name.clone(), code)));
        });
        restored.batches.push(name);
    }
    Ok(restored)
}

/// When a batch record happened: the engine event's time, or a culture record's `at`.
fn record_at(record: &Record, payload: &serde_json::Value) -> Option<OffsetDateTime> {
    if record.event_type.starts_with("batch.") {
        return BatchEvent::from_json(payload).ok().map(|e| e.at());
    }
    payload["at"]
        .as_str()
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
}

fn advance(
    device: &mut SimulatedDevice,
    to: OffsetDateTime,
    stored_seq: u64,
) -> Result<(), String> {
    while device.now() < to {
        let step = (device.now() + time::Duration::seconds_f64(ADVANCE_SLICE_H * 3600.0)).min(to);
        device.advance_to(step).map_err(|e| e.to_string())?;
        // What the old device's reader stored is in the telemetry store: forget it here
        // (reading after a seq acknowledges the samples up to it).
        device
            .read_samples(stored_seq, 0)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn rebuild(
    batch: &Lost,
    stored_seq: u64,
    newest_sample_ms: Option<i64>,
) -> Result<SimulatedDevice, String> {
    let opened = &batch.opened;
    let sim = opened
        .simulation
        .ok_or_else(|| "the batch has no simulation settings".to_string())?;
    let product = demo::twin_product(batch.recipe.product())
        .ok_or_else(|| format!("the twin has no model of {}", opened.product))?;
    let mut device = SimulatedDevice::new(
        &opened.device,
        product,
        sim.seed,
        batch.started_at,
        sim.sample_period_s,
    )
    .map_err(|e| e.to_string())?;
    let mut last = batch.started_at;
    for record in &batch.records {
        let payload = record.payload_json();
        let Some(at) = record_at(record, &payload) else {
            continue;
        };
        advance(&mut device, at, stored_seq)?;
        last = last.max(at);
        match record.event_type.as_str() {
            "batch.step_started" => {
                let Ok(BatchEvent::StepStarted {
                    step,
                    duration_hours: Some(hours),
                    ..
                }) = BatchEvent::from_json(&payload)
                else {
                    continue;
                };
                let Some(Step {
                    kind: StepKind::Device(d),
                    ..
                }) = batch.recipe.step_at(step.position)
                else {
                    continue;
                };
                let program = Program {
                    reference: ProgramRef {
                        batch: opened.batch.clone(),
                        step: step.id.clone(),
                    },
                    operation: d.operation,
                    set_points: d.set_points.clone(),
                    duration_hours: hours,
                };
                device
                    .start_program(&program)
                    .map_err(|e| format!("step {}: {e}", step.id))?;
            }
            "culture.fault_injected" => {
                let parameters = &payload["parameters"];
                let body = FaultBody {
                    fault: payload["fault"].as_str().unwrap_or_default().to_string(),
                    duration_h: payload["duration_h"].as_f64(),
                    ambient_c: parameters["ambient_c"].as_f64(),
                    bacteria_per_ml: parameters["bacteria_per_ml"].as_f64(),
                    sensor: parameters["sensor"].as_str().map(str::to_string),
                    per_h: parameters["per_h"].as_f64(),
                };
                let fault = parse_fault(&body).map_err(|e| e.message)?;
                device
                    .inject_fault(fault, body.duration_h)
                    .map_err(|e| e.to_string())?;
            }
            "batch.batch_aborted" => {
                device
                    .safe_state("batch aborted")
                    .map_err(|e| e.to_string())?;
            }
            _ => {}
        }
    }
    let newest = newest_sample_ms
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok());
    advance(
        &mut device,
        newest.map_or(last, |t| t.max(last)),
        stored_seq,
    )?;
    Ok(device)
}

/// The alarm codes the demo operator already turned into deviations on this batch.
fn reported_alarms(batch: &Lost) -> Vec<String> {
    let prefix = format!("device {} alarm ", batch.opened.device);
    batch
        .records
        .iter()
        .filter(|r| r.event_type == "batch.deviation_opened" && r.actor == CONTROLLER_PERSON)
        .filter_map(|r| {
            // The description is the deviation source's text: "device D alarm CODE: …".
            let text = r.payload_json().to_string();
            let rest = &text[text.find(&prefix)? + prefix.len()..];
            rest.split_once(':').map(|(code, _)| code.to_string())
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}
