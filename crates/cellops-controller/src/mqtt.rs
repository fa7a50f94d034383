//! MQTT telemetry ingest: samples a device gateway publishes to a broker go into a
//! [`TelemetrySink`].
//!
//! Topic `cellops/<site>/devices/<device>/telemetry`, QoS 1, payload JSON:
//! `{"device": "<device>", "samples": [[seq, at_unix_ms, signal, value], ...]}` with `seq`
//! rising (the device's own sequence numbers, as in `CultureDevice::read_samples`).
//!
//! Nothing is lost: the ingest uses a persistent session (clean session off, a fixed client
//! id), so the broker keeps QoS 1 messages while the ingest is away, and it acknowledges a
//! message only after the sink stored it (manual acks). Nothing is duplicated: the broker
//! may redeliver, and the sink skips samples at or below its high-water mark. A payload that
//! is not valid is refused (counted and logged with the reason) and acknowledged, so one bad
//! message cannot block the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cellops_device::Sample;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

use crate::telemetry::{SinkError, TelemetrySink};

/// Largest payload accepted, bytes (about 20 000 samples).
pub const PAYLOAD_BYTES_MAX: usize = 1024 * 1024;
/// Most samples in one message.
pub const MESSAGE_SAMPLES_MAX: usize = 20_000;
/// Longest device id, bytes.
pub const DEVICE_ID_BYTES_MAX: usize = 200;

/// The topic a device's telemetry is published on.
pub fn telemetry_topic(site: &str, device: &str) -> String {
    format!("cellops/{site}/devices/{device}/telemetry")
}

/// The subscription covering every device of `site`.
pub fn site_filter(site: &str) -> String {
    format!("cellops/{site}/devices/+/telemetry")
}

/// Encodes samples as a telemetry payload (for gateways and tests).
pub fn encode_payload(device: &str, samples: &[Sample]) -> Vec<u8> {
    let rows: Vec<Value> = samples
        .iter()
        .map(|s| serde_json::json!([s.seq, s.at_unix_ms, s.signal, s.value]))
        .collect();
    serde_json::json!({ "device": device, "samples": rows })
        .to_string()
        .into_bytes()
}

/// A message that cannot be ingested.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// The topic is not a telemetry topic of the subscribed site.
    #[error("topic `{topic}` is not cellops/<site>/devices/<device>/telemetry")]
    Topic {
        /// The topic.
        topic: String,
    },
    /// The payload is not a valid telemetry message.
    #[error("payload on `{topic}` refused: {reason}")]
    Payload {
        /// The topic.
        topic: String,
        /// What is wrong, naming the field.
        reason: String,
    },
}

/// Parses and checks one message; returns the device id and its samples.
pub fn parse_message(
    site: &str,
    topic: &str,
    payload: &[u8],
) -> Result<(String, Vec<Sample>), IngestError> {
    let device = topic_device(site, topic).ok_or_else(|| IngestError::Topic {
        topic: topic.to_string(),
    })?;
    let bad = |reason: String| IngestError::Payload {
        topic: topic.to_string(),
        reason,
    };
    if payload.len() > PAYLOAD_BYTES_MAX {
        return Err(bad(format!(
            "{} bytes, at most {PAYLOAD_BYTES_MAX}",
            payload.len()
        )));
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| bad(format!("not JSON: {e}")))?;
    let named = value
        .get("device")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("field `device` (string) is missing".into()))?;
    if named != device {
        return Err(bad(format!(
            "field `device` is `{named}` but the topic names `{device}`"
        )));
    }
    let rows = value
        .get("samples")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("field `samples` (array) is missing".into()))?;
    if rows.len() > MESSAGE_SAMPLES_MAX {
        return Err(bad(format!(
            "{} samples, at most {MESSAGE_SAMPLES_MAX}",
            rows.len()
        )));
    }
    let mut samples = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let sample = parse_row(row).ok_or_else(|| {
            bad(format!(
                "samples[{i}] must be [seq ≥ 1, at_unix_ms, signal 0..=65535, finite value]"
            ))
        })?;
        if let Some(prev) = samples.last().map(|s: &Sample| s.seq)
            && sample.seq <= prev
        {
            return Err(bad(format!(
                "samples[{i}].seq {} follows {prev}: seq must rise",
                sample.seq
            )));
        }
        samples.push(sample);
    }
    Ok((device.to_string(), samples))
}

fn parse_row(row: &Value) -> Option<Sample> {
    let [seq, at, signal, value] = row.as_array()?.as_slice() else {
        return None;
    };
    let sample = Sample {
        seq: seq.as_u64().filter(|s| *s >= 1)?,
        at_unix_ms: at.as_i64()?,
        signal: u16::try_from(signal.as_u64()?).ok()?,
        value: value.as_f64().filter(|v| v.is_finite())?,
    };
    Some(sample)
}

fn topic_device<'a>(site: &str, topic: &'a str) -> Option<&'a str> {
    let rest = topic
        .strip_prefix("cellops/")?
        .strip_prefix(site)?
        .strip_prefix("/devices/")?;
    let device = rest.strip_suffix("/telemetry")?;
    let valid = !device.is_empty()
        && device.len() <= DEVICE_ID_BYTES_MAX
        && device
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    valid.then_some(device)
}

/// How to reach the broker.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Broker host (e.g. `127.0.0.1`).
    pub host: String,
    /// Broker port (1883).
    pub port: u16,
    /// Client id; fixed per site and ingest so the broker keeps its session.
    pub client_id: String,
    /// The site whose devices are ingested.
    pub site: String,
    /// Keep-alive interval.
    pub keep_alive: Duration,
}

/// Counts of one ingest run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Messages received.
    pub messages: u64,
    /// Samples newly stored.
    pub samples_stored: u64,
    /// Samples skipped as duplicates.
    pub samples_duplicate: u64,
    /// Messages refused (bad topic or payload).
    pub messages_refused: u64,
    /// The last refusal, for the log and tests.
    pub last_refusal: Option<String>,
}

/// A running ingest; stops when `stop` is called or the handle is dropped.
pub struct Ingest {
    stop: Arc<AtomicBool>,
    client: Client,
    thread: Option<std::thread::JoinHandle<IngestStats>>,
}

impl Ingest {
    /// Connects to the broker, subscribes to the site's telemetry and ingests on its own
    /// thread into `sink` until stopped.
    pub fn start<S: TelemetrySink + 'static>(options: IngestOptions, sink: S) -> Ingest {
        let mut mqtt = MqttOptions::new(
            options.client_id.clone(),
            options.host.clone(),
            options.port,
        );
        mqtt.set_keep_alive(options.keep_alive);
        // Persistent session: the broker queues QoS 1 messages while the ingest is away.
        mqtt.set_clean_session(false);
        // Acknowledge only after the sink stored the samples.
        mqtt.set_manual_acks(true);
        mqtt.set_max_packet_size(PAYLOAD_BYTES_MAX + 1024, 64 * 1024);
        let (client, connection) = Client::new(mqtt, 64);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let client = client.clone();
            std::thread::Builder::new()
                .name("mqtt-ingest".into())
                .spawn(move || run(options, client, connection, sink, &stop))
                .expect("spawning the ingest thread")
        };
        Ingest {
            stop,
            client,
            thread: Some(thread),
        }
    }

    /// Stops the ingest and returns its counts.
    pub fn stop(mut self) -> IngestStats {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> IngestStats {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop_inner();
        }
    }
}

/// Pause after a connection error before the next attempt.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

fn run<S: TelemetrySink>(
    options: IngestOptions,
    client: Client,
    mut connection: rumqttc::Connection,
    mut sink: S,
    stop: &AtomicBool,
) -> IngestStats {
    let mut stats = IngestStats::default();
    let filter = site_filter(&options.site);
    while !stop.load(Ordering::SeqCst) {
        let event = match connection.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(event)) => event,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "MQTT connection error; reconnecting");
                std::thread::sleep(RECONNECT_PAUSE);
                continue;
            }
            Err(rumqttc::RecvTimeoutError::Timeout) => continue,
            Err(rumqttc::RecvTimeoutError::Disconnected) => break,
        };
        match event {
            // (Re)subscribe on every connect: cheap, and right even if the broker lost the session.
            Event::Incoming(Packet::ConnAck(_)) => {
                if let Err(e) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                    tracing::error!(error = %e, "cannot subscribe to {filter}");
                }
            }
            Event::Incoming(Packet::Publish(publish)) => {
                stats.messages += 1;
                if ingest_one(
                    &options.site,
                    &publish.topic,
                    &publish.payload,
                    &mut sink,
                    &mut stats,
                )
                .is_ok()
                {
                    let _ = client.try_ack(&publish);
                }
            }
            _ => {}
        }
    }
    stats
}

/// Ingests one message. `Err` only when the sink failed: the message stays unacknowledged and
/// the broker redelivers it.
fn ingest_one<S: TelemetrySink>(
    site: &str,
    topic: &str,
    payload: &[u8],
    sink: &mut S,
    stats: &mut IngestStats,
) -> Result<(), SinkError> {
    let (device, samples) = match parse_message(site, topic, payload) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::warn!(error = %e, "refused an MQTT telemetry message");
            stats.messages_refused += 1;
            stats.last_refusal = Some(e.to_string());
            return Ok(());
        }
    };
    match sink.store(&device, &samples) {
        Ok(new) => {
            stats.samples_stored += new as u64;
            stats.samples_duplicate += (samples.len() - new) as u64;
            Ok(())
        }
        Err(e @ SinkError::Invalid { .. }) => {
            stats.messages_refused += 1;
            stats.last_refusal = Some(e.to_string());
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "telemetry sink failed; the broker will redeliver");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::MemorySink;

    fn s(seq: u64) -> Sample {
        Sample {
            seq,
            at_unix_ms: 1_700_000_000_000 + seq as i64,
            signal: 2,
            value: 7.1,
        }
    }

    #[test]
    fn payload_round_trips() {
        let payload = encode_payload("bio-1", &[s(1), s(2)]);
        let (device, samples) =
            parse_message("site-a", &telemetry_topic("site-a", "bio-1"), &payload).unwrap();
        assert_eq!(device, "bio-1");
        assert_eq!(samples, vec![s(1), s(2)]);
    }

    #[test]
    fn bad_messages_name_what_is_wrong() {
        let topic = telemetry_topic("site-a", "bio-1");
        let cases: [(&str, &[u8], &str); 6] = [
            ("cellops/site-b/devices/bio-1/telemetry", b"{}", "topic"),
            (&topic, b"not json", "not JSON"),
            (&topic, br#"{"device":"bio-2","samples":[]}"#, "topic names"),
            (&topic, br#"{"device":"bio-1"}"#, "samples"),
            (
                &topic,
                br#"{"device":"bio-1","samples":[[1,2,3]]}"#,
                "samples[0]",
            ),
            (
                &topic,
                br#"{"device":"bio-1","samples":[[2,0,0,1.0],[2,0,0,1.0]]}"#,
                "must rise",
            ),
        ];
        for (topic, payload, expected) in cases {
            let e = parse_message("site-a", topic, payload)
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{e} should mention {expected}");
        }
    }

    #[test]
    fn redelivered_messages_are_not_stored_twice() {
        let mut sink = MemorySink::default();
        let mut stats = IngestStats::default();
        let topic = telemetry_topic("a", "d");
        let payload = encode_payload("d", &[s(1), s(2), s(3)]);
        ingest_one("a", &topic, &payload, &mut sink, &mut stats).unwrap();
        ingest_one("a", &topic, &payload, &mut sink, &mut stats).unwrap();
        assert_eq!(sink.samples("d").len(), 3);
        assert_eq!((stats.samples_stored, stats.samples_duplicate), (3, 3));
    }
}
