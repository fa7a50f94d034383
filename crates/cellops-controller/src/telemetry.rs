//! Where the controller and the MQTT ingest put samples: the `TelemetrySink` interface.
//!
//! The sink is the durable telemetry store (batches of samples, see `cellops_device::telemetry`
//! for the encoding); the controller acknowledges samples to the device only after the sink
//! stored them, so a crash or disconnect loses nothing, and the sink drops samples at or
//! below its high-water mark, so a retry duplicates nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cellops_device::Sample;

/// The sink could not store or answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SinkError {
    /// The samples themselves are invalid (not in rising `seq` order).
    #[error("telemetry for device {device} refused: {reason}")]
    Invalid {
        /// Device id.
        device: String,
        /// What is wrong.
        reason: String,
    },
    /// Storage failed; nothing of the call was stored.
    #[error(
        "telemetry storage unavailable: {0} (fix: check the database; samples stay on the device and are backfilled)"
    )]
    Unavailable(String),
}

/// Durable, idempotent telemetry storage, keyed by device and `seq`.
pub trait TelemetrySink: Send {
    /// Highest `seq` stored for `device` (0: none).
    fn last_seq(&mut self, device: &str) -> Result<u64, SinkError>;

    /// Stores `samples` of `device` (rising `seq`) durably, all or nothing. Samples at or
    /// below the stored high-water mark are duplicates and skipped. Returns how many were new.
    fn store(&mut self, device: &str, samples: &[Sample]) -> Result<usize, SinkError>;
}

/// Checks that `samples` rise strictly in `seq`.
pub fn check_rising(device: &str, samples: &[Sample]) -> Result<(), SinkError> {
    for pair in samples.windows(2) {
        if pair[1].seq <= pair[0].seq {
            return Err(SinkError::Invalid {
                device: device.to_string(),
                reason: format!(
                    "seq {} follows {}: samples must rise in seq",
                    pair[1].seq, pair[0].seq
                ),
            });
        }
    }
    Ok(())
}

/// Samples in memory (tests, and the demo without a database).
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    samples: BTreeMap<String, Vec<Sample>>,
}

impl MemorySink {
    /// Stored samples of `device`, oldest first.
    pub fn samples(&self, device: &str) -> &[Sample] {
        self.samples.get(device).map_or(&[], Vec::as_slice)
    }
}

impl TelemetrySink for MemorySink {
    fn last_seq(&mut self, device: &str) -> Result<u64, SinkError> {
        Ok(self.samples(device).last().map_or(0, |s| s.seq))
    }

    fn store(&mut self, device: &str, samples: &[Sample]) -> Result<usize, SinkError> {
        check_rising(device, samples)?;
        let high = self.last_seq(device)?;
        let stored = self.samples.entry(device.to_string()).or_default();
        let before = stored.len();
        stored.extend(samples.iter().filter(|s| s.seq > high));
        Ok(stored.len() - before)
    }
}

/// A sink shared between threads (several controllers or an ingest and a reader).
impl<T: TelemetrySink> TelemetrySink for Arc<Mutex<T>> {
    fn last_seq(&mut self, device: &str) -> Result<u64, SinkError> {
        self.lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_seq(device)
    }

    fn store(&mut self, device: &str, samples: &[Sample]) -> Result<usize, SinkError> {
        self.lock()
            .unwrap_or_else(|p| p.into_inner())
            .store(device, samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(seq: u64) -> Sample {
        Sample {
            seq,
            at_unix_ms: seq as i64 * 1000,
            signal: 0,
            value: 1.0,
        }
    }

    #[test]
    fn duplicates_are_skipped_and_disorder_refused() {
        let mut sink = MemorySink::default();
        assert_eq!(sink.store("d", &[s(1), s(2)]).unwrap(), 2);
        assert_eq!(sink.store("d", &[s(2), s(3)]).unwrap(), 1);
        assert_eq!(sink.last_seq("d").unwrap(), 3);
        assert!(sink.store("d", &[s(5), s(4)]).is_err());
        assert_eq!(sink.samples("d").len(), 3);
    }
}
