//! The real `switchboard` binary, as a newcomer uses it: `config check`, `migrate`,
//! `tenant create`, `serve`, an API call with the printed key, and SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The binary with an empty environment, run in `dir`.
fn switchboard(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.env_clear().current_dir(dir);
    command
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-cli-{}",
        std::process::id() as u64 * 1000 + rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn config_check_outside_sandbox_names_the_missing_encryption_key() {
    let dir = temp_dir();
    let output = run(switchboard(&dir).args(["config", "check"]));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("security.encryption_key"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn config_check_prints_the_effective_configuration_without_secrets() {
    let dir = temp_dir();
    let output = run(switchboard(&dir)
        .args(["config", "check"])
        .env("SWITCHBOARD_SECURITY__ENCRYPTION_KEY", KEY)
        .env(
            "DATABASE_URL",
            "postgres://sb:pa55word@db.internal/switchboard",
        ));
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(printed["server"]["bind"], "127.0.0.1:8000");
    assert_eq!(printed["security"]["encryption_key"], "[REDACTED]");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains(KEY) && !text.contains("pa55word"), "{text}");
    assert!(
        stderr(&output).contains("https"),
        "http public_url is warned about"
    );
}

#[test]
fn config_check_refuses_a_section_for_an_unregistered_channel() {
    let dir = temp_dir();
    let output = run(switchboard(&dir)
        .args(["config", "check"])
        .env("SWITCHBOARD_SECURITY__ENCRYPTION_KEY", KEY)
        .env("SWITCHBOARD_CHANNELS__SIGNAL__ENABLED", "true"));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("channels.signal"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn migrate_applies_migrations_and_is_idempotent() {
    let dir = temp_dir();
    for _ in 0..2 {
        let output = run(switchboard(&dir)
            .arg("migrate")
            .env("SWITCHBOARD_SECURITY__ENCRYPTION_KEY", KEY));
        assert!(output.status.success(), "{}", stderr(&output));
    }
    assert!(
        dir.join("data/switchboard.db").is_file(),
        "the default SQLite file is created"
    );
}

/// Reads the `serve` log until the listening line and returns the address.
fn listening_address(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
            && entry["fields"]["message"] == "switchboard listening"
        {
            let address = entry["fields"]["address"]
                .as_str()
                .expect("address field")
                .to_owned();
            // Keep draining the log so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return address;
        }
    }
    panic!("serve did not log its address");
}

#[test]
fn a_newcomer_creates_a_tenant_serves_and_calls_the_api_then_sigterm_stops_the_server() {
    let dir = temp_dir();
    let created = run(switchboard(&dir).args(["tenant", "create", "--name", "Acme Bakery"]));
    assert!(created.status.success(), "{}", stderr(&created));
    let tenant: serde_json::Value =
        serde_json::from_slice(&created.stdout).expect("JSON on stdout");
    let api_key = tenant["api_key"].as_str().expect("api_key").to_owned();
    assert!(tenant["business_id"].is_string());

    let mut child = switchboard(&dir)
        .arg("serve")
        .env("SWITCHBOARD_SECURITY__ENCRYPTION_KEY", KEY)
        .env("SWITCHBOARD_SERVER__BIND", "127.0.0.1:0")
        .env("SWITCHBOARD_LOG__FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let address = listening_address(&mut child);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(format!("http://{address}/api/integrations"))
            .bearer_auth(&api_key)
            .send()
            .await
            .expect("request");
        (
            response.status(),
            response.json::<serde_json::Value>().await.expect("JSON"),
        )
    });
    assert_eq!(status, 200);
    assert!(body.is_array(), "{body}");
    assert!(
        !std::fs::read_to_string(dir.join("data/switchboard.db"))
            .unwrap_or_default()
            .contains(&api_key),
        "the key is stored hashed"
    );

    let stopped_at = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "serve exits cleanly on SIGTERM: {exit}");
            break;
        }
        assert!(
            stopped_at.elapsed() < Duration::from_secs(10),
            "an idle server stops within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
