//! Pure domain types shared by every cellops crate.
//!
//! Architecture invariant: this crate does no IO, reads no clock and draws no random
//! numbers. Time arrives through the [`Clock`] trait (wall clock in production, [`SimClock`]
//! in tests and demos); everything here is deterministic.

mod clock;
pub mod events;
mod ids;
mod role;

pub use clock::{Clock, PacedClock, SimClock, Timestamp, TimestampError};
pub use ids::{CROCKFORD_ALPHABET, IdError, SiteId, Stream, UserId, crockford_base32};
pub use role::{Role, RoleError};
