//! The dispatcher: brings the outbox up to the ledger, claims what is due, POSTs each
//! notification signed, and records the result. One round is [`Dispatcher::round`]
//! (tests drive rounds in simulated time); `cellops serve` runs rounds in a loop
//! ([`spawn_dispatcher`]).

use super::model::{NotifyModel, delivery_id};
use super::policy::{RetryPolicy, SendResult};
use super::{secret_name, sign};
use crate::error::{ApiError, ApiResult};
use crate::routes::orders::Orders;
use crate::state::AppState;
use axum::body::Bytes;
use axum::http::{Request, header};
use cellops_ledger::Backend;
use cellops_ledger::store::{AttemptOutcome, DeliveryAttempt, OutboxEntry};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::time::Duration;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundReport {
    /// Notifications newly put in the outbox.
    pub enqueued: usize,
    /// POSTs made.
    pub attempted: usize,
    pub delivered: usize,
    /// Failed attempts that will be retried.
    pub retrying: usize,
    /// Notifications given up on (retries exhausted).
    pub failed: usize,
    /// Notifications of revoked subscriptions, not sent.
    pub cancelled: usize,
}

/// Delivers the outbox of one server process.
pub struct Dispatcher<B: Backend> {
    state: AppState<B>,
    policy: RetryPolicy,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Every notification of a record up to this seq is in the outbox (None: not yet read).
    enqueued_through: Option<u64>,
    secrets: HashMap<String, String>,
}

impl<B: Backend> Dispatcher<B> {
    /// A dispatcher with `policy` (checked; the error names the bad field).
    pub fn new(state: AppState<B>, policy: RetryPolicy) -> Result<Dispatcher<B>, String> {
        policy.check()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(policy.timeout_ms)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Dispatcher {
            state,
            policy,
            client,
            enqueued_through: None,
            secrets: HashMap::new(),
        })
    }

    /// One round: enqueue the notifications of records not yet seen, then send what is due
    /// now (by the injected clock), concurrently, and record each result.
    pub async fn round(&mut self) -> ApiResult<RoundReport> {
        let mut report = RoundReport::default();
        self.state.sync().await?;
        let known = self.enqueued_through;
        let now = self.state.clock.now();
        let (through, enqueued) = self
            .state
            .blocking(move |s| {
                // After a restart, the outbox itself says how far enqueueing got: it is done
                // in seq order, one transaction per round.
                let after = match known {
                    Some(seq) => seq,
                    None => s.ledger.read(|b| b.outbox_high_seq())?,
                };
                // Every read model has applied at least the records the accounts have (the
                // projections are fed first), so this is a consistent cut of the ledger.
                let upto = s.accounts.lock().expect("accounts lock").last_seq();
                if upto <= after {
                    return Ok((after, 0));
                }
                let items = s.read_model(|o: &mut Orders| {
                    s.read_model(|m: &mut NotifyModel| m.outbox_items(&o.book, after, upto, now))
                });
                let added = if items.is_empty() {
                    0
                } else {
                    s.ledger.read(|b| b.outbox_enqueue(&items))?
                };
                Ok((upto, added))
            })
            .await?;
        self.enqueued_through = Some(through);
        report.enqueued = enqueued;

        let lease_until = now.plus_us(self.policy.lease_us);
        let limit = self.policy.batch;
        let due = self
            .state
            .blocking(move |s| Ok(s.ledger.read(|b| b.outbox_claim(now, lease_until, limit))?))
            .await?;
        if due.is_empty() {
            return Ok(report);
        }
        let mut sends = tokio::task::JoinSet::new();
        let mut results: Vec<(OutboxEntry, DeliveryAttempt)> = Vec::new();
        for entry in due {
            let sub = self.state.read_model(|m: &mut NotifyModel| {
                m.subscription(&entry.item.subscription).cloned()
            });
            let Some(sub) = sub.filter(|s| s.revoked.is_none()) else {
                let attempt = DeliveryAttempt {
                    at: now,
                    status: None,
                    error: Some("the subscription was revoked before delivery".into()),
                    outcome: AttemptOutcome::Cancelled,
                };
                results.push((entry, attempt));
                continue;
            };
            let secret = match self.secret(&sub.id).await {
                Ok(s) => s,
                Err(e) => {
                    let why = SendResult::Failed(format!("no signing secret: {}", e.message));
                    let attempt = self.policy.judge(entry.attempts, now, &why);
                    results.push((entry, attempt));
                    continue;
                }
            };
            let client = self.client.clone();
            let timeout = Duration::from_millis(self.policy.timeout_ms);
            let clock = self.state.clock.clone();
            sends.spawn(async move {
                let t = clock.now().unix_us().div_euclid(1_000_000);
                let result = post(&client, &sub.url, &entry, &secret, t, timeout).await;
                (entry, result)
            });
        }
        while let Some(done) = sends.join_next().await {
            let (entry, result) = done.map_err(ApiError::internal)?;
            report.attempted += 1;
            let at = self.state.clock.now();
            let attempt = self.policy.judge(entry.attempts, at, &result);
            results.push((entry, attempt));
        }
        for (_, a) in &results {
            match a.outcome {
                AttemptOutcome::Delivered => report.delivered += 1,
                AttemptOutcome::RetryAt(_) => report.retrying += 1,
                AttemptOutcome::GaveUp => report.failed += 1,
                AttemptOutcome::Cancelled => report.cancelled += 1,
            }
            if let Some(e) = &a.error {
                tracing::warn!(outcome = ?a.outcome, error = %e, "webhook delivery attempt");
            }
        }
        self.state
            .blocking(move |s| {
                for (entry, attempt) in &results {
                    s.ledger.read(|b| {
                        b.outbox_record(&entry.item.subscription, entry.item.seq, attempt)
                    })?;
                }
                Ok(())
            })
            .await?;
        Ok(report)
    }

    async fn secret(&mut self, subscription: &str) -> ApiResult<String> {
        if let Some(s) = self.secrets.get(subscription) {
            return Ok(s.clone());
        }
        let name = secret_name(subscription);
        let secret = self
            .state
            .blocking(move |s| Ok(s.ledger.read(|b| b.secret_get(&name))?))
            .await?
            .ok_or_else(|| {
                ApiError::internal(format!("subscription {subscription} has no stored secret"))
            })?;
        self.secrets
            .insert(subscription.to_string(), secret.clone());
        Ok(secret)
    }

    /// Runs rounds every `poll` until the task is dropped; a failing round is logged and
    /// the next one tries again (nothing is lost: the outbox is derived from the ledger).
    pub async fn run(mut self, poll: Duration) {
        loop {
            match self.round().await {
                Ok(r) if r != RoundReport::default() => tracing::info!(?r, "webhook round"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e.message, "webhook round failed"),
            }
            tokio::time::sleep(poll).await;
        }
    }
}

/// Starts the dispatcher of `state` on the current runtime, polling every `poll`.
pub fn spawn_dispatcher<B: Backend>(
    state: AppState<B>,
    policy: RetryPolicy,
    poll: Duration,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let dispatcher = Dispatcher::new(state, policy)?;
    Ok(tokio::spawn(dispatcher.run(poll)))
}

/// POSTs one notification, signed at unix time `t`.
async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    entry: &OutboxEntry,
    secret: &str,
    t: i64,
    timeout: Duration,
) -> SendResult {
    let id = delivery_id(&entry.item.subscription, entry.item.seq);
    let body = entry.item.body.as_bytes();
    let request = Request::post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "cellops-webhooks/1")
        .header("x-cellops-event", &entry.item.kind)
        .header("x-cellops-delivery", &id)
        .header("idempotency-key", &id)
        .header(
            sign::SIGNATURE_HEADER,
            sign::signature_header(secret, t, body),
        )
        .body(Full::new(Bytes::copy_from_slice(body)));
    let request = match request {
        Ok(r) => r,
        Err(e) => return SendResult::Failed(format!("cannot build the request to {url}: {e}")),
    };
    match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => SendResult::Failed(format!(
            "no answer from {url} within {} ms",
            timeout.as_millis()
        )),
        Ok(Err(e)) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why.push_str(": ");
                why.push_str(&s.to_string());
                source = s.source();
            }
            SendResult::Failed(format!("cannot reach {url}: {why}"))
        }
        Ok(Ok(response)) => SendResult::Answered(response.status().as_u16()),
    }
}
