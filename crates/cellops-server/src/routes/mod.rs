pub mod auth;
pub mod bank;
pub mod batch;
pub mod custody;
pub mod labels;
pub mod ledger;
pub mod notify;
pub mod orders;
pub mod qc;
pub mod schedule;
pub mod shipments;
pub mod storage;
pub mod training;
pub mod users;

use crate::error::{ApiError, ApiResult};
use crate::projection::Projections;
use crate::state::{AppState, ServerConfig};
use axum::Router;
use cellops_domain::SiteId;
use cellops_domain::events::EventType;
use cellops_ledger::Backend;

/// Event types of the feature modules (the core, custody and label types are added in
/// [`crate::event_catalog`]). A module adds its list here.
pub const FEATURE_EVENT_TYPES: &[&[EventType]] = &[
    orders::EVENT_TYPES,
    batch::EVENT_TYPES,
    training::EVENT_TYPES,
    qc::EVENT_TYPES,
    storage::EVENT_TYPES,
    schedule::EVENT_TYPES,
    notify::EVENT_TYPES,
];

/// The documented endpoints of the feature modules (see [`crate::openapi`]).
pub const FEATURE_ROUTE_DOCS: &[&[crate::openapi::RouteDoc]] = &[
    orders::ROUTES,
    batch::ROUTES,
    training::ROUTES,
    qc::ROUTES,
    storage::ROUTES,
    shipments::ROUTES,
    bank::ROUTES,
    schedule::ROUTES,
    notify::ROUTES,
];

/// The read models of the feature modules. A module registers its projection here.
pub fn projections(config: &ServerConfig) -> Projections {
    Projections::default()
        .with(orders::Orders::default())
        .with(batch::BatchModel::default())
        .with(batch::BatchRuntime::default())
        .with(training::TrainingModel::new(
            config.qualification_matrix.clone(),
        ))
        .with(qc::projection())
        .with(storage::ColdModel::default())
        .with(schedule::ScheduleModel::demo(config))
        .with(notify::NotifyModel::default())
}

/// The routes of the feature modules. A module merges its router here.
pub fn feature_routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .merge(orders::router::<B>())
        .merge(batch::router::<B>())
        .merge(training::router::<B>())
        .merge(qc::router::<B>())
        .merge(storage::router::<B>())
        .merge(shipments::router::<B>())
        .merge(bank::router::<B>())
        .merge(schedule::router::<B>())
        .merge(notify::router::<B>())
}

/// Parses a site id from request input; the error names `field`.
pub(crate) fn parse_site(field: &str, text: &str) -> ApiResult<SiteId> {
    SiteId::parse(text).map_err(|e| ApiError::bad_request(field, e.to_string()))
}
