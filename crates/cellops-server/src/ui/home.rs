//! The home page: "what needs me now", as sections that each feature fills for the roles
//! it concerns. A section appears only when its provider has something to say to this
//! user at this site; a feature module adds its provider to [`providers`]' list.

use super::{Ui, render};
use crate::routes::batch::BatchModel;
use crate::routes::storage::ColdModel;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use cellops_domain::{Role, Timestamp};
use cellops_ledger::Backend;
use serde_json::{Value, json};

/// Items shown per section (the full list is on the section's own screen).
const SECTION_ITEMS_MAX: usize = 20;
/// A unit expiring within this time is highlighted.
const EXPIRY_WARNING_US: i64 = 24 * 3600 * 1_000_000;

/// One section of the home page.
pub struct Section {
    /// Element id suffix (`home-<id>`), stable across languages.
    pub id: &'static str,
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
fn providers<B: Backend>() -> [Provider<B>; 7] {
    [
        orders_at_the_bedside::<B>,
        steps_due::<B>,
        shipments_arriving::<B>,
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
        id: "orders-at-bedside",
        title: ui.t("home_orders_at_bedside"),
        href: "/ui/orders",
        items,
    })
}

/// Clinical culturists (operators): the steps of the site's running batches that wait for
/// a person now: a step due to be started, or a person's step in progress (confirmation,
/// sampling results, the harvest decision). A device step in progress runs on its own and
/// a batch on hold waits for QA, so neither is listed.
fn steps_due<B: Backend>(state: &AppState<B>, ui: &Ui) -> Option<Section> {
    use cellops_process::engine::BatchStatus;
    use cellops_process::recipe::model::StepKind;
    if !ui.has_any(&[Role::Operator]) {
        return None;
    }
    let site = ui.site.as_ref()?;
    let mut due: Vec<(i64, Item)> = state.read_model(|m: &mut BatchModel| {
        m.batches()
            .filter(|b| b.opened.site == site.as_str())
            .filter(|b| b.state.status() == BatchStatus::Running)
            .filter(|b| b.state.holding_deviations().is_empty())
            .filter_map(|b| {
                let recipe = &m
                    .recipe(&b.opened.product, &b.opened.recipe_version)?
                    .recipe;
                let (label, step, since, since_label) =
                    match (b.state.active_step(), b.state.due_step()) {
                        (Some(active), _) => {
                            let step = recipe.step_at(active.step.position)?;
                            if matches!(step.kind, StepKind::Device(_)) {
                                return None;
                            }
                            (
                                "home_step_in_progress",
                                step,
                                Some(active.started_at),
                                "home_started",
                            )
                        }
                        (None, Some(next)) => (
                            "home_step_due",
                            recipe.step_at(next.position)?,
                            b.state.last_at(),
                            "home_due_since",
                        ),
                        (None, None) => return None,
                    };
                let since = since.and_then(|t| {
                    Timestamp::from_unix_us((t.unix_timestamp_nanos() / 1_000) as i64).ok()
                });
                let since_text = since
                    .map(|t| format!(" · {}", labelled(ui, since_label, &ui.format_time(t))))
                    .unwrap_or_default();
                Some((
                    since.map_or(i64::MAX, Timestamp::unix_us),
                    Item {
                        text: format!(
                            "{} · {} · {}{since_text}",
                            b.opened.batch,
                            b.opened.product,
                            labelled(ui, label, &step.name)
                        ),
                        href: Some(format!("/ui/batch?batch={}", b.opened.batch)),
                        warn: false,
                    },
                ))
            })
            .collect()
    });
    if due.is_empty() {
        return None;
    }
    // Longest waiting first.
    due.sort_by_key(|(since, _)| *since);
    Some(Section {
        id: "steps-due",
        title: ui.t("home_steps_due"),
        href: "/ui/batch",
        items: due.into_iter().map(|(_, item)| item).collect(),
    })
}

/// `label value`: the translated label (ending in a colon) and the value, with a space
/// after an ASCII colon and none after a full-width one.
fn labelled(ui: &Ui, key: &str, value: &str) -> String {
    let label = ui.t(key);
    if label.ends_with('：') {
        format!("{label}{value}")
    } else {
        format!("{label} {value}")
    }
}

/// Who receives shipments at a site: logistics staff, nurses at a hospital, operators at a
/// CPC.
const RECEIVING_ROLES: [Role; 3] = [Role::Logistics, Role::Nurse, Role::Operator];

/// Shipments dispatched to the user's site and not yet received, expected arrival first;
/// one past its planned transit time is highlighted.
fn shipments_arriving<B: Backend>(state: &AppState<B>, ui: &Ui) -> Option<Section> {
    use cellops_cold::ShipmentStatus;
    if !ui.has_any(&RECEIVING_ROLES) {
        return None;
    }
    let site = ui.site.as_ref()?;
    let now = state.clock.now();
    let mut arriving: Vec<(i64, Item)> = state.read_model(|m: &mut ColdModel| {
        m.state
            .shipments()
            .filter(|s| &s.to_site == site && s.status == ShipmentStatus::Dispatched)
            .map(|s| {
                let expected = s
                    .dispatched_at
                    .map(|at| at.plus_us((s.transit_hours * 3_600_000_000.0).round() as i64));
                let expected_us = expected.map_or(i64::MAX, |t| t.unix_us());
                let expected_text = expected
                    .map(|t| format!(" · {}", labelled(ui, "home_expected", &ui.format_time(t))))
                    .unwrap_or_default();
                (
                    expected_us,
                    Item {
                        text: format!(
                            "{} · {} · {}{expected_text}",
                            s.shipment,
                            labelled(ui, "home_from", s.from_site.as_str()),
                            labelled(
                                ui,
                                "home_units",
                                &ui.lang.format_count(s.units.len() as u64)
                            ),
                        ),
                        href: Some(format!("/ui/shipments?shipment={}", s.shipment)),
                        warn: expected_us < now.unix_us(),
                    },
                )
            })
            .collect()
    });
    if arriving.is_empty() {
        return None;
    }
    arriving.sort_by_key(|(expected, _)| *expected);
    Some(Section {
        id: "shipments-arriving",
        title: ui.t("home_shipments_arriving"),
        href: "/ui/shipments",
        items: arriving.into_iter().map(|(_, item)| item).collect(),
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
        id: "samples-to-test",
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
        id: "batches-to-review",
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
                "id": s.id,
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
        id: "units-in-custody",
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
        id: "locked-accounts",
        title: ui.t("home_locked_accounts"),
        href: "/ui/admin/users",
        items,
    })
}
