//! Prometheus metrics at `/metrics` (text exposition format).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub ledger_appends: Counter,
    pub ledger_records: Gauge,
    pub auth_failures: Counter,
    pub accounts_locked: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cellops");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let ledger_appends = Counter::default();
        let ledger_records = Gauge::default();
        let auth_failures = Counter::default();
        let accounts_locked = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests by method and status",
            http_requests.clone(),
        );
        registry.register(
            "ledger_appends",
            "Records appended to the ledger by this process",
            ledger_appends.clone(),
        );
        registry.register(
            "ledger_records",
            "Records in the ledger as this process last saw it",
            ledger_records.clone(),
        );
        registry.register(
            "auth_failures",
            "Failed logins and e-signatures",
            auth_failures.clone(),
        );
        registry.register(
            "accounts_locked",
            "Accounts locked after repeated failures (security alerts)",
            accounts_locked.clone(),
        );
        Metrics {
            registry,
            http_requests,
            ledger_appends,
            ledger_records,
            auth_failures,
            accounts_locked,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Cannot fail: writing to a String.
        encode(&mut out, &self.registry).expect("metrics encode to a String");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
