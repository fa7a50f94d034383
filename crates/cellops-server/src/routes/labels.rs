//! Unit labels: printing (a PDF of ISBT 128 labels), reprinting (needs a reason), applying
//! and destroying are recorded, and a label batch reconciles only when every printed label
//! was applied or destroyed (FACT-JACIE label reconciliation; a batch that does not
//! reconcile cannot be released).

use super::parse_site;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{AppJson, AppQuery, idempotency_key};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use cellops_custody::UnitCode;
use cellops_domain::events::EventType;
use cellops_domain::{Role, Stream};
use cellops_ledger::{Backend, NewRecord, Record};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Labels printed in one request.
pub const LABEL_COPIES_MAX: u32 = 100;

pub const LABEL_EVENT_TYPES: &[EventType] = &[
    EventType {
        name: "label.printed",
        version: 1,
        description: "labels were printed for a unit (a reprint carries its reason)",
    },
    EventType {
        name: "label.applied",
        version: 1,
        description: "printed labels were applied to the unit's container",
    },
    EventType {
        name: "label.destroyed",
        version: 1,
        description: "printed labels were destroyed unused, with a reason",
    },
];

/// Payload of the three label events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelPayload {
    pub batch: String,
    pub unit: String,
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Label counts of one batch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LabelBatch {
    pub printed: u64,
    pub applied: u64,
    pub destroyed: u64,
    /// Units that have had labels printed (a second print is a reprint).
    pub units: BTreeSet<String>,
}

impl LabelBatch {
    /// Printed labels neither applied nor destroyed yet.
    pub fn outstanding(&self) -> u64 {
        self.printed - self.applied - self.destroyed
    }
}

/// The label read model, rebuilt from the ledger.
#[derive(Debug, Default)]
pub struct Labels {
    batches: BTreeMap<String, LabelBatch>,
}

impl Labels {
    pub fn batch(&self, batch: &str) -> Option<&LabelBatch> {
        self.batches.get(batch)
    }

    pub fn apply(&mut self, r: &Record) {
        let Ok(p) = serde_json::from_str::<LabelPayload>(&r.payload) else {
            return;
        };
        let b = self.batches.entry(p.batch).or_default();
        match r.event_type.as_str() {
            "label.printed" => {
                b.printed += u64::from(p.count);
                b.units.insert(p.unit);
            }
            "label.applied" => b.applied += u64::from(p.count),
            "label.destroyed" => b.destroyed += u64::from(p.count),
            _ => {}
        }
    }
}

pub fn is_label_event(event_type: &str) -> bool {
    LABEL_EVENT_TYPES.iter().any(|t| t.name == event_type)
}

fn batch_stream(batch: &str) -> ApiResult<String> {
    let stream = format!("labels/{batch}");
    Stream::parse(&stream).map_err(|e| ApiError::bad_request("batch", e.to_string()))?;
    Ok(stream)
}

const LABEL_ROLES: [Role; 4] = [
    Role::Collector,
    Role::Operator,
    Role::Nurse,
    Role::QcAnalyst,
];

#[derive(Deserialize)]
pub struct PrintBody {
    /// The label batch (e.g. the manufacturing batch or collection) the labels belong to.
    pub batch: String,
    /// DIN + product code of a registered unit.
    pub unit: String,
    pub copies: u32,
    /// Text printed under the symbols (product description from site configuration).
    pub description: String,
    pub site: String,
    /// Required when the unit already had labels printed.
    pub reason: Option<String>,
}

/// Prints labels for a unit: answers with the PDF and records `label.printed`.
pub async fn print<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<PrintBody>,
) -> ApiResult<Response> {
    let site = parse_site("site", &body.site)?;
    caller.require(&LABEL_ROLES, &site)?;
    if body.copies == 0 || body.copies > LABEL_COPIES_MAX {
        return Err(ApiError::bad_request(
            "copies",
            format!("print 1 to {LABEL_COPIES_MAX} labels at a time"),
        ));
    }
    let code = UnitCode::parse(&body.unit).map_err(|e| ApiError::from(e).field("unit"))?;
    let stream = batch_stream(&body.batch)?;
    state.sync().await?;
    let unit = state
        .custody
        .lock()
        .expect("custody lock")
        .unit(&code)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("unit {code} is not registered")))?;
    let reprint = state
        .labels
        .lock()
        .expect("labels lock")
        .batch(&body.batch)
        .is_some_and(|b| b.units.contains(&code.to_string()));
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    if reprint && reason.is_none() {
        return Err(ApiError::bad_request(
            "reason",
            format!(
                "labels for {code} were printed already: a reprint must say why (e.g. label damaged)"
            ),
        ));
    }
    let expiry_text = unit.expires_at().to_string();
    let expiry = cellops_isbt::IsbtDateTime::parse_iso8601(&expiry_text[..16])
        .map_err(|e| ApiError::internal(format!("unit expiry {expiry_text}: {e}")))?;
    let content = cellops_label::LabelContent::new(code.din(), code.product(), &body.description)
        .map_err(|e| ApiError::bad_request("description", e.to_string()))?
        .with_expiry(expiry, None)
        .map_err(ApiError::internal)?;
    let labels = vec![content; body.copies as usize];
    let pdf = cellops_label::render_pdf(&labels, &cellops_label::SheetLayout::a4())
        .map_err(ApiError::internal)?;
    let payload = LabelPayload {
        batch: body.batch.clone(),
        unit: code.to_string(),
        count: body.copies,
        reason,
    };
    let record = NewRecord::new(
        &stream,
        "label.printed",
        1,
        serde_json::to_value(&payload).expect("payload serializes"),
        &caller.user.id,
        site.as_str(),
    );
    state
        .append(vec![record], idempotency_key(&headers))
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf).into_response())
}

#[derive(Deserialize)]
pub struct CountBody {
    pub batch: String,
    pub unit: String,
    pub count: u32,
    pub site: String,
    /// Required for destroying.
    pub reason: Option<String>,
}

async fn record_count<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    headers: &HeaderMap,
    body: CountBody,
    event: &'static str,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&LABEL_ROLES, &site)?;
    let stream = batch_stream(&body.batch)?;
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    if event == "label.destroyed" && reason.is_none() {
        return Err(ApiError::bad_request(
            "reason",
            "say why the labels were destroyed",
        ));
    }
    state.sync().await?;
    let outstanding = state
        .labels
        .lock()
        .expect("labels lock")
        .batch(&body.batch)
        .map_or(0, LabelBatch::outstanding);
    if body.count == 0 || u64::from(body.count) > outstanding {
        return Err(ApiError::bad_request(
            "count",
            format!(
                "{} labels of batch {} are printed and not yet applied or destroyed; count must be 1 to that",
                outstanding, body.batch
            ),
        ));
    }
    let payload = LabelPayload {
        batch: body.batch.clone(),
        unit: body.unit.clone(),
        count: body.count,
        reason,
    };
    let record = NewRecord::new(
        &stream,
        event,
        1,
        serde_json::to_value(&payload).expect("payload serializes"),
        &caller.user.id,
        site.as_str(),
    );
    state.append(vec![record], idempotency_key(headers)).await?;
    reconciliation_view(state, &body.batch)
}

pub async fn apply<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<CountBody>,
) -> ApiResult<Json<Value>> {
    record_count(&state, &caller, &headers, body, "label.applied").await
}

pub async fn destroy<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<CountBody>,
) -> ApiResult<Json<Value>> {
    record_count(&state, &caller, &headers, body, "label.destroyed").await
}

fn reconciliation_view<B: Backend>(state: &AppState<B>, batch: &str) -> ApiResult<Json<Value>> {
    let labels = state.labels.lock().expect("labels lock");
    let b = labels
        .batch(batch)
        .ok_or_else(|| ApiError::not_found(format!("no labels were printed for batch {batch}")))?;
    Ok(Json(json!({
        "batch": batch,
        "printed": b.printed,
        "applied": b.applied,
        "destroyed": b.destroyed,
        "outstanding": b.outstanding(),
        "reconciled": b.outstanding() == 0,
    })))
}

#[derive(Deserialize)]
pub struct BatchQuery {
    pub batch: String,
}

/// Label reconciliation of a batch: printed = applied + destroyed, or the batch cannot be
/// released.
pub async fn reconciliation<B: Backend>(
    State(state): State<AppState<B>>,
    _caller: Caller,
    AppQuery(q): AppQuery<BatchQuery>,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    reconciliation_view(&state, &q.batch)
}
