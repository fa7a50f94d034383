//! The cellops HTTP server.
//!
//! Flow of a command: handler (auth by [`auth::Caller`], input parsed into domain types) →
//! [`state::AppState::append`] → ledger writer (validation, hash chain, durable group
//! commit) → read models brought up to date from the ledger (`sync`) → JSON response.
//!
//! Architecture invariants: handlers never write to the database except through the ledger
//! (and the secrets table for credentials); every request but health, metrics and the
//! OpenAPI document is authenticated; every read is filtered by the caller's sites.

pub mod accounts;
pub mod auth;
pub mod credentials;
pub mod error;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod projection;
pub mod provision;
pub mod routes;
pub mod state;
pub mod ui;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use cellops_domain::events::CORE_EVENT_TYPES;
use cellops_ledger::{Backend, EventCatalog};
use serde_json::json;
pub use state::{AppState, ServerConfig};

/// Largest request body accepted, in bytes.
pub const REQUEST_BODY_BYTES_MAX: usize = 1024 * 1024;

/// The event catalogue of this build: every event type the ledger accepts.
pub fn event_catalog() -> EventCatalog {
    CORE_EVENT_TYPES
        .iter()
        .chain(cellops_custody::CUSTODY_EVENT_TYPES)
        .chain(routes::labels::LABEL_EVENT_TYPES)
        .chain(routes::FEATURE_EVENT_TYPES.iter().flat_map(|l| l.iter()))
        .fold(EventCatalog::new(), |c, t| c.with(t.name, t.version))
}

/// The whole HTTP API as a router (tests drive it with `oneshot`, the binary serves it).
pub fn app<B: Backend>(state: AppState<B>) -> Router {
    use routes::{auth as a, custody as c, labels as lb, ledger as l, users as u};
    Router::new()
        .route("/health", get(health::<B>))
        .route("/metrics", get(metrics_text::<B>))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/auth/login", post(a::login::<B>))
        .route("/api/auth/logout", post(a::logout::<B>))
        .route("/api/auth/me", get(a::me::<B>))
        .route("/api/auth/password", post(a::change_password::<B>))
        .route("/api/auth/tokens", post(a::issue_token::<B>))
        .route(
            "/api/auth/esig-policy",
            post(a::acknowledge_esig_policy::<B>),
        )
        .route(
            "/api/users",
            get(u::list_users::<B>).post(u::create_user::<B>),
        )
        .route("/api/users/{id}/roles", post(u::grant_role::<B>))
        .route(
            "/api/users/{id}/roles/{site}/{role}",
            delete(u::revoke_role::<B>),
        )
        .route("/api/users/{id}/unlock", post(u::unlock::<B>))
        .route("/api/users/{id}/deactivate", post(u::deactivate::<B>))
        .route("/api/ledger/records", get(l::list_records::<B>))
        .route("/api/ledger/records/{seq}", get(l::get_record::<B>))
        .route("/api/ledger/checkpoint", get(l::latest_checkpoint::<B>))
        .route("/api/ledger/proofs/inclusion", get(l::inclusion_proof::<B>))
        .route(
            "/api/ledger/proofs/consistency",
            get(l::consistency_proof::<B>),
        )
        .route("/api/ledger/event-types", get(l::event_types::<B>))
        .route("/api/ledger/corrections", post(l::correct::<B>))
        .route("/api/notes", post(l::add_note::<B>))
        .route("/api/signatures", post(l::sign::<B>))
        .route("/api/dins", post(c::allocate_dins::<B>))
        .route("/api/units", post(c::create_unit::<B>))
        .route("/api/units/derive", post(c::derive::<B>))
        .route("/api/units/{code}/trace", get(c::trace::<B>))
        .route("/api/units/{code}/handoffs", post(c::hand_off::<B>))
        .route("/api/scans", post(c::scan::<B>))
        .route("/api/recall", get(c::recall::<B>))
        .route("/api/labels/print", post(lb::print::<B>))
        .route("/api/labels/apply", post(lb::apply::<B>))
        .route("/api/labels/destroy", post(lb::destroy::<B>))
        .route("/api/labels/reconciliation", get(lb::reconciliation::<B>))
        .merge(routes::feature_routes::<B>())
        .merge(ui::router::<B>())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests::<B>,
        ))
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .with_state(state)
}

async fn health<B: Backend>(State(state): State<AppState<B>>) -> Response {
    let size = state.ledger.size();
    axum::Json(json!({ "status": "ok", "ledger_records": size })).into_response()
}

async fn metrics_text<B: Backend>(State(state): State<AppState<B>>) -> Response {
    state.metrics.ledger_records.set(state.ledger.size() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> error::ApiError {
    error::ApiError::not_found("no such endpoint: see /api/openapi.json")
}

async fn count_requests<B: Backend>(
    State(state): State<AppState<B>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status();
    state
        .metrics
        .http_requests
        .get_or_create(&metrics::HttpLabels {
            method,
            status: status.as_u16(),
        })
        .inc();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return error::ApiError::new(
            status,
            "too_large",
            format!("the request body is larger than {REQUEST_BODY_BYTES_MAX} bytes"),
        )
        .into_response();
    }
    response
}
