//! Cold chain: the storage map (freezer → rack → box → position, occupancy, probe alarm)
//! from the storage read model the storage API shows (`GET /api/storage`, the caller's
//! sites only), and shipments with the logger's temperature plot, the alarm and reject
//! limits and each excursion marked, from the shipments API (`GET /api/shipments/{id}`)
//! and the shipment's `shipment.logger_uploaded` record.

use super::i18n::{Lang, Zone};
use super::{Ui, error_message, render};
use crate::error::ApiError;
use crate::routes::shipments::show as api_shipment;
use crate::routes::storage::{ColdModel, list as api_storage};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use cellops_domain::Timestamp;
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Most records of one shipment's stream read for its logger file.
const SHIPMENT_RECORDS_MAX: usize = 1_000;

fn label(lang: Lang, prefix: &str, code: &str) -> String {
    lang.texts()
        .get(&format!("{prefix}{code}"))
        .cloned()
        .unwrap_or_else(|| code.to_string())
}

fn time(lang: Lang, zone: Zone, v: &Value) -> Option<String> {
    v.as_str().map(|t| lang.format_time_text_in(zone, t))
}

#[derive(Deserialize, Clone, Default)]
pub struct StorageQuery {
    #[serde(default)]
    pub storage: String,
    pub rack: Option<u16>,
    #[serde(rename = "box")]
    pub r#box: Option<u16>,
}

/// The storage map: every storage at the user's sites with its racks and boxes (occupied
/// slots per box); one box's positions with the units in them.
pub async fn storage_page<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    Query(q): Query<StorageQuery>,
) -> Response {
    let (status, ctx) = storage_context(&state, &ui, &q).await;
    render(status, "storage.html", &ctx)
}

/// The storage page's context: the map, one box (when `q` names it) and the put-away form
/// for those who handle storage at the chosen site (`ui/storage_forms.rs`).
pub(crate) async fn storage_context<B: Backend>(
    state: &AppState<B>,
    ui: &Ui,
    q: &StorageQuery,
) -> (StatusCode, Value) {
    let mut ctx = ui.context("/ui/storage", "storage_title");
    ctx["storages"] = json!([]);
    ctx["box_view"] = Value::Null;
    ctx["key"] = json!(super::form_key(state));
    ctx["put_away"] = super::storage_forms::put_away_view(ui, None, None);
    ctx["retrieve"] = super::storage_forms::retrieve_view(ui, None, None);
    // The API syncs and decides which storages the user may see.
    let listed = match api_storage(State(state.clone()), ui.caller.clone()).await {
        Ok(l) => l.0,
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            return (e.status, ctx);
        }
    };
    let visible: Vec<String> = listed["storages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["storage"]["storage"].as_str().map(str::to_string))
        .collect();
    let (lang, zone) = (ui.lang, ui.zone);
    let storages: Vec<Value> = state.read_model(|m: &mut ColdModel| {
        m.state
            .storages()
            .filter(|s| visible.iter().any(|v| v == s.config.storage.as_str()))
            .map(|s| {
                let c = &s.config;
                let mut counts = vec![vec![0u32; usize::from(c.boxes_per_rack)]; usize::from(c.racks)];
                let mut occupied = 0u64;
                for u in m.state.stored_units().filter(|u| u.position.storage() == &c.storage) {
                    occupied += 1;
                    let (r, b) = (usize::from(u.position.rack()), usize::from(u.position.r#box()));
                    if let Some(cell) = counts.get_mut(r - 1).and_then(|row| row.get_mut(b - 1)) {
                        *cell += 1;
                    }
                }
                let capacity = u64::from(c.racks) * u64::from(c.boxes_per_rack) * u64::from(c.slots_per_box);
                let racks: Vec<Value> = counts
                    .iter()
                    .enumerate()
                    .map(|(ri, boxes)| {
                        json!({"rack": ri + 1, "boxes": boxes.iter().enumerate().map(|(bi, n)| json!({
                            "box": bi + 1, "count": n,
                            "level": match *n { 0 => "empty", n if n >= u32::from(c.slots_per_box) => "full", _ => "some" },
                        })).collect::<Vec<_>>()})
                    })
                    .collect();
                let kind = serde_json::to_value(c.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                json!({
                    "storage": c.storage.as_str(),
                    "kind": label(lang, "storage_kind_", &kind),
                    "site": c.site.as_str(),
                    "slots_per_box": c.slots_per_box,
                    "occupied": lang.format_count(occupied),
                    "capacity": lang.format_count(capacity),
                    "alarm": s.alarm.as_ref().map(|a| {
                        let k = serde_json::to_value(a.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                        json!({"kind": label(lang, "storage_alarm_", &k), "since": lang.format_time_in(zone, a.since)})
                    }),
                    "reading": s.last_reading.map(|r| json!({"temperature": format!("{:.1} °C", r.temperature_c), "at": lang.format_time_in(zone, r.at)})),
                    "racks": racks,
                })
            })
            .collect()
    });
    if let (Some(rack), Some(bx)) = (q.rack, q.r#box)
        && visible.contains(&q.storage)
    {
        let view = state.read_model(|m: &mut ColdModel| {
            let s = m.state.storages().find(|s| s.config.storage.as_str() == q.storage)?;
            let slots = s.config.slots_per_box;
            let units: Vec<Value> = (1..=slots)
                .map(|slot| {
                    let u = m.state.stored_units().find(|u| {
                        u.position.storage() == &s.config.storage
                            && u.position.rack() == rack
                            && u.position.r#box() == bx
                            && u.position.slot() == slot
                    });
                    match u {
                        Some(u) => json!({"slot": slot, "unit": u.unit.to_string(),
                                          "patient": u.patient.as_ref().map(|p| p.to_string()),
                                          "expires": lang.format_time_in(zone, u.expires_at),
                                          "limit": lang.format_time_in(zone, u.storage_limit_at)}),
                        None => json!({"slot": slot, "unit": null}),
                    }
                })
                .collect();
            let columns = (f64::from(slots)).sqrt().ceil() as u16;
            Some(json!({"storage": q.storage, "rack": rack, "box": bx, "slots": units, "columns": columns}))
        });
        ctx["box_view"] = json!(view);
    }
    ctx["storages"] = json!(storages);
    (StatusCode::OK, ctx)
}

#[derive(Deserialize)]
pub struct ShipmentQuery {
    #[serde(default)]
    pub shipment: String,
}

/// The logger's temperature against time with the alarm and reject limits, excursion
/// episodes shaded and marked.
fn logger_svg(
    lang: Lang,
    samples: &[(i64, f64)],
    limits: (f64, f64),
    episodes: &[(i64, i64, bool)],
) -> String {
    let (w, h, ml, mr, mt, mb) = (720.0, 260.0, 56.0, 12.0, 12.0, 40.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"logger-title\" class=\"plot\" id=\"logger-plot\"><title id=\"logger-title\">{}</title>",
        lang.t("shipment_logger")
    );
    if samples.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"20\" y=\"40\">{}</text></svg>",
            lang.t("shipment_no_logger")
        );
        return svg;
    }
    let t0 = samples.iter().map(|s| s.0).min().unwrap_or(0);
    let t1 = samples.iter().map(|s| s.0).max().unwrap_or(0).max(t0 + 1);
    let vmin = samples
        .iter()
        .map(|s| s.1)
        .fold(limits.0, f64::min)
        .min(-196.0);
    let vmax = samples.iter().map(|s| s.1).fold(limits.1, f64::max) + 10.0;
    let x = |t: i64| ml + (t - t0) as f64 / (t1 - t0) as f64 * (w - ml - mr);
    let y = |v: f64| mt + (vmax - v) / (vmax - vmin) * (h - mt - mb);
    let _ = write!(
        svg,
        "<rect x=\"{ml}\" y=\"{mt}\" width=\"{}\" height=\"{}\" fill=\"#fff\" stroke=\"#8a96a3\"/>",
        w - ml - mr,
        h - mt - mb
    );
    for (start, end, gap) in episodes {
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{mt}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\" class=\"excursion\"/>",
            x(*start),
            (x(*end) - x(*start)).max(3.0),
            h - mt - mb,
            if *gap { "#e4e4e4" } else { "#fde2e1" }
        );
    }
    let mut tick = (vmin / 50.0).ceil() * 50.0;
    while tick <= vmax {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{tick}</text>",
            ml - 4.0,
            y(tick) + 4.0
        );
        tick += 50.0;
    }
    for (v, class, colour, key) in [
        (limits.0, "alarm-limit", "#ef6c00", "shipment_alarm_limit"),
        (limits.1, "reject-limit", "#c62828", "shipment_reject_limit"),
    ] {
        let _ = write!(
            svg,
            "<line x1=\"{ml}\" x2=\"{x2}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"{colour}\" stroke-dasharray=\"6 3\" class=\"{class}\"/><text x=\"{tx}\" y=\"{ty:.1}\" font-size=\"11\" fill=\"{colour}\" text-anchor=\"end\">{name} {v} °C</text>",
            x2 = w - mr,
            yy = y(v),
            tx = w - mr - 4.0,
            ty = y(v) - 3.0,
            name = lang.t(key)
        );
    }
    let line: Vec<String> = samples
        .iter()
        .map(|s| format!("{:.1},{:.1}", x(s.0), y(s.1)))
        .collect();
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#0a58ca\" stroke-width=\"1.5\" class=\"temperature\"/>",
        line.join(" ")
    );
    for (start, _, _) in episodes {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"13\" fill=\"#c62828\" class=\"excursion-marker\">▼</text>",
            x(*start) - 5.0,
            mt + 14.0
        );
    }
    let hours = (t1 - t0) as f64 / 3.6e9;
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{} ({:.1} h)</text></svg>",
        ml + (w - ml - mr) / 2.0,
        h - 6.0,
        lang.t("shipment_axis"),
        hours
    );
    svg
}

pub async fn shipments_page<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    Query(q): Query<ShipmentQuery>,
) -> Response {
    let (status, ctx) = shipments_context(&state, &ui, q.shipment.trim()).await;
    render(status, "shipments.html", &ctx)
}

/// The shipments page's context: the list, one shipment (when `id` is given) and the forms
/// the user may use (pack at the site, dispatch what the site packed, receive what comes to
/// it; `ui/shipment_forms.rs`).
pub(crate) async fn shipments_context<B: Backend>(
    state: &AppState<B>,
    ui: &Ui,
    id: &str,
) -> (StatusCode, Value) {
    let mut ctx = ui.context("/ui/shipments", "shipments_title");
    let (lang, zone) = (ui.lang, ui.zone);
    let id = id.to_string();
    ctx["shipment_id"] = json!(id);
    ctx["shipment"] = Value::Null;
    ctx["dispatch"] = json!(false);
    ctx["receive"] = Value::Null;
    ctx["logger_form"] = Value::Null;
    ctx["key"] = json!(super::form_key(state));
    ctx["pack"] = Value::Null;
    if let Err(e) = state.sync().await {
        ctx["error"] = json!(error_message(lang, &e));
        return (e.status, ctx);
    }
    let sites = ui.caller.user.sites();
    let list: Vec<Value> = state.read_model(|m: &mut ColdModel| {
        let mut all: Vec<&cellops_cold::Shipment> = m
            .state
            .shipments()
            .filter(|s| sites.contains(&s.from_site) || sites.contains(&s.to_site))
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.packed_at));
        all.iter()
            .map(|s| {
                let status = serde_json::to_value(s.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                let excursions = m.state.excursions().filter(|(_, e)| e.source == cellops_cold::ExcursionSource::Shipment(s.shipment.clone())).count();
                json!({"id": s.shipment.as_str(), "from": s.from_site.as_str(), "to": s.to_site.as_str(),
                       "status": label(lang, "shipment_status_", &status), "packed": lang.format_time_in(zone, s.packed_at),
                       "units": s.units.len(), "excursions": excursions})
            })
            .collect()
    });
    ctx["shipments_count"] = json!(lang.format_count(list.len() as u64));
    ctx["shipments"] = json!(list);
    ctx["pack"] = super::shipment_forms::pack_view(ui, None, None);
    if id.is_empty() {
        return (StatusCode::OK, ctx);
    }
    let shown = match api_shipment(State(state.clone()), ui.caller.clone(), Path(id.clone())).await
    {
        Ok(v) => v.0,
        Err(e) => {
            ctx["error"] = json!(error_message(lang, &e));
            return (e.status, ctx);
        }
    };
    let s = &shown["shipment"];
    let stream = format!("shipment/{}", id.to_ascii_lowercase());
    let records = state
        .blocking(move |st| {
            st.ledger
                .read(|b| b.stream_records(&stream, 1, SHIPMENT_RECORDS_MAX))
                .map_err(ApiError::from)
        })
        .await;
    let upload = match records {
        Ok(rs) => rs
            .into_iter()
            .rev()
            .find(|r| r.event_type == "shipment.logger_uploaded")
            .map(|r| r.payload_json()),
        Err(e) => {
            ctx["error"] = json!(error_message(lang, &e));
            return (e.status, ctx);
        }
    };
    let samples: Vec<(i64, f64)> = upload
        .as_ref()
        .and_then(|u| u["samples"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            let at = Timestamp::parse(r["at"].as_str()?).ok()?;
            Some((at.unix_us(), r["temperature_c"].as_f64()?))
        })
        .collect();
    let limits = (
        s["limits"]["alarm_above_c"].as_f64().unwrap_or(-150.0),
        s["limits"]["reject_above_c"].as_f64().unwrap_or(-120.0),
    );
    let excursions: Vec<Value> = shown["excursions"].as_array().cloned().unwrap_or_default();
    let episodes: Vec<(i64, i64, bool)> = excursions
        .iter()
        .filter_map(|e| {
            let ep = &e["episode"];
            let start = Timestamp::parse(ep["start"].as_str()?).ok()?.unix_us();
            let end = Timestamp::parse(ep["end"].as_str()?).ok()?.unix_us();
            Some((start, end, ep["kind"] == "data_gap"))
        })
        .collect();
    let excursion_rows: Vec<Value> = excursions
        .iter()
        .map(|e| {
            let ep = &e["episode"];
            let kind = ep["kind"].as_str().unwrap_or("");
            let decision = e["assessment"]["decision"].as_str().unwrap_or("pending");
            json!({"id": e["excursion"], "kind": label(lang, "shipment_excursion_", kind),
                   "start": time(lang, zone, &ep["start"]), "end": time(lang, zone, &ep["end"]),
                   "max": ep["temperature_c_max"].as_f64().map(|t| format!("{t:.1} °C")),
                   "reject": ep["reject_limit_exceeded"],
                   "assessment": label(lang, "shipment_assessment_", decision),
                   "signed": !e["assessment"]["signed"].is_null(),
                   "qa_step": super::shipment_forms::excursion_step(ui, &s["from_site"],
                       e["deviation"]["state"].as_str().unwrap_or("")),
                   "typed": null, "error": null})
        })
        .collect();
    let status = s["status"].as_str().unwrap_or("");
    ctx["shipment"] = json!({
        "id": id,
        "from": s["from_site"], "to": s["to_site"],
        "status": label(lang, "shipment_status_", status),
        "units": s["units"], "shipper": s["shipper"], "logger": s["logger"],
        "packed": time(lang, zone, &s["packed_at"]), "dispatched": time(lang, zone, &s["dispatched_at"]),
        "samples": lang.format_count(samples.len() as u64),
        "plot": logger_svg(lang, &samples, limits, &episodes),
        "excursions": excursion_rows,
    });
    ctx["dispatch"] = json!(super::shipment_forms::may_dispatch(
        ui,
        status,
        &s["from_site"]
    ));
    ctx["receive"] = super::shipment_forms::receive_view(ui, status, &s["to_site"], None, None);
    ctx["logger_form"] =
        if super::shipment_forms::may_upload_logger(ui, status, &s["from_site"], &s["to_site"]) {
            json!({"values": {"format": "generic", "csv": ""}, "error": null})
        } else {
            Value::Null
        };
    (StatusCode::OK, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logger_plot_marks_limits_and_excursions() {
        let h = 3_600_000_000;
        let samples = vec![(0, -180.0), (h, -140.0), (2 * h, -181.0)];
        let svg = logger_svg(
            Lang::Ja,
            &samples,
            (-150.0, -120.0),
            &[(h / 2, h + h / 2, false)],
        );
        for class in [
            "alarm-limit",
            "reject-limit",
            "temperature",
            "excursion",
            "excursion-marker",
        ] {
            assert!(svg.contains(class), "{class}: {svg}");
        }
        assert!(svg.contains(&Lang::Ja.t("shipment_axis")));
        assert!(!svg.contains("style="));
        assert!(
            logger_svg(Lang::En, &[], (-150.0, -120.0), &[])
                .contains(&Lang::En.t("shipment_no_logger"))
        );
    }
}
