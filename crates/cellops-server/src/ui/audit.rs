//! The audit view: ledger records by stream or the latest ones, one record with its
//! e-signatures, and a "verify" button that checks the record in the browser
//! (`assets/audit.js`): its chain hash from its canonical entry, its inclusion proof (RFC
//! 9162) up to the root of the latest checkpoint, and that checkpoint's Ed25519 signature
//! (C2SP signed note) under the trusted key typed or pasted into the page.

use super::{Ui, error_message, render};
use crate::json::AppQuery;
use crate::routes::ledger::{RecordsQuery, get_record, list_records};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

/// Records per page of the list.
const LIST_RECORDS_MAX: usize = 50;

#[derive(Deserialize)]
pub struct AuditQuery {
    pub seq: Option<u64>,
    pub stream: Option<String>,
    pub after: Option<u64>,
}

pub async fn page<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    Query(q): Query<AuditQuery>,
) -> Response {
    let mut ctx = ui.context("/ui/audit", "audit_title");
    let stream = q.stream.filter(|s| !s.trim().is_empty());
    ctx["stream"] = json!(stream);
    ctx["seq"] = json!(q.seq);
    ctx["record"] = Value::Null;
    ctx["records"] = Value::Null;
    if let Some(seq) = q.seq {
        return match get_record(State(state.clone()), ui.caller.clone(), Path(seq)).await {
            Ok(body) => {
                ctx["record"] = record_view(&ui, &body.0);
                ctx["trusted_key"] = json!(state.ledger.verifier().to_vkey());
                render(StatusCode::OK, "audit.html", &ctx)
            }
            Err(e) => {
                ctx["error"] = json!(error_message(ui.lang, &e));
                render(e.status, "audit.html", &ctx)
            }
        };
    }
    let after = q.after.unwrap_or_else(|| match &stream {
        Some(_) => 0,
        None => state.ledger.size().saturating_sub(LIST_RECORDS_MAX as u64),
    });
    let query = RecordsQuery {
        stream: stream.clone(),
        after,
        limit: Some(LIST_RECORDS_MAX),
    };
    match list_records(State(state), ui.caller.clone(), AppQuery(query)).await {
        Ok(body) => {
            let records = body.0["records"].as_array().cloned().unwrap_or_default();
            let rows: Vec<Value> = records
                .iter()
                .map(|r| {
                    json!({
                        "seq": r["seq"],
                        "at": ui.format_time_text(r["recorded_at"].as_str().unwrap_or("")),
                        "type": r["type"],
                        "stream": r["stream"],
                        "actor": r["actor"],
                        "signed": !r["signature"].is_null(),
                    })
                })
                .collect();
            ctx["records"] = json!(rows);
            let next = body.0["next_after"].as_u64();
            ctx["next_after"] = json!(next.filter(|_| records.len() == LIST_RECORDS_MAX));
            render(StatusCode::OK, "audit.html", &ctx)
        }
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            render(e.status, "audit.html", &ctx)
        }
    }
}

/// A signature block for the page, with its time in the user's format.
fn signature_view(ui: &Ui, s: &Value) -> Value {
    json!({
        "signer": s["signer"],
        "signer_name": s["signer_name"],
        "meaning": s["meaning"],
        "signed_at": ui.format_time_text(s["signed_at"].as_str().unwrap_or("")),
        "authentication": s["authentication"],
    })
}

fn record_view(ui: &Ui, r: &Value) -> Value {
    let signatures: Vec<Value> = r["signatures"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|s| {
                    let mut v = signature_view(ui, &s["signature"]);
                    v["seq"] = s["seq"].clone();
                    v
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "seq": r["seq"],
        "stream": r["stream"],
        "type": r["type"],
        "version": r["version"],
        "actor": r["actor"],
        "site": r["site"],
        "recorded_at": ui.format_time_text(r["recorded_at"].as_str().unwrap_or("")),
        "reason": r["reason"],
        "corrects": r["corrects"],
        "hash": r["hash"],
        "prev_hash": r["prev_hash"],
        "payload": serde_json::to_string_pretty(&r["payload"]).unwrap_or_default(),
        "own_signature": if r["signature"].is_null() { Value::Null } else { signature_view(ui, &r["signature"]) },
        "signatures": signatures,
    })
}
