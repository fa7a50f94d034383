//! Web UI tests in a real browser: headless Debian Chromium driven over WebDriver
//! (chromedriver) against the real server on a loopback port, with a SimClock test app.
//!
//! Nothing is skipped: without `chromium` and `chromedriver` every test fails and says how
//! to install them. Screenshots of the main screens go to `<target>/screenshots/`.

#[allow(dead_code)]
#[path = "../it/support.rs"]
mod support;

mod batch_deviations;
mod batch_open;
mod batch_steps;
mod bookings;
mod browser;
mod derive;
mod orders;
mod screens;
mod storage_forms;

use support::{PASSWORD, TestApp};

/// The password every test user signs in with.
pub fn password_for(_user: &str) -> String {
    PASSWORD.to_string()
}

/// The test app served over HTTP on 127.0.0.1.
pub struct Served {
    pub app: TestApp,
    pub base: String,
}

pub async fn serve() -> Served {
    let app = TestApp::new();
    let base = browser::listen(cellops_server::app(app.state.clone())).await;
    Served { app, base }
}
