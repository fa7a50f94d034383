//! The one error type of this crate. Every message names the field, the rule and what to do.

use cellops_domain::SiteId;

/// Every refusal of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrainingError {
    /// Input broke a rule (a curriculum field, an assessment signed by the trainee, …).
    #[error("{field}: {rule}")]
    Invalid {
        /// The field (TOML path or request field).
        field: String,
        /// The rule and the fix.
        rule: String,
    },
    /// Something named does not exist.
    #[error("{what} {id:?} does not exist{hint}")]
    NotFound {
        /// What kind of thing.
        what: &'static str,
        /// Its id as given.
        id: String,
        /// What to do instead (may be empty).
        hint: String,
    },
    /// The request contradicts what the record already says.
    #[error("{rule}")]
    Conflict {
        /// The rule and the fix.
        rule: String,
    },
    /// The site's qualification matrix does not name this action: refused, never allowed.
    #[error(
        "action {action:?} is not in the qualification matrix of site {site}: add it to the site's qualification-matrix TOML (or name a recipe qualification as \"qualification:<id>\"); unknown actions are refused, never allowed"
    )]
    NotConfigured {
        /// The site.
        site: SiteId,
        /// The action key.
        action: String,
    },
}

impl TrainingError {
    /// An [`TrainingError::Invalid`].
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> TrainingError {
        TrainingError::Invalid {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// A [`TrainingError::Conflict`].
    pub fn conflict(rule: impl Into<String>) -> TrainingError {
        TrainingError::Conflict { rule: rule.into() }
    }

    /// A [`TrainingError::NotFound`] with a hint (start it with "; ").
    pub fn not_found(what: &'static str, id: impl Into<String>, hint: &str) -> TrainingError {
        TrainingError::NotFound {
            what,
            id: id.into(),
            hint: hint.to_string(),
        }
    }

    /// A short machine-readable code for API responses.
    pub fn reason_code(&self) -> &'static str {
        match self {
            TrainingError::Invalid { .. } => "invalid",
            TrainingError::NotFound { .. } => "not_found",
            TrainingError::Conflict { .. } => "conflict",
            TrainingError::NotConfigured { .. } => "qualification_not_configured",
        }
    }
}
