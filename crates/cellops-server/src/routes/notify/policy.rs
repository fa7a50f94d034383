//! Delivery policy, pure: when a failed notification is tried again (capped exponential
//! backoff), when the dispatcher gives up, and what one attempt's result means. No IO and
//! no clock of its own: the dispatcher passes `at`.

use cellops_domain::Timestamp;
use cellops_ledger::store::{AttemptOutcome, DeliveryAttempt};

/// The delivery policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt, µs; doubles after each further failure.
    pub first_retry_us: i64,
    /// The longest wait between attempts, µs.
    pub max_retry_us: i64,
    /// Attempts before a notification is marked failed.
    pub max_attempts: u32,
    /// How long one POST may take (connect, send, answer), ms.
    pub timeout_ms: u64,
    /// How long a claimed notification is reserved for the dispatcher that claimed it, µs;
    /// longer than `timeout_ms`, so no other dispatcher sends it while the POST runs.
    pub lease_us: i64,
    /// Notifications claimed (and sent concurrently) per round.
    pub batch: usize,
}

impl RetryPolicy {
    /// 10 s, 20 s, 40 s, … capped at one hour; 30 attempts span about 22 hours.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        first_retry_us: 10_000_000,
        max_retry_us: 3_600_000_000,
        max_attempts: 30,
        timeout_ms: 10_000,
        lease_us: 60_000_000,
        batch: 32,
    };

    /// Checks the policy's numbers; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        if self.first_retry_us <= 0 || self.max_retry_us < self.first_retry_us {
            return Err("first_retry_us must be positive and at most max_retry_us".into());
        }
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        if self.timeout_ms == 0 || self.lease_us <= (self.timeout_ms as i64) * 1_000 {
            return Err("lease_us must be longer than timeout_ms (and timeout_ms positive)".into());
        }
        if self.batch == 0 {
            return Err("batch must be at least 1".into());
        }
        Ok(())
    }

    /// The wait after `attempts_made` failed attempts (1 → `first_retry_us`, doubling,
    /// capped at `max_retry_us`).
    pub fn retry_delay_us(&self, attempts_made: u32) -> i64 {
        let doublings = attempts_made.saturating_sub(1).min(62);
        self.first_retry_us
            .saturating_mul(1_i64 << doublings)
            .min(self.max_retry_us)
    }

    /// What an attempt made at `at` leaves behind, given the attempts made before it.
    pub fn judge(
        &self,
        attempts_before: u32,
        at: Timestamp,
        result: &SendResult,
    ) -> DeliveryAttempt {
        let made = attempts_before.saturating_add(1);
        let (status, error) = match result {
            SendResult::Answered(s) if (200..300).contains(s) => (Some(*s), None),
            SendResult::Answered(s) => (
                Some(*s),
                Some(format!(
                    "the receiver answered HTTP {s}; only 2xx counts as delivered"
                )),
            ),
            SendResult::Failed(why) => (None, Some(why.clone())),
        };
        let outcome = if error.is_none() {
            AttemptOutcome::Delivered
        } else if made >= self.max_attempts {
            AttemptOutcome::GaveUp
        } else {
            AttemptOutcome::RetryAt(at.plus_us(self.retry_delay_us(made)))
        };
        DeliveryAttempt {
            at,
            status,
            error,
            outcome,
        }
    }
}

/// What one POST found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// The receiver answered with this status.
    Answered(u16),
    /// No answer: connection refused, timeout, bad URL…
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix_us(1_764_000_000_000_000 + s * 1_000_000).unwrap()
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy::DEFAULT;
        p.check().unwrap();
        let waits: Vec<i64> = (1..=11).map(|n| p.retry_delay_us(n) / 1_000_000).collect();
        assert_eq!(
            waits,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(p.retry_delay_us(1000), 3_600_000_000, "no overflow");
        let total: i64 = (1..p.max_attempts).map(|n| p.retry_delay_us(n)).sum();
        assert!(
            (20 * 3600..24 * 3600).contains(&(total / 1_000_000)),
            "{total}"
        );
    }

    #[test]
    fn results_decide_the_outcome() {
        let p = RetryPolicy::DEFAULT;
        let ok = p.judge(0, t(0), &SendResult::Answered(204));
        assert_eq!(ok.outcome, AttemptOutcome::Delivered);
        assert_eq!((ok.status, ok.error), (Some(204), None));
        let busy = p.judge(2, t(5), &SendResult::Answered(503));
        assert_eq!(busy.outcome, AttemptOutcome::RetryAt(t(5 + 40)));
        assert!(busy.error.unwrap().contains("503"));
        let down = p.judge(0, t(0), &SendResult::Failed("connection refused".into()));
        assert_eq!(down.outcome, AttemptOutcome::RetryAt(t(10)));
        assert_eq!(down.status, None);
        let redirect = p.judge(0, t(0), &SendResult::Answered(301));
        assert!(
            matches!(redirect.outcome, AttemptOutcome::RetryAt(_)),
            "redirects are not followed"
        );
        let last = p.judge(29, t(0), &SendResult::Answered(500));
        assert_eq!(last.outcome, AttemptOutcome::GaveUp);
    }

    #[test]
    fn bad_policies_are_refused() {
        let mut p = RetryPolicy::DEFAULT;
        p.lease_us = 1_000;
        assert!(p.check().unwrap_err().contains("lease_us"));
        let mut p = RetryPolicy::DEFAULT;
        p.max_attempts = 0;
        assert!(p.check().unwrap_err().contains("max_attempts"));
    }
}
