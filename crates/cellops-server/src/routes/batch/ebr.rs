//! The electronic batch record, generated from the batch's ledger records: steps with who
//! and when, materials and lots, set points, in-process results, the growth curve with the
//! twin's predicted harvest, deviations, signatures, telemetry summaries, and the
//! review-by-exception list QA signs. HTML for the screen, PDF for the archive (a small
//! hand-written PDF: base-14 Helvetica, no embedded fonts).

use std::fmt::Write as _;

use cellops_ledger::Record;
use cellops_process::Recipe;
use cellops_process::engine::{BatchEvent, BatchState, DecisionOutcome, DeviationSource};
use cellops_process::recipe::model::StepKind;
use serde_json::{Value, json};

use super::model::BatchOpened;

/// A device step that completes later than this after its planned end is "late", hours.
pub const LATE_STEP_HOURS: f64 = 1.0;

/// Everything the record is generated from.
#[derive(Debug, Clone)]
pub struct EbrInput {
    pub opened: BatchOpened,
    pub recipe: Recipe,
    pub state: BatchState,
    pub records: Vec<Record>,
    pub harvested_units: Vec<String>,
    pub prediction: Option<Value>,
    pub generated_at: String,
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn rfc(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn events(input: &EbrInput) -> impl Iterator<Item = (&Record, BatchEvent)> {
    input
        .records
        .iter()
        .filter(|r| r.event_type.starts_with("batch."))
        .filter_map(|r| {
            BatchEvent::from_json(&r.payload_json())
                .ok()
                .map(|e| (r, e))
        })
}

/// One line of the record: when, what, who, detail.
struct Line {
    at: String,
    what: String,
    who: String,
    detail: String,
}

/// Who did a step, with the qualification they were checked for when the step declares one.
fn performer(by: &cellops_process::engine::PersonId, qualification: Option<&str>) -> String {
    match qualification {
        Some(q) => format!("{by} (qualified: {q})"),
        None => by.to_string(),
    }
}

fn lines(input: &EbrInput) -> Vec<Line> {
    let mut out = Vec::new();
    for r in &input.records {
        let payload = r.payload_json();
        if let Some(sig) = &r.signature {
            out.push(Line {
                at: sig.signed_at.to_string(),
                what: format!("e-signature ({})", sig.meaning),
                who: format!("{} ({})", sig.signer_name, sig.signer),
                detail: format!("signs record {}", payload["signs_seq"]),
            });
            continue;
        }
        let line = match BatchEvent::from_json(&payload) {
            Ok(BatchEvent::BatchStarted {
                recipe_version,
                recipe_hash,
                by,
                at,
                ..
            }) => Line {
                at: rfc(at),
                what: "batch started".into(),
                who: by.to_string(),
                detail: format!(
                    "recipe {} {recipe_version} ({recipe_hash})",
                    input.opened.product
                ),
            },
            Ok(BatchEvent::StepStarted {
                step,
                by,
                at,
                lots,
                set_points,
                duration_hours,
                qualification,
            }) => Line {
                at: rfc(at),
                what: format!("step started: {}", step.id),
                who: performer(&by, qualification.as_deref()),
                detail: {
                    let mut d = String::new();
                    if !lots.is_empty() {
                        let l: Vec<String> = lots
                            .iter()
                            .map(|l| format!("{} lot {}", l.material, l.lot))
                            .collect();
                        let _ = write!(d, "materials: {}. ", l.join(", "));
                    }
                    if !set_points.is_empty() {
                        let s: Vec<String> = set_points
                            .iter()
                            .map(|(k, v)| format!("{k} = {v}"))
                            .collect();
                        let _ = write!(d, "set points: {}. ", s.join(", "));
                    }
                    if let Some(h) = duration_hours {
                        let _ = write!(d, "planned {h} h.");
                    }
                    d
                },
            },
            Ok(BatchEvent::SampleResultsRecorded {
                step,
                by,
                at,
                results,
                qualification,
            }) => Line {
                at: rfc(at),
                what: format!("in-process results: {}", step.id),
                who: performer(&by, qualification.as_deref()),
                detail: results
                    .iter()
                    .map(|r| {
                        format!(
                            "{} = {:.4} ({}{}{}){}",
                            r.parameter,
                            r.value,
                            r.min.map(|m| format!("min {m}")).unwrap_or_default(),
                            if r.min.is_some() && r.max.is_some() {
                                ", "
                            } else {
                                ""
                            },
                            r.max.map(|m| format!("max {m}")).unwrap_or_default(),
                            if r.within_limits {
                                ""
                            } else {
                                " OUT OF LIMITS"
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            },
            Ok(BatchEvent::StepCompleted {
                step,
                by,
                at,
                signature,
                qualification,
                ..
            }) => Line {
                at: rfc(at),
                what: format!("step completed: {}", step.id),
                who: by.map_or_else(
                    || format!("device {}", input.opened.device),
                    |b| performer(&b, qualification.as_deref()),
                ),
                detail: signature
                    .map(|s| format!("signed {} ({})", s.meaning.name(), s.signature))
                    .unwrap_or_default(),
            },
            Ok(BatchEvent::DecisionEvaluated {
                step,
                by,
                at,
                parameter,
                value,
                target_min,
                outcome,
                ..
            }) => Line {
                at: rfc(at),
                what: format!("decision: {}", step.id),
                who: by.to_string(),
                detail: format!(
                    "{parameter} = {value:.3e} (target ≥ {target_min:.3e}): {outcome:?}"
                ),
            },
            Ok(BatchEvent::DeviationOpened {
                deviation,
                source,
                by,
                at,
                hold,
                blocks_release,
            }) => Line {
                at: rfc(at),
                what: format!("deviation opened: {deviation}"),
                who: by.map_or_else(|| "automatic".into(), |b| b.to_string()),
                detail: format!(
                    "{} (holds batch: {hold}, blocks release: {blocks_release})",
                    source_text(&source)
                ),
            },
            Ok(BatchEvent::DeviationInvestigationStarted { deviation, by, at }) => Line {
                at: rfc(at),
                what: format!("investigation: {deviation}"),
                who: by.to_string(),
                detail: String::new(),
            },
            Ok(BatchEvent::DeviationCapaDefined {
                deviation,
                root_cause,
                capa,
                by,
                at,
            }) => Line {
                at: rfc(at),
                what: format!("CAPA: {deviation}"),
                who: by.to_string(),
                detail: format!("root cause: {root_cause}; CAPA: {capa}"),
            },
            Ok(BatchEvent::DeviationClosed {
                deviation,
                qa_signature,
                at,
            }) => Line {
                at: rfc(at),
                what: format!("deviation closed: {deviation}"),
                who: qa_signature.signer.to_string(),
                detail: format!("QA signature {}", qa_signature.signature),
            },
            Ok(BatchEvent::BatchAborted { reason, by, at }) => Line {
                at: rfc(at),
                what: "batch aborted".into(),
                who: by.to_string(),
                detail: reason,
            },
            Ok(BatchEvent::BatchCompleted { at }) => Line {
                at: rfc(at),
                what: "batch completed".into(),
                who: String::new(),
                detail: String::new(),
            },
            Err(_) => Line {
                at: r.recorded_at.to_string(),
                what: r
                    .event_type
                    .trim_start_matches("culture.")
                    .replace('_', " "),
                who: r.actor.clone(),
                detail: culture_detail(&r.event_type, &payload),
            },
        };
        out.push(line);
    }
    out
}

fn culture_detail(event_type: &str, p: &Value) -> String {
    match event_type {
        "culture.batch_opened" => format!(
            "starting unit {}, device {}, site {}",
            p["starting_unit"], p["device"], p["site"]
        ),
        "culture.phase_telemetry_summarized" => format!(
            "phase {}: {} samples in {} chunks ({} bytes), seq {}..{}, telemetry SHA-256 {}",
            p["phase"],
            p["samples"],
            p["chunks"],
            p["bytes"],
            p["first_seq"],
            p["last_seq"],
            p["telemetry_sha256"].as_str().unwrap_or("")
        ),
        "culture.prediction_made" => {
            let pr = &p["prediction"];
            format!(
                "{} = {:.3e} ({}), predicted dose day {}",
                pr["parameter"],
                pr["value"].as_f64().unwrap_or(0.0),
                pr["method"],
                pr["median_day"]
            )
        }
        "culture.fault_injected" => format!("{} on {}", p["detail"], p["device"]),
        "culture.units_harvested" => format!(
            "units {}; viable cells {:.3e}",
            p["units"],
            p["harvested_viable_cells"].as_f64().unwrap_or(0.0)
        ),
        "culture.step_refused" => format!(
            "{} refused at {} (rule {}): {}",
            p["by"].as_str().unwrap_or(""),
            p["step"].as_str().unwrap_or(""),
            p["rule"].as_str().unwrap_or(""),
            p["message"].as_str().unwrap_or("")
        ),
        "culture.record_reviewed" => format!(
            "{} exceptions submitted for review",
            p["exceptions"].as_array().map_or(0, Vec::len)
        ),
        _ => String::new(),
    }
}

fn source_text(source: &DeviationSource) -> String {
    match source {
        DeviationSource::IpcOutOfLimit { step, result } => format!(
            "{} = {} out of limits at {step}",
            result.parameter, result.value
        ),
        DeviationSource::DecisionLatestDay {
            step,
            parameter,
            value,
            target_min,
        } => {
            format!("{step}: {parameter} = {value:.3e} below {target_min:.3e} at the latest day")
        }
        DeviationSource::Manual { description } => description.clone(),
    }
}

/// The review-by-exception list: what QA must look at (everything else ran as the approved
/// recipe says). Overrides cannot happen: the engine has no override command.
pub fn exceptions(input: &EbrInput) -> Vec<Value> {
    let mut out = Vec::new();
    for d in input.state.deviations() {
        out.push(json!({
            "kind": "deviation",
            "id": d.id.to_string(),
            "state": format!("{:?}", d.state),
            "blocks_release": d.blocks_release,
            "detail": source_text(&d.source),
        }));
    }
    let mut started: std::collections::BTreeMap<String, (time::OffsetDateTime, f64)> =
        Default::default();
    for (r, e) in events(input) {
        match e {
            BatchEvent::SampleResultsRecorded {
                step, results, at, ..
            } => {
                for res in results.iter().filter(|r| !r.within_limits) {
                    out.push(json!({ "kind": "out_of_limit", "seq": r.seq, "step": step.id, "at": rfc(at), "parameter": res.parameter, "value": res.value, "min": res.min, "max": res.max }));
                }
            }
            BatchEvent::StepStarted {
                step,
                at,
                duration_hours: Some(h),
                ..
            } => {
                started.insert(step.id, (at, h));
            }
            BatchEvent::StepCompleted {
                step, at, by: None, ..
            } => {
                if let Some((s, h)) = started.get(&step.id) {
                    let hours = (at - *s).as_seconds_f64() / 3600.0;
                    if hours > h + LATE_STEP_HOURS {
                        out.push(json!({ "kind": "late_step", "seq": r.seq, "step": step.id, "planned_hours": h, "actual_hours": hours }));
                    }
                }
            }
            BatchEvent::DecisionEvaluated {
                step,
                outcome: DecisionOutcome::ProceedLatestDayReached,
                value,
                ..
            } => {
                out.push(json!({ "kind": "latest_day_reached", "seq": r.seq, "step": step.id, "value": value }));
            }
            BatchEvent::BatchAborted { reason, .. } => {
                out.push(json!({ "kind": "aborted", "seq": r.seq, "detail": reason }));
            }
            _ => {}
        }
    }
    for r in input
        .records
        .iter()
        .filter(|r| r.event_type == "culture.fault_injected")
    {
        out.push(
            json!({ "kind": "device_fault", "seq": r.seq, "detail": r.payload_json()["detail"] }),
        );
    }
    // A refused attempt (a performer confirming their own work's verification) left no
    // step behind, but QA sees that it was tried.
    for r in input
        .records
        .iter()
        .filter(|r| r.event_type == "culture.step_refused")
    {
        let p = r.payload_json();
        out.push(json!({ "kind": "refused_step", "seq": r.seq, "step": p["step"], "rule": p["rule"], "by": p["by"], "detail": p["message"] }));
    }
    out
}

/// (hours since start, viable cells/mL) of the in-process results.
fn growth_points(input: &EbrInput) -> Vec<(f64, f64)> {
    let start = input.state.started_at();
    events(input)
        .filter_map(|(_, e)| match e {
            BatchEvent::SampleResultsRecorded { at, results, .. } => results
                .iter()
                .find(|r| r.parameter == "viable_cells_per_ml")
                .map(|r| {
                    (
                        start.map_or(0.0, |s| (at - s).as_seconds_f64() / 3600.0),
                        r.value,
                    )
                }),
            _ => None,
        })
        .collect()
}

/// (hours, p10, p50, p90) of the latest twin forecast.
fn forecast(input: &EbrInput) -> Vec<[f64; 4]> {
    input
        .prediction
        .as_ref()
        .and_then(|p| p["prediction"]["forecast"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|row| {
            let a = row.as_array()?;
            Some([
                a.first()?.as_f64()?,
                a.get(1)?.as_f64()?,
                a.get(2)?.as_f64()?,
                a.get(3)?.as_f64()?,
            ])
        })
        .collect()
}

/// The growth curve as SVG: observed density (dots), forecast median and 10–90 % band,
/// predicted dose day (vertical line); log axis.
pub fn growth_svg(input: &EbrInput) -> String {
    let (w, h, m) = (640.0, 300.0, 40.0);
    let pts = growth_points(input);
    let fc = forecast(input);
    let values: Vec<f64> = pts
        .iter()
        .map(|p| p.1)
        .chain(fc.iter().flat_map(|f| [f[1], f[3]]))
        .filter(|v| *v > 0.0)
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">"
    );
    if values.is_empty() {
        svg.push_str("<text x=\"20\" y=\"40\">no cell counts recorded yet</text></svg>");
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
    let days = pts
        .iter()
        .map(|p| p.0)
        .chain(fc.iter().map(|f| f[0]))
        .fold(24.0, f64::max)
        / 24.0;
    let x = |hours: f64| m + (hours / 24.0) / days * (w - 2.0 * m);
    let y = |v: f64| h - m - (v.max(1.0).log10() - lo) / (hi - lo) * (h - 2.0 * m);
    let _ = write!(
        svg,
        "<rect x=\"{m}\" y=\"{m}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>",
        w - 2.0 * m,
        h - 2.0 * m
    );
    for d in 0..=(days.ceil() as u32) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{d}</text>",
            x(f64::from(d) * 24.0),
            h - m + 14.0
        );
    }
    for e in (lo as i32)..=(hi as i32) {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">1e{e}</text>",
            m - 4.0,
            y(10f64.powi(e)) + 3.0
        );
    }
    if !fc.is_empty() {
        let band: Vec<String> = fc
            .iter()
            .map(|f| format!("{:.1},{:.1}", x(f[0]), y(f[3])))
            .chain(
                fc.iter()
                    .rev()
                    .map(|f| format!("{:.1},{:.1}", x(f[0]), y(f[1]))),
            )
            .collect();
        let _ = write!(
            svg,
            "<polygon points=\"{}\" fill=\"#cde\" stroke=\"none\"/>",
            band.join(" ")
        );
        let median: Vec<String> = fc
            .iter()
            .map(|f| format!("{:.1},{:.1}", x(f[0]), y(f[2])))
            .collect();
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#246\" stroke-width=\"1.5\"/>",
            median.join(" ")
        );
    }
    for (t, v) in &pts {
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#c30\"/>",
            x(*t),
            y(*v)
        );
    }
    if let Some(day) = input
        .prediction
        .as_ref()
        .and_then(|p| p["prediction"]["median_day"].as_f64())
    {
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{m}\" y2=\"{1}\" stroke=\"#093\" stroke-dasharray=\"4 3\"/><text x=\"{0:.1}\" y=\"{2}\" font-size=\"10\" fill=\"#093\">predicted dose day {day:.1}</text>",
            x(day * 24.0),
            h - m,
            m - 4.0
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">day · viable cells/mL (dots: in-process counts; line and band: twin forecast)</text></svg>",
        w / 2.0,
        h - 6.0
    );
    svg
}

/// The batch record as one HTML page.
pub fn html(input: &EbrInput) -> String {
    let o = &input.opened;
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Batch record {b}</title><style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:4px;font-size:13px;vertical-align:top}}th{{background:#eee}}.bad{{color:#b00}}</style></head><body><h1>Electronic batch record {b}</h1>",
        b = esc(&o.batch)
    );
    let _ = write!(
        s,
        "<table><tr><th>Product</th><td>{}</td><th>Recipe</th><td>{} ({})</td></tr><tr><th>Site</th><td>{}</td><th>Starting unit</th><td>{}</td></tr><tr><th>Device</th><td>{}{}</td><th>Status</th><td>{:?}</td></tr><tr><th>Harvested units</th><td colspan=\"3\">{}</td></tr><tr><th>Generated</th><td colspan=\"3\">{} from ledger records {}</td></tr></table>",
        esc(&o.product),
        esc(&o.recipe_version),
        esc(&o.recipe_hash),
        esc(&o.site),
        esc(&o.starting_unit),
        esc(&o.device),
        o.simulation
            .map(|s| format!(
                " (simulated, seed {}, sampling every {} s)",
                s.seed, s.sample_period_s
            ))
            .unwrap_or_default(),
        input.state.status(),
        esc(&input.harvested_units.join(", ")),
        esc(&input.generated_at),
        match (input.records.first(), input.records.last()) {
            (Some(a), Some(b)) => format!("{}–{}", a.seq, b.seq),
            _ => "none".into(),
        }
    );
    s.push_str("<h2>Growth curve and predicted harvest</h2>");
    s.push_str(&growth_svg(input));
    s.push_str("<h2>Review by exception</h2>");
    let ex = exceptions(input);
    if ex.is_empty() {
        s.push_str("<p>No exceptions: every step ran as the approved recipe says.</p>");
    } else {
        s.push_str("<ul>");
        for e in &ex {
            let _ = write!(s, "<li class=\"bad\">{}</li>", esc(&e.to_string()));
        }
        s.push_str("</ul>");
    }
    s.push_str("<h2>Deviations</h2><table><tr><th>Id</th><th>State</th><th>Why</th><th>Root cause</th><th>CAPA</th><th>Closed by</th></tr>");
    for d in input.state.deviations() {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(d.id.as_str()),
            d.state,
            esc(&source_text(&d.source)),
            esc(d.root_cause.as_deref().unwrap_or("")),
            esc(d.capa.as_deref().unwrap_or("")),
            esc(&d
                .closed_by
                .as_ref()
                .map(|q| format!("{} ({})", q.signer, q.signature))
                .unwrap_or_default())
        );
    }
    s.push_str("</table><h2>Steps, materials, set points, results and signatures</h2><table><tr><th>When</th><th>What</th><th>Who</th><th>Detail</th></tr>");
    for l in lines(input) {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&l.at),
            esc(&l.what),
            esc(&l.who),
            esc(&l.detail)
        );
    }
    s.push_str("</table><h2>Recipe</h2><ol>");
    for (_, step) in input.recipe.steps() {
        let kind = match &step.kind {
            StepKind::Device(d) => {
                format!("device: {} for {} h", d.operation.name(), d.duration_hours)
            }
            StepKind::Operator(o) => format!("operator ({})", o.qualification),
            StepKind::Sampling(_) => "sampling".into(),
            StepKind::Decision(d) => format!(
                "decision: {} ≥ {}, day {}–{}",
                d.parameter, d.target_min, d.earliest_day, d.latest_day
            ),
        };
        let _ = write!(s, "<li>{} — {}</li>", esc(&step.name), esc(&kind));
    }
    s.push_str("</ol></body></html>");
    s
}

// ------------------------------------------------------------------ PDF

/// Characters per PDF line and lines per page (A4, Helvetica 8 pt).
const PDF_LINE_CHARS_MAX: usize = 120;
const PDF_PAGE_LINES_MAX: usize = 70;

fn pdf_text(text: &str) -> String {
    // Base-14 fonts know Latin-1 only: other characters become '?'.
    text.chars()
        .map(|c| match c {
            '(' => "\\(".to_string(),
            ')' => "\\)".to_string(),
            '\\' => "\\\\".to_string(),
            c if (' '..='~').contains(&c) => c.to_string(),
            '–' | '—' => "-".into(),
            '≥' => ">=".into(),
            _ => "?".into(),
        })
        .collect()
}

fn wrap(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if line.chars().count() + word.chars().count() + 1 > PDF_LINE_CHARS_MAX && !line.is_empty()
        {
            out.push(std::mem::take(&mut line));
            line.push_str("    ");
        }
        if !line.is_empty() && !line.ends_with("    ") {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push(line);
    out
}

/// The batch record as PDF: the same sections as the HTML, and the growth curve drawn as
/// vector paths on the first page.
pub fn pdf(input: &EbrInput) -> Vec<u8> {
    let o = &input.opened;
    let mut text: Vec<(bool, String)> = Vec::new();
    let mut push = |bold: bool, t: String| {
        for l in wrap(&t) {
            text.push((bold, l));
        }
    };
    push(true, format!("Electronic batch record {}", o.batch));
    push(
        false,
        format!(
            "Product {} - recipe {} ({})",
            o.product, o.recipe_version, o.recipe_hash
        ),
    );
    push(
        false,
        format!(
            "Site {} - starting unit {} - device {} - status {:?}",
            o.site,
            o.starting_unit,
            o.device,
            input.state.status()
        ),
    );
    push(
        false,
        format!("Harvested units: {}", input.harvested_units.join(", ")),
    );
    push(
        false,
        format!("Generated {} from the ledger", input.generated_at),
    );
    for _ in 0..24 {
        push(false, String::new());
    }
    push(true, "Review by exception".into());
    let ex = exceptions(input);
    if ex.is_empty() {
        push(false, "No exceptions.".into());
    }
    for e in ex {
        push(false, format!("- {e}"));
    }
    push(true, "Deviations".into());
    for d in input.state.deviations() {
        push(
            false,
            format!(
                "{} {:?}: {} | root cause: {} | CAPA: {} | closed: {}",
                d.id,
                d.state,
                source_text(&d.source),
                d.root_cause.as_deref().unwrap_or("-"),
                d.capa.as_deref().unwrap_or("-"),
                d.closed_by
                    .as_ref()
                    .map(|q| format!("{} {}", q.signer, q.signature))
                    .unwrap_or_else(|| "-".into())
            ),
        );
    }
    push(
        true,
        "Steps, materials, set points, results and signatures".into(),
    );
    for l in lines(input) {
        push(
            false,
            format!("{} | {} | {} | {}", l.at, l.what, l.who, l.detail),
        );
    }
    let pages: Vec<&[(bool, String)]> = text.chunks(PDF_PAGE_LINES_MAX).collect();
    let mut contents = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        let mut c = String::from("BT\n");
        let _ = writeln!(c, "40 800 Td 11 TL");
        for (bold, line) in page.iter() {
            let _ = writeln!(
                c,
                "/{} 8 Tf ({}) Tj T*",
                if *bold { "F2" } else { "F1" },
                pdf_text(line)
            );
        }
        c.push_str("ET\n");
        if i == 0 {
            c.push_str(&growth_pdf(input, 40.0, 470.0, 515.0, 250.0));
        }
        let _ = writeln!(
            c,
            "BT /F1 7 Tf 40 20 Td (batch {} - page {} of {}) Tj ET",
            pdf_text(&o.batch),
            i + 1,
            pages.len()
        );
        contents.push(c);
    }
    assemble(&contents)
}

fn growth_pdf(input: &EbrInput, x0: f64, y0: f64, w: f64, h: f64) -> String {
    let pts = growth_points(input);
    let fc = forecast(input);
    let values: Vec<f64> = pts
        .iter()
        .map(|p| p.1)
        .chain(fc.iter().flat_map(|f| [f[1], f[3]]))
        .filter(|v| *v > 0.0)
        .collect();
    let mut c = format!("0.5 G {x0} {y0} {w} {h} re S\n");
    if values.is_empty() {
        return c;
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
    let hours = pts
        .iter()
        .map(|p| p.0)
        .chain(fc.iter().map(|f| f[0]))
        .fold(24.0, f64::max);
    let x = |t: f64| x0 + t / hours * w;
    let y = |v: f64| y0 + (v.max(1.0).log10() - lo) / (hi - lo) * h;
    if fc.len() > 1 {
        let _ = write!(
            c,
            "0.1 0.3 0.6 RG 1 w {:.1} {:.1} m ",
            x(fc[0][0]),
            y(fc[0][2])
        );
        for f in &fc[1..] {
            let _ = write!(c, "{:.1} {:.1} l ", x(f[0]), y(f[2]));
        }
        c.push_str("S\n");
    }
    c.push_str("0.8 0.2 0 rg ");
    for (t, v) in &pts {
        let _ = write!(c, "{:.1} {:.1} 3 3 re f ", x(*t) - 1.5, y(*v) - 1.5);
    }
    let _ = write!(
        c,
        "\n0 g BT /F1 7 Tf {x0} {} Td (viable cells/mL, log 1e{lo}..1e{hi}, over {:.1} days; dots: counts, line: twin forecast median) Tj ET\n",
        y0 - 10.0,
        hours / 24.0
    );
    c
}

fn assemble(contents: &[String]) -> Vec<u8> {
    // Objects: 1 catalog, 2 pages, 3 font F1, 4 font F2, then (page, content) pairs.
    let n = contents.len();
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {n} >>",
            (0..n)
                .map(|i| format!("{} 0 R", 5 + 2 * i))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
            .into(),
    ];
    for (i, c) in contents.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
            6 + 2 * i
        ));
        objects.push(format!("<< /Length {} >>\nstream\n{c}endstream", c.len()));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        let _ = writeln!(tail, "{off:010} 00000 n ");
    }
    let _ = write!(
        tail,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(tail.as_bytes());
    out
}
