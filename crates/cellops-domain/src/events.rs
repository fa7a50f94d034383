//! The catalogue of event types the ledger accepts: every fact cellops records has a name
//! and a version here. Payload shapes live with the code that decides them; this list is
//! what `/api/ledger/event-types` publishes and what the ledger refuses anything outside of.

/// One kind of ledger record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    pub version: u32,
    pub description: &'static str,
}

const fn ev(name: &'static str, version: u32, description: &'static str) -> EventType {
    EventType {
        name,
        version,
        description,
    }
}

/// Accounts, authentication, e-signatures and general records (the Foundation).
pub const CORE_EVENT_TYPES: &[EventType] = &[
    ev(
        "user.created",
        1,
        "a user account was created (ids are never reused)",
    ),
    ev(
        "user.deactivated",
        1,
        "a user account was deactivated; the id stays reserved",
    ),
    ev(
        "credential.set",
        1,
        "a user's password was set or reset (the hash is not in the ledger)",
    ),
    ev("role.granted", 1, "a role was granted to a user at a site"),
    ev(
        "role.revoked",
        1,
        "a role was revoked from a user at a site",
    ),
    ev("auth.login", 1, "a user logged in and a session began"),
    ev("auth.login_failed", 1, "a login attempt failed"),
    ev("auth.logout", 1, "a session ended by logout"),
    ev(
        "auth.locked",
        1,
        "an account was locked after repeated failures (security alert)",
    ),
    ev("auth.unlocked", 1, "an administrator unlocked an account"),
    ev(
        "token.issued",
        1,
        "an API token was issued (only its hash is recorded)",
    ),
    ev("token.revoked", 1, "an API token was revoked"),
    ev(
        "esig.policy_acknowledged",
        1,
        "a user acknowledged that their e-signature is legally binding",
    ),
    ev(
        "esig.signed",
        1,
        "a user e-signed a record with a stated meaning",
    ),
    ev(
        "esig.failed",
        1,
        "an e-signature attempt failed (wrong password or not allowed)",
    ),
    ev(
        "note.recorded",
        1,
        "a free-text note on a stream (an observation, a comment)",
    ),
    ev(
        "record.corrected",
        1,
        "a correction of an earlier record, with its reason",
    ),
];
