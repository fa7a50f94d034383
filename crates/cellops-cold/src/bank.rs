//! The allogeneic dose bank: a lot split into many doses, allocation of a dose to a patient
//! order by rules (released, not expired, compatible, first expiry first), and recall of a
//! lot listing every dose and recipient.

use cellops_custody::{CustodyState, OrderId, SubjectId, UnitCode, UnitStatus};
use cellops_domain::{SiteId, Timestamp, UserId};
use serde::Serialize;
use std::collections::BTreeSet;

use crate::error::ColdError;
use crate::event::{BankDose, ColdEvent};
use crate::excursion::check_usable;
use crate::ids::{Position, ShipmentId};
use crate::monitor::check_reason;
use crate::state::ColdState;

/// Most doses in one lot.
pub const LOT_DOSES_MAX: usize = 1_000;
/// Most HLA antigens on a lot or antibodies on an order.
pub const HLA_ENTRIES_MAX: usize = 64;
/// Longest HLA antigen name, characters.
const HLA_CHARS_MAX: usize = 32;

/// Bank a lot's doses.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterLot {
    /// The lot (the formulated parent unit the doses were split from).
    pub lot: UnitCode,
    /// The doses.
    pub doses: Vec<BankDose>,
    /// Donor HLA typing (antigens, e.g. `A*02:01`).
    pub hla: Vec<String>,
    /// The bank's site.
    pub site: SiteId,
    /// Who.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// A patient order for one dose.
#[derive(Debug, Clone, PartialEq)]
pub struct DoseOrder {
    /// The order.
    pub order: OrderId,
    /// The recipient.
    pub patient: SubjectId,
    /// The product ordered: ISBT 128 product description code (5 characters, e.g. `S1234`).
    pub product: String,
    /// HLA antigens the patient has antibodies against: a lot carrying any is incompatible.
    pub antibodies: Vec<String>,
    /// The dose must not expire before this time (planned infusion).
    pub needed_by: Timestamp,
    /// The bank's site.
    pub site: SiteId,
    /// Who allocates.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

fn check_hla(field: &'static str, list: &[String]) -> Result<(), ColdError> {
    if list.len() > HLA_ENTRIES_MAX {
        return Err(ColdError::BatchSize {
            field,
            count: list.len(),
            max: HLA_ENTRIES_MAX,
        });
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '*' | ':' | '-');
    for h in list {
        if h.is_empty() || h.len() > HLA_CHARS_MAX || !h.chars().all(ok) {
            return Err(ColdError::InvalidHla {
                field,
                value: h.chars().take(64).collect(),
            });
        }
    }
    Ok(())
}

/// Decides banking a lot: every dose is an existing unit made from the lot, at the bank
/// site, in no other lot; the lot is not banked yet.
pub fn decide_register_lot(
    state: &ColdState,
    custody: &CustodyState,
    c: &RegisterLot,
) -> Result<ColdEvent, ColdError> {
    if state.lot(&c.lot).is_some() {
        return Err(ColdError::LotExists { lot: c.lot });
    }
    if c.doses.is_empty() || c.doses.len() > LOT_DOSES_MAX {
        return Err(ColdError::BatchSize {
            field: "doses",
            count: c.doses.len(),
            max: LOT_DOSES_MAX,
        });
    }
    check_hla("hla", &c.hla)?;
    let mut seen = BTreeSet::new();
    for d in &c.doses {
        let unit = custody
            .unit(&d.code)
            .ok_or(ColdError::UnknownUnit { unit: d.code })?;
        if !unit.parents().contains(&c.lot) {
            return Err(ColdError::DoseNotFromLot {
                dose: d.code,
                lot: c.lot,
            });
        }
        if let Some(other) = state.lot_of(&d.code) {
            return Err(ColdError::DoseInOtherLot {
                dose: d.code,
                lot: other.lot,
            });
        }
        if !seen.insert(d.code) {
            return Err(ColdError::DuplicateDose { dose: d.code });
        }
    }
    Ok(ColdEvent::LotRegistered {
        lot: c.lot,
        doses: c.doses.clone(),
        hla: c.hla.clone(),
        site: c.site.clone(),
        by: c.by.clone(),
        at: c.at,
    })
}

/// Why doses were passed over, counted, for the "no dose" message.
#[derive(Debug, Default)]
struct Passed {
    considered: usize,
    not_released: usize,
    allocated: usize,
    not_in_bank: usize,
    expired: usize,
    excursion: usize,
    incompatible: usize,
}

impl Passed {
    fn summary(&self) -> String {
        format!(
            "{} doses of the product at the site: {} in unreleased lots, {} already allocated, {} not in storage or not available, {} expiring before needed_by, {} blocked by an excursion, {} incompatible (lot HLA against the patient's antibodies)",
            self.considered,
            self.not_released,
            self.allocated,
            self.not_in_bank,
            self.expired,
            self.excursion,
            self.incompatible
        )
    }
}

/// Decides the allocation of one dose to `order`: among the doses of the ordered product at
/// the bank site, in released lots (`is_released(lot)`), unallocated, available and in
/// storage, not expiring before `needed_by`, free of excursion blocks, and compatible (no
/// lot HLA antigen the patient has antibodies against), the one that expires first (ties
/// by unit code). An order gets at most one active allocation.
pub fn decide_allocate(
    state: &ColdState,
    custody: &CustodyState,
    order: &DoseOrder,
    is_released: impl Fn(&UnitCode) -> bool,
) -> Result<ColdEvent, ColdError> {
    check_hla("antibodies", &order.antibodies)?;
    if let Some(a) = state
        .allocations()
        .iter()
        .find(|a| a.order == order.order && a.cancelled.is_none())
    {
        return Err(ColdError::OrderAllocated {
            order: order.order.clone(),
            dose: a.dose,
        });
    }
    let antibodies: BTreeSet<&str> = order.antibodies.iter().map(String::as_str).collect();
    let mut passed = Passed::default();
    let mut best: Option<(&BankDose, UnitCode)> = None;
    for lot in state.lots.values().filter(|l| l.site == order.site) {
        let released = is_released(&lot.lot);
        let compatible = lot.hla.iter().all(|h| !antibodies.contains(h.as_str()));
        for d in &lot.doses {
            if d.code.product().description_code().as_str() != order.product {
                continue;
            }
            passed.considered += 1;
            let available = custody
                .unit(&d.code)
                .is_some_and(|u| u.status() == UnitStatus::Available)
                && state.stored(&d.code).is_some();
            let counter = if !released {
                &mut passed.not_released
            } else if state.allocation_of(&d.code).is_some() {
                &mut passed.allocated
            } else if !available {
                &mut passed.not_in_bank
            } else if d.expires_at <= order.needed_by {
                &mut passed.expired
            } else if check_usable(state, &d.code).is_err() {
                &mut passed.excursion
            } else if !compatible {
                &mut passed.incompatible
            } else {
                if best.is_none_or(|(b, _)| (d.expires_at, d.code) < (b.expires_at, b.code)) {
                    best = Some((d, lot.lot));
                }
                continue;
            };
            *counter += 1;
        }
    }
    let (dose, lot) = best.ok_or_else(|| ColdError::NoDoseAvailable {
        order: order.order.clone(),
        summary: passed.summary(),
    })?;
    Ok(ColdEvent::DoseAllocated {
        dose: dose.code,
        lot,
        order: order.order.clone(),
        patient: order.patient.clone(),
        by: order.by.clone(),
        at: order.at,
    })
}

/// Decides withdrawing an allocation (a reason is required).
pub fn decide_cancel_allocation(
    state: &ColdState,
    dose: &UnitCode,
    order: &OrderId,
    reason: &str,
    by: &UserId,
    at: Timestamp,
) -> Result<ColdEvent, ColdError> {
    match state.allocation_of(dose) {
        Some(a) if &a.order == order => {}
        _ => {
            return Err(ColdError::NotAllocated {
                dose: *dose,
                order: order.clone(),
            });
        }
    }
    check_reason("reason", reason)?;
    Ok(ColdEvent::AllocationCancelled {
        dose: *dose,
        order: order.clone(),
        reason: reason.trim().to_string(),
        by: by.clone(),
        at,
    })
}

/// Where one dose of a recalled lot is and who has or had it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoseRecall {
    /// The dose.
    pub dose: UnitCode,
    /// Custody status (none when custody does not know it).
    pub status: Option<UnitStatus>,
    /// Storage position, when stored.
    pub position: Option<Position>,
    /// Active allocation: order and patient.
    pub allocated_to: Option<(OrderId, SubjectId)>,
    /// Infusion: order, patient, when.
    pub infused_into: Option<(OrderId, SubjectId, Timestamp)>,
    /// The last shipment it travelled in.
    pub shipment: Option<ShipmentId>,
}

/// A lot recall: every dose and every recipient (allocated or infused).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LotRecall {
    /// The lot.
    pub lot: UnitCode,
    /// Every dose.
    pub doses: Vec<DoseRecall>,
    /// Every patient a dose is allocated to or was infused into.
    pub recipients: BTreeSet<SubjectId>,
}

/// Recalls a banked lot.
pub fn recall_lot(
    state: &ColdState,
    custody: &CustodyState,
    lot: &UnitCode,
) -> Result<LotRecall, ColdError> {
    let banked = state.lot(lot).ok_or(ColdError::UnknownLot { lot: *lot })?;
    let infusions = custody
        .recall_by_unit(lot)
        .map(|r| r.infusions)
        .unwrap_or_default();
    let mut recipients = BTreeSet::new();
    let doses = banked
        .doses
        .iter()
        .map(|d| {
            let allocated_to = state
                .allocation_of(&d.code)
                .map(|a| (a.order.clone(), a.patient.clone()));
            let infused_into = infusions
                .iter()
                .find(|i| i.code == d.code)
                .map(|i| (i.order.clone(), i.patient.clone(), i.at));
            if let Some((_, p)) = &allocated_to {
                recipients.insert(p.clone());
            }
            if let Some((_, p, _)) = &infused_into {
                recipients.insert(p.clone());
            }
            DoseRecall {
                dose: d.code,
                status: custody.unit(&d.code).map(|u| u.status()),
                position: state.stored(&d.code).map(|s| s.position.clone()),
                allocated_to,
                infused_into,
                shipment: state
                    .shipments()
                    .filter(|s| s.units.contains(&d.code))
                    .max_by_key(|s| s.packed_at)
                    .map(|s| s.shipment.clone()),
            }
        })
        .collect();
    Ok(LotRecall {
        lot: *lot,
        doses,
        recipients,
    })
}
