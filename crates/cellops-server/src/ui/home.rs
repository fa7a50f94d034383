//! The home page: "what needs me now", as sections that each feature fills for the roles
//! it concerns. A section appears only when its provider has something to say to this
//! user at this site; a feature module adds its provider to [`PROVIDERS`]'s list.

use super::{Ui, render};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use cellops_domain::Role;
use cellops_ledger::Backend;
use serde_json::{Value, json};

/// Items shown per section (the full list is on the section's own screen).
const SECTION_ITEMS_MAX: usize = 20;
/// A unit expiring within this time is highlighted.
const EXPIRY_WARNING_US: i64 = 24 * 3600 * 1_000_000;

/// One section of the home page.
pub struct Section {
    pub title: String,
    /// Link to the screen with the full list.
    pub href: &'static str,
    pub items: Vec<Item>,
}

/// One line of a section.
pub struct Item {
    pub text: String,
    pub href: Option<String>,
    /// Needs attention soon (shown highlighted).
    pub warn: bool,
}

/// A section provider: `None` when it has nothing for this user at this site.
type Provider<B> = fn(&AppState<B>, &Ui) -> Option<Section>;

/// The providers, in the order their sections appear.
fn providers<B: Backend>() -> [Provider<B>; 5] {
    [
        orders_at_the_bedside::<B>,
        units_in_my_custody::<B>,
        samples_to_test::<B>,
        batches_to_review::<B>,
        locked_accounts::<B>,
    ]
}

/// Nurses and physicians: the hospital's orders whose product is here and waits for thaw,
/// the bedside check or the infusion.
fn orders_at_the_bedside<B: Backend>(state: &AppState<B>, ui: &Ui) -> Option<Section> {
    use cellops_orders::Stage;
    if !ui.has_any(&[Role::Nurse, Role::Physician]) {
        return None;
    }
    let site = ui.site.clone()?;
    let items: Vec<Item> = state.read_model(|m: &mut crate::routes::orders::Orders| {
        m.book
            .orders()
            .filter(|o| o.site == site)
            .filter(|o| {
                matches!(
                    o.stage,
                    Stage::ReceivedAtHospital | Stage::Thawed | Stage::Verified
                )
            })
            .map(|o| Item {
                text: format!(
                    "{} · {} · {}",
                    o.id,
                    o.subject,
                    ui.t(&format!("order_next_{}", o.stage.as_str()))
                ),
                href: Some(format!("/ui/orders?order={}", o.id)),
                warn: true,
            })
            .collect()
    });
    (!items.is_empty()).then(|| Section {
        title: ui.t("home_orders_at_bedside"),
        href: "/ui/orders",
        items,
    })
}

/// QC analysts: batches at the site still missing results.
fn samples_to_test<B: Backend>(state: &AppState<B>, ui: &Ui) -> Option<Section> {
    if !ui.has_any(&[Role::QcAnalyst]) {
        return None;
    }
    let items: Vec<Item> = super::qc::site_batches(state, ui)
        .into_iter()
        .filter(|(_, missing, _, released)| *missing > 0 && !released)
        .map(|(batch, missing, _, _)| Item {
            text: format!(
                "{batch} · {} {}",
                ui.t("home_results_missing"),
                ui.lang.format_count(missing as u64)
            ),
            href: Some(format!("/ui/qc?batch={batch}")),
            warn: false,
        })
        .collect();
    (!items.is_empty()).then(|| Section {
        title: ui.t("home_samples_to_test"),
        href: "/ui/qc",
        items,
    })
}

/// QA: batches at the site not yet released, those with every result in first.
fn batches_to_review<B: Backend>(state: &AppState<B>, ui: &Ui) -> Option<Section> {
    if !ui.has_any(&[Role::QaReviewer, Role::QaReleaser]) {
        return None;
    }
    let mut open: Vec<(String, usize, usize, bool)> = super::qc::site_batches(state, ui)
        .into_iter()
        .filter(|(_, _, _, released)| !released)
        .collect();
    open.sort_by_key(|(_, missing, _, _)| *missing);
    let items: Vec<Item> = open
        .into_iter()
        .map(|(batch, missing, failed, _)| Item {
            text: if missing == 0 && failed == 0 {
                format!("{batch} · {}", ui.t("home_results_complete"))
            } else {
                format!(
                    "{batch} · {} {} · {} {}",
                    ui.t("home_results_missing"),
                    ui.lang.format_count(missing as u64),
                    ui.t("qc_failed"),
                    ui.lang.format_count(failed as u64)
                )
            },
            href: Some(format!("/ui/release?batch={batch}")),
            warn: failed > 0,
        })
        .collect();
    (!items.is_empty()).then(|| Section {
        title: ui.t("home_batches_to_review"),
        href: "/ui/release",
        items,
    })
}

pub async fn page<B: Backend>(State(state): State<AppState<B>>, ui: Ui) -> Response {
    // The read models the providers look at, up to the ledger (other processes append too).
    if let Err(e) = state.sync().await {
        return ui.error_page(e.status, &super::error_message(ui.lang, &e));
    }
    let mut found: Vec<Section> = providers::<B>()
        .iter()
        .filter_map(|p| p(&state, &ui))
        .collect();
    // Providers that ask an API handler (async).
    if ui.site.is_some()
        && let Some(s) = super::training::home_section(&state, &ui).await
    {
        found.push(s);
    }
    let sections: Vec<Value> = found
        .into_iter()
        .map(|s| {
            let total = s.items.len();
            json!({
                "title": s.title,
                "href": s.href,
                "more": total > SECTION_ITEMS_MAX,
                "items": s.items.into_iter().take(SECTION_ITEMS_MAX).map(|i| json!({
                    "text": i.text, "href": i.href, "warn": i.warn,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut ctx = ui.context("/ui/home", "home_title");
    ctx["sections"] = json!(sections);
    render(StatusCode::OK, "home.html", &ctx)
}

/// Units this user holds at the current site that are still in use (available or in
/// transit), soonest expiry first.
fn units_in_my_custody<B: Backend>(state: &AppState<B>, ui: &Ui) -> Option<Section> {
    let site = ui.site.as_ref()?;
    let now = state.clock.now();
    let custody = state.custody.lock().expect("custody lock");
    let mut units: Vec<_> = custody
        .units()
        .filter(|u| u.site() == site)
        .filter(|u| u.custodian().as_str() == ui.caller.user.id)
        .filter(|u| !u.status().is_final())
        .collect();
    if units.is_empty() {
        return None;
    }
    units.sort_by_key(|u| u.expires_at());
    let items = units
        .iter()
        .map(|u| Item {
            text: format!(
                "{} · {} · {} {}",
                u.code(),
                u.location().as_str(),
                ui.t("expires"),
                ui.format_time(u.expires_at())
            ),
            href: Some(format!("/ui/trace?code={}", u.code())),
            warn: u.expires_at().unix_us() - now.unix_us() < EXPIRY_WARNING_US,
        })
        .collect();
    Some(Section {
        title: ui.t("home_units_in_custody"),
        href: "/ui/trace",
        items,
    })
}

/// Locked accounts at the current site, for its administrators.
fn locked_accounts<B: Backend>(state: &AppState<B>, ui: &Ui) -> Option<Section> {
    if !ui.has_any(&[Role::SiteAdmin]) {
        return None;
    }
    let site = ui.site.as_ref()?;
    let accounts = state.accounts.lock().expect("accounts lock");
    let items: Vec<Item> = accounts
        .users()
        .filter(|u| u.locked && u.has_any_role_at(site))
        .map(|u| Item {
            text: format!("{} ({})", u.full_name, u.id),
            href: Some("/ui/admin/users".to_string()),
            warn: true,
        })
        .collect();
    if items.is_empty() {
        return None;
    }
    Some(Section {
        title: ui.t("home_locked_accounts"),
        href: "/ui/admin/users",
        items,
    })
}
