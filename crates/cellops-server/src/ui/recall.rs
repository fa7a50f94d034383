//! Recall: everything derived from a unit or made with a reagent lot, what of it is still in
//! circulation, and who received it (`GET /api/recall`), for QA, physicians, auditors and
//! site administrators.

use super::{Ui, error_message, render};
use crate::json::AppQuery;
use crate::routes::custody::{RecallQuery, recall as api_recall};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use cellops_domain::Role;
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

/// Roles that may ask a recall question (the API checks again).
pub(crate) const RECALL_ROLES: [Role; 5] = [
    Role::QaReviewer,
    Role::QaReleaser,
    Role::Physician,
    Role::Auditor,
    Role::SiteAdmin,
];

#[derive(Deserialize)]
pub struct RecallForm {
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub reagent_lot: String,
}

pub async fn page<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    Query(q): Query<RecallForm>,
) -> Response {
    let mut ctx = ui.context("/ui/recall", "recall_title");
    let unit = q.unit.trim().to_string();
    let lot = q.reagent_lot.trim().to_string();
    ctx["unit"] = json!(unit);
    ctx["reagent_lot"] = json!(lot);
    ctx["recall"] = Value::Null;
    if unit.is_empty() && lot.is_empty() {
        return render(StatusCode::OK, "recall.html", &ctx);
    }
    let query = RecallQuery {
        unit: Some(unit).filter(|u| !u.is_empty()),
        reagent_lot: Some(lot).filter(|l| !l.is_empty()),
    };
    match api_recall(State(state), ui.caller.clone(), AppQuery(query)).await {
        Ok(body) => {
            let r = body.0;
            let count = |k: &str| {
                ui.lang
                    .format_count(r[k].as_array().map_or(0, |a| a.len() as u64))
            };
            let infusions: Vec<Value> = r["infusions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|i| {
                    json!({
                        "order": i["order"], "patient": i["patient"], "unit": i["unit"],
                        "at": ui.format_time_text(i["at"].as_str().unwrap_or("")),
                    })
                })
                .collect();
            ctx["recall"] = json!({
                "units": r["units"],
                "in_circulation": r["in_circulation"],
                "patients": r["patients"],
                "infusions": infusions,
                "units_count": count("units"),
                "in_circulation_count": count("in_circulation"),
                "patients_count": count("patients"),
                "alarm": r["in_circulation"].as_array().is_some_and(|a| !a.is_empty())
                    || r["patients"].as_array().is_some_and(|a| !a.is_empty()),
            });
            render(StatusCode::OK, "recall.html", &ctx)
        }
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            render(e.status, "recall.html", &ctx)
        }
    }
}
