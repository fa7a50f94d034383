//! `cellops device fault`, run as the real binary against a real `cellops serve --demo`:
//! the fault reaches the batch's simulated device through the API (recorded in the batch's
//! ledger stream; the demo operator then stops on the device alarm), and bad input is
//! refused with a message naming the argument.

mod common;

use common::{Response, Server, SqliteDb, cellops, http};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A signed-in demo user: session cookie and an API token.
struct Session {
    addr: SocketAddr,
    cookie: String,
    token: String,
}

fn call(addr: SocketAddr, method: &str, path: &str, auth: &str, body: Option<&Value>) -> Response {
    let header = if auth.starts_with("cellops_session=") {
        ("Cookie", auth.to_string())
    } else {
        ("Authorization", format!("Bearer {auth}"))
    };
    let body = body.map(Value::to_string);
    http(
        addr,
        method,
        path,
        &[(header.0, header.1.as_str())],
        body.as_deref(),
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn ok_json(r: &Response, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    r.json().unwrap()
}

impl Session {
    /// Logs in with the demo password, acknowledges the e-signature policy, makes a token.
    fn demo(addr: SocketAddr, user: &str) -> Session {
        let password = cellops_server::provision::demo_password(user);
        let body = json!({"user_id": user, "password": password}).to_string();
        let r = http(addr, "POST", "/api/auth/login", &[], Some(&body)).unwrap();
        assert_eq!(r.status, 200, "login {user}: {}", r.text());
        let cookie = r
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        ok_json(
            &call(addr, "POST", "/api/auth/esig-policy", &cookie, None),
            "esig policy",
        );
        let token = ok_json(
            &call(
                addr,
                "POST",
                "/api/auth/tokens",
                &cookie,
                Some(&json!({"name": "cli", "password": password})),
            ),
            "token",
        )["token"]
            .as_str()
            .unwrap()
            .to_string();
        Session {
            addr,
            cookie,
            token,
        }
    }

    fn post(&self, path: &str, body: Value) -> Value {
        ok_json(
            &call(self.addr, "POST", path, &self.cookie, Some(&body)),
            path,
        )
    }
}

#[test]
fn device_fault_injects_through_the_running_servers_api() {
    let db = SqliteDb::new();
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(
        &db.url(),
        &["--demo", "--demo-history-days", "0"],
        logs.path(),
    );
    let addr = server.addr;
    let op = Session::demo(addr, "op-tanaka");
    let qa = Session::demo(addr, "qa-ito");
    op.post(
        "/api/recipes",
        json!({"site": "cpc-kyoto", "shipped": "prime-car-t.toml"}),
    );
    qa.post(
        "/api/recipes/prime-car-t/1.0.0/approve",
        json!({"password": cellops_server::provision::demo_password("qa-ito"), "user_id": "qa-ito"}),
    );
    op.post(
        "/api/batches",
        json!({"site": "cpc-kyoto", "product": "prime-car-t", "starting_unit": "A999026000007-S1234100",
               "batch": "cli-1", "simulation": {"seed": 4, "sample_period_s": 900}}),
    );
    let simulate = |hours: u32| {
        op.post(
            "/api/batches/cli-1/simulate",
            json!({"hours": hours, "password": cellops_server::provision::demo_password("op-tanaka"), "user_id": "op-tanaka"}),
        )
    };
    assert_eq!(simulate(30)["stopped"], "time_reached");
    let server_arg = addr.to_string();
    let fault = |extra: &[&str], token: Option<&str>| {
        let mut args = vec![
            "device",
            "fault",
            "--server",
            server_arg.as_str(),
            "--batch",
            "cli-1",
        ];
        args.extend_from_slice(extra);
        if let Some(t) = token {
            args.extend(["--token", t]);
        }
        cellops(&args, None)
    };

    // Bad input: refused locally, naming the argument, before any request.
    let out = fault(&["--fault", "meteor"], Some(&op.token));
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("--fault \"meteor\"") && out.stderr.contains("power_loss"),
        "{}",
        out.stderr
    );
    let out = fault(&["--fault", "sensor_drift"], Some(&op.token));
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("--sensor"), "{}", out.stderr);
    // Refused by the server: a token of someone without a role at the batch's site.
    let physician = Session::demo(addr, "dr-yamada");
    let out = fault(&["--fault", "power_loss"], Some(&physician.token));
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("the server refused the fault (403)"),
        "{}",
        out.stderr
    );

    // The fault goes in: recorded on the batch's stream, and the device feels it.
    let out = fault(
        &["--fault", "power_loss", "--duration-h", "2"],
        Some(&op.token),
    );
    out.expect_code(0, "cellops device fault");
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(printed["record"]["type"], "culture.fault_injected");
    let stream = ok_json(
        &call(
            addr,
            "GET",
            "/api/ledger/records?stream=batch/cli-1&limit=1000",
            &op.cookie,
            None,
        ),
        "stream",
    );
    let faults: Vec<&Value> = stream["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "culture.fault_injected")
        .collect();
    assert_eq!(faults.len(), 1, "{stream:#}");
    assert_eq!(faults[0]["payload"]["fault"], "power_loss");
    assert_eq!(faults[0]["actor"], "op-tanaka");
    assert_eq!(simulate(10)["stopped"], "device_faulted");
    drop(server);
}
