//! Tests of the simulated culture device through the `CultureDevice` trait.

use std::collections::BTreeMap;

use cellops_device::{CultureDevice, DeviceState, Program, ProgramRef, SIGNALS, SimulatedDevice};
use cellops_process::recipe::model::DeviceOperation;
use cellops_process::units::SetPoint;
use cellops_twin::Product;
use cellops_twin::sensors::Fault;
use time::{Duration, OffsetDateTime};

fn origin() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn program(step: &str, operation: DeviceOperation, hours: f64) -> Program {
    Program {
        reference: ProgramRef {
            batch: "B1".into(),
            step: step.into(),
        },
        operation,
        set_points: BTreeMap::from([(SetPoint::TemperatureC, 37.0), (SetPoint::Co2Percent, 5.0)]),
        duration_hours: hours,
    }
}

fn device(period_s: u32) -> SimulatedDevice {
    SimulatedDevice::new("SIM-1", Product::PrimeCarT, 7, origin(), period_s).unwrap()
}

#[test]
fn a_program_runs_its_duration_then_completes() {
    let mut d = device(60);
    d.start_program(&program("expansion", DeviceOperation::Expansion, 2.0))
        .unwrap();
    assert_eq!(d.status().unwrap().state, DeviceState::Running);
    d.advance_to(origin() + Duration::minutes(119)).unwrap();
    assert_eq!(d.status().unwrap().state, DeviceState::Running);
    d.advance_to(origin() + Duration::minutes(121)).unwrap();
    let status = d.status().unwrap();
    assert_eq!(status.state, DeviceState::Completed);
    assert_eq!(status.program.unwrap().step, "expansion");
}

#[test]
fn a_second_program_is_refused_while_one_runs() {
    let mut d = device(60);
    d.start_program(&program("a", DeviceOperation::Expansion, 2.0))
        .unwrap();
    let err = d
        .start_program(&program("b", DeviceOperation::Expansion, 2.0))
        .unwrap_err();
    assert!(err.to_string().contains("still running"), "{err}");
}

#[test]
fn samples_come_once_per_period_per_signal_with_gap_free_seq() {
    let mut d = device(1);
    d.start_program(&program("a", DeviceOperation::Expansion, 2.0))
        .unwrap();
    d.advance_to(origin() + Duration::seconds(10)).unwrap();
    let samples = d.read_samples(0, 10_000).unwrap();
    // Samples at t = 0, 1, ..., 10 s: every sample time up to and including now.
    assert_eq!(samples.len(), 11 * SIGNALS.len());
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(s.seq, i as u64 + 1);
    }
    assert_eq!(d.status().unwrap().last_sample_seq, samples.len() as u64);
    // Reading past a seq forgets older samples; re-reading from the same seq repeats.
    let again = d.read_samples(100, 10_000).unwrap();
    assert_eq!(again.first().unwrap().seq, 101);
    let again2 = d.read_samples(100, 5).unwrap();
    assert_eq!(again2.len(), 5);
    assert_eq!(again2[0].seq, 101);
}

#[test]
fn power_loss_silences_sensors_and_faults_the_device() {
    let mut d = device(60);
    d.start_program(&program("a", DeviceOperation::Expansion, 10.0))
        .unwrap();
    d.advance_to(origin() + Duration::hours(1)).unwrap();
    let before = d.status().unwrap().last_sample_seq;
    d.inject_fault(Fault::PowerLoss { ambient_c: 20.0 }, Some(1.0))
        .unwrap();
    let status = d.status().unwrap();
    assert_eq!(status.state, DeviceState::Faulted);
    assert!(status.alarms.iter().any(|a| a.code == "power_loss"));
    d.advance_to(origin() + Duration::minutes(90)).unwrap();
    let samples = d.read_samples(before, 10_000).unwrap();
    assert!(!samples.is_empty());
    assert!(
        samples.iter().all(|s| s.signal as usize >= 7),
        "sensors silent"
    );
    // The power comes back after an hour; the alarm clears.
    d.advance_to(origin() + Duration::hours(3)).unwrap();
    assert!(d.status().unwrap().alarms.is_empty());
}

#[test]
fn temperature_loss_raises_an_alarm() {
    let mut d = device(60);
    d.start_program(&program("a", DeviceOperation::Expansion, 10.0))
        .unwrap();
    d.inject_fault(Fault::TemperatureLoss { ambient_c: 20.0 }, None)
        .unwrap();
    d.advance_to(origin() + Duration::hours(3)).unwrap();
    let alarms = d.status().unwrap().alarms;
    assert!(
        alarms.iter().any(|a| a.code == "temperature_deviation"),
        "{alarms:?}"
    );
}

#[test]
fn harvest_reports_the_cells_and_ends_the_culture() {
    let mut d = device(600);
    d.advance_to(origin() + Duration::days(8)).unwrap();
    d.start_program(&program("harvest", DeviceOperation::Harvest, 3.0))
        .unwrap();
    d.advance_to(origin() + Duration::days(8) + Duration::hours(4))
        .unwrap();
    let status = d.status().unwrap();
    assert_eq!(status.state, DeviceState::Completed);
    let cells = status.results["harvested_viable_cells"];
    assert!(cells > 1e8, "{cells}");
    assert!(status.results["harvested_car_positive_cells"] < cells);
}

#[test]
fn safe_state_stops_the_program_and_pumps() {
    let mut d = device(60);
    let mut p = program("a", DeviceOperation::Expansion, 10.0);
    p.set_points.insert(SetPoint::PerfusionMlPerDay, 500.0);
    d.start_program(&p).unwrap();
    d.safe_state("control lost").unwrap();
    let status = d.status().unwrap();
    assert_eq!(status.state, DeviceState::Safe);
    assert!(!status.set_points.contains_key(&SetPoint::PerfusionMlPerDay));
    // A new program may start from the safe state.
    d.start_program(&program("b", DeviceOperation::Expansion, 1.0))
        .unwrap();
}

#[test]
fn out_of_range_set_points_are_refused_naming_the_set_point() {
    let mut d = device(60);
    let mut p = program("a", DeviceOperation::Expansion, 10.0);
    p.set_points.insert(SetPoint::TemperatureC, 80.0);
    let err = d.start_program(&p).unwrap_err().to_string();
    assert!(err.contains("temperature_c"), "{err}");
}

#[test]
fn the_same_seed_gives_the_same_samples() {
    let run = || {
        let mut d = device(30);
        d.start_program(&program("a", DeviceOperation::Expansion, 10.0))
            .unwrap();
        d.advance_to(origin() + Duration::hours(2)).unwrap();
        d.read_samples(0, 10_000).unwrap()
    };
    assert_eq!(run(), run());
}

mod codec {
    use super::*;
    use cellops_device::Sample;
    use cellops_device::telemetry::{TelemetryCodecError, decode, encode};

    #[test]
    fn simulated_telemetry_round_trips_in_under_16_bytes_per_sample() {
        let mut d = device(1);
        d.start_program(&program("a", DeviceOperation::Expansion, 10.0))
            .unwrap();
        d.advance_to(origin() + Duration::minutes(30)).unwrap();
        let samples = d.read_samples(0, 100_000).unwrap();
        let bytes = encode(&samples).unwrap();
        assert_eq!(decode(&bytes).unwrap(), samples);
        let per_sample = bytes.len() as f64 / samples.len() as f64;
        assert!(per_sample <= 16.0, "{per_sample} B/sample");
    }

    #[test]
    fn odd_values_and_times_round_trip() {
        let values = [
            0.0,
            -0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e-300,
            -7.25,
            f64::NAN,
        ];
        let samples: Vec<Sample> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                seq: 41 + i as u64,
                at_unix_ms: -5_000 + (i as i64) * 777 * (i as i64),
                signal: (i % 3) as u16 * 1000,
                value: *v,
            })
            .collect();
        let back = decode(&encode(&samples).unwrap()).unwrap();
        assert_eq!(back.len(), samples.len());
        for (a, b) in back.iter().zip(&samples) {
            assert_eq!(a.value.to_bits(), b.value.to_bits());
            assert_eq!(
                (a.seq, a.at_unix_ms, a.signal),
                (b.seq, b.at_unix_ms, b.signal)
            );
        }
    }

    #[test]
    fn gaps_and_damage_are_refused() {
        let s = |seq| Sample {
            seq,
            at_unix_ms: 0,
            signal: 0,
            value: 1.0,
        };
        assert_eq!(
            encode(&[s(1), s(3)]).unwrap_err(),
            TelemetryCodecError::NotConsecutive {
                previous: 1,
                found: 3
            }
        );
        assert!(matches!(
            encode(&[]).unwrap_err(),
            TelemetryCodecError::BadCount { count: 0 }
        ));
        let bytes = encode(&[s(1), s(2)]).unwrap();
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }
}
