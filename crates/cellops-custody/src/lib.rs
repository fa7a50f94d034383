//! Chain of identity and custody, the pure domain core (issue 5, items 2, 3, 5 and 6).
//!
//! - DIN allocation: [`decide_allocate_dins`] hands out the next sequence number per
//!   (FIN, nominal year), never one already handed out ([`DinAllocator`]).
//! - Units and genealogy: [`decide_create_unit`], [`decide_derive`] (split, pool, aliquot,
//!   sample, formulate), [`decide_hand_off`], [`decide_expire`], [`decide_destroy`],
//!   [`decide_reagent_lot_used`]; queries [`CustodyState::trace`],
//!   [`CustodyState::recall_by_unit`], [`CustodyState::recall_by_din`],
//!   [`CustodyState::recall_by_reagent_lot`].
//! - Custody scans: [`decide_scan`] accepts only the expected unit at the right step.
//! - Bedside verification: [`decide_bedside`] (two different qualified people) and
//!   [`decide_infusion`].
//!
//! Every `decide_*` is a pure function of the state and a command (time and actor inside the
//! command) returning [`Event`]s or a typed [`CustodyError`]; scans and bedside checks also
//! return the refusal event to record. [`CustodyState::apply`] is total.
//!
//! Architecture invariant: no IO, no clock, no randomness; depends only on `cellops-domain`,
//! `cellops-isbt`, serde and thiserror. The genealogy is acyclic by construction: a child is
//! always created after its parents (checked by [`CustodyState::check_invariants`]).

mod allocation;
mod bedside;
mod error;
mod event;
mod genealogy;
mod ids;
mod scan;
mod state;
mod step;
mod unit;

pub use allocation::{
    ALLOCATION_COUNT_MAX, AllocateDins, DIN_SEQUENCE_FIRST, DinAllocator, decide_allocate_dins,
    nominal_year_of,
};
pub use bedside::{
    BEDSIDE_TO_INFUSION_MINUTES_MAX, BedsideCheck, BedsideQualification, BedsideRefusal,
    CheckerScan, InfusionOrder, RecordInfusion, decide_bedside, decide_infusion,
};
pub use error::CustodyError;
pub use event::{
    CUSTODY_EVENT_TYPES, ChildUnit, Derivation, EVENT_VERSION, Event, NOTE_CHARS_MAX,
    ReceiptCondition,
};
pub use genealogy::{
    CreateUnit, DERIVE_CHILDREN_MAX, DERIVE_PARENTS_MAX, DERIVE_REAGENT_LOTS_MAX, Derive, HandOff,
    Recall, Trace, decide_create_unit, decide_derive, decide_destroy, decide_expire,
    decide_hand_off, decide_reagent_lot_used,
};
pub use ids::{
    LocationId, OrderId, ReagentLot, SubjectId, TEXT_ID_BYTES_MAX, UNIT_CODE_SEPARATOR, UnitCode,
};
pub use scan::{ExpectedStep, ScanRefusal, decide_scan};
pub use state::{CustodyState, Infusion, Verification};
pub use step::CustodyStep;
pub use unit::{Unit, UnitStatus};

/// Applies `event` to `state` (total; see [`CustodyState::apply`]).
pub fn apply(state: &mut CustodyState, event: &Event) {
    state.apply(event);
}
