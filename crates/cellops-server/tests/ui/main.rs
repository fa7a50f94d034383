//! Web UI tests in a real browser: headless Debian Chromium driven over WebDriver
//! (chromedriver) against the real server on a loopback port, with a SimClock test app.
//!
//! Nothing is skipped: without `chromium` and `chromedriver` every test fails and says how
//! to install them. Screenshots of the main screens go to `<target>/screenshots/`.

#[allow(dead_code)]
#[path = "../it/support.rs"]
mod support;

mod browser;
mod screens;
