use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cellops_domain::{Clock, Role, SimClock, SiteId, Timestamp};
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

/// An app on a fresh ledger in a simulated clock: SQLite in a temp dir ([`TestApp::new`],
/// [`TestApp::demo`]) or any URL ([`TestApp::demo_on`]).
pub struct TestApp<B: Backend = Sqlite> {
    pub state: AppState<B>,
    pub clock: Arc<SimClock>,
    _dir: Option<tempfile::TempDir>,
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

/// The app on the ledger at `url` in a simulated clock, with these sites and their FINs.
fn open_app<B: Backend>(
    url: &str,
    checkpoint_every_records: u64,
    facilities: &[(&str, &str)],
    rng_seed: u64,
) -> (AppState<B>, Arc<SimClock>) {
    let clock = Arc::new(SimClock::new(
        Timestamp::from_unix_us(1_764_000_000_000_000).unwrap(),
    ));
    let mut config = LedgerConfig::new(event_catalog());
    config.checkpoint_every_records = checkpoint_every_records;
    let ledger = Ledger::<B>::open(url, clock.clone(), config).unwrap();
    let facilities = facilities
        .iter()
        .map(|(s, f)| {
            (
                SiteId::parse(s).unwrap(),
                cellops_isbt::Fin::parse(f).unwrap(),
            )
        })
        .collect();
    let state = AppState::new(
        ledger,
        clock.clone(),
        rand::rngs::StdRng::seed_from_u64(rng_seed),
        ServerConfig {
            facilities,
            ..ServerConfig::default()
        },
    );
    (state, clock)
}

impl TestApp<Sqlite> {
    /// The demo network on a fresh SQLite ledger.
    pub fn demo() -> TestApp<Sqlite> {
        tokio::task::block_in_place(|| {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("t.db").display());
            TestApp::<Sqlite>::demo_on(&url, Some(dir))
        })
    }
}

impl TestApp<Sqlite> {
    /// A fresh app with users: admin (site_admin at cpc and hosp), qa (reviewer+releaser at
    /// cpc), op (operator at cpc), nurse (nurse at hosp), auditor (auditor at cpc).
    pub fn new() -> TestApp {
        // Setup appends through the blocking ledger API.
        tokio::task::block_in_place(TestApp::new_blocking)
    }

    fn new_blocking() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        TestApp::<Sqlite>::on(&url, Some(dir))
    }
}

impl<B: Backend> TestApp<B> {
    /// The demo network (sites cpc-kyoto, hosp-kyoto, qc-kyoto; the demo users with their
    /// passwords and training history) on the ledger at `url`, in a simulated clock.
    pub fn demo_on(url: &str, dir: Option<tempfile::TempDir>) -> TestApp<B> {
        let (state, clock) = open_app::<B>(
            url,
            64,
            &[
                ("cpc-kyoto", "A9990"),
                ("hosp-kyoto", "A9991"),
                ("qc-kyoto", "A9992"),
            ],
            11,
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        cellops_server::provision::seed_demo(&state.ledger, &mut rng, false).unwrap();
        cellops_server::routes::training::seed_demo_training(&state.ledger, &mut rng, clock.now())
            .unwrap();
        state.sync_blocking().unwrap();
        TestApp {
            state,
            clock,
            _dir: dir,
        }
    }

    /// Logs a demo user in (demo password), acknowledges the e-signature policy, and returns
    /// an API token (sessions end after 12 hours; a simulated flow runs for weeks).
    pub async fn demo_login(&self, user: &str) -> String {
        let password = cellops_server::provision::demo_password(user);
        let r = self
            .call(
                "POST",
                "/api/auth/login",
                Some(serde_json::json!({"user_id": user, "password": password})),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{user}: {:?}", r.body);
        let cookie = r.set_cookie.expect("login sets a cookie");
        let cookie = cookie.split(';').next().unwrap().to_string();
        let r = self
            .call("POST", "/api/auth/esig-policy", None, Some(&cookie), &[])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{user}: {:?}", r.body);
        let r = self
            .call(
                "POST",
                "/api/auth/tokens",
                Some(serde_json::json!({"name": "flow", "password": password})),
                Some(&cookie),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{user}: {:?}", r.body);
        r.body["token"].as_str().unwrap().to_string()
    }

    /// Advances the simulated clock.
    pub fn advance_hours(&self, hours: u64) {
        self.clock.advance_us(hours * 3_600_000_000);
    }

    /// Verifies the whole ledger against the site key and returns the record count.
    pub fn verify_ledger(&self) -> u64 {
        let trusted = self.state.ledger.verifier().clone();
        tokio::task::block_in_place(|| {
            self.state.ledger.checkpoint_now().unwrap();
            let report = self
                .state
                .ledger
                .read(|b| cellops_ledger::bundle::verify_store(b, &trusted))
                .unwrap();
            assert!(report.is_ok(), "ledger verifies: {:?}", report.problem);
            report.records_checked
        })
    }

    /// The app on the ledger at `url`, with the test users.
    fn on(url: &str, dir: Option<tempfile::TempDir>) -> TestApp<B> {
        let (state, clock) = open_app::<B>(url, 16, &[("cpc", "A9990"), ("hosp", "A9991")], 7);
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

    /// Registers the shipped recipe `file` (of `product`) at `site` with `operator`'s
    /// credentials and has QA approve it, signing as `qa` with `qa_password` (after
    /// acknowledging the e-signature policy): the site then makes `product`.
    pub async fn approved_recipe(
        &self,
        site: &str,
        file: &str,
        product: &str,
        operator: &str,
        (qa, qa_user, qa_password): (&str, &str, &str),
    ) {
        let r = self
            .post(
                "/api/recipes",
                serde_json::json!({"site": site, "shipped": file}),
                operator,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        self.post("/api/auth/esig-policy", serde_json::json!({}), qa)
            .await;
        let r = self
            .post(
                &format!("/api/recipes/{product}/1.0.0/approve"),
                serde_json::json!({"password": qa_password, "user_id": qa_user}),
                qa,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
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
        tokio::task::block_in_place(|| self.state.ledger.read(|b| b.records(1, 10_000)))
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
