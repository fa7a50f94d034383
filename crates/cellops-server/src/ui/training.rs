//! The training matrix of the current site: people by qualification, each cell coloured
//! and labelled by status (qualified, expiring within 30 days, expired, suspended, never
//! held) with its expiry date, and the qualifications expiring soon. Data from the training
//! API (`GET /api/training/matrix`, `GET /api/training/expiring`).

use super::home::{Item, Section};
use super::{Ui, error_message, render};
use crate::json::AppQuery;
use crate::routes::training::{SiteQuery, expiring, matrix};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use cellops_domain::Role;
use cellops_ledger::Backend;
use serde_json::{Value, json};

/// Largest matrix body read, in bytes.
const MATRIX_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Days ahead the "expiring" list looks (the matrix's amber threshold).
const EXPIRING_DAYS: u32 = 30;

fn site_query(ui: &Ui, days: Option<u32>) -> SiteQuery {
    SiteQuery {
        site: ui.site_text(),
        at: None,
        format: None,
        days,
    }
}

/// The qualifications expiring at the current site within [`EXPIRING_DAYS`]: everyone's
/// for trainers, QA and administrators, else the user's own.
pub(crate) async fn expiring_list<B: Backend>(
    state: &AppState<B>,
    ui: &Ui,
) -> Result<Vec<Value>, crate::error::ApiError> {
    let body = expiring(
        State(state.clone()),
        ui.caller.clone(),
        AppQuery(site_query(ui, Some(EXPIRING_DAYS))),
    )
    .await?;
    let sees_all = ui.has_any(&[
        Role::Trainer,
        Role::SiteAdmin,
        Role::QaReviewer,
        Role::QaReleaser,
        Role::Auditor,
    ]);
    Ok(body.0["expiring"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| sees_all || e["user"].as_str() == Some(ui.caller.user.id.as_str()))
        .collect())
}

/// The home page's section "qualifications expiring".
pub(crate) async fn home_section<B: Backend>(state: &AppState<B>, ui: &Ui) -> Option<Section> {
    let list = expiring_list(state, ui).await.ok()?;
    if list.is_empty() {
        return None;
    }
    let items = list
        .iter()
        .map(|e| Item {
            text: format!(
                "{} · {} · {} {}",
                e["name"].as_str().unwrap_or(""),
                e["qualification"].as_str().unwrap_or(""),
                ui.t("expires"),
                ui.format_time_text(e["expires_at"].as_str().unwrap_or(""))
            ),
            href: Some("/ui/training".to_string()),
            warn: true,
        })
        .collect();
    Some(Section {
        id: "qualifications-expiring",
        title: ui.t("home_qualifications_expiring"),
        href: "/ui/training",
        items,
    })
}

pub async fn page<B: Backend>(State(state): State<AppState<B>>, ui: Ui) -> Response {
    let mut ctx = ui.context("/ui/training", "training_title");
    ctx["matrix"] = Value::Null;
    let response = match matrix(
        State(state.clone()),
        ui.caller.clone(),
        AppQuery(site_query(&ui, None)),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            return render(e.status, "training.html", &ctx);
        }
    };
    let report: Value = match axum::body::to_bytes(response.into_body(), MATRIX_BYTES_MAX).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(e) => {
            let err = crate::error::ApiError::internal(e);
            return ui.error_page(err.status, &error_message(ui.lang, &err));
        }
    };
    let rows: Vec<Value> = report["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let cells: Vec<Value> = r["cells"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    let status = c["status"].as_str().unwrap_or("none");
                    json!({
                        "status": status,
                        "label": ui.t(&format!("training_status_{status}")),
                        "expires": c["expires_at"].as_str().map(|t| ui.format_time_text(t)),
                    })
                })
                .collect();
            json!({"user": r["user"], "name": r["name"], "cells": cells})
        })
        .collect();
    ctx["matrix"] = json!({
        "qualifications": report["qualifications"],
        "rows": rows,
        "at": ui.format_time_text(report["at"].as_str().unwrap_or("")),
    });
    let expiring: Vec<Value> = expiring_list(&state, &ui)
        .await
        .unwrap_or_default()
        .iter()
        .map(|e| {
            json!({
                "name": e["name"], "qualification": e["qualification"],
                "expires": ui.format_time_text(e["expires_at"].as_str().unwrap_or("")),
                "days_left": e["days_left"],
            })
        })
        .collect();
    ctx["expiring"] = json!(expiring);
    render(StatusCode::OK, "training.html", &ctx)
}
