//! Vein-to-vein orders, pure core: enrolment under a pseudonymous subject id, therapy orders
//! (product, dose, treatment window, physician), collection, the milestones of the flow,
//! follow-up, and the status everyone sees. No IO, no clock, no randomness: commands carry
//! the time and the new ids; the server records the events and feeds the ledger back into
//! the [`OrderBook`].

mod book;
mod decide;
mod error;
mod event;
mod product;
mod status;

pub use book::{Order, OrderBook, RecordView, Stage, TimelineEntry, booking_id};
pub use decide::{
    COLLECTION_VOLUME_ML_MAX, PlaceOrder, RecordCollection, RecordFollowUp, RecordInfusionDetails,
    RecordMilestone, TEXT_CHARS_MAX, check_bedside, check_infusion, decide_collection,
    decide_enrol, decide_follow_up, decide_infusion_details, decide_milestone, decide_place,
};
pub use error::OrderError;
pub use event::{
    Collected, Dose, EVENT_VERSION, Enrolled, FollowUp, FollowUpKind, Infused, MILESTONES,
    Milestone, MilestoneRecorded, ORDER_EVENT_TYPES, OrderEvent, Placed, Refused, Window,
    order_stream,
};
pub use product::{
    ALLO_CAR_T, BM_MSC, BODY_WEIGHT_KG_RANGE, Collection, DoseBasis, PRIME_CAR_T, PRODUCTS,
    Product, ProductRules, TREATMENT_WINDOW_DAYS_MAX,
};
pub use status::{OrderStatus, Predicted, status, typical_days_to_infusion};
