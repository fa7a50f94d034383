//! Architecture invariants that the code cannot show: which crates may depend on what.

use std::collections::{BTreeMap, BTreeSet};

/// Dependencies (normal, not dev) of every workspace crate, by crate name.
fn workspace_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

#[test]
fn pure_crates_do_no_io() {
    let deps = workspace_dependencies();
    let io = [
        "tokio",
        "axum",
        "rusqlite",
        "postgres",
        "tower",
        "cellops-ledger",
        "cellops-server",
    ];
    for krate in [
        "cellops-domain",
        "cellops-tlog",
        "cellops-isbt",
        "cellops-custody",
        "cellops-label",
        "cellops-twin",
        "cellops-process",
        "cellops-device",
        "cellops-schedule",
        "cellops-orders",
        "cellops-qc",
        "cellops-cold",
        "cellops-training",
    ] {
        let d = deps
            .get(krate)
            .unwrap_or_else(|| panic!("{krate} is in the workspace"));
        for forbidden in io {
            assert!(
                !d.contains(forbidden),
                "{krate} must not depend on {forbidden}"
            );
        }
    }
}

#[test]
fn only_the_server_and_binary_know_http() {
    // cellops-demo is an HTTP client of the server (it drives the real router in process),
    // never a second server; the domain crates stay free of HTTP.
    let deps = workspace_dependencies();
    for (krate, d) in &deps {
        if !["cellops-server", "cellops", "cellops-demo"].contains(&krate.as_str()) {
            assert!(!d.contains("axum"), "{krate} must not depend on axum");
        }
    }
}

#[test]
fn only_the_opcua_crate_and_binary_pay_for_the_opc_ua_stack() {
    // async-opcua is large (its generated core namespace alone takes minutes to build):
    // keep it out of every crate that does not speak OPC UA.
    let deps = workspace_dependencies();
    for (krate, d) in &deps {
        if krate != "cellops-opcua" && krate != "cellops" {
            assert!(
                !d.contains("async-opcua"),
                "{krate} must not depend on async-opcua (use cellops-opcua)"
            );
        }
    }
}
