//! The batch view: recipe progress (phases and steps: done, in progress, due), the growth
//! curve of the device telemetry with the in-process counts, the twin's forecast band and
//! the predicted dose day (an SVG drawn here with the user's language), metabolites,
//! alarms and deviations, and the operator's confirmation of the step in progress with an
//! e-signature (password re-entry) through the batch API (`POST
//! /api/batches/{id}/steps/{step}/complete`). Starting the due step and entering sample
//! results are `batch_steps.rs`; this module only offers them (`start_step`,
//! `sampling_step` of the view).
//!
//! The growth plot is drawn here rather than with `cellops_twin::plot::fit_svg`: that one
//! needs a fitted `Prediction` (the batch record keeps only the forecast rows) and writes
//! fixed English labels; this one takes the recorded forecast and translated labels.

use super::i18n::Lang;
use super::{Ui, error_message, idempotency_headers, render};
use crate::json::AppJson;
use crate::routes::batch::model::RecipeEntry;
use crate::routes::batch::view::batch_view;
use crate::routes::batch::{BatchEntry, SignatureBody, complete_step};
use crate::state::AppState;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cellops_domain::{Role, SiteId, Timestamp};
use cellops_process::engine::{BatchEvent, DecisionOutcome};
use cellops_process::recipe::model::{DecisionStep, StepKind};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Telemetry signals the page plots.
const GROWTH_SIGNAL: &str = "viable_density";
const METABOLITES: [&str; 2] = ["glucose_mm", "lactate_mm"];

#[derive(Deserialize)]
pub struct BatchQuery {
    #[serde(default)]
    pub batch: String,
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn label(lang: Lang, prefix: &str, code: &str) -> String {
    lang.texts()
        .get(&format!("{prefix}{}", code.replace(['.', '-'], "_")))
        .cloned()
        .unwrap_or_else(|| code.to_string())
}

/// An RFC 3339 time (the batch API's) in the user's format.
fn rfc_text(ui: &Ui, t: time::OffsetDateTime) -> String {
    let us = (t.unix_timestamp_nanos() / 1_000) as i64;
    Timestamp::from_unix_us(us)
        .map(|at| ui.format_time(at))
        .unwrap_or_default()
}

fn rfc_value(ui: &Ui, v: &Value) -> Option<String> {
    let t =
        time::OffsetDateTime::parse(v.as_str()?, &time::format_description::well_known::Rfc3339)
            .ok()?;
    Some(rfc_text(ui, t))
}

/// A series of (hours since start, value).
type Series = Vec<(f64, f64)>;

/// What the growth plot shows.
struct Growth {
    telemetry: Series,
    counts: Series,
    /// (hours, p10, p50, p90) cells/mL.
    forecast: Vec<[f64; 4]>,
    dose_day: Option<f64>,
    /// Translation key naming the line at `dose_day`: predicted, reached, or harvested at
    /// the latest day without it.
    dose_label: &'static str,
    /// Harvest window of the decision, days.
    window: Option<(f64, f64)>,
}

fn fmt_sci(v: f64) -> String {
    let e = v.log10().floor() as i32;
    format!("10^{e}")
}

/// The growth curve as SVG (log axis), labelled in the user's language.
fn growth_svg(lang: Lang, g: &Growth) -> String {
    let (w, h, ml, mr, mt, mb) = (720.0, 300.0, 56.0, 12.0, 14.0, 40.0);
    let values: Vec<f64> = g
        .telemetry
        .iter()
        .chain(g.counts.iter())
        .map(|p| p.1)
        .chain(g.forecast.iter().flat_map(|f| [f[1], f[3]]))
        .filter(|v| *v > 0.0 && v.is_finite())
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"growth-title\" class=\"plot\" id=\"growth-plot\"><title id=\"growth-title\">{}</title>",
        lang.t("batch_growth")
    );
    if values.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"20\" y=\"40\">{}</text></svg>",
            lang.t("batch_no_data")
        );
        return svg;
    }
    let lo = values
        .iter()
        .cloned()
        .fold(f64::MAX, f64::min)
        .log10()
        .floor();
    let hi = values
        .iter()
        .cloned()
        .fold(f64::MIN, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let hours_max = g
        .telemetry
        .iter()
        .chain(g.counts.iter())
        .map(|p| p.0)
        .chain(g.forecast.iter().map(|f| f[0]))
        .chain(g.dose_day.map(|d| d * 24.0))
        .chain(g.window.map(|w| w.1 * 24.0))
        .fold(24.0, f64::max);
    let days = (hours_max / 24.0).ceil();
    let x = |hours: f64| ml + (hours / 24.0) / days * (w - ml - mr);
    let y = |v: f64| mt + (hi - v.max(1.0).log10()) / (hi - lo) * (h - mt - mb);
    let _ = write!(
        svg,
        "<rect x=\"{ml}\" y=\"{mt}\" width=\"{}\" height=\"{}\" fill=\"#fff\" stroke=\"#8a96a3\"/>",
        w - ml - mr,
        h - mt - mb
    );
    if let Some((from, to)) = g.window {
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{mt}\" width=\"{:.1}\" height=\"{}\" fill=\"#eef7ee\" class=\"harvest-window\"/>",
            x(from * 24.0),
            x(to * 24.0) - x(from * 24.0),
            h - mt - mb
        );
    }
    let step = (days / 14.0).ceil().max(1.0) as usize;
    for d in (0..=(days as usize)).step_by(step) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{d}</text>",
            x(d as f64 * 24.0),
            h - mb + 14.0
        );
    }
    for e in (lo as i32)..=(hi as i32) {
        let yy = y(10f64.powi(e));
        let _ = write!(
            svg,
            "<line x1=\"{ml}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e1e5ea\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            w - mr,
            ml - 4.0,
            yy + 4.0,
            fmt_sci(10f64.powi(e))
        );
    }
    if !g.forecast.is_empty() {
        let band: Vec<String> = g
            .forecast
            .iter()
            .map(|f| format!("{:.1},{:.1}", x(f[0]), y(f[3])))
            .chain(
                g.forecast
                    .iter()
                    .rev()
                    .map(|f| format!("{:.1},{:.1}", x(f[0]), y(f[1]))),
            )
            .collect();
        let median: Vec<String> = g
            .forecast
            .iter()
            .map(|f| format!("{:.1},{:.1}", x(f[0]), y(f[2])))
            .collect();
        let _ = write!(
            svg,
            "<polygon points=\"{}\" fill=\"#cfdcf3\" stroke=\"none\" class=\"forecast-band\"/><polyline points=\"{}\" fill=\"none\" stroke=\"#1e3ca0\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\" class=\"forecast-median\"/>",
            band.join(" "),
            median.join(" ")
        );
    }
    if !g.telemetry.is_empty() {
        let line: Vec<String> = g
            .telemetry
            .iter()
            .filter(|p| p.1 > 0.0)
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
            .collect();
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#2e7d32\" stroke-width=\"2\" class=\"telemetry\"/>",
            line.join(" ")
        );
    }
    for (t, v) in &g.counts {
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#c33\" class=\"count\"/>",
            x(*t),
            y(*v)
        );
    }
    if let Some(day) = g.dose_day {
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{mt}\" y2=\"{1}\" stroke=\"#8a4b00\" stroke-width=\"2\" stroke-dasharray=\"6 3\" class=\"dose-line\"/><text x=\"{2:.1}\" y=\"{3}\" font-size=\"11\" fill=\"#8a4b00\" text-anchor=\"end\">{4} {5}</text>",
            x(day * 24.0),
            h - mb,
            x(day * 24.0) - 4.0,
            mt + 14.0,
            lang.t(g.dose_label),
            format_day(day)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text></svg>",
        ml + (w - ml - mr) / 2.0,
        h - 6.0,
        lang.t("batch_axis_day")
    );
    svg
}

pub(crate) fn format_day(day: f64) -> String {
    format!("{day:.1}")
}

/// A small line chart of metabolites (linear axis).
fn metabolites_svg(lang: Lang, series: &[(&str, Series)]) -> String {
    let (w, h, ml, mr, mt, mb) = (720.0, 170.0, 56.0, 12.0, 12.0, 34.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"metab-title\" class=\"plot\" id=\"metabolite-plot\"><title id=\"metab-title\">{}</title>",
        lang.t("batch_metabolites")
    );
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().copied()).collect();
    if all.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"20\" y=\"40\">{}</text></svg>",
            lang.t("batch_no_data")
        );
        return svg;
    }
    let vmax = all.iter().map(|p| p.1).fold(1.0, f64::max).ceil();
    let hmax = all.iter().map(|p| p.0).fold(24.0, f64::max);
    let days = (hmax / 24.0).ceil();
    let x = |hours: f64| ml + (hours / 24.0) / days * (w - ml - mr);
    let y = |v: f64| mt + (1.0 - v / vmax) * (h - mt - mb);
    let _ = write!(
        svg,
        "<rect x=\"{ml}\" y=\"{mt}\" width=\"{}\" height=\"{}\" fill=\"#fff\" stroke=\"#8a96a3\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{vmax}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">0</text><text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
        w - ml - mr,
        h - mt - mb,
        ml - 4.0,
        mt + 10.0,
        ml - 4.0,
        h - mb,
        ml + (w - ml - mr) / 2.0,
        h - 6.0,
        lang.t("batch_axis_day_mm")
    );
    for ((name, points), colour) in series.iter().zip(["#0a58ca", "#c62828"]) {
        let line: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
            .collect();
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" class=\"{name}\"/>",
            line.join(" ")
        );
    }
    svg.push_str("</svg>");
    svg
}

/// What the read model knows beyond the status API: recipe steps with their state, the
/// in-process counts, fault records, and the operator step in progress.
struct Progress {
    phases: Vec<Value>,
    counts: Series,
    faults: Vec<Value>,
    operator_step: Option<Value>,
    /// The step due to be started (and the material lots it needs recorded).
    start_step: Option<Value>,
    /// The sampling step in progress, with the parameters to enter and their limits.
    sampling_step: Option<Value>,
    /// The decision step due (id, name, the recipe's decision).
    decision_due: Option<(String, String, DecisionStep)>,
    decision_window: Option<(f64, f64)>,
    target: Option<(String, f64)>,
    /// Day of the harvest decision, and whether it found the dose reached.
    harvest_decision: Option<(f64, bool)>,
    /// The step in progress (`id`, `name`), if any.
    in_progress: Option<Value>,
    /// The next step to start or evaluate: the engine's due step when nothing is in
    /// progress, else the step after the one in progress (the engine keeps the step in
    /// progress as its due step until it completes).
    next_due: Option<Value>,
    done: usize,
    total: usize,
}

/// Reads the batch entry (borrowed from the read model) and its recipe.
fn progress(ui: &Ui, entry: &BatchEntry, recipe: &RecipeEntry) -> Progress {
    let recipe = &recipe.recipe;
    let start = entry.state.started_at();
    let hours =
        |at: time::OffsetDateTime| start.map_or(0.0, |s| (at - s).as_seconds_f64() / 3600.0);
    let mut completed: BTreeMap<String, (u32, time::OffsetDateTime, Option<String>)> =
        BTreeMap::new();
    let mut counts = Vec::new();
    let mut harvest_decision = None;
    for r in &entry.records {
        if !r.event_type.starts_with("batch.") {
            continue;
        }
        match BatchEvent::from_json(&r.payload_json()) {
            Ok(BatchEvent::StepCompleted { step, by, at, .. }) => {
                let e = completed.entry(step.id).or_insert((0, at, None));
                e.0 += 1;
                e.1 = at;
                e.2 = by.map(|b| b.to_string());
            }
            Ok(BatchEvent::DecisionEvaluated {
                step,
                by,
                at,
                outcome,
                ..
            }) => {
                match outcome {
                    DecisionOutcome::ProceedTargetMet => {
                        harvest_decision = Some((hours(at) / 24.0, true));
                    }
                    DecisionOutcome::ProceedLatestDayReached => {
                        harvest_decision = Some((hours(at) / 24.0, false));
                    }
                    _ => {}
                }
                let e = completed.entry(step.id).or_insert((0, at, None));
                e.0 += 1;
                e.1 = at;
                e.2 = Some(by.to_string());
            }
            Ok(BatchEvent::SampleResultsRecorded { at, results, .. }) => {
                if let Some(r) = results
                    .iter()
                    .find(|r| r.parameter == "viable_cells_per_ml")
                {
                    counts.push((hours(at), r.value));
                }
            }
            _ => {}
        }
    }
    let active = entry.state.active_step().map(|a| a.step.id.clone());
    let due = entry.state.due_step().map(|d| d.id.clone());
    let named = |s: &cellops_process::recipe::model::Step| json!({"id": s.id, "name": s.name});
    let in_progress = entry
        .state
        .active_step()
        .and_then(|a| recipe.step_at(a.step.position))
        .map(named);
    let next_due = match entry.state.active_step() {
        Some(a) => recipe
            .next_position(a.step.position)
            .and_then(|p| recipe.step_at(p)),
        None => entry
            .state
            .due_step()
            .and_then(|d| recipe.step_at(d.position)),
    }
    .map(named);
    let (mut done, mut total) = (0, 0);
    let mut operator_step = None;
    let mut start_step = None;
    let mut sampling_step = None;
    let mut decision_due = None;
    let mut decision_window = None;
    let mut target = None;
    let phases: Vec<Value> = recipe
            .phases()
            .iter()
            .map(|phase| {
                let steps: Vec<Value> = phase
                    .steps
                    .iter()
                    .map(|s| {
                        total += 1;
                        let state = if active.as_deref() == Some(s.id.as_str()) {
                            "active"
                        } else if due.as_deref() == Some(s.id.as_str()) {
                            "due"
                        } else if completed.contains_key(&s.id) {
                            done += 1;
                            "done"
                        } else {
                            "pending"
                        };
                        if let StepKind::Decision(d) = &s.kind {
                            decision_window =
                                Some((f64::from(d.earliest_day), f64::from(d.latest_day)));
                            target = Some((d.parameter.clone(), d.target_min));
                        }
                        if state == "active"
                            && let StepKind::Operator(o) = &s.kind
                        {
                            operator_step = Some(json!({
                                "id": s.id, "name": s.name,
                                "instruction": if ui.lang == Lang::Ja { &o.instruction_ja } else { &o.instruction_en },
                                "esignature": o.esignature.map(|m| format!("{m:?}")),
                            }));
                        }
                        if state == "due" {
                            start_step = super::batch_steps::start_step_view(ui, recipe, s);
                            if let StepKind::Decision(d) = &s.kind {
                                decision_due = Some((s.id.clone(), s.name.clone(), d.clone()));
                            }
                        }
                        if state == "active"
                            && let StepKind::Sampling(sm) = &s.kind
                        {
                            sampling_step = Some(super::batch_steps::sampling_view(ui, s, sm));
                        }
                        let last = completed.get(&s.id);
                        json!({
                            "id": s.id, "name": s.name, "state": state,
                            "state_label": label(ui.lang, "batch_step_", state),
                            "kind": label(ui.lang, "batch_kind_", s.kind.name()),
                            "times": last.map(|l| ui.lang.format_count(u64::from(l.0))),
                            "at": last.map(|l| rfc_text(ui, l.1)),
                            "by": last.and_then(|l| l.2.clone()),
                        })
                    })
                    .collect();
                json!({"id": phase.id, "name": phase.name, "steps": steps})
            })
            .collect();
    let faults = entry
        .records
        .iter()
        .filter(|r| r.event_type == "culture.fault_injected")
        .map(|r| {
            let p = r.payload_json();
            json!({"at": ui.format_time(r.recorded_at), "code": p["fault"], "seq": r.seq})
        })
        .collect();
    Progress {
        phases,
        counts,
        faults,
        operator_step,
        start_step,
        sampling_step,
        decision_due,
        decision_window,
        target,
        harvest_decision,
        in_progress,
        next_due,
        done,
        total,
    }
}

pub(crate) async fn context<B: cellops_ledger::Backend>(
    state: &AppState<B>,
    ui: &Ui,
    batch: &str,
) -> (StatusCode, Value) {
    let mut ctx = ui.context("/ui/batch", "batch_title");
    ctx["batch"] = json!(batch);
    ctx["view"] = Value::Null;
    ctx["key"] = json!(super::form_key(state));
    ctx["open"] = Value::Null;
    if batch.is_empty() {
        ctx["open"] = super::batch_open::form_view(state, ui, &Default::default());
        return (StatusCode::OK, ctx);
    }
    ctx["back"] = json!(format!("/ui/batch?batch={}", urlencode(batch)));
    // One read: status, progress and the plotted signals (each telemetry chunk decoded
    // once), borrowing the batch entry from the read model.
    let signals = [GROWTH_SIGNAL, METABOLITES[0], METABOLITES[1]];
    let view = match batch_view(state, &ui.caller, batch, &signals, |entry, recipe| {
        progress(ui, entry, recipe)
    })
    .await
    {
        Ok(v) => v,
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            return (e.status, ctx);
        }
    };
    let (status, p) = (view.status, view.extra);
    let start_ms = status["started_at"]
        .as_str()
        .and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as f64);
    let mut by_signal: BTreeMap<&str, Series> = BTreeMap::new();
    for (signal, samples) in signals.into_iter().zip(view.series) {
        let series: Series = match start_ms {
            Some(start) => samples
                .into_iter()
                .map(|(at, v)| ((at as f64 - start) / 3_600_000.0, v))
                .collect(),
            None => Vec::new(),
        };
        by_signal.insert(signal, series);
    }
    let prediction = &status["prediction"]["prediction"];
    let forecast: Vec<[f64; 4]> = prediction["forecast"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| {
            let a = row.as_array()?;
            Some([
                a.first()?.as_f64()?,
                a.get(1)?.as_f64()?,
                a.get(2)?.as_f64()?,
                a.get(3)?.as_f64()?,
            ])
        })
        .collect();
    let growth = Growth {
        telemetry: by_signal.remove(GROWTH_SIGNAL).unwrap_or_default(),
        counts: p.counts,
        forecast,
        dose_day: p
            .harvest_decision
            .map(|h| h.0)
            .or(prediction["median_day"].as_f64()),
        dose_label: match p.harvest_decision {
            Some((_, true)) => "batch_dose_reached",
            Some((_, false)) => "batch_latest_day",
            None => "batch_dose_day",
        },
        window: p.decision_window,
    };
    let metabolites: Vec<(&str, Series)> = METABOLITES
        .iter()
        .map(|m| (*m, by_signal.remove(m).unwrap_or_default()))
        .collect();
    let mut alarms: Vec<Value> = status["device_state"]["status"]["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let code = a["code"].as_str().unwrap_or("");
            json!({"code": code, "label": label(ui.lang, "batch_alarm_", code),
                   "at": rfc_value(ui, &a["at"]).unwrap_or_default()})
        })
        .collect();
    for f in &p.faults {
        let code = f["code"].as_str().unwrap_or("");
        alarms.push(
            json!({"code": code, "label": label(ui.lang, "batch_fault_", code), "at": f["at"]}),
        );
    }
    let site = status["site"].as_str().unwrap_or("");
    let deviations: Vec<Value> = status["deviations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let st = d["state"].as_str().unwrap_or("");
            let kind = d["source"]["kind"].as_str().unwrap_or("");
            json!({"id": d["id"], "state": st,
                   "state_label": label(ui.lang, "batch_deviation_", st),
                   "source": label(ui.lang, "batch_source_", kind),
                   "step": d["source"]["step"],
                   "hold": d["hold"], "blocks_release": d["blocks_release"],
                   "opened_at": rfc_value(ui, &d["opened_at"]),
                   "action": super::batch_deviations::action(ui, site, st),
                   "root_cause": "", "capa": "", "error": null})
        })
        .collect();
    let st = status["status"].as_str().unwrap_or("");
    let on_hold = status["on_hold_by"]
        .as_array()
        .is_some_and(|held| !held.is_empty());
    let may_confirm = SiteId::parse(site)
        .ok()
        .is_some_and(|s| ui.caller.user.has_role(Role::Operator, &s));
    // The decision due, with what the twin predicts now, for a culturist to sign.
    let decision_step = match &p.decision_due {
        Some((id, name, d)) if may_confirm && st == "Running" && !on_hold => {
            Some(super::batch_steps::decision_view(state, ui, batch, id, name, d).await)
        }
        _ => None,
    };
    let target = p.target.map(|(param, v)| {
        json!({"parameter": label(ui.lang, "batch_param_", &param),
               "value": super::orders::cells_text(v)})
    });
    ctx["view"] = json!({
        "batch": batch,
        "product": status["product"],
        "recipe_version": status["recipe_version"],
        "site": site,
        "starting_unit": status["starting_unit"],
        "status": st,
        "status_label": label(ui.lang, "batch_status_", st),
        "started_at": rfc_value(ui, &status["started_at"]),
        "batch_time": rfc_value(ui, &status["batch_time"]),
        "in_progress": p.in_progress,
        "due_step": p.next_due,
        "predicted_harvest_at": rfc_value(ui, &status["predicted_harvest_at"]),
        "dose_day": prediction["median_day"].as_f64().map(format_day),
        "harvest_decision": p.harvest_decision.map(|(day, met)| json!({
            "day": format_day(day),
            "label": ui.t(if met { "batch_dose_reached" } else { "batch_latest_day" }),
        })),
        "p_dose": prediction["p_dose_reached"].as_f64().map(|p| format!("{:.0} %", p * 100.0)),
        "target": target,
        "progress": format!("{} / {}", ui.lang.format_count(p.done as u64), ui.lang.format_count(p.total as u64)),
        "phases": p.phases,
        "growth_svg": growth_svg(ui.lang, &growth),
        "metabolites_svg": metabolites_svg(ui.lang, &metabolites),
        "alarms": alarms,
        "deviations": deviations,
        "operator_step": if may_confirm { p.operator_step } else { None },
        // Started and sampled by operators, not while the batch is held or finished.
        "start_step": if may_confirm && st == "Running" && !on_hold { p.start_step } else { None },
        "sampling_step": if may_confirm { p.sampling_step } else { None },
        "decision_step": decision_step,
        "harvested_units": status["harvested_units"],
    });
    (StatusCode::OK, ctx)
}

pub async fn page<B: cellops_ledger::Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    Query(q): Query<BatchQuery>,
) -> Response {
    let (status, ctx) = context(&state, &ui, q.batch.trim()).await;
    render(status, "batch.html", &ctx)
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    pub batch: String,
    pub step: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub password: String,
}

/// Confirms the operator step in progress, e-signed where the recipe asks, through the
/// batch API (which checks the operator's qualification and the password).
pub async fn confirm<B: cellops_ledger::Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let batch = form.batch.trim().to_string();
    let body = SignatureBody {
        password: Some(form.password).filter(|p| !p.is_empty()),
        user_id: Some(form.user_id.trim().to_string()).filter(|u| !u.is_empty()),
    };
    let result = complete_step(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&form.key),
        Path((batch.clone(), form.step.trim().to_string())),
        AppJson(body),
    )
    .await;
    let (status, mut ctx) = context(&state, &ui, &batch).await;
    match result {
        Ok(_) => {
            ctx["notice"] = json!(ui.t("batch_confirmed"));
            render(status, "batch.html", &ctx)
        }
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            render(e.status, "batch.html", &ctx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_growth_plot_draws_band_telemetry_counts_and_the_dose_line_in_the_language() {
        let g = Growth {
            telemetry: vec![(0.0, 1e5), (24.0, 2e5), (48.0, 5e5)],
            counts: vec![(24.0, 2.1e5)],
            forecast: vec![[48.0, 4e5, 5e5, 6e5], [96.0, 1e6, 2e6, 3e6]],
            dose_day: Some(7.5),
            dose_label: "batch_dose_day",
            window: Some((7.0, 12.0)),
        };
        let svg = growth_svg(Lang::Ja, &g);
        for class in [
            "forecast-band",
            "forecast-median",
            "telemetry",
            "count",
            "dose-line",
            "harvest-window",
        ] {
            assert!(svg.contains(class), "{class}: {svg}");
        }
        assert!(svg.contains(&Lang::Ja.t("batch_axis_day")));
        assert!(!svg.contains("style="), "no inline style under the CSP");
        let empty = Growth {
            telemetry: vec![],
            counts: vec![],
            forecast: vec![],
            dose_day: None,
            dose_label: "batch_dose_day",
            window: None,
        };
        assert!(growth_svg(Lang::En, &empty).contains(&Lang::En.t("batch_no_data")));
    }
}
