//! The system under test: a fresh PostgreSQL database, the WhatsApp Graph API emulator in this
//! process, and the release `switchboard serve` as a child process configured through its
//! environment, with one tenant per business number, each connected through the OAuth flow.
//!
//! Several numbers, because the gateway keeps each number inside Meta's default throughput
//! (80 messages/s): end-to-end rates above that need the load spread over numbers, as a
//! multi-tenant gateway's real load is.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_store::testing::{Backend, TestDatabase};
use switchboard_whatsapp::emulator::{
    DialogMode, Emulator, EmulatorConfig, EmulatorHandle, Seed, SeedPhone,
};

use crate::Fallible;
use crate::args::Args;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const APP_ID: &str = "1234567890";
pub const APP_SECRET: &str = "bench-app-secret";
/// The WABA every seeded number belongs to (`Seed::with_numbers`).
pub const WABA_ID: &str = "102290129340398";

/// A running gateway with its emulator and database.
#[derive(Debug)]
pub struct Gateway {
    pub emulator: Arc<EmulatorHandle>,
    pub address: SocketAddr,
    pub phone_number_ids: Vec<String>,
    pub database: TestDatabase,
    child: Child,
    dir: PathBuf,
    keep_dir: bool,
}

impl Gateway {
    /// Starts everything and connects `numbers` tenants, one number each.
    ///
    /// # Errors
    /// When PostgreSQL, the binary or a connect flow fails.
    pub async fn start(args: &Args) -> Fallible<Self> {
        let (binary, numbers) = (args.gateway.as_path(), args.numbers);
        let database = TestDatabase::create(Backend::Postgres)
            .await
            .ok_or("PostgreSQL is unreachable (TEST_DATABASE_URL)")?;
        let phone_number_ids: Vec<String> =
            (0..numbers).map(|k| format!("1100000{k:08}")).collect();
        let emulator = Arc::new(emulator(&phone_number_ids, !args.no_statuses).await?);
        let dir = std::env::temp_dir().join(format!("switchboard-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let keys = (0..numbers)
            .map(|k| tenant(binary, &dir, &database.url, k))
            .collect::<Fallible<Vec<_>>>()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let child = serve(
            binary,
            &dir,
            &database.url,
            emulator.base_url(),
            address,
            &args.serve_env,
        )?;
        let gateway = Self {
            emulator,
            address,
            phone_number_ids,
            database,
            child,
            dir,
            keep_dir: args.keep_logs,
        };
        gateway.wait_ready().await?;
        gateway
            .emulator
            .set_webhook_url(Some(gateway.url("/api/webhooks/whatsapp")));
        for (key, number) in keys.iter().zip(&gateway.phone_number_ids) {
            gateway.connect(key, number).await?;
        }
        Ok(gateway)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Where the serve process logs.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("serve.log")
    }

    /// The serve process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The serve process's peak resident set (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// SIGTERM, then SIGKILL if it does not stop within `grace`.
    pub fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn wait_ready(&self) -> Fallible<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ready = client.get(self.url("/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "serve did not become ready; see {}",
            self.log_path().display()
        )
        .into())
    }

    /// OAuth (the emulator approves at once and grants every number), then this tenant's
    /// number is chosen.
    async fn connect(&self, key: &str, number: &str) -> Fallible<()> {
        let browser = reqwest::Client::builder().cookie_store(true).build()?;
        let start: Value = browser
            .get(self.url("/api/integrations/whatsapp/connect"))
            .bearer_auth(key)
            .header("accept", "application/json")
            .send()
            .await?
            .json()
            .await?;
        let authorize = start["authorize_url"].as_str().ok_or("no authorize_url")?;
        browser.get(authorize).send().await?.error_for_status()?;
        let chosen: Value = browser
            .post(self.url("/api/integrations/whatsapp/phone_numbers"))
            .bearer_auth(key)
            .json(&json!({ "phone_number_id": number }))
            .send()
            .await?
            .json()
            .await?;
        if chosen["state"] != "connected" {
            return Err(format!("number {number} did not connect: {chosen}").into());
        }
        Ok(())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn emulator(numbers: &[String], statuses: bool) -> Fallible<EmulatorHandle> {
    let mut config = EmulatorConfig::new(APP_ID, APP_SECRET);
    config.seed = Seed::with_numbers(
        numbers
            .iter()
            .enumerate()
            .map(|(k, id)| SeedPhone::new(id, &format!("1555077{k:04}"), &format!("Shop {k}")))
            .collect(),
    );
    let handle = Emulator::start(config).await?;
    handle.update_faults(|f| {
        f.dialog = DialogMode::AutoApprove;
        f.enforce_window = false;
        f.never_expiring_tokens = true;
        f.throughput_per_second = 1_000_000;
        f.pair_burst = 1_000_000;
        f.statuses = statuses;
    });
    Ok(handle)
}

/// A tenant created with the binary; its API key.
fn tenant(binary: &Path, dir: &Path, database_url: &str, k: usize) -> Fallible<String> {
    let output = Command::new(binary)
        .args(["tenant", "create", "--name", &format!("Bench Shop {k}")])
        .env_clear()
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .output()?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned().into());
    }
    let created: Value = serde_json::from_slice(&output.stdout)?;
    Ok(created["api_key"].as_str().ok_or("no api_key")?.to_owned())
}

fn serve(
    binary: &Path,
    dir: &Path,
    database_url: &str,
    emulator: &str,
    address: SocketAddr,
    extra_env: &[(String, String)],
) -> Fallible<Child> {
    let log = File::create(dir.join("serve.log"))?;
    let child = Command::new(binary)
        .arg("serve")
        .env_clear()
        .current_dir(dir)
        .envs([
            ("DATABASE_URL", database_url),
            ("SWITCHBOARD_SECURITY__ENCRYPTION_KEY", KEY),
            ("SWITCHBOARD_SERVER__BIND", &address.to_string()),
            ("PUBLIC_URL", &format!("http://{address}")),
            ("SWITCHBOARD_CHANNELS__TELEGRAM__ENABLED", "false"),
            ("META_APP_ID", APP_ID),
            ("META_APP_SECRET", APP_SECRET),
            ("WHATSAPP_VERIFY_TOKEN", "verify"),
            ("SWITCHBOARD_CHANNELS__WHATSAPP__GRAPH_BASE_URL", emulator),
            ("SWITCHBOARD_CHANNELS__WHATSAPP__DIALOG_BASE_URL", emulator),
        ])
        .envs(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    Ok(child)
}
