use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cellops_domain::{Role, SimClock, SiteId, Timestamp};
use cellops_ledger::sqlite::Sqlite;
use cellops_ledger::{Backend, Ledger, LedgerConfig};
use cellops_server::provision::{NewUser, add_user};
use cellops_server::{AppState, ServerConfig, app, event_catalog};
use http_body_util::BodyExt;
use rand::SeedableRng;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

pub const PASSWORD: &str = "long enough passphrase";

pub struct TestApp {
    pub state: AppState<Sqlite>,
    pub clock: Arc<SimClock>,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub set_cookie: Option<String>,
}

impl Reply {
    pub fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

impl TestApp {
    /// A fresh app with users: admin (site_admin at cpc and hosp), qa (reviewer+releaser at
    /// cpc), op (operator at cpc), nurse (nurse at hosp), auditor (auditor at cpc).
    pub fn new() -> TestApp {
        // Setup appends through the blocking ledger API.
        tokio::task::block_in_place(TestApp::new_blocking)
    }

    fn new_blocking() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let clock = Arc::new(SimClock::new(
            Timestamp::from_unix_us(1_764_000_000_000_000).unwrap(),
        ));
        let mut config = LedgerConfig::new(event_catalog());
        config.checkpoint_every_records = 16;
        let ledger = Ledger::<Sqlite>::open(&url, clock.clone(), config).unwrap();
        let state = AppState::new(
            ledger,
            clock.clone(),
            rand::rngs::StdRng::seed_from_u64(7),
            ServerConfig {
                facilities: vec![
                    (
                        SiteId::parse("cpc").unwrap(),
                        cellops_isbt::Fin::parse("A9990").unwrap(),
                    ),
                    (
                        SiteId::parse("hosp").unwrap(),
                        cellops_isbt::Fin::parse("A9991").unwrap(),
                    ),
                ],
                ..ServerConfig::default()
            },
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        type Seed<'a> = (&'a str, &'a str, &'a [(Role, &'a str)]);
        let users: &[Seed] = &[
            (
                "admin",
                "Aiko Admin",
                &[(Role::SiteAdmin, "cpc"), (Role::SiteAdmin, "hosp")],
            ),
            (
                "qa",
                "Mariko Ito",
                &[(Role::QaReviewer, "cpc"), (Role::QaReleaser, "cpc")],
            ),
            ("op", "Hiroshi Tanaka", &[(Role::Operator, "cpc")]),
            ("nurse", "Sachiko Kato", &[(Role::Nurse, "hosp")]),
            ("collector", "Jun Abe", &[(Role::Collector, "hosp")]),
            ("auditor", "Shin Ueda", &[(Role::Auditor, "cpc")]),
        ];
        for (id, name, roles) in users {
            let roles: Vec<(Role, SiteId)> = roles
                .iter()
                .map(|(r, s)| (*r, SiteId::parse(s).unwrap()))
                .collect();
            add_user(
                &state.ledger,
                &mut rng,
                "test",
                &NewUser {
                    user_id: id,
                    full_name: name,
                    password: PASSWORD,
                    roles: &roles,
                    must_change_password: false,
                },
                false,
            )
            .unwrap();
        }
        state.sync_blocking().unwrap();
        TestApp {
            state,
            clock,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        auth: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = auth {
            if token.starts_with("cellops_session=") {
                req = req.header(header::COOKIE, token);
            } else {
                req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let response = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = response.status();
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).to_string()));
        Reply {
            status,
            body,
            set_cookie,
        }
    }

    pub async fn get(&self, path: &str, auth: &str) -> Reply {
        self.call("GET", path, None, Some(auth), &[]).await
    }

    pub async fn post(&self, path: &str, body: Value, auth: &str) -> Reply {
        self.call("POST", path, Some(body), Some(auth), &[]).await
    }

    /// Logs in and returns the cookie header value to send back.
    pub async fn login(&self, user: &str) -> String {
        let r = self
            .call(
                "POST",
                "/api/auth/login",
                Some(serde_json::json!({"user_id": user, "password": PASSWORD})),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let cookie = r.set_cookie.expect("login sets a cookie");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        cookie.split(';').next().unwrap().to_string()
    }

    /// Event types of every record in the ledger, in order.
    pub fn event_types(&self) -> Vec<String> {
        self.state
            .ledger
            .read(|b| b.records(1, 10_000))
            .unwrap()
            .into_iter()
            .map(|r| r.event_type)
            .collect()
    }

    pub fn count(&self, event_type: &str) -> usize {
        self.event_types()
            .iter()
            .filter(|t| *t == event_type)
            .count()
    }
}
