//! The harness: a router on a loopback port and a chromedriver-driven headless Chromium.
//!
//! Shared by the UI tests of `cellops-server` and the browser walk-through of `cellops-demo`
//! (included there by path): it needs only `crate::password_for(user)`, the password the
//! test's users sign in with.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Tries to connect to a freshly started chromedriver (every 100 ms).
const DRIVER_CONNECT_TRIES_MAX: u32 = 300;
/// How long a WebDriver wait for an element may take before the test fails.
const ELEMENT_WAIT: Duration = Duration::from_secs(30);
/// Polls (every 50 ms) for a new page after a click that navigates.
const PAGE_LOAD_POLLS_MAX: u32 = 600;
pub const KEY_ENTER: &str = "\u{e007}";
pub const KEY_TAB: &str = "\u{e004}";

/// Serves `router` on a loopback port (the browser needs a real socket); returns its base URL.
pub async fn listen(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

/// A chromedriver process with one headless Chromium session; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    pub base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require_installed(path: &str) {
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: the browser tests need Debian's Chromium and ChromeDriver. \
         Install them with `scripts/setup-test-deps` (or `apt-get install chromium chromium-driver`)."
    );
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a 1024×768 window, language English.
    pub async fn start(base: &str) -> Browser {
        require_installed(CHROMIUM);
        require_installed(CHROMEDRIVER);
        let port = free_port();
        // Its own process group, so that dropping the browser ends chromedriver and every
        // Chromium process it started (no orphans left behind).
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut tries = 0;
        while TcpStream::connect(addr).is_err() {
            tries += 1;
            assert!(
                tries < DRIVER_CONNECT_TRIES_MAX,
                "chromedriver did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_string(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1024,768",
                    "--disable-crash-reporter", "--disable-breakpad",
                    "--lang=en-US", "--accept-lang=en-US",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .expect("a Chromium session starts");
        Browser {
            client,
            driver,
            _profile: profile,
            base: base.to_string(),
        }
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits for the element and returns it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(ELEMENT_WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                let source = self.client.source().await.unwrap_or_default();
                let end = source
                    .char_indices()
                    .nth(3000)
                    .map_or(source.len(), |(i, _)| i);
                panic!(
                    "no element {css} on {}: {e}\npage:\n{}",
                    self.path().await,
                    &source[..end]
                )
            }
        }
    }

    /// Whether the element is on the page now (no waiting).
    pub async fn exists_now(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    /// Clicks and waits for the next page to load.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Clicks something that loads another page and waits until that page has loaded (so
    /// that no element of the old page is read by mistake).
    pub async fn click_nav(&self, css: &str) {
        self.js("window.__cellopsOldPage = true;", vec![]).await;
        self.click(css).await;
        let mut tries = 0;
        loop {
            let done = self
                .js(
                    "return window.__cellopsOldPage === undefined && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            if done == Value::Bool(true) {
                return;
            }
            tries += 1;
            assert!(tries < PAGE_LOAD_POLLS_MAX, "{css} did not load a new page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap()
    }

    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute_async(script, args).await.unwrap()
    }

    /// Signs in through the login form.
    pub async fn login(&self, user: &str) {
        self.login_with(user, &crate::password_for(user)).await;
    }

    pub async fn login_with(&self, user: &str, password: &str) {
        self.goto("/ui/login").await;
        self.fill("#user_id", user).await;
        self.fill("#password", password).await;
        self.click("#login-submit").await;
        self.find("#who").await;
    }

    /// Saves a screenshot as `<target>/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = target_dir().join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Whether the page is wider than the window (a horizontal scroll bar).
    pub async fn overflows_horizontally(&self) -> (bool, Value) {
        let v = self
            .js(
                "const d = document.documentElement; \
                 return {scroll: d.scrollWidth, client: d.clientWidth, inner: window.innerWidth};",
                vec![],
            )
            .await;
        let overflow = v["scroll"].as_i64().unwrap() > v["client"].as_i64().unwrap();
        (overflow, v)
    }

    /// Ids (or names) of visible form controls that have no label.
    pub async fn unlabelled_inputs(&self) -> Value {
        self.js(
            "return Array.from(document.querySelectorAll('input, select, textarea'))
               .filter(e => e.type !== 'hidden')
               .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
               .map(e => e.id || e.name);",
            vec![],
        )
        .await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole process group: chromedriver and the Chromium processes it started.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The cargo target directory this test binary was built in.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/<test binary>
    exe.ancestors().nth(3).unwrap().to_path_buf()
}
