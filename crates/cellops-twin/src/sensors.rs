//! Sensor readings with noise, and injectable faults (bioprocess.md §2.3 control ranges).
//!
//! The true state maps to ideal readings (pH from acid, DO from oxygen demand); noise is
//! drawn from the simulation's seeded RNG; faults bend readings (drift, stuck) or the
//! culture itself (contamination, temperature loss, power loss, handled in `sim`).

use rand::Rng;
use rand_distr::{Distribution, Normal};

/// pH of fresh bicarbonate medium under 5 % CO2 (unconfirmed).
pub const PH_FRESH: f64 = 7.4;
/// pH fall per mM of lactate or bacterial acid (unconfirmed: 20 mM → pH 7.0).
pub const PH_PER_MM_ACID: f64 = 0.02;
/// pH rise when CO2 control is lost for long (outgassing; unconfirmed).
pub const PH_CO2_LOSS_SHIFT: f64 = 0.3;
/// Cell density (T-cell equivalents per mL) that halves dissolved O2 (unconfirmed).
pub const DO_HALF_CELLS_PER_ML: f64 = 1e7;
/// Oxygen demand of one bacterium in T-cell equivalents (unconfirmed).
pub const DO_BACTERIA_WEIGHT: f64 = 10.0;
/// Coefficient of variation of automated cell counts (unconfirmed).
pub const COUNT_CV: f64 = 0.05;
/// Standard deviation of viability readings, percentage points (unconfirmed).
pub const VIABILITY_SD_PERCENT: f64 = 1.5;
/// Glucose/lactate analyser noise: absolute sd in mM plus a relative part.
pub const METABOLITE_SD_MM: f64 = 0.1;
/// Relative part of metabolite noise.
pub const METABOLITE_CV: f64 = 0.02;
/// pH probe noise, pH units.
pub const PH_SD: f64 = 0.02;
/// DO probe noise, % air saturation.
pub const DO_SD_PERCENT: f64 = 2.0;
/// Temperature probe noise, °C.
pub const TEMPERATURE_SD_C: f64 = 0.1;

/// The measured quantities, for faults that target one sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensorKind {
    /// Viable cell density (cells/mL, or cells/cm2 by imaging for adherent cultures).
    ViableDensity,
    /// Viability, %.
    Viability,
    /// Glucose, mM.
    Glucose,
    /// Lactate, mM.
    Lactate,
    /// pH.
    Ph,
    /// Dissolved oxygen, % air saturation.
    DissolvedOxygen,
    /// Temperature, °C.
    Temperature,
}

/// All sensor kinds, in reading order.
pub const SENSOR_KINDS: [SensorKind; 7] = [
    SensorKind::ViableDensity,
    SensorKind::Viability,
    SensorKind::Glucose,
    SensorKind::Lactate,
    SensorKind::Ph,
    SensorKind::DissolvedOxygen,
    SensorKind::Temperature,
];

impl SensorKind {
    /// Position in [`SENSOR_KINDS`].
    pub fn index(self) -> usize {
        match self {
            SensorKind::ViableDensity => 0,
            SensorKind::Viability => 1,
            SensorKind::Glucose => 2,
            SensorKind::Lactate => 3,
            SensorKind::Ph => 4,
            SensorKind::DissolvedOxygen => 5,
            SensorKind::Temperature => 6,
        }
    }

    /// Parses `viable-density`, `viability`, `glucose`, `lactate`, `ph`, `do`, `temperature`.
    pub fn parse(name: &str) -> Option<SensorKind> {
        Some(match name {
            "viable-density" => SensorKind::ViableDensity,
            "viability" => SensorKind::Viability,
            "glucose" => SensorKind::Glucose,
            "lactate" => SensorKind::Lactate,
            "ph" => SensorKind::Ph,
            "do" => SensorKind::DissolvedOxygen,
            "temperature" => SensorKind::Temperature,
            _ => return None,
        })
    }
}

/// A fault injected into a running culture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Bacteria enter the vessel at this density; they grow, eat glucose, acidify and
    /// consume oxygen (the pH/DO/glucose signature).
    Contamination {
        /// Inoculum, bacteria per mL.
        bacteria_per_ml: f64,
    },
    /// A sensor's offset grows linearly with time since the fault started.
    SensorDrift {
        /// Which sensor.
        sensor: SensorKind,
        /// Drift per hour, in the sensor's unit.
        per_h: f64,
    },
    /// A sensor repeats its last reading.
    SensorStuck {
        /// Which sensor.
        sensor: SensorKind,
    },
    /// Temperature control fails; the vessel relaxes to ambient.
    TemperatureLoss {
        /// Ambient temperature, °C.
        ambient_c: f64,
    },
    /// Mains power fails: no heating, no perfusion pumps, no gas control, no readings.
    PowerLoss {
        /// Ambient temperature, °C.
        ambient_c: f64,
    },
}

impl Fault {
    /// A short stable name (for logs and CSV).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Contamination { .. } => "contamination",
            Fault::SensorDrift { .. } => "sensor-drift",
            Fault::SensorStuck { .. } => "sensor-stuck",
            Fault::TemperatureLoss { .. } => "temperature-loss",
            Fault::PowerLoss { .. } => "power-loss",
        }
    }
}

/// One set of readings. `None` means no reading (power lost, or not measured for this
/// culture type: suspension cultures report cells/mL, adherent ones cells/cm2 and
/// confluence).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SensorReadings {
    /// Simulated time of the reading, h.
    pub time_h: f64,
    /// Viable cells per mL (suspension cultures).
    pub viable_cells_per_ml: Option<f64>,
    /// Viable cells per cm2 by imaging (adherent cultures).
    pub viable_cells_per_cm2: Option<f64>,
    /// Viability, %.
    pub viability_percent: Option<f64>,
    /// Glucose, mM.
    pub glucose_mm: Option<f64>,
    /// Lactate, mM.
    pub lactate_mm: Option<f64>,
    /// pH.
    pub ph: Option<f64>,
    /// Dissolved oxygen, % air saturation.
    pub do_percent: Option<f64>,
    /// Temperature, °C.
    pub temperature_c: Option<f64>,
}

/// Ideal (noise-free) values of the seven sensors, in [`SENSOR_KINDS`] order.
pub type IdealValues = [f64; 7];

/// Ideal pH for `acid_mm` of lactate-equivalent acid and `co2_loss` in 0..1.
pub fn ideal_ph(acid_mm: f64, co2_loss: f64) -> f64 {
    PH_FRESH - PH_PER_MM_ACID * acid_mm.max(0.0) + PH_CO2_LOSS_SHIFT * co2_loss
}

/// Ideal DO, % air saturation, for a cell and bacteria density per mL of medium.
pub fn ideal_do_percent(cells_per_ml: f64, bacteria_per_ml: f64) -> f64 {
    let demand = cells_per_ml.max(0.0) + DO_BACTERIA_WEIGHT * bacteria_per_ml.max(0.0);
    100.0 / (1.0 + demand / DO_HALF_CELLS_PER_ML)
}

fn noise_sd(kind: SensorKind, value: f64) -> f64 {
    match kind {
        SensorKind::ViableDensity => COUNT_CV * value.abs(),
        SensorKind::Viability => VIABILITY_SD_PERCENT,
        SensorKind::Glucose | SensorKind::Lactate => METABOLITE_SD_MM + METABOLITE_CV * value.abs(),
        SensorKind::Ph => PH_SD,
        SensorKind::DissolvedOxygen => DO_SD_PERCENT,
        SensorKind::Temperature => TEMPERATURE_SD_C,
    }
}

fn clamp_physical(kind: SensorKind, v: f64) -> f64 {
    match kind {
        SensorKind::Viability | SensorKind::DissolvedOxygen => v.clamp(0.0, 100.0),
        SensorKind::Ph | SensorKind::Temperature => v,
        _ => v.max(0.0),
    }
}

/// Per-sensor fault effects at read time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SensorFaultState {
    /// Additive offset in the sensor's unit (drift).
    pub offset: f64,
    /// The frozen value while stuck.
    pub stuck_at: Option<f64>,
    /// Whether the sensor is currently stuck (first reading freezes it).
    pub stuck: bool,
}

/// Draws noisy readings from ideal values and applies drift/stuck faults.
pub fn read(
    ideal: &IdealValues,
    faults: &mut [SensorFaultState; 7],
    rng: &mut impl Rng,
) -> [f64; 7] {
    let mut out = [0.0; 7];
    for kind in SENSOR_KINDS {
        let i = kind.index();
        let sd = noise_sd(kind, ideal[i]);
        let noisy = match Normal::new(ideal[i], sd.max(0.0)) {
            Ok(d) => d.sample(rng),
            Err(_) => ideal[i],
        };
        let value = clamp_physical(kind, noisy + faults[i].offset);
        out[i] = if faults[i].stuck {
            *faults[i].stuck_at.get_or_insert(value)
        } else {
            value
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn stuck_sensor_repeats_and_drift_offsets() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let ideal = [1e6, 95.0, 10.0, 5.0, 7.3, 80.0, 37.0];
        let mut faults = [SensorFaultState::default(); 7];
        faults[SensorKind::Glucose.index()].stuck = true;
        faults[SensorKind::Ph.index()].offset = 0.5;
        let a = read(&ideal, &mut faults, &mut rng);
        let b = read(&ideal, &mut faults, &mut rng);
        assert_eq!(a[2], b[2]);
        assert_ne!(a[3], b[3]);
        assert!(a[4] > 7.6 && b[4] > 7.6);
    }

    #[test]
    fn acid_lowers_ph_and_bacteria_lower_do() {
        assert!(ideal_ph(20.0, 0.0) < 7.05);
        assert!(ideal_do_percent(1e6, 1e8) < 5.0);
        assert!(ideal_do_percent(1e6, 0.0) > 85.0);
    }
}
