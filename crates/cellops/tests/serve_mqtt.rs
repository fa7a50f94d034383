//! `cellops serve --mqtt 127.0.0.1:1883`, run as the real binary with the real Mosquitto
//! broker: telemetry a gateway publishes (`mosquitto_pub`, QoS 1) for a device of a
//! configured site lands in the server's telemetry store, each sample once; a malformed
//! broker address is refused naming the flag.

mod common;

use common::{Server, SqliteDb, cellops};
use std::process::Command;
use std::time::{Duration, Instant};

/// Longest wait for the broker and the server (a bound on a wait, not a speed test).
const WAIT: Duration = Duration::from_secs(30);

fn payload(device: &str, seqs: std::ops::RangeInclusive<u64>) -> String {
    let rows: Vec<String> = seqs
        .map(|s| {
            format!(
                "[{s},{},{},{}]",
                1_767_000_000_000 + s as i64 * 1000,
                s % 20,
                37.0 + s as f64 / 1000.0
            )
        })
        .collect();
    format!(
        "{{\"device\":\"{device}\",\"samples\":[{}]}}",
        rows.join(",")
    )
}

fn publish(topic: &str, message: &str) {
    let out = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "1883",
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            message,
        ])
        .output()
        .expect("mosquitto_pub runs");
    assert!(
        out.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (samples stored, highest seq) of `device` in the server's database.
fn stored(db: &SqliteDb, device: &str) -> (u64, u64) {
    let c = rusqlite::Connection::open(&db.path).expect("the test opens the file");
    c.query_row(
        "SELECT COALESCE(SUM(last_seq - first_seq + 1), 0), COALESCE(MAX(last_seq), 0) FROM telemetry_chunks WHERE device = ?1",
        [device],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .unwrap_or((0, 0))
}

#[test]
fn serve_ingests_mqtt_telemetry_into_its_telemetry_store() {
    let db = SqliteDb::new();
    let site = format!("mqtt-{}", std::process::id());
    let facility = format!("{site}=G1234");
    let mut server = Server::start(
        &db.url(),
        &["--mqtt", "127.0.0.1:1883", "--facility", &facility],
        db.dir.path(),
    );
    let device = "bio-serve-1";
    let topic = format!("cellops/{site}/devices/{device}/telemetry");
    // Until the subscription is in place a message is not kept: publish one sample at a time
    // until one arrives.
    let deadline = Instant::now() + WAIT;
    let mut seq = 0;
    while stored(&db, device).1 == 0 {
        assert!(
            Instant::now() < deadline,
            "nothing arrived; server log:\n{}",
            server.stderr_text()
        );
        seq += 1;
        publish(&topic, &payload(device, seq..=seq));
        std::thread::sleep(Duration::from_millis(300));
    }
    let (count_before, first) = stored(&db, device);
    let last = first + 50;
    let message = payload(device, first + 1..=last);
    publish(&topic, &message);
    // A gateway's retry of the same samples is stored once.
    publish(&topic, &message);
    let deadline = Instant::now() + WAIT;
    while stored(&db, device).1 < last {
        assert!(
            Instant::now() < deadline,
            "stored {:?}",
            stored(&db, device)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.stdout_text().contains(&format!(
            "MQTT telemetry ingest from 127.0.0.1:1883 for site(s) {site}"
        )),
        "{}",
        server.stdout_text()
    );
    server.terminate();
    let (count, high) = stored(&db, device);
    assert_eq!(high, last);
    assert_eq!(count, count_before + 50, "each of the 50 samples once");
}

#[test]
fn a_malformed_broker_address_is_refused_naming_the_flag() {
    let db = SqliteDb::new();
    let url = db.url();
    let out = cellops(
        &[
            "serve",
            "--database",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--facility",
            "cpc-kyoto=G1234",
            "--mqtt",
            "localhost",
        ],
        None,
    );
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("--mqtt \"localhost\": write HOST:PORT"),
        "{}",
        out.stderr
    );
}
