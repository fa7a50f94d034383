//! The generator and the checked-in instances.

use cellops_schedule::Network;
use cellops_schedule::instance::Instance;

use crate::common::instance;

#[test]
fn generator_is_deterministic_and_valid() {
    let a = instance(120, 7);
    let b = instance(120, 7);
    assert_eq!(a, b);
    assert_ne!(a, instance(120, 8));
    assert_eq!(a.orders.len(), 120);
    let products: std::collections::BTreeSet<&str> =
        a.orders.iter().map(|o| o.product.as_str()).collect();
    assert_eq!(products.len(), 3, "all three products appear");
    Network::new(a).unwrap();
}

#[test]
fn instances_round_trip_through_json() {
    let a = instance(30, 3);
    let text = serde_json::to_string_pretty(&a).unwrap();
    let b: Instance = serde_json::from_str(&text).unwrap();
    assert_eq!(a, b);
}

/// The checked-in instances: (patients, seed). `cellops bench schedule` generates the same.
const CHECKED_IN: [(usize, u64); 3] = [(50, 1), (150, 2), (500, 4)];

/// The checked-in files are exactly the generator's output (regenerate them with
/// `CELLOPS_BLESS=1 cargo test -p cellops-schedule checked_in`, or with
/// `cellops schedule generate --patients N --seed S --out FILE`).
#[test]
fn checked_in_instances_are_the_generators_output() {
    use rand::SeedableRng;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/instances");
    for (n, seed) in CHECKED_IN {
        let name = format!("gen-n{n}-s{seed}");
        let inst = cellops_schedule::generate::generate(
            &cellops_schedule::generate::GenParams::year(&name, n),
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        );
        let text = serde_json::to_string_pretty(&inst).unwrap() + "\n";
        let path = format!("{dir}/{name}.json");
        if std::env::var_os("CELLOPS_BLESS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(stored == text, "{path} differs from the generator's output");
    }
}

#[test]
fn checked_in_instances_load() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/instances");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let net =
                Network::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!((50..=500).contains(&net.orders.len()), "{}", path.display());
            count += 1;
        }
    }
    assert!(count >= 3, "at least three instances are checked in");
}
