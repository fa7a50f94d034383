//! Read-only views of a batch that borrow the read model instead of copying the batch
//! entry: the status of `GET /api/batches/{id}`, and the batch view's one pass
//! ([`batch_view`]): status, what the page takes from the entry and its recipe, and the
//! plotted telemetry signals, with each stored chunk read once and decoded once.

use cellops_device::CultureDevice;
use cellops_device::telemetry::decode;
use cellops_domain::SiteId;
use cellops_ledger::Backend;
use cellops_ledger::telemetry::with_store;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::model::{BatchEntry, BatchModel, RecipeEntry};
use super::{TELEMETRY_PAGE_MAX, sim_device, to_odt};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// What a simulated device says now (nothing for a batch on a real device).
#[derive(Default)]
struct DeviceSnapshot {
    /// `{"status", "dropped_samples"}` of the status API.
    json: Option<Value>,
    /// The device's clock.
    now: Option<OffsetDateTime>,
    /// Its signal names, in index order.
    signals: Option<Vec<String>>,
}

/// Reads the batch's simulated device, if any, under its lock (taken and released before
/// the batch read model's, never inside it).
fn device_snapshot<B: Backend>(state: &AppState<B>, batch: &str) -> DeviceSnapshot {
    let Some(device) = sim_device(state, batch) else {
        return controlled_snapshot(state, batch);
    };
    let mut d = device.lock().expect("device lock");
    DeviceSnapshot {
        json: Some(json!({ "status": d.status().ok(), "dropped_samples": d.dropped_samples() })),
        now: Some(d.now()),
        signals: Some(d.info().signals.into_iter().map(|i| i.name).collect()),
    }
}

/// What the controller of the batch's configured real device last read (`serve --devices`):
/// its status and signals; the batch's "now" stays the server clock.
fn controlled_snapshot<B: Backend>(state: &AppState<B>, batch: &str) -> DeviceSnapshot {
    let opened = state.read_model(|m: &mut BatchModel| {
        m.batch(batch)
            .filter(|b| b.opened.simulation.is_none())
            .map(|b| (b.opened.site.clone(), b.opened.device.clone()))
    });
    let Some(handle) =
        opened.and_then(|(site, device)| super::devices::controller_for(state, &site, &device))
    else {
        return DeviceSnapshot::default();
    };
    DeviceSnapshot {
        json: Some(
            json!({ "status": handle.last_status(), "endpoint": handle.entry().endpoint() }),
        ),
        now: None,
        signals: handle
            .info()
            .map(|i| i.signals.into_iter().map(|s| s.name).collect()),
    }
}

/// The status JSON of `GET /api/batches/{id}` from the borrowed entry. The batch's "now"
/// is the simulated device's time, else `clock_now`, never before its last event.
fn status_value(
    batch: &str,
    entry: &BatchEntry,
    device: &DeviceSnapshot,
    clock_now: OffsetDateTime,
) -> Value {
    let state = &entry.state;
    let started = state.started_at();
    let predicted_harvest = entry
        .prediction
        .as_ref()
        .and_then(|p| p["prediction"]["median_day"].as_f64())
        .zip(started)
        .map(|(day, s)| s + time::Duration::seconds_f64(day * 86_400.0));
    let rfc = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let now = device.now.unwrap_or(clock_now);
    let batch_time = state.last_at().map_or(now, |last| now.max(last));
    json!({
        "batch": batch,
        "site": entry.opened.site,
        "product": entry.opened.product,
        "recipe_version": entry.opened.recipe_version,
        "recipe_hash": entry.opened.recipe_hash,
        "starting_unit": entry.opened.starting_unit,
        "device": entry.opened.device,
        "simulation": entry.opened.simulation,
        "status": state.status(),
        "started_at": started.map(rfc),
        "batch_time": rfc(batch_time),
        "due_step": state.due_step(),
        "active_step": state.active_step(),
        "on_hold_by": state.holding_deviations(),
        "deviations": state.deviations().collect::<Vec<_>>(),
        "open_deviations": entry.open_deviations().iter().map(|d| d.id.to_string()).collect::<Vec<_>>(),
        "release_blockers": cellops_process::engine::release_blockers(state),
        "prediction": entry.prediction,
        "predicted_harvest_at": predicted_harvest.map(rfc),
        "harvested_units": entry.harvested_units,
        "device_state": device.json,
        "review_signed": entry.review_signed,
    })
}

/// One pass over the batch read model: the status, `extra` over the entry and its recipe,
/// and the device id. `caller`, when given, must hold a role at the batch's site.
fn read<B: Backend, T>(
    state: &AppState<B>,
    caller: Option<&Caller>,
    batch: &str,
    device: &DeviceSnapshot,
    extra: impl FnOnce(&BatchEntry, &RecipeEntry) -> T,
) -> ApiResult<(Value, T, String)> {
    let clock_now = to_odt(state.clock.now());
    state.read_model(|m: &mut BatchModel| {
        let entry = m
            .batch(batch)
            .ok_or_else(|| ApiError::not_found(format!("batch {batch} does not exist")))?;
        if let Some(caller) = caller {
            caller.require_site(&SiteId::parse(&entry.opened.site).map_err(ApiError::internal)?)?;
        }
        let recipe = m
            .recipe(&entry.opened.product, &entry.opened.recipe_version)
            .ok_or_else(|| ApiError::internal(format!("recipe of batch {batch} is missing")))?;
        Ok((
            status_value(batch, entry, device, clock_now),
            extra(entry, recipe),
            entry.opened.device.clone(),
        ))
    })
}

/// The status of `GET /api/batches/{id}` (read models as they are; the caller syncs).
pub fn status<B: Backend>(
    state: &AppState<B>,
    caller: Option<&Caller>,
    batch: &str,
) -> ApiResult<Value> {
    let device = device_snapshot(state, batch);
    read(state, caller, batch, &device, |_, _| ()).map(|(status, (), _)| status)
}

/// What the batch view shows, read in one pass.
#[derive(Debug)]
pub struct BatchView<T> {
    /// The status, as `GET /api/batches/{id}` answers it.
    pub status: Value,
    /// What the page's closure took from the borrowed entry and its recipe.
    pub extra: T,
    /// Per signal asked for, in that order: the stored samples as (device time in ms since
    /// the Unix epoch, value), in sample order, at most `TELEMETRY_PAGE_MAX` each.
    pub series: Vec<Vec<(i64, f64)>>,
}

/// The batch view's read: brings the read models up to the ledger once, checks that the
/// caller holds a role at the batch's site, builds the status and `extra` from the borrowed
/// entry (no copy of its records), and reads the device's stored telemetry chunks once,
/// decoding each once and keeping only the samples of `signals`.
///
/// # Errors
/// 404 for an unknown batch, 403 outside the caller's sites, 400 naming `signal` for a
/// signal the device does not have, and storage errors.
pub async fn batch_view<B: Backend, T>(
    state: &AppState<B>,
    caller: &Caller,
    batch: &str,
    signals: &[&str],
    extra: impl FnOnce(&BatchEntry, &RecipeEntry) -> T,
) -> ApiResult<BatchView<T>> {
    state.sync().await?;
    let device = device_snapshot(state, batch);
    let (status, extra, device_id) = read(state, Some(caller), batch, &device, extra)?;
    let names: Vec<String> = device.signals.unwrap_or_else(|| {
        cellops_device::SIGNALS
            .iter()
            .map(|(n, _)| (*n).to_string())
            .collect()
    });
    let wanted = signals
        .iter()
        .map(|s| {
            names
                .iter()
                .position(|n| n == s)
                .and_then(|i| u16::try_from(i).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "signal",
                        format!("unknown signal {s:?}: use one of {}", names.join(", ")),
                    )
                })
        })
        .collect::<ApiResult<Vec<u16>>>()?;
    let series = state
        .blocking(move |s| {
            let chunks = s
                .ledger
                .read(|b| with_store(b, |st| st.chunks(&device_id, 1, u64::MAX >> 1)))?;
            let mut out: Vec<Vec<(i64, f64)>> = vec![Vec::new(); wanted.len()];
            for c in &chunks {
                for sample in decode(&c.data).map_err(ApiError::internal)? {
                    if let Some(k) = wanted.iter().position(|w| *w == sample.signal)
                        && out[k].len() < TELEMETRY_PAGE_MAX
                    {
                        out[k].push((sample.at_unix_ms, sample.value));
                    }
                }
            }
            Ok(out)
        })
        .await?;
    Ok(BatchView {
        status,
        extra,
        series,
    })
}
