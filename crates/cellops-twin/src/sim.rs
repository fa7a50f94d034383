//! [`CultureSim`]: one simulated culture vessel stepped in simulated time. The devices and
//! batch engine drive it: `step`, `apply` actions, `inject_fault`, read `true_state` and
//! `read_sensors`. Deterministic given its seed.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{TwinError, check_finite, check_positive};
use crate::msc::{self, MscModel, MscProtocol, MscState};
use crate::ode::StepMemory;
use crate::product::{self, Donor, Product, TCellProcess};
use crate::sensors::{self, Fault, SensorFaultState, SensorKind, SensorReadings};
use crate::tcell::{self, Controls, TCellAction, TCellModel, TCellState};
use crate::units::{Celsius, Fraction, Hours, Millilitres, Millimolar};

/// Longest internal step, h: temperature and faults are held constant over one sub-step.
pub const SUBSTEP_H_MAX: f64 = 0.25;
/// Longest `step` call, h (a month); longer runs are a sequence of calls.
pub const STEP_H_MAX: f64 = 24.0 * 31.0;
/// Incubator set point, °C (bioprocess.md §2.3).
pub const SETPOINT_C_DEFAULT: f64 = 37.0;
/// Thermal time constant of a vessel losing heat to ambient, h (unconfirmed).
pub const COOLING_TAU_H: f64 = 2.0;
/// Time constant of temperature recovery under control, h (unconfirmed).
pub const HEATING_TAU_H: f64 = 0.5;
/// Q10 of growth below 37 °C (unconfirmed).
pub const GROWTH_Q10: f64 = 2.0;
/// Above this temperature cells die faster, °C (unconfirmed).
pub const HEAT_DEATH_ONSET_C: f64 = 39.0;
/// Extra death per °C above the onset, 1/h (unconfirmed).
pub const HEAT_DEATH_PER_C_H: f64 = 0.02;
/// Time constant of pH drift when CO2 control is lost, h (unconfirmed).
pub const CO2_LOSS_TAU_H: f64 = 2.0;
/// Most faults active at once.
pub const FAULTS_MAX: usize = 16;

/// An operator or device action on the culture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Add fresh medium (suspension cultures).
    Feed {
        /// Volume added.
        volume: Millilitres,
        /// Glucose in the added medium.
        glucose: Millimolar,
    },
    /// Replace a fraction of the medium (cells retained); for adherent cultures the whole
    /// medium is replaced whatever the fraction.
    Exchange {
        /// Fraction replaced.
        fraction: Fraction,
    },
    /// Set continuous perfusion, volumes per day (suspension cultures).
    SetPerfusion {
        /// Volumes of medium per day.
        volumes_per_day: f64,
    },
    /// Change the temperature set point.
    SetTemperature {
        /// New set point.
        setpoint: Celsius,
    },
    /// Transduce at a nominal MOI (suspension cultures).
    Transduce {
        /// Particles per cell.
        moi_nominal: f64,
    },
    /// Restimulate (suspension cultures).
    Restimulate,
    /// Trypsinise and reseed at the seeding density (adherent cultures).
    Passage,
    /// Harvest everything; the culture ends.
    Harvest,
}

impl Action {
    /// A short stable name.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Feed { .. } => "feed",
            Action::Exchange { .. } => "exchange",
            Action::SetPerfusion { .. } => "set-perfusion",
            Action::SetTemperature { .. } => "set-temperature",
            Action::Transduce { .. } => "transduce",
            Action::Restimulate => "restimulate",
            Action::Passage => "passage",
            Action::Harvest => "harvest",
        }
    }
}

/// What an action produced (cells harvested or passaged, where that applies).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ActionOutcome {
    /// Viable cells harvested (harvest, passage), else 0.
    pub cells_harvested: f64,
}

/// The true (noise-free) state, common to both culture types.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrueState {
    /// Simulated time since seeding, h.
    pub time_h: f64,
    /// Total viable cells in the vessel(s).
    pub viable_cells: f64,
    /// Viability, 0..1.
    pub viability: f64,
    /// Viable cells per mL of medium.
    pub viable_cells_per_ml: f64,
    /// Viable cells per cm2 (adherent), else `None`.
    pub viable_cells_per_cm2: Option<f64>,
    /// Confluence, 0..1 (adherent), else `None`.
    pub confluence: Option<f64>,
    /// CAR+ fraction (CAR-T), else `None`.
    pub car_pos_fraction: Option<f64>,
    /// Mean vector copies per transduced cell (CAR-T), else `None`.
    pub vcn_per_transduced_cell: Option<f64>,
    /// Cumulative population doublings (adherent), else `None`.
    pub population_doublings: Option<f64>,
    /// Passage index (adherent), else `None`.
    pub passage: Option<u32>,
    /// Glucose, mM.
    pub glucose_mm: f64,
    /// Lactate (plus bacterial acid), mM.
    pub lactate_mm: f64,
    /// Ammonia, mM.
    pub ammonia_mm: f64,
    /// Medium volume, mL.
    pub volume_ml: f64,
    /// Contaminating bacteria per mL (0 when clean).
    pub bacteria_per_ml: f64,
    /// Vessel temperature, °C.
    pub temperature_c: f64,
    /// Whether the culture has been harvested.
    pub harvested: bool,
}

#[derive(Debug, Clone)]
enum Vessel {
    TCell {
        model: TCellModel,
        state: TCellState,
        controls: Controls,
        schedule: Vec<tcell::ScheduledAction>,
    },
    Msc {
        model: MscModel,
        state: MscState,
        protocol: MscProtocol,
        last_exchange_h: f64,
    },
}

#[derive(Debug, Clone, Copy)]
struct ActiveFault {
    fault: Fault,
    start_h: f64,
    end_h: f64,
}

/// One simulated culture. Deterministic: the same product, seed and calls give the same
/// states and readings.
#[derive(Debug, Clone)]
pub struct CultureSim {
    product: Product,
    vessel: Vessel,
    time_h: f64,
    temperature_c: f64,
    setpoint_c: f64,
    co2_loss: f64,
    faults: Vec<ActiveFault>,
    sensor_faults: [SensorFaultState; 7],
    rng: ChaCha8Rng,
    memory: StepMemory,
    next_scheduled: usize,
    harvested: bool,
}

impl CultureSim {
    /// A culture of `product` with nominal preset parameters, or with lot parameters drawn
    /// for `donor` from the seeded RNG. The seed also drives all sensor noise.
    pub fn new(product: Product, donor: Option<Donor>, seed: u64) -> Result<CultureSim, TwinError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let vessel = match product {
            Product::PrimeCarT | Product::AlloCarT => {
                let mut process = if product == Product::PrimeCarT {
                    product::prime_car_t()
                } else {
                    product::allo_car_t()
                };
                if let Some(d) = donor {
                    process.params = product::sample_params(&process.params, d, &mut rng);
                }
                tcell_vessel(process)?
            }
            Product::BmMsc => {
                let model = MscModel::new(msc::bm_msc_params())?;
                let protocol = MscProtocol::default();
                let state = MscState::from_marrow(
                    &model,
                    protocol.marrow_ml,
                    protocol.cfu_per_ml,
                    protocol.p0_area_cm2,
                )?;
                Vessel::Msc {
                    model,
                    state,
                    protocol,
                    last_exchange_h: 0.0,
                }
            }
        };
        Ok(CultureSim::with_vessel(product, vessel, rng))
    }

    /// A CAR-T culture from an explicit process (parameters, seeding, schedule).
    pub fn from_tcell_process(
        product: Product,
        process: TCellProcess,
        seed: u64,
    ) -> Result<CultureSim, TwinError> {
        let vessel = tcell_vessel(process)?;
        Ok(CultureSim::with_vessel(
            product,
            vessel,
            ChaCha8Rng::seed_from_u64(seed),
        ))
    }

    fn with_vessel(product: Product, vessel: Vessel, rng: ChaCha8Rng) -> CultureSim {
        CultureSim {
            product,
            vessel,
            time_h: 0.0,
            temperature_c: SETPOINT_C_DEFAULT,
            setpoint_c: SETPOINT_C_DEFAULT,
            co2_loss: 0.0,
            faults: Vec::new(),
            sensor_faults: [SensorFaultState::default(); 7],
            rng,
            memory: StepMemory::default(),
            next_scheduled: 0,
            harvested: false,
        }
    }

    /// The product this culture makes.
    pub fn product(&self) -> Product {
        self.product
    }

    /// Simulated time since seeding.
    pub fn time(&self) -> Hours {
        Hours::new("time_h", self.time_h).expect("simulated time is finite and ≥ 0")
    }

    /// Advances simulated time by `dt` (at most [`STEP_H_MAX`]). Errors if the culture was
    /// harvested or the model produced a non-finite value.
    pub fn step(&mut self, dt: Hours) -> Result<(), TwinError> {
        if self.harvested {
            return Err(TwinError::ActionRejected {
                action: "step",
                reason: "the culture has been harvested".to_string(),
            });
        }
        if dt.get() > STEP_H_MAX {
            return Err(TwinError::InvalidValue {
                field: "dt",
                value: dt.get(),
                rule: "≤ STEP_H_MAX (744 h)",
            });
        }
        let t_end = self.time_h + dt.get();
        while self.time_h < t_end {
            let h = (t_end - self.time_h).min(SUBSTEP_H_MAX);
            self.substep(h)?;
        }
        Ok(())
    }

    /// Advances by `dt` and applies the product's standard protocol as actions fall due
    /// (scheduled CAR-T actions; MSC exchanges every 3.5 d and passage at the confluence
    /// target). Actions due at the start of the interval are applied first; actions due
    /// exactly at its end are left for the next call, so a reading taken between calls sees
    /// the culture before that time's actions (as a sample taken before a feed). Returns
    /// the actions taken with their times in hours.
    pub fn step_with_protocol(&mut self, dt: Hours) -> Result<Vec<(f64, Action)>, TwinError> {
        let t_end = self.time_h + dt.get();
        let mut taken = Vec::new();
        self.apply_due(&mut taken)?;
        while self.time_h < t_end {
            let h = (t_end - self.time_h).min(SUBSTEP_H_MAX);
            let target = self.time_h + h;
            let next = self
                .next_protocol_time()
                .filter(|t| *t < target && *t > self.time_h);
            let h = next.map_or(h, |t| t - self.time_h);
            self.step(Hours::new("dt", h)?)?;
            if self.time_h < t_end {
                self.apply_due(&mut taken)?;
            }
        }
        Ok(taken)
    }

    fn apply_due(&mut self, taken: &mut Vec<(f64, Action)>) -> Result<(), TwinError> {
        for action in self.due_protocol_actions() {
            self.apply(action)?;
            taken.push((self.time_h, action));
        }
        Ok(())
    }

    fn next_protocol_time(&self) -> Option<f64> {
        match &self.vessel {
            Vessel::TCell { schedule, .. } => schedule.get(self.next_scheduled).map(|a| a.at_h),
            Vessel::Msc { .. } => None,
        }
    }

    fn due_protocol_actions(&mut self) -> Vec<Action> {
        match &self.vessel {
            Vessel::TCell { schedule, .. } => {
                let mut due = Vec::new();
                while let Some(a) = schedule.get(self.next_scheduled) {
                    if a.at_h > self.time_h + 1e-9 {
                        break;
                    }
                    due.push(action_of(a.action));
                    self.next_scheduled += 1;
                }
                due
            }
            Vessel::Msc {
                model,
                state,
                protocol,
                last_exchange_h,
            } => {
                if state.confluence(model) >= model.params().c_pass {
                    vec![Action::Passage]
                } else if self.time_h - last_exchange_h >= protocol.exchange_every_h {
                    vec![Action::Exchange {
                        fraction: Fraction::new("fraction", 1.0).expect("1.0 is a fraction"),
                    }]
                } else {
                    Vec::new()
                }
            }
        }
    }

    fn power_lost(&self) -> Option<f64> {
        self.active_faults().find_map(|f| match f.fault {
            Fault::PowerLoss { ambient_c } => Some(ambient_c),
            _ => None,
        })
    }

    fn active_faults(&self) -> impl Iterator<Item = &ActiveFault> {
        let t = self.time_h;
        self.faults
            .iter()
            .filter(move |f| f.start_h <= t && t < f.end_h)
    }

    fn substep(&mut self, h: f64) -> Result<(), TwinError> {
        self.update_environment(h);
        let (growth, death) = temperature_effects(self.temperature_c);
        let power_lost = self.power_lost().is_some();
        let t0 = self.time_h;
        match &mut self.vessel {
            Vessel::TCell {
                model,
                state,
                controls,
                ..
            } => {
                let mut c = *controls;
                c.growth_factor = growth;
                c.death_extra_per_h = death;
                if power_lost {
                    c.perfusion_per_day = 0.0;
                    c.bleed_per_day = 0.0;
                }
                state.y = tcell::advance(model, &c, state.y, t0, t0 + h, &mut self.memory)?;
            }
            Vessel::Msc { model, state, .. } => {
                state.y =
                    msc::advance(model, growth, death, state.y, t0, t0 + h, &mut self.memory)?;
            }
        }
        self.time_h = t0 + h;
        self.update_sensor_faults();
        Ok(())
    }

    fn update_environment(&mut self, h: f64) {
        let ambient = self.active_faults().find_map(|f| match f.fault {
            Fault::PowerLoss { ambient_c } | Fault::TemperatureLoss { ambient_c } => {
                Some(ambient_c)
            }
            _ => None,
        });
        let (target, tau) = match ambient {
            Some(a) => (a, COOLING_TAU_H),
            None => (self.setpoint_c, HEATING_TAU_H),
        };
        self.temperature_c = target + (self.temperature_c - target) * (-h / tau).exp();
        let co2_target = if self.power_lost().is_some() {
            1.0
        } else {
            0.0
        };
        self.co2_loss = co2_target + (self.co2_loss - co2_target) * (-h / CO2_LOSS_TAU_H).exp();
    }

    fn update_sensor_faults(&mut self) {
        let mut next = [SensorFaultState::default(); 7];
        for (i, n) in next.iter_mut().enumerate() {
            n.stuck_at = self.sensor_faults[i].stuck_at;
        }
        for f in self.active_faults() {
            match f.fault {
                Fault::SensorDrift { sensor, per_h } => {
                    next[sensor.index()].offset += per_h * (self.time_h - f.start_h);
                }
                Fault::SensorStuck { sensor } => next[sensor.index()].stuck = true,
                _ => {}
            }
        }
        for n in next.iter_mut() {
            if !n.stuck {
                n.stuck_at = None;
            }
        }
        self.sensor_faults = next;
    }

    /// Injects `fault` now, active for `duration` (or until the end of the run). A
    /// contamination adds its bacteria at once. At most [`FAULTS_MAX`] faults may be held.
    pub fn inject_fault(&mut self, fault: Fault, duration: Option<Hours>) -> Result<(), TwinError> {
        if self.faults.len() >= FAULTS_MAX {
            return Err(TwinError::ActionRejected {
                action: "inject_fault",
                reason: format!("at most {FAULTS_MAX} faults per culture"),
            });
        }
        match fault {
            Fault::Contamination { bacteria_per_ml } => {
                let b = check_positive("bacteria_per_ml", bacteria_per_ml)?;
                match &mut self.vessel {
                    Vessel::TCell { state, .. } => state.y[tcell::BAC] += b,
                    Vessel::Msc { state, .. } => state.y[msc::BAC] += b,
                }
            }
            Fault::SensorDrift { per_h, .. } => {
                check_finite("per_h", per_h)?;
            }
            Fault::TemperatureLoss { ambient_c } | Fault::PowerLoss { ambient_c } => {
                check_finite("ambient_c", ambient_c)?;
            }
            Fault::SensorStuck { .. } => {}
        }
        let end_h = duration.map_or(f64::INFINITY, |d| self.time_h + d.get());
        self.faults.push(ActiveFault {
            fault,
            start_h: self.time_h,
            end_h,
        });
        self.update_sensor_faults();
        Ok(())
    }

    /// Applies an action now. Actions that do not fit the culture type (passage on a
    /// suspension, feed on an adherent lot) or come after harvest are rejected.
    pub fn apply(&mut self, action: Action) -> Result<ActionOutcome, TwinError> {
        if self.harvested {
            return Err(reject(action, "the culture has been harvested"));
        }
        if let Action::SetTemperature { setpoint } = action {
            self.setpoint_c = setpoint.get();
            return Ok(ActionOutcome::default());
        }
        if action == Action::Harvest {
            let cells = self.true_state().viable_cells;
            self.harvested = true;
            return Ok(ActionOutcome {
                cells_harvested: cells,
            });
        }
        let power_lost = self.power_lost().is_some();
        match &mut self.vessel {
            Vessel::TCell {
                model,
                state,
                controls,
                ..
            } => {
                let a = tcell_action(action)?;
                if power_lost && matches!(a, TCellAction::SetPerfusion { .. }) {
                    return Err(reject(action, "power is lost: pumps do not run"));
                }
                a.apply(model, state, controls)?;
                Ok(ActionOutcome::default())
            }
            Vessel::Msc {
                model,
                state,
                last_exchange_h,
                ..
            } => match action {
                Action::Exchange { .. } => {
                    msc::exchange_medium(model, state);
                    *last_exchange_h = self.time_h;
                    Ok(ActionOutcome::default())
                }
                Action::Passage => {
                    let cells = msc::passage(model, state);
                    *last_exchange_h = self.time_h;
                    Ok(ActionOutcome {
                        cells_harvested: cells,
                    })
                }
                _ => Err(reject(action, "not possible for an adherent MSC culture")),
            },
        }
    }

    /// The true state now (what the model knows, not what sensors say).
    pub fn true_state(&self) -> TrueState {
        match &self.vessel {
            Vessel::TCell { state, .. } => TrueState {
                time_h: self.time_h,
                viable_cells: state.viable_cells(),
                viability: state.viability(),
                viable_cells_per_ml: state.y[tcell::XV],
                viable_cells_per_cm2: None,
                confluence: None,
                car_pos_fraction: Some(state.car_pos_fraction),
                vcn_per_transduced_cell: Some(state.vcn_per_transduced_cell),
                population_doublings: None,
                passage: None,
                glucose_mm: state.y[tcell::GLC],
                lactate_mm: state.y[tcell::LAC],
                ammonia_mm: state.y[tcell::AMM],
                volume_ml: state.volume_ml,
                bacteria_per_ml: state.y[tcell::BAC],
                temperature_c: self.temperature_c,
                harvested: self.harvested,
            },
            Vessel::Msc { model, state, .. } => {
                let medium = state.medium_ml(model);
                // Adherent cells detach as they die; counted dead cells are not modelled.
                let viability = 1.0 - model.params().kd_per_h * 24.0;
                TrueState {
                    time_h: self.time_h,
                    viable_cells: state.viable_cells(),
                    viability,
                    viable_cells_per_ml: state.viable_cells() / medium,
                    viable_cells_per_cm2: Some(state.y[msc::N]),
                    confluence: Some(state.confluence(model)),
                    car_pos_fraction: None,
                    vcn_per_transduced_cell: None,
                    population_doublings: Some(state.y[msc::PD]),
                    passage: Some(state.passage),
                    glucose_mm: state.y[msc::GLC],
                    lactate_mm: state.y[msc::LAC],
                    ammonia_mm: state.y[msc::AMM],
                    volume_ml: medium,
                    bacteria_per_ml: state.y[msc::BAC],
                    temperature_c: self.temperature_c,
                    harvested: self.harvested,
                }
            }
        }
    }

    /// Reads all sensors now (noise from the culture's RNG; drift/stuck faults applied).
    /// During a power loss every reading is `None`.
    pub fn read_sensors(&mut self) -> SensorReadings {
        let s = self.true_state();
        let ideal = [
            s.viable_cells_per_cm2.unwrap_or(s.viable_cells_per_ml),
            s.viability * 100.0,
            s.glucose_mm,
            s.lactate_mm,
            sensors::ideal_ph(s.lactate_mm, self.co2_loss),
            sensors::ideal_do_percent(s.viable_cells_per_ml, s.bacteria_per_ml),
            s.temperature_c,
        ];
        let v = sensors::read(&ideal, &mut self.sensor_faults, &mut self.rng);
        if self.power_lost().is_some() {
            return SensorReadings {
                time_h: self.time_h,
                ..SensorReadings::default()
            };
        }
        let adherent = s.viable_cells_per_cm2.is_some();
        let get = |k: SensorKind| Some(v[k.index()]);
        SensorReadings {
            time_h: self.time_h,
            viable_cells_per_ml: (!adherent).then_some(v[0]),
            viable_cells_per_cm2: adherent.then_some(v[0]),
            viability_percent: get(SensorKind::Viability),
            glucose_mm: get(SensorKind::Glucose),
            lactate_mm: get(SensorKind::Lactate),
            ph: get(SensorKind::Ph),
            do_percent: get(SensorKind::DissolvedOxygen),
            temperature_c: get(SensorKind::Temperature),
        }
    }
}

fn tcell_vessel(process: TCellProcess) -> Result<Vessel, TwinError> {
    let model = TCellModel::new(process.params)?;
    tcell::check_sorted("schedule.at_h", process.schedule.iter().map(|a| a.at_h))?;
    Ok(Vessel::TCell {
        model,
        state: process.initial,
        controls: process.controls,
        schedule: process.schedule,
    })
}

/// Growth multiplier and extra death rate (1/h) at temperature `t_c`.
pub fn temperature_effects(t_c: f64) -> (f64, f64) {
    let growth = if t_c < SETPOINT_C_DEFAULT {
        GROWTH_Q10.powf((t_c - SETPOINT_C_DEFAULT) / 10.0)
    } else {
        1.0
    };
    let death = HEAT_DEATH_PER_C_H * (t_c - HEAT_DEATH_ONSET_C).max(0.0);
    (growth, death)
}

fn reject(action: Action, reason: &str) -> TwinError {
    TwinError::ActionRejected {
        action: action.name(),
        reason: reason.to_string(),
    }
}

fn tcell_action(action: Action) -> Result<TCellAction, TwinError> {
    Ok(match action {
        Action::Feed { volume, glucose } => TCellAction::Feed {
            volume_ml: volume.get(),
            glucose_mm: glucose.get(),
        },
        Action::Exchange { fraction } => TCellAction::Exchange {
            fraction: fraction.get(),
            glucose_mm: product::MEDIUM_GLUCOSE_MM,
        },
        Action::SetPerfusion { volumes_per_day } => TCellAction::SetPerfusion {
            per_day: volumes_per_day,
        },
        Action::Transduce { moi_nominal } => TCellAction::Transduce { moi_nominal },
        Action::Restimulate => TCellAction::Restimulate,
        _ => return Err(reject(action, "not possible for a suspension culture")),
    })
}

fn action_of(a: TCellAction) -> Action {
    match a {
        TCellAction::Feed {
            volume_ml,
            glucose_mm,
        } => Action::Feed {
            volume: Millilitres::new("volume_ml", volume_ml).expect("preset volume is valid"),
            glucose: Millimolar::new("glucose_mm", glucose_mm).expect("preset glucose is valid"),
        },
        TCellAction::Exchange { fraction, .. } => Action::Exchange {
            fraction: Fraction::new("fraction", fraction).expect("preset fraction is valid"),
        },
        TCellAction::Transduce { moi_nominal } => Action::Transduce { moi_nominal },
        TCellAction::Restimulate => Action::Restimulate,
        TCellAction::SetPerfusion { per_day } => Action::SetPerfusion {
            volumes_per_day: per_day,
        },
    }
}
