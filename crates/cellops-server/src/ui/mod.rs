//! The web UI: server-rendered HTML pages for each role, in Japanese and English.
//!
//! Pages are minijinja templates (`templates/`, HTML auto-escaped, undefined names are
//! errors) filled from the same read models and handlers as the JSON API: a form post calls
//! the API handler function itself (`routes::custody::scan`, `routes::users::create_user`,
//! …), so the UI can never decide differently from the API. JavaScript is used only where it
//! helps: moving focus between scanner fields, changing a password through the JSON API
//! (allowed before the first password change) and verifying a ledger record in the browser
//! (`assets/audit.js`).
//!
//! Invariants: every page but login, password and the static assets needs a session (else
//! a redirect to the login page); every POST checks the CSRF token ([`csrf`]); every visible
//! text comes from the translation files ([`i18n`]); responses carry a strict
//! Content-Security-Policy (scripts and styles only from `/ui/assets/`).

mod admin;
mod assets;
mod audit;
mod batch;
mod batch_deviations;
mod batch_open;
mod batch_steps;
pub mod bookings;
mod cold;
pub mod csrf;
mod home;
pub mod i18n;
mod labels;
mod login;
mod order_forms;
mod orders;
mod qc;
mod recall;
mod release;
mod scan;
mod schedule;
mod shipment_forms;
mod storage_forms;
mod trace;
mod training;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cellops_domain::{Role, SiteId};
use cellops_ledger::Backend;
use i18n::{Lang, Zone, cookie};
use minijinja::Environment;
use serde_json::{Value, json};
use std::sync::OnceLock;

/// Cookie holding the site the user works at now (one of the sites where they hold a role).
pub const SITE_COOKIE: &str = "cellops_site";

/// The UI's routes; `app()` merges them.
pub fn router<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/ui", get(root))
        .route("/ui/", get(root))
        .route("/ui/login", get(login::page::<B>).post(login::submit::<B>))
        .route("/ui/logout", post(login::logout::<B>))
        .route("/ui/password", get(login::password_page))
        .route("/ui/prefs", post(login::prefs))
        .route("/ui/home", get(home::page::<B>))
        .route("/ui/scan", get(scan::page::<B>).post(scan::submit::<B>))
        .route("/ui/scan/handoff", post(scan::handoff::<B>))
        .route("/ui/scan/unit", post(scan::new_unit::<B>))
        .route("/ui/scan/derive", post(scan::derive::<B>))
        .route("/ui/trace", get(trace::page::<B>))
        .route("/ui/orders", get(orders::page::<B>))
        .route("/ui/batch", get(batch::page::<B>))
        .route("/ui/storage", get(cold::storage_page::<B>))
        .route(
            "/ui/storage/put-away",
            post(storage_forms::put_away_submit::<B>),
        )
        .route(
            "/ui/storage/retrieve",
            post(storage_forms::retrieve_submit::<B>),
        )
        .route("/ui/schedule", get(schedule::page::<B>))
        .route("/ui/bookings", get(bookings::page::<B>))
        .route("/ui/bookings/book", post(bookings::book::<B>))
        .route("/ui/shipments", get(cold::shipments_page::<B>))
        .route("/ui/shipments/pack", post(shipment_forms::pack_submit::<B>))
        .route(
            "/ui/shipments/charge",
            post(shipment_forms::charge_submit::<B>),
        )
        .route(
            "/ui/shipments/dispatch",
            post(shipment_forms::dispatch_submit::<B>),
        )
        .route(
            "/ui/shipments/receive",
            post(shipment_forms::receive_submit::<B>),
        )
        .route(
            "/ui/shipments/logger",
            post(shipment_forms::logger_submit::<B>),
        )
        .route(
            "/ui/shipments/excursion",
            post(shipment_forms::excursion_submit::<B>),
        )
        .route("/ui/batch/confirm", post(batch::confirm::<B>))
        .route("/ui/batch/start", post(batch_steps::start::<B>))
        .route("/ui/batch/open", post(batch_open::open::<B>))
        .route("/ui/batch/deviation", post(batch_deviations::act::<B>))
        .route("/ui/batch/results", post(batch_steps::results::<B>))
        .route("/ui/batch/decide", post(batch_steps::decide::<B>))
        .route("/ui/orders/thaw", post(orders::thaw::<B>))
        .route("/ui/orders/step", post(orders::step::<B>))
        .route("/ui/orders/bedside", post(orders::bedside::<B>))
        .route("/ui/orders/infusion", post(orders::infusion::<B>))
        .route("/ui/orders/new", post(order_forms::new_order::<B>))
        .route("/ui/orders/sign", post(order_forms::sign::<B>))
        .route("/ui/orders/collection", post(order_forms::collection::<B>))
        .route("/ui/audit", get(audit::page::<B>))
        .route("/ui/labels", get(labels::page::<B>))
        .route("/ui/labels/print", post(labels::print::<B>))
        .route("/ui/labels/count", post(labels::count::<B>))
        .route("/ui/recall", get(recall::page::<B>))
        .route("/ui/qc", get(qc::page::<B>))
        .route("/ui/qc/results", post(qc::enter::<B>))
        .route("/ui/qc/register", post(qc::register_submit::<B>))
        .route("/ui/release", get(release::page::<B>))
        .route("/ui/release/sign", post(release::sign::<B>))
        .route("/ui/training", get(training::page::<B>))
        .route("/ui/admin/users", get(admin::page::<B>))
        .route("/ui/admin/users/create", post(admin::create::<B>))
        .route("/ui/admin/users/action", post(admin::action::<B>))
        .route("/ui/assets/{name}", get(assets::serve))
        .layer(middleware::from_fn(security_headers))
}

async fn root() -> Redirect {
    Redirect::to("/ui/home")
}

/// Headers on every UI response: no inline script or style, no framing, no sniffing, no
/// caching of pages that show patient-related data.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The templates, compiled once.
fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let list: [(&str, &str); 21] = [
            ("base.html", include_str!("templates/base.html")),
            ("login.html", include_str!("templates/login.html")),
            ("password.html", include_str!("templates/password.html")),
            ("error.html", include_str!("templates/error.html")),
            ("home.html", include_str!("templates/home.html")),
            ("scan.html", include_str!("templates/scan.html")),
            ("trace.html", include_str!("templates/trace.html")),
            ("audit.html", include_str!("templates/audit.html")),
            ("labels.html", include_str!("templates/labels.html")),
            ("users.html", include_str!("templates/users.html")),
            ("training.html", include_str!("templates/training.html")),
            ("recall.html", include_str!("templates/recall.html")),
            ("release.html", include_str!("templates/release.html")),
            ("qc.html", include_str!("templates/qc.html")),
            ("orders.html", include_str!("templates/orders.html")),
            ("batch.html", include_str!("templates/batch.html")),
            ("storage.html", include_str!("templates/storage.html")),
            ("shipments.html", include_str!("templates/shipments.html")),
            ("schedule.html", include_str!("templates/schedule.html")),
            ("bookings.html", include_str!("templates/bookings.html")),
            ("macros.html", include_str!("templates/macros.html")),
        ];
        for (name, source) in list {
            // Cannot fail at run time: every template is rendered by the tests.
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name} does not parse: {e:#}"));
        }
        env
    })
}

/// Renders `name` with `ctx` as an HTML response with `status`.
pub(crate) fn render(status: StatusCode, name: &str, ctx: &Value) -> Response {
    let result = templates()
        .get_template(name)
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(ctx))));
    match result {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => ApiError::internal(format!("template {name}: {e:#}")).into_response(),
    }
}

/// A page request by a signed-in user: who, in which language, at which site, and the
/// CSRF token for the page's forms.
pub struct Ui {
    pub caller: Caller,
    pub lang: Lang,
    /// The time zone dates and times are shown in.
    pub zone: Zone,
    /// The site the user works at now, `None` for a user without roles.
    pub site: Option<SiteId>,
    pub csrf: String,
    /// This page's path and query when it was fetched with GET (where the language and
    /// site switches return to).
    pub back: Option<String>,
}

impl<B: Backend> FromRequestParts<AppState<B>> for Ui {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<B>) -> Result<Ui, Response> {
        let lang = Lang::from_headers(&parts.headers);
        let zone = Zone::from_headers(&parts.headers, lang);
        let caller = match Caller::from_request_parts(parts, state).await {
            Ok(c) => c,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                return Err(Redirect::to("/ui/login").into_response());
            }
            // The only refusal of a valid session: the password must be changed first.
            Err(e) if e.status == StatusCode::FORBIDDEN => {
                return Err(Redirect::to("/ui/password").into_response());
            }
            Err(e) => return Err(e.into_response()),
        };
        let sites = caller.user.sites();
        let site = cookie(&parts.headers, SITE_COOKIE)
            .and_then(|s| SiteId::parse(&s).ok())
            .filter(|s| sites.contains(s))
            .or_else(|| sites.iter().next().cloned());
        let csrf = csrf::secret(&parts.headers)
            .map(|s| csrf::token_for(&s))
            .unwrap_or_default();
        // Only a page that was fetched with GET can be returned to; after a form post the
        // page returns to its screen (see `context`).
        let back = if parts.method == axum::http::Method::GET {
            parts.uri.path_and_query().map(|p| p.as_str().to_string())
        } else {
            None
        };
        Ok(Ui {
            caller,
            lang,
            zone,
            site,
            csrf,
            back,
        })
    }
}

/// One entry of the navigation bar.
struct NavItem {
    href: &'static str,
    key: &'static str,
    visible: fn(&Ui) -> bool,
}

/// Who sees the batch view in the navigation (anyone with a role at the batch's site may
/// open it by link, as the batch API allows).
const BATCH_SCREEN_ROLES: [Role; 6] = [
    Role::Operator,
    Role::QcAnalyst,
    Role::QaReviewer,
    Role::QaReleaser,
    Role::Auditor,
    Role::Trainer,
];

/// Who sees the storage map and shipments in the navigation.
const COLD_SCREEN_ROLES: [Role; 6] = [
    Role::Operator,
    Role::Logistics,
    Role::Nurse,
    Role::QaReviewer,
    Role::QaReleaser,
    Role::Auditor,
];

const NAV: &[NavItem] = &[
    NavItem {
        href: "/ui/home",
        key: "nav_home",
        visible: |_| true,
    },
    NavItem {
        href: "/ui/scan",
        key: "nav_scan",
        visible: |ui| ui.has_any(&Role::WRITERS),
    },
    NavItem {
        href: "/ui/orders",
        key: "nav_orders",
        visible: |ui| ui.site.is_some(),
    },
    NavItem {
        href: "/ui/batch",
        key: "nav_batch",
        visible: |ui| ui.has_any(&BATCH_SCREEN_ROLES),
    },
    NavItem {
        href: "/ui/storage",
        key: "nav_storage",
        visible: |ui| ui.has_any(&COLD_SCREEN_ROLES),
    },
    NavItem {
        href: "/ui/shipments",
        key: "nav_shipments",
        visible: |ui| ui.has_any(&COLD_SCREEN_ROLES),
    },
    NavItem {
        href: "/ui/schedule",
        key: "nav_schedule",
        visible: |ui| {
            ui.has_any(&[
                Role::Operator,
                Role::Logistics,
                Role::QaReviewer,
                Role::QaReleaser,
            ])
        },
    },
    NavItem {
        href: "/ui/bookings",
        key: "nav_bookings",
        visible: |ui| ui.has_any(&crate::routes::schedule::BOOKING_ROLES),
    },
    NavItem {
        href: "/ui/trace",
        key: "nav_trace",
        visible: |_| true,
    },
    NavItem {
        href: "/ui/labels",
        key: "nav_labels",
        visible: |ui| ui.has_any(&labels::LABEL_ROLES),
    },
    NavItem {
        href: "/ui/audit",
        key: "nav_audit",
        visible: |_| true,
    },
    NavItem {
        href: "/ui/qc",
        key: "nav_qc",
        visible: |ui| ui.has_any(&qc::QC_SCREEN_ROLES),
    },
    NavItem {
        href: "/ui/release",
        key: "nav_release",
        visible: |ui| {
            ui.has_any(&[
                Role::QaReviewer,
                Role::QaReleaser,
                Role::QcAnalyst,
                Role::Auditor,
            ])
        },
    },
    NavItem {
        href: "/ui/recall",
        key: "nav_recall",
        visible: |ui| ui.has_any(&recall::RECALL_ROLES),
    },
    NavItem {
        href: "/ui/training",
        key: "nav_training",
        visible: |ui| ui.site.is_some(),
    },
    NavItem {
        href: "/ui/admin/users",
        key: "nav_users",
        visible: |ui| ui.has_any(&[Role::SiteAdmin, Role::Auditor]),
    },
];

impl Ui {
    /// Whether the user holds one of `roles` at the current site.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.site
            .as_ref()
            .is_some_and(|s| roles.iter().any(|r| self.caller.user.has_role(*r, s)))
    }

    pub fn t(&self, key: &str) -> String {
        self.lang.t(key)
    }

    /// A date and time in the user's language and time zone.
    pub fn format_time(&self, at: cellops_domain::Timestamp) -> String {
        self.lang.format_time_in(self.zone, at)
    }

    /// A canonical timestamp text in the user's language and time zone; other text as is.
    pub fn format_time_text(&self, text: &str) -> String {
        self.lang.format_time_text_in(self.zone, text)
    }

    /// The site as text for API bodies ("" when the user has no site: the API then names
    /// the problem).
    pub fn site_text(&self) -> String {
        self.site
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default()
    }

    /// The context every page template gets: texts, user, sites, navigation, CSRF token.
    pub fn context(&self, active: &str, title_key: &str) -> Value {
        let nav: Vec<Value> = NAV
            .iter()
            .filter(|n| (n.visible)(self))
            .map(|n| json!({"href": n.href, "label": self.t(n.key), "active": n.href == active}))
            .collect();
        let roles: Vec<Value> = self
            .caller
            .user
            .roles
            .iter()
            .filter(|(_, s)| Some(s) == self.site.as_ref())
            .map(|(r, _)| json!(self.t(&format!("role_{}", r.as_str()))))
            .collect();
        json!({
            "t": self.lang.texts(),
            "lang": self.lang.code(),
            "zone": self.zone.name(),
            "zones": Zone::ALL.iter().map(|z| z.name()).collect::<Vec<_>>(),
            "title": self.t(title_key),
            "user": {"id": self.caller.user.id, "name": self.caller.user.full_name, "roles": roles},
            "sites": self.caller.user.sites().iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "site": self.site_text(),
            "csrf": self.csrf,
            "back": self.back.as_deref().unwrap_or(if active.is_empty() { "/ui/home" } else { active }),
            "nav": nav,
            "signed_in": true,
        })
    }

    /// The refusal (a 403 page) of a form whose CSRF token does not match, if it does not.
    pub fn csrf_refusal(&self, headers: &HeaderMap, submitted: &str) -> Option<Response> {
        csrf_guard(self.lang, headers, submitted)
    }

    /// A page that shows only an error (e.g. no right to see a screen).
    pub fn error_page(&self, status: StatusCode, message: &str) -> Response {
        let mut ctx = self.context("", "error_title");
        ctx["message"] = json!(message);
        render(status, "error.html", &ctx)
    }
}

/// The CSRF check shared by signed-in and signed-out forms.
pub(crate) fn csrf_guard(lang: Lang, headers: &HeaderMap, submitted: &str) -> Option<Response> {
    csrf::check(headers, submitted).err().map(|why| {
        tracing::warn!(?why, "UI form refused: CSRF check failed");
        let token = csrf::secret(headers)
            .map(|s| csrf::token_for(&s))
            .unwrap_or_default();
        let ctx = json!({
            "t": lang.texts(),
            "lang": lang.code(),
            "title": lang.t("error_title"),
            "signed_in": false,
            "csrf": token,
            "back": "/ui/home",
            "message": lang.t("csrf_refused"),
        });
        render(StatusCode::FORBIDDEN, "error.html", &ctx)
    })
}

/// An API error as a message for the page (the API's own text names the field and the fix).
pub(crate) fn error_message(lang: Lang, e: &ApiError) -> String {
    let head = match e.status {
        StatusCode::FORBIDDEN => lang.t("error_forbidden"),
        StatusCode::NOT_FOUND => lang.t("error_not_found"),
        StatusCode::CONFLICT => lang.t("error_conflict"),
        s if s.is_server_error() => lang.t("error_server"),
        _ => lang.t("error_invalid"),
    };
    match &e.field {
        Some(f) => format!("{head} ({f}): {}", e.message),
        None => format!("{head}: {}", e.message),
    }
}

/// A form's refusal in the user's language: the API's sentence in English; in Japanese the
/// translated rule (`form_err_<code>`), else the translated heading of the error.
pub(crate) fn form_error(ui: &Ui, e: &ApiError) -> String {
    match ui.lang {
        Lang::En => error_message(ui.lang, e),
        Lang::Ja => ui
            .lang
            .texts()
            .get(&format!("form_err_{}", e.code))
            .cloned()
            .unwrap_or_else(|| error_message(ui.lang, &ApiError::new(e.status, e.code, ""))),
    }
}

/// The heading of an error in the language, without the API's sentence.
pub(crate) fn error_heading(lang: Lang, e: &ApiError) -> String {
    let text = error_message(lang, &ApiError::new(e.status, e.code, ""));
    text.trim_end_matches(':')
        .trim_end_matches(": ")
        .trim()
        .to_string()
}

/// A refusal shown at a form's `field`: in English the API's sentence (its `field: `
/// prefix left out; the whole message at `general`); in Japanese the translated rule
/// (`form_err_<code>`, unless the code is a generic "invalid"), else the field's hint
/// (`<hint_prefix><field>`), else the error's heading.
pub(crate) fn field_error(lang: Lang, e: &ApiError, field: &str, hint_prefix: &str) -> String {
    match lang {
        Lang::En if field == "general" => error_message(lang, e),
        Lang::En => {
            let prefix = e.field.as_deref().map(|f| format!("{f}: "));
            prefix
                .and_then(|p| e.message.strip_prefix(&p).map(str::to_string))
                .unwrap_or_else(|| e.message.clone())
        }
        Lang::Ja => {
            let texts = lang.texts();
            let by_rule = (!matches!(e.code, "invalid" | "invalid_field"))
                .then(|| texts.get(&format!("form_err_{}", e.code)))
                .flatten();
            by_rule
                .or_else(|| texts.get(&format!("{hint_prefix}{field}")))
                .cloned()
                .unwrap_or_else(|| error_heading(lang, e))
        }
    }
}

/// Headers for calling an API handler from a form: the form's one-time key becomes the
/// `Idempotency-Key`, so a double-submitted form records once.
pub(crate) fn idempotency_headers(key: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    if !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && let Ok(v) = HeaderValue::from_str(&format!("ui-{key}"))
    {
        h.insert("idempotency-key", v);
    }
    h
}

/// A fresh random key for a form (hex).
pub(crate) fn form_key<B: Backend>(state: &AppState<B>) -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    state.with_rng(|r| r.fill_bytes(&mut bytes));
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(lang: Lang) -> Value {
        json!({
            "t": lang.texts(), "lang": lang.code(), "title": "T", "zone": "Asia/Tokyo", "zones": ["Asia/Tokyo", "UTC"],
            "user": {"id": "op", "name": "Op", "roles": ["r"]},
            "sites": ["cpc", "hosp"], "site": "cpc", "csrf": "c", "back": "/ui/home",
            "nav": [{"href": "/ui/home", "label": "H", "active": true}], "signed_in": true,
        })
    }

    fn rendered(name: &str, extra: Value) -> String {
        let mut ctx = base(Lang::Ja);
        for (k, v) in extra.as_object().unwrap() {
            ctx[k] = v.clone();
        }
        templates()
            .get_template(name)
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))))
            .unwrap_or_else(|e| panic!("{name}: {e:#}"))
    }

    #[test]
    fn every_page_template_renders_and_escapes() {
        let html = rendered(
            "scan.html",
            json!({"steps": [{"value": "ship", "label": "S", "selected": true}],
                   "expected_unit": "<b>x</b>", "location": "", "key": "k", "may_scan": true,
                   "handoff": {"values": {"unit": "U", "from": "nurse", "location": "l", "temperature_c": "",
                       "acceptable": "on", "note": ""}, "error": "e"},
                   "new_unit_code": "A-B",
                   "new_unit": {"values": {"product_code": "<b>S</b>", "patient": "", "expires": "",
                       "location": "l"}, "error": "e"},
                   "derive": {"values": {"operation": "aliquot", "parents": "<b>P</b>", "children": "C",
                       "expires": "", "reagent_lots": "", "location": "l"}, "error": "e",
                       "made": ["<i>C</i>"]}}),
        );
        assert!(
            html.contains("&lt;b&gt;x&lt;&#x2f;b&gt;") || html.contains("&lt;b&gt;x&lt;/b&gt;"),
            "{html}"
        );
        rendered(
            "scan.html",
            json!({"steps": [], "expected_unit": "", "location": "", "key": "k", "may_scan": true,
                   "handoff": {"values": {"unit": "", "from": "", "location": "", "temperature_c": "",
                       "acceptable": "", "note": ""}, "error": null},
                   "new_unit_code": null,
                   "new_unit": {"values": {"product_code": "", "patient": "", "expires": "",
                       "location": ""}, "error": null},
                   "derive": {"values": {"operation": "formulate", "parents": "", "children": "",
                       "expires": "", "reagent_lots": "", "location": ""}, "error": null, "made": null},
                   "outcome": {"kind": "pass", "headline": "h", "detail": "d"}, "scanned_last": "s"}),
        );
        rendered("trace.html", json!({"code": ""}));
        rendered(
            "trace.html",
            json!({"code": "c", "trace": {"code": "A-B", "status": "s", "final": false, "site": "cpc",
                   "location": "l", "custodian": "op", "patient": "p", "expires_at": "e",
                   "ancestors": ["a"], "descendants": [], "path": ["l"],
                   "timeline": [{"at": "t", "type": "x", "refusal": true, "by": "op",
                                 "details": [{"name": "n", "value": "v"}]}]}}),
        );
        rendered("home.html", json!({"sections": []}));
        rendered(
            "audit.html",
            json!({"stream": null, "seq": null, "record": null, "records": []}),
        );
        rendered(
            "labels.html",
            json!({"batch": "", "key": "k", "reconciliation": null}),
        );
        rendered(
            "users.html",
            json!({"admin_sites": ["cpc"], "roles": [], "users": []}),
        );
        rendered("error.html", json!({"message": "m"}));
        rendered(
            "qc.html",
            json!({"batch": "", "key": "k", "may_enter": true, "view": null, "register": null,
                   "queue": [{"batch": "b", "product": "p", "done": "1", "total": "2", "failed": 1, "status": "s"}]}),
        );
        rendered(
            "qc.html",
            json!({"batch": "b", "key": "k", "may_enter": true, "view": null, "queue": null,
                   "register": {"site": "cpc", "error": "e", "values": {"batch": "b", "product": "<b>p</b>",
                       "spec_version": "1", "recipe_version": "1.0.0", "units": "U"}}}),
        );
        rendered(
            "qc.html",
            json!({"batch": "b", "key": "k", "may_enter": true, "queue": null, "register": null,
                   "view": {"batch": "b", "product": "p", "spec": "s", "units": [], "status": "s",
                   "tests": [{"id": "v", "name": "n", "method": "m", "method_name": "mn", "criterion": "c",
                              "may_follow": true, "current": {"value": "1 %", "pass": false, "reason": "r",
                              "analyst": "a", "at": "t", "seq": 1}}]}}),
        );
        rendered(
            "release.html",
            json!({"batch": "b", "key": "k", "may_release": true, "esig_acknowledged": false,
                   "readiness": {"releasable": false, "spec": "s", "blocker_count": "1",
                   "status": {"status": "not_released", "text": "t", "permits_use": false},
                   "blockers": [{"kind": "k", "subject": "s", "explanation": null, "at_risk_allowed": true}]}}),
        );
        rendered(
            "recall.html",
            json!({"unit": "", "reagent_lot": "l", "recall": {"units": ["a", "b"], "in_circulation": ["a"],
                   "patients": [], "infusions": [{"at": "t", "patient": "p", "order": "o", "unit": "a"}],
                   "units_count": "2", "in_circulation_count": "1", "patients_count": "0", "alarm": true}}),
        );
        rendered(
            "training.html",
            json!({"matrix": {"qualifications": ["q"], "at": "a", "rows": [{"user": "u", "name": "n",
                   "cells": [{"status": "expiring", "label": "l", "expires": "e"}, {"status": "none", "label": "l", "expires": null}]}]},
                   "expiring": [{"name": "n", "qualification": "q", "expires": "e", "days_left": 3}]}),
        );
        let html = rendered(
            "orders.html",
            json!({"order_id": "", "order": null, "key": "k", "bedside": null, "default_location": "h/ward",
                   "orders_count": "1", "sign": {"errors": {"general": null, "password": null}},
                   "collection": {"values": {}, "errors": {}},
                   "new_order": {"values": {"key": "k", "subject": "<b>S</b>", "product": "prime-car-t",
                       "manufacturer": "cpc", "dose_cells": "5e10", "body_weight_kg": "",
                       "window_earliest": "2025-01-01", "window_latest": "2025-03-01"},
                       "products": [{"id": "prime-car-t", "range": "r", "selected": true, "per_kg": false}],
                       "manufacturers": [{"site": "cpc", "products": "prime-car-t", "selected": true}],
                       "errors": {"subject": null, "product": null, "manufacturer": null,
                           "dose_cells": "out of range", "body_weight_kg": null, "window": "w",
                           "general": "g", "password": null}},
                   "orders": [{"id": "O-1", "subject": "S-1", "product": "p", "site": "h", "stage": "signed",
                               "stage_label": "s", "next": "n", "infusion": null}]}),
        );
        assert!(
            html.contains("&lt;b&gt;S") && html.contains("no-err-dose_cells"),
            "typed values are escaped, errors at their fields: {html}"
        );
        let timeline = json!([{"seq": 3, "at": "t", "what": "w", "code": "released", "by": "qa",
            "manual": false, "refusal": false, "detail": null, "facts": [{"name": "n", "value": "v"}],
            "source": {"module": "release", "label": "l", "event_type": "esig.signed",
                       "site": "cpc", "linked": false}}]);
        let mut order = json!({"id": "O-1", "subject": "S-1", "site": "h", "manufacturer": "cpc",
            "product": "p", "dose": "1 cells", "physician": "dr", "window_earliest": "a",
            "window_latest": "b", "stage": "thawed", "stage_label": "s", "next": "n"});
        for (k, v) in [
            ("batch", json!("b-1")),
            ("batch_linked", json!(true)),
            ("product_unit", json!("U")),
            ("collected_units", json!([])),
            ("released_at_risk", json!(true)),
            ("failed_batches", json!(0)),
            ("infused_at", Value::Null),
            ("may_thaw", json!(true)),
            (
                "flow_step",
                json!({"milestone": "shipped_to_cpc", "site": "h", "title": "<b>t</b>", "explain": "e"}),
            ),
            ("may_verify", json!(true)),
            ("may_infuse", json!(true)),
            ("may_sign", json!(true)),
            ("may_collect", json!(true)),
            ("esig_acknowledged", json!(false)),
            (
                "predicted",
                json!([{"step": "s", "code": "infusion", "at": "t", "basis": "b"}]),
            ),
            ("timeline", timeline),
        ] {
            order[k] = v;
        }
        let html = rendered(
            "orders.html",
            json!({"order_id": "O-1", "orders": null, "key": "k", "default_location": "h/ward",
                   "new_order": null,
                   "sign": {"errors": {"general": null, "password": "wrong"}},
                   "collection": {"values": {"unit": "<i>u</i>", "volume_ml": "x", "nucleated_cells": "",
                       "cd3_cells": "", "collected_at": ""},
                       "errors": {"unit": null, "volume_ml": "v", "nucleated_cells": null, "cd3_cells": null,
                           "collected_at": null, "general": null, "password": null}},
                   "bedside": {"kind": "stop", "headline": "STOP", "reason": "r", "code": "wrong_patient", "detail": "<i>d</i>"},
                   "bedside_form": {"location": "h/ward/1"}, "order": order}),
        );
        assert!(html.contains("&lt;i&gt;d&lt;"), "{html}");
        rendered(
            "batch.html",
            json!({"batch": "", "view": null, "key": "k", "open": null}),
        );
        let open = rendered(
            "batch.html",
            json!({"batch": "", "view": null, "key": "k", "open": {
                "recipes": [{"value": "p/1.0.0", "label": "<b>P", "selected": true}],
                "batch_id": "", "device": "", "starting_unit": "u", "harvest_product_code": "",
                "shelf_life_hours": "", "errors": {"recipe": null, "batch_id": null, "device": null,
                    "starting_unit": "s", "harvest_product_code": null, "shelf_life_hours": null,
                    "general": null}}}),
        );
        assert!(open.contains("&lt;b&gt;P"), "{open}");
        rendered("schedule.html", json!({"gantt": null, "resources": []}));
        rendered(
            "schedule.html",
            json!({"gantt": "<svg></svg>", "resources": [{"resource": "r", "site": "cpc", "kind": "k",
                   "bars": "1", "capacity_max": 1}]}),
        );
        rendered(
            "storage.html",
            json!({"key": "k", "put_away": {"values": {"unit": "<b>u</b>", "position": "d/R1/B1/P1"},
                      "errors": {"unit": "e", "position": "p", "general": "g"}},
                   "retrieve": {"values": {"unit": "u", "position": "d/R1/B1/P1", "purpose": "use", "fefo_override": "<i>r</i>"},
                      "purposes": [{"value": "use", "label": "Use", "selected": true}],
                      "errors": {"unit": "e", "position": "p", "purpose": null, "fefo_override": "f", "general": "g"}},
                   "box_view": {"storage": "d", "rack": 1, "box": 2, "columns": 9, "slots": [
                      {"slot": 1, "unit": "U", "patient": null, "expires": "e", "limit": "l"}, {"slot": 2, "unit": null}]},
                   "storages": [{"storage": "d", "kind": "k", "site": "cpc", "slots_per_box": 81, "occupied": "1",
                      "capacity": "2", "alarm": {"kind": "a", "since": "s"}, "reading": {"temperature": "t", "at": "a"},
                      "racks": [{"rack": 1, "boxes": [{"box": 1, "count": 1, "level": "some"}]}]}]}),
        );
        rendered(
            "shipments.html",
            json!({"shipment_id": "s", "shipments_count": "1", "key": "k", "dispatch": true,
                   "pack": {"site": "cpc", "error": "e", "charge_error": "c", "charge_shipper": "ds-1",
                       "values": {"shipment": "<b>s</b>", "to_site": "h", "units": "U",
                       "shipper": "d", "logger": "l", "transit_hours": "6"}},
                   "receive": {"site": "h", "error": "e", "values": {"units": "U", "temperature_c": "-170",
                       "acceptable": "on", "note": "n", "location": "h/pharmacy"}},
                   "logger_form": {"values": {"format": "generic", "csv": "a,b"}, "error": "e"},
                   "shipments": [{"id": "s", "from": "a", "to": "b", "status": "x", "packed": "p", "units": 1, "excursions": 1}],
                   "shipment": {"id": "s", "from": "a", "to": "b", "status": "x", "units": ["U"], "shipper": "d",
                      "logger": "l", "packed": "p", "dispatched": null, "samples": "3", "plot": "<svg></svg>",
                      "excursions": [{"id": "e", "kind": "k", "start": "s", "end": "e", "max": "m", "reject": false,
                                      "assessment": "a", "signed": false, "qa_step": "assess", "error": "x",
                                      "typed": {"findings": "f", "decision": "accept", "justification": "<b>j</b>"}},
                                     {"id": "e2", "kind": "k", "start": "s", "end": "e", "max": null, "reject": true,
                                      "assessment": "a", "signed": false, "qa_step": "investigate", "error": null, "typed": null},
                                     {"id": "e3", "kind": "k", "start": "s", "end": "e", "max": null, "reject": true,
                                      "assessment": "a", "signed": false, "qa_step": "close", "error": null, "typed": null}]}}),
        );
        let mut view = json!({"batch": "b-1", "product": "p", "recipe_version": "1", "site": "cpc",
            "starting_unit": "U", "status": "Running", "status_label": "s", "started_at": "t",
            "batch_time": "t", "due_step": {"id": "x", "name": "X"}, "in_progress": {"id": "w", "name": "W"},
            "predicted_harvest_at": null, "dose_day": "7.5"});
        for (k, v) in [
            ("p_dose", json!("90 %")),
            ("harvest_decision", json!({"day": "8.0", "label": "l"})),
            ("target", json!({"parameter": "p", "value": "1"})),
            ("progress", json!("1 / 2")),
            ("growth_svg", json!("<svg></svg>")),
            ("metabolites_svg", json!("<svg></svg>")),
            ("alarms", json!([{"code": "c", "label": "l", "at": "t"}])),
            ("harvested_units", json!([])),
            (
                "deviations",
                json!([{"id": "d-1", "state": "Open", "state_label": "o", "source": "s",
                                  "step": null, "hold": true, "blocks_release": true, "opened_at": "t",
                                  "action": "capa", "root_cause": "<i>r", "capa": "", "error": "e"}]),
            ),
            (
                "phases",
                json!([{"id": "p", "name": "<b>P</b>", "steps": [{"id": "s", "name": "n", "state": "done",
                "state_label": "d", "kind": "k", "times": "2", "at": "t", "by": "op"}]}]),
            ),
            (
                "operator_step",
                json!({"id": "s", "name": "n", "instruction": "i", "esignature": "Performed"}),
            ),
            (
                "start_step",
                json!({"id": "s2", "name": "n2", "kind": "k", "error": "e",
                       "lots": [{"id": "m", "name": "<i>M</i>", "value": "L-1", "error": "x"}]}),
            ),
            (
                "decision_step",
                json!({"id": "harvest-decision", "name": "<i>H</i>", "parameter": "p", "value": "1.0 × 10⁸",
                       "target": "3.0 × 10⁸", "dose_day": "8.5", "day": "7.0", "window": "7 – 12",
                       "outcome": "target_not_met", "outcome_label": "o", "needs_value": true,
                       "typed": "", "error": "e"}),
            ),
            (
                "sampling_step",
                json!({"id": "s3", "name": "n3", "instruction": "i", "error": null,
                       "parameters": [{"name": "viability_percent", "label": "v", "range": "≥ 80",
                                       "holds": true, "value": "9", "error": null}]}),
            ),
        ] {
            view[k] = v;
        }
        let html = rendered(
            "batch.html",
            json!({"batch": "b-1", "key": "k", "view": view, "open": null}),
        );
        assert!(
            html.contains("&lt;b&gt;P"),
            "recipe texts are escaped: {html}"
        );
        let refused = csrf_guard(Lang::En, &HeaderMap::new(), "x").unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        rendered("login.html", json!({"signed_in": false}));
        rendered("password.html", json!({"signed_in": false}));
    }
}
