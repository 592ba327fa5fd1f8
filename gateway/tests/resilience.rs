//! The pipeline's promises across processes, with the real binary on PostgreSQL and the
//! WhatsApp Graph API emulator in this test process:
//! - two `serve` processes on one database share the work and answer 500 inbound messages with
//!   exactly 500 replies;
//! - `kill -9` during a burst, then a restart: every acknowledged message is answered exactly
//!   once (leases expire, the inbox is durable, sends of unknown outcome are reconciled from
//!   Meta's status reports instead of being repeated).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_store::testing::{Backend, TestDatabase};
use switchboard_whatsapp::emulator::{
    DialogMode, Emulator, EmulatorConfig, EmulatorHandle, meta_json, signature,
};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const APP_ID: &str = "1234567890";
const APP_SECRET: &str = "resilience-app-secret";
const PHONE_NUMBER_ID: &str = "106540352242922";

/// A running `switchboard serve`.
struct Instance {
    child: Child,
    address: String,
    log: Arc<Mutex<Vec<Value>>>,
}

impl Instance {
    fn start(dir: &Path, database_url: &str, emulator: &str, port: u16) -> Self {
        let address = format!("127.0.0.1:{port}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("serve")
            .env_clear()
            .current_dir(dir)
            .envs([
                ("DATABASE_URL", database_url),
                ("SWITCHBOARD_SECURITY__ENCRYPTION_KEY", KEY),
                ("SWITCHBOARD_SERVER__BIND", &address),
                ("PUBLIC_URL", &format!("http://{address}")),
                ("SWITCHBOARD_LOG__FORMAT", "json"),
                ("SWITCHBOARD_LOG__LEVEL", "info"),
                ("SWITCHBOARD_CHANNELS__TELEGRAM__ENABLED", "false"),
                ("META_APP_ID", APP_ID),
                ("META_APP_SECRET", APP_SECRET),
                ("WHATSAPP_VERIFY_TOKEN", "verify"),
                ("SWITCHBOARD_CHANNELS__WHATSAPP__GRAPH_BASE_URL", emulator),
                ("SWITCHBOARD_CHANNELS__WHATSAPP__DIALOG_BASE_URL", emulator),
                ("SWITCHBOARD_WORKERS__POLL_INTERVAL_MS", "200"),
                ("SWITCHBOARD_WORKERS__LEASE_SECS", "5"),
                ("SWITCHBOARD_WORKERS__RECONCILE_SECS", "30"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if entry["fields"]["message"] == "switchboard listening" {
                    let _ = ready_tx.send(());
                }
                sink.lock().unwrap().push(entry);
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve listens");
        Self {
            child,
            address,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Log entries whose message is `message`.
    fn count(&self, message: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["fields"]["message"] == message)
            .count()
    }

    fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-resilience-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn emulator() -> EmulatorHandle {
    let mut config = EmulatorConfig::new(APP_ID, APP_SECRET);
    // Meta retries webhook deliveries for days; a restarted gateway must still get them.
    config.retry_schedule = [250, 500, 1000, 2000, 3000, 5000, 8000]
        .map(Duration::from_millis)
        .to_vec();
    let handle = Emulator::start(config).await.expect("emulator");
    handle.update_faults(|f| {
        f.dialog = DialogMode::AutoApprove;
        f.enforce_window = false;
        f.never_expiring_tokens = true;
        f.throughput_per_second = 100_000;
        f.pair_burst = 1_000;
    });
    handle
}

/// A tenant and its API key, created with the binary.
fn tenant(dir: &Path, database_url: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["tenant", "create", "--name", "Lucky Shrub"])
        .env_clear()
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    created["api_key"].as_str().unwrap().to_owned()
}

/// Connects WhatsApp through the instance's OAuth flow (the emulator approves at once).
async fn connect(instance: &Instance, key: &str) {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let start: Value = browser
        .get(instance.url("/api/integrations/whatsapp/connect"))
        .bearer_auth(key)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page = browser
        .get(start["authorize_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the callback page reports success");
    let status: Value = browser
        .get(instance.url("/api/integrations/whatsapp/status"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "connected", "{status}");
}

/// A signed webhook with one text message from customer `n`, as Meta sends it.
fn inbound(n: usize) -> (Vec<u8>, String) {
    let from = format!("1555{n:07}");
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": format!("Customer {n}")}, "wa_id": from}],
            "messages": [{"from": from, "id": format!("wamid.inbound.{n}"), "timestamp": chrono::Utc::now().timestamp().to_string(),
                          "type": "text", "text": {"body": format!("hello {n} ✓")}}]
        }}]}]
    });
    let bytes = meta_json(&body).into_bytes();
    let sig = signature(APP_SECRET, &bytes);
    (bytes, sig)
}

/// Posts messages `range` to the instances round-robin; every one must be acknowledged.
async fn post_burst(instances: &[&Instance], range: std::ops::Range<usize>) {
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for n in range {
        let url = instances[n % instances.len()].url("/api/webhooks/whatsapp");
        let client = client.clone();
        tasks.spawn(async move {
            let (body, sig) = inbound(n);
            let response = client
                .post(url)
                .header("x-hub-signature-256", sig)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        });
        if tasks.len() >= 16 {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// Replies at the emulator: (total sends, distinct recipients).
fn replies(emulator: &EmulatorHandle) -> (usize, usize) {
    let sent = emulator.sent_messages();
    let recipients: std::collections::HashSet<String> = sent.iter().map(|m| m.to.clone()).collect();
    (sent.len(), recipients.len())
}

/// Recipients that got more than one reply, with the gateway references of those sends.
fn twice(emulator: &EmulatorHandle) -> Vec<(String, Vec<Value>)> {
    let mut by_recipient: std::collections::BTreeMap<String, Vec<Value>> =
        std::collections::BTreeMap::new();
    for sent in emulator.sent_messages() {
        let reference = sent
            .body
            .get("biz_opaque_callback_data")
            .cloned()
            .unwrap_or(Value::Null);
        by_recipient.entry(sent.to).or_default().push(reference);
    }
    by_recipient
        .into_iter()
        .filter(|(_, refs)| refs.len() > 1)
        .collect()
}

async fn wait_for_replies(emulator: &EmulatorHandle, expected: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while replies(emulator).0 < expected {
        assert!(
            Instant::now() < deadline,
            "only {:?} replies of {expected}",
            replies(emulator)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_on_one_postgres_database_answer_500_messages_exactly_once() {
    let Some(database) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let dir = temp_dir();
    let emulator = emulator().await;
    let key = tenant(&dir, &database.url);
    let mut a = Instance::start(&dir, &database.url, emulator.base_url(), free_port());
    let mut b = Instance::start(&dir, &database.url, emulator.base_url(), free_port());
    connect(&a, &key).await;
    emulator.set_webhook_url(Some(a.url("/api/webhooks/whatsapp")));
    post_burst(&[&a, &b], 0..500).await;
    wait_for_replies(&emulator, 500, Duration::from_secs(120)).await;
    // Give stragglers the chance to show up: none may.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        replies(&emulator),
        (500, 500),
        "answered twice: {:?}",
        twice(&emulator)
    );
    let (sent_a, sent_b) = (a.count("sent"), b.count("sent"));
    assert_eq!(sent_a + sent_b, 500);
    assert!(
        sent_a > 0 && sent_b > 0,
        "both instances took work: {sent_a} / {sent_b}"
    );
    a.stop();
    b.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_loses_nothing_and_repeats_nothing_after_a_restart() {
    let Some(database) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let dir = temp_dir();
    let emulator = emulator().await;
    let key = tenant(&dir, &database.url);
    let port = free_port();
    let mut first = Instance::start(&dir, &database.url, emulator.base_url(), port);
    connect(&first, &key).await;
    emulator.set_webhook_url(Some(first.url("/api/webhooks/whatsapp")));
    post_burst(&[&first], 0..200).await;
    // Kill in the middle of the burst of replies.
    let deadline = Instant::now() + Duration::from_secs(60);
    while replies(&emulator).0 < 20 {
        assert!(Instant::now() < deadline, "no replies before the kill");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill_9();
    let at_kill = replies(&emulator).0;
    assert!(
        at_kill < 200,
        "the kill came too late to test anything ({at_kill} replies)"
    );
    // The same address: Meta keeps retrying status reports there.
    let second = Instance::start(&dir, &database.url, emulator.base_url(), port);
    wait_for_replies(&emulator, 200, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        replies(&emulator),
        (200, 200),
        "answered twice: {:?}",
        twice(&emulator)
    );
    assert!(second.count("sent") > 0);
    drop(second);
    let _ = std::fs::remove_dir_all(dir);
}
