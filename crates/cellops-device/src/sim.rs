//! `SimulatedDevice`: a culture device that runs the digital twin in simulated time.
//!
//! The caller owns the clock: `advance_to(now)` steps the twin (with the product's standard
//! protocol of feeds and transduction) up to `now` and records one sample per signal every
//! `sample_period_s` of simulated time. Faults from the twin (`Fault`) are injected with
//! `inject_fault`; power loss silences the sensors and faults the device, a temperature more
//! than `TEMPERATURE_ALARM_C` off its set point raises an alarm.

use std::collections::{BTreeMap, VecDeque};

use cellops_process::recipe::model::DeviceOperation;
use cellops_process::units::SetPoint;
use cellops_twin::sensors::Fault;
use cellops_twin::sim::{Action, CultureSim, TrueState};
use cellops_twin::units::{Celsius, Hours};
use cellops_twin::{Product, TwinError};
use time::OffsetDateTime;

use crate::device::{
    Alarm, CultureDevice, DeviceError, DeviceInfo, DeviceState, DeviceStatus, Program, ProgramRef,
    SAMPLES_READ_MAX, Sample, SignalInfo,
};

/// Signals of the simulated device (name with unit suffix, display unit), in `Sample::signal`
/// order: 7 sensors, 7 set points in force, 6 actuator and environment values.
pub const SIGNALS: &[(&str, &str)] = &[
    ("viable_density", "cells/mL or cells/cm2"),
    ("viability_percent", "%"),
    ("glucose_mm", "mM"),
    ("lactate_mm", "mM"),
    ("ph", "pH"),
    ("do_percent", "%"),
    ("temperature_c", "°C"),
    ("temperature_setpoint_c", "°C"),
    ("co2_setpoint_percent", "%"),
    ("do_setpoint_percent", "%"),
    ("ph_setpoint", "pH"),
    ("agitation_rpm", "rpm"),
    ("perfusion_ml_per_day", "mL/d"),
    ("culture_volume_ml", "mL"),
    ("heater_output_percent", "%"),
    ("co2_valve_percent", "%"),
    ("o2_flow_ml_per_min", "mL/min"),
    ("pump_rate_ml_per_min", "mL/min"),
    ("gas_pressure_kpa", "kPa"),
    ("ambient_temperature_c", "°C"),
];
/// Number of sensor signals (the first entries of `SIGNALS`); silent during power loss.
const SENSOR_SIGNALS: usize = 7;
/// Most samples the device buffers unread; older ones are dropped (and counted).
pub const BUFFER_SAMPLES_MAX: usize = 4_000_000;
/// Shortest and longest sample period, seconds.
pub const SAMPLE_PERIOD_S_MIN: u32 = 1;
/// Longest sample period, seconds.
pub const SAMPLE_PERIOD_S_MAX: u32 = 3_600;
/// Temperature deviation from the set point that raises an alarm, °C.
pub const TEMPERATURE_ALARM_C: f64 = 1.0;
/// Ambient temperature of the simulated room, °C.
pub const AMBIENT_C: f64 = 22.0;
/// Longest single `advance_to` jump, hours (a batch is at most ~30 days).
pub const ADVANCE_H_MAX: f64 = 24.0 * 60.0;

/// A simulated culture device.
#[derive(Debug, Clone)]
pub struct SimulatedDevice {
    id: String,
    culture: CultureSim,
    origin: OffsetDateTime,
    now: OffsetDateTime,
    sample_period_s: u32,
    next_sample_s: i64,
    state: DeviceState,
    program: Option<(Program, OffsetDateTime)>,
    last_program: Option<ProgramRef>,
    set_points: BTreeMap<SetPoint, f64>,
    alarms: Vec<Alarm>,
    results: BTreeMap<String, f64>,
    buffer: VecDeque<Sample>,
    last_seq: u64,
    dropped_samples: u64,
    power_lost_until: Option<OffsetDateTime>,
    ambient_c: f64,
    harvested: bool,
}

fn twin_err(device: &str, request: &'static str, e: TwinError) -> DeviceError {
    DeviceError::Rejected {
        device: device.to_string(),
        request,
        reason: e.to_string(),
    }
}

fn hours_between(a: OffsetDateTime, b: OffsetDateTime) -> f64 {
    (b - a).as_seconds_f64() / 3600.0
}

impl SimulatedDevice {
    /// A device `id` with a fresh culture of `product` (lot parameters drawn for `seed`),
    /// seeded at `origin`, sampling every `sample_period_s` simulated seconds.
    pub fn new(
        id: &str,
        product: Product,
        seed: u64,
        origin: OffsetDateTime,
        sample_period_s: u32,
    ) -> Result<SimulatedDevice, DeviceError> {
        if !(SAMPLE_PERIOD_S_MIN..=SAMPLE_PERIOD_S_MAX).contains(&sample_period_s) {
            return Err(DeviceError::Rejected {
                device: id.to_string(),
                request: "create",
                reason: format!(
                    "sample_period_s {sample_period_s} is outside {SAMPLE_PERIOD_S_MIN}..={SAMPLE_PERIOD_S_MAX}"
                ),
            });
        }
        let donor = match product {
            Product::PrimeCarT => Some(cellops_twin::product::Donor::Autologous {
                heavily_pretreated: false,
            }),
            Product::AlloCarT => Some(cellops_twin::product::Donor::Allogeneic),
            Product::BmMsc => None,
        };
        let culture =
            CultureSim::new(product, donor, seed).map_err(|e| twin_err(id, "create", e))?;
        Ok(SimulatedDevice {
            id: id.to_string(),
            culture,
            origin,
            now: origin,
            sample_period_s,
            next_sample_s: 0,
            state: DeviceState::Idle,
            program: None,
            last_program: None,
            set_points: BTreeMap::new(),
            alarms: Vec::new(),
            results: BTreeMap::new(),
            buffer: VecDeque::new(),
            last_seq: 0,
            dropped_samples: 0,
            power_lost_until: None,
            ambient_c: AMBIENT_C,
            harvested: false,
        })
    }

    /// Device time.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// Samples dropped because nobody read them before the buffer filled.
    pub fn dropped_samples(&self) -> u64 {
        self.dropped_samples
    }

    /// The twin's true state (what an at-line sample measured by an operator shows).
    pub fn true_state(&self) -> TrueState {
        self.culture.true_state()
    }

    /// When the running program reaches its planned duration.
    pub fn program_end(&self) -> Option<OffsetDateTime> {
        self.program
            .as_ref()
            .map(|(p, started)| *started + time::Duration::seconds_f64(p.duration_hours * 3600.0))
    }

    /// Injects a twin fault now, active for `duration_h` (or until the run ends).
    pub fn inject_fault(
        &mut self,
        fault: Fault,
        duration_h: Option<f64>,
    ) -> Result<(), DeviceError> {
        let duration = duration_h
            .map(|h| Hours::new("duration_h", h))
            .transpose()
            .map_err(|e| twin_err(&self.id, "inject_fault", e))?;
        if !self.harvested {
            self.culture
                .inject_fault(fault, duration)
                .map_err(|e| twin_err(&self.id, "inject_fault", e))?;
        }
        match fault {
            Fault::PowerLoss { ambient_c } => {
                self.ambient_c = ambient_c;
                self.power_lost_until = Some(match duration_h {
                    Some(h) => self.now + time::Duration::seconds_f64(h * 3600.0),
                    None => {
                        OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap_or(self.now)
                    }
                });
                self.raise(
                    "power_loss",
                    "mains power lost: no heating, pumps or gas control",
                );
                if self.state == DeviceState::Running {
                    self.state = DeviceState::Faulted;
                }
            }
            Fault::TemperatureLoss { ambient_c } => self.ambient_c = ambient_c,
            _ => {}
        }
        Ok(())
    }

    fn raise(&mut self, code: &str, message: &str) {
        if !self.alarms.iter().any(|a| a.code == code) {
            self.alarms.push(Alarm {
                code: code.to_string(),
                message: message.to_string(),
                at: self.now,
            });
        }
    }

    fn clear(&mut self, code: &str) {
        self.alarms.retain(|a| a.code != code);
    }

    /// Advances device time to `now`, stepping the culture and recording samples; a running
    /// program whose duration elapsed completes. Time never goes back (earlier `now` is a no-op).
    pub fn advance_to(&mut self, now: OffsetDateTime) -> Result<(), DeviceError> {
        if now <= self.now {
            return Ok(());
        }
        if hours_between(self.now, now) > ADVANCE_H_MAX {
            return Err(DeviceError::Rejected {
                device: self.id.clone(),
                request: "advance_to",
                reason: format!("a jump of more than {ADVANCE_H_MAX} h; advance in smaller steps"),
            });
        }
        let end_s = (now - self.origin).whole_seconds();
        // Step to each sample time, and to the program end when it falls in between.
        loop {
            let program_end_s = self
                .program_end()
                .map(|t| (t - self.origin).whole_seconds());
            let target_s = [Some(self.next_sample_s), program_end_s, Some(end_s)]
                .into_iter()
                .flatten()
                .filter(|t| *t >= (self.now - self.origin).whole_seconds())
                .min()
                .unwrap_or(end_s)
                .min(end_s);
            self.step_culture_to(target_s)?;
            if program_end_s == Some(target_s) && self.state == DeviceState::Running {
                self.finish_program()?;
            }
            if target_s == self.next_sample_s {
                self.record_samples();
                self.next_sample_s += i64::from(self.sample_period_s);
            }
            if target_s >= end_s {
                break;
            }
        }
        self.now = now;
        Ok(())
    }

    fn step_culture_to(&mut self, target_s: i64) -> Result<(), DeviceError> {
        let target = self.origin + time::Duration::seconds(target_s);
        if target <= self.now {
            return Ok(());
        }
        let dt_h = hours_between(self.now, target);
        self.now = target;
        if self.power_lost_until.is_some_and(|until| self.now >= until) {
            self.power_lost_until = None;
            self.ambient_c = AMBIENT_C;
            self.clear("power_loss");
        }
        if self.harvested {
            return Ok(());
        }
        let dt = Hours::new("dt", dt_h).map_err(|e| twin_err(&self.id, "advance_to", e))?;
        self.culture
            .step_with_protocol(dt)
            .map_err(|e| twin_err(&self.id, "advance_to", e))?;
        let s = self.culture.true_state();
        let sp = self
            .set_points
            .get(&SetPoint::TemperatureC)
            .copied()
            .unwrap_or(cellops_twin::sim::SETPOINT_C_DEFAULT);
        if (s.temperature_c - sp).abs() > TEMPERATURE_ALARM_C {
            self.raise(
                "temperature_deviation",
                &format!("culture at {:.1} °C, set point {sp:.1} °C", s.temperature_c),
            );
        } else {
            self.clear("temperature_deviation");
        }
        Ok(())
    }

    fn finish_program(&mut self) -> Result<(), DeviceError> {
        let Some((program, _)) = self.program.take() else {
            return Ok(());
        };
        self.results.clear();
        match program.operation {
            DeviceOperation::Harvest if !self.harvested => {
                let s = self.culture.true_state();
                let outcome = self
                    .culture
                    .apply(Action::Harvest)
                    .map_err(|e| twin_err(&self.id, "harvest", e))?;
                self.harvested = true;
                self.results
                    .insert("harvested_viable_cells".into(), outcome.cells_harvested);
                self.results
                    .insert("harvest_viability_percent".into(), s.viability * 100.0);
                if let Some(car) = s.car_pos_fraction {
                    self.results.insert(
                        "harvested_car_positive_cells".into(),
                        outcome.cells_harvested * car,
                    );
                }
            }
            _ => {}
        }
        self.last_program = Some(program.reference.clone());
        self.state = DeviceState::Completed;
        Ok(())
    }

    fn record_samples(&mut self) {
        let at_unix_ms = (self.now.unix_timestamp_nanos() / 1_000_000) as i64;
        let power_lost = self.power_lost_until.is_some();
        let readings = if self.harvested {
            None
        } else {
            Some(self.culture.read_sensors())
        };
        let sp = |k: SetPoint, default: f64| self.set_points.get(&k).copied().unwrap_or(default);
        let temp_sp = sp(
            SetPoint::TemperatureC,
            cellops_twin::sim::SETPOINT_C_DEFAULT,
        );
        let sensors: [Option<f64>; SENSOR_SIGNALS] = match &readings {
            Some(r) => [
                r.viable_cells_per_ml.or(r.viable_cells_per_cm2),
                r.viability_percent,
                r.glucose_mm,
                r.lactate_mm,
                r.ph,
                r.do_percent,
                r.temperature_c,
            ],
            None => [None; SENSOR_SIGNALS],
        };
        let temp = sensors[6].unwrap_or(self.ambient_c);
        let ph = sensors[4].unwrap_or(7.2);
        let dissolved = sensors[5].unwrap_or(40.0);
        let running = self.state == DeviceState::Running && !power_lost;
        let on = |v: f64| if running { v } else { 0.0 };
        let perfusion = sp(SetPoint::PerfusionMlPerDay, 0.0);
        let others = [
            temp_sp,
            sp(SetPoint::Co2Percent, 5.0),
            sp(SetPoint::DoPercent, 40.0),
            sp(SetPoint::Ph, 7.2),
            on(sp(SetPoint::AgitationRpm, 0.0)),
            on(perfusion),
            sp(SetPoint::CultureVolumeMl, 0.0),
            on(((temp_sp - temp) * 50.0 + 20.0).clamp(0.0, 100.0)),
            on(((ph - sp(SetPoint::Ph, 7.2)) * 200.0 + 10.0).clamp(0.0, 100.0)),
            on(((sp(SetPoint::DoPercent, 40.0) - dissolved) * 2.0 + 5.0).clamp(0.0, 50.0)),
            on(perfusion / 1440.0),
            if power_lost { 101.3 } else { 103.5 },
            self.ambient_c,
        ];
        let values = sensors
            .iter()
            .map(|v| if power_lost { None } else { *v })
            .chain(others.into_iter().map(Some));
        for (signal, value) in values.enumerate() {
            let Some(value) = value else { continue };
            if self.buffer.len() >= BUFFER_SAMPLES_MAX {
                self.buffer.pop_front();
                self.dropped_samples += 1;
            }
            self.last_seq += 1;
            self.buffer.push_back(Sample {
                seq: self.last_seq,
                at_unix_ms,
                signal: signal as u16,
                value,
            });
        }
    }

    fn apply_set_points(
        &mut self,
        set_points: &BTreeMap<SetPoint, f64>,
    ) -> Result<(), DeviceError> {
        for (k, v) in set_points {
            let (min, max) = k.range();
            if !(min..=max).contains(v) {
                return Err(DeviceError::Rejected {
                    device: self.id.clone(),
                    request: "set_points",
                    reason: format!("{} = {v} is outside {min}..={max}", k.name()),
                });
            }
        }
        for (k, v) in set_points {
            self.set_points.insert(*k, *v);
            if self.harvested {
                continue;
            }
            if *k == SetPoint::TemperatureC {
                let setpoint = Celsius::new("temperature_c", *v)
                    .map_err(|e| twin_err(&self.id, "set_points", e))?;
                self.culture
                    .apply(Action::SetTemperature { setpoint })
                    .map_err(|e| twin_err(&self.id, "set_points", e))?;
            }
        }
        Ok(())
    }
}

impl CultureDevice for SimulatedDevice {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            id: self.id.clone(),
            model: format!("simulated {}", self.culture.product().name()),
            signals: SIGNALS
                .iter()
                .map(|(name, unit)| SignalInfo {
                    name: (*name).to_string(),
                    unit: (*unit).to_string(),
                })
                .collect(),
        }
    }

    fn start_program(&mut self, program: &Program) -> Result<(), DeviceError> {
        let refuse = |reason: String| DeviceError::Rejected {
            device: self.id.clone(),
            request: "start_program",
            reason,
        };
        match self.state {
            DeviceState::Running => {
                return Err(refuse(format!(
                    "program {:?} is still running; wait for it or stop it",
                    self.program.as_ref().map(|(p, _)| &p.reference.step)
                )));
            }
            DeviceState::Faulted => {
                return Err(refuse("the device is faulted (see alarms)".into()));
            }
            _ => {}
        }
        if self.power_lost_until.is_some() {
            return Err(refuse("power is lost".into()));
        }
        if !(program.duration_hours.is_finite() && program.duration_hours > 0.0) {
            return Err(refuse(format!(
                "duration_hours {} must be finite and > 0",
                program.duration_hours
            )));
        }
        self.apply_set_points(&program.set_points)?;
        self.results.clear();
        self.program = Some((program.clone(), self.now));
        self.last_program = Some(program.reference.clone());
        self.state = DeviceState::Running;
        Ok(())
    }

    fn set_points(&mut self, set_points: &BTreeMap<SetPoint, f64>) -> Result<(), DeviceError> {
        if self.state != DeviceState::Running {
            return Err(DeviceError::Rejected {
                device: self.id.clone(),
                request: "set_points",
                reason: "no program is running".into(),
            });
        }
        self.apply_set_points(set_points)
    }

    fn status(&mut self) -> Result<DeviceStatus, DeviceError> {
        let elapsed = self
            .program
            .as_ref()
            .map_or(0.0, |(_, started)| hours_between(*started, self.now));
        Ok(DeviceStatus {
            state: self.state,
            program: self.last_program.clone(),
            device_time: self.now,
            program_elapsed_hours: elapsed,
            set_points: self.set_points.clone(),
            alarms: self.alarms.clone(),
            last_sample_seq: self.last_seq,
            results: self.results.clone(),
        })
    }

    fn read_samples(&mut self, after_seq: u64, max: usize) -> Result<Vec<Sample>, DeviceError> {
        // Samples up to `after_seq` were stored by the reader: forget them.
        while self.buffer.front().is_some_and(|s| s.seq <= after_seq) {
            self.buffer.pop_front();
        }
        Ok(self
            .buffer
            .iter()
            .take(max.min(SAMPLES_READ_MAX))
            .copied()
            .collect())
    }

    fn safe_state(&mut self, reason: &str) -> Result<(), DeviceError> {
        self.program = None;
        self.state = DeviceState::Safe;
        self.set_points.remove(&SetPoint::PerfusionMlPerDay);
        self.set_points.remove(&SetPoint::AgitationRpm);
        self.raise("safe_state", reason);
        Ok(())
    }
}
