//! Why an order command was refused: the rule named, in words for the hospital.

use cellops_domain::Timestamp;

/// A refused order command. `rule()` is a stable code; the text says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    /// A field is malformed.
    #[error("{field}: {message}")]
    Invalid {
        /// The request field.
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// No such order.
    #[error("order {order} does not exist")]
    UnknownOrder {
        /// The order id.
        order: String,
    },
    /// The subject is not enrolled at the hospital.
    #[error("subject {subject} is not enrolled at {site}: enrol the patient there first")]
    NotEnrolled {
        /// The subject id.
        subject: String,
        /// The hospital.
        site: String,
    },
    /// The treatment window is impossible.
    #[error("treatment window: {message}")]
    Window {
        /// What is wrong.
        message: String,
    },
    /// The dose is outside the product's range.
    #[error("dose {dose:e} {basis} is outside the {product} range {min:e}–{max:e} {basis}")]
    DoseOutOfRange {
        /// The product.
        product: &'static str,
        /// Ordered dose.
        dose: f64,
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
        /// "cells/body" or "cells/kg".
        basis: &'static str,
    },
    /// The step is not possible in the order's current stage.
    #[error("order {order} is {stage}: {action} is not possible now (next: {next})")]
    WrongStage {
        /// The order id.
        order: String,
        /// The current stage.
        stage: &'static str,
        /// What was attempted.
        action: &'static str,
        /// What the order waits for.
        next: &'static str,
    },
    /// The order is not signed by the treating physician yet.
    #[error(
        "order {order} is not signed yet: the treating physician must sign it (meaning Ordered)"
    )]
    NotSigned {
        /// The order id.
        order: String,
    },
    /// A hospital step was attempted at another site.
    #[error(
        "order {order} belongs to {order_site}, not {site}: this patient is treated at {order_site}"
    )]
    WrongHospital {
        /// The order id.
        order: String,
        /// The order's hospital.
        order_site: String,
        /// Where it was attempted.
        site: String,
    },
    /// An infusion was attempted before the product was released.
    #[error(
        "order {order}: the product is not released by QA yet; infusion is not allowed before release (or a documented release at risk)"
    )]
    NotReleased {
        /// The order id.
        order: String,
    },
    /// The starting material was held too long.
    #[error(
        "starting material of order {order} was collected at {collected_at} and may be processed until {deadline}; it is now {at}: it has expired"
    )]
    HoldTimeExceeded {
        /// The order id.
        order: String,
        /// When collected.
        collected_at: Timestamp,
        /// Hold-time deadline.
        deadline: Timestamp,
        /// Now.
        at: Timestamp,
    },
}

impl OrderError {
    /// The rule broken, as a stable code (API `error` field and the refusal record).
    pub fn rule(&self) -> &'static str {
        match self {
            OrderError::Invalid { .. } => "invalid_field",
            OrderError::UnknownOrder { .. } => "unknown_order",
            OrderError::NotEnrolled { .. } => "not_enrolled",
            OrderError::Window { .. } => "treatment_window",
            OrderError::DoseOutOfRange { .. } => "dose_out_of_range",
            OrderError::WrongStage { .. } => "wrong_stage",
            OrderError::NotSigned { .. } => "order_not_signed",
            OrderError::WrongHospital { .. } => "wrong_hospital",
            OrderError::NotReleased { .. } => "not_released",
            OrderError::HoldTimeExceeded { .. } => "hold_time_exceeded",
        }
    }

    /// The request field to point at, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            OrderError::Invalid { field, .. } => Some(field),
            OrderError::Window { .. } => Some("window"),
            OrderError::DoseOutOfRange { .. } => Some("dose_cells"),
            OrderError::NotEnrolled { .. } => Some("subject"),
            _ => None,
        }
    }
}
