//! The production clock: the only place cellops reads the system time.

use cellops_domain::{Clock, Timestamp};

pub struct WallClock;

impl Clock for WallClock {
    #[allow(clippy::disallowed_methods)] // The one sanctioned read of the system clock.
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let unix_us = i64::try_from(since_epoch.as_micros()).unwrap_or(Timestamp::UNIX_US_MAX);
        Timestamp::from_unix_us(unix_us).unwrap_or(Timestamp::EPOCH)
    }
}
