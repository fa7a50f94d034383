//! Test devices and helpers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cellops_device::{
    CultureDevice, DeviceError, DeviceInfo, DeviceStatus, Program, ProgramRef, Sample,
    SimulatedDevice,
};
use cellops_process::recipe::model::DeviceOperation;
use cellops_process::units::SetPoint;
use cellops_twin::Product;
use time::{Duration, OffsetDateTime};

pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_000_000).unwrap()
}

pub fn hours(h: f64) -> Duration {
    Duration::seconds_f64(h * 3600.0)
}

/// How the test device misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers like the simulated device.
    Normal,
    /// Every call fails as if the network were down.
    Unreachable,
    /// Status answers are garbage.
    Garbage,
    /// Samples with seq in 101..=150 are lost before they are read.
    DropSamples,
}

/// A simulated device behind a switch that makes it disappear or talk garbage; shared so a
/// test (and two controllers) can reach the same device.
#[derive(Clone)]
pub struct TestDevice {
    pub sim: Arc<Mutex<SimulatedDevice>>,
    pub mode: Arc<Mutex<Mode>>,
    id: String,
}

impl TestDevice {
    pub fn new(id: &str) -> TestDevice {
        let sim = SimulatedDevice::new(id, Product::PrimeCarT, 7, t0(), 60).unwrap();
        TestDevice {
            sim: Arc::new(Mutex::new(sim)),
            mode: Arc::new(Mutex::new(Mode::Normal)),
            id: id.to_string(),
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn advance_to(&self, now: OffsetDateTime) {
        self.sim.lock().unwrap().advance_to(now).unwrap();
    }

    fn gate(&self, request: &'static str) -> Result<(), DeviceError> {
        match *self.mode.lock().unwrap() {
            Mode::Unreachable => Err(DeviceError::Unreachable {
                device: self.id.clone(),
                reason: "connection refused".into(),
            }),
            Mode::Garbage if request == "status" => Err(DeviceError::Garbage {
                device: self.id.clone(),
                request,
                detail: "CurrentState `Exploded` is not a state".into(),
            }),
            _ => Ok(()),
        }
    }
}

impl CultureDevice for TestDevice {
    fn info(&self) -> DeviceInfo {
        self.sim.lock().unwrap().info()
    }
    fn start_program(&mut self, program: &Program) -> Result<(), DeviceError> {
        self.gate("start_program")?;
        self.sim.lock().unwrap().start_program(program)
    }
    fn set_points(&mut self, set_points: &BTreeMap<SetPoint, f64>) -> Result<(), DeviceError> {
        self.gate("set_points")?;
        self.sim.lock().unwrap().set_points(set_points)
    }
    fn status(&mut self) -> Result<DeviceStatus, DeviceError> {
        self.gate("status")?;
        self.sim.lock().unwrap().status()
    }
    fn read_samples(&mut self, after_seq: u64, max: usize) -> Result<Vec<Sample>, DeviceError> {
        self.gate("read_samples")?;
        let mut samples = self.sim.lock().unwrap().read_samples(after_seq, max)?;
        if *self.mode.lock().unwrap() == Mode::DropSamples {
            samples.retain(|s| !(101..=150).contains(&s.seq));
        }
        Ok(samples)
    }
    fn safe_state(&mut self, reason: &str) -> Result<(), DeviceError> {
        self.gate("safe_state")?;
        self.sim.lock().unwrap().safe_state(reason)
    }
}

pub fn expansion(batch: &str, step: &str, duration_hours: f64) -> Program {
    Program {
        reference: ProgramRef {
            batch: batch.into(),
            step: step.into(),
        },
        operation: DeviceOperation::Expansion,
        set_points: BTreeMap::from([(SetPoint::TemperatureC, 37.0), (SetPoint::Co2Percent, 5.0)]),
        duration_hours,
    }
}

/// Asserts that `samples` are exactly seq 1..=n, each once.
pub fn assert_gap_free(samples: &[Sample], n: u64) {
    let seqs: Vec<u64> = samples.iter().map(|s| s.seq).collect();
    let expected: Vec<u64> = (1..=n).collect();
    assert_eq!(
        seqs.len(),
        expected.len(),
        "stored {} samples, expected {n}",
        seqs.len()
    );
    assert_eq!(seqs, expected, "stored samples are not exactly 1..={n}");
}
