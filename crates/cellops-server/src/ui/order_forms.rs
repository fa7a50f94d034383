//! The hospital's order forms: enrolling a patient and placing an order (physician), the
//! physician's e-signature on the order ("Ordered"), and recording the collection
//! (collector, nurse, physician), each through the orders API handler itself
//! (`routes::orders::{enrol, place, sign, collection}`).
//!
//! A refusal is shown next to the field the API names (`ApiError::field`), the rest of the
//! form as the user typed it: the form is rendered again from what was posted. In Japanese
//! the message is the translation of the rule or the field (the API's sentence is English
//! and shown in English only).

use super::i18n::Lang;
use super::orders::{self, cells_text};
use super::{Ui, error_heading, error_message, field_error, idempotency_headers, render};
use crate::error::ApiError;
use crate::json::AppJson;
use crate::routes::auth::acknowledge_esig_policy;
use crate::routes::orders::{
    CollectionBody, EnrolBody, PlaceBody, SignOrderBody, collection as api_collection,
    enrol as api_enrol, place as api_place, sign as api_sign,
};
use crate::state::AppState;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use cellops_domain::{Role, SiteId};
use cellops_ledger::Backend;
use cellops_orders::{DoseBasis, PRODUCTS, Product};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Who places and signs orders.
pub(crate) const ORDERING_ROLES: [Role; 1] = [Role::Physician];
/// Who records a collection (as the collection API).
pub(crate) const COLLECTION_ROLES: [Role; 3] = [Role::Collector, Role::Nurse, Role::Physician];

/// The new-order form's fields as typed (also what is shown again after a refusal).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewOrderForm {
    #[serde(default, skip_serializing)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    /// `enrol` (a new subject id for this form) or `place`.
    #[serde(default, skip_serializing)]
    pub action: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub product: String,
    #[serde(default)]
    pub manufacturer: String,
    #[serde(default)]
    pub dose_cells: String,
    #[serde(default)]
    pub body_weight_kg: String,
    /// `YYYY-MM-DD` in the user's time zone: the window opens at the start of that day.
    #[serde(default)]
    pub window_earliest: String,
    /// `YYYY-MM-DD` in the user's time zone: the window closes at the end of that day.
    #[serde(default)]
    pub window_latest: String,
}

/// The new-order form's fields that can carry an error.
const ORDER_FIELDS: [&str; 7] = [
    "subject",
    "product",
    "manufacturer",
    "dose_cells",
    "body_weight_kg",
    "window",
    "general",
];

/// The collection form's fields that can carry an error.
const COLLECTION_FIELDS: [&str; 6] = [
    "unit",
    "volume_ml",
    "nucleated_cells",
    "cd3_cells",
    "collected_at",
    "general",
];

/// A number of cells as typed: `1e8`, `100000000`, `100,000,000`, `1.5 × 10^8`, `1.5×10⁸`.
pub(crate) fn parse_cells(text: &str) -> Option<f64> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ',' && *c != '_')
        .collect();
    let value = match compact.split_once(['×', 'x', 'X', '*']) {
        None => compact.parse::<f64>().ok()?,
        Some((mantissa, power)) => {
            let exponent: String = power
                .strip_prefix("10")?
                .trim_start_matches('^')
                .chars()
                .map(|c| match c {
                    '⁰' => '0',
                    '¹' => '1',
                    '²' => '2',
                    '³' => '3',
                    '⁴' => '4',
                    '⁵' => '5',
                    '⁶' => '6',
                    '⁷' => '7',
                    '⁸' => '8',
                    '⁹' => '9',
                    '⁻' => '-',
                    c => c,
                })
                .collect();
            mantissa.parse::<f64>().ok()? * 10f64.powi(exponent.parse::<i32>().ok()?)
        }
    };
    value.is_finite().then_some(value)
}

/// A decimal number as typed (`50`, `50.5`, `50,5`); `None` when empty.
fn parse_decimal(field: &str, text: &str, example: &str) -> Result<Option<f64>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.replace(',', ".").parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(ApiError::bad_request(
            field,
            format!("{text:?} is not a number: enter it as a number, e.g. {example}"),
        )),
    }
}

/// A cell count as typed; `None` when empty.
fn parse_count(field: &str, text: &str) -> Result<Option<f64>, ApiError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse_cells(text).map(Some).ok_or_else(|| {
        ApiError::bad_request(
            field,
            format!(
                "{:?} is not a number of cells: write e.g. 2.6e9",
                text.trim()
            ),
        )
    })
}

/// The allowed dose of a product as text: `3.0 × 10⁶ – 1.0 × 10⁹ CAR+ viable T cells`.
fn dose_range(lang: Lang, product: Product) -> String {
    let rules = product.rules();
    let counts = lang.t(&format!("order_counts_{}", product.id().replace('-', "_")));
    let per = if rules.dose_basis == DoseBasis::PerKg {
        " / kg"
    } else {
        ""
    };
    format!(
        "{} – {} {counts}{per}",
        cells_text(rules.dose_min),
        cells_text(rules.dose_max)
    )
}

/// The form field an API error points at (`general` when none of `fields`).
fn error_field(e: &ApiError, fields: &[&'static str]) -> &'static str {
    let named = match e.field.as_deref() {
        Some("dose_basis") => "product",
        Some("window_earliest" | "window_latest") => "window",
        Some("user_id" | "meaning") => "password",
        Some(f) => f,
        None if e.code == "unauthenticated" => "password",
        None => "general",
    };
    fields
        .iter()
        .chain(["password"].iter())
        .find(|f| **f == named)
        .copied()
        .unwrap_or("general")
}

/// The message shown for an API error at its field: the API's sentence in English (its
/// `field: ` prefix left out), the translated rule or field in Japanese.
fn field_message(ui: &Ui, e: &ApiError, field: &str, product: Option<Product>) -> String {
    if field == "general" {
        return match ui.lang {
            Lang::En => error_message(ui.lang, e),
            Lang::Ja => ui
                .lang
                .texts()
                .get(&format!("form_err_{}", e.code))
                .cloned()
                .unwrap_or_else(|| error_heading(ui.lang, e)),
        };
    }
    let text = field_error(ui.lang, e, field, "form_err_");
    match (ui.lang, e.code, product) {
        (Lang::Ja, "dose_out_of_range", Some(p)) => format!("{text}（{}）", dose_range(ui.lang, p)),
        _ => text,
    }
}

/// `{field: message-or-null}` for every field of a form, the error at its field.
fn errors_map(
    ui: &Ui,
    fields: &[&'static str],
    error: Option<&ApiError>,
    product: Option<Product>,
) -> Value {
    let mut map = Map::new();
    for f in fields.iter().chain(["password"].iter()) {
        map.insert((*f).to_string(), Value::Null);
    }
    if let Some(e) = error {
        let field = error_field(e, fields);
        map.insert(
            field.to_string(),
            json!(field_message(ui, e, field, product)),
        );
    }
    Value::Object(map)
}

/// Whether the user may place orders at the current site.
pub(crate) fn may_order(ui: &Ui) -> bool {
    ui.has_any(&ORDERING_ROLES)
}

/// The new-order form for the page: what was typed (or the defaults: a window from
/// tomorrow for 90 days, the first other site with a facility number as manufacturer),
/// the products with their dose ranges, and the error at its field.
pub(crate) fn new_order_view<B: Backend>(
    state: &AppState<B>,
    ui: &Ui,
    typed: Option<&NewOrderForm>,
    error: Option<&ApiError>,
) -> Value {
    let now = state.clock.now();
    const DAY_US: i64 = 86_400_000_000;
    let form = typed.cloned().unwrap_or_else(|| NewOrderForm {
        key: super::form_key(state),
        product: Product::PrimeCarT.id().to_string(),
        manufacturer: crate::routes::orders::manufacturing_sites(state)
            .into_iter()
            .find(|(_, products)| products.contains(&Product::PrimeCarT))
            .map(|(site, _)| site)
            .unwrap_or_default(),
        window_earliest: ui.zone.local_input(now.plus_us(DAY_US))[..10].to_string(),
        window_latest: ui.zone.local_input(now.plus_us(90 * DAY_US))[..10].to_string(),
        ..NewOrderForm::default()
    });
    let chosen = Product::parse(&form.product).ok();
    let products: Vec<Value> = PRODUCTS
        .iter()
        .map(|p| {
            json!({"id": p.id(), "range": dose_range(ui.lang, *p), "selected": form.product == p.id(),
                   "per_kg": p.rules().dose_basis == DoseBasis::PerKg})
        })
        .collect();
    json!({
        "values": form,
        "products": products,
        "manufacturers": manufacturers(state, &form.manufacturer),
        "errors": errors_map(ui, &ORDER_FIELDS, error, chosen),
    })
}

/// The manufacturing sites to choose from (`GET /api/manufacturers`: an approved recipe
/// makes each product there), each with the products it makes and whether it is chosen.
fn manufacturers<B: Backend>(state: &AppState<B>, chosen: &str) -> Vec<Value> {
    crate::routes::orders::manufacturing_sites(state)
        .into_iter()
        .map(|(site, products)| {
            let made: Vec<&str> = products.iter().map(|p| p.id()).collect();
            json!({"site": site, "products": made.join(", "), "selected": site == chosen})
        })
        .collect()
}

/// The collection form for an order page: what was typed (or empty) and the error at its
/// field.
pub(crate) fn collection_view(
    ui: &Ui,
    typed: Option<&CollectionForm>,
    error: Option<&ApiError>,
) -> Value {
    json!({
        "values": typed.cloned().unwrap_or_default(),
        "errors": errors_map(ui, &COLLECTION_FIELDS, error, None),
    })
}

/// The signature dialog's error (wrong password, policy not accepted, not the physician).
pub(crate) fn sign_view(ui: &Ui, error: Option<&ApiError>) -> Value {
    json!({"errors": errors_map(ui, &["general"], error, None)})
}

/// Places the order (or enrols a new subject for the form). A refusal shows the form again
/// with everything typed and the error next to its field.
pub async fn new_order<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<NewOrderForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    if form.action == "enrol" {
        let enrolled = api_enrol(
            State(state.clone()),
            ui.caller.clone(),
            HeaderMap::new(),
            AppJson(EnrolBody {
                site: ui.site_text(),
            }),
        )
        .await;
        let mut typed = form.clone();
        return match enrolled {
            Ok(body) => {
                typed.subject = body.0["subject"].as_str().unwrap_or("").to_string();
                let (status, mut ctx) = orders::context(&state, &ui, "").await;
                ctx["new_order"] = new_order_view(&state, &ui, Some(&typed), None);
                ctx["notice"] = json!(format!("{} {}", ui.t("orders_enrolled"), typed.subject));
                render(status, "orders.html", &ctx)
            }
            Err(e) => {
                let e = if e.field.is_none() {
                    e.field("subject")
                } else {
                    e
                };
                let (_, mut ctx) = orders::context(&state, &ui, "").await;
                ctx["new_order"] = new_order_view(&state, &ui, Some(&typed), Some(&e));
                render(e.status, "orders.html", &ctx)
            }
        };
    }
    let placed = match place_body(&ui, &form) {
        Ok(body) => {
            api_place(
                State(state.clone()),
                ui.caller.clone(),
                idempotency_headers(&form.key),
                AppJson(body),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match placed {
        Ok(body) => {
            let id = body.0["order"].as_str().unwrap_or("").to_string();
            let (status, mut ctx) = orders::context(&state, &ui, &id).await;
            ctx["notice"] = json!(ui.t("orders_placed"));
            render(status, "orders.html", &ctx)
        }
        Err(e) => {
            let (_, mut ctx) = orders::context(&state, &ui, "").await;
            ctx["new_order"] = new_order_view(&state, &ui, Some(&form), Some(&e));
            render(e.status, "orders.html", &ctx)
        }
    }
}

/// The order API's body from the form; a value that is not a number or a date is refused
/// here naming its field (the API decides everything else).
fn place_body(ui: &Ui, form: &NewOrderForm) -> Result<PlaceBody, ApiError> {
    let product = form.product.trim();
    let dose_basis = Product::parse(product)
        .map(|p| p.rules().dose_basis)
        .map_err(ApiError::from)?;
    let dose_cells = parse_cells(&form.dose_cells).ok_or_else(|| {
        ApiError::bad_request(
            "dose_cells",
            format!(
                "{:?} is not a number of cells: write the dose as e.g. 1e8 or 1.0 × 10^8",
                form.dose_cells.trim()
            ),
        )
    })?;
    let body_weight_kg = parse_decimal("body_weight_kg", &form.body_weight_kg, "62.5")?;
    let day = |field: &str, text: &str| {
        ui.zone.parse_local(text).ok_or_else(|| {
            ApiError::bad_request(
                field,
                format!("{:?} is not a date: give it as YYYY-MM-DD", text.trim()),
            )
        })
    };
    let window_earliest = day("window_earliest", &form.window_earliest)?;
    // The window closes at the end of its last day.
    let window_latest = day("window_latest", &form.window_latest)?.plus_us(86_400_000_000 - 1);
    Ok(PlaceBody {
        site: ui.site_text(),
        subject: form.subject.trim().to_string(),
        product: product.to_string(),
        manufacturer: form.manufacturer.trim().to_string(),
        dose_cells,
        dose_basis,
        body_weight_kg,
        window_earliest,
        window_latest,
    })
}

#[derive(Deserialize)]
pub struct SignForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    pub order: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub password: String,
    /// "on" when the user accepts the e-signature policy with this signature.
    #[serde(default)]
    pub acknowledge: String,
}

/// The treating physician signs the order ("Ordered"), accepting the e-signature policy
/// first when they ticked it.
pub async fn sign<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<SignForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let order = form.order.trim().to_string();
    let mut ui = ui;
    let mut result = Ok(());
    if !ui.caller.user.esig_policy_acknowledged && form.acknowledge == "on" {
        result = acknowledge_esig_policy(State(state.clone()), HeaderMap::new(), ui.caller.clone())
            .await
            .map(|_| ());
        ui.caller.user.esig_policy_acknowledged = result.is_ok();
    }
    if result.is_ok() {
        result = api_sign(
            State(state.clone()),
            ui.caller.clone(),
            idempotency_headers(&form.key),
            Path(order.clone()),
            AppJson(SignOrderBody {
                password: form.password,
                user_id: Some(form.user_id.trim().to_string()).filter(|u| !u.is_empty()),
            }),
        )
        .await
        .map(|_| ());
    }
    let (status, mut ctx) = orders::context(&state, &ui, &order).await;
    match result {
        Ok(()) => {
            ctx["notice"] = json!(ui.t("orders_signed"));
            render(status, "orders.html", &ctx)
        }
        Err(e) => {
            ctx["sign"] = sign_view(&ui, Some(&e));
            render(e.status, "orders.html", &ctx)
        }
    }
}

/// The collection form's fields as typed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CollectionForm {
    #[serde(default, skip_serializing)]
    pub csrf: String,
    #[serde(default, skip_serializing)]
    pub key: String,
    #[serde(default, skip_serializing)]
    pub order: String,
    /// The registered starting-material unit (DIN + product code), as printed or scanned.
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub volume_ml: String,
    #[serde(default)]
    pub nucleated_cells: String,
    #[serde(default)]
    pub cd3_cells: String,
    /// `YYYY-MM-DDTHH:MM` in the user's time zone; now when empty.
    #[serde(default)]
    pub collected_at: String,
}

/// Records the collection against the order (the API checks the unit's patient, the
/// collector's qualification, the stage, volume, counts and time).
pub async fn collection<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<CollectionForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let order = form.order.trim().to_string();
    let result = match collection_body(&ui, &form) {
        Ok(body) => api_collection(
            State(state.clone()),
            ui.caller.clone(),
            idempotency_headers(&form.key),
            Path(order.clone()),
            AppJson(body),
        )
        .await
        .map(|_| ()),
        Err(e) => Err(e),
    };
    let (status, mut ctx) = orders::context(&state, &ui, &order).await;
    match result {
        Ok(()) => {
            ctx["notice"] = json!(ui.t("orders_collected"));
            render(status, "orders.html", &ctx)
        }
        Err(e) => {
            ctx["collection"] = collection_view(&ui, Some(&form), Some(&e));
            render(e.status, "orders.html", &ctx)
        }
    }
}

fn collection_body(ui: &Ui, form: &CollectionForm) -> Result<CollectionBody, ApiError> {
    let volume_ml = parse_decimal("volume_ml", &form.volume_ml, "180")?.ok_or_else(|| {
        ApiError::bad_request("volume_ml", "enter the collected volume in mL, e.g. 180")
    })?;
    let collected_at = match form.collected_at.trim() {
        "" => None,
        text => Some(ui.zone.parse_local(text).ok_or_else(|| {
            ApiError::bad_request(
                "collected_at",
                format!("{text:?} is not a date and time: give it as YYYY-MM-DDTHH:MM"),
            )
        })?),
    };
    Ok(CollectionBody {
        site: ui.site_text(),
        unit: form.unit.trim().to_string(),
        volume_ml,
        nucleated_cells: parse_count("nucleated_cells", &form.nucleated_cells)?,
        cd3_cells: parse_count("cd3_cells", &form.cd3_cells)?,
        collected_at,
    })
}

/// Whether the user may sign this order now: its treating physician, at its hospital.
pub(crate) fn may_sign(ui: &Ui, o: &Value) -> bool {
    o["signed_at"].is_null()
        && o["physician"].as_str() == Some(ui.caller.user.id.as_str())
        && o["site"].as_str() == Some(ui.site_text().as_str())
}

/// Whether the user may record the collection of this order now: at its hospital, as a
/// collector, nurse or physician, the order signed (or its batch failed) and autologous.
pub(crate) fn may_collect(ui: &Ui, o: &Value) -> bool {
    let site = o["site"].as_str().unwrap_or("");
    let autologous =
        Product::parse(o["product"].as_str().unwrap_or("")).is_ok_and(Product::is_autologous);
    autologous
        && matches!(o["stage"].as_str(), Some("signed" | "failed"))
        && ui.site_text() == site
        && SiteId::parse(site).is_ok_and(|s| {
            COLLECTION_ROLES
                .iter()
                .any(|r| ui.caller.user.has_role(*r, &s))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_read_as_typed() {
        assert_eq!(parse_cells("1e8"), Some(1e8));
        assert_eq!(parse_cells(" 100,000,000 "), Some(1e8));
        assert_eq!(parse_cells("1.5 × 10^8"), Some(1.5e8));
        assert_eq!(parse_cells("1.5×10⁸"), Some(1.5e8));
        assert_eq!(parse_cells("2x10^-3"), Some(2e-3));
        for bad in ["", "lots", "1e8 cells", "1.5 × 8", "inf"] {
            assert_eq!(parse_cells(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_api_error_points_at_its_form_field() {
        let dose = ApiError::bad_request("dose_cells", "dose_cells: give a positive number");
        assert_eq!(error_field(&dose, &ORDER_FIELDS), "dose_cells");
        let basis = ApiError::bad_request("dose_basis", "x");
        assert_eq!(error_field(&basis, &ORDER_FIELDS), "product");
        let site = ApiError::bad_request("site", "x");
        assert_eq!(error_field(&site, &ORDER_FIELDS), "general");
        let wrong = ApiError::unauthenticated("user id or password is wrong");
        assert_eq!(error_field(&wrong, &["general"]), "password");
    }

    #[test]
    fn the_dose_range_is_written_per_product() {
        assert_eq!(
            dose_range(Lang::En, Product::PrimeCarT),
            "3.0 × 10⁶ – 1.0 × 10⁹ CAR+ viable T cells"
        );
        assert!(dose_range(Lang::Ja, Product::BmMsc).ends_with("生存MSC / kg"));
    }
}
