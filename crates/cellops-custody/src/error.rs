//! The one error type of this crate. Messages name the unit, the field, the rule and what to
//! do, in words for the person holding the scanner.

use cellops_domain::{SiteId, Timestamp, UserId};

use crate::ids::{OrderId, SubjectId, UnitCode};
use crate::step::CustodyStep;
use crate::unit::UnitStatus;

/// Every refusal of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustodyError {
    /// A free-text identifier broke its rule.
    #[error("{field} {value:?} is invalid: {rule}")]
    InvalidId {
        /// Which identifier.
        field: &'static str,
        /// What was given.
        value: String,
        /// The rule.
        rule: &'static str,
    },
    /// A unit code in text form did not parse.
    #[error("unit code {text:?} is invalid: {rule}")]
    InvalidUnitCode {
        /// What was given.
        text: String,
        /// The rule, with the codec's position and reason.
        rule: String,
    },
    /// An event's JSON did not parse.
    #[error("custody event JSON is invalid: {reason}")]
    EventJson {
        /// The parser's reason.
        reason: String,
    },
    /// An event's version is not one this build reads.
    #[error(
        "custody event version {found} is not supported (this build reads version {supported})"
    )]
    EventVersion {
        /// The version found.
        found: u32,
        /// The version supported.
        supported: u32,
    },
    /// The site has no Facility Identification Number configured.
    #[error(
        "site {site} has no facility number (FIN) configured: add it to the site configuration before allocating DINs"
    )]
    SiteNotConfigured {
        /// The site.
        site: SiteId,
    },
    /// A DIN was requested for a FIN other than the site's own.
    #[error(
        "site {site} may allocate DINs only for its own facility number {configured}, not {requested} (rule: DINs are allocated by the facility that labels the unit)"
    )]
    FinNotSiteFin {
        /// The site.
        site: SiteId,
        /// The FIN asked for.
        requested: String,
        /// The site's FIN.
        configured: String,
    },
    /// The per-year sequence is used up.
    #[error(
        "no DIN sequence numbers left for facility {fin} in year {nominal_year:02}: all up to {max} are allocated (rule: a DIN is never reused); contact ICCBBA or the site administrator"
    )]
    DinSequenceExhausted {
        /// The facility.
        fin: String,
        /// The nominal year.
        nominal_year: u8,
        /// The highest sequence number.
        max: u32,
    },
    /// The number of DINs requested at once is out of range.
    #[error("count {count} of DINs to allocate must be 1–{max}")]
    AllocationCount {
        /// What was asked.
        count: u32,
        /// The limit.
        max: u32,
    },
    /// A DIN belongs to a facility that is not part of this network.
    #[error(
        "the label's facility number {fin} is not one of this network's facilities: this unit was not labelled here. Do not use it; call the supervisor"
    )]
    UnknownFacility {
        /// The FIN read.
        fin: String,
    },
    /// A unit was created with a DIN of this network that was never allocated.
    #[error(
        "DIN {din} was never allocated by this network: print labels only from allocated DINs (rule: DINs come from the ledger's sequence)"
    )]
    DinNotAllocated {
        /// The DIN.
        din: String,
    },
    /// A new unit's code is already in use.
    #[error(
        "unit {code} already exists: every container needs its own code (change the division or allocate a new DIN)"
    )]
    UnitExists {
        /// The code.
        code: UnitCode,
    },
    /// The same code appears twice in one command.
    #[error("unit {code} appears twice in the same operation: every child needs its own code")]
    DuplicateCode {
        /// The code.
        code: UnitCode,
    },
    /// No unit has this code.
    #[error("no unit {code} is known: check the label, or the unit was never registered")]
    UnknownUnit {
        /// The code.
        code: UnitCode,
    },
    /// A new unit's expiry is not after its creation.
    #[error(
        "unit {code}: expiry {expires_at} must be after {at} (rule: expires_at > time of creation)"
    )]
    ExpiryNotAfter {
        /// The unit.
        code: UnitCode,
        /// The expiry.
        expires_at: Timestamp,
        /// The creation time.
        at: Timestamp,
    },
    /// The unit has passed its expiry.
    #[error(
        "STOP: unit {code} EXPIRED at {expires_at} (now {at}). Do not use it; set it aside and call the supervisor"
    )]
    Expired {
        /// The unit.
        code: UnitCode,
        /// The expiry.
        expires_at: Timestamp,
        /// Now.
        at: Timestamp,
    },
    /// The unit has not yet expired.
    #[error(
        "unit {code} does not expire until {expires_at} (now {at}); it cannot be marked expired"
    )]
    NotYetExpired {
        /// The unit.
        code: UnitCode,
        /// The expiry.
        expires_at: Timestamp,
        /// Now.
        at: Timestamp,
    },
    /// The unit's status does not allow the operation.
    #[error("unit {code} is {status} and cannot be used to {operation} (it must be {needed})")]
    NotUsable {
        /// The unit.
        code: UnitCode,
        /// Its status.
        status: UnitStatus,
        /// What was tried.
        operation: &'static str,
        /// The status needed.
        needed: UnitStatus,
    },
    /// The unit is at another site.
    #[error("unit {code} is recorded at site {unit_site}, not at {site}: receive it here first")]
    AtOtherSite {
        /// The unit.
        code: UnitCode,
        /// Where it is recorded.
        unit_site: SiteId,
        /// Where the operation was tried.
        site: SiteId,
    },
    /// A derivation has the wrong number of parents or children.
    #[error("{operation} needs {rule}; got {parents} parent(s) and {children} child(ren)")]
    DerivationShape {
        /// The operation.
        operation: &'static str,
        /// Parents given.
        parents: usize,
        /// Children given.
        children: usize,
        /// The rule.
        rule: &'static str,
    },
    /// A child of a split, aliquot or sample does not carry its parent's DIN.
    #[error(
        "{operation}: child {child} must keep the parent's DIN {parent_din} (rule: divisions and samples keep the DIN; only the division or product code changes)"
    )]
    ChildDinMismatch {
        /// The operation.
        operation: &'static str,
        /// The child.
        child: UnitCode,
        /// The parent's DIN.
        parent_din: String,
    },
    /// A pool or formulation would mix different patients' cells.
    #[error(
        "STOP: {first} belongs to patient {first_patient} but {other} belongs to {other_patient}: cells of different patients (or patient and donor material) must never be combined"
    )]
    MixesPatients {
        /// One parent.
        first: UnitCode,
        /// Its patient, or "no patient (donor material)".
        first_patient: String,
        /// Another parent.
        other: UnitCode,
        /// Its patient.
        other_patient: String,
    },
    /// The giver of a hand-off does not hold the unit.
    #[error(
        "unit {code} is in the custody of {custodian}, not {from}: the person handing over must be the recorded custodian"
    )]
    NotCustodian {
        /// The unit.
        code: UnitCode,
        /// The recorded custodian.
        custodian: UserId,
        /// Who tried to hand it over.
        from: UserId,
    },
    /// A hand-off from a person to the same person.
    #[error("a hand-off needs two different people; {user} cannot hand over to themself")]
    HandOffToSelf {
        /// The user.
        user: UserId,
    },
    /// A free-text field is empty or too long.
    #[error("{field} must be 1–{max} characters, got {chars}")]
    TextLength {
        /// The field.
        field: &'static str,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// A list in a command is too long.
    #[error("{field} may hold at most {max} entries, got {found}")]
    TooMany {
        /// The field.
        field: &'static str,
        /// Entries given.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// The scan could not be read as ISBT 128.
    #[error(
        "cannot read this label for step {step}: {reason}. Expected unit {expected}. Scan again or type the code"
    )]
    Unreadable {
        /// The step.
        step: CustodyStep,
        /// The unit expected.
        expected: UnitCode,
        /// The codec's message (position and rule).
        reason: String,
    },
    /// The scan lacked the DIN or the product code.
    #[error(
        "the scan holds no {missing}: scan the 2-D (DataMatrix) code that holds both DIN and product code. Expected unit {expected}"
    )]
    Incomplete {
        /// What was missing.
        missing: &'static str,
        /// The unit expected.
        expected: UnitCode,
    },
    /// A different unit was scanned.
    #[error(
        "STOP: WRONG UNIT for step {step}. Expected {expected_text}; scanned {scanned_text}. Do not use the scanned unit; find the expected one"
    )]
    WrongUnit {
        /// The step.
        step: CustodyStep,
        /// The unit expected.
        expected: UnitCode,
        /// The unit scanned.
        scanned: UnitCode,
        /// Expected, eye-readable.
        expected_text: String,
        /// Scanned, eye-readable.
        scanned_text: String,
    },
    /// A unit from another facility was scanned.
    #[error(
        "STOP: WRONG FACILITY for step {step}. The label was issued by facility {scanned_fin}; the expected unit {expected} comes from facility {expected_fin}. Do not use it"
    )]
    OtherFacility {
        /// The step.
        step: CustodyStep,
        /// The unit expected.
        expected: UnitCode,
        /// The FIN scanned.
        scanned_fin: String,
        /// The FIN expected.
        expected_fin: String,
    },
    /// The unit is not at the state the step needs.
    #[error(
        "STOP: unit {code} cannot be scanned at step {step}: it is {status}, and this step needs a unit that is {needed}. Check the previous step was recorded"
    )]
    WrongStep {
        /// The unit.
        code: UnitCode,
        /// The step.
        step: CustodyStep,
        /// Its status.
        status: UnitStatus,
        /// The status needed.
        needed: UnitStatus,
    },
    /// The two bedside checkers are the same person.
    #[error(
        "STOP: the bedside check needs two DIFFERENT people; {user} cannot be both first and second checker"
    )]
    SameChecker {
        /// The user.
        user: UserId,
    },
    /// A bedside checker is not qualified.
    #[error(
        "STOP: {user} is not qualified for the bedside identity check at site {site} at {at}; ask a qualified colleague"
    )]
    NotQualified {
        /// The user.
        user: UserId,
        /// The site.
        site: SiteId,
        /// When.
        at: Timestamp,
    },
    /// The wristband could not be read.
    #[error(
        "STOP: the wristband scanned by {checker} cannot be read: {reason}. Scan the wristband again"
    )]
    WristbandUnreadable {
        /// Who scanned.
        checker: UserId,
        /// Why.
        reason: String,
    },
    /// The wristband is another patient's.
    #[error(
        "STOP: WRONG PATIENT. {checker} scanned wristband {scanned}, but order {order} is for patient {expected}. Do not infuse"
    )]
    WrongPatient {
        /// Who scanned.
        checker: UserId,
        /// The order.
        order: OrderId,
        /// Wristband read.
        scanned: SubjectId,
        /// Order's patient.
        expected: SubjectId,
    },
    /// The unit at the bedside is not the order's.
    #[error(
        "STOP: WRONG UNIT. {checker} scanned {scanned}, but order {order} is for unit {expected}. Do not infuse"
    )]
    WrongOrderUnit {
        /// Who scanned.
        checker: UserId,
        /// The order.
        order: OrderId,
        /// Unit read (eye-readable or raw).
        scanned: String,
        /// Order's unit.
        expected: UnitCode,
    },
    /// The unit belongs to another patient than the order's.
    #[error(
        "STOP: unit {code} was made for patient {unit_patient}, but order {order} is for patient {order_patient}. Do not infuse; call the physician"
    )]
    UnitForOtherPatient {
        /// The unit.
        code: UnitCode,
        /// The unit's patient.
        unit_patient: SubjectId,
        /// The order.
        order: OrderId,
        /// The order's patient.
        order_patient: SubjectId,
    },
    /// No bedside verification is recorded for the order.
    #[error(
        "infusion for order {order} cannot be recorded: no bedside verification by two qualified people is recorded. Do the bedside check first"
    )]
    NotVerified {
        /// The order.
        order: OrderId,
    },
    /// The bedside verification is too old.
    #[error(
        "infusion for order {order} cannot be recorded: the bedside check at {verified_at} is more than {minutes_max} minutes old (now {at}). Repeat the bedside check"
    )]
    VerificationStale {
        /// The order.
        order: OrderId,
        /// When verified.
        verified_at: Timestamp,
        /// Now.
        at: Timestamp,
        /// The limit.
        minutes_max: i64,
    },
    /// The order was already infused.
    #[error("order {order} was already infused with unit {code}: an order is infused once")]
    AlreadyInfused {
        /// The order.
        order: OrderId,
        /// The unit.
        code: UnitCode,
    },
}

impl CustodyError {
    /// A stable machine name for the reason, recorded in refusal events (`wrong_unit`, …).
    pub fn reason_code(&self) -> &'static str {
        match self {
            CustodyError::InvalidId { .. } => "invalid_id",
            CustodyError::InvalidUnitCode { .. } => "invalid_unit_code",
            CustodyError::EventJson { .. } => "event_json",
            CustodyError::EventVersion { .. } => "event_version",
            CustodyError::SiteNotConfigured { .. } => "site_not_configured",
            CustodyError::FinNotSiteFin { .. } => "fin_not_site_fin",
            CustodyError::DinSequenceExhausted { .. } => "din_sequence_exhausted",
            CustodyError::AllocationCount { .. } => "allocation_count",
            CustodyError::UnknownFacility { .. } => "unknown_facility",
            CustodyError::DinNotAllocated { .. } => "din_not_allocated",
            CustodyError::UnitExists { .. } => "unit_exists",
            CustodyError::DuplicateCode { .. } => "duplicate_code",
            CustodyError::UnknownUnit { .. } => "unknown_unit",
            CustodyError::ExpiryNotAfter { .. } => "expiry_not_after",
            CustodyError::Expired { .. } => "expired",
            CustodyError::NotYetExpired { .. } => "not_yet_expired",
            CustodyError::NotUsable { .. } => "not_usable",
            CustodyError::AtOtherSite { .. } => "at_other_site",
            CustodyError::DerivationShape { .. } => "derivation_shape",
            CustodyError::ChildDinMismatch { .. } => "child_din_mismatch",
            CustodyError::MixesPatients { .. } => "mixes_patients",
            CustodyError::NotCustodian { .. } => "not_custodian",
            CustodyError::HandOffToSelf { .. } => "hand_off_to_self",
            CustodyError::TextLength { .. } => "text_length",
            CustodyError::TooMany { .. } => "too_many",
            CustodyError::Unreadable { .. } => "unreadable",
            CustodyError::Incomplete { .. } => "incomplete",
            CustodyError::WrongUnit { .. } => "wrong_unit",
            CustodyError::OtherFacility { .. } => "other_facility",
            CustodyError::WrongStep { .. } => "wrong_step",
            CustodyError::SameChecker { .. } => "same_checker",
            CustodyError::NotQualified { .. } => "not_qualified",
            CustodyError::WristbandUnreadable { .. } => "wristband_unreadable",
            CustodyError::WrongPatient { .. } => "wrong_patient",
            CustodyError::WrongOrderUnit { .. } => "wrong_order_unit",
            CustodyError::UnitForOtherPatient { .. } => "unit_for_other_patient",
            CustodyError::NotVerified { .. } => "not_verified",
            CustodyError::VerificationStale { .. } => "verification_stale",
            CustodyError::AlreadyInfused { .. } => "already_infused",
        }
    }
}
