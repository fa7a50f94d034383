//! Real culture devices in the server (`cellops serve --devices FILE`): the device
//! configuration and one controller loop per configured device.
//!
//! The file lists each site's devices (id, site, kind `opcua` with its endpoint, lease and
//! contact grace). [`start_controllers`] runs a [`Controller`] per device on its own thread:
//! it holds the device's lease (`PgLeaseStore` on PostgreSQL, `MemoryLeaseStore` on SQLite),
//! polls the device and moves its telemetry into the server's telemetry store
//! ([`LedgerSink`]). What the controller reports becomes ledger facts on the batch running
//! on the device, through the batch engine, on an async task (never on the device thread, so
//! a slow device never holds the batch command lock):
//!
//! - a `Deviation` → `batch.deviation_opened` (`DeviationRequest::to_command`), actor
//!   `system-controller`;
//! - a new device alarm (not the safe-state alarm, which the controller judges itself) → a
//!   deviation naming the alarm, as for simulated devices;
//! - the device reports the batch's active device step's program `Completed` → the step
//!   completes (`CompleteDeviceStep`), with the harvest's units and, with harvest settings,
//!   the custody harvest in the same append (`super::complete_device_step`).
//!
//! Device steps started over HTTP go to the device through its controller
//! ([`ControllerHandle::start_program`], fenced by the lease).

use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use cellops_controller::lease::{
    LEASE_TTL_MAX, LEASE_TTL_MIN, Lease, LeaseDecision, LeaseError, LeaseStore, MemoryLeaseStore,
};
use cellops_controller::pg_lease::PgLeaseStore;
use cellops_controller::{ControlEvent, Controller, ControllerConfig};
use cellops_device::{
    CultureDevice, DeviceError, DeviceInfo, DeviceState, DeviceStatus, Program, ProgramRef,
};
use cellops_domain::SiteId;
use cellops_ledger::Backend;
use cellops_process::engine::{BatchStatus, Command, DeviationSource, DeviationState, PersonId};
use serde::Deserialize;
use time::OffsetDateTime;

use super::ingest::LedgerSink;
use super::{BatchModel, BatchRuntime, CONTROLLER_PERSON, command_lock, load, to_odt};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

// ------------------------------------------------------------------ configuration

/// Default lease, seconds (docs/devices.md "Leases").
pub const LEASE_TTL_S_DEFAULT: u64 = 30;
/// Default time a device may be unreachable before control counts as lost, seconds.
pub const CONTACT_GRACE_S_DEFAULT: u64 = 30;
/// Default interval between two polls of a device, milliseconds.
pub const POLL_INTERVAL_MS_DEFAULT: u64 = 1_000;
/// Longest device id (it names the device's telemetry and lease).
pub const DEVICE_ID_CHARS_MAX: usize = 64;

/// One configured real device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEntry {
    /// Device id (the OPC UA `AssetId`), unique in the file.
    pub id: String,
    /// The site the device stands at; batches at this site may run on it.
    pub site: SiteId,
    /// How to reach it.
    pub kind: DeviceKind,
    /// Lease duration (renewed halfway).
    pub lease_ttl: time::Duration,
    /// How long the device may be unreachable before a deviation (control lost).
    pub contact_grace: time::Duration,
    /// Time between two polls.
    pub poll_interval: StdDuration,
}

/// How a configured device is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceKind {
    /// OPC UA, node model of docs/devices.md, at this endpoint (`opc.tcp://host:port/`).
    OpcUa {
        /// Endpoint URL.
        endpoint: String,
    },
}

impl DeviceEntry {
    /// The OPC UA endpoint.
    pub fn endpoint(&self) -> &str {
        match &self.kind {
            DeviceKind::OpcUa { endpoint } => endpoint,
        }
    }
}

/// The devices of a configuration file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DevicesConfig {
    /// Devices in file order.
    pub devices: Vec<DeviceEntry>,
}

/// One problem in a device configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Field path, e.g. `devices[1].endpoint` (indices 0-based).
    pub path: String,
    /// What is wrong and the fix.
    pub message: String,
}

/// Every problem found in a device configuration file (never empty).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors {
    /// The file name as given.
    pub file: String,
    /// Problems in file order.
    pub problems: Vec<ConfigProblem>,
}

impl std::fmt::Display for ConfigErrors {
    /// One line per problem: `file:line:column: path: message`, as recipe errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, p.line, p.column, p.path, p.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    format_version: toml::Spanned<i64>,
    #[serde(default)]
    devices: Vec<toml::Spanned<DeviceToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceToml {
    id: Option<toml::Spanned<String>>,
    site: Option<toml::Spanned<String>>,
    kind: Option<toml::Spanned<String>>,
    endpoint: Option<toml::Spanned<String>>,
    lease_ttl_s: Option<toml::Spanned<i64>>,
    contact_grace_s: Option<toml::Spanned<i64>>,
    poll_interval_ms: Option<toml::Spanned<i64>>,
}

/// Line and column (1-based, columns in characters) of byte `offset` in `text`.
fn locate(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, l)| l)
        .chars()
        .count()
        + 1;
    (line, column)
}

struct Problems<'a> {
    text: &'a str,
    list: Vec<(usize, ConfigProblem)>,
}

impl Problems<'_> {
    fn missing(&mut self, at: usize, path: String, field: &str, example: &str) {
        self.add(at, path, format!("missing: add `{field} = {example}`"));
    }

    fn add(&mut self, offset: usize, path: String, message: String) {
        let (line, column) = locate(self.text, offset);
        self.list.push((
            offset,
            ConfigProblem {
                line,
                column,
                path,
                message,
            },
        ));
    }
}

/// A whole number of seconds/milliseconds within `range`, or the problem.
fn ranged(
    problems: &mut Problems<'_>,
    value: Option<&toml::Spanned<i64>>,
    at: usize,
    path: String,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    what: &str,
) -> u64 {
    let Some(v) = value else { return default };
    match u64::try_from(*v.get_ref()) {
        Ok(n) if range.contains(&n) => n,
        _ => {
            problems.add(
                v.span().start.max(at),
                path,
                format!(
                    "{} is out of range: give {what} from {} to {} (default {default})",
                    v.get_ref(),
                    range.start(),
                    range.end()
                ),
            );
            default
        }
    }
}

impl DevicesConfig {
    /// Parses and checks a device configuration; `file` names it in the problems.
    pub fn from_toml(text: &str, file: &str) -> Result<DevicesConfig, ConfigErrors> {
        let errors = |problems: Vec<ConfigProblem>| ConfigErrors {
            file: file.to_string(),
            problems,
        };
        let parsed: FileToml = toml::from_str(text).map_err(|e| {
            let (line, column) = locate(text, e.span().map_or(0, |s| s.start));
            errors(vec![ConfigProblem {
                line,
                column,
                path: "(file)".into(),
                message: format!(
                    "{} (fix: write the file as in docs/devices.md, \"Device configuration\")",
                    e.message()
                ),
            }])
        })?;
        let mut problems = Problems {
            text,
            list: Vec::new(),
        };
        if *parsed.format_version.get_ref() != 1 {
            problems.add(
                parsed.format_version.span().start,
                "format_version".into(),
                format!(
                    "format_version {} is not supported: this build reads 1",
                    parsed.format_version.get_ref()
                ),
            );
        }
        if parsed.devices.is_empty() {
            problems.add(
                text.len(),
                "devices".into(),
                "no device is configured: add a [[devices]] table per device (id, site, kind, endpoint), or leave out --devices".into(),
            );
        }
        let mut devices = Vec::new();
        let mut ids: BTreeSet<String> = BTreeSet::new();
        for (i, spanned) in parsed.devices.iter().enumerate() {
            let at = spanned.span().start;
            let d = spanned.get_ref();
            let path = |field: &str| format!("devices[{i}].{field}");
            let id = match &d.id {
                None => {
                    problems.missing(at, path("id"), "id", "\"bio-1\"");
                    None
                }
                Some(id) => {
                    let text = id.get_ref();
                    let ok = !text.is_empty()
                        && text.chars().count() <= DEVICE_ID_CHARS_MAX
                        && text
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                    if !ok {
                        problems.add(id.span().start, path("id"), format!(
                            "{text:?} is not a device id: use 1 to {DEVICE_ID_CHARS_MAX} letters, digits, '-', '_' or '.' (the device's OPC UA AssetId)"
                        ));
                        None
                    } else if !ids.insert(text.clone()) {
                        problems.add(id.span().start, path("id"), format!(
                            "device {text} is listed twice: a device id names one device (its lease and telemetry); remove the duplicate"
                        ));
                        None
                    } else {
                        Some(text.clone())
                    }
                }
            };
            let site = match &d.site {
                None => {
                    problems.missing(at, path("site"), "site", "\"cpc-kyoto\"");
                    None
                }
                Some(s) => match SiteId::parse(s.get_ref()) {
                    Ok(site) => Some(site),
                    Err(e) => {
                        problems.add(
                            s.span().start,
                            path("site"),
                            format!("{e} (fix: the id of the site the device stands at)"),
                        );
                        None
                    }
                },
            };
            let kind = match &d.kind {
                None => {
                    problems.missing(at, path("kind"), "kind", "\"opcua\"");
                    None
                }
                Some(k) => match k.get_ref().as_str() {
                    "opcua" => match &d.endpoint {
                        None => {
                            problems.missing(
                                at,
                                path("endpoint"),
                                "endpoint",
                                "\"opc.tcp://10.0.0.5:4840/\"",
                            );
                            None
                        }
                        Some(e) => match check_endpoint(e.get_ref()) {
                            Ok(()) => Some(DeviceKind::OpcUa {
                                endpoint: e.get_ref().clone(),
                            }),
                            Err(why) => {
                                problems.add(e.span().start, path("endpoint"), why);
                                None
                            }
                        },
                    },
                    "simulated" => {
                        problems.add(k.span().start, path("kind"), "simulated devices are not configured: a batch started with `simulation` gets its own (POST /api/batches); list real devices here, or run a simulated one over OPC UA with `cellops device serve-opcua` and configure it as kind \"opcua\"".into());
                        None
                    }
                    other => {
                        problems.add(
                            k.span().start,
                            path("kind"),
                            format!("unknown kind {other:?}: use \"opcua\""),
                        );
                        None
                    }
                },
            };
            let lease_range = u64::try_from(LEASE_TTL_MIN.whole_seconds()).unwrap_or(2)
                ..=u64::try_from(LEASE_TTL_MAX.whole_seconds()).unwrap_or(600);
            let lease_s = ranged(
                &mut problems,
                d.lease_ttl_s.as_ref(),
                at,
                path("lease_ttl_s"),
                LEASE_TTL_S_DEFAULT,
                lease_range,
                "the lease in seconds",
            );
            let grace_s = ranged(
                &mut problems,
                d.contact_grace_s.as_ref(),
                at,
                path("contact_grace_s"),
                CONTACT_GRACE_S_DEFAULT,
                1..=3_600,
                "the seconds a device may be unreachable before a deviation",
            );
            let poll_ms = ranged(
                &mut problems,
                d.poll_interval_ms.as_ref(),
                at,
                path("poll_interval_ms"),
                POLL_INTERVAL_MS_DEFAULT,
                100..=60_000,
                "the milliseconds between polls",
            );
            // The controller may command until a third of the lease before expiry and renews
            // halfway: it must poll well within that.
            if poll_ms * 3 > lease_s * 1_000 {
                let offset = d.poll_interval_ms.as_ref().map_or(at, |p| p.span().start);
                problems.add(offset, path("poll_interval_ms"), format!(
                    "{poll_ms} ms is longer than a third of the lease ({lease_s} s): poll more often or give a longer lease_ttl_s, or the lease lapses between polls"
                ));
            }
            if let (Some(id), Some(site), Some(kind)) = (id, site, kind) {
                devices.push(DeviceEntry {
                    id,
                    site,
                    kind,
                    lease_ttl: time::Duration::seconds(i64::try_from(lease_s).unwrap_or(30)),
                    contact_grace: time::Duration::seconds(i64::try_from(grace_s).unwrap_or(30)),
                    poll_interval: StdDuration::from_millis(poll_ms),
                });
            }
        }
        if problems.list.is_empty() {
            Ok(DevicesConfig { devices })
        } else {
            let mut list = problems.list;
            list.sort_by_key(|(offset, _)| *offset);
            Err(errors(list.into_iter().map(|(_, p)| p).collect()))
        }
    }

    /// The configured device `id` (at any site).
    pub fn device(&self, id: &str) -> Option<&DeviceEntry> {
        self.devices.iter().find(|d| d.id == id)
    }
}

/// `opc.tcp://HOST:PORT[/PATH]`, or why not.
fn check_endpoint(url: &str) -> Result<(), String> {
    let fix =
        "write the device's OPC UA endpoint as opc.tcp://HOST:PORT/, e.g. opc.tcp://10.0.0.5:4840/";
    let rest = url
        .strip_prefix("opc.tcp://")
        .ok_or_else(|| format!("{url:?} is not an OPC UA endpoint: {fix}"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("{url:?} names no port: {fix}"))?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 && !host.is_empty() => Ok(()),
        _ => Err(format!("{url:?} has no valid host and port: {fix}")),
    }
}

// ------------------------------------------------------------------ leases

/// Where the controllers keep their leases.
#[derive(Debug, Clone)]
pub enum LeaseBackend {
    /// In this process (SQLite deployments: one server process).
    Memory,
    /// The `device_leases` table of this PostgreSQL database, shared by every server process.
    Postgres(String),
}

impl LeaseBackend {
    /// The lease store for the ledger at `url`: PostgreSQL's when the ledger is there.
    pub fn for_database(url: &str) -> LeaseBackend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            LeaseBackend::Postgres(url.to_string())
        } else {
            LeaseBackend::Memory
        }
    }
}

/// A lease store chosen at run time.
enum Leases {
    Memory(MemoryLeaseStore),
    Postgres(Box<PgLeaseStore>),
}

impl Leases {
    fn open(backend: &LeaseBackend) -> Result<Leases, LeaseError> {
        Ok(match backend {
            LeaseBackend::Memory => Leases::Memory(MemoryLeaseStore::default()),
            LeaseBackend::Postgres(url) => Leases::Postgres(Box::new(PgLeaseStore::connect(url)?)),
        })
    }
}

impl LeaseStore for Leases {
    fn acquire(
        &mut self,
        device: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<LeaseDecision, LeaseError> {
        match self {
            Leases::Memory(s) => s.acquire(device, holder, now, ttl),
            Leases::Postgres(s) => s.acquire(device, holder, now, ttl),
        }
    }

    fn release(&mut self, lease: &Lease) -> Result<(), LeaseError> {
        match self {
            Leases::Memory(s) => s.release(lease),
            Leases::Postgres(s) => s.release(lease),
        }
    }

    fn current(&mut self, device: &str) -> Result<Option<Lease>, LeaseError> {
        match self {
            Leases::Memory(s) => s.current(device),
            Leases::Postgres(s) => s.current(device),
        }
    }
}

// ------------------------------------------------------------------ controller loops

enum Request {
    StartProgram(Program, tokio::sync::oneshot::Sender<Result<(), String>>),
    SafeState(String, tokio::sync::oneshot::Sender<Result<(), String>>),
    Stop,
}

/// What a controller loop reports to the server after a poll or a command.
struct Report {
    events: Vec<ControlEvent>,
    status: Option<DeviceStatus>,
}

/// The server's way to one configured device's controller (cheap to clone).
#[derive(Clone)]
pub struct ControllerHandle {
    entry: Arc<DeviceEntry>,
    requests: Sender<Request>,
    info: Arc<Mutex<Option<DeviceInfo>>>,
    status: Arc<Mutex<Option<DeviceStatus>>>,
    /// The program this server started last, and the device's clock when it started.
    started: Arc<Mutex<Option<(ProgramRef, OffsetDateTime)>>>,
}

impl ControllerHandle {
    /// The configured device.
    pub fn entry(&self) -> &DeviceEntry {
        &self.entry
    }

    /// The device's description, once it has been reached.
    pub fn info(&self) -> Option<DeviceInfo> {
        self.info.lock().expect("device info lock").clone()
    }

    /// The status the last successful poll read.
    pub fn last_status(&self) -> Option<DeviceStatus> {
        self.status.lock().expect("device status lock").clone()
    }

    async fn ask(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<Result<(), String>>) -> Request,
    ) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.requests
            .send(make(tx))
            .map_err(|_| format!("the controller of device {} has stopped", self.entry.id))?;
        rx.await
            .map_err(|_| format!("the controller of device {} has stopped", self.entry.id))?
    }

    /// Starts `program` on the device through its controller (refused without the lease).
    pub async fn start_program(&self, program: Program) -> Result<(), String> {
        self.ask(|tx| Request::StartProgram(program, tx)).await
    }

    /// Puts the device into its safe state through its controller.
    pub async fn safe_state(&self, reason: &str) -> Result<(), String> {
        let reason = reason.to_string();
        self.ask(|tx| Request::SafeState(reason, tx)).await
    }
}

/// The running controller loops; dropping stops them (each releases its lease).
pub struct DeviceControllers {
    loops: Vec<(Sender<Request>, std::thread::JoinHandle<()>)>,
}

impl DeviceControllers {
    /// How many controller loops run.
    pub fn len(&self) -> usize {
        self.loops.len()
    }

    /// Whether none runs.
    pub fn is_empty(&self) -> bool {
        self.loops.is_empty()
    }
}

impl Drop for DeviceControllers {
    fn drop(&mut self) {
        for (tx, _) in &self.loops {
            let _ = tx.send(Request::Stop);
        }
        for (_, thread) in self.loops.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The controller of `device` at `site`, when configured in this server.
pub fn controller_for<B: Backend>(
    state: &AppState<B>,
    site: &str,
    device: &str,
) -> Option<ControllerHandle> {
    state.read_model(|r: &mut BatchRuntime| {
        r.controllers
            .get(device)
            .filter(|h| h.entry.site.as_str() == site)
            .cloned()
    })
}

/// The configured device `device`, at whichever site.
pub fn configured<B: Backend>(state: &AppState<B>, device: &str) -> Option<ControllerHandle> {
    state.read_model(|r: &mut BatchRuntime| r.controllers.get(device).cloned())
}

/// Starts one controller loop per configured device, each on its own thread; `connect`
/// opens a device (the binary passes the OPC UA adapter). `holder` names this server
/// process in the leases. Call from within the tokio runtime that serves (the reports are
/// turned into ledger facts on tasks of that runtime).
pub fn start_controllers<B, D, F>(
    state: &AppState<B>,
    config: &DevicesConfig,
    leases: LeaseBackend,
    holder: &str,
    connect: F,
) -> anyhow::Result<DeviceControllers>
where
    B: Backend,
    D: CultureDevice + 'static,
    F: Fn(&DeviceEntry) -> Result<D, DeviceError> + Send + Sync + 'static,
{
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| anyhow::anyhow!("device controllers start inside the server's runtime"))?;
    let connect = Arc::new(connect);
    let mut loops = Vec::new();
    for entry in &config.devices {
        let (tx, rx) = std::sync::mpsc::channel();
        let (report_tx, report_rx) = tokio::sync::mpsc::unbounded_channel();
        let handle = ControllerHandle {
            entry: Arc::new(entry.clone()),
            requests: tx.clone(),
            info: Arc::new(Mutex::new(None)),
            status: Arc::new(Mutex::new(None)),
            started: Arc::new(Mutex::new(None)),
        };
        state.read_model(|r: &mut BatchRuntime| {
            r.controllers.insert(entry.id.clone(), handle.clone())
        });
        runtime.spawn(handle_reports(state.clone(), handle.clone(), report_rx));
        let device_loop = DeviceLoop {
            state: state.clone(),
            handle,
            leases: leases.clone(),
            holder: holder.to_string(),
            reports: report_tx,
        };
        let connect = connect.clone();
        let thread = std::thread::Builder::new()
            .name(format!("device-{}", entry.id))
            .spawn(move || device_loop.run(rx, move |e| connect(e)))?;
        loops.push((tx, thread));
    }
    Ok(DeviceControllers { loops })
}

struct DeviceLoop<B: Backend> {
    state: AppState<B>,
    handle: ControllerHandle,
    leases: LeaseBackend,
    holder: String,
    reports: tokio::sync::mpsc::UnboundedSender<Report>,
}

/// How long to wait before connecting again to a device that could not be reached.
const RECONNECT_AFTER: StdDuration = StdDuration::from_secs(2);

impl<B: Backend> DeviceLoop<B> {
    fn now(&self) -> OffsetDateTime {
        to_odt(self.state.clock.now())
    }

    fn connect<D: CultureDevice>(
        &self,
        connect: &impl Fn(&DeviceEntry) -> Result<D, DeviceError>,
    ) -> Result<Controller<D, Leases, LedgerSink<B>>, String> {
        let entry = &self.handle.entry;
        let device = connect(entry).map_err(|e| e.to_string())?;
        let info = device.info();
        if info.id != entry.id {
            return Err(format!(
                "the device at {} says it is {:?}, but the configuration expects {:?}: fix the endpoint or the id",
                entry.endpoint(),
                info.id,
                entry.id
            ));
        }
        let leases = Leases::open(&self.leases).map_err(|e| e.to_string())?;
        let sink = LedgerSink::new(self.state.clone(), entry.site.clone());
        let controller = Controller::new(
            device,
            leases,
            sink,
            ControllerConfig {
                holder: self.holder.clone(),
                lease_ttl: entry.lease_ttl,
                contact_grace: entry.contact_grace,
                samples_per_poll_max: 20_000,
            },
        )
        .map_err(|e| e.to_string())?;
        *self.handle.info.lock().expect("device info lock") = Some(info);
        Ok(controller)
    }

    fn report<D: CultureDevice>(
        &self,
        controller: &Controller<D, Leases, LedgerSink<B>>,
        events: Vec<ControlEvent>,
    ) {
        let status = controller.last_status().cloned();
        *self.handle.status.lock().expect("device status lock") = status.clone();
        for e in &events {
            match e {
                ControlEvent::TelemetryStored { .. } => {}
                ControlEvent::TelemetryDelayed { reason } => {
                    tracing::warn!(device = %self.handle.entry.id, %reason, "telemetry delayed")
                }
                other => tracing::info!(device = %self.handle.entry.id, event = ?other, "device"),
            }
        }
        let _ = self.reports.send(Report { events, status });
    }

    fn run<D: CultureDevice>(
        self,
        requests: Receiver<Request>,
        connect: impl Fn(&DeviceEntry) -> Result<D, DeviceError>,
    ) {
        let id = self.handle.entry.id.clone();
        let poll_interval = self.handle.entry.poll_interval;
        let mut controller: Option<Controller<D, Leases, LedgerSink<B>>> = None;
        let mut next_connect = Instant::now();
        let mut next_poll = Instant::now();
        let mut last_error = String::new();
        loop {
            if controller.is_none() && Instant::now() >= next_connect {
                match self.connect(&connect) {
                    Ok(c) => {
                        tracing::info!(device = %id, endpoint = %self.handle.entry.endpoint(), "device connected");
                        controller = Some(c);
                        last_error.clear();
                    }
                    Err(e) => {
                        if e != last_error {
                            tracing::warn!(device = %id, error = %e, "cannot reach the device; retrying");
                            last_error = e;
                        }
                        next_connect = Instant::now() + RECONNECT_AFTER;
                    }
                }
            }
            let wait = next_poll.saturating_duration_since(Instant::now());
            match requests.recv_timeout(wait) {
                Ok(Request::StartProgram(program, reply)) => {
                    let result = match controller.as_mut() {
                        None => Err(self.not_connected(&last_error)),
                        Some(c) => {
                            let now = self.now();
                            match c.start_program(&program, now) {
                                Ok(events) => {
                                    // Read the new state now, so no report says the previous
                                    // program is still the device's.
                                    let mut events = events;
                                    events.extend(c.poll(now));
                                    let device_time = c
                                        .last_status()
                                        .filter(|s| s.program.as_ref() == Some(&program.reference))
                                        .map(|s| s.device_time);
                                    *self.handle.started.lock().expect("program start lock") =
                                        device_time.map(|t| (program.reference.clone(), t));
                                    self.report(c, events);
                                    Ok(())
                                }
                                Err(e) => Err(e.to_string()),
                            }
                        }
                    };
                    let _ = reply.send(result);
                }
                Ok(Request::SafeState(reason, reply)) => {
                    let result = match controller.as_mut() {
                        None => Err(self.not_connected(&last_error)),
                        Some(c) => match c.safe_state(&reason, self.now()) {
                            Ok(events) => {
                                self.report(c, events);
                                Ok(())
                            }
                            Err(e) => Err(e.to_string()),
                        },
                    };
                    let _ = reply.send(result);
                }
                Ok(Request::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    if let Some(mut c) = controller
                        && let Err(e) = c.release()
                    {
                        tracing::warn!(device = %id, error = %e, "lease not released");
                    }
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(c) = controller.as_mut() {
                        let events = c.poll(self.now());
                        self.report(c, events);
                    }
                    next_poll = Instant::now() + poll_interval;
                }
            }
        }
    }

    fn not_connected(&self, why: &str) -> String {
        format!(
            "device {} at {} is not connected{}; the controller keeps trying (fix: check the device and its network)",
            self.handle.entry.id,
            self.handle.entry.endpoint(),
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        )
    }
}

// ------------------------------------------------------------------ reports into the ledger

async fn handle_reports<B: Backend>(
    state: AppState<B>,
    handle: ControllerHandle,
    mut reports: tokio::sync::mpsc::UnboundedReceiver<Report>,
) {
    // The completed program last acted on, and when: a device stays `Completed` until its
    // next program, so the same completion is seen poll after poll; it is acted on once, and
    // retried after a while when recording it failed (e.g. a custody refusal at harvest).
    let mut done: Option<(ProgramRef, Instant)> = None;
    while let Some(report) = reports.recv().await {
        let completed = report
            .status
            .as_ref()
            .filter(|s| s.state == DeviceState::Completed)
            .and_then(|s| s.program.clone());
        let repeat = matches!((&completed, &done), (Some(p), Some((q, at)))
            if p == q && at.elapsed() < COMPLETION_RETRY_AFTER);
        let outcome = handle_report(&state, &handle, report, !repeat).await;
        if !repeat && let Some(p) = completed {
            done = Some((p, Instant::now()));
        }
        if let Err(e) = outcome {
            tracing::warn!(device = %handle.entry.id, error = %e.message, "device report not recorded");
        }
    }
}

/// How long before a completion whose recording failed is tried again.
const COMPLETION_RETRY_AFTER: StdDuration = StdDuration::from_secs(30);

/// The batch the device's program belongs to, or else the batch running on the device at
/// its site (the latest started).
fn batch_on_device<B: Backend>(
    state: &AppState<B>,
    entry: &DeviceEntry,
    status: Option<&DeviceStatus>,
) -> Option<String> {
    let program_batch = status
        .and_then(|s| s.program.as_ref())
        .map(|p| p.batch.clone());
    state.read_model(|m: &mut BatchModel| {
        let running = |b: &super::BatchEntry| {
            b.opened.device == entry.id
                && b.opened.site == entry.site.as_str()
                && b.opened.simulation.is_none()
                && b.state.status() == BatchStatus::Running
        };
        if let Some(batch) = program_batch
            && m.batch(&batch).is_some_and(running)
        {
            return Some(batch);
        }
        m.batches()
            .filter(|b| running(b))
            .max_by_key(|b| b.state.started_at())
            .map(|b| b.opened.batch.clone())
    })
}

async fn handle_report<B: Backend>(
    state: &AppState<B>,
    handle: &ControllerHandle,
    report: Report,
    act_on_completion: bool,
) -> ApiResult<()> {
    let entry = &handle.entry;
    let deviations: Vec<(String, bool, bool)> = report
        .events
        .iter()
        .filter_map(|e| match e {
            ControlEvent::Deviation(d) => Some((d.description.clone(), d.hold, d.blocks_release)),
            // The controller judges a safe-state alarm itself (a deviation when the device
            // went safe on its own); every other alarm opens one, as on simulated devices.
            ControlEvent::Alarm(a) if a.code != "safe_state" => Some((
                format!("device {} alarm {}: {}", entry.id, a.code, a.message),
                false,
                true,
            )),
            _ => None,
        })
        .collect();
    let completed = report
        .status
        .as_ref()
        .filter(|s| act_on_completion && s.state == DeviceState::Completed)
        .and_then(|s| s.program.clone());
    if deviations.is_empty() && completed.is_none() {
        return Ok(());
    }
    let lock = command_lock(state);
    let _guard = lock.lock().await;
    state.sync().await?;
    let Some(batch) = batch_on_device(state, entry, report.status.as_ref()) else {
        for (description, ..) in &deviations {
            tracing::warn!(device = %entry.id, %description, "no batch runs on the device: deviation not recorded on a batch");
        }
        return Ok(());
    };
    let by = PersonId::parse(CONTROLLER_PERSON).expect("valid id");
    for (description, hold, blocks_release) in deviations {
        let ctx = load(state, &batch)?;
        // A server that restarted sees the device's active alarms again: one that is
        // already an open deviation on the batch is not opened twice.
        let open_already = ctx.state.deviations().any(|d| {
            d.state != DeviationState::Closed
                && matches!(&d.source, DeviationSource::Manual { description: text } if *text == description)
        });
        if open_already {
            continue;
        }
        let at = super::batch_now(state, &batch, &ctx);
        super::run(
            state,
            &batch,
            CONTROLLER_PERSON,
            Command::OpenDeviation {
                description,
                blocks_release,
                hold,
                by: by.clone(),
                at,
            },
            Vec::new(),
            None,
        )
        .await?;
    }
    if let (Some(program), Some(status)) = (completed, report.status.as_ref())
        && program.batch == batch
    {
        state.sync().await?;
        let ctx = load(state, &batch)?;
        let active_device_step = ctx.state.active_step().is_some_and(|a| {
            a.step.id == program.step
                && matches!(
                    ctx.recipe.step_at(a.step.position).map(|s| &s.kind),
                    Some(cellops_process::recipe::model::StepKind::Device(_))
                )
        });
        if active_device_step {
            // The step's duration is measured on the device's clock: the batch time of the
            // completion is the step's start plus the device time the program took (from
            // the device's clock when this server started it), or the server clock when
            // later. A device running faster than real time (`serve-opcua --speed`) moves
            // the batch's time ahead, as a simulated device does.
            let device_elapsed = handle
                .started
                .lock()
                .expect("program start lock")
                .as_ref()
                .filter(|(r, _)| *r == program)
                .map(|(_, t0)| status.device_time - *t0);
            let started_at = ctx.state.active_step().map(|a| a.started_at);
            let now = super::batch_now(state, &batch, &ctx);
            let at = match (device_elapsed, started_at) {
                (Some(d), Some(s)) if d > time::Duration::ZERO => now.max(s + d),
                _ => now,
            };
            super::complete_device_step(state, &ctx, &program.step, status, at, CONTROLLER_PERSON)
                .await?;
        }
    }
    Ok(())
}

/// A device step's program for a configured device, or the refusal (409) naming the device.
pub(super) async fn start_on_controller(
    handle: &ControllerHandle,
    program: Program,
) -> ApiResult<()> {
    handle.start_program(program).await.map_err(|e| {
        ApiError::conflict(format!(
            "device {} did not start the program: {e}",
            handle.entry.id
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../../../../cellops/config/devices.toml");
        let config = DevicesConfig::from_toml(text, "devices.toml").unwrap();
        assert_eq!(config.devices.len(), 2);
        let bio1 = config.device("bio-1").unwrap();
        assert_eq!(bio1.site.as_str(), "cpc-kyoto");
        assert_eq!(bio1.endpoint(), "opc.tcp://127.0.0.1:4840/");
        assert_eq!(bio1.lease_ttl, time::Duration::seconds(30));
        assert_eq!(bio1.poll_interval, StdDuration::from_millis(1_000));
        // Defaults where the file says nothing.
        let bio2 = config.device("bio-2").unwrap();
        assert_eq!(
            bio2.contact_grace,
            time::Duration::seconds(CONTACT_GRACE_S_DEFAULT as i64)
        );
    }

    #[test]
    fn every_problem_is_reported_with_file_line_field_and_fix() {
        let text = r#"format_version = 1

[[devices]]
id = "bio-1"
site = "cpc-kyoto"
kind = "opcua"
endpoint = "http://10.0.0.5:4840/"

[[devices]]
id = "bio-1"
site = "Not A Site"
kind = "simulated"
lease_ttl_s = 1

[[devices]]
site = "cpc-kyoto"
kind = "opcua"
endpoint = "opc.tcp://10.0.0.7:4840/"
lease_ttl_s = 3
poll_interval_ms = 2000
"#;
        let e = DevicesConfig::from_toml(text, "site.toml").unwrap_err();
        let lines: Vec<String> = e.to_string().lines().map(str::to_string).collect();
        let expect = [
            (
                "site.toml:7:12: devices[0].endpoint:",
                "opc.tcp://HOST:PORT/",
            ),
            ("site.toml:10:6: devices[1].id:", "listed twice"),
            ("site.toml:11:8: devices[1].site:", "site"),
            ("site.toml:12:8: devices[1].kind:", "simulation"),
            ("site.toml:13:15: devices[1].lease_ttl_s:", "from 2 to 600"),
            ("site.toml:15:1: devices[2].id:", "add `id = "),
            (
                "site.toml:20:20: devices[2].poll_interval_ms:",
                "a third of the lease",
            ),
        ];
        assert_eq!(lines.len(), expect.len(), "{e}");
        for (line, (prefix, fix)) in lines.iter().zip(expect) {
            assert!(
                line.starts_with(prefix) && line.contains(fix),
                "{line:?} should start {prefix:?} and say {fix:?}"
            );
        }
    }

    #[test]
    fn syntax_errors_and_unknown_fields_name_their_line() {
        let e = DevicesConfig::from_toml(
            "format_version = 1\n[[devices]]\nid = \"bio-1\"\nendpont = \"x\"\n",
            "d.toml",
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("d.toml:4:1: ") && e.to_string().contains("endpont"),
            "{e}"
        );
        let e = DevicesConfig::from_toml("format_version = 2\n", "d.toml").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("d.toml:1:18: format_version"), "{text}");
        assert!(text.contains("no device is configured"), "{text}");
    }

    #[test]
    fn the_lease_store_follows_the_database() {
        assert!(matches!(
            LeaseBackend::for_database("postgres://postgres@127.0.0.1:5432/x"),
            LeaseBackend::Postgres(_)
        ));
        assert!(matches!(
            LeaseBackend::for_database("sqlite:///tmp/x.db"),
            LeaseBackend::Memory
        ));
    }
}
