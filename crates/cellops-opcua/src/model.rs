//! The node model: the one place that names the OPC UA nodes of a culture device.
//!
//! It follows the ideas of the OPC Foundation LADS companion specification (OPC 30500): a
//! device with `Identification` and a `FunctionalUnitSet`; one functional unit
//! (`CultureUnit`) with a state machine (`FunctionalUnitState` with `CurrentState`,
//! `StartProgram`, `Stop`), a `FunctionSet` of sensor and control functions (`SensorValue`,
//! `TargetValue`) and a `ProgramManager` with the `ActiveProgram` and a `ResultSet`.
//! It does not import the LADS type nodeset: every node is a plain object, variable or method
//! in one namespace, named by string node ids, so an independent server (the Python peer in
//! `tests/peer/`) can build the same model from `docs/devices.md` alone.
//!
//! Two additions LADS does not have: `ReadSamples` (resumable, sequence-numbered telemetry,
//! so a controller backfills after a disconnect without gaps or duplicates) and `LastError`
//! (the reason of the last refused method call; OPC UA status codes carry no text).

use cellops_device::DeviceState;

/// Namespace URI of every cellops device node; clients look its index up in the server's
/// `NamespaceArray`, so the index may differ between servers.
pub const NAMESPACE_URI: &str = "urn:cellops:culture-device";

/// The device object (organized by the Objects folder).
pub const DEVICE: &str = "Device";
/// Folder of identification properties.
pub const IDENTIFICATION: &str = "Device.Identification";
/// String: the device id (asset number).
pub const ASSET_ID: &str = "Device.Identification.AssetId";
/// String: manufacturer.
pub const MANUFACTURER: &str = "Device.Identification.Manufacturer";
/// String: model.
pub const MODEL: &str = "Device.Identification.Model";
/// Folder of functional units.
pub const FUNCTIONAL_UNIT_SET: &str = "Device.FunctionalUnitSet";

/// The functional unit that runs culture programs.
pub const UNIT: &str = "CultureUnit";
/// The unit's state machine object; `StartProgram` and `Stop` are its methods.
pub const STATE_MACHINE: &str = "CultureUnit.FunctionalUnitState";
/// String: `Idle`, `Running`, `Completed`, `Safe` or `Faulted`.
pub const CURRENT_STATE: &str = "CultureUnit.FunctionalUnitState.CurrentState";
/// Method on [`STATE_MACHINE`]. In: `ProgramTemplateId` String (the operation, e.g.
/// `expansion`), `SupervisoryJobId` String (batch), `SupervisoryTaskId` String (step),
/// `DurationHours` Double, `SetPointNames` String[], `SetPointValues` Double[].
/// Out: `DeviceProgramRunId` String.
pub const START_PROGRAM: &str = "CultureUnit.FunctionalUnitState.StartProgram";
/// Method on [`STATE_MACHINE`]: stop into the safe state. In: `Reason` String.
pub const STOP: &str = "CultureUnit.FunctionalUnitState.Stop";
/// String: why the last method call was refused (empty when none was).
pub const LAST_ERROR: &str = "CultureUnit.FunctionalUnitState.LastError";

/// The unit's functions (sensors and controllers).
pub const FUNCTION_SET: &str = "CultureUnit.FunctionSet";
/// String[]: signal names with unit suffix, in `Sample::signal` order.
pub const SIGNAL_NAMES: &str = "CultureUnit.FunctionSet.SignalNames";
/// String[]: display units, same order.
pub const SIGNAL_UNITS: &str = "CultureUnit.FunctionSet.SignalUnits";
/// String[]: names of the set points in force (`temperature_c`, ...).
pub const TARGET_NAMES: &str = "CultureUnit.FunctionSet.TargetValueNames";
/// Double[]: their values, same order.
pub const TARGET_VALUES: &str = "CultureUnit.FunctionSet.TargetValues";
/// Method on [`FUNCTION_SET`]: change set points. In: `Names` String[], `Values` Double[].
pub const SET_TARGET_VALUES: &str = "CultureUnit.FunctionSet.SetTargetValues";

/// The program manager.
pub const PROGRAM_MANAGER: &str = "CultureUnit.ProgramManager";
/// The active (or last) program.
pub const ACTIVE_PROGRAM: &str = "CultureUnit.ProgramManager.ActiveProgram";
/// String: batch of the active or last program (empty: none).
pub const JOB_ID: &str = "CultureUnit.ProgramManager.ActiveProgram.SupervisoryJobId";
/// String: recipe step of the active or last program (empty: none).
pub const TASK_ID: &str = "CultureUnit.ProgramManager.ActiveProgram.SupervisoryTaskId";
/// Double: how long the program has run, milliseconds (LADS `Duration`).
pub const CURRENT_RUNTIME: &str = "CultureUnit.ProgramManager.ActiveProgram.CurrentRuntime";
/// Results of the last completed program.
pub const RESULT_SET: &str = "CultureUnit.ProgramManager.ResultSet";
/// String[]: result names with unit suffix.
pub const RESULT_NAMES: &str = "CultureUnit.ProgramManager.ResultSet.ResultNames";
/// Double[]: result values, same order.
pub const RESULT_VALUES: &str = "CultureUnit.ProgramManager.ResultSet.ResultValues";

/// Active alarms.
pub const ALARMS: &str = "CultureUnit.Alarms";
/// String[]: alarm codes.
pub const ALARM_CODES: &str = "CultureUnit.Alarms.Codes";
/// String[]: alarm messages, same order.
pub const ALARM_MESSAGES: &str = "CultureUnit.Alarms.Messages";
/// DateTime[]: when each alarm was raised, same order.
pub const ALARM_TIMES: &str = "CultureUnit.Alarms.Times";

/// DateTime: the device's clock.
pub const DEVICE_TIME: &str = "CultureUnit.DeviceTime";
/// UInt64: sequence number of the newest sample the device holds (0: none).
pub const LAST_SAMPLE_SEQ: &str = "CultureUnit.LastSampleSeq";
/// Method on [`UNIT`]. In: `AfterSeq` UInt64, `Max` UInt32. Out: `Seqs` UInt64[],
/// `TimesUnixMs` Int64[], `Signals` UInt16[], `Values` Double[] (same length, oldest first).
pub const READ_SAMPLES: &str = "CultureUnit.ReadSamples";

/// Node id of signal `name`'s current value (`CultureUnit.FunctionSet.<name>.SensorValue`).
pub fn sensor_value(name: &str) -> String {
    format!("{FUNCTION_SET}.{name}.SensorValue")
}

/// The `CurrentState` text of a device state.
pub fn state_name(state: DeviceState) -> &'static str {
    match state {
        DeviceState::Idle => "Idle",
        DeviceState::Running => "Running",
        DeviceState::Completed => "Completed",
        DeviceState::Safe => "Safe",
        DeviceState::Faulted => "Faulted",
    }
}

/// The device state named by a `CurrentState` text.
pub fn parse_state(name: &str) -> Option<DeviceState> {
    Some(match name {
        "Idle" => DeviceState::Idle,
        "Running" => DeviceState::Running,
        "Completed" => DeviceState::Completed,
        "Safe" => DeviceState::Safe,
        "Faulted" => DeviceState::Faulted,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_round_trip() {
        for state in [
            DeviceState::Idle,
            DeviceState::Running,
            DeviceState::Completed,
            DeviceState::Safe,
            DeviceState::Faulted,
        ] {
            assert_eq!(parse_state(state_name(state)), Some(state));
        }
        assert_eq!(parse_state("running"), None);
    }
}
