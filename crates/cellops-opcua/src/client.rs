//! `OpcUaDevice`: a remote culture device driven over OPC UA, as a `CultureDevice`.
//!
//! The trait is synchronous, so the adapter owns a small tokio runtime and blocks on it; call
//! it from a blocking thread (never from inside another runtime's async task). A call that
//! fails on the transport drops the session and answers `Unreachable`; the next call
//! connects again (the controller decides how often to retry). Every answer is checked
//! against the node model: wrong types, unknown states or set points, arrays of different
//! lengths, samples out of order or outside the asked range answer `Garbage`.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cellops_device::{
    Alarm, CultureDevice, DeviceError, DeviceInfo, DeviceStatus, Program, ProgramRef,
    SAMPLES_READ_MAX, Sample, SignalInfo,
};
use cellops_process::units::SetPoint;
use opcua::client::{ClientBuilder, IdentityToken, Session};
use opcua::crypto::SecurityPolicy;
use opcua::types::{
    CallMethodRequest, DataValue, MessageSecurityMode, NodeId, ReadValueId, StatusCode,
    TimestampsToReturn, UserTokenPolicy, VariableId, Variant,
};
use tokio::task::JoinHandle;

use crate::convert::{as_doubles, as_strings, doubles, from_ua_time, strings};
use crate::model;
use crate::server::{ARRAY_LENGTH_MAX, MESSAGE_BYTES_MAX};

/// How the adapter talks to the device.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Longest wait for one request (read or method call).
    pub request_timeout: Duration,
    /// Longest wait to open a session.
    pub connect_timeout: Duration,
    /// Directory for the OPC UA stack's PKI files (security policy None: no certificates).
    pub pki_dir: PathBuf,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            pki_dir: std::env::temp_dir().join("cellops-opcua-pki"),
        }
    }
}

/// Most samples asked for in one `ReadSamples` call, whatever the caller's `max`: keeps one
/// answer far below the message size limits of other OPC UA servers (~26 bytes per sample).
pub const READ_SAMPLES_CALL_MAX: usize = 2_000;
const _: () = assert!(READ_SAMPLES_CALL_MAX <= SAMPLES_READ_MAX);

struct Connection {
    session: Arc<Session>,
    event_loop: JoinHandle<StatusCode>,
    ns: u16,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.session.disable_reconnects();
        self.event_loop.abort();
    }
}

/// A culture device reached over OPC UA.
pub struct OpcUaDevice {
    endpoint_url: String,
    options: ClientOptions,
    runtime: tokio::runtime::Runtime,
    connection: Option<Connection>,
    info: DeviceInfo,
}

impl std::fmt::Debug for OpcUaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpcUaDevice")
            .field("endpoint_url", &self.endpoint_url)
            .field("device", &self.info.id)
            .field("connected", &self.connection.is_some())
            .finish()
    }
}

fn unreachable(device: &str, reason: impl std::fmt::Display) -> DeviceError {
    DeviceError::Unreachable {
        device: device.to_string(),
        reason: reason.to_string(),
    }
}

fn garbage(device: &str, request: &'static str, detail: impl Into<String>) -> DeviceError {
    DeviceError::Garbage {
        device: device.to_string(),
        request,
        detail: detail.into(),
    }
}

impl OpcUaDevice {
    /// Connects to the device at `endpoint_url` (`opc.tcp://host:port/`) and reads its
    /// identification and signal list.
    pub fn connect(endpoint_url: &str, options: ClientOptions) -> Result<OpcUaDevice, DeviceError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // One worker keeps the session's event loop (keep-alives) running between calls.
            .worker_threads(1)
            .thread_name("opcua-client")
            .enable_all()
            .build()
            .map_err(|e| {
                unreachable(
                    endpoint_url,
                    format!("cannot start the client runtime: {e}"),
                )
            })?;
        let mut device = OpcUaDevice {
            endpoint_url: endpoint_url.to_string(),
            options,
            runtime,
            connection: None,
            info: DeviceInfo {
                id: endpoint_url.to_string(),
                model: String::new(),
                signals: Vec::new(),
            },
        };
        device.ensure_connected()?;
        Ok(device)
    }

    /// The endpoint this adapter talks to.
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint_url
    }

    /// Whether a session is open now.
    pub fn is_connected(&self) -> bool {
        self.connection
            .as_ref()
            .is_some_and(|c| !c.event_loop.is_finished())
    }

    /// Closes the session (the next call connects again).
    pub fn disconnect(&mut self) {
        if let Some(c) = self.connection.take() {
            let session = c.session.clone();
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(1), session.disconnect()).await
            });
        }
    }

    fn ensure_connected(&mut self) -> Result<u16, DeviceError> {
        if let Some(c) = &self.connection {
            if !c.event_loop.is_finished() {
                return Ok(c.ns);
            }
            self.connection = None;
        }
        let connection =
            self.runtime
                .block_on(open(&self.endpoint_url, &self.info.id, &self.options))?;
        let ns = connection.ns;
        let session = connection.session.clone();
        self.connection = Some(connection);
        let name = self.info.id.clone();
        let info = self.block(async move { read_info(&session, ns, &name).await })?;
        // A reconnect must reach the same device with the same signals: samples index them.
        if !self.info.signals.is_empty()
            && (info.id != self.info.id || info.signals != self.info.signals)
        {
            self.connection = None;
            return Err(garbage(
                &self.info.id,
                "connect",
                format!(
                    "the endpoint now answers as device `{}` with {} signals; expected `{}` with {}",
                    info.id,
                    info.signals.len(),
                    self.info.id,
                    self.info.signals.len()
                ),
            ));
        }
        self.info = info;
        Ok(ns)
    }

    /// Runs `f` with the request timeout; a transport failure drops the session.
    fn block<T>(&mut self, f: impl Future<Output = Result<T, Failure>>) -> Result<T, DeviceError> {
        let timeout = self.options.request_timeout;
        let result = self.runtime.block_on(async move {
            match tokio::time::timeout(timeout, f).await {
                Ok(r) => r,
                Err(_) => Err(Failure::Transport(format!(
                    "no answer within {:.1} s",
                    timeout.as_secs_f64()
                ))),
            }
        });
        match result {
            Ok(v) => Ok(v),
            Err(Failure::Transport(reason)) => {
                self.connection = None;
                Err(unreachable(&self.info.id, reason))
            }
            Err(Failure::Device(e)) => Err(e),
        }
    }

    fn session(&mut self) -> Result<(Arc<Session>, u16), DeviceError> {
        let ns = self.ensure_connected()?;
        let session = self
            .connection
            .as_ref()
            .map(|c| c.session.clone())
            .ok_or_else(|| unreachable(&self.info.id, "no session"))?;
        Ok((session, ns))
    }

    /// Calls method `method` on `object`; a Bad status is refused with the device's
    /// `LastError` as the reason.
    fn call(
        &mut self,
        request: &'static str,
        object: &str,
        method: &str,
        args: Vec<Variant>,
    ) -> Result<Vec<Variant>, DeviceError> {
        let (session, ns) = self.session()?;
        let device = self.info.id.clone();
        let call = CallMethodRequest {
            object_id: NodeId::new(ns, object),
            method_id: NodeId::new(ns, method),
            input_arguments: Some(args),
        };
        self.block(async move {
            let result = session.call_one(call).await.map_err(transport)?;
            if result.status_code.is_good() {
                return Ok(result.output_arguments.unwrap_or_default());
            }
            if is_transport(result.status_code) {
                return Err(Failure::Transport(result.status_code.to_string()));
            }
            let reason = read_last_error(&session, ns).await.unwrap_or_default();
            Err(Failure::Device(DeviceError::Rejected {
                device,
                request,
                reason: format!("{} {}", result.status_code, reason)
                    .trim()
                    .to_string(),
            }))
        })
    }
}

/// Why a request failed: the transport (retry later) or the device's answer.
enum Failure {
    Transport(String),
    Device(DeviceError),
}

fn is_transport(code: StatusCode) -> bool {
    [
        StatusCode::BadNotConnected,
        StatusCode::BadConnectionClosed,
        StatusCode::BadCommunicationError,
        StatusCode::BadTimeout,
        StatusCode::BadServerNotConnected,
        StatusCode::BadSecureChannelClosed,
        StatusCode::BadSessionClosed,
        StatusCode::BadSessionIdInvalid,
        StatusCode::BadTcpInternalError,
        StatusCode::BadShutdown,
    ]
    .contains(&code)
}

fn transport(e: opcua::types::Error) -> Failure {
    Failure::Transport(e.to_string())
}

/// Opens a session and finds the cellops namespace.
async fn open(
    endpoint_url: &str,
    name: &str,
    options: &ClientOptions,
) -> Result<Connection, DeviceError> {
    let fail = |reason: String| unreachable(name, format!("{endpoint_url}: {reason}"));
    let mut client = ClientBuilder::new()
        .application_name("cellops controller")
        .application_uri("urn:cellops:controller")
        .product_uri("urn:cellops")
        .pki_dir(options.pki_dir.clone())
        .create_sample_keypair(false)
        .trust_server_certs(true)
        // No automatic reconnect: the adapter reconnects on the next call, so the controller
        // sees every loss of contact.
        .session_retry_limit(0)
        .request_timeout(options.request_timeout)
        .max_message_size(MESSAGE_BYTES_MAX)
        .max_array_length(ARRAY_LENGTH_MAX)
        .client()
        .map_err(|e| fail(format!("invalid client configuration: {}", e.join("; "))))?;
    // Ask the server for its endpoints and take the one with security None: its user token
    // policies carry the server's own policy id for anonymous access.
    let wanted = (
        endpoint_url,
        SecurityPolicy::None.to_uri(),
        MessageSecurityMode::None,
        UserTokenPolicy::anonymous(),
    );
    let (session, event_loop) = tokio::time::timeout(
        options.connect_timeout,
        client.connect_to_matching_endpoint(wanted, IdentityToken::Anonymous),
    )
    .await
    .map_err(|_| fail("no endpoint list within the connect timeout".into()))?
    .map_err(|e| fail(e.to_string()))?;
    let event_loop = event_loop.spawn();
    let connected =
        tokio::time::timeout(options.connect_timeout, session.wait_for_connection()).await;
    if !matches!(connected, Ok(true)) || event_loop.is_finished() {
        event_loop.abort();
        return Err(fail(format!(
            "no session within {:.1} s",
            options.connect_timeout.as_secs_f64()
        )));
    }
    let mut connection = Connection {
        session,
        event_loop,
        ns: 0,
    };
    let values = connection
        .session
        .read(
            &[NodeId::from(VariableId::Server_NamespaceArray).into()],
            TimestampsToReturn::Neither,
            0.0,
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
    let namespaces = values
        .first()
        .and_then(|v| v.value.as_ref())
        .and_then(as_strings)
        .ok_or_else(|| garbage(name, "connect", "NamespaceArray is not a String array"))?;
    let ns = namespaces
        .iter()
        .position(|n| n == model::NAMESPACE_URI)
        .ok_or_else(|| {
            garbage(
                name,
                "connect",
                format!(
                    "the server has no `{}` namespace; it is not a cellops culture device",
                    model::NAMESPACE_URI
                ),
            )
        })?;
    connection.ns =
        u16::try_from(ns).map_err(|_| garbage(name, "connect", "namespace index above 65535"))?;
    Ok(connection)
}

/// Reads `nodes`; each answer must be Good.
async fn read_values(
    session: &Session,
    ns: u16,
    device: &str,
    request: &'static str,
    nodes: &[&str],
) -> Result<Vec<Variant>, Failure> {
    let ids: Vec<ReadValueId> = nodes.iter().map(|n| NodeId::new(ns, *n).into()).collect();
    let values = session
        .read(&ids, TimestampsToReturn::Neither, 0.0)
        .await
        .map_err(transport)?;
    if values.len() != nodes.len() {
        return Err(Failure::Device(garbage(
            device,
            request,
            format!("asked for {} values, got {}", nodes.len(), values.len()),
        )));
    }
    nodes
        .iter()
        .zip(values)
        .map(|(node, dv)| good_value(device, request, node, dv))
        .collect()
}

fn good_value(
    device: &str,
    request: &'static str,
    node: &str,
    dv: DataValue,
) -> Result<Variant, Failure> {
    let status = dv.status.unwrap_or(StatusCode::Good);
    if is_transport(status) {
        return Err(Failure::Transport(format!("{node}: {status}")));
    }
    if !status.is_good() {
        return Err(Failure::Device(garbage(
            device,
            request,
            format!("{node} answered {status}"),
        )));
    }
    dv.value
        .ok_or_else(|| Failure::Device(garbage(device, request, format!("{node} has no value"))))
}

async fn read_last_error(session: &Session, ns: u16) -> Option<String> {
    let values = session
        .read(
            &[NodeId::new(ns, model::LAST_ERROR).into()],
            TimestampsToReturn::Neither,
            0.0,
        )
        .await
        .ok()?;
    match values.into_iter().next()?.value? {
        Variant::String(s) => Some(s.as_ref().to_string()),
        _ => None,
    }
}

fn text(device: &str, request: &'static str, node: &str, v: &Variant) -> Result<String, Failure> {
    match v {
        Variant::String(s) => Ok(s.as_ref().to_string()),
        other => Err(Failure::Device(garbage(
            device,
            request,
            format!("{node} must be a String, got {:?}", other.type_id()),
        ))),
    }
}

fn text_list(
    device: &str,
    request: &'static str,
    node: &str,
    v: &Variant,
) -> Result<Vec<String>, Failure> {
    as_strings(v).ok_or_else(|| {
        Failure::Device(garbage(
            device,
            request,
            format!("{node} must be a String array"),
        ))
    })
}

fn number_list(
    device: &str,
    request: &'static str,
    node: &str,
    v: &Variant,
) -> Result<Vec<f64>, Failure> {
    as_doubles(v).ok_or_else(|| {
        Failure::Device(garbage(
            device,
            request,
            format!("{node} must be a Double array"),
        ))
    })
}

fn same_length(
    device: &str,
    request: &'static str,
    what: &str,
    a: usize,
    b: usize,
) -> Result<(), Failure> {
    if a == b {
        return Ok(());
    }
    Err(Failure::Device(garbage(
        device,
        request,
        format!("{what}: {a} names but {b} values"),
    )))
}

async fn read_info(session: &Session, ns: u16, device: &str) -> Result<DeviceInfo, Failure> {
    use model::*;
    let nodes = [ASSET_ID, MODEL, SIGNAL_NAMES, SIGNAL_UNITS];
    let v = read_values(session, ns, device, "info", &nodes).await?;
    let id = text(device, "info", ASSET_ID, &v[0])?;
    if id.trim().is_empty() {
        return Err(Failure::Device(garbage(device, "info", "AssetId is empty")));
    }
    let model_name = text(device, "info", MODEL, &v[1])?;
    let names = text_list(device, "info", SIGNAL_NAMES, &v[2])?;
    let units = text_list(device, "info", SIGNAL_UNITS, &v[3])?;
    same_length(device, "info", "signals", names.len(), units.len())?;
    if names.len() > usize::from(u16::MAX) {
        return Err(Failure::Device(garbage(
            device,
            "info",
            "more than 65535 signals",
        )));
    }
    Ok(DeviceInfo {
        id,
        model: model_name,
        signals: names
            .into_iter()
            .zip(units)
            .map(|(name, unit)| SignalInfo { name, unit })
            .collect(),
    })
}

async fn read_status(session: &Session, ns: u16, device: &str) -> Result<DeviceStatus, Failure> {
    use model::*;
    const R: &str = "status";
    let nodes = [
        CURRENT_STATE,
        JOB_ID,
        TASK_ID,
        CURRENT_RUNTIME,
        TARGET_NAMES,
        TARGET_VALUES,
        RESULT_NAMES,
        RESULT_VALUES,
        ALARM_CODES,
        ALARM_MESSAGES,
        ALARM_TIMES,
        DEVICE_TIME,
        LAST_SAMPLE_SEQ,
    ];
    let v = read_values(session, ns, device, R, &nodes).await?;
    let bad = |detail: String| Failure::Device(garbage(device, R, detail));
    let state_text = text(device, R, CURRENT_STATE, &v[0])?;
    let state = parse_state(&state_text).ok_or_else(|| {
        bad(format!(
            "CurrentState `{state_text}` is not Idle, Running, Completed, Safe or Faulted"
        ))
    })?;
    let batch = text(device, R, JOB_ID, &v[1])?;
    let step = text(device, R, TASK_ID, &v[2])?;
    let program = (!batch.is_empty() || !step.is_empty()).then_some(ProgramRef { batch, step });
    let runtime_ms = match v[3] {
        Variant::Double(x) if x.is_finite() && x >= 0.0 => x,
        ref other => {
            return Err(bad(format!(
                "CurrentRuntime must be a finite Double ≥ 0, got {other:?}"
            )));
        }
    };
    let target_names = text_list(device, R, TARGET_NAMES, &v[4])?;
    let target_values = number_list(device, R, TARGET_VALUES, &v[5])?;
    same_length(
        device,
        R,
        "target values",
        target_names.len(),
        target_values.len(),
    )?;
    let mut set_points = BTreeMap::new();
    for (name, value) in target_names.iter().zip(target_values) {
        let point =
            SetPoint::parse(name).ok_or_else(|| bad(format!("unknown set point `{name}`")))?;
        set_points.insert(point, value);
    }
    let result_names = text_list(device, R, RESULT_NAMES, &v[6])?;
    let result_values = number_list(device, R, RESULT_VALUES, &v[7])?;
    same_length(
        device,
        R,
        "results",
        result_names.len(),
        result_values.len(),
    )?;
    let codes = text_list(device, R, ALARM_CODES, &v[8])?;
    let messages = text_list(device, R, ALARM_MESSAGES, &v[9])?;
    let times = crate::convert::array_items(&v[10])
        .ok_or_else(|| bad("Alarms.Times must be a DateTime array".into()))?;
    if codes.len() != messages.len() || codes.len() != times.len() {
        return Err(bad(format!(
            "alarms: {} codes, {} messages, {} times",
            codes.len(),
            messages.len(),
            times.len()
        )));
    }
    let mut alarms = Vec::with_capacity(codes.len());
    for ((code, message), at) in codes.into_iter().zip(messages).zip(times) {
        let at = match at {
            Variant::DateTime(t) => from_ua_time(t),
            _ => None,
        }
        .ok_or_else(|| bad(format!("alarm `{code}` has no valid time")))?;
        alarms.push(Alarm { code, message, at });
    }
    let device_time = match &v[11] {
        Variant::DateTime(t) => from_ua_time(t),
        _ => None,
    }
    .ok_or_else(|| bad("DeviceTime must be a DateTime".into()))?;
    let Variant::UInt64(last_sample_seq) = v[12] else {
        return Err(bad(format!(
            "LastSampleSeq must be a UInt64, got {:?}",
            v[12]
        )));
    };
    Ok(DeviceStatus {
        state,
        program,
        device_time,
        program_elapsed_hours: runtime_ms / 3_600_000.0,
        set_points,
        alarms,
        last_sample_seq,
        results: result_names.into_iter().zip(result_values).collect(),
    })
}

/// Checks and converts a `ReadSamples` answer.
fn parse_samples(
    device: &str,
    out: &[Variant],
    after_seq: u64,
    max: usize,
    signals: usize,
) -> Result<Vec<Sample>, DeviceError> {
    const R: &str = "read_samples";
    let bad = |detail: String| garbage(device, R, detail);
    if out.len() != 4 {
        return Err(bad(format!(
            "ReadSamples answered {} outputs, expected 4",
            out.len()
        )));
    }
    let items = |i: usize| {
        crate::convert::array_items(&out[i])
            .ok_or_else(|| bad(format!("output {i} is not an array")))
    };
    let (seqs, times, sigs, values) = (items(0)?, items(1)?, items(2)?, items(3)?);
    let n = seqs.len();
    if times.len() != n || sigs.len() != n || values.len() != n {
        return Err(bad(format!(
            "arrays of different lengths: {n} seqs, {} times, {} signals, {} values",
            times.len(),
            sigs.len(),
            values.len()
        )));
    }
    if n > max {
        return Err(bad(format!("{n} samples answered, at most {max} asked")));
    }
    let mut samples = Vec::with_capacity(n);
    let mut previous = after_seq;
    for i in 0..n {
        let (
            Variant::UInt64(seq),
            Variant::Int64(at_unix_ms),
            Variant::UInt16(signal),
            Variant::Double(value),
        ) = (&seqs[i], &times[i], &sigs[i], &values[i])
        else {
            return Err(bad(format!(
                "sample {i} has the wrong types (UInt64, Int64, UInt16, Double)"
            )));
        };
        if *seq <= previous {
            return Err(bad(format!(
                "sample seq {seq} after {previous}: sequence numbers must rise above AfterSeq {after_seq}"
            )));
        }
        if usize::from(*signal) >= signals {
            return Err(bad(format!(
                "sample {seq} names signal {signal}; the device has {signals}"
            )));
        }
        if !value.is_finite() {
            return Err(bad(format!("sample {seq} has a non-finite value")));
        }
        previous = *seq;
        samples.push(Sample {
            seq: *seq,
            at_unix_ms: *at_unix_ms,
            signal: *signal,
            value: *value,
        });
    }
    Ok(samples)
}

impl CultureDevice for OpcUaDevice {
    fn info(&self) -> DeviceInfo {
        self.info.clone()
    }

    fn start_program(&mut self, program: &Program) -> Result<(), DeviceError> {
        let args = vec![
            Variant::from(program.operation.name().to_string()),
            Variant::from(program.reference.batch.clone()),
            Variant::from(program.reference.step.clone()),
            Variant::from(program.duration_hours),
            strings(program.set_points.keys().map(|k| k.name().to_string())),
            doubles(program.set_points.values().copied()),
        ];
        self.call(
            "start_program",
            model::STATE_MACHINE,
            model::START_PROGRAM,
            args,
        )?;
        Ok(())
    }

    fn set_points(&mut self, set_points: &BTreeMap<SetPoint, f64>) -> Result<(), DeviceError> {
        let args = vec![
            strings(set_points.keys().map(|k| k.name().to_string())),
            doubles(set_points.values().copied()),
        ];
        self.call(
            "set_points",
            model::FUNCTION_SET,
            model::SET_TARGET_VALUES,
            args,
        )?;
        Ok(())
    }

    fn status(&mut self) -> Result<DeviceStatus, DeviceError> {
        let (session, ns) = self.session()?;
        let device = self.info.id.clone();
        self.block(async move { read_status(&session, ns, &device).await })
    }

    fn read_samples(&mut self, after_seq: u64, max: usize) -> Result<Vec<Sample>, DeviceError> {
        let max = max.min(READ_SAMPLES_CALL_MAX);
        let max_arg = u32::try_from(max).expect("READ_SAMPLES_CALL_MAX fits in u32");
        let out = self.call(
            "read_samples",
            model::UNIT,
            model::READ_SAMPLES,
            vec![Variant::from(after_seq), Variant::from(max_arg)],
        )?;
        parse_samples(&self.info.id, &out, after_seq, max, self.info.signals.len())
    }

    fn safe_state(&mut self, reason: &str) -> Result<(), DeviceError> {
        self.call(
            "safe_state",
            model::STATE_MACHINE,
            model::STOP,
            vec![Variant::from(reason.to_string())],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(seqs: Vec<u64>, times: Vec<i64>, sigs: Vec<u16>, values: Vec<f64>) -> Vec<Variant> {
        vec![
            Variant::from(seqs),
            Variant::from(times),
            Variant::from(sigs),
            Variant::from(values),
        ]
    }

    #[test]
    fn samples_in_order_are_accepted() {
        let s = parse_samples(
            "d",
            &out(vec![5, 6], vec![1, 2], vec![0, 1], vec![1.0, 2.0]),
            4,
            10,
            2,
        )
        .unwrap();
        assert_eq!(s.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![5, 6]);
    }

    #[test]
    fn garbage_samples_are_refused() {
        let cases = [
            out(vec![4], vec![1], vec![0], vec![1.0]), // not after AfterSeq
            out(vec![6, 5], vec![1, 2], vec![0, 0], vec![1.0, 1.0]), // out of order
            out(vec![5], vec![1], vec![9], vec![1.0]), // unknown signal
            out(vec![5], vec![1], vec![0], vec![f64::NAN]), // not finite
            out(vec![5, 6], vec![1], vec![0, 0], vec![1.0, 1.0]), // lengths differ
        ];
        for case in cases {
            let e = parse_samples("d", &case, 4, 10, 2).unwrap_err();
            assert!(matches!(e, DeviceError::Garbage { .. }), "{e}");
        }
        let wrong_type = vec![
            Variant::from(vec![5u32]),
            Variant::from(vec![1i64]),
            Variant::from(vec![0u16]),
            Variant::from(vec![1.0]),
        ];
        assert!(parse_samples("d", &wrong_type, 4, 10, 2).is_err());
        let too_many = out(vec![5, 6], vec![1, 2], vec![0, 0], vec![1.0, 1.0]);
        assert!(parse_samples("d", &too_many, 4, 1, 2).is_err());
    }
}
