//! Calls the real router in-process (the same handlers, extractors and middleware a network
//! client reaches), keeping each call's latency for the network benchmark.

use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cellops_ledger::Backend;
use cellops_server::{AppState, app};
use http_body_util::BodyExt;
use serde_json::Value;
use std::time::Instant;
use tower::ServiceExt;

/// One reply: status and JSON body (text bodies as a JSON string).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// The error message of a refused call.
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
    /// The stable error code of a refused call.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// The router of one app state, and the latencies of every call made through it.
pub struct Client<B: Backend> {
    state: AppState<B>,
    router: axum::Router,
    /// Wall-clock latency of each call, microseconds (benchmark only; never used by logic).
    pub latencies_us: Vec<u64>,
    /// Total latency and calls per route (method and path with ids blanked), microseconds.
    pub by_route: std::collections::BTreeMap<String, (u64, u64)>,
}

impl<B: Backend> Client<B> {
    pub fn new(state: AppState<B>) -> Client<B> {
        let router = app(state.clone());
        Client {
            state,
            router,
            latencies_us: Vec::new(),
            by_route: std::collections::BTreeMap::new(),
        }
    }

    pub fn state(&self) -> &AppState<B> {
        &self.state
    }

    /// Calls `method path` with a bearer token or a session cookie.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        auth: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = auth {
            req = if token.starts_with("cellops_session=") {
                req.header(header::COOKIE, token)
            } else {
                req.header(header::AUTHORIZATION, format!("Bearer {token}"))
            };
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .context("building a request")?;
        let started = Instant::now();
        let response = self.router.clone().oneshot(req).await?;
        let status = response.status();
        let cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").to_string());
        let bytes = response.into_body().collect().await?.to_bytes();
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.latencies_us.push(us);
        let slot = self.by_route.entry(route_of(method, path)).or_default();
        slot.0 += us;
        slot.1 += 1;
        let mut body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).to_string()));
        if let (Some(c), Value::Object(map)) = (cookie, &mut body) {
            map.insert("_cookie".into(), Value::String(c));
        }
        Ok(Reply { status, body })
    }

    /// POSTs and requires 200; the error names the step and carries the server's message.
    pub async fn post_ok(
        &mut self,
        step: &str,
        path: &str,
        body: Value,
        auth: &str,
    ) -> anyhow::Result<Value> {
        let r = self.call("POST", path, Some(&body), Some(auth)).await?;
        ok(step, r)
    }

    /// GETs and requires 200.
    pub async fn get_ok(&mut self, step: &str, path: &str, auth: &str) -> anyhow::Result<Value> {
        let r = self.call("GET", path, None, Some(auth)).await?;
        ok(step, r)
    }
}

/// `POST /api/batches/{}/simulate`: the path with its ids blanked (segments after a known
/// collection name), for per-route totals.
fn route_of(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let mut out = String::from(method);
    let mut previous = "";
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let blank = matches!(
            previous,
            "batches"
                | "orders"
                | "units"
                | "shipments"
                | "shippers"
                | "excursions"
                | "recipes"
                | "deviations"
                | "storage"
                | "lots"
                | "steps"
                | "release-at-risk"
        ) && !matches!(segment, "put-away" | "retrieve" | "derive");
        out.push('/');
        out.push_str(if blank { "{}" } else { segment });
        previous = segment;
    }
    out
}

fn ok(step: &str, r: Reply) -> anyhow::Result<Value> {
    if r.status != StatusCode::OK {
        bail!("{step}: HTTP {} {}: {}", r.status, r.code(), r.body);
    }
    Ok(r.body)
}
