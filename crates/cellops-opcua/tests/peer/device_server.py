#!/usr/bin/env python3
"""An independent OPC UA culture device for cellops's adapter tests.

Written with Python asyncua from the node model in docs/devices.md ("OPC UA node model"),
not from the Rust server: if the Rust client only worked against the Rust server, this peer
would catch it. It simulates a small device: three signals sampled every --period seconds
(wall time), a program that completes after its duration (hours of wall time times
--hours-per-second), set points, alarms and a stop into the safe state.

Usage: device_server.py [--port N] [--asset-id ID] [--garbage KIND]
Prints "LISTENING <endpoint-url>" on stdout once it serves. --garbage makes it answer
wrongly on purpose: "state" (unknown CurrentState), "samples" (sequence numbers that go
backwards), "types" (LastSampleSeq as a String).
"""

import argparse
import asyncio
import datetime
import socket
import sys

from asyncua import Server, ua

NAMESPACE_URI = "urn:cellops:culture-device"
SIGNALS = [("temperature_c", "°C"), ("ph", "pH"), ("do_percent", "%")]
SET_POINTS = {
    "temperature_c", "co2_percent", "o2_percent", "do_percent", "ph", "agitation_rpm",
    "perfusion_ml_per_day", "feed_ml_per_day", "culture_volume_ml", "medium_exchange_percent",
    "centrifuge_g", "cooling_rate_c_per_min", "end_temperature_c",
}
OPERATIONS = {
    "selection", "activation", "transduction", "electroporation", "expansion",
    "adherent_culture", "medium_exchange", "passage", "depletion", "harvest", "formulation",
    "controlled_rate_freeze",
}
SAMPLES_KEPT_MAX = 100_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now():
    return datetime.datetime.now(datetime.timezone.utc)


class Device:
    """The simulated device state; nodes are refreshed from it after every change."""

    def __init__(self, args):
        self.args = args
        self.state = "Idle"
        self.job = ""
        self.task = ""
        self.started = None
        self.duration_h = 0.0
        self.targets = {}
        self.results = {}
        self.alarms = []  # (code, message, time)
        self.samples = []  # (seq, unix_ms, signal, value)
        self.seq = 0
        self.last_error = ""
        self.nodes = {}

    def runtime_h(self):
        if self.started is None:
            return 0.0
        wall_s = (now() - self.started).total_seconds()
        return wall_s * self.args.hours_per_second

    def tick(self):
        if self.state == "Running" and self.runtime_h() >= self.duration_h:
            self.state = "Completed"
            self.results = {"runtime_hours": self.duration_h}
        ms = int(now().timestamp() * 1000)
        base = [self.targets.get("temperature_c", 37.0), self.targets.get("ph", 7.2), 40.0]
        for i, value in enumerate(base):
            self.seq += 1
            self.samples.append((self.seq, ms, i, value + 0.01 * (self.seq % 7)))
        del self.samples[:-SAMPLES_KEPT_MAX]


def v(value, kind):
    return ua.Variant(value, kind)


async def refresh(dev):
    n = dev.nodes
    state = "Exploded" if dev.args.garbage == "state" else dev.state
    await n["CurrentState"].write_value(v(state, ua.VariantType.String))
    await n["LastError"].write_value(v(dev.last_error, ua.VariantType.String))
    await n["SupervisoryJobId"].write_value(v(dev.job, ua.VariantType.String))
    await n["SupervisoryTaskId"].write_value(v(dev.task, ua.VariantType.String))
    await n["CurrentRuntime"].write_value(v(dev.runtime_h() * 3_600_000.0, ua.VariantType.Double))
    await n["TargetValueNames"].write_value(v(list(dev.targets.keys()), ua.VariantType.String))
    await n["TargetValues"].write_value(v(list(dev.targets.values()), ua.VariantType.Double))
    await n["ResultNames"].write_value(v(list(dev.results.keys()), ua.VariantType.String))
    await n["ResultValues"].write_value(v(list(dev.results.values()), ua.VariantType.Double))
    await n["Codes"].write_value(v([a[0] for a in dev.alarms], ua.VariantType.String))
    await n["Messages"].write_value(v([a[1] for a in dev.alarms], ua.VariantType.String))
    await n["Times"].write_value(v([a[2] for a in dev.alarms], ua.VariantType.DateTime))
    await n["DeviceTime"].write_value(v(now(), ua.VariantType.DateTime))
    if dev.args.garbage == "types":
        await n["LastSampleSeq"].write_value(v(str(dev.seq), ua.VariantType.String))
    else:
        await n["LastSampleSeq"].write_value(v(dev.seq, ua.VariantType.UInt64))
    latest = {}
    for _, _, signal, value in dev.samples[-len(SIGNALS):]:
        latest[signal] = value
    for i, (name, _) in enumerate(SIGNALS):
        if i in latest:
            await n["sensor:" + name].write_value(v(latest[i], ua.VariantType.Double))


class Refused(Exception):
    """A method call the device refuses: answered with `code`, the reason in LastError."""

    def __init__(self, reason, code=ua.StatusCodes.BadInvalidArgument):
        super().__init__(reason)
        self.reason = reason
        self.code = code


def refuse(dev, reason, code=ua.StatusCodes.BadInvalidArgument):
    raise Refused(reason, code)


def guarded(dev, method):
    """asyncua answers any exception with BadUnexpectedError; a refusal must return its
    own status code, with LastError written before the answer."""

    async def call(parent, *args):
        try:
            return await method(parent, *args)
        except Refused as r:
            dev.last_error = r.reason
            await dev.nodes["LastError"].write_value(v(r.reason, ua.VariantType.String))
            return ua.StatusCode(r.code)

    return call


def parse_set_points(dev, names, values):
    if not isinstance(names, list) or not isinstance(values, list):
        refuse(dev, "set point names and values must be arrays")
    if len(names) != len(values):
        refuse(dev, f"{len(names)} set point names but {len(values)} values")
    for name in names:
        if name not in SET_POINTS:
            refuse(dev, f"set point `{name}` is unknown")
    return dict(zip(names, values))


def make_methods(dev):
    async def start_program(parent, op, job, task, duration, names, values):
        if dev.state == "Running":
            refuse(dev, f"program {dev.task} is still running", ua.StatusCodes.BadInvalidState)
        if op.Value not in OPERATIONS:
            refuse(dev, f"ProgramTemplateId `{op.Value}` is not a known operation")
        if not duration.Value > 0:
            refuse(dev, "DurationHours must be > 0")
        dev.targets.update(parse_set_points(dev, names.Value or [], values.Value or []))
        dev.state, dev.job, dev.task = "Running", job.Value, task.Value
        dev.started, dev.duration_h, dev.results = now(), duration.Value, {}
        dev.last_error = ""
        await refresh(dev)
        return [v(f"{job.Value}/{task.Value}", ua.VariantType.String)]

    async def stop(parent, reason):
        dev.state, dev.started = "Safe", None
        dev.targets.pop("perfusion_ml_per_day", None)
        dev.alarms.append(("safe_state", reason.Value, now()))
        await refresh(dev)
        return []

    async def set_target_values(parent, names, values):
        if dev.state != "Running":
            refuse(dev, "no program is running", ua.StatusCodes.BadInvalidState)
        dev.targets.update(parse_set_points(dev, names.Value or [], values.Value or []))
        await refresh(dev)
        return []

    async def read_samples(parent, after, max_count):
        after, max_count = after.Value, max_count.Value
        dev.samples = [s for s in dev.samples if s[0] > after]
        chosen = dev.samples[:max_count]
        seqs = [s[0] for s in chosen]
        if dev.args.garbage == "samples" and len(seqs) >= 2:
            seqs[1] = seqs[0]
        return [
            v(seqs, ua.VariantType.UInt64),
            v([s[1] for s in chosen], ua.VariantType.Int64),
            v([s[2] for s in chosen], ua.VariantType.UInt16),
            v([s[3] for s in chosen], ua.VariantType.Double),
        ]

    return [guarded(dev, m) for m in (start_program, stop, set_target_values, read_samples)]


async def build(server, idx, dev):
    def nid(s):
        return ua.NodeId(s, idx)

    def qn(s):
        return ua.QualifiedName(s, idx)

    async def var(parent, node, name, value, kind):
        node_obj = await parent.add_variable(nid(node), qn(name), v(value, kind))
        dev.nodes[name] = node_obj
        return node_obj

    S, D = ua.VariantType.String, ua.VariantType.Double
    device = await server.nodes.objects.add_object(nid("Device"), qn(dev.args.asset_id))
    ident = await device.add_object(nid("Device.Identification"), qn("Identification"))
    await var(ident, "Device.Identification.AssetId", "AssetId", dev.args.asset_id, S)
    await var(ident, "Device.Identification.Manufacturer", "Manufacturer", "cellops test peer", S)
    await var(ident, "Device.Identification.Model", "Model", "python asyncua peer", S)
    fus = await device.add_object(nid("Device.FunctionalUnitSet"), qn("FunctionalUnitSet"))
    unit = await fus.add_object(nid("CultureUnit"), qn("CultureUnit"))
    sm = await unit.add_object(nid("CultureUnit.FunctionalUnitState"), qn("FunctionalUnitState"))
    await var(sm, "CultureUnit.FunctionalUnitState.CurrentState", "CurrentState", "Idle", S)
    await var(sm, "CultureUnit.FunctionalUnitState.LastError", "LastError", "", S)
    fs = await unit.add_object(nid("CultureUnit.FunctionSet"), qn("FunctionSet"))
    await var(fs, "CultureUnit.FunctionSet.SignalNames", "SignalNames", [s[0] for s in SIGNALS], S)
    await var(fs, "CultureUnit.FunctionSet.SignalUnits", "SignalUnits", [s[1] for s in SIGNALS], S)
    for name, _ in SIGNALS:
        function = await fs.add_object(nid(f"CultureUnit.FunctionSet.{name}"), qn(name))
        node = await function.add_variable(
            nid(f"CultureUnit.FunctionSet.{name}.SensorValue"), qn("SensorValue"), v(0.0, D))
        dev.nodes["sensor:" + name] = node
    await var(fs, "CultureUnit.FunctionSet.TargetValueNames", "TargetValueNames", [], S)
    await var(fs, "CultureUnit.FunctionSet.TargetValues", "TargetValues", [], D)
    pm = await unit.add_object(nid("CultureUnit.ProgramManager"), qn("ProgramManager"))
    ap = await pm.add_object(nid("CultureUnit.ProgramManager.ActiveProgram"), qn("ActiveProgram"))
    await var(ap, "CultureUnit.ProgramManager.ActiveProgram.SupervisoryJobId", "SupervisoryJobId", "", S)
    await var(ap, "CultureUnit.ProgramManager.ActiveProgram.SupervisoryTaskId", "SupervisoryTaskId", "", S)
    await var(ap, "CultureUnit.ProgramManager.ActiveProgram.CurrentRuntime", "CurrentRuntime", 0.0, D)
    rs = await pm.add_object(nid("CultureUnit.ProgramManager.ResultSet"), qn("ResultSet"))
    await var(rs, "CultureUnit.ProgramManager.ResultSet.ResultNames", "ResultNames", [], S)
    await var(rs, "CultureUnit.ProgramManager.ResultSet.ResultValues", "ResultValues", [], D)
    alarms = await unit.add_object(nid("CultureUnit.Alarms"), qn("Alarms"))
    await var(alarms, "CultureUnit.Alarms.Codes", "Codes", [], S)
    await var(alarms, "CultureUnit.Alarms.Messages", "Messages", [], S)
    await var(alarms, "CultureUnit.Alarms.Times", "Times", [], ua.VariantType.DateTime)
    await var(unit, "CultureUnit.DeviceTime", "DeviceTime", now(), ua.VariantType.DateTime)
    if dev.args.garbage == "types":
        await var(unit, "CultureUnit.LastSampleSeq", "LastSampleSeq", "0", ua.VariantType.String)
    else:
        await var(unit, "CultureUnit.LastSampleSeq", "LastSampleSeq", 0, ua.VariantType.UInt64)

    start_program, stop, set_target_values, read_samples = make_methods(dev)
    T = ua.VariantType
    await sm.add_method(nid("CultureUnit.FunctionalUnitState.StartProgram"), qn("StartProgram"),
                        start_program, [T.String, T.String, T.String, T.Double, T.String, T.Double],
                        [T.String])
    await sm.add_method(nid("CultureUnit.FunctionalUnitState.Stop"), qn("Stop"), stop, [T.String], [])
    await fs.add_method(nid("CultureUnit.FunctionSet.SetTargetValues"), qn("SetTargetValues"),
                        set_target_values, [T.String, T.Double], [])
    await unit.add_method(nid("CultureUnit.ReadSamples"), qn("ReadSamples"), read_samples,
                          [T.UInt64, T.UInt32], [T.UInt64, T.Int64, T.UInt16, T.Double])


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--asset-id", default="peer-1")
    parser.add_argument("--period", type=float, default=0.05)
    parser.add_argument("--hours-per-second", type=float, default=1.0)
    parser.add_argument("--garbage", choices=["state", "samples", "types"])
    args = parser.parse_args()
    port = args.port or free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/"

    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    server.set_server_name("cellops asyncua test peer")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(NAMESPACE_URI)
    dev = Device(args)
    await build(server, idx, dev)
    async with server:
        print(f"LISTENING {endpoint}", flush=True)
        while True:
            dev.tick()
            await refresh(dev)
            await asyncio.sleep(args.period)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
