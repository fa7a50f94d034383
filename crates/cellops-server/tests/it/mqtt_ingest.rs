//! `cellops serve --mqtt`: device telemetry published to the real Mosquitto broker on
//! 127.0.0.1:1883 lands in the durable telemetry store, attributed to the batch running on
//! the device, each sample once.

use std::time::{Duration, Instant};

use crate::batch::approved_prime;
use crate::support::TestApp;
use axum::http::StatusCode;
use cellops_controller::mqtt::{encode_payload, telemetry_topic};
use cellops_device::Sample;
use cellops_domain::SiteId;
use cellops_ledger::telemetry::with_store;
use cellops_server::routes::batch::ingest::{parse_broker, start_mqtt_ingest};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::json;

/// Longest wait for the broker to deliver (a bound on a wait, not a speed test).
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

fn unique(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id())
}

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        at_unix_ms: 1_767_000_000_000 + seq as i64 * 1000,
        signal: (seq % 20) as u16,
        value: 36.5 + seq as f64 / 100.0,
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
            "the broker acknowledged {acked} publishes"
        );
        match connection.recv_timeout(Duration::from_millis(500)) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Err(e)) => panic!("cannot reach the MQTT broker at 127.0.0.1:1883: {e}"),
            _ => {}
        }
    }
    client.disconnect().unwrap();
}

fn last_seq(app: &TestApp, device: &str) -> u64 {
    app.state
        .ledger
        .read(|b| with_store(b, |s| s.last_seq(device)))
        .unwrap()
}

/// Waits until the store holds `device`'s samples up to `seq`.
fn wait_for(app: &TestApp, device: &str, seq: u64) {
    let deadline = Instant::now() + DELIVERY_WAIT;
    while last_seq(app, device) < seq {
        assert!(
            Instant::now() < deadline,
            "stored up to seq {} of {seq}",
            last_seq(app, device)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_broker_address_is_checked() {
    assert_eq!(
        parse_broker("127.0.0.1:1883").unwrap(),
        ("127.0.0.1".to_string(), 1883)
    );
    for bad in ["127.0.0.1", "127.0.0.1:", ":1883", "host:0", "host:99999"] {
        let e = parse_broker(bad).unwrap_err().to_string();
        assert!(
            e.contains("--mqtt") && e.contains("HOST:PORT") || e.contains("port"),
            "{bad}: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_telemetry_is_stored_durably_once_and_attributed_to_the_running_batch() {
    let app = TestApp::new();
    let (op, _qa) = approved_prime(&app).await;
    let device = unique("bio");
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc", "product": "prime-car-t", "starting_unit": "A999026000001-S1234100",
                   "batch": "b-mqtt", "device": device}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let cpc = SiteId::parse("cpc").unwrap();
    let ingests =
        start_mqtt_ingest(&app.state, "127.0.0.1:1883", &[cpc], &unique("ingest")).unwrap();
    let topic = telemetry_topic("cpc", &device);
    tokio::task::block_in_place(|| {
        // Wait until the subscription is in place: messages before it are not kept.
        let marker = unique("marker");
        let marker_topic = telemetry_topic("cpc", &marker);
        let deadline = Instant::now() + DELIVERY_WAIT;
        for seq in 1.. {
            publish(&[(
                marker_topic.clone(),
                encode_payload(&marker, &[sample(seq)]),
            )]);
            std::thread::sleep(Duration::from_millis(500));
            if last_seq(&app, &marker) > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the ingest never subscribed");
        }
        let first: Vec<Sample> = (1..=120).map(sample).collect();
        let after_gap: Vec<Sample> = (130..=200).map(sample).collect();
        publish(&[
            (topic.clone(), encode_payload(&device, &first)),
            // A gateway retrying after a lost PUBACK sends the same samples again.
            (topic.clone(), encode_payload(&device, &first)),
            (topic.clone(), b"{\"device\": 3}".to_vec()),
            (topic.clone(), encode_payload(&device, &after_gap)),
        ]);
        wait_for(&app, &device, 200);
    });
    let stats: Vec<_> = ingests.into_iter().map(|i| i.stop()).collect();
    assert_eq!(stats[0].samples_duplicate, 120, "{:?}", stats[0]);
    assert_eq!(stats[0].messages_refused, 1, "{:?}", stats[0]);
    // Every sample once, in the batch's telemetry.
    let r = app
        .get("/api/batches/b-mqtt/telemetry?limit=1000", &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let seqs: Vec<u64> = r.body["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=120).chain(130..=200).collect();
    assert_eq!(seqs, expected);
    let chunks = app
        .state
        .ledger
        .read(|b| with_store(b, |s| s.chunks(&device, 1, 1_000)))
        .unwrap();
    assert_eq!(chunks.len(), 2, "one chunk per consecutive run");
    assert!(chunks.iter().all(|c| c.batch == "b-mqtt"), "{chunks:?}");
}
