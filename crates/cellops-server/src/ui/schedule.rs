//! The schedule Gantt per resource of the CPC: every booked stage as a bar on its resource's
//! lane, from the schedule API (`GET /api/schedule/gantt`, CPC staff only), drawn as SVG.

use super::i18n::Lang;
use super::{Ui, error_message, render};
use crate::routes::schedule::gantt as api_gantt;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use cellops_ledger::Backend;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Pixels per day, row height per lane and the label column.
const DAY_PX: f64 = 14.0;
const LANE_PX: f64 = 18.0;
const LABEL_PX: f64 = 190.0;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn date(text: &str) -> Option<time::Date> {
    time::Date::parse(
        text,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// A date as a short axis label in the language (`24 Nov` / `11/24`).
fn short_date(lang: Lang, d: time::Date) -> String {
    match lang {
        Lang::Ja => format!("{}/{}", u8::from(d.month()), d.day()),
        Lang::En => {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            format!(
                "{} {}",
                d.day(),
                MONTHS[usize::from(u8::from(d.month())) - 1]
            )
        }
    }
}

/// The Gantt chart: one band per resource with bars (order and stage) on lanes, a day grid
/// with weekly date labels.
fn gantt_svg(lang: Lang, rows: &[Value]) -> Option<String> {
    let bars = rows
        .iter()
        .flat_map(|r| r["bars"].as_array().into_iter().flatten());
    let (mut first, mut last, mut anchor) = (i64::MAX, i64::MIN, None);
    for b in bars {
        let (Some(s), Some(l)) = (b["start_day"].as_i64(), b["last_day"].as_i64()) else {
            continue;
        };
        if s < first {
            first = s;
            anchor = b["start"].as_str().and_then(date).map(|d| (s, d));
        }
        last = last.max(l);
    }
    let (anchor_day, anchor_date) = anchor?;
    let days = (last - first + 1) as f64;
    let rows: Vec<&Value> = rows
        .iter()
        .filter(|r| r["bars"].as_array().is_some_and(|b| !b.is_empty()))
        .collect();
    let lanes: Vec<f64> = rows
        .iter()
        .map(|r| {
            r["bars"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| b["lane"].as_u64())
                .max()
                .unwrap_or(0) as f64
                + 1.0
        })
        .collect();
    let top = 22.0;
    let height = top + lanes.iter().map(|l| l * LANE_PX + 6.0).sum::<f64>();
    let width = LABEL_PX + days * DAY_PX + 10.0;
    let x = |day: i64| LABEL_PX + (day - first) as f64 * DAY_PX;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"gantt-title\" class=\"plot gantt\" id=\"gantt\"><title id=\"gantt-title\">{}</title>",
        lang.t("schedule_title")
    );
    for d in first..=last {
        let date = anchor_date + time::Duration::days(d - anchor_day);
        let weekend = matches!(
            date.weekday(),
            time::Weekday::Saturday | time::Weekday::Sunday
        );
        if weekend {
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{top}\" width=\"{DAY_PX}\" height=\"{}\" fill=\"#f0f2f5\"/>",
                x(d),
                height - top
            );
        }
        if date.weekday() == time::Weekday::Monday {
            let _ = write!(
                svg,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{height}\" stroke=\"#d5dbe1\"/><text x=\"{2:.1}\" y=\"14\" font-size=\"11\">{3}</text>",
                x(d),
                top - 4.0,
                x(d) + 2.0,
                short_date(lang, date)
            );
        }
    }
    let mut y = top;
    for (row, lanes) in rows.iter().zip(&lanes) {
        let band = lanes * LANE_PX + 6.0;
        let resource = row["resource"].as_str().unwrap_or("");
        let _ = write!(
            svg,
            "<g class=\"resource\" data-resource=\"{r}\"><line x1=\"0\" x2=\"{width}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#8a96a3\"/><text x=\"4\" y=\"{ty:.1}\" font-size=\"12\">{r}</text>",
            r = esc(resource),
            ty = y + 14.0
        );
        for b in row["bars"].as_array().into_iter().flatten() {
            let (Some(s), Some(l)) = (b["start_day"].as_i64(), b["last_day"].as_i64()) else {
                continue;
            };
            let lane = b["lane"].as_u64().unwrap_or(0) as f64;
            let order = esc(b["order"].as_str().unwrap_or(""));
            let stage = esc(b["stage"].as_str().unwrap_or(""));
            let by = y + 3.0 + lane * LANE_PX;
            let bar_px = (l - s + 1) as f64 * DAY_PX - 2.0;
            // The order id on the bar only where it fits (the title names it everywhere).
            let label = if bar_px >= 44.0 {
                format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#fff\">{order}</text>",
                    x(s) + 3.0,
                    by + 11.0
                )
            } else {
                String::new()
            };
            let _ = write!(
                svg,
                "<g class=\"bar\" data-order=\"{order}\" data-stage=\"{stage}\"><title>{order} · {stage} · {} – {}</title><rect x=\"{:.1}\" y=\"{by:.1}\" width=\"{bar_px:.1}\" height=\"{}\" rx=\"3\" fill=\"#5b8fd6\" stroke=\"#12324f\"/>{label}</g>",
                esc(b["start"].as_str().unwrap_or("")),
                esc(b["last"].as_str().unwrap_or("")),
                x(s) + 1.0,
                LANE_PX - 3.0,
            );
        }
        svg.push_str("</g>");
        y += band;
    }
    svg.push_str("</svg>");
    Some(svg)
}

pub async fn page<B: Backend>(State(state): State<AppState<B>>, ui: Ui) -> Response {
    let mut ctx = ui.context("/ui/schedule", "schedule_title");
    ctx["gantt"] = Value::Null;
    ctx["resources"] = json!([]);
    match api_gantt(State(state), ui.caller.clone()).await {
        Ok(body) => {
            let rows = body.0["resources"].as_array().cloned().unwrap_or_default();
            let summary: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let bars = r["bars"].as_array().map_or(0, Vec::len);
                    json!({"resource": r["resource"], "site": r["site"], "kind": r["kind"],
                           "bars": ui.lang.format_count(bars as u64),
                           "capacity_max": r["capacity_max"]})
                })
                .collect();
            ctx["gantt"] = json!(gantt_svg(ui.lang, &rows));
            ctx["resources"] = json!(summary);
            render(StatusCode::OK, "schedule.html", &ctx)
        }
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            render(e.status, "schedule.html", &ctx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_sit_on_their_resource_and_lane_with_weekly_dates() {
        let rows = vec![
            json!({"resource": "cpc/culture_device", "site": "cpc", "kind": "k", "capacity_max": 2,
                   "bars": [{"order": "o1", "stage": "culture", "start_day": 2, "last_day": 10,
                             "start": "2025-11-26", "last": "2025-12-04", "lane": 0},
                            {"order": "o<2>", "stage": "culture", "start_day": 3, "last_day": 11,
                             "start": "2025-11-27", "last": "2025-12-05", "lane": 1}]}),
            json!({"resource": "qc", "site": "cpc", "kind": "k", "capacity_max": 0, "bars": []}),
        ];
        let svg = gantt_svg(Lang::En, &rows).unwrap();
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert!(svg.contains("data-order=\"o&lt;2&gt;\""), "escaped: {svg}");
        assert!(svg.contains("1 Dec"), "Monday 1 Dec 2025 labelled: {svg}");
        assert!(
            !svg.contains("data-resource=\"qc\""),
            "resources without bars left out"
        );
        assert!(gantt_svg(Lang::Ja, &rows).unwrap().contains("12/1"));
        assert_eq!(gantt_svg(Lang::En, &[]), None);
    }
}
