//! The custody state rebuilt from events: units, their genealogy graph, the custody timeline,
//! reagent lot usage, bedside verifications and infusions, with indexes for trace and recall.

use cellops_domain::{SiteId, Timestamp};
use cellops_isbt::{Din, Fin};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::allocation::DinAllocator;
use crate::event::Event;
use crate::ids::{OrderId, ReagentLot, SubjectId, UnitCode};
use crate::unit::{Unit, UnitStatus};

/// Index of a unit in the state's arena. Parents always have smaller indexes than their
/// children, which makes the genealogy acyclic by construction.
pub(crate) type UnitIx = u32;

/// A bedside verification waiting for its infusion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The verified unit.
    pub code: UnitCode,
    /// The verified patient.
    pub patient: SubjectId,
    /// The site.
    pub site: SiteId,
    /// When it was verified.
    pub at: Timestamp,
}

/// One recorded infusion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Infusion {
    /// The order.
    pub order: OrderId,
    /// Who received it.
    pub patient: SubjectId,
    /// The unit infused.
    pub code: UnitCode,
    /// When.
    pub at: Timestamp,
}

/// Everything custody knows, rebuilt by [`CustodyState::apply`]. Deterministic: the same
/// events in the same order give the same state.
#[derive(Debug, Clone, Default)]
pub struct CustodyState {
    facilities: BTreeMap<SiteId, Fin>,
    network_fins: BTreeSet<Fin>,
    allocator: DinAllocator,
    pub(crate) units: Vec<Unit>,
    pub(crate) index: HashMap<UnitCode, UnitIx>,
    pub(crate) by_din: HashMap<Din, Vec<UnitIx>>,
    pub(crate) parent_ixs: Vec<Vec<UnitIx>>,
    pub(crate) child_ixs: Vec<Vec<UnitIx>>,
    pub(crate) timeline: Vec<Vec<u32>>,
    pub(crate) log: Vec<Event>,
    pub(crate) reagent_units: HashMap<ReagentLot, Vec<UnitIx>>,
    pub(crate) infusions: HashMap<UnitIx, Infusion>,
    pub(crate) verifications: HashMap<OrderId, Verification>,
    pub(crate) infused_orders: HashMap<OrderId, UnitCode>,
    anomalies: Vec<String>,
}

impl CustodyState {
    /// An empty state for a network whose sites have these Facility Identification Numbers
    /// (several sites may share a FIN).
    pub fn new(facilities: impl IntoIterator<Item = (SiteId, Fin)>) -> CustodyState {
        let facilities: BTreeMap<SiteId, Fin> = facilities.into_iter().collect();
        let network_fins = facilities.values().copied().collect();
        CustodyState {
            facilities,
            network_fins,
            ..CustodyState::default()
        }
    }

    /// The FIN configured for `site`.
    pub fn facility_fin(&self, site: &SiteId) -> Option<Fin> {
        self.facilities.get(site).copied()
    }

    /// True when `fin` belongs to one of the network's sites.
    pub fn is_network_fin(&self, fin: Fin) -> bool {
        self.network_fins.contains(&fin)
    }

    /// The DIN allocator.
    pub fn allocator(&self) -> &DinAllocator {
        &self.allocator
    }

    /// The unit with `code`.
    pub fn unit(&self, code: &UnitCode) -> Option<&Unit> {
        self.index.get(code).map(|&ix| &self.units[ix as usize])
    }

    /// Number of units.
    pub fn unit_count(&self) -> usize {
        self.units.len()
    }

    /// All units, in creation order (parents before children).
    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.units.iter()
    }

    /// The pending (not yet infused) bedside verification of `order`.
    pub fn verification(&self, order: &OrderId) -> Option<&Verification> {
        self.verifications.get(order)
    }

    /// The unit infused for `order`, if it was.
    pub fn infused_unit(&self, order: &OrderId) -> Option<UnitCode> {
        self.infused_orders.get(order).copied()
    }

    pub(crate) fn ix(&self, code: &UnitCode) -> Option<UnitIx> {
        self.index.get(code).copied()
    }

    /// Applies one event. Total: never fails. An event that does not fit the state (which
    /// `decide` never produces) is kept out of the state and reported by
    /// [`CustodyState::check_invariants`].
    pub fn apply(&mut self, event: &Event) {
        let log_ix = u32::try_from(self.log.len()).unwrap_or(u32::MAX);
        let touched = match event {
            Event::DinAllocated { din, .. } => {
                self.allocator.apply(*din);
                return;
            }
            Event::UnitCreated {
                code,
                patient,
                expires_at,
                site,
                location,
                by,
                ..
            } => self
                .insert_unit(Unit {
                    code: *code,
                    parents: Vec::new(),
                    status: UnitStatus::Available,
                    expires_at: *expires_at,
                    site: site.clone(),
                    location: location.clone(),
                    custodian: by.clone(),
                    patient: patient.clone(),
                })
                .into_iter()
                .collect(),
            Event::UnitDerived { .. } => self.apply_derived(event),
            Event::CustodyHandedOff {
                code,
                to,
                site,
                location,
                ..
            } => self.update(code, |unit| {
                unit.custodian = to.clone();
                unit.site = site.clone();
                unit.location = location.clone();
            }),
            Event::ScanAccepted {
                code,
                step,
                site,
                location,
                ..
            } => self.update(code, |unit| {
                unit.status = step.status_after();
                unit.site = site.clone();
                unit.location = location.clone();
            }),
            Event::ScanRefused {
                expected,
                scanned_code,
                ..
            } => {
                let mut ixs: Vec<UnitIx> = self.ix(expected).into_iter().collect();
                if let Some(ix) = scanned_code.and_then(|c| self.ix(&c)) {
                    if !ixs.contains(&ix) {
                        ixs.push(ix);
                    }
                }
                ixs
            }
            Event::BedsideVerified {
                order,
                patient,
                code,
                site,
                at,
                ..
            } => {
                self.verifications.insert(
                    order.clone(),
                    Verification {
                        code: *code,
                        patient: patient.clone(),
                        site: site.clone(),
                        at: *at,
                    },
                );
                self.known(code)
            }
            Event::BedsideMismatch {
                order,
                expected_unit,
                ..
            } => {
                // A failed check voids any earlier verification of the order: start again.
                self.verifications.remove(order);
                self.ix(expected_unit).into_iter().collect()
            }
            Event::UnitExpired { code, .. } => {
                self.update(code, |unit| unit.status = UnitStatus::Expired)
            }
            Event::UnitDestroyed { code, .. } => {
                self.update(code, |unit| unit.status = UnitStatus::Destroyed)
            }
            Event::ReagentLotUsed { lot, units, .. } => {
                let ixs: Vec<UnitIx> = units.iter().flat_map(|c| self.known(c)).collect();
                self.reagent_units
                    .entry(lot.clone())
                    .or_default()
                    .extend(ixs.iter().copied());
                ixs
            }
            Event::InfusionRecorded {
                order,
                patient,
                code,
                at,
                ..
            } => {
                let ixs = self.update(code, |unit| unit.status = UnitStatus::Infused);
                if let Some(&ix) = ixs.first() {
                    self.verifications.remove(order);
                    self.infused_orders.insert(order.clone(), *code);
                    self.infusions.insert(
                        ix,
                        Infusion {
                            order: order.clone(),
                            patient: patient.clone(),
                            code: *code,
                            at: *at,
                        },
                    );
                }
                ixs
            }
        };
        for ix in touched {
            self.timeline[ix as usize].push(log_ix);
        }
        self.log.push(event.clone());
    }

    fn known(&mut self, code: &UnitCode) -> Vec<UnitIx> {
        match self.ix(code) {
            Some(ix) => vec![ix],
            None => {
                self.anomalies
                    .push(format!("event refers to unknown unit {code}"));
                Vec::new()
            }
        }
    }

    fn update(&mut self, code: &UnitCode, change: impl FnOnce(&mut Unit)) -> Vec<UnitIx> {
        let ixs = self.known(code);
        if let Some(&ix) = ixs.first() {
            change(&mut self.units[ix as usize]);
        }
        ixs
    }

    fn insert_unit(&mut self, unit: Unit) -> Option<UnitIx> {
        if self.index.contains_key(&unit.code) {
            self.anomalies
                .push(format!("unit {} was created twice", unit.code));
            return None;
        }
        let Ok(ix) = UnitIx::try_from(self.units.len()) else {
            self.anomalies.push("more units than u32 can index".into());
            return None;
        };
        self.index.insert(unit.code, ix);
        self.by_din.entry(unit.code.din()).or_default().push(ix);
        let parent_ixs: Vec<UnitIx> = unit.parents.iter().filter_map(|p| self.ix(p)).collect();
        for &parent in &parent_ixs {
            self.child_ixs[parent as usize].push(ix);
        }
        self.parent_ixs.push(parent_ixs);
        self.child_ixs.push(Vec::new());
        self.timeline.push(Vec::new());
        self.units.push(unit);
        Some(ix)
    }

    fn apply_derived(&mut self, event: &Event) -> Vec<UnitIx> {
        let Event::UnitDerived {
            operation,
            parents,
            children,
            site,
            location,
            by,
            ..
        } = event
        else {
            return Vec::new();
        };
        let mut parent_ixs = Vec::with_capacity(parents.len());
        for parent in parents {
            match self.ix(parent) {
                Some(ix) => parent_ixs.push(ix),
                None => {
                    self.anomalies
                        .push(format!("unit.derived names unknown parent {parent}"));
                    return Vec::new();
                }
            }
        }
        let patient = parent_ixs
            .first()
            .and_then(|&ix| self.units[ix as usize].patient.clone());
        if operation.consumes_parents() {
            for &ix in &parent_ixs {
                self.units[ix as usize].status = UnitStatus::Consumed;
            }
        }
        let mut touched = parent_ixs;
        for child in children {
            let unit = Unit {
                code: child.code,
                parents: parents.clone(),
                status: UnitStatus::Available,
                expires_at: child.expires_at,
                site: site.clone(),
                location: location.clone(),
                custodian: by.clone(),
                patient: patient.clone(),
            };
            touched.extend(self.insert_unit(unit));
        }
        touched
    }

    /// Checks the state's invariants: no anomalies from applied events; no DIN allocated
    /// twice; the code index agrees with the units; every child's parents exist and were
    /// created before it (so the genealogy is acyclic); parent and child links agree; every
    /// infusion is on an infused unit. Returns the first violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        if let Some(anomaly) = self.anomalies.first() {
            return Err(format!("an applied event did not fit the state: {anomaly}"));
        }
        self.allocator.check_invariants()?;
        if self.index.len() != self.units.len() {
            return Err("code index and units differ in size".into());
        }
        for (ix, unit) in self.units.iter().enumerate() {
            self.check_unit(ix, unit)?;
        }
        for (ix, infusion) in &self.infusions {
            let unit = &self.units[*ix as usize];
            if unit.status != UnitStatus::Infused || unit.code != infusion.code {
                return Err(format!(
                    "infusion of {} on a unit not infused",
                    infusion.code
                ));
            }
        }
        Ok(())
    }

    fn check_unit(&self, ix: usize, unit: &Unit) -> Result<(), String> {
        if self.index.get(&unit.code).map(|&i| i as usize) != Some(ix) {
            return Err(format!("unit {} is not indexed at {ix}", unit.code));
        }
        let parent_ixs = &self.parent_ixs[ix];
        if parent_ixs.len() != unit.parents.len() {
            return Err(format!("unit {}: a parent does not exist", unit.code));
        }
        for (&pix, code) in parent_ixs.iter().zip(&unit.parents) {
            if pix as usize >= ix {
                return Err(format!(
                    "unit {} has parent {code} created after it (cycle)",
                    unit.code
                ));
            }
            if self.units[pix as usize].code != *code {
                return Err(format!(
                    "unit {}: parent link to {code} is wrong",
                    unit.code
                ));
            }
            let Ok(child) = UnitIx::try_from(ix) else {
                return Err("unit index out of range".into());
            };
            if !self.child_ixs[pix as usize].contains(&child) {
                return Err(format!("{code} does not list its child {}", unit.code));
            }
        }
        for &cix in &self.child_ixs[ix] {
            if (cix as usize) <= ix {
                return Err(format!("unit {} has a child created before it", unit.code));
            }
        }
        Ok(())
    }
}
