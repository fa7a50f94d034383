//! Shared server state: the ledger, the read models, the clock and the RNG.

use crate::accounts::Accounts;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use cellops_domain::Clock;
use cellops_ledger::{AppendOutcome, AppendRequest, Backend, Ledger, NewRecord};
use rand::rngs::StdRng;
use std::sync::{Arc, Mutex};

fn is_custody_event(event_type: &str) -> bool {
    cellops_custody::CUSTODY_EVENT_TYPES
        .iter()
        .any(|t| t.name == event_type)
}

/// Records read per query when bringing the read models up to date.
const SYNC_PAGE_RECORDS_MAX: usize = 5_000;

#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Mark cookies `Secure` (behind TLS). Off for plain-HTTP loopback development.
    pub secure_cookies: bool,
    /// Each site's ISBT 128 Facility Identification Number (site configuration, not code).
    pub facilities: Vec<(cellops_domain::SiteId, cellops_isbt::Fin)>,
    /// Which qualification each GMP action requires, per site (site configuration; the
    /// default is the shipped demo matrix, `cellops serve --qualification-matrix` replaces it).
    pub qualification_matrix: cellops_training::QualificationMatrix,
}

pub struct Inner<B: Backend> {
    pub ledger: Ledger<B>,
    pub accounts: Mutex<Accounts>,
    /// Chain of identity and custody, rebuilt from the ledger like the accounts.
    pub custody: Mutex<cellops_custody::CustodyState>,
    /// Label print/apply/destroy counts per batch, rebuilt from the ledger.
    pub labels: Mutex<crate::routes::labels::Labels>,
    /// Feature read models (orders, QC, training, …), see [`crate::projection`].
    pub projections: crate::projection::Projections,
    pub clock: Arc<dyn Clock>,
    pub rng: Mutex<StdRng>,
    pub metrics: Metrics,
    /// Held for a whole sync: two syncs at once would read the same starting seq and feed
    /// the same records to the read models twice.
    sync_lock: Mutex<()>,
    /// Password checks that succeeded in the last minutes (see
    /// [`crate::credentials::RecentlyVerified`]).
    pub recently_verified: crate::credentials::RecentlyVerified,
    pub config: ServerConfig,
}

/// Cheap to clone; handlers receive it through axum's `State`.
pub struct AppState<B: Backend> {
    pub inner: Arc<Inner<B>>,
}

impl<B: Backend> Clone for AppState<B> {
    fn clone(&self) -> Self {
        AppState {
            inner: self.inner.clone(),
        }
    }
}

impl<B: Backend> std::ops::Deref for AppState<B> {
    type Target = Inner<B>;
    fn deref(&self) -> &Inner<B> {
        &self.inner
    }
}

impl<B: Backend> AppState<B> {
    pub fn new(
        ledger: Ledger<B>,
        clock: Arc<dyn Clock>,
        rng: StdRng,
        config: ServerConfig,
    ) -> AppState<B> {
        let mut rng = rng;
        let recently_verified = crate::credentials::RecentlyVerified::new(&mut rng);
        AppState {
            inner: Arc::new(Inner {
                ledger,
                accounts: Mutex::new(Accounts::default()),
                labels: Mutex::new(Default::default()),
                projections: crate::routes::projections(&config),
                custody: Mutex::new(cellops_custody::CustodyState::new(
                    config.facilities.iter().cloned(),
                )),
                clock,
                rng: Mutex::new(rng),
                metrics: Metrics::new(),
                sync_lock: Mutex::new(()),
                recently_verified,
                config,
            }),
        }
    }

    /// Runs blocking work (database reads, password hashing) off the async workers.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&AppState<B>) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(ApiError::internal)?
    }

    /// Brings the read models up to the ledger (other processes may have appended).
    pub fn sync_blocking(&self) -> ApiResult<()> {
        let _one_at_a_time = self.sync_lock.lock().expect("sync lock");
        loop {
            let after = self.accounts.lock().expect("accounts lock").last_seq();
            let records = self
                .ledger
                .read(|b| b.records(after + 1, SYNC_PAGE_RECORDS_MAX))?;
            if records.is_empty() {
                return Ok(());
            }
            self.projections.apply_all(&records);
            let mut accounts = self.accounts.lock().expect("accounts lock");
            let mut custody = self.custody.lock().expect("custody lock");
            let mut labels = self.labels.lock().expect("labels lock");
            for r in &records {
                accounts.apply(r);
                if crate::routes::labels::is_label_event(&r.event_type) {
                    labels.apply(r);
                }
                if is_custody_event(&r.event_type) {
                    match cellops_custody::Event::from_json(&r.payload) {
                        Ok(event) => cellops_custody::apply(&mut custody, &event),
                        Err(e) => {
                            tracing::error!(seq = r.seq, error = %e, "unreadable custody record")
                        }
                    }
                }
            }
            self.metrics.ledger_records.set(accounts.last_seq() as i64);
        }
    }

    pub async fn sync(&self) -> ApiResult<()> {
        self.blocking(|s| s.sync_blocking()).await
    }

    /// Appends and then brings the read models up to date, so the caller's next read sees
    /// what it wrote.
    pub async fn append(
        &self,
        records: Vec<NewRecord>,
        idempotency_key: Option<String>,
    ) -> ApiResult<AppendOutcome> {
        let outcome = self
            .ledger
            .append_async(AppendRequest {
                records,
                idempotency_key,
            })
            .await?;
        if !outcome.replayed {
            self.metrics
                .ledger_appends
                .inc_by(outcome.records.len() as u64);
        }
        self.sync().await?;
        Ok(outcome)
    }

    /// Runs `f` on the feature read model `T` (see [`crate::projection`]).
    pub fn read_model<T: crate::projection::Projection, R>(
        &self,
        f: impl FnOnce(&mut T) -> R,
    ) -> R {
        self.projections.with_model(f)
    }

    pub fn with_rng<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        f(&mut self.rng.lock().expect("rng lock"))
    }
}
