//! The screens, driven in headless Chromium.

use crate::browser::{Browser, KEY_ENTER, KEY_TAB};
use crate::support::{PASSWORD, TestApp};
use crate::{Served, serve};
use axum::http::StatusCode;
use rand::SeedableRng;
use serde_json::{Value, json};

/// Allocates `count` DINs at cpc and registers each as a unit held by `op`; returns the
/// unit codes (DIN + product code) and the DINs.
pub(crate) async fn units(app: &TestApp, count: u32) -> Vec<(String, String)> {
    let op = app.login("op").await;
    let r = app
        .post("/api/dins", json!({"site": "cpc", "count": count}), &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut out = Vec::new();
    for (i, din) in r.body["dins"].as_array().unwrap().iter().enumerate() {
        let din = din.as_str().unwrap().to_string();
        let code = format!("{din}-S1234100");
        let r = app
            .post(
                "/api/units",
                json!({"code": code, "patient": format!("subj-000{i}"),
                       "expires_at": "2025-12-31T00:00:00.000000Z",
                       "site": "cpc", "location": "cpc-receiving"}),
                &op,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        out.push((code, din));
    }
    out
}

/// Gives `user` the custody-handling qualification (the basic GMP course): custody scans
/// need it.
pub(crate) fn trained_in_custody(app: &crate::support::TestApp, user: &'static str) {
    tokio::task::block_in_place(|| {
        use cellops_domain::Clock;
        let trainee = cellops_training::demo::DemoTrainee {
            user,
            courses: &["basic-gmp-documentation"],
            failed_media_fill: &[],
            days_ago: 10,
        };
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
        cellops_server::routes::training::seed_training(
            &app.state.ledger,
            &mut rng,
            app.clock.now(),
            &[trainee],
        )
        .unwrap();
        app.state.sync_blocking().unwrap();
    });
}

/// The scanner's text for a unit: DIN data structure and product code data structure.
fn scanner_text(din: &str) -> String {
    format!("={din}00=<S1234100")
}

/// The seq of the first record on a unit's stream (its registration).
async fn unit_record_seq(app: &TestApp, code: &str) -> u64 {
    let stream = format!("unit/{}", code.to_ascii_lowercase());
    let qa = app.login("qa").await;
    let records = app
        .get(&format!("/api/ledger/records?stream={stream}"), &qa)
        .await;
    records.body["records"][0]["seq"].as_u64().unwrap()
}

fn signs_checkpoint(app: &TestApp) {
    tokio::task::block_in_place(|| app.state.ledger.checkpoint_now().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_shows_the_home_page_and_logout_ends_the_session() {
    let Served { app, base } = serve().await;
    let b = Browser::start(&base).await;
    // Signed out, every screen leads to the login page.
    b.goto("/ui/scan").await;
    b.find("#login-form").await;
    assert_eq!(b.path().await, "/ui/login");
    // A wrong password is refused with a message, and recorded.
    b.fill("#user_id", "op").await;
    b.fill("#password", "not the password").await;
    b.click("#login-submit").await;
    assert!(
        b.text("#flash-error").await.contains("wrong"),
        "{}",
        b.text("main").await
    );
    assert_eq!(app.count("auth.login_failed"), 1);
    b.login("op").await;
    assert_eq!(b.path().await, "/ui/home");
    assert!(b.text("#who").await.contains("Hiroshi Tanaka"));
    assert!(b.text("#home-roles").await.contains("Clinical culturist"));
    b.screenshot("home-en").await;
    b.click("#logout").await;
    b.find("#login-form").await;
    assert_eq!(app.count("auth.logout"), 1);
    b.goto("/ui/home").await;
    b.find("#login-form").await;
    assert_eq!(b.path().await, "/ui/login");
}

/// Texts of the English file that must not appear on a Japanese page (English fallback):
/// phrases and capitalised words, leaving out those the same in both languages (the
/// product name, "English") and lower-case single words that also occur in data (stream
/// names such as `unit/…`).
pub(crate) fn english_only_texts() -> Vec<String> {
    let en: std::collections::BTreeMap<String, String> =
        toml::from_str(include_str!("../../src/ui/locales/en.toml")).unwrap();
    let ja: std::collections::BTreeMap<String, String> =
        toml::from_str(include_str!("../../src/ui/locales/ja.toml")).unwrap();
    en.iter()
        .filter(|(k, v)| ja.get(*k) != Some(v))
        .filter(|(_, v)| v.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 4)
        .filter(|(_, v)| v.contains(' ') || v.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|(_, v)| v.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_shows_japanese_with_japanese_dates_and_no_english_fallback() {
    let Served { app, base } = serve().await;
    let made = units(&app, 1).await;
    let b = Browser::start(&base).await;
    b.goto("/ui/login").await;
    assert_eq!(b.text("h1").await, "Sign in");
    // The select submits itself (the button is there for browsers without scripts).
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    assert_eq!(b.text("html[lang='ja'] h1").await, "ログイン");
    let lang = b.js("return document.documentElement.lang;", vec![]).await;
    assert_eq!(lang, json!("ja"));
    b.login("op").await;
    let english = english_only_texts();
    let code = &made[0].0;
    for (path, shot) in [
        ("/ui/home".to_string(), "home-ja"),
        ("/ui/scan".to_string(), "scan-ja"),
        (format!("/ui/trace?code={code}"), "trace-ja"),
        ("/ui/audit".to_string(), "audit-ja"),
        ("/ui/labels".to_string(), "labels-ja"),
        ("/ui/orders".to_string(), "orders-list-ja"),
        ("/ui/batch".to_string(), "batch-empty-ja"),
        ("/ui/storage".to_string(), "storage-empty-ja"),
        ("/ui/shipments".to_string(), "shipments-empty-ja"),
        ("/ui/schedule".to_string(), "schedule-empty-ja"),
    ] {
        b.goto(&path).await;
        let main = b.text("main").await;
        let header = b.text("header").await;
        for text in &english {
            assert!(
                !main.contains(text.as_str()) && !header.contains(text.as_str()),
                "{path} shows the English text {text:?} in the Japanese UI"
            );
        }
        b.screenshot(shot).await;
    }
    // Dates in Japanese form and Japan time on the trace page (expiry 2025-12-31 00:00 UTC).
    b.goto(&format!("/ui/trace?code={code}")).await;
    assert!(
        b.text("#trace-unit")
            .await
            .contains("2025年12月31日 09:00 JST"),
        "{}",
        b.text("#trace-unit").await
    );
    assert!(b.text("#who").await.contains("施設"));
    // The user may choose another zone: UTC, named.
    b.find("#tz-select option[value='UTC']")
        .await
        .click()
        .await
        .unwrap();
    b.find("#tz-select option[value='UTC'][selected]").await;
    let unit = b.text("#trace-unit").await;
    assert!(unit.contains("2025年12月31日 00:00 UTC"), "{unit}");
    // English follows UTC by default; the chosen zone stays when the language changes.
    b.find("#lang-select option[value='en']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='en'] #trace-unit").await;
    assert!(
        b.text("#trace-unit")
            .await
            .contains("31 Dec 2025 00:00 UTC")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_page_passes_the_expected_unit_and_refuses_another_with_a_hard_stop() {
    let Served { app, base } = serve().await;
    trained_in_custody(&app, "op");
    let made = units(&app, 2).await;
    let (ours, our_din) = &made[0];
    let (_, other_din) = &made[1];
    let b = Browser::start(&base).await;
    b.login("op").await;
    b.goto("/ui/scan").await;
    // The cursor starts in the first empty field; a scanner's Enter moves to the next.
    let focused = b.js("return document.activeElement.id;", vec![]).await;
    assert_eq!(focused, json!("location"));
    b.find("#step option[value='process']")
        .await
        .click()
        .await
        .unwrap();
    b.find("#location")
        .await
        .send_keys(&format!("bsc-2{KEY_ENTER}"))
        .await
        .unwrap();
    b.find("#expected_unit")
        .await
        .send_keys(&format!("{ours}{KEY_ENTER}"))
        .await
        .unwrap();
    let focused = b.js("return document.activeElement.id;", vec![]).await;
    assert_eq!(
        focused,
        json!("scanned"),
        "Enter after the expected unit moves on"
    );
    assert_eq!(app.count("scan.accepted") + app.count("scan.refused"), 0);
    // The bag in hand is the expected one: PASS.
    b.find("#scanned")
        .await
        .send_keys(&format!("{}{KEY_ENTER}", scanner_text(our_din)))
        .await
        .unwrap();
    let outcome = b.find("#scan-outcome").await;
    assert_eq!(
        outcome.attr("data-kind").await.unwrap().as_deref(),
        Some("pass")
    );
    assert!(outcome.text().await.unwrap().contains("PASS"));
    assert_eq!(app.count("scan.accepted"), 1);
    b.screenshot("scan-pass").await;
    // The form keeps step, location and expected unit; the cursor waits for the next bag.
    let focused = b.js("return document.activeElement.id;", vec![]).await;
    assert_eq!(focused, json!("scanned"));
    // Another patient's bag: REFUSED, naming both, and the refusal is recorded.
    b.find("#scanned")
        .await
        .send_keys(&format!("{}{KEY_ENTER}", scanner_text(other_din)))
        .await
        .unwrap();
    b.find("#scan-outcome[data-kind='refuse']").await;
    let text = b.text("#scan-outcome").await;
    assert!(text.contains("REFUSED"), "{text}");
    assert!(
        text.contains(&our_din[7..]) && text.contains(&other_din[7..]),
        "{text}"
    );
    assert_eq!(app.count("scan.refused"), 1);
    let colour = b
        .find("#scan-outcome")
        .await
        .css_value("background-color")
        .await
        .unwrap();
    assert!(
        colour.contains("253, 226, 225"),
        "refusal is shown red: {colour}"
    );
    b.screenshot("scan-refused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unit_trace_shows_genealogy_custody_path_and_timeline() {
    let Served { app, base } = serve().await;
    let made = units(&app, 1).await;
    let (parent, din) = &made[0];
    let op = app.login("op").await;
    let children: Vec<String> = ["Aa", "Ab"]
        .iter()
        .map(|d| format!("{din}-S12341{d}"))
        .collect();
    let r = app
        .post(
            "/api/units/derive",
            json!({"operation": "aliquot", "parents": [parent],
                   "children": children.iter().map(|c| json!({"code": c, "expires_at": "2025-12-30T00:00:00.000000Z"})).collect::<Vec<_>>(),
                   "reagent_lots": ["LOT-7"], "site": "cpc", "location": "bsc-2"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let b = Browser::start(&base).await;
    b.login("op").await;
    b.goto("/ui/trace").await;
    b.fill("#code", &children[0]).await;
    b.find("#code").await.send_keys(KEY_ENTER).await.unwrap();
    b.find("#trace-unit").await;
    assert!(b.text("#trace-unit").await.contains(&children[0]));
    assert!(b.text("#trace-ancestors").await.contains(parent.as_str()));
    assert!(b.text("#trace-path").await.contains("bsc-2"));
    // Follow the genealogy to the parent: both children, the path from receiving to the
    // cabinet, and a timeline with the registration and the derivation.
    b.click_nav("#trace-ancestors a").await;
    b.find("#trace-descendants").await;
    let descendants = b.text("#trace-descendants").await;
    assert!(
        children.iter().all(|c| descendants.contains(c.as_str())),
        "{descendants}"
    );
    let path = b.text("#trace-path").await;
    assert!(
        path.contains("cpc-receiving") && path.contains("bsc-2"),
        "{path}"
    );
    let timeline = b.text("#trace-timeline").await;
    assert!(
        timeline.contains("Unit registered") && timeline.contains("Derived"),
        "{timeline}"
    );
    assert!(
        timeline.contains("24 Nov 2025"),
        "dates in English form: {timeline}"
    );
    b.screenshot("trace").await;
    // An unknown unit is a clear not-found, not a crash.
    b.goto("/ui/trace?code=A999025999999-S1234100").await;
    assert!(b.text("#flash-error").await.contains("Not found"));
}

/// Signs record `seq` as qa ("Reviewed") through the API; returns the signature record's seq.
async fn review(app: &TestApp, seq: u64) -> u64 {
    let qa = app.login("qa").await;
    let r = app.post("/api/auth/esig-policy", json!({}), &qa).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/signatures",
            json!({"seq": seq, "meaning": "Reviewed", "password": PASSWORD, "user_id": "qa"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["seq"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_checks_the_record_in_the_browser_and_fails_under_another_key_or_tampering() {
    let Served { app, base } = serve().await;
    let made = units(&app, 1).await;
    let unit_seq = unit_record_seq(&app, &made[0].0).await;
    let signed_seq = review(&app, unit_seq).await;
    let b = Browser::start(&base).await;
    b.login("qa").await;
    // Newer than the latest checkpoint: the page says to wait, it does not claim success.
    b.goto(&format!("/ui/audit?seq={signed_seq}")).await;
    b.click("#verify-button").await;
    b.find("#verify-result[data-state='pending']").await;
    signs_checkpoint(&app);
    // The signature record: its manifest, signer and meaning are shown, and it verifies.
    b.goto(&format!("/ui/audit?seq={signed_seq}")).await;
    let signatures = b.text("#audit-signatures").await;
    assert!(
        signatures.contains("Mariko Ito") && signatures.contains("Reviewed"),
        "{signatures}"
    );
    b.click("#verify-button").await;
    b.find("#verify-result[data-state='ok']").await;
    let steps = b
        .js("return Array.from(document.querySelectorAll('#verify-steps li')).map(l => [l.dataset.step, l.className]);", vec![])
        .await;
    assert_eq!(
        steps,
        json!([
            ["key", "ok"],
            ["note", "ok"],
            ["body", "ok"],
            ["entry", "ok"],
            ["content", "ok"],
            ["inclusion", "ok"]
        ])
    );
    b.screenshot("audit-verified").await;
    // The signed record lists its signature too and verifies.
    b.goto(&format!("/ui/audit?seq={unit_seq}")).await;
    assert!(b.text("#audit-signatures").await.contains("Mariko Ito"));
    b.click("#verify-button").await;
    b.find("#verify-result[data-state='ok']").await;

    // Another key of the same name (what a forger controlling the server would have): the
    // checkpoint's signature is not by it, so verification fails at the note.
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let name = app.state.ledger.verifier().name().to_string();
    let forger = cellops_tlog::NoteSigner::generate(&name, &mut rng).unwrap();
    b.fill("#trusted-key", &forger.verifier().to_vkey()).await;
    b.click("#verify-button").await;
    b.find("#verify-result[data-state='failed']").await;
    let failed = b
        .js(
            "return document.querySelector('#verify-steps li.fail').dataset.step;",
            vec![],
        )
        .await;
    assert_eq!(failed, json!("note"));
    b.screenshot("audit-wrong-key").await;
    // An unreadable key fails at the key.
    b.fill("#trusted-key", "not a key").await;
    b.click("#verify-button").await;
    b.find("#verify-result[data-state='failed'] ").await;
    let failed = b
        .js(
            "return document.querySelector('#verify-steps li.fail').dataset.step;",
            vec![],
        )
        .await;
    assert_eq!(failed, json!("key"));

    // Tampering, checked with the page's verifier and the real key: an edited payload, an
    // edited signature manifest, a proof for another leaf, and a note re-signed by a forger.
    let trusted = app.state.ledger.verifier().to_vkey();
    let forged_note = {
        let cp = app
            .get("/api/ledger/checkpoint", &app.login("qa").await)
            .await;
        let note = cp.body["note"].as_str().unwrap().to_string();
        let body = &note[..note.rfind("\n\n").unwrap() + 1];
        forger.sign(body).unwrap()
    };
    let outcome = |tamper: &'static str| {
        let b = &b;
        let trusted = trusted.clone();
        let forged_note = forged_note.clone();
        async move {
            b.js_async(
                "const [seq, key, tamper, forged, done] = arguments;
                 (async () => {
                   const get = async (u) => (await fetch(u)).json();
                   const cp = await get('/api/ledger/checkpoint');
                   const record = await get('/api/ledger/records/' + seq);
                   const proof = await get('/api/ledger/proofs/inclusion?seq=' + seq + '&tree_size=' + cp.size);
                   let note = cp.note;
                   if (tamper === 'payload') record.payload.patient = 'subj-9999';
                   if (tamper === 'meaning') record.signature.meaning = 'Released';
                   if (tamper === 'proof') proof.path[0] = proof.path[0].replace(/^./, c => c === '0' ? '1' : '0');
                   if (tamper === 'note') note = forged;
                   return window.cellopsAudit.verify(record, proof, note, key);
                 })().then(done, e => done({error: String(e)}));",
                vec![json!(signed_seq), json!(trusted), json!(tamper), json!(forged_note)],
            )
            .await
        }
    };
    let first_failure = |v: &Value| -> Option<String> {
        assert!(v.get("error").is_none(), "{v}");
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["ok"] == json!(false))
            .map(|s| s["id"].as_str().unwrap().to_string())
    };
    assert_eq!(first_failure(&outcome("none").await), None);
    assert_eq!(
        first_failure(&outcome("meaning").await).as_deref(),
        Some("entry")
    );
    assert_eq!(
        first_failure(&outcome("proof").await).as_deref(),
        Some("inclusion")
    );
    assert_eq!(
        first_failure(&outcome("note").await).as_deref(),
        Some("note")
    );
    // The unit record's payload edited (it carries the subject id).
    let edited = b
        .js_async(
            "const [seq, key, done] = arguments;
             (async () => {
               const get = async (u) => (await fetch(u)).json();
               const cp = await get('/api/ledger/checkpoint');
               const record = await get('/api/ledger/records/' + seq);
               const proof = await get('/api/ledger/proofs/inclusion?seq=' + seq + '&tree_size=' + cp.size);
               record.payload.patient = 'subj-9999';
               return window.cellopsAudit.verify(record, proof, cp.note, key);
             })().then(done, e => done({error: String(e)}));",
            vec![json!(unit_seq), json!(trusted)],
        )
        .await;
    assert_eq!(first_failure(&edited).as_deref(), Some("entry"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_screen_fits_1024x768_labels_its_inputs_and_starts_with_a_skip_link() {
    let Served { app, base } = serve().await;
    let made = units(&app, 1).await;
    let code = &made[0].0;
    let seq = unit_record_seq(&app, code).await;
    signs_checkpoint(&app);
    let b = Browser::start(&base).await;
    let size = b
        .js("return [window.innerWidth, window.innerHeight];", vec![])
        .await;
    assert!(size[0].as_i64().unwrap() <= 1024, "window {size}");
    b.goto("/ui/login").await;
    check_page(&b, "login").await;
    for (user, pages) in [
        (
            "op",
            vec![
                ("/ui/home".to_string(), "home"),
                ("/ui/scan".to_string(), "scan"),
                (format!("/ui/trace?code={code}"), "trace"),
                (format!("/ui/audit?seq={seq}"), "audit-record"),
                ("/ui/labels?batch=B-1".to_string(), "labels"),
                ("/ui/orders".to_string(), "orders"),
                ("/ui/batch".to_string(), "batch-empty"),
                ("/ui/storage".to_string(), "storage-empty"),
                ("/ui/shipments".to_string(), "shipments-empty"),
                ("/ui/schedule".to_string(), "schedule-empty"),
            ],
        ),
        (
            "admin",
            vec![
                ("/ui/admin/users".to_string(), "users"),
                ("/ui/audit".to_string(), "audit-list"),
            ],
        ),
    ] {
        b.login(user).await;
        for (path, name) in pages {
            b.goto(&path).await;
            check_page(&b, name).await;
        }
        b.click("#logout").await;
        b.find("#login-form").await;
    }
    // Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    b.login("op").await;
    b.goto("/ui/home").await;
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(KEY_TAB)
        .await
        .unwrap();
    let focused = b
        .js("return document.activeElement.className;", vec![])
        .await;
    assert_eq!(focused, json!("skip"));
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(KEY_ENTER)
        .await
        .unwrap();
    let focused = b.js("return document.activeElement.id;", vec![]).await;
    assert_eq!(focused, json!("main"));
}

/// Posts a urlencoded form through the router with a session cookie (no browser).
async fn form_post(
    app: &TestApp,
    cookie: &str,
    host: &str,
    path: &str,
    body: String,
    origin: Option<String>,
) -> StatusCode {
    use tower::ServiceExt;
    let mut req = axum::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("cookie", cookie)
        .header("host", host)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let req = req.body(axum::body::Body::from(body)).unwrap();
    cellops_server::app(app.state.clone())
        .oneshot(req)
        .await
        .unwrap()
        .status()
}

pub(crate) async fn check_page(b: &Browser, name: &str) {
    b.find("main").await;
    let (overflow, sizes) = b.overflows_horizontally().await;
    assert!(!overflow, "{name} is wider than 1024 px: {sizes}");
    let unlabelled = b.unlabelled_inputs().await;
    assert_eq!(unlabelled, json!([]), "{name} has inputs without a label");
    b.screenshot(name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_with_a_wrong_csrf_token_or_a_foreign_origin_is_refused() {
    let Served { app, base } = serve().await;
    trained_in_custody(&app, "op");
    let made = units(&app, 1).await;
    let b = Browser::start(&base).await;
    b.login("op").await;
    b.goto("/ui/scan").await;
    b.fill("#location", "bsc-2").await;
    b.fill("#expected_unit", &made[0].0).await;
    b.fill("#scanned", &scanner_text(&made[0].1)).await;
    // A page of another origin could not know the token: replace it and submit.
    b.js(
        "document.querySelector('#scan-form input[name=csrf]').value = 'f'.repeat(64);",
        vec![],
    )
    .await;
    b.click("#scan-submit").await;
    b.find("#error-message").await;
    assert!(
        b.text("#error-message")
            .await
            .contains("expired or did not come from this site")
    );
    assert_eq!(app.count("scan.accepted") + app.count("scan.refused"), 0);
    // Over plain HTTP with the session cookie: no token, and a foreign Origin with the
    // right token, are both refused with 403 and record nothing.
    let cookie = app.login("op").await;
    let token = cellops_server::ui::csrf::token_for(cookie.split_once('=').unwrap().1);
    let form = format!(
        "step=process&location=bsc-2&expected_unit={}&scanned={}",
        made[0].0,
        scanner_text(&made[0].1)
            .replace('=', "%3D")
            .replace('<', "%3C")
    );
    let host = base.trim_start_matches("http://").to_string();
    let post = |body: String, origin: Option<String>| {
        form_post(&app, &cookie, &host, "/ui/scan", body, origin)
    };
    assert_eq!(post(form.clone(), None).await, StatusCode::FORBIDDEN);
    assert_eq!(
        post(
            format!("{form}&csrf={token}"),
            Some("https://evil.example".to_string())
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.count("scan.accepted") + app.count("scan.refused"), 0);
    // The same request with the token from this origin is accepted.
    assert_eq!(
        post(format!("{form}&csrf={token}"), Some(base.clone())).await,
        StatusCode::OK
    );
    assert_eq!(app.count("scan.accepted"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_creates_a_user_grants_a_role_and_output_is_escaped() {
    let Served { app, base } = serve().await;
    let b = Browser::start(&base).await;
    b.login("admin").await;
    b.goto("/ui/admin/users").await;
    b.fill("#n-user", "kenji").await;
    // Markup in a name is shown as text, never run.
    b.fill(
        "#n-name",
        "<script>window.pwned=1</script>Kenji <b>Sato</b>",
    )
    .await;
    b.fill("#n-password", "initial passphrase 1").await;
    b.find("#n-role option[value='qc_analyst']")
        .await
        .click()
        .await
        .unwrap();
    b.click("#create-form button[type=submit]").await;
    b.find("#flash-notice").await;
    let row = b.text("#user-kenji").await;
    assert!(
        row.contains("<script>window.pwned=1</script>Kenji <b>Sato</b>"),
        "{row}"
    );
    assert!(row.contains("QC analyst"), "{row}");
    assert_eq!(
        b.js("return window.pwned === undefined;", vec![]).await,
        json!(true)
    );
    b.fill("#g-user", "kenji").await;
    b.find("#g-role option[value='trainer']")
        .await
        .click()
        .await
        .unwrap();
    b.click_nav("#grant-form button[type=submit]").await;
    b.find("#flash-notice").await;
    assert!(b.text("#user-kenji").await.contains("Trainer"));
    assert!(app.count("role.granted") >= 2);
    b.screenshot("users").await;
    // The new user must change the initial password before anything else.
    b.click("#logout").await;
    b.find("#login-form").await;
    b.fill("#user_id", "kenji").await;
    b.fill("#password", "initial passphrase 1").await;
    b.click("#login-submit").await;
    b.find("#password-form").await;
    b.fill("#current_password", "initial passphrase 1").await;
    b.fill("#new_password", "my own passphrase 22").await;
    b.fill("#new_password2", "my own passphrase 22").await;
    b.click("#password-form button[type=submit]").await;
    b.find("#who").await;
    assert_eq!(b.path().await, "/ui/home");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_training_matrix_colours_expiry_and_home_lists_what_expires_at_the_chosen_site() {
    let Served { app, base } = serve().await;
    // The demo's people and training history at cpc-kyoto (dated in the past, so that
    // expiry dates vary: the courier's logistics qualification is about to expire).
    tokio::task::block_in_place(|| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        cellops_server::provision::seed_demo(&app.state.ledger, &mut rng, false).unwrap();
        let now = app.state.clock.now();
        cellops_server::routes::training::seed_demo_training(&app.state.ledger, &mut rng, now)
            .unwrap();
        app.state.sync_blocking().unwrap();
    });
    let b = Browser::start(&base).await;
    let password = cellops_server::provision::demo_password("trainer-ono");
    b.login_with("trainer-ono", &password).await;
    let home = b.text("main").await;
    assert!(
        home.contains("Qualifications expiring") && home.contains("Jun Abe"),
        "{home}"
    );
    b.goto("/ui/training").await;
    b.find("#training-matrix").await;
    let statuses = b
        .js("return Array.from(document.querySelectorAll('#training-matrix td.cell')).map(c => c.dataset.status);", vec![])
        .await;
    let statuses: Vec<&str> = statuses
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"qualified") && statuses.contains(&"expiring"),
        "{statuses:?}"
    );
    let amber = b
        .find("#training-matrix td[data-status='expiring']")
        .await
        .css_value("background-color")
        .await
        .unwrap();
    assert!(
        amber.contains("255, 224, 178"),
        "expiring is amber: {amber}"
    );
    assert!(b.text("#training-expiring").await.contains("Jun Abe"));
    check_page(&b, "training").await;
    b.click("#logout").await;
    b.find("#login-form").await;
    // An administrator of several sites switches to cpc-kyoto in the header.
    b.login_with("admin", &cellops_server::provision::demo_password("admin"))
        .await;
    b.goto("/ui/training").await;
    assert!(!b.text("#training-matrix").await.contains("Yumi Suzuki"));
    b.find("#site-select option[value='cpc-kyoto']")
        .await
        .click()
        .await
        .unwrap();
    b.find("#training-op-suzuki").await;
    assert!(b.text("#who").await.contains("cpc-kyoto"));
    assert_eq!(b.path().await, "/ui/training");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_reconcile_when_every_printed_label_is_applied_or_destroyed() {
    let Served { app, base } = serve().await;
    let made = units(&app, 1).await;
    let code = &made[0].0;
    let b = Browser::start(&base).await;
    b.login("op").await;
    // Printing answers with the PDF (checked here over HTTP; the browser would show it).
    let cookie = app.login("op").await;
    let token = cellops_server::ui::csrf::token_for(cookie.split_once('=').unwrap().1);
    let host = base.trim_start_matches("http://").to_string();
    let print = format!(
        "csrf={token}&key=k1&batch=b-7&unit={code}&copies=3&description=CAR-T%20cells&reason="
    );
    assert_eq!(
        form_post(&app, &cookie, &host, "/ui/labels/print", print, None).await,
        StatusCode::OK
    );
    assert_eq!(app.count("label.printed"), 1);
    b.goto("/ui/labels?batch=b-7").await;
    assert!(b.text("#labels-status").await.contains("NOT RECONCILED"));
    // Two applied, one destroyed without a reason: refused, with the reason: reconciled.
    b.fill("#c-unit", code).await;
    b.fill("#c-count", "2").await;
    b.click("#count-form button[type=submit]").await;
    b.find("#flash-notice").await;
    b.find("#c-action option[value='destroy']")
        .await
        .click()
        .await
        .unwrap();
    b.fill("#c-unit", code).await;
    b.fill("#c-count", "1").await;
    b.click("#count-form button[type=submit]").await;
    assert!(b.text("#flash-error").await.contains("reason"));
    b.find("#c-action option[value='destroy']")
        .await
        .click()
        .await
        .unwrap();
    b.fill("#c-unit", code).await;
    b.fill("#c-count", "1").await;
    b.fill("#c-reason", "smudged").await;
    b.click("#count-form button[type=submit]").await;
    b.find("#flash-notice").await;
    let status = b.text("#labels-status").await;
    assert!(
        status.contains("RECONCILED") && !status.contains("NOT"),
        "{status}"
    );
    let facts = b.text("#labels-reconciliation").await;
    assert!(
        facts.contains("3") && facts.contains("2") && facts.contains("1"),
        "{facts}"
    );
    assert_eq!(app.count("label.applied"), 1);
    assert_eq!(app.count("label.destroyed"), 1);
    b.screenshot("labels-reconciled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recall_by_reagent_lot_lists_every_unit_made_with_it_and_what_is_still_in_use() {
    let Served { app, base } = serve().await;
    let made = units(&app, 2).await;
    let (parent, din) = &made[0];
    let op = app.login("op").await;
    let children: Vec<String> = ["Aa", "Ab"]
        .iter()
        .map(|d| format!("{din}-S12341{d}"))
        .collect();
    let r = app
        .post(
            "/api/units/derive",
            json!({"operation": "aliquot", "parents": [parent],
                   "children": children.iter().map(|c| json!({"code": c, "expires_at": "2025-12-30T00:00:00.000000Z"})).collect::<Vec<_>>(),
                   "reagent_lots": ["LOT-7"], "site": "cpc", "location": "bsc-2"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let b = Browser::start(&base).await;
    // An operator has no recall menu; QA has.
    b.login("op").await;
    assert!(!b.text("nav").await.contains("Recall"));
    b.click("#logout").await;
    b.find("#login-form").await;
    b.login("qa").await;
    b.click("nav a[href='/ui/recall']").await;
    b.fill("#reagent_lot", "LOT-7").await;
    b.click_nav("#recall-lot-form button[type=submit]").await;
    let units = b.text("#recall-units").await;
    assert!(
        children.iter().all(|c| units.contains(c.as_str())),
        "{units}"
    );
    assert!(!units.contains(made[1].0.as_str()), "{units}");
    assert!(
        b.text("#recall-summary")
            .await
            .contains("Still in circulation: 2")
    );
    // From a unit: its aliquots.
    b.fill("#unit", parent).await;
    b.click_nav("#recall-unit-form button[type=submit]").await;
    b.find("#recall-summary").await;
    let units = b.text("#recall-units").await;
    assert!(
        children.iter().all(|c| units.contains(c.as_str())),
        "{units}"
    );
    check_page(&b, "recall").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_page_lists_what_is_missing_and_release_is_refused_until_nothing_is() {
    let Served { app, base } = serve().await;
    qc_batch(&app, "b-001").await;
    let b = Browser::start(&base).await;
    b.login("qa").await;
    let home = b.text("main").await;
    assert!(
        home.contains("Batches to review for release") && home.contains("b-001"),
        "{home}"
    );
    b.click_nav("nav a[href='/ui/release']").await;
    b.fill("#batch", "b-001").await;
    b.click_nav("#release-batch-form button[type=submit]").await;
    let readiness = b.find("#release-readiness").await;
    assert_eq!(
        readiness.attr("data-releasable").await.unwrap().as_deref(),
        Some("false")
    );
    let blockers = b.text("#release-blockers").await;
    assert!(
        blockers.contains("Result missing") && blockers.contains("No batch record"),
        "{blockers}"
    );
    assert!(b.text("#release-status").await.contains("Not released"));
    b.screenshot("release-blocked").await;
    // Signing now is refused by the QC API with its reasons; nothing is released, the
    // e-signature policy accepted on the way is recorded.
    b.fill("#r-password", PASSWORD).await;
    b.find("#r-acknowledge").await.click().await.unwrap();
    b.click_nav("#release-submit").await;
    assert!(
        b.exists_now("#flash-error").await,
        "{}",
        b.text("main").await
    );
    assert_eq!(app.count("qc.release.decided"), 0);
    assert_eq!(app.count("esig.policy_acknowledged"), 1);
    // In Japanese the blockers are named in Japanese, without the API's English sentences.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #release-blockers").await;
    let blockers = b.text("#release-blockers").await;
    assert!(
        blockers.contains("試験結果なし") && blockers.contains("製造記録なし"),
        "{blockers}"
    );
    assert!(!blockers.contains("missing"), "{blockers}");
    check_page(&b, "release-ja").await;
}

/// Adds the QC analyst `ana` at cpc and registers batch `batch` (one product unit) for QC
/// with the shipped PRIME CAR-T specification.
async fn qc_batch(app: &TestApp, batch: &str) {
    tokio::task::block_in_place(|| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let roles = [(
            cellops_domain::Role::QcAnalyst,
            cellops_domain::SiteId::parse("cpc").unwrap(),
        )];
        let user = cellops_server::provision::NewUser {
            user_id: "ana",
            full_name: "Yumi Sato",
            password: PASSWORD,
            roles: &roles,
            must_change_password: false,
        };
        cellops_server::provision::add_user(&app.state.ledger, &mut rng, "test", &user, false)
            .unwrap();
        app.state.sync_blocking().unwrap();
    });
    let made = units(app, 1).await;
    let ana = app.login("ana").await;
    let r = app
        .post(
            &format!("/api/batches/{batch}/qc"),
            json!({"site": "cpc", "product": "prime-car-t", "spec_version": "1",
                   "recipe_version": "1.0.0", "units": [made[0].0]}),
            &ana,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qc_queue_shows_missing_results_and_entry_goes_through_the_qc_api() {
    let Served { app, base } = serve().await;
    qc_batch(&app, "b-009").await;
    let b = Browser::start(&base).await;
    b.login("ana").await;
    // The analyst's home lists the batch waiting for results.
    let home = b.text("main").await;
    assert!(
        home.contains("Batches waiting for QC results") && home.contains("b-009"),
        "{home}"
    );
    b.click_nav("nav a[href='/ui/qc']").await;
    let queue = b.text("#qc-queue").await;
    assert!(queue.contains("b-009") && queue.contains("0 /"), "{queue}");
    b.click_nav("#qc-queue a[href='/ui/qc?batch=b-009']").await;
    let tests = b.text("#qc-tests").await;
    assert!(tests.contains("missing"), "{tests}");
    check_page(&b, "qc-batch").await;
    // The analyst holds no qualification for the method in this site's (empty) training
    // matrix: the QC API refuses, the page says so, and nothing is recorded as a result.
    b.fill("#q-value", "85").await;
    b.fill("#q-unit", "%").await;
    b.fill("#q-instrument", "NC-200 #2").await;
    b.click_nav("#qc-submit").await;
    assert!(
        b.exists_now("#flash-error").await,
        "{}",
        b.text("main").await
    );
    assert_eq!(app.count("qc.result.recorded"), 0);
    assert!(b.text("#qc-tests").await.contains("missing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_gantt_shows_each_booked_stage_on_its_resource_in_both_languages() {
    let Served { app, base } = serve().await;
    let nurse = app.login("nurse").await;
    for (date, order) in [("2025-11-25", "o1"), ("2025-11-27", "o2")] {
        let r = app
            .post(
                "/api/bookings",
                json!({"product": "prime-car-t", "hospital": "hosp", "collection_date": date, "order": order}),
                &nurse,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let gantt = app.get("/api/schedule/gantt", &app.login("op").await).await;
    let booked: usize = gantt.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["bars"].as_array().unwrap().len())
        .sum();
    let b = Browser::start(&base).await;
    b.login("op").await;
    b.click_nav("nav a[href='/ui/schedule']").await;
    b.find("#gantt").await;
    // Every bar of the API's Gantt data is drawn, on its resource, for both orders.
    let drawn = b
        .js(
            "return Array.from(document.querySelectorAll('#gantt g.resource')).map(g =>
               [g.dataset.resource, Array.from(g.querySelectorAll('g.bar')).map(b => b.dataset.order)]);",
            vec![],
        )
        .await;
    let bars: usize = drawn
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_array().unwrap().len())
        .sum();
    assert_eq!(bars, booked, "{drawn}");
    let text = drawn.to_string();
    assert!(text.contains("o1") && text.contains("o2"), "{text}");
    assert!(b.text("#gantt").await.contains("1 Dec"), "weekly dates");
    b.screenshot("schedule").await;
    let (overflow, sizes) = b.overflows_horizontally().await;
    assert!(!overflow, "the schedule is wider than 1024 px: {sizes}");
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #gantt").await;
    assert!(b.text("#gantt").await.contains("12/1"));
    let main = b.text("main").await;
    for text in english_only_texts() {
        assert!(
            !main.contains(text.as_str()),
            "English {text:?} on the Japanese schedule"
        );
    }
    b.screenshot("schedule-ja").await;
    // A hospital nurse is not CPC staff: the Gantt is refused, not shown.
    b.click_nav("#logout").await;
    b.login("nurse").await;
    b.goto("/ui/schedule").await;
    b.find("#flash-error").await;
    assert!(!b.exists_now("#gantt").await);
}
