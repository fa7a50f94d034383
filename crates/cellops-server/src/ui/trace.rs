//! Unit trace: a unit's genealogy (parents and children, each a link) and its custody
//! timeline and path of locations, from the custody API (`GET /api/units/{code}/trace`).

use super::{Ui, error_message, render};
use crate::routes::custody::trace as api_trace;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct TraceQuery {
    #[serde(default)]
    pub code: String,
}

/// Fields of a timeline event shown in their own columns, not among the details.
const EVENT_COLUMNS: [&str; 4] = ["type", "version", "at", "by"];

/// A JSON value as one line of text; timestamps in the user's format.
fn value_text(ui: &Ui, v: &Value) -> String {
    match v {
        Value::String(s) => ui.format_time_text(s),
        Value::Null => "—".to_string(),
        Value::Array(a) => a
            .iter()
            .map(|x| value_text(ui, x))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The label of an event type: translated when the files name it, else the type itself.
fn event_label(ui: &Ui, event_type: &str) -> String {
    let key = format!("event_{}", event_type.replace('.', "_"));
    ui.lang
        .texts()
        .get(&key)
        .cloned()
        .unwrap_or_else(|| event_type.to_string())
}

/// A field's value for the page: steps by their translated name, other values as text.
fn field_value(ui: &Ui, field: &str, v: &Value) -> String {
    if field == "step"
        && let Some(step) = v.as_str()
        && let Some(label) = ui.lang.texts().get(&format!("step_{step}"))
    {
        return label.clone();
    }
    value_text(ui, v)
}

/// The label of an event field: translated when the files name it, else the field itself.
fn field_label(ui: &Ui, field: &str) -> String {
    ui.lang
        .texts()
        .get(&format!("field_{field}"))
        .cloned()
        .unwrap_or_else(|| field.to_string())
}

fn timeline_view(ui: &Ui, timeline: &[Value]) -> (Vec<Value>, Vec<String>) {
    let mut path: Vec<String> = Vec::new();
    let rows = timeline
        .iter()
        .map(|e| {
            let event_type = e["type"].as_str().unwrap_or("");
            if let Some(loc) = e.get("location").and_then(Value::as_str)
                && path.last().map(String::as_str) != Some(loc)
            {
                path.push(loc.to_string());
            }
            let details: Vec<Value> = e
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| !EVENT_COLUMNS.contains(&k.as_str()))
                        .map(|(k, v)| json!({"name": field_label(ui, k), "value": field_value(ui, k, v)}))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "at": value_text(ui, &e["at"]),
                "type": event_label(ui, event_type),
                "refusal": event_type.contains("refused"),
                "by": value_text(ui, &e["by"]),
                "details": details,
            })
        })
        .collect();
    (rows, path)
}

pub async fn page<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    Query(q): Query<TraceQuery>,
) -> Response {
    let mut ctx = ui.context("/ui/trace", "trace_title");
    let code = q.code.trim().to_string();
    ctx["code"] = json!(code);
    if code.is_empty() {
        return render(StatusCode::OK, "trace.html", &ctx);
    }
    match api_trace(State(state), ui.caller.clone(), Path(code)).await {
        Ok(body) => {
            let t = body.0;
            let unit = &t["unit"];
            let status = unit["status"].as_str().unwrap_or("");
            let status_key = format!("status_{status}");
            let (rows, path) = timeline_view(&ui, t["timeline"].as_array().map_or(&[], |v| v));
            ctx["trace"] = json!({
                "code": unit["code"],
                "status": ui.lang.texts().get(&status_key).cloned().unwrap_or(status.to_string()),
                "final": !matches!(status, "available" | "in_transit"),
                "site": unit["site"],
                "location": unit["location"],
                "custodian": unit["custodian"],
                "patient": value_text(&ui, &unit["patient"]),
                "expires_at": value_text(&ui, &unit["expires_at"]),
                "ancestors": t["ancestors"],
                "descendants": t["descendants"],
                "timeline": rows,
                "path": path,
            });
            render(StatusCode::OK, "trace.html", &ctx)
        }
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            render(e.status, "trace.html", &ctx)
        }
    }
}
