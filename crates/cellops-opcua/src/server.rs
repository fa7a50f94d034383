//! An OPC UA server that exposes one `CultureDevice` with the node model of [`crate::model`].
//!
//! Every value is read from the device when a client reads it (read callbacks), so a client
//! never sees a stale state after its own method call. Method calls go to the device under
//! its mutex; a refused call answers a Bad status code and leaves the reason in
//! `LastError`. A watchdog puts a running device into its safe state when no client has
//! been in contact for the configured time (control lost).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cellops_device::{
    CultureDevice, DeviceError, DeviceInfo, DeviceState, DeviceStatus, Program, ProgramRef,
    SAMPLES_READ_MAX, Sample,
};
use cellops_process::recipe::model::DeviceOperation;
use cellops_process::units::SetPoint;
use opcua::server::address_space::{AddressSpace, MethodBuilder, ObjectBuilder, VariableBuilder};
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::memory::{SimpleNodeManager, simple_node_manager};
use opcua::server::{ANONYMOUS_USER_TOKEN_ID, ServerBuilder, ServerEndpoint, ServerHandle};
use opcua::types::{
    Argument, DataTypeId, DataValue, DateTime, LocalizedText, NodeId, ObjectId, StatusCode,
    UAString, Variant,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::OpcUaError;
use crate::convert::{as_doubles, as_strings, doubles, strings, to_ua_time};
use crate::model;

/// A device shared between the server's callbacks and whoever advances it (the simulation
/// clock of `cellops device serve-opcua`).
pub type SharedDevice = Arc<Mutex<dyn CultureDevice>>;

/// Most bytes of one OPC UA message either way; `ReadSamples` answers at most
/// `SAMPLES_READ_MAX` samples of about 30 bytes each.
pub const MESSAGE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most elements of one array value.
pub const ARRAY_LENGTH_MAX: usize = 2 * SAMPLES_READ_MAX;
const _: () = assert!(SAMPLES_READ_MAX * 32 <= MESSAGE_BYTES_MAX);
/// How often the watchdog looks at the time of the last client contact.
const WATCHDOG_TICK: Duration = Duration::from_millis(200);

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Host to listen on and to advertise in endpoint URLs (e.g. `127.0.0.1`).
    pub host: String,
    /// TCP port; 0 picks a free one (see [`DeviceServer::local_addr`]).
    pub port: u16,
    /// Manufacturer shown under `Identification`.
    pub manufacturer: String,
    /// Put a running device into its safe state after this long without client contact;
    /// `None` disables the watchdog.
    pub watchdog: Option<Duration>,
    /// Directory for the OPC UA stack's PKI files (certificates are not used: the endpoint
    /// has security policy None, for loopback and isolated device networks only).
    pub pki_dir: PathBuf,
}

/// A running server.
pub struct DeviceServer {
    handle: ServerHandle,
    local_addr: SocketAddr,
    host: String,
    run: JoinHandle<Result<(), String>>,
    watchdog: Option<JoinHandle<()>>,
}

impl DeviceServer {
    /// Builds the node model for `device` and starts serving it on `options.host:port`.
    /// Must be called inside a tokio runtime.
    pub async fn start(
        device: SharedDevice,
        options: &ServerOptions,
    ) -> Result<DeviceServer, OpcUaError> {
        let addr = format!("{}:{}", options.host, options.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|e| OpcUaError::Bind {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        let local_addr = listener.local_addr().map_err(|e| OpcUaError::Bind {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
        let info = lock(&device).info();
        let (server, handle) = ServerBuilder::new()
            .application_name(format!("cellops device {}", info.id))
            .application_uri(format!("urn:cellops:device:{}", info.id))
            .product_uri("urn:cellops")
            .host(options.host.clone())
            .port(local_addr.port())
            .pki_dir(options.pki_dir.clone())
            .create_sample_keypair(false)
            .add_endpoint(
                "none",
                ServerEndpoint::new_none("/", &[ANONYMOUS_USER_TOKEN_ID.to_string()]),
            )
            .discovery_urls(vec!["/".to_owned()])
            .max_message_size(MESSAGE_BYTES_MAX)
            .max_array_length(ARRAY_LENGTH_MAX)
            .with_node_manager(simple_node_manager(
                NamespaceMetadata {
                    namespace_uri: model::NAMESPACE_URI.to_owned(),
                    ..Default::default()
                },
                "cellops-device",
            ))
            .build()
            .map_err(OpcUaError::Config)?;
        let manager = handle
            .node_managers()
            .get_of_type::<SimpleNodeManager>()
            .ok_or_else(|| OpcUaError::Config("the simple node manager is missing".into()))?;
        let ns = handle
            .get_namespace_index(model::NAMESPACE_URI)
            .ok_or_else(|| OpcUaError::Config("the cellops namespace is not registered".into()))?;

        let shared = Shared {
            device,
            contact: Arc::new(Mutex::new(Instant::now())),
            last_error: Arc::new(Mutex::new(String::new())),
            latest: Arc::new(Mutex::new(Latest::new(info.signals.len()))),
        };
        {
            let space = manager.address_space();
            let mut space = space.write();
            add_nodes(&mut space, ns, &info, &options.manufacturer);
        }
        register_reads(&manager, ns, &info, &shared);
        register_methods(&manager, ns, &shared);

        let run = tokio::spawn(server.run_with(listener));
        let watchdog = options
            .watchdog
            .map(|limit| tokio::spawn(watch(shared.clone(), limit)));
        tracing::info!(device = %info.id, %local_addr, "OPC UA device server listening");
        Ok(DeviceServer {
            handle,
            local_addr,
            host: options.host.clone(),
            run,
            watchdog,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The endpoint URL clients connect to, `opc.tcp://host:port/`.
    pub fn endpoint_url(&self) -> String {
        format!("opc.tcp://{}:{}/", self.host, self.local_addr.port())
    }

    /// Waits until the server stops (after [`DeviceServer::stop`] or a fatal error).
    pub async fn wait(self) -> Result<(), String> {
        let result = self.run.await.map_err(|e| e.to_string())?;
        if let Some(w) = self.watchdog {
            w.abort();
        }
        result
    }

    /// Stops the server and waits for it to close its connections.
    pub async fn stop(self) {
        self.handle.cancel();
        let _ = self.wait().await;
    }
}

/// State the callbacks share.
#[derive(Clone)]
struct Shared {
    device: SharedDevice,
    /// Last time a client read a value or called a method.
    contact: Arc<Mutex<Instant>>,
    /// Why the last method call was refused.
    last_error: Arc<Mutex<String>>,
    /// Newest value per signal among the samples the server has seen.
    latest: Arc<Mutex<Latest>>,
}

impl Shared {
    fn touch(&self) {
        *lock(&self.contact) = Instant::now();
    }

    fn fail(&self, code: StatusCode, e: &DeviceError) -> StatusCode {
        let text = match e {
            DeviceError::Rejected { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        *lock(&self.last_error) = text;
        code
    }

    fn refuse(&self, reason: String) -> StatusCode {
        *lock(&self.last_error) = reason;
        StatusCode::BadInvalidArgument
    }
}

/// Newest value per signal, and the highest `seq` a client acknowledged by reading past it.
struct Latest {
    values: Vec<Option<(u64, f64)>>,
    acked_seq: u64,
}

impl Latest {
    fn new(signals: usize) -> Latest {
        Latest {
            values: vec![None; signals],
            acked_seq: 0,
        }
    }

    fn see(&mut self, samples: &[Sample]) {
        for s in samples {
            if let Some(slot) = self.values.get_mut(usize::from(s.signal))
                && slot.is_none_or(|(seq, _)| seq < s.seq)
            {
                *slot = Some((s.seq, s.value));
            }
        }
    }
}

/// Locks a mutex; a poisoned one (a panic in another callback) still holds a usable device.
fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn id(ns: u16, s: &str) -> NodeId {
    NodeId::new(ns, s)
}

fn object(space: &mut AddressSpace, ns: u16, node: &str, name: &str, parent: &NodeId) {
    ObjectBuilder::new(&id(ns, node), name, name)
        .component_of(parent.clone())
        .insert(space);
}

/// A variable under `parent`; an array value makes it an array variable (value rank 1).
fn variable(
    space: &mut AddressSpace,
    ns: u16,
    node: &str,
    name: &str,
    parent: &str,
    value: Variant,
    data_type: DataTypeId,
) {
    let rank = if matches!(value, Variant::Array(_)) {
        1
    } else {
        -1
    };
    VariableBuilder::new(&id(ns, node), name, name)
        .value(value)
        .data_type(data_type)
        .value_rank(rank)
        .component_of(id(ns, parent))
        .insert(space);
}

fn arg(name: &str, data_type: DataTypeId, array: bool) -> Argument {
    Argument {
        name: UAString::from(name),
        data_type: data_type.into(),
        value_rank: if array { 1 } else { -1 },
        array_dimensions: None,
        description: LocalizedText::null(),
    }
}

/// Builds the objects, variables and methods of the node model.
fn add_nodes(space: &mut AddressSpace, ns: u16, info: &DeviceInfo, manufacturer: &str) {
    use model::*;
    ObjectBuilder::new(&id(ns, DEVICE), info.id.as_str(), info.id.as_str())
        .organized_by(ObjectId::ObjectsFolder)
        .insert(space);
    let device = id(ns, DEVICE);
    object(space, ns, IDENTIFICATION, "Identification", &device);
    let text = |s: &str| Variant::from(s.to_string());
    variable(
        space,
        ns,
        ASSET_ID,
        "AssetId",
        IDENTIFICATION,
        text(&info.id),
        DataTypeId::String,
    );
    variable(
        space,
        ns,
        MANUFACTURER,
        "Manufacturer",
        IDENTIFICATION,
        text(manufacturer),
        DataTypeId::String,
    );
    variable(
        space,
        ns,
        MODEL,
        "Model",
        IDENTIFICATION,
        text(&info.model),
        DataTypeId::String,
    );
    object(space, ns, FUNCTIONAL_UNIT_SET, "FunctionalUnitSet", &device);
    object(space, ns, UNIT, "CultureUnit", &id(ns, FUNCTIONAL_UNIT_SET));
    let unit = id(ns, UNIT);

    object(space, ns, STATE_MACHINE, "FunctionalUnitState", &unit);
    variable(
        space,
        ns,
        CURRENT_STATE,
        "CurrentState",
        STATE_MACHINE,
        text("Idle"),
        DataTypeId::String,
    );
    variable(
        space,
        ns,
        LAST_ERROR,
        "LastError",
        STATE_MACHINE,
        text(""),
        DataTypeId::String,
    );
    MethodBuilder::new(&id(ns, START_PROGRAM), "StartProgram", "StartProgram")
        .component_of(id(ns, STATE_MACHINE))
        .input_args(
            space,
            &id(
                ns,
                "CultureUnit.FunctionalUnitState.StartProgram.InputArguments",
            ),
            &[
                arg("ProgramTemplateId", DataTypeId::String, false),
                arg("SupervisoryJobId", DataTypeId::String, false),
                arg("SupervisoryTaskId", DataTypeId::String, false),
                arg("DurationHours", DataTypeId::Double, false),
                arg("SetPointNames", DataTypeId::String, true),
                arg("SetPointValues", DataTypeId::Double, true),
            ],
        )
        .output_args(
            space,
            &id(
                ns,
                "CultureUnit.FunctionalUnitState.StartProgram.OutputArguments",
            ),
            &[arg("DeviceProgramRunId", DataTypeId::String, false)],
        )
        .insert(space);
    MethodBuilder::new(&id(ns, STOP), "Stop", "Stop")
        .component_of(id(ns, STATE_MACHINE))
        .input_args(
            space,
            &id(ns, "CultureUnit.FunctionalUnitState.Stop.InputArguments"),
            &[arg("Reason", DataTypeId::String, false)],
        )
        .insert(space);

    object(space, ns, FUNCTION_SET, "FunctionSet", &unit);
    let names = info.signals.iter().map(|s| s.name.clone());
    let units = info.signals.iter().map(|s| s.unit.clone());
    variable(
        space,
        ns,
        SIGNAL_NAMES,
        "SignalNames",
        FUNCTION_SET,
        strings(names),
        DataTypeId::String,
    );
    variable(
        space,
        ns,
        SIGNAL_UNITS,
        "SignalUnits",
        FUNCTION_SET,
        strings(units),
        DataTypeId::String,
    );
    for signal in &info.signals {
        let function = format!("{FUNCTION_SET}.{}", signal.name);
        object(space, ns, &function, &signal.name, &id(ns, FUNCTION_SET));
        variable(
            space,
            ns,
            &sensor_value(&signal.name),
            "SensorValue",
            &function,
            Variant::from(0.0),
            DataTypeId::Double,
        );
    }
    variable(
        space,
        ns,
        TARGET_NAMES,
        "TargetValueNames",
        FUNCTION_SET,
        strings([]),
        DataTypeId::String,
    );
    variable(
        space,
        ns,
        TARGET_VALUES,
        "TargetValues",
        FUNCTION_SET,
        doubles([]),
        DataTypeId::Double,
    );
    MethodBuilder::new(
        &id(ns, SET_TARGET_VALUES),
        "SetTargetValues",
        "SetTargetValues",
    )
    .component_of(id(ns, FUNCTION_SET))
    .input_args(
        space,
        &id(ns, "CultureUnit.FunctionSet.SetTargetValues.InputArguments"),
        &[
            arg("Names", DataTypeId::String, true),
            arg("Values", DataTypeId::Double, true),
        ],
    )
    .insert(space);

    object(space, ns, PROGRAM_MANAGER, "ProgramManager", &unit);
    object(
        space,
        ns,
        ACTIVE_PROGRAM,
        "ActiveProgram",
        &id(ns, PROGRAM_MANAGER),
    );
    variable(
        space,
        ns,
        JOB_ID,
        "SupervisoryJobId",
        ACTIVE_PROGRAM,
        text(""),
        DataTypeId::String,
    );
    variable(
        space,
        ns,
        TASK_ID,
        "SupervisoryTaskId",
        ACTIVE_PROGRAM,
        text(""),
        DataTypeId::String,
    );
    variable(
        space,
        ns,
        CURRENT_RUNTIME,
        "CurrentRuntime",
        ACTIVE_PROGRAM,
        Variant::from(0.0),
        DataTypeId::Double,
    );
    object(space, ns, RESULT_SET, "ResultSet", &id(ns, PROGRAM_MANAGER));
    variable(
        space,
        ns,
        RESULT_NAMES,
        "ResultNames",
        RESULT_SET,
        strings([]),
        DataTypeId::String,
    );
    variable(
        space,
        ns,
        RESULT_VALUES,
        "ResultValues",
        RESULT_SET,
        doubles([]),
        DataTypeId::Double,
    );

    object(space, ns, ALARMS, "Alarms", &unit);
    variable(
        space,
        ns,
        ALARM_CODES,
        "Codes",
        ALARMS,
        strings([]),
        DataTypeId::String,
    );
    variable(
        space,
        ns,
        ALARM_MESSAGES,
        "Messages",
        ALARMS,
        strings([]),
        DataTypeId::String,
    );
    variable(
        space,
        ns,
        ALARM_TIMES,
        "Times",
        ALARMS,
        Variant::from(Vec::<DateTime>::new()),
        DataTypeId::DateTime,
    );
    variable(
        space,
        ns,
        DEVICE_TIME,
        "DeviceTime",
        UNIT,
        Variant::from(DateTime::null()),
        DataTypeId::DateTime,
    );
    variable(
        space,
        ns,
        LAST_SAMPLE_SEQ,
        "LastSampleSeq",
        UNIT,
        Variant::from(0u64),
        DataTypeId::UInt64,
    );
    MethodBuilder::new(&id(ns, READ_SAMPLES), "ReadSamples", "ReadSamples")
        .component_of(unit.clone())
        .input_args(
            space,
            &id(ns, "CultureUnit.ReadSamples.InputArguments"),
            &[
                arg("AfterSeq", DataTypeId::UInt64, false),
                arg("Max", DataTypeId::UInt32, false),
            ],
        )
        .output_args(
            space,
            &id(ns, "CultureUnit.ReadSamples.OutputArguments"),
            &[
                arg("Seqs", DataTypeId::UInt64, true),
                arg("TimesUnixMs", DataTypeId::Int64, true),
                arg("Signals", DataTypeId::UInt16, true),
                arg("Values", DataTypeId::Double, true),
            ],
        )
        .insert(space);
}

/// The value of one status-derived variable.
type StatusView = fn(&DeviceStatus) -> Variant;

fn status_views() -> Vec<(&'static str, StatusView)> {
    use model::*;
    vec![
        (CURRENT_STATE, |s| {
            Variant::from(state_name(s.state).to_string())
        }),
        (JOB_ID, |s| {
            Variant::from(
                s.program
                    .as_ref()
                    .map_or(String::new(), |p| p.batch.clone()),
            )
        }),
        (TASK_ID, |s| {
            Variant::from(s.program.as_ref().map_or(String::new(), |p| p.step.clone()))
        }),
        (CURRENT_RUNTIME, |s| {
            Variant::from(s.program_elapsed_hours * 3_600_000.0)
        }),
        (TARGET_NAMES, |s| {
            strings(s.set_points.keys().map(|k| k.name().to_string()))
        }),
        (TARGET_VALUES, |s| doubles(s.set_points.values().copied())),
        (RESULT_NAMES, |s| strings(s.results.keys().cloned())),
        (RESULT_VALUES, |s| doubles(s.results.values().copied())),
        (ALARM_CODES, |s| {
            strings(s.alarms.iter().map(|a| a.code.clone()))
        }),
        (ALARM_MESSAGES, |s| {
            strings(s.alarms.iter().map(|a| a.message.clone()))
        }),
        (ALARM_TIMES, |s| {
            Variant::from(
                s.alarms
                    .iter()
                    .map(|a| to_ua_time(a.at))
                    .collect::<Vec<_>>(),
            )
        }),
        (DEVICE_TIME, |s| Variant::from(to_ua_time(s.device_time))),
        (LAST_SAMPLE_SEQ, |s| Variant::from(s.last_sample_seq)),
    ]
}

fn device_status(shared: &Shared) -> Result<DeviceStatus, StatusCode> {
    shared.touch();
    lock(&shared.device)
        .status()
        .map_err(|e| shared.fail(StatusCode::BadCommunicationError, &e))
}

fn register_reads(manager: &SimpleNodeManager, ns: u16, info: &DeviceInfo, shared: &Shared) {
    for (node, view) in status_views() {
        let shared = shared.clone();
        manager
            .inner()
            .add_read_callback(id(ns, node), move |_, _, _| {
                let status = device_status(&shared)?;
                Ok(DataValue::new_now(view(&status)))
            });
    }
    let s = shared.clone();
    manager
        .inner()
        .add_read_callback(id(ns, model::LAST_ERROR), move |_, _, _| {
            s.touch();
            Ok(DataValue::new_now(Variant::from(
                lock(&s.last_error).clone(),
            )))
        });
    for (index, signal) in info.signals.iter().enumerate() {
        let shared = shared.clone();
        manager.inner().add_read_callback(
            id(ns, &model::sensor_value(&signal.name)),
            move |_, _, _| {
                shared.touch();
                let value = latest_value(&shared, index)?;
                Ok(DataValue::new_now(Variant::from(value.unwrap_or(f64::NAN))))
            },
        );
    }
}

/// Newest value of signal `index`: peeks at the samples not yet acknowledged (reading from
/// the acknowledged `seq` forgets nothing a client still needs).
fn latest_value(shared: &Shared, index: usize) -> Result<Option<f64>, StatusCode> {
    let mut latest = lock(&shared.latest);
    let unread = lock(&shared.device)
        .read_samples(latest.acked_seq, SAMPLES_READ_MAX)
        .map_err(|e| shared.fail(StatusCode::BadCommunicationError, &e))?;
    latest.see(&unread);
    Ok(latest.values.get(index).copied().flatten().map(|(_, v)| v))
}

fn register_methods(manager: &SimpleNodeManager, ns: u16, shared: &Shared) {
    let s = shared.clone();
    manager
        .inner()
        .add_method_callback(id(ns, model::START_PROGRAM), move |args| {
            s.touch();
            let program = parse_program(args).map_err(|reason| s.refuse(reason))?;
            lock(&s.device)
                .start_program(&program)
                .map_err(|e| s.fail(StatusCode::BadInvalidState, &e))?;
            let run_id = format!("{}/{}", program.reference.batch, program.reference.step);
            Ok(vec![Variant::from(run_id)])
        });
    let s = shared.clone();
    manager
        .inner()
        .add_method_callback(id(ns, model::STOP), move |args| {
            s.touch();
            let Some(Variant::String(reason)) = args.first() else {
                return Err(s.refuse("Stop needs Reason (String)".into()));
            };
            lock(&s.device)
                .safe_state(reason.as_ref())
                .map_err(|e| s.fail(StatusCode::BadInvalidState, &e))?;
            Ok(Vec::new())
        });
    let s = shared.clone();
    manager
        .inner()
        .add_method_callback(id(ns, model::SET_TARGET_VALUES), move |args| {
            s.touch();
            let (Some(names), Some(values)) = (args.first(), args.get(1)) else {
                return Err(s.refuse("SetTargetValues needs Names and Values".into()));
            };
            let set_points = parse_set_points(names, values).map_err(|r| s.refuse(r))?;
            lock(&s.device)
                .set_points(&set_points)
                .map_err(|e| s.fail(StatusCode::BadInvalidState, &e))?;
            Ok(Vec::new())
        });
    let s = shared.clone();
    manager
        .inner()
        .add_method_callback(id(ns, model::READ_SAMPLES), move |args| {
            s.touch();
            let (Some(Variant::UInt64(after)), Some(Variant::UInt32(max))) =
                (args.first(), args.get(1))
            else {
                return Err(s.refuse("ReadSamples needs AfterSeq (UInt64) and Max (UInt32)".into()));
            };
            let max = (*max as usize).min(SAMPLES_READ_MAX);
            let mut latest = lock(&s.latest);
            let samples = lock(&s.device)
                .read_samples(*after, max)
                .map_err(|e| s.fail(StatusCode::BadCommunicationError, &e))?;
            latest.acked_seq = latest.acked_seq.max(*after);
            latest.see(&samples);
            Ok(vec![
                Variant::from(samples.iter().map(|x| x.seq).collect::<Vec<u64>>()),
                Variant::from(samples.iter().map(|x| x.at_unix_ms).collect::<Vec<i64>>()),
                Variant::from(samples.iter().map(|x| x.signal).collect::<Vec<u16>>()),
                Variant::from(samples.iter().map(|x| x.value).collect::<Vec<f64>>()),
            ])
        });
}

/// Parses `StartProgram`'s input arguments.
fn parse_program(args: &[Variant]) -> Result<Program, String> {
    let text = |i: usize, name: &str| match args.get(i) {
        Some(Variant::String(s)) => Ok(s.as_ref().to_string()),
        _ => Err(format!(
            "StartProgram argument {i} ({name}) must be a String"
        )),
    };
    let operation_name = text(0, "ProgramTemplateId")?;
    let operation = DeviceOperation::parse(&operation_name).ok_or_else(|| {
        format!("ProgramTemplateId `{operation_name}` is not a known device operation")
    })?;
    let batch = text(1, "SupervisoryJobId")?;
    let step = text(2, "SupervisoryTaskId")?;
    let Some(Variant::Double(duration_hours)) = args.get(3) else {
        return Err("StartProgram argument 3 (DurationHours) must be a Double".into());
    };
    let (Some(names), Some(values)) = (args.get(4), args.get(5)) else {
        return Err("StartProgram needs SetPointNames and SetPointValues".into());
    };
    Ok(Program {
        reference: ProgramRef { batch, step },
        operation,
        set_points: parse_set_points(names, values)?,
        duration_hours: *duration_hours,
    })
}

/// Parses parallel name and value arrays into set points.
fn parse_set_points(names: &Variant, values: &Variant) -> Result<BTreeMap<SetPoint, f64>, String> {
    let names = as_strings(names).ok_or("set point names must be a String array")?;
    let values = as_doubles(values).ok_or("set point values must be a Double array")?;
    if names.len() != values.len() {
        return Err(format!(
            "{} set point names but {} values; give one value per name",
            names.len(),
            values.len()
        ));
    }
    let mut out = BTreeMap::new();
    for (name, value) in names.iter().zip(values) {
        let point = SetPoint::parse(name).ok_or_else(|| {
            format!(
                "set point `{name}` is unknown; known: {}",
                SetPoint::known_names()
            )
        })?;
        out.insert(point, value);
    }
    Ok(out)
}

/// Puts a running device into its safe state when no client was in contact for `limit`.
async fn watch(shared: Shared, limit: Duration) {
    let mut tick = tokio::time::interval(WATCHDOG_TICK);
    loop {
        tick.tick().await;
        let silent = lock(&shared.contact).elapsed();
        if silent < limit {
            continue;
        }
        let mut device = lock(&shared.device);
        let running = device
            .status()
            .is_ok_and(|s| s.state == DeviceState::Running);
        if running {
            let reason = format!(
                "controller watchdog: no client contact for {:.1} s (limit {:.1} s); control lost",
                silent.as_secs_f64(),
                limit.as_secs_f64()
            );
            tracing::warn!(%reason, "putting the device into its safe state");
            if let Err(e) = device.safe_state(&reason) {
                tracing::error!(error = %e, "the watchdog could not put the device into its safe state");
            }
        }
    }
}
