//! What the browser tests stand on: the real `switchboard serve --sandbox` in a fresh working
//! directory, `chromedriver` on a free port driving headless Chromium with a fresh profile, and
//! a wait helper that polls a condition in the page and explains itself when it times out.
//!
//! When Chromium or chromedriver is missing (after `scripts/install-browser.sh` had its
//! chance), [`tools`] fails loudly under `CI` and prints a skip notice elsewhere.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a page may take to reach an expected state.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The browser binaries.
pub struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|candidate| candidate.is_file())
}

fn find() -> Option<Tools> {
    Some(Tools {
        chromium: which(&["chromium", "chromium-browser", "google-chrome"])?,
        chromedriver: which(&["chromedriver"])?,
    })
}

/// The browser, installing it with the project's script when missing; `None` (after a loud
/// notice) when it cannot be had outside CI.
///
/// # Panics
/// Under `CI` when the browser is missing.
pub fn tools() -> Option<Tools> {
    if let Some(tools) = find() {
        return Some(tools);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-browser.sh");
    let _ = Command::new("bash").arg(script).status();
    if let Some(tools) = find() {
        return Some(tools);
    }
    let message = "chromium and chromedriver are not installed and scripts/install-browser.sh \
                   could not install them";
    assert!(
        std::env::var_os("CI").is_none(),
        "BROWSER TESTS CANNOT RUN: {message}"
    );
    // Written to the process's stderr directly: the test harness captures `eprintln!`.
    let notice = format!(
        "\n==================== SKIPPED: BROWSER TEST ====================\n\
         {message}; run `bash scripts/install-browser.sh` as root.\n\
         ===============================================================\n"
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A new directory of its own. A name from the process id and the clock was not enough: in one
/// CI run a sandbox failed to migrate a fresh SQLite file ("table businesses already exists")
/// and its log held another gateway's lines, as when the two tests, started at the same
/// instant, share a directory.
fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-{what}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&dir).expect("a new temp dir");
    dir
}

/// `switchboard serve --sandbox`, killed on drop.
pub struct Gateway {
    child: Child,
    pub base: String,
    pub api_key: String,
    pub dir: PathBuf,
}

impl Gateway {
    /// Starts the sandbox with extra environment variables and reads the printed API key.
    ///
    /// # Panics
    /// When the binary does not print a key within a minute.
    #[must_use]
    pub fn start(env: &[(&str, &str)]) -> Self {
        let dir = temp_dir("sandbox");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("gateway.log")).expect("a log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--sandbox"])
            .env_clear()
            .current_dir(&dir)
            .env("SWITCHBOARD_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("SWITCHBOARD_SERVER__PUBLIC_URL", &base)
            .env("SWITCHBOARD_LOG__LEVEL", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the switchboard binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(key) = line.strip_prefix("API key:") {
                    let _ = tx.send(key.trim().to_owned());
                }
            }
        });
        let api_key = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let log = std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default();
                panic!("serve --sandbox printed no API key; its log:\n{log}")
            });
        Self {
            child,
            base,
            api_key,
            dir,
        }
    }

    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("the gateway's log is in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A chromedriver process and the WebDriver session on it; on drop chromedriver is killed,
/// and so is the Chromium it started (killing chromedriver alone leaves Chromium running).
pub struct Browser {
    driver: Child,
    profile: PathBuf,
    pub client: Client,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Every process of this session's Chromium carries its own profile directory.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg("--")
            .arg(self.profile.as_os_str())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Chromium writes to its profile while it exits: remove the directory after it is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && Command::new("pgrep")
                .arg("-f")
                .arg("--")
                .arg(self.profile.as_os_str())
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Starts chromedriver on a free port and opens a headless Chromium session.
///
/// # Panics
/// When chromedriver does not come up or refuses the session.
pub async fn browser(tools: &Tools) -> Browser {
    let port = free_port();
    let driver = Command::new(&tools.chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = temp_dir("chromium-profile");
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": tools.chromium, "args": args }),
    );
    // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session");
    Browser {
        driver,
        profile,
        client,
    }
}

/// Polls `condition` (a JavaScript expression) until it is truthy.
///
/// # Panics
/// After [`PATIENCE`], with the page's URL and visible text.
pub async fn until(client: &Client, what: &str, condition: &str) {
    let script = format!("return !!({condition});");
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(Value::Bool(true)) = client.execute(&script, vec![]).await {
            return;
        }
        if Instant::now() > deadline {
            let url = client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let text = client
                .execute(
                    "return document.body ? document.body.innerText : ''",
                    vec![],
                )
                .await
                .unwrap_or_default();
            panic!("timed out waiting for {what} ({condition}) on {url}; the page says:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The visible text of the first element matching `css`.
pub async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
        .text()
        .await
        .unwrap_or_default()
}

/// Clicks the first element matching `css`.
pub async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

/// Replaces the value of the input matching `css` with `value`.
pub async fn fill(client: &Client, css: &str, value: &str) {
    let input = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no input {css}: {e}"));
    input.clear().await.expect("clearable input");
    input.send_keys(value).await.expect("typing works");
}

/// Logs in through the log-in page with the sandbox's printed key.
pub async fn log_in(client: &Client, gateway: &Gateway) {
    client
        .goto(&gateway.url("/dashboard/integrations"))
        .await
        .expect("the dashboard loads");
    until(
        client,
        "the redirect to the log-in page",
        "location.pathname === '/dashboard/login'",
    )
    .await;
    fill(client, "#api-key", &gateway.api_key).await;
    click(client, "#login-form button[type=submit]").await;
    until(
        client,
        "the integrations page",
        "document.querySelector('#cards article')",
    )
    .await;
}

/// Takes a screenshot (proving the page renders) and saves it as `docs/screenshots/{name}.png`
/// when `UPDATE_SCREENSHOTS` is set, so ordinary runs leave the committed images alone.
pub async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the browser returned a PNG");
    if std::env::var_os("UPDATE_SCREENSHOTS").is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("docs/screenshots");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot is written");
}
