//! MQTT ingest against the real Mosquitto broker on 127.0.0.1:1883.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cellops_controller::MemorySink;
use cellops_controller::mqtt::{Ingest, IngestOptions, encode_payload, telemetry_topic};
use cellops_device::Sample;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

/// Longest wait for the broker to deliver (a bound on a wait, not a speed test).
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        at_unix_ms: 1_767_000_000_000 + seq as i64 * 1000,
        signal: (seq % 20) as u16,
        value: 36.5 + seq as f64 / 100.0,
    }
}

fn unique(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id())
}

fn options(site: &str, client_id: &str) -> IngestOptions {
    IngestOptions {
        host: "127.0.0.1".into(),
        port: 1883,
        client_id: client_id.into(),
        site: site.into(),
        keep_alive: Duration::from_secs(5),
    }
}

/// Publishes `messages` with QoS 1 and waits until the broker acknowledged each.
fn publish(messages: &[(String, Vec<u8>)]) {
    let mut opts = MqttOptions::new(unique("gateway"), "127.0.0.1", 1883);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(opts, 64);
    for (topic, payload) in messages {
        client
            .publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
            .unwrap();
    }
    let deadline = Instant::now() + DELIVERY_WAIT;
    let mut acked = 0;
    while acked < messages.len() {
        assert!(
            Instant::now() < deadline,
            "the broker acknowledged {acked} of {} publishes",
            messages.len()
        );
        match connection.recv_timeout(Duration::from_millis(500)) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Err(e)) => panic!("cannot reach the MQTT broker at 127.0.0.1:1883: {e}"),
            _ => {}
        }
    }
    client.disconnect().unwrap();
}

fn wait_for(sink: &Arc<Mutex<MemorySink>>, device: &str, n: usize) {
    let deadline = Instant::now() + DELIVERY_WAIT;
    while sink.lock().unwrap().samples(device).len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} samples arrived",
            sink.lock().unwrap().samples(device).len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn seqs(sink: &Arc<Mutex<MemorySink>>, device: &str) -> Vec<u64> {
    sink.lock()
        .unwrap()
        .samples(device)
        .iter()
        .map(|s| s.seq)
        .collect()
}

/// Starts an ingest and waits until its subscription is in place: a marker message is
/// published until one arrives (messages before the subscription are not kept).
fn start_ingest(site: &str, client_id: &str, sink: &Arc<Mutex<MemorySink>>) -> Ingest {
    let ingest = Ingest::start(options(site, client_id), sink.clone());
    let marker = telemetry_topic(site, "marker");
    let deadline = Instant::now() + DELIVERY_WAIT;
    for seq in 1.. {
        publish(&[(marker.clone(), encode_payload("marker", &[sample(seq)]))]);
        let arrived_by = Instant::now() + Duration::from_secs(1);
        while Instant::now() < arrived_by {
            if sink.lock().unwrap().samples("marker").last().is_some() {
                return ingest;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(Instant::now() < deadline, "the ingest never subscribed");
    }
    unreachable!("the marker loop returns or fails")
}

#[test]
fn mqtt_ingest_stores_each_sample_once_and_refuses_garbage() {
    let site = unique("site");
    let sink = Arc::new(Mutex::new(MemorySink::default()));
    let ingest = start_ingest(&site, &unique("ingest"), &sink);
    let topic = telemetry_topic(&site, "bio-1");
    let first: Vec<Sample> = (1..=100).map(sample).collect();
    let second: Vec<Sample> = (101..=250).map(sample).collect();
    publish(&[
        (topic.clone(), encode_payload("bio-1", &first)),
        // A gateway retrying after a lost PUBACK sends the same batch again.
        (topic.clone(), encode_payload("bio-1", &first)),
        (
            topic.clone(),
            b"{\"device\":\"bio-1\",\"samples\":[[1,2,\"hot\",4]]}".to_vec(),
        ),
        (topic.clone(), b"\xff\xfe not json".to_vec()),
        (topic.clone(), encode_payload("bio-2", &second)),
        (topic.clone(), encode_payload("bio-1", &second)),
    ]);
    wait_for(&sink, "bio-1", 250);
    let stats = ingest.stop();
    assert_eq!(seqs(&sink, "bio-1"), (1..=250).collect::<Vec<_>>());
    assert!(
        sink.lock().unwrap().samples("bio-2").is_empty(),
        "a payload naming another device than its topic is refused"
    );
    assert_eq!(stats.messages_refused, 3, "{stats:?}");
    assert_eq!(stats.samples_duplicate, 100, "{stats:?}");
}

#[test]
fn mqtt_messages_published_while_the_ingest_is_away_are_backfilled() {
    let site = unique("site");
    let client_id = unique("ingest");
    let sink = Arc::new(Mutex::new(MemorySink::default()));
    let ingest = start_ingest(&site, &client_id, &sink);
    let topic = telemetry_topic(&site, "bio-7");
    publish(&[(
        topic.clone(),
        encode_payload("bio-7", &(1..=50).map(sample).collect::<Vec<_>>()),
    )]);
    wait_for(&sink, "bio-7", 50);
    ingest.stop();

    // The gateway goes on publishing while the ingest is down; the broker keeps the
    // messages for the ingest's persistent session.
    publish(&[
        (
            topic.clone(),
            encode_payload("bio-7", &(51..=120).map(sample).collect::<Vec<_>>()),
        ),
        (
            topic.clone(),
            encode_payload("bio-7", &(121..=200).map(sample).collect::<Vec<_>>()),
        ),
    ]);
    let ingest = Ingest::start(options(&site, &client_id), sink.clone());
    wait_for(&sink, "bio-7", 200);
    ingest.stop();
    assert_eq!(seqs(&sink, "bio-7"), (1..=200).collect::<Vec<_>>());
}
