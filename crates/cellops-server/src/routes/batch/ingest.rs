//! Device telemetry from an MQTT broker into the durable telemetry store
//! (`cellops serve --mqtt HOST:PORT`).
//!
//! [`cellops_controller::mqtt::Ingest`] subscribes to `cellops/<site>/devices/+/telemetry`
//! with a persistent session and acknowledges a message only after its sink stored it.
//! [`LedgerSink`] is that sink here: the samples go into the ledger database's
//! `telemetry_chunks` (the store simulated devices use, `store_samples`), attributed to the
//! batch running on the device at that site (none: stored unattributed, never dropped).
//! Storing is idempotent by the device's `seq`, so a redelivery stores nothing twice.

use cellops_controller::mqtt::{Ingest, IngestOptions};
use cellops_controller::telemetry::check_rising;
use cellops_controller::{SinkError, TelemetrySink};
use cellops_device::Sample;
use cellops_domain::SiteId;
use cellops_ledger::telemetry::with_store;
use cellops_ledger::{Backend, LedgerError};
use cellops_process::engine::BatchStatus;

use super::{BatchModel, store_samples};
use crate::state::AppState;

/// Keep-alive of the broker connection.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(30);

/// Telemetry of one site's devices into the server's telemetry store.
pub struct LedgerSink<B: Backend> {
    state: AppState<B>,
    site: SiteId,
}

impl<B: Backend> LedgerSink<B> {
    /// A sink for the devices of `site`.
    pub fn new(state: AppState<B>, site: SiteId) -> Self {
        LedgerSink { state, site }
    }

    /// The batch running on `device` at this sink's site (the latest started when several
    /// claim it), or "" when none runs.
    fn batch_on(&self, device: &str) -> String {
        if let Err(e) = self.state.sync_blocking() {
            tracing::warn!(error = ?e.message, "telemetry ingest: read models not synced");
        }
        self.state.read_model(|m: &mut BatchModel| {
            m.batches()
                .filter(|b| {
                    b.opened.device == device
                        && b.opened.site == self.site.as_str()
                        && b.state.status() == BatchStatus::Running
                })
                .max_by_key(|b| b.state.started_at())
                .map(|b| b.opened.batch.clone())
                .unwrap_or_default()
        })
    }
}

fn sink_error(device: &str, e: LedgerError) -> SinkError {
    match e {
        LedgerError::InvalidRecord { field, rule } => SinkError::Invalid {
            device: device.to_string(),
            reason: format!("{field}: {rule}"),
        },
        other => SinkError::Unavailable(other.to_string()),
    }
}

impl<B: Backend> TelemetrySink for LedgerSink<B> {
    fn last_seq(&mut self, device: &str) -> Result<u64, SinkError> {
        self.state
            .ledger
            .read(|b| with_store(b, |store| store.last_seq(device)))
            .map_err(|e| sink_error(device, e))
    }

    fn store(&mut self, device: &str, samples: &[Sample]) -> Result<usize, SinkError> {
        check_rising(device, samples)?;
        if samples.is_empty() {
            return Ok(0);
        }
        let batch = self.batch_on(device);
        let mut stored = 0;
        // The encoding covers consecutive sample numbers: a message with a gap is stored as
        // one run per consecutive stretch.
        for run in samples.chunk_by(|a, b| b.seq == a.seq + 1) {
            stored += store_samples(&self.state.ledger, device, &batch, run)
                .map_err(|e| sink_error(device, e))?;
        }
        Ok(usize::try_from(stored).unwrap_or(usize::MAX))
    }
}

/// Parses `HOST:PORT` of `--mqtt`.
pub fn parse_broker(text: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("--mqtt {text:?}: write HOST:PORT, e.g. 127.0.0.1:1883"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow::anyhow!("--mqtt {text:?}: the port must be a number 1-65535"))?;
    if host.is_empty() || port == 0 {
        anyhow::bail!("--mqtt {text:?}: write HOST:PORT, e.g. 127.0.0.1:1883");
    }
    Ok((host.to_string(), port))
}

/// Starts one MQTT ingest per `site` from `broker` (`HOST:PORT`) into the telemetry store,
/// as client `<client_prefix>-<site>`. The id is fixed per site, so the broker keeps each
/// site's session (and the messages queued while the server was away) across restarts.
/// Dropping the ingests stops them.
pub fn start_mqtt_ingest<B: Backend>(
    state: &AppState<B>,
    broker: &str,
    sites: &[SiteId],
    client_prefix: &str,
) -> anyhow::Result<Vec<Ingest>> {
    let (host, port) = parse_broker(broker)?;
    if sites.is_empty() {
        anyhow::bail!(
            "--mqtt: no site to ingest for: configure the sites with --facility SITE=FIN"
        );
    }
    Ok(sites
        .iter()
        .map(|site| {
            let options = IngestOptions {
                host: host.clone(),
                port,
                client_id: format!("{client_prefix}-{site}"),
                site: site.to_string(),
                keep_alive: KEEP_ALIVE,
            };
            Ingest::start(options, LedgerSink::new(state.clone(), site.clone()))
        })
        .collect())
}

/// `cellops serve --mqtt`: with a broker, the ingests for every configured site (those with
/// a facility number); without, none. Keep the result alive while serving.
pub fn serve_mqtt<B: Backend>(
    state: &AppState<B>,
    broker: Option<&str>,
) -> anyhow::Result<Vec<Ingest>> {
    let Some(broker) = broker else {
        return Ok(Vec::new());
    };
    let sites: Vec<SiteId> = state
        .config
        .facilities
        .iter()
        .map(|(site, _)| site.clone())
        .collect();
    let ingests = start_mqtt_ingest(state, broker, &sites, "cellops-ingest")?;
    println!(
        "MQTT telemetry ingest from {broker} for site(s) {}",
        sites
            .iter()
            .map(SiteId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ingests)
}
