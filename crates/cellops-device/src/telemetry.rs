//! Compact telemetry encoding: a run of samples with consecutive `seq` as bytes.
//!
//! Per sample: the signal index (varint), the time as delta-of-delta against the previous
//! sample of the same signal (zigzag varint: one byte at a steady rate), and the value XORed
//! with the previous value of the same signal, written as one byte of leading/trailing zero
//! byte counts plus the middle bytes (a set point that does not change costs one byte).
//! Typical cost: about 3 bytes for a steady signal and 7–9 for a noisy sensor.

use std::collections::BTreeMap;

use crate::device::Sample;

/// Format version written first in every chunk.
pub const TELEMETRY_FORMAT_VERSION: u8 = 1;
/// Most samples in one encoded chunk.
pub const CHUNK_SAMPLES_MAX: usize = 100_000;

/// Encoded samples could not be read, or samples could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelemetryCodecError {
    /// The samples do not have consecutive sequence numbers.
    #[error("sample seq {found} follows {previous} (rule: a chunk holds consecutive seq numbers)")]
    NotConsecutive {
        /// Previous seq.
        previous: u64,
        /// The seq found.
        found: u64,
    },
    /// Empty or too many samples.
    #[error("a chunk holds 1 to {CHUNK_SAMPLES_MAX} samples, not {count}")]
    BadCount {
        /// Samples given.
        count: usize,
    },
    /// The bytes are not a chunk of this format.
    #[error("telemetry chunk is damaged: {0}")]
    Damaged(&'static str),
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, TelemetryCodecError> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or(TelemetryCodecError::Damaged("ends early"))?;
        self.at += 1;
        Ok(b)
    }
    fn varint(&mut self) -> Result<u64, TelemetryCodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(TelemetryCodecError::Damaged("varint longer than 10 bytes"))
    }
}

#[derive(Default, Clone, Copy)]
struct SignalState {
    time_ms: i64,
    delta_ms: i64,
    bits: u64,
}

/// Encodes `samples` (consecutive seq, 1..=`CHUNK_SAMPLES_MAX` of them).
pub fn encode(samples: &[Sample]) -> Result<Vec<u8>, TelemetryCodecError> {
    if samples.is_empty() || samples.len() > CHUNK_SAMPLES_MAX {
        return Err(TelemetryCodecError::BadCount {
            count: samples.len(),
        });
    }
    for w in samples.windows(2) {
        if w[1].seq != w[0].seq + 1 {
            return Err(TelemetryCodecError::NotConsecutive {
                previous: w[0].seq,
                found: w[1].seq,
            });
        }
    }
    let mut out = Vec::with_capacity(samples.len() * 6 + 24);
    out.push(TELEMETRY_FORMAT_VERSION);
    put_varint(&mut out, samples.len() as u64);
    put_varint(&mut out, samples[0].seq);
    put_varint(&mut out, zigzag(samples[0].at_unix_ms));
    let mut states: BTreeMap<u16, SignalState> = BTreeMap::new();
    let mut last_time = samples[0].at_unix_ms;
    for s in samples {
        put_varint(&mut out, u64::from(s.signal));
        let st = states.entry(s.signal).or_insert(SignalState {
            time_ms: last_time,
            delta_ms: 0,
            bits: 0,
        });
        let delta = s.at_unix_ms - st.time_ms;
        put_varint(&mut out, zigzag(delta - st.delta_ms));
        let bits = s.value.to_bits();
        let xor = bits ^ st.bits;
        if xor == 0 {
            out.push(0xff);
        } else {
            let lz = (xor.leading_zeros() / 8) as usize;
            let tz = (xor.trailing_zeros() / 8) as usize;
            out.push(((lz as u8) << 4) | tz as u8);
            let bytes = xor.to_be_bytes();
            out.extend_from_slice(&bytes[lz..8 - tz]);
        }
        *st = SignalState {
            time_ms: s.at_unix_ms,
            delta_ms: delta,
            bits,
        };
        last_time = s.at_unix_ms;
    }
    Ok(out)
}

/// Decodes a chunk written by `encode`.
pub fn decode(bytes: &[u8]) -> Result<Vec<Sample>, TelemetryCodecError> {
    let mut r = Reader { bytes, at: 0 };
    if r.byte()? != TELEMETRY_FORMAT_VERSION {
        return Err(TelemetryCodecError::Damaged("unknown format version"));
    }
    let count = r.varint()? as usize;
    if count == 0 || count > CHUNK_SAMPLES_MAX {
        return Err(TelemetryCodecError::BadCount { count });
    }
    let first_seq = r.varint()?;
    let mut last_time = unzigzag(r.varint()?);
    let mut states: BTreeMap<u16, SignalState> = BTreeMap::new();
    let mut out = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let signal = u16::try_from(r.varint()?)
            .map_err(|_| TelemetryCodecError::Damaged("signal index above 65535"))?;
        let st = states.entry(signal).or_insert(SignalState {
            time_ms: last_time,
            delta_ms: 0,
            bits: 0,
        });
        let delta = st.delta_ms + unzigzag(r.varint()?);
        let at_unix_ms = st.time_ms + delta;
        let head = r.byte()?;
        let xor = if head == 0xff {
            0
        } else {
            let lz = usize::from(head >> 4);
            let tz = usize::from(head & 0x0f);
            if lz + tz >= 8 {
                return Err(TelemetryCodecError::Damaged("bad value header"));
            }
            let mut b = [0u8; 8];
            for slot in b.iter_mut().take(8 - tz).skip(lz) {
                *slot = r.byte()?;
            }
            u64::from_be_bytes(b)
        };
        let bits = st.bits ^ xor;
        *st = SignalState {
            time_ms: at_unix_ms,
            delta_ms: delta,
            bits,
        };
        last_time = at_unix_ms;
        out.push(Sample {
            seq: first_seq + i,
            at_unix_ms,
            signal,
            value: f64::from_bits(bits),
        });
    }
    if r.at != bytes.len() {
        return Err(TelemetryCodecError::Damaged("trailing bytes"));
    }
    Ok(out)
}
