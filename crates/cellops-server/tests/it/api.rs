use crate::support::*;
use axum::http::StatusCode;
use cellops_ledger::Backend;
use cellops_server::accounts::{FAILURES_BEFORE_LOCK_MAX, SESSION_IDLE_US_MAX};
use serde_json::json;

fn login_body(user: &str, password: &str) -> serde_json::Value {
    json!({"user_id": user, "password": password})
}

#[tokio::test(flavor = "multi_thread")]
async fn login_is_recorded_and_wrong_passwords_lock_the_account() {
    let app = TestApp::new();
    let cookie = app.login("op").await;
    let me = app.get("/api/auth/me", &cookie).await;
    assert_eq!(me.body["user_id"], "op");
    assert_eq!(app.count("auth.login"), 1);

    for attempt in 1..=FAILURES_BEFORE_LOCK_MAX {
        let r = app
            .call(
                "POST",
                "/api/auth/login",
                Some(login_body("qa", "wrong password!!")),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        if attempt < FAILURES_BEFORE_LOCK_MAX {
            assert_eq!(r.message(), "user id or password is wrong");
        } else {
            assert!(r.message().contains("locked"), "{}", r.message());
        }
    }
    assert_eq!(
        app.count("auth.login_failed"),
        FAILURES_BEFORE_LOCK_MAX as usize
    );
    assert_eq!(app.count("auth.locked"), 1);
    // Even the right password is refused now, and the refusal is recorded.
    let r = app
        .call(
            "POST",
            "/api/auth/login",
            Some(login_body("qa", PASSWORD)),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.message().contains("locked"));
    assert_eq!(app.count("auth.locked"), 1, "locked once, not again");

    let admin = app.login("admin").await;
    let r = app.post("/api/users/qa/unlock", json!({}), &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.login("qa").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_users_fail_like_wrong_passwords() {
    let app = TestApp::new();
    let r = app
        .call(
            "POST",
            "/api/auth/login",
            Some(login_body("nobody", PASSWORD)),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.message(), "user id or password is wrong");
    assert_eq!(app.count("auth.login_failed"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_by_logout_idle_time_and_are_required() {
    let app = TestApp::new();
    let r = app.call("GET", "/api/auth/me", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.message().contains("sign in first"));

    let cookie = app.login("op").await;
    let r = app.post("/api/auth/logout", json!({}), &cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.get("/api/auth/me", &cookie).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.message().contains("ended"));
    assert_eq!(app.count("auth.logout"), 1);

    let cookie = app.login("op").await;
    app.clock.advance_us(SESSION_IDLE_US_MAX as u64 / 2);
    assert_eq!(
        app.get("/api/auth/me", &cookie).await.status,
        StatusCode::OK
    );
    app.clock
        .advance_us(SESSION_IDLE_US_MAX as u64 / 2 + 1_000_000);
    assert_eq!(
        app.get("/api/auth/me", &cookie).await.status,
        StatusCode::OK,
        "activity reset the idle timer"
    );
    app.clock.advance_us(SESSION_IDLE_US_MAX as u64 + 1);
    let r = app.get("/api/auth/me", &cookie).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.message().contains("idle"), "{}", r.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn api_tokens_authenticate_and_are_recorded_by_hash_only() {
    let app = TestApp::new();
    let cookie = app.login("op").await;
    let r = app
        .post(
            "/api/auth/tokens",
            json!({"name": "device-gw-1", "password": PASSWORD}),
            &cookie,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let token = r.body["token"].as_str().unwrap().to_string();
    let me = app.get("/api/auth/me", &token).await;
    assert_eq!(me.body["user_id"], "op");
    let records = app.state.ledger.read(|b| b.records(1, 10_000)).unwrap();
    assert!(
        records.iter().all(|r| !r.payload.contains(&token)),
        "the token itself never reaches the ledger"
    );
    assert_eq!(
        app.get("/api/auth/me", "forged-token").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_are_per_site() {
    let app = TestApp::new();
    let nurse = app.login("nurse").await;
    // A hospital nurse cannot write at the CPC…
    let r = app
        .post(
            "/api/notes",
            json!({"stream": "batch/b-1", "site": "cpc", "text": "x"}),
            &nurse,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.message().contains("at site cpc"), "{}", r.message());
    // …and cannot read the CPC's records.
    let op = app.login("op").await;
    let note = app
        .post(
            "/api/notes",
            json!({"stream": "batch/b-1", "site": "cpc", "text": "seeded 2e6 cells/mL"}),
            &op,
        )
        .await;
    let seq = note.body["record"]["seq"].as_u64().unwrap();
    let r = app.get(&format!("/api/ledger/records/{seq}"), &nurse).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let listed = app
        .get("/api/ledger/records?stream=batch/b-1", &nurse)
        .await;
    assert_eq!(listed.body["records"].as_array().unwrap().len(), 0);
    // The auditor reads everything at the CPC, writes nothing.
    let auditor = app.login("auditor").await;
    assert_eq!(
        app.get(&format!("/api/ledger/records/{seq}"), &auditor)
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .post(
            "/api/notes",
            json!({"stream": "batch/b-1", "site": "cpc", "text": "x"}),
            &auditor,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Only a site administrator grants roles, and only at their sites.
    let r = app
        .post(
            "/api/users/nurse/roles",
            json!({"role": "operator", "site": "cpc"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let admin = app.login("admin").await;
    let r = app
        .post(
            "/api/users/nurse/roles",
            json!({"role": "operator", "site": "cpc"}),
            &admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(app.count("role.granted"), 8 + 1);
    let r = app
        .post(
            "/api/users/nurse/roles",
            json!({"role": "operator", "site": "elsewhere"}),
            &admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn new_users_need_a_fresh_id_and_must_change_the_admin_password() {
    let app = TestApp::new();
    let admin = app.login("admin").await;
    let body = json!({"user_id": "op2", "full_name": "Yumi Suzuki", "password": "initial password 1",
                      "roles": [{"role": "operator", "site": "cpc"}]});
    let r = app.post("/api/users", body.clone(), &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.post("/api/users", body, &admin).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.message().contains("never reused"));
    let r = app
        .post("/api/users", json!({"user_id": "op3", "full_name": "X", "password": "short", "roles": [{"role": "operator", "site": "cpc"}]}), &admin)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "password");

    let r = app
        .call(
            "POST",
            "/api/auth/login",
            Some(login_body("op2", "initial password 1")),
            None,
            &[],
        )
        .await;
    assert_eq!(r.body["must_change_password"], true);
    let cookie = r.set_cookie.unwrap().split(';').next().unwrap().to_string();
    let r = app
        .post(
            "/api/notes",
            json!({"stream": "batch/b-1", "site": "cpc", "text": "x"}),
            &cookie,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.message().contains("change your password"));
    let r = app
        .post(
            "/api/auth/password",
            json!({"current_password": "initial password 1", "new_password": "my own passphrase"}),
            &cookie,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/notes",
            json!({"stream": "batch/b-1", "site": "cpc", "text": "x"}),
            &cookie,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn e_signatures_follow_part_11() {
    let app = TestApp::new();
    let op = app.login("op").await;
    let note = app
        .post(
            "/api/notes",
            json!({"stream": "batch/b-7", "site": "cpc", "text": "harvest 3.1e9 cells"}),
            &op,
        )
        .await;
    let seq = note.body["record"]["seq"].as_u64().unwrap();
    let qa = app.login("qa").await;
    let sign = |meaning: &str, user: Option<&str>, password: &str| {
        let mut b = json!({"seq": seq, "meaning": meaning, "password": password});
        if let Some(u) = user {
            b["user_id"] = json!(u);
        }
        b
    };
    // No signature before the policy is acknowledged (§11.100(c)).
    let r = app
        .post(
            "/api/signatures",
            sign("Reviewed", Some("qa"), PASSWORD),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    // First signing in a session needs the user id too (§11.200(a)(1)).
    let r = app
        .post("/api/signatures", sign("Reviewed", None, PASSWORD), &qa)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "user_id");
    let r = app
        .post(
            "/api/signatures",
            sign("Reviewed", Some("qa"), PASSWORD),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["signature"]["authentication"], "user_id+password");
    assert_eq!(r.body["signature"]["signer_name"], "Mariko Ito");
    // Later signings in the same session need the password only.
    let r = app
        .post("/api/signatures", sign("Released", None, PASSWORD), &qa)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["signature"]["authentication"], "password");
    // A wrong password is refused and counted towards the lockout.
    let r = app
        .post(
            "/api/signatures",
            sign("Approved", None, "not my password"),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("esig.failed"), 1);
    // Meaning needs the authority: an operator cannot release.
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    let r = app
        .post(
            "/api/signatures",
            sign("Released", Some("op"), PASSWORD),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.message().contains("qa_releaser"), "{}", r.message());
    // The record shows every signature with name, time and meaning.
    let shown = app.get(&format!("/api/ledger/records/{seq}"), &qa).await;
    let sigs = shown.body["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2);
    assert_eq!(sigs[1]["signature"]["meaning"], "Released");
    assert!(
        sigs[1]["signature"]["signed_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    // After the session ends, the next signing needs both components again.
    app.clock.advance_us(SESSION_IDLE_US_MAX as u64 + 1);
    let qa = app.login("qa").await;
    let r = app
        .post("/api/signatures", sign("Approved", None, PASSWORD), &qa)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread")]
async fn four_failed_signatures_and_a_failed_login_lock_the_account() {
    let app = TestApp::new();
    let qa = app.login("qa").await;
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    let op = app.login("op").await;
    let note = app
        .post(
            "/api/notes",
            json!({"stream": "batch/b-8", "site": "cpc", "text": "x"}),
            &op,
        )
        .await;
    let seq = note.body["record"]["seq"].as_u64().unwrap();
    for _ in 0..FAILURES_BEFORE_LOCK_MAX - 1 {
        let r = app
            .post("/api/signatures", json!({"seq": seq, "meaning": "Reviewed", "password": "wrong wrong wrong", "user_id": "qa"}), &qa)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app
        .call(
            "POST",
            "/api/auth/login",
            Some(login_body("qa", "wrong wrong wrong")),
            None,
            &[],
        )
        .await;
    assert!(r.message().contains("locked"), "{}", r.message());
    assert_eq!(
        app.get("/api/auth/me", &qa).await.status,
        StatusCode::UNAUTHORIZED,
        "a locked account's sessions stop working"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn corrections_need_a_reason_and_keep_the_original() {
    let app = TestApp::new();
    let op = app.login("op").await;
    let note = app
        .post(
            "/api/notes",
            json!({"stream": "batch/b-2", "site": "cpc", "text": "volume 25 mL"}),
            &op,
        )
        .await;
    let seq = note.body["record"]["seq"].as_u64().unwrap();
    let r = app
        .post(
            "/api/ledger/corrections",
            json!({"corrects": seq, "payload": {"text": "volume 52 mL"}}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "reason");
    let r = app
        .post("/api/ledger/corrections", json!({"corrects": seq, "reason": "digits transposed", "payload": {"text": "volume 52 mL"}}), &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["corrects"], seq);
    let original = app.get(&format!("/api/ledger/records/{seq}"), &op).await;
    assert_eq!(original.body["payload"]["text"], "volume 25 mL");
    let r = app
        .post(
            "/api/ledger/corrections",
            json!({"corrects": 99999, "reason": "x", "payload": {}}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_makes_a_retry_safe() {
    let app = TestApp::new();
    let op = app.login("op").await;
    let body = json!({"stream": "batch/b-3", "site": "cpc", "text": "scan 1"});
    let key = [("idempotency-key", "7c1e-4b2a")];
    let first = app
        .call("POST", "/api/notes", Some(body.clone()), Some(&op), &key)
        .await;
    let retry = app
        .call("POST", "/api/notes", Some(body), Some(&op), &key)
        .await;
    assert_eq!(first.body["record"], retry.body["record"]);
    assert_eq!(retry.body["replayed"], true);
    assert_eq!(app.count("note.recorded"), 1);
    let other = app
        .call(
            "POST",
            "/api/notes",
            Some(json!({"stream": "batch/b-3", "site": "cpc", "text": "scan 2"})),
            Some(&op),
            &key,
        )
        .await;
    assert_eq!(other.status, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_errors_that_name_the_field() {
    let app = TestApp::new();
    let op = app.login("op").await;
    let r = app
        .call(
            "POST",
            "/api/notes",
            Some(json!({"stream": "b"})),
            Some(&op),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.message().contains("missing field `site`"),
        "{}",
        r.message()
    );
    let r = app
        .post(
            "/api/notes",
            json!({"stream": "Batch 1", "site": "cpc", "text": "x"}),
            &op,
        )
        .await;
    assert_eq!(r.body["error"]["field"], "stream");
    let r = app.get("/api/ledger/proofs/inclusion?seq=abc", &op).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.get("/api/ledger/proofs/inclusion?seq=0", &op).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.message().contains("seq 0"), "{}", r.message());
    let r = app
        .get("/api/ledger/proofs/consistency?first=5&second=2", &op)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.get("/api/nothing-here", &op).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["error"]["message"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn proofs_verify_with_only_the_checkpoint_and_public_key() {
    let app = TestApp::new();
    let op = app.login("op").await;
    for i in 0..20 {
        app.post(
            "/api/notes",
            json!({"stream": "batch/b-9", "site": "cpc", "text": format!("n{i}")}),
            &op,
        )
        .await;
    }
    let cp = app.get("/api/ledger/checkpoint", &op).await;
    let note = cp.body["note"].as_str().unwrap().to_string();
    let key =
        cellops_tlog::NoteVerifier::from_vkey(cp.body["public_key"].as_str().unwrap()).unwrap();
    let size = cp.body["size"].as_u64().unwrap();
    let seq = size - 3;
    let proof = app
        .get(
            &format!("/api/ledger/proofs/inclusion?seq={seq}&tree_size={size}"),
            &op,
        )
        .await;
    let path: Vec<[u8; 32]> = proof.body["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| cellops_tlog::hash_from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    let leaf = cellops_tlog::hash_from_hex(proof.body["leaf_hash"].as_str().unwrap()).unwrap();
    cellops_tlog::verify_inclusion_against_checkpoint(&note, &key, seq - 1, &leaf, &path).unwrap();
    let c = app
        .get(
            &format!("/api/ledger/proofs/consistency?first=3&second={size}"),
            &op,
        )
        .await;
    assert_eq!(c.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_lists_every_route_and_metrics_are_prometheus_text() {
    let app = TestApp::new();
    let doc = app.call("GET", "/api/openapi.json", None, None, &[]).await;
    assert_eq!(doc.body["openapi"], "3.1.0");
    for (method, path, _, auth, _) in cellops_server::openapi::all_routes() {
        assert!(
            doc.body["paths"][path][method].is_object(),
            "{method} {path} documented"
        );
        let concrete = concrete_path(path);
        let r = app
            .call(&method.to_uppercase(), &concrete, None, None, &[])
            .await;
        assert_ne!(r.status, StatusCode::NOT_FOUND, "{method} {path} is served");
        assert_ne!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is served"
        );
        if *auth {
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} needs authentication"
            );
        }
    }
    let m = app.call("GET", "/metrics", None, None, &[]).await;
    let text = m.body.as_str().unwrap().to_string();
    assert!(
        text.contains("cellops_http_requests_total{method=\"GET\""),
        "{text}"
    );
    assert!(text.contains("cellops_ledger_records "));
    assert!(text.trim_end().ends_with("# EOF"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_listener_serves_the_api() {
    let app = TestApp::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        tokio::spawn(axum::serve(listener, cellops_server::app(app.state.clone())).into_future());
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"ok\""), "{response}");
    server.abort();
}

/// `path` with each `{parameter}` replaced by a plausible value.
fn concrete_path(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{id}" => "op",
            "{seq}" => "1",
            "{site}" => "cpc",
            "{role}" => "operator",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}
