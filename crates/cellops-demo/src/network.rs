//! The demo network: its sites, people (with their training history), approved recipes,
//! cold-chain assets, and the logged-in staff the flows act as.

use crate::client::Client;
use anyhow::Context;
use cellops_domain::{Clock, PacedClock, SimClock, SiteId, Timestamp};
use cellops_ledger::{Backend, Ledger, LedgerConfig};
use cellops_server::provision::{DEMO_FACILITIES, demo_password, seed_demo};
use cellops_server::{AppState, ServerConfig, event_catalog};
use rand::SeedableRng;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const CPC: &str = "cpc-kyoto";
pub const QC_LAB: &str = "qc-kyoto";
/// The two hospitals, each with its physician and two nurses (the bedside check needs two).
pub const HOSPITALS: [Hospital; 2] = [
    Hospital {
        site: "hosp-kyoto",
        physician: "dr-yamada",
        nurses: ["ns-kato", "ns-mori"],
    },
    Hospital {
        site: "hosp-osaka",
        physician: "dr-nakamura",
        nurses: ["ns-ikeda", "ns-hayashi"],
    },
];
/// The CPC's qualified operator, and the one whose aseptic media fill failed.
pub const OPERATOR: &str = "op-tanaka";
pub const UNQUALIFIED_OPERATOR: &str = "op-suzuki";
pub const QC_ANALYST: &str = "qc-sato";
pub const QA: &str = "qa-ito";
pub const COURIER: &str = "courier-abe";
pub const ADMIN: &str = "admin";
/// The dry shipper and logger the CPC ships with, and the dewar it stores in.
pub const SHIPPER: &str = "ds-01";
pub const LOGGER: &str = "LG-0001";
pub const DEWAR: &str = "dewar-01";
/// ISBT 128 product codes of the demo configuration: starting material, final product.
pub const COLLECTED_CODE: &str = "S1000100";
pub const PRODUCT_CODE: &str = "S2000100";
/// ISBT 128 product code of a culture in process (seeded from the starting material).
pub const IN_PROCESS_CODE: &str = "S1500100";
/// Hours on the road between a hospital and the CPC.
pub const TRANSIT_HOURS: u64 = 6;

pub const HOUR_US: u64 = 3_600_000_000;
pub const DAY_US: u64 = 24 * HOUR_US;

#[derive(Debug, Clone, Copy)]
pub struct Hospital {
    pub site: &'static str,
    pub physician: &'static str,
    pub nurses: [&'static str; 2],
}

/// How the demo network's time passes.
#[derive(Clone)]
pub enum Pace {
    /// The clock jumps to each step's due time at once (tests, benchmarks, `cellops demo`).
    Simulated(Arc<SimClock>),
    /// The clock runs at its speed (`cellops serve --demo`, e.g. one culture day per 10 s)
    /// and is held at each step's due time until the step is done; cultures advance in
    /// slices so their telemetry grows while someone watches.
    Live(Arc<PacedClock>),
}

/// Wall time a live culture slice should take: the telemetry plot moves about once a second.
const LIVE_SLICE_WALL_S: f64 = 1.0;

/// A running demo network: the app on its ledger in a simulated clock, and API tokens of
/// the people who act in it.
pub struct Network<B: Backend> {
    pub client: Client<B>,
    pub pace: Pace,
    tokens: BTreeMap<String, String>,
    /// Per-run counters that name batches and shipments.
    next_id: u32,
}

/// Loads the demo people and their training history at `now` unless the database already
/// has users. Blocking.
pub fn seed_people<B: Backend>(
    state: &AppState<B>,
    seed: u64,
    now: Timestamp,
) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    state
        .sync_blocking()
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let any_user = state
        .accounts
        .lock()
        .expect("accounts lock")
        .users()
        .next()
        .is_some();
    seed_demo(&state.ledger, &mut rng, any_user)?;
    cellops_server::routes::training::seed_demo_training(&state.ledger, &mut rng, now)?;
    state
        .sync_blocking()
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok(())
}

/// When the demo's simulated clock starts.
pub fn demo_epoch() -> Timestamp {
    Timestamp::from_unix_us(1_764_000_000_000_000).expect("a valid instant")
}

impl<B: Backend> Network<B> {
    /// Opens the ledger at `url` in a simulated clock starting at `start`, loads the demo
    /// people and their training (unless the database already has users), and sets up the
    /// recipes and cold-chain assets. Blocking setup runs on the caller's thread.
    pub async fn open(url: &str, start: Timestamp, seed: u64) -> anyhow::Result<Network<B>> {
        let clock = Arc::new(SimClock::new(start));
        // The PostgreSQL client blocks: open it off the async runtime.
        let ledger = {
            let (url, clock) = (url.to_string(), clock.clone());
            tokio::task::spawn_blocking(move || {
                Ledger::<B>::open(&url, clock, LedgerConfig::new(event_catalog()))
                    .with_context(|| format!("opening the ledger at {url}"))
            })
            .await??
        };
        let facilities = DEMO_FACILITIES
            .iter()
            .map(|(s, f)| {
                Ok((
                    SiteId::parse(s).map_err(|e| anyhow::anyhow!("{e}"))?,
                    cellops_isbt::Fin::parse(f).map_err(|e| anyhow::anyhow!("{e}"))?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let state = AppState::new(
            ledger,
            clock.clone(),
            rand::rngs::StdRng::seed_from_u64(seed),
            ServerConfig {
                facilities,
                ..ServerConfig::default()
            },
        );
        let blocking = state.clone();
        let now = clock.now();
        tokio::task::spawn_blocking(move || seed_people(&blocking, seed, now)).await??;
        Network::attach(state, Pace::Simulated(clock)).await
    }

    /// The network on a running server's state whose clock `pace` drives (the people already
    /// loaded, see [`seed_people`]): sets up the recipes and cold-chain assets if missing.
    pub async fn attach(state: AppState<B>, pace: Pace) -> anyhow::Result<Network<B>> {
        // A live clock runs only while the driver waits for a step's time: held from here.
        if let Pace::Live(clock) = &pace {
            clock.hold_at(clock.now());
        }
        let mut network = Network {
            client: Client::new(state),
            pace,
            tokens: BTreeMap::new(),
            next_id: 0,
        };
        network.set_up().await?;
        Ok(network)
    }

    pub fn state(&self) -> &AppState<B> {
        self.client.state()
    }

    pub fn now(&self) -> Timestamp {
        match &self.pace {
            Pace::Simulated(clock) => clock.now(),
            Pace::Live(clock) => clock.now(),
        }
    }

    /// An instant `hours` from now, as the API writes it.
    pub fn in_hours(&self, hours: i64) -> String {
        self.now().plus_us(hours * HOUR_US as i64).to_string()
    }

    pub async fn advance_hours(&self, hours: f64) {
        self.advance_to(self.now().plus_us((hours * HOUR_US as f64) as i64))
            .await;
    }

    /// Moves the clock forward to `at` (never back): at once in simulated time; live, waits
    /// until the running clock gets there and holds it there.
    pub async fn advance_to(&self, at: Timestamp) {
        match &self.pace {
            Pace::Simulated(clock) => {
                let now = clock.now().unix_us();
                if at.unix_us() > now {
                    clock.advance_us((at.unix_us() - now) as u64);
                }
            }
            Pace::Live(clock) => {
                clock.hold_at(at);
                loop {
                    let us = clock.base_us_until(at);
                    if us == 0 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_micros(us.min(250_000))).await;
                }
            }
        }
    }

    /// Hours of culture one demo step advances: to completion in simulated time (`None`);
    /// live, about a second of wall time's worth (at least an hour, at most a day).
    pub fn culture_slice_hours(&self) -> Option<f64> {
        match &self.pace {
            Pace::Simulated(_) => None,
            Pace::Live(clock) => {
                Some((clock.speed() * LIVE_SLICE_WALL_S / 3600.0).clamp(1.0, 24.0))
            }
        }
    }

    /// A fresh id with `prefix` (batches, shipments, lots).
    pub fn next_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:04}", self.next_id)
    }

    /// The API token of a demo user: logs in with the demo password and acknowledges the
    /// e-signature policy the first time (a simulated flow runs for weeks, longer than a
    /// session).
    pub async fn token(&mut self, user: &str) -> anyhow::Result<String> {
        if let Some(t) = self.tokens.get(user) {
            return Ok(t.clone());
        }
        let password = demo_password(user);
        let r = self
            .client
            .call(
                "POST",
                "/api/auth/login",
                Some(&json!({"user_id": user, "password": password})),
                None,
            )
            .await?;
        let cookie = r.body["_cookie"]
            .as_str()
            .with_context(|| format!("login of {user}: {}", r.body))?
            .to_string();
        self.client
            .post_ok(
                "e-signature policy",
                "/api/auth/esig-policy",
                json!({}),
                &cookie,
            )
            .await?;
        let body = self
            .client
            .post_ok(
                "API token",
                "/api/auth/tokens",
                json!({"name": "demo", "password": password}),
                &cookie,
            )
            .await?;
        let token = body["token"]
            .as_str()
            .context("the token reply has a token")?
            .to_string();
        self.tokens.insert(user.to_string(), token.clone());
        Ok(token)
    }

    /// POST as `user`, requiring 200.
    pub async fn post(
        &mut self,
        step: &str,
        user: &str,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let token = self.token(user).await?;
        self.client.post_ok(step, path, body, &token).await
    }

    /// POST as `user`, any status.
    pub async fn try_post(
        &mut self,
        user: &str,
        path: &str,
        body: Value,
    ) -> anyhow::Result<crate::client::Reply> {
        let token = self.token(user).await?;
        self.client
            .call("POST", path, Some(&body), Some(&token))
            .await
    }

    pub async fn get(&mut self, step: &str, user: &str, path: &str) -> anyhow::Result<Value> {
        let token = self.token(user).await?;
        self.client.get_ok(step, path, &token).await
    }

    /// Signs a checkpoint now and verifies the whole ledger against the site key; returns the
    /// records checked, or the first problem.
    pub async fn verify_ledger(&self) -> anyhow::Result<u64> {
        let state = self.state().clone();
        tokio::task::spawn_blocking(move || {
            let trusted = state.ledger.verifier().clone();
            state.ledger.checkpoint_now()?;
            let report = state
                .ledger
                .read(|b| cellops_ledger::bundle::verify_store(b, &trusted))?;
            match report.problem {
                None => Ok(report.records_checked),
                Some(p) => anyhow::bail!("the ledger does not verify: {p:?}"),
            }
        })
        .await?
    }

    /// The e-signature fields of `user`.
    pub fn signature(user: &str) -> Value {
        json!({"password": demo_password(user), "user_id": user})
    }

    /// Recipes registered and QA-approved; the dewar, dry shipper and logger qualified.
    async fn set_up(&mut self) -> anyhow::Result<()> {
        let recipes = self.get("recipes", OPERATOR, "/api/recipes").await?;
        let known = recipes.to_string();
        for (file, product) in [
            ("prime-car-t.toml", "prime-car-t"),
            ("bm-msc.toml", "bm-msc"),
            ("allo-car-t-lot.toml", "allo-car-t-lot"),
        ] {
            if known.contains(&format!("\"{product}\"")) {
                continue;
            }
            self.post(
                "register the recipe",
                OPERATOR,
                "/api/recipes",
                json!({"site": CPC, "shipped": file}),
            )
            .await?;
            self.post(
                "QA approves the recipe",
                QA,
                &format!("/api/recipes/{product}/1.0.0/approve"),
                Self::signature(QA),
            )
            .await?;
        }
        let storage = self.get("storage", ADMIN, "/api/storage").await?;
        if !storage.to_string().contains(DEWAR) {
            self.post(
                "configure the dewar",
                ADMIN,
                "/api/storage",
                json!({"site": CPC, "storage": DEWAR, "kind": "ln2_vapour", "racks": 4,
                       "boxes_per_rack": 4, "slots_per_box": 25, "alarm_above_c": -150.0,
                       "delay_minutes": 10, "reading_gap_minutes_max": 30,
                       "stored_days_max": 3650}),
            )
            .await?;
            self.post(
                "qualify the dry shipper",
                ADMIN,
                "/api/shippers",
                json!({"site": CPC, "shipper": SHIPPER, "model": "CX100",
                       "qualification_report": "QR-2026-07",
                       "qualification_expires_at": self.in_hours(24 * 720),
                       "validated_hold_hours": 240.0}),
            )
            .await?;
            self.post(
                "register the logger",
                ADMIN,
                "/api/loggers",
                json!({"site": CPC, "logger": LOGGER, "calibration_certificate": "CAL-77",
                       "calibration_due": self.in_hours(24 * 720), "interval_seconds": 300}),
            )
            .await?;
        }
        Ok(())
    }
}
