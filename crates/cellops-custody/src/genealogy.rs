//! Units and genealogy (item 3): creating and deriving units, hand-offs, expiry and
//! destruction, and the trace and recall queries over the indexed graph.

use cellops_domain::{SiteId, Timestamp, UserId};
use cellops_isbt::Din;
use std::collections::{BTreeSet, HashSet};

use crate::error::CustodyError;
use crate::event::{ChildUnit, Derivation, Event, NOTE_CHARS_MAX, ReceiptCondition};
use crate::ids::{LocationId, ReagentLot, SubjectId, UnitCode};
use crate::state::{CustodyState, Infusion, UnitIx};
use crate::unit::{Unit, UnitStatus};

/// Most parents one derivation may have.
pub const DERIVE_PARENTS_MAX: usize = 64;
/// Most children one derivation may make (e.g. an allogeneic lot into doses).
pub const DERIVE_CHILDREN_MAX: usize = 1000;
/// Most reagent lots one derivation may record.
pub const DERIVE_REAGENT_LOTS_MAX: usize = 64;

/// Register a collected, labelled unit (a root of the genealogy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateUnit {
    /// DIN (allocated by this network) + product code.
    pub code: UnitCode,
    /// The patient (autologous) or none (donor material).
    pub patient: Option<SubjectId>,
    /// Expiry (UTC), after `at`.
    pub expires_at: Timestamp,
    /// Collecting site.
    pub site: SiteId,
    /// Where.
    pub location: LocationId,
    /// Who collected and labelled it.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// Make children from parents by split, pool, aliquot, sample or formulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derive {
    /// Which operation.
    pub operation: Derivation,
    /// Parents (existing, available, unexpired, at `site`).
    pub parents: Vec<UnitCode>,
    /// Children (new codes).
    pub children: Vec<ChildUnit>,
    /// Reagent lots used to make the children (recorded as `reagent.lot_used`).
    pub reagent_lots: Vec<ReagentLot>,
    /// Site.
    pub site: SiteId,
    /// Where.
    pub location: LocationId,
    /// Who.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// Pass custody of a unit from one person to another.
#[derive(Debug, Clone, PartialEq)]
pub struct HandOff {
    /// The unit.
    pub code: UnitCode,
    /// The current custodian.
    pub from: UserId,
    /// The receiver.
    pub to: UserId,
    /// The receiver's site.
    pub site: SiteId,
    /// Where.
    pub location: LocationId,
    /// What the receiver found.
    pub condition: ReceiptCondition,
    /// When.
    pub at: Timestamp,
}

/// The genealogy and custody timeline of one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The unit.
    pub unit: Unit,
    /// Every unit it was made from, nearest first.
    pub ancestors: Vec<UnitCode>,
    /// Every unit made from it, nearest first.
    pub descendants: Vec<UnitCode>,
    /// Every recorded fact about the unit, in ledger order.
    pub timeline: Vec<Event>,
}

/// The answer to a recall: everything derived from the recalled material, and who received it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recall {
    /// Every affected unit (the starting units and all their descendants), in creation order.
    pub units: Vec<UnitCode>,
    /// Affected units still usable (available or in transit): quarantine these now.
    pub in_circulation: Vec<UnitCode>,
    /// Every infusion of an affected unit.
    pub infusions: Vec<Infusion>,
    /// The patients who received anything affected.
    pub patients: BTreeSet<SubjectId>,
}

fn check_unit_usable(
    state: &CustodyState,
    code: &UnitCode,
    site: &SiteId,
    operation: &'static str,
    at: Timestamp,
) -> Result<(), CustodyError> {
    let unit = state
        .unit(code)
        .ok_or(CustodyError::UnknownUnit { code: *code })?;
    if unit.status() != UnitStatus::Available {
        return Err(CustodyError::NotUsable {
            code: *code,
            status: unit.status(),
            operation,
            needed: UnitStatus::Available,
        });
    }
    if unit.is_expired_at(at) {
        return Err(CustodyError::Expired {
            code: *code,
            expires_at: unit.expires_at(),
            at,
        });
    }
    if unit.site() != site {
        return Err(CustodyError::AtOtherSite {
            code: *code,
            unit_site: unit.site().clone(),
            site: site.clone(),
        });
    }
    Ok(())
}

/// Decides `unit.created`: the code must be new, its DIN allocated by this network (a DIN of
/// a facility outside the network is refused), and the expiry after `at`.
pub fn decide_create_unit(
    state: &CustodyState,
    command: &CreateUnit,
) -> Result<Vec<Event>, CustodyError> {
    let din = command.code.din();
    if !state.is_network_fin(din.fin()) {
        return Err(CustodyError::UnknownFacility {
            fin: din.fin().to_string(),
        });
    }
    if !state.allocator().is_allocated(&din) {
        return Err(CustodyError::DinNotAllocated {
            din: din.to_string(),
        });
    }
    if state.unit(&command.code).is_some() {
        return Err(CustodyError::UnitExists { code: command.code });
    }
    if command.expires_at <= command.at {
        return Err(CustodyError::ExpiryNotAfter {
            code: command.code,
            expires_at: command.expires_at,
            at: command.at,
        });
    }
    Ok(vec![Event::UnitCreated {
        code: command.code,
        patient: command.patient.clone(),
        expires_at: command.expires_at,
        site: command.site.clone(),
        location: command.location.clone(),
        by: command.by.clone(),
        at: command.at,
    }])
}

fn check_shape(command: &Derive) -> Result<(), CustodyError> {
    let (parents, children) = (command.parents.len(), command.children.len());
    let shape = |rule| CustodyError::DerivationShape {
        operation: command.operation.as_str(),
        parents,
        children,
        rule,
    };
    if parents > DERIVE_PARENTS_MAX {
        return Err(CustodyError::TooMany {
            field: "parents",
            found: parents,
            max: DERIVE_PARENTS_MAX,
        });
    }
    if children > DERIVE_CHILDREN_MAX {
        return Err(CustodyError::TooMany {
            field: "children",
            found: children,
            max: DERIVE_CHILDREN_MAX,
        });
    }
    if command.reagent_lots.len() > DERIVE_REAGENT_LOTS_MAX {
        return Err(CustodyError::TooMany {
            field: "reagent_lots",
            found: command.reagent_lots.len(),
            max: DERIVE_REAGENT_LOTS_MAX,
        });
    }
    match command.operation {
        Derivation::Split if parents != 1 || children < 2 => {
            Err(shape("exactly 1 parent and at least 2 children"))
        }
        Derivation::Pool if parents < 2 || children != 1 => {
            Err(shape("at least 2 parents and exactly 1 child"))
        }
        Derivation::Aliquot | Derivation::Sample if parents != 1 || children < 1 => {
            Err(shape("exactly 1 parent and at least 1 child"))
        }
        Derivation::Formulate if parents < 1 || children < 1 => {
            Err(shape("at least 1 parent and at least 1 child"))
        }
        _ => Ok(()),
    }
}

fn check_children(state: &CustodyState, command: &Derive) -> Result<(), CustodyError> {
    let keeps_din = matches!(
        command.operation,
        Derivation::Split | Derivation::Aliquot | Derivation::Sample
    );
    let mut seen = HashSet::with_capacity(command.children.len());
    for child in &command.children {
        if !seen.insert(child.code) || command.parents.contains(&child.code) {
            return Err(CustodyError::DuplicateCode { code: child.code });
        }
        if state.unit(&child.code).is_some() {
            return Err(CustodyError::UnitExists { code: child.code });
        }
        if child.expires_at <= command.at {
            return Err(CustodyError::ExpiryNotAfter {
                code: child.code,
                expires_at: child.expires_at,
                at: command.at,
            });
        }
        let parent_din = command.parents[0].din();
        if keeps_din && child.code.din() != parent_din {
            return Err(CustodyError::ChildDinMismatch {
                operation: command.operation.as_str(),
                child: child.code,
                parent_din: parent_din.to_string(),
            });
        }
        if !keeps_din && !state.is_network_fin(child.code.din().fin()) {
            return Err(CustodyError::UnknownFacility {
                fin: child.code.din().fin().to_string(),
            });
        }
        if !keeps_din
            && child.code.din() != parent_din
            && !state.allocator().is_allocated(&child.code.din())
        {
            return Err(CustodyError::DinNotAllocated {
                din: child.code.din().to_string(),
            });
        }
    }
    Ok(())
}

fn patient_text(patient: Option<&SubjectId>) -> String {
    match patient {
        Some(p) => p.to_string(),
        None => "no patient (donor material)".to_string(),
    }
}

fn check_same_patient(state: &CustodyState, parents: &[UnitCode]) -> Result<(), CustodyError> {
    let Some(first) = parents.first() else {
        return Ok(());
    };
    let first_patient = state.unit(first).and_then(|u| u.patient());
    for other in &parents[1..] {
        let other_patient = state.unit(other).and_then(|u| u.patient());
        if other_patient != first_patient {
            return Err(CustodyError::MixesPatients {
                first: *first,
                first_patient: patient_text(first_patient),
                other: *other,
                other_patient: patient_text(other_patient),
            });
        }
    }
    Ok(())
}

/// Decides `unit.derived` (and one `reagent.lot_used` per reagent lot, naming the children).
/// Rules: the operation's shape (split 1→≥2, pool ≥2→1, aliquot and sample 1→≥1, formulate
/// ≥1→≥1); parents exist, are available, unexpired and at `site`, and belong to one patient
/// (or all to none); children are new, unique, expire after `at`; split, aliquot and sample
/// keep the parent's DIN; a new DIN must be allocated by this network.
pub fn decide_derive(state: &CustodyState, command: &Derive) -> Result<Vec<Event>, CustodyError> {
    check_shape(command)?;
    let mut seen = HashSet::with_capacity(command.parents.len());
    for parent in &command.parents {
        if !seen.insert(*parent) {
            return Err(CustodyError::DuplicateCode { code: *parent });
        }
        check_unit_usable(
            state,
            parent,
            &command.site,
            command.operation.as_str(),
            command.at,
        )?;
    }
    check_same_patient(state, &command.parents)?;
    check_children(state, command)?;
    let mut events = vec![Event::UnitDerived {
        operation: command.operation,
        parents: command.parents.clone(),
        children: command.children.clone(),
        site: command.site.clone(),
        location: command.location.clone(),
        by: command.by.clone(),
        at: command.at,
    }];
    let child_codes: Vec<UnitCode> = command.children.iter().map(|c| c.code).collect();
    let mut lots = HashSet::new();
    for lot in &command.reagent_lots {
        if lots.insert(lot) {
            events.push(Event::ReagentLotUsed {
                lot: lot.clone(),
                units: child_codes.clone(),
                by: command.by.clone(),
                at: command.at,
            });
        }
    }
    Ok(events)
}

fn check_text(field: &'static str, text: &str, allow_empty: bool) -> Result<(), CustodyError> {
    let chars = text.chars().count();
    if chars > NOTE_CHARS_MAX || (!allow_empty && text.trim().is_empty()) {
        return Err(CustodyError::TextLength {
            field,
            chars,
            max: NOTE_CHARS_MAX,
        });
    }
    Ok(())
}

/// Decides `custody.handed_off`: the giver must be the recorded custodian, the receiver a
/// different person, and the unit not in a final status (consumed, infused, expired,
/// destroyed). An unacceptable condition is recorded as found; it does not block the record.
pub fn decide_hand_off(
    state: &CustodyState,
    command: &HandOff,
) -> Result<Vec<Event>, CustodyError> {
    let unit = state
        .unit(&command.code)
        .ok_or(CustodyError::UnknownUnit { code: command.code })?;
    if unit.status().is_final() {
        return Err(CustodyError::NotUsable {
            code: command.code,
            status: unit.status(),
            operation: "hand over",
            needed: UnitStatus::Available,
        });
    }
    if unit.custodian() != &command.from {
        return Err(CustodyError::NotCustodian {
            code: command.code,
            custodian: unit.custodian().clone(),
            from: command.from.clone(),
        });
    }
    if command.from == command.to {
        return Err(CustodyError::HandOffToSelf {
            user: command.to.clone(),
        });
    }
    check_text("condition.note", &command.condition.note, true)?;
    Ok(vec![Event::CustodyHandedOff {
        code: command.code,
        from: command.from.clone(),
        to: command.to.clone(),
        site: command.site.clone(),
        location: command.location.clone(),
        condition: command.condition.clone(),
        at: command.at,
    }])
}

/// Decides `unit.expired` for a unit whose expiry is at or before `at` and that is not yet in
/// a final status.
pub fn decide_expire(
    state: &CustodyState,
    code: &UnitCode,
    at: Timestamp,
) -> Result<Vec<Event>, CustodyError> {
    let unit = state
        .unit(code)
        .ok_or(CustodyError::UnknownUnit { code: *code })?;
    if unit.status().is_final() {
        return Err(CustodyError::NotUsable {
            code: *code,
            status: unit.status(),
            operation: "mark expired",
            needed: UnitStatus::Available,
        });
    }
    if !unit.is_expired_at(at) {
        return Err(CustodyError::NotYetExpired {
            code: *code,
            expires_at: unit.expires_at(),
            at,
        });
    }
    Ok(vec![Event::UnitExpired { code: *code, at }])
}

/// Decides `unit.destroyed`: a non-empty reason (≤ [`NOTE_CHARS_MAX`] characters) and a unit
/// not already consumed, infused or destroyed (an expired unit may be destroyed).
pub fn decide_destroy(
    state: &CustodyState,
    code: &UnitCode,
    reason: &str,
    by: &UserId,
    at: Timestamp,
) -> Result<Vec<Event>, CustodyError> {
    let unit = state
        .unit(code)
        .ok_or(CustodyError::UnknownUnit { code: *code })?;
    if unit.status().is_final() && unit.status() != UnitStatus::Expired {
        return Err(CustodyError::NotUsable {
            code: *code,
            status: unit.status(),
            operation: "destroy",
            needed: UnitStatus::Available,
        });
    }
    check_text("reason", reason, false)?;
    Ok(vec![Event::UnitDestroyed {
        code: *code,
        reason: reason.to_string(),
        by: by.clone(),
        at,
    }])
}

/// Decides `reagent.lot_used` for units made outside a derivation (e.g. a collected unit's
/// anticoagulant): every unit must exist; at most [`DERIVE_CHILDREN_MAX`] units.
pub fn decide_reagent_lot_used(
    state: &CustodyState,
    lot: &ReagentLot,
    units: &[UnitCode],
    by: &UserId,
    at: Timestamp,
) -> Result<Vec<Event>, CustodyError> {
    if units.is_empty() || units.len() > DERIVE_CHILDREN_MAX {
        return Err(CustodyError::TooMany {
            field: "units",
            found: units.len(),
            max: DERIVE_CHILDREN_MAX,
        });
    }
    for code in units {
        if state.unit(code).is_none() {
            return Err(CustodyError::UnknownUnit { code: *code });
        }
    }
    Ok(vec![Event::ReagentLotUsed {
        lot: lot.clone(),
        units: units.to_vec(),
        by: by.clone(),
        at,
    }])
}

impl CustodyState {
    fn walk(&self, start: &[UnitIx], up: bool) -> Vec<UnitIx> {
        let mut seen: HashSet<UnitIx> = start.iter().copied().collect();
        let mut order = Vec::new();
        let mut frontier: Vec<UnitIx> = start.to_vec();
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for ix in frontier {
                let links = if up {
                    &self.parent_ixs[ix as usize]
                } else {
                    &self.child_ixs[ix as usize]
                };
                for &linked in links {
                    if seen.insert(linked) {
                        order.push(linked);
                        next.push(linked);
                    }
                }
            }
            frontier = next;
        }
        order
    }

    /// The genealogy (ancestors and descendants, nearest first) and custody timeline of `code`.
    pub fn trace(&self, code: &UnitCode) -> Result<Trace, CustodyError> {
        let ix = self
            .ix(code)
            .ok_or(CustodyError::UnknownUnit { code: *code })?;
        let codes = |ixs: Vec<UnitIx>| ixs.iter().map(|&i| self.units[i as usize].code).collect();
        Ok(Trace {
            unit: self.units[ix as usize].clone(),
            ancestors: codes(self.walk(&[ix], true)),
            descendants: codes(self.walk(&[ix], false)),
            timeline: self.timeline[ix as usize]
                .iter()
                .map(|&e| self.log[e as usize].clone())
                .collect(),
        })
    }

    fn recall_from(&self, start: &[UnitIx]) -> Recall {
        let mut ixs: Vec<UnitIx> = start.to_vec();
        ixs.sort_unstable();
        ixs.dedup();
        let descendants = self.walk(&ixs, false);
        ixs.extend(descendants);
        ixs.sort_unstable();
        ixs.dedup();
        let mut recall = Recall::default();
        for ix in ixs {
            let unit = &self.units[ix as usize];
            recall.units.push(unit.code);
            if !unit.status.is_final() {
                recall.in_circulation.push(unit.code);
            }
            if let Some(infusion) = self.infusions.get(&ix) {
                recall.patients.insert(infusion.patient.clone());
                recall.infusions.push(infusion.clone());
            }
        }
        recall
    }

    /// Recall of a unit or lot: every unit derived from `code`, and the patients who received
    /// any of them. An indexed graph walk: linear in the number of affected units.
    pub fn recall_by_unit(&self, code: &UnitCode) -> Result<Recall, CustodyError> {
        let ix = self
            .ix(code)
            .ok_or(CustodyError::UnknownUnit { code: *code })?;
        Ok(self.recall_from(&[ix]))
    }

    /// Recall of every unit carrying `din` (all divisions and samples of a donation or lot)
    /// and everything derived from them. Empty when no unit has the DIN.
    pub fn recall_by_din(&self, din: &Din) -> Recall {
        match self.by_din.get(din) {
            Some(ixs) => self.recall_from(ixs),
            None => Recall::default(),
        }
    }

    /// Recall of a reagent lot: every unit made with `lot` and everything derived from them,
    /// and the patients who received any. Empty when the lot was never recorded.
    pub fn recall_by_reagent_lot(&self, lot: &ReagentLot) -> Recall {
        match self.reagent_units.get(lot) {
            Some(ixs) => self.recall_from(ixs),
            None => Recall::default(),
        }
    }
}
