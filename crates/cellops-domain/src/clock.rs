//! Time: UTC instants with microsecond resolution and the injected clock.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant, microseconds since the Unix epoch.
///
/// Displayed and serialized as RFC 3339 with exactly six fractional digits and `Z`
/// (`2026-11-25T22:32:37.000123Z`), which is also its canonical ledger form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_us: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimestampError {
    #[error(
        "timestamp {text:?} is not RFC 3339 UTC (expected e.g. 2026-11-25T22:32:37.000123Z): {reason}"
    )]
    Parse { text: String, reason: String },
    #[error("timestamp {unix_us} µs is outside the years 1970–9999")]
    OutOfRange { unix_us: i64 },
}

impl Timestamp {
    /// Earliest instant cellops records (the Unix epoch).
    pub const EPOCH: Timestamp = Timestamp { unix_us: 0 };
    /// Latest instant representable in the canonical form (9999-12-31T23:59:59.999999Z).
    pub const UNIX_US_MAX: i64 = 253_402_300_799_999_999;

    pub fn from_unix_us(unix_us: i64) -> Result<Timestamp, TimestampError> {
        if !(0..=Self::UNIX_US_MAX).contains(&unix_us) {
            return Err(TimestampError::OutOfRange { unix_us });
        }
        Ok(Timestamp { unix_us })
    }

    pub fn unix_us(self) -> i64 {
        self.unix_us
    }

    /// This instant plus `us` microseconds, saturating at the representable range.
    pub fn plus_us(self, us: i64) -> Timestamp {
        Timestamp {
            unix_us: self.unix_us.saturating_add(us).clamp(0, Self::UNIX_US_MAX),
        }
    }

    /// The UTC calendar date, `YYYY-MM-DD`.
    pub fn date(self) -> String {
        self.to_string()[..10].to_string()
    }

    pub fn parse(text: &str) -> Result<Timestamp, TimestampError> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| TimestampError::Parse {
            text: text.to_string(),
            reason: e.to_string(),
        })?;
        let unix_us = i64::try_from(parsed.unix_timestamp_nanos() / 1_000).map_err(|_| {
            TimestampError::Parse {
                text: text.to_string(),
                reason: "out of range".to_string(),
            }
        })?;
        Timestamp::from_unix_us(unix_us)
    }
}

/// (year, month, day) of the proleptic Gregorian calendar for days since 1970-01-01
/// (H. Hinnant's `civil_from_days`): formatting is on the ledger's hot path, so it avoids a
/// calendar library there.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.unix_us.div_euclid(1_000_000);
        let micros = self.unix_us.rem_euclid(1_000_000);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let second_of_day = secs.rem_euclid(86_400);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60,
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The only source of "now" in cellops. Production passes the wall clock (in the binary);
/// tests and the demo pass a [`SimClock`].
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// Simulated seconds per real second just now: 1 for the wall clock and for tests'
    /// clocks (which jump), more for a live demo's accelerated clock until it catches up.
    /// Rules about how long a *person* waits (session timeouts) scale by it, so a session
    /// survives a demo in which a culture day passes every few seconds.
    fn pace(&self) -> f64 {
        1.0
    }
}

/// A clock that only moves when told to. Shared between threads.
#[derive(Debug)]
pub struct SimClock {
    unix_us: AtomicI64,
}

impl SimClock {
    pub fn new(start: Timestamp) -> SimClock {
        SimClock {
            unix_us: AtomicI64::new(start.unix_us),
        }
    }

    /// Moves the clock forward by `us` microseconds (never backwards).
    pub fn advance_us(&self, us: u64) {
        let us = i64::try_from(us).unwrap_or(i64::MAX);
        self.unix_us.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        Timestamp {
            unix_us: self
                .unix_us
                .load(Ordering::SeqCst)
                .clamp(0, Timestamp::UNIX_US_MAX),
        }
    }
}

/// A demo's clock: simulated time running `speed` times as fast as a base clock (the wall
/// clock in `cellops serve --demo`), which a driver may hold at a point (the clock stops there
/// until the hold moves on) and which never runs ahead of the base clock. It starts in the
/// base clock's past, so once it catches up it simply reads the base clock: time in the
/// ledger never runs backwards, also after a restart on the wall clock.
///
/// The hold lets a demo driver keep up at any speed: each step's records are written at the
/// step's due time however long its API calls take on a busy machine.
pub struct PacedClock {
    base: std::sync::Arc<dyn Clock>,
    speed: f64,
    pace: std::sync::Mutex<Pace>,
}

/// Where a [`PacedClock`] stands: simulated `sim_us` at base time `base_us`, stopped at
/// `hold_us`.
#[derive(Debug, Clone, Copy)]
struct Pace {
    sim_us: i64,
    base_us: i64,
    hold_us: i64,
}

impl PacedClock {
    /// A clock reading `start` now and running `speed` (> 0) times as fast as `base`, with no
    /// hold.
    pub fn new(base: std::sync::Arc<dyn Clock>, start: Timestamp, speed: f64) -> PacedClock {
        assert!(
            speed.is_finite() && speed > 0.0,
            "a clock speed is positive"
        );
        let base_us = base.now().unix_us;
        PacedClock {
            base,
            speed,
            pace: std::sync::Mutex::new(Pace {
                sim_us: start.unix_us.min(base_us),
                base_us,
                hold_us: i64::MAX,
            }),
        }
    }

    /// Simulated seconds per base-clock second.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    fn read(&self, pace: &Pace, base_us: i64) -> i64 {
        let run = ((base_us - pace.base_us).max(0) as f64 * self.speed) as i64;
        pace.sim_us
            .saturating_add(run)
            .min(pace.hold_us)
            .min(base_us)
            .max(pace.sim_us)
    }

    /// Stops the clock at `at` (or where it stands, if it is already past `at`) until the
    /// hold is moved on: it runs at its speed up to `at` and waits there.
    pub fn hold_at(&self, at: Timestamp) {
        let base_us = self.base.now().unix_us;
        let mut pace = self.pace.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.read(&pace, base_us);
        *pace = Pace {
            sim_us: now,
            base_us,
            hold_us: at.unix_us.max(now),
        };
    }

    /// Lets the clock run on without a hold (until it catches up with the base clock).
    pub fn release(&self) {
        let base_us = self.base.now().unix_us;
        let mut pace = self.pace.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.read(&pace, base_us);
        *pace = Pace {
            sim_us: now,
            base_us,
            hold_us: i64::MAX,
        };
    }

    /// Base-clock microseconds until this clock reads `at`, if nothing holds it before:
    /// how long a driver waiting for `at` should sleep (0 once it is there).
    pub fn base_us_until(&self, at: Timestamp) -> u64 {
        let base_us = self.base.now().unix_us;
        let pace = *self.pace.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.read(&pace, base_us);
        if now >= at.unix_us {
            return 0;
        }
        let paced = ((at.unix_us - now) as f64 / self.speed).ceil() as i64;
        // Once caught up, the clock runs no faster than its base.
        let floor = at.unix_us - base_us;
        paced.max(floor).max(1) as u64
    }
}

impl Clock for PacedClock {
    fn now(&self) -> Timestamp {
        let base_us = self.base.now().unix_us;
        let pace = *self.pace.lock().unwrap_or_else(|p| p.into_inner());
        Timestamp {
            unix_us: self.read(&pace, base_us).clamp(0, Timestamp::UNIX_US_MAX),
        }
    }

    fn pace(&self) -> f64 {
        let base_us = self.base.now().unix_us;
        let pace = *self.pace.lock().unwrap_or_else(|p| p.into_inner());
        if self.read(&pace, base_us) >= base_us {
            1.0
        } else {
            self.speed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_round_trips() {
        let t = Timestamp::from_unix_us(1_795_991_557_000_123).unwrap();
        let text = t.to_string();
        assert_eq!(text, "2026-11-29T22:32:37.000123Z");
        assert_eq!(Timestamp::parse(&text).unwrap(), t);
    }

    #[test]
    fn fast_formatting_agrees_with_the_calendar_library() {
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let t = Timestamp::from_unix_us(x.rem_euclid(Timestamp::UNIX_US_MAX + 1)).unwrap();
            let dt =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.unix_us()) * 1000).unwrap();
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                dt.year(),
                u8::from(dt.month()),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
                dt.microsecond()
            );
            assert_eq!(t.to_string(), expected);
            assert_eq!(Timestamp::parse(&expected).unwrap(), t);
        }
        assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            Timestamp::from_unix_us(Timestamp::UNIX_US_MAX)
                .unwrap()
                .to_string(),
            "9999-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn rejects_out_of_range_and_garbage() {
        assert!(Timestamp::from_unix_us(-1).is_err());
        assert!(Timestamp::parse("yesterday").is_err());
    }

    #[test]
    fn sim_clock_moves_only_when_told() {
        let clock = SimClock::new(Timestamp::EPOCH);
        assert_eq!(clock.now(), Timestamp::EPOCH);
        clock.advance_us(5);
        assert_eq!(clock.now().unix_us(), 5);
    }

    #[test]
    fn paced_clock_runs_fast_holds_and_never_passes_its_base() {
        let t = |s: i64| Timestamp::from_unix_us(1_795_000_000_000_000 + s * 1_000_000).unwrap();
        let base = std::sync::Arc::new(SimClock::new(t(1_000_000)));
        let day = 86_400;
        // One simulated day per 10 base seconds, starting 100 days in the base's past.
        let clock = PacedClock::new(base.clone(), t(1_000_000 - 100 * day), day as f64 / 10.0);
        assert_eq!(clock.now(), t(1_000_000 - 100 * day));
        base.advance_us(10_000_000);
        assert_eq!(clock.now(), t(1_000_000 - 99 * day));
        // Held one hour ahead: it stops there, however long the base runs.
        clock.hold_at(t(1_000_000 - 99 * day + 3600));
        assert_eq!(
            clock.base_us_until(t(1_000_000 - 99 * day + 3600)),
            (3600.0 / 8640.0 * 1e6_f64).ceil() as u64
        );
        base.advance_us(60_000_000);
        assert_eq!(clock.now(), t(1_000_000 - 99 * day + 3600));
        assert_eq!(clock.base_us_until(t(1_000_000 - 99 * day + 3600)), 0);
        // A hold in the past does not move it back.
        clock.hold_at(t(1_000_000 - 200 * day));
        base.advance_us(10_000_000);
        assert_eq!(clock.now(), t(1_000_000 - 99 * day + 3600));
        // Released, it goes on from where it stood, not from where it would have been.
        clock.release();
        base.advance_us(10_000_000);
        assert_eq!(clock.now(), t(1_000_000 - 98 * day + 3600));
        assert_eq!(clock.pace(), 8640.0);
        // It catches up with its base and then reads it.
        base.advance_us(10_000_000 * 200);
        assert_eq!(clock.now(), base.now());
        assert_eq!(clock.pace(), 1.0);
        base.advance_us(5);
        assert_eq!(clock.now(), base.now());
        let ahead = base.now().plus_us(7_000_000);
        assert_eq!(clock.base_us_until(ahead), 7_000_000);
    }
}
