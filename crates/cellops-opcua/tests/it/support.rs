//! Starting the Python peer and the Rust server for a test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cellops_device::SimulatedDevice;
use cellops_opcua::{ClientOptions, DeviceServer, ServerOptions};
use cellops_twin::Product;
use time::OffsetDateTime;

/// The Python asyncua peer, killed when dropped.
pub struct Peer {
    child: Child,
    pub endpoint: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    /// Starts `tests/peer/device_server.py` with `args` and waits for its `LISTENING` line.
    /// Fails loudly when Python or asyncua is missing (scripts/setup-test-deps installs it).
    pub fn start(args: &[&str]) -> Peer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer/device_server.py");
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 must be installed (scripts/setup-test-deps)");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        // Blocks until the peer serves (asyncua loads its address space first) or exits.
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let Some(endpoint) = line.trim().strip_prefix("LISTENING ") else {
            let status = child.wait().unwrap();
            panic!(
                "the asyncua peer did not start ({status}); is asyncua installed? run scripts/setup-test-deps"
            );
        };
        Peer {
            child,
            endpoint: endpoint.to_string(),
        }
    }

    /// The port the peer listens on.
    pub fn port(&self) -> String {
        self.endpoint
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap()
            .to_string()
    }
}

pub fn client_options(pki: &tempfile::TempDir) -> ClientOptions {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    ClientOptions {
        request_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(20),
        pki_dir: pki.path().to_path_buf(),
    }
}

pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_000_000).unwrap()
}

pub fn sim(id: &str) -> Arc<Mutex<SimulatedDevice>> {
    Arc::new(Mutex::new(
        SimulatedDevice::new(id, Product::PrimeCarT, 11, t0(), 60).unwrap(),
    ))
}

/// A Rust OPC UA server for a simulated device, on its own runtime thread.
pub struct RustServer {
    pub runtime: tokio::runtime::Runtime,
    pub server: Option<DeviceServer>,
}

impl RustServer {
    pub fn start(
        device: Arc<Mutex<SimulatedDevice>>,
        port: u16,
        watchdog: Option<Duration>,
        pki: &tempfile::TempDir,
    ) -> RustServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let options = ServerOptions {
            host: "127.0.0.1".into(),
            port,
            manufacturer: "cellops".into(),
            watchdog,
            pki_dir: pki.path().to_path_buf(),
        };
        let server = runtime
            .block_on(DeviceServer::start(device, &options))
            .unwrap();
        RustServer {
            runtime,
            server: Some(server),
        }
    }

    pub fn endpoint(&self) -> String {
        self.server.as_ref().unwrap().endpoint_url()
    }

    pub fn port(&self) -> u16 {
        self.server.as_ref().unwrap().local_addr().port()
    }

    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

impl Drop for RustServer {
    fn drop(&mut self) {
        self.stop();
    }
}
