//! Opening a batch from the batch screen: a CPC operator (or site administrator) at the
//! chosen site picks one of the site's QA-approved recipes, names the device (empty: the
//! twin's simulated device), scans or types the starting unit, and gives the harvest
//! settings (the harvested unit's product code and shelf life; both empty: the harvest
//! only names its units). The form posts to the same handler as `POST /api/batches`
//! (`routes::batch::start_batch`), which decides: the role, the recipe's approval, the
//! starting unit in custody at the site, the device. A refusal is shown at the field the
//! API names, everything typed kept; once opened, the new batch's view is shown.

use super::{Ui, error_message, idempotency_headers, render};
use crate::error::ApiError;
use crate::json::AppJson;
use crate::routes::batch::model::{BatchModel, HarvestSettings};
use crate::routes::batch::{StartBody, start_batch};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cellops_domain::Role;
use serde::Deserialize;
use serde_json::{Value, json};

/// Who may open a batch (as the API: operators and site administrators at the site).
const OPENERS: &[Role] = &[Role::Operator, Role::SiteAdmin];

/// The form's fields, as typed.
#[derive(Deserialize, Default, Clone)]
pub struct OpenForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    /// `product/version` of an approved recipe at the site.
    #[serde(default)]
    pub recipe: String,
    #[serde(default)]
    pub batch_id: String,
    #[serde(default)]
    pub device: String,
    #[serde(default)]
    pub starting_unit: String,
    #[serde(default)]
    pub harvest_product_code: String,
    #[serde(default)]
    pub shelf_life_hours: String,
}

/// The fields a refusal can be shown at.
const FIELDS: [&str; 6] = [
    "recipe",
    "batch_id",
    "device",
    "starting_unit",
    "harvest_product_code",
    "shelf_life_hours",
];

/// The open form for the batch screen without a batch, for an operator at the chosen
/// site: the site's approved recipes (newest version first per product), what was typed,
/// and no errors.
pub(crate) fn form_view<B: cellops_ledger::Backend>(
    state: &AppState<B>,
    ui: &Ui,
    typed: &OpenForm,
) -> Value {
    if !ui.has_any(OPENERS) {
        return Value::Null;
    }
    let site = ui.site_text();
    let mut recipes: Vec<(String, String, String)> = state.read_model(|m: &mut BatchModel| {
        m.recipes()
            .filter(|r| r.site == site && r.approval.is_some())
            .map(|r| {
                (
                    r.recipe.product().to_string(),
                    r.recipe.version().to_string(),
                    r.recipe.product_name().to_string(),
                )
            })
            .collect()
    });
    recipes.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let recipes: Vec<Value> = recipes
        .into_iter()
        .map(|(product, version, name)| {
            let value = format!("{product}/{version}");
            json!({"selected": value == typed.recipe, "value": value,
                   "label": format!("{name} ({product} {version})")})
        })
        .collect();
    let errors: serde_json::Map<String, Value> = FIELDS
        .iter()
        .chain(["general"].iter())
        .map(|f| (f.to_string(), Value::Null))
        .collect();
    json!({
        "recipes": recipes,
        "batch_id": typed.batch_id,
        "device": typed.device,
        "starting_unit": typed.starting_unit,
        "harvest_product_code": typed.harvest_product_code,
        "shelf_life_hours": typed.shelf_life_hours,
        "errors": errors,
    })
}

/// The form field an API refusal belongs to.
fn form_field(e: &ApiError) -> &'static str {
    match e.field.as_deref() {
        Some("product" | "site" | "version") => "recipe",
        Some("batch") => "batch_id",
        Some("device" | "simulation") => "device",
        Some("starting_unit") => "starting_unit",
        Some("harvest.product_code") => "harvest_product_code",
        Some("harvest.shelf_life_hours") => "shelf_life_hours",
        _ if e.code == "conflict" && e.message.contains("device") => "device",
        _ if e.code == "conflict" => "batch_id",
        _ => "general",
    }
}

/// The start body from the form; a shelf life that is not a whole number of hours, or
/// harvest settings given by half, refused here naming the field.
fn body(ui: &Ui, f: &OpenForm) -> Result<StartBody, ApiError> {
    let (product, version) = match f.recipe.split_once('/') {
        Some((p, v)) if !p.is_empty() && !v.is_empty() => (p.to_string(), Some(v.to_string())),
        _ => {
            return Err(ApiError::bad_request(
                "product",
                "choose one of the site's approved recipes",
            ));
        }
    };
    let code = f.harvest_product_code.trim();
    let life = f.shelf_life_hours.trim();
    let harvest = match (code.is_empty(), life.is_empty()) {
        (true, true) => None,
        (false, true) => {
            return Err(ApiError::bad_request(
                "harvest.shelf_life_hours",
                "give the harvested product's shelf life in hours with its product code",
            ));
        }
        (true, false) => {
            return Err(ApiError::bad_request(
                "harvest.product_code",
                "give the harvested product's code (e.g. S2000100) with its shelf life",
            ));
        }
        (false, false) => Some(HarvestSettings {
            product_code: code.to_string(),
            shelf_life_hours: life.parse().map_err(|_| {
                ApiError::bad_request(
                    "harvest.shelf_life_hours",
                    format!("{life:?} is not a whole number of hours: enter e.g. 72"),
                )
            })?,
        }),
    };
    Ok(StartBody {
        site: ui.site_text(),
        product,
        version,
        starting_unit: f.starting_unit.trim().to_string(),
        batch: Some(f.batch_id.trim().to_string()).filter(|b| !b.is_empty()),
        device: Some(f.device.trim().to_string()).filter(|d| !d.is_empty()),
        simulation: None,
        harvest,
    })
}

/// Opens the batch through the batch API's handler; on success shows its view.
pub async fn open<B: cellops_ledger::Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    axum::Form(f): axum::Form<OpenForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &f.csrf) {
        return refused;
    }
    let result = match body(&ui, &f) {
        Err(e) => Err(e),
        Ok(body) => start_batch(
            State(state.clone()),
            ui.caller.clone(),
            idempotency_headers(&f.key),
            AppJson(body),
        )
        .await
        .map(|j| j.0),
    };
    match result {
        Ok(status) => {
            let batch = status["batch"].as_str().unwrap_or_default().to_string();
            let (code, mut ctx) = super::batch::context(&state, &ui, &batch).await;
            ctx["notice"] = json!(ui.t("batch_opened"));
            render(code, "batch.html", &ctx)
        }
        Err(e) => {
            let (_, mut ctx) = super::batch::context(&state, &ui, "").await;
            let field = form_field(&e);
            let mut form = form_view(&state, &ui, &f);
            if form.is_null() {
                ctx["error"] = json!(error_message(ui.lang, &e));
            } else {
                form["errors"][field] =
                    json!(super::field_error(ui.lang, &e, field, "form_err_open_"));
                ctx["open"] = form;
            }
            let code = if e.status == StatusCode::OK {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                e.status
            };
            render(code, "batch.html", &ctx)
        }
    }
}
