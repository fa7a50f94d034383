//! Sign-in, sign-out, the first password change, and the language and site switch.

use super::i18n::{LANG_COOKIE, Lang, TZ_COOKIE, Zone};
use super::{SITE_COOKIE, Ui, csrf, csrf_guard, error_message, render};
use crate::json::AppJson;
use crate::routes::auth::{LoginBody, login as api_login, logout as api_logout};
use crate::state::AppState;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cellops_domain::SiteId;
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

/// The context of the signed-out pages (login, password change, errors).
fn signed_out_context(lang: Lang, title_key: &str, csrf_token: &str, back: &str) -> Value {
    json!({
        "t": lang.texts(),
        "lang": lang.code(),
        "title": lang.t(title_key),
        "csrf": csrf_token,
        "back": back,
        "signed_in": false,
    })
}

/// The login form. Sets the pre-sign-in CSRF cookie when the browser has none.
pub async fn page<B: Backend>(State(state): State<AppState<B>>, headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    let (secret, new_cookie) = match csrf::secret(&headers) {
        Some(s) => (s, None),
        None => {
            let s = super::form_key(&state);
            (s.clone(), Some(s))
        }
    };
    let ctx = signed_out_context(lang, "login_title", &csrf::token_for(&secret), "/ui/login");
    login_response(StatusCode::OK, ctx, new_cookie)
}

fn login_response(status: StatusCode, ctx: Value, new_cookie: Option<String>) -> Response {
    let mut response = render(status, "login.html", &ctx);
    if let Some(secret) = new_cookie {
        let cookie = format!(
            "{}={secret}; HttpOnly; SameSite=Strict; Path=/",
            csrf::CSRF_COOKIE
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    pub user_id: String,
    pub password: String,
    #[serde(default)]
    pub csrf: String,
}

/// Signs in through the API's login (same checks, lockout and records), then goes home,
/// or to the password change when the password must be changed first.
pub async fn submit<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if let Some(refused) = csrf_guard(lang, &headers, &form.csrf) {
        return refused;
    }
    let user_id = form.user_id.trim().to_string();
    let result = api_login(
        State(state.clone()),
        AppJson(LoginBody {
            user_id: user_id.clone(),
            password: form.password,
        }),
    )
    .await;
    match result {
        Ok(api_response) => {
            let must_change = state
                .accounts
                .lock()
                .expect("accounts lock")
                .user(&user_id)
                .is_some_and(|u| u.must_change_password);
            let target = if must_change {
                "/ui/password"
            } else {
                "/ui/home"
            };
            let mut response = Redirect::to(target).into_response();
            if let Some(cookie) = api_response.headers().get(header::SET_COOKIE) {
                response
                    .headers_mut()
                    .insert(header::SET_COOKIE, cookie.clone());
            }
            response
        }
        Err(e) => {
            let message = if e.status == StatusCode::UNAUTHORIZED {
                let locked = state
                    .accounts
                    .lock()
                    .expect("accounts lock")
                    .user(&user_id)
                    .is_some_and(|u| u.locked);
                lang.t(if locked {
                    "login_locked"
                } else {
                    "login_failed"
                })
            } else {
                error_message(lang, &e)
            };
            let mut ctx = signed_out_context(lang, "login_title", &form.csrf, "/ui/login");
            ctx["error"] = json!(message);
            ctx["user_id"] = json!(user_id);
            login_response(e.status, ctx, None)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Ends the session through the API's logout and returns to the login page.
pub async fn logout<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    match api_logout(State(state), ui.caller.clone()).await {
        Ok(api_response) => {
            let mut response = Redirect::to("/ui/login").into_response();
            if let Some(cookie) = api_response.headers().get(header::SET_COOKIE) {
                response
                    .headers_mut()
                    .insert(header::SET_COOKIE, cookie.clone());
            }
            response
        }
        Err(e) => ui.error_page(e.status, &error_message(ui.lang, &e)),
    }
}

/// The password change page (the first sign-in of a new account must change the
/// administrator's initial password). The form posts JSON to `/api/auth/password`, the
/// one API a user may call before changing it.
pub async fn password_page(headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    let ctx = signed_out_context(lang, "password_title", "", "/ui/password");
    render(StatusCode::OK, "password.html", &ctx)
}

#[derive(Deserialize)]
pub struct PrefsForm {
    #[serde(default)]
    pub csrf: String,
    pub lang: Option<String>,
    pub site: Option<String>,
    /// `UTC` or `Asia/Tokyo`.
    pub tz: Option<String>,
    #[serde(default)]
    pub back: String,
}

/// Where a switch may return to: a UI path of this server, nothing else (no open redirect).
fn safe_back(back: &str) -> &str {
    let local = back.starts_with("/ui")
        && !back.contains("//")
        && !back.contains('\\')
        && !back.chars().any(|c| c.is_control());
    if local { back } else { "/ui/home" }
}

/// Switches the language, time zone and/or the current site (cookies), then returns to the
/// page.
pub async fn prefs(headers: HeaderMap, Form(form): Form<PrefsForm>) -> Response {
    let lang = Lang::from_headers(&headers);
    if let Some(refused) = csrf_guard(lang, &headers, &form.csrf) {
        return refused;
    }
    let mut response = Redirect::to(safe_back(&form.back)).into_response();
    const YEAR_S: u32 = 365 * 24 * 3600;
    if let Some(l) = form.lang.as_deref().and_then(Lang::parse) {
        let c = format!(
            "{LANG_COOKIE}={}; SameSite=Lax; Path=/; Max-Age={YEAR_S}",
            l.code()
        );
        if let Ok(v) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    // The form submits every switch; only a zone other than the one in effect is a choice
    // (else the zone keeps following the language: Japan time for Japanese).
    if let Some(z) = form
        .tz
        .as_deref()
        .and_then(Zone::parse)
        .filter(|z| *z != Zone::from_headers(&headers, lang))
    {
        // The name holds a slash: percent-encoded in the cookie value.
        let c = format!(
            "{TZ_COOKIE}={}; SameSite=Lax; Path=/; Max-Age={YEAR_S}",
            z.name().replace('/', "%2F")
        );
        if let Ok(v) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    // The site is checked against the user's roles on every page; here only its syntax.
    if let Some(s) = form.site.as_deref().and_then(|s| SiteId::parse(s).ok()) {
        let c = format!("{SITE_COOKIE}={s}; SameSite=Lax; Path=/; Max-Age={YEAR_S}");
        if let Ok(v) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::safe_back;

    #[test]
    fn switches_return_only_to_ui_pages() {
        assert_eq!(safe_back("/ui/scan?x=1"), "/ui/scan?x=1");
        assert_eq!(safe_back("https://evil.example/ui"), "/ui/home");
        assert_eq!(safe_back("//evil.example"), "/ui/home");
        assert_eq!(safe_back("/ui//evil.example"), "/ui/home");
        assert_eq!(safe_back("/api/users"), "/ui/home");
    }
}
