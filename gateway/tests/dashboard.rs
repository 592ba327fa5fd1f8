//! The dashboard and sandbox mode without a browser: pages need a session, every dashboard
//! response carries the Content-Security-Policy, the simulate endpoint exists only in sandbox
//! mode (and there needs a session, the CSRF header and a connected channel), and sandbox mode
//! refuses real provider credentials. Each test serves a fresh SQLite database on port 0.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use switchboard::config::{Settings, Validated};
use switchboard::sandbox;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn temp_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "switchboard-dashboard-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(sandbox: bool, extra: &str) -> Validated {
    config_in(&temp_dir(), sandbox, extra)
}

fn config_in(dir: &std::path::Path, sandbox: bool, extra: &str) -> Validated {
    let base = format!(
        "[database]\nurl = \"sqlite://{}/switchboard.db\"\n[security]\nencryption_key = \"{}\"\n",
        dir.display(),
        if sandbox { "" } else { KEY }
    );
    Settings::from_toml(&[&base, extra])
        .unwrap()
        .validate(sandbox)
        .unwrap()
}

struct Served {
    base: String,
    http: reqwest::Client,
    /// A session cookie value for the tenant (`sb_session=…`).
    cookie: String,
}

/// Builds and serves the app on port 0; in sandbox mode with its emulators and tenant.
async fn serve(mut config: Validated) -> Served {
    let emulators = if config.sandbox {
        Some(sandbox::start(&mut config).await.unwrap())
    } else {
        None
    };
    let mut state = switchboard::app::build(&config).await.unwrap();
    let api_key = match emulators {
        Some(emulators) => {
            let info = sandbox::activate(emulators, &state, &config).await.unwrap();
            let tenant = switchboard::tenants::create(state.store.as_ref(), "Extra")
                .await
                .unwrap();
            state.sandbox = Some(Arc::new(info));
            tenant.api_key
        }
        None => {
            switchboard::tenants::create(state.store.as_ref(), "Shop")
                .await
                .unwrap()
                .api_key
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(switchboard::app::run(
        listener,
        state,
        std::future::pending(),
    ));
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let key = secrecy::ExposeSecret::expose_secret(&api_key).to_owned();
    let login = http
        .post(format!("{base}/api/session"))
        .json(&json!({ "api_key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    Served { base, http, cookie }
}

#[tokio::test]
async fn dashboard_pages_without_a_session_redirect_to_the_log_in_page() {
    let app = serve(config(false, "")).await;
    for page in ["/dashboard/integrations", "/dashboard/conversations"] {
        let response = app
            .http
            .get(format!("{}{page}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(response.headers()["location"], "/dashboard/login", "{page}");
        let forged = app
            .http
            .get(format!("{}{page}", app.base))
            .header("cookie", "sb_session=00.99999999999.00")
            .send()
            .await
            .unwrap();
        assert_eq!(
            forged.status(),
            StatusCode::SEE_OTHER,
            "{page} with a forged cookie"
        );
    }
    let login = app
        .http
        .get(format!("{}/dashboard/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
}

#[tokio::test]
async fn signed_in_pages_and_assets_carry_a_strict_content_security_policy() {
    let app = serve(config(false, "")).await;
    for path in [
        "/dashboard/integrations",
        "/dashboard/conversations",
        "/dashboard/assets/common.js",
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.base))
            .header("cookie", &app.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        let body = response.text().await.unwrap();
        assert!(!body.contains("<script>"), "{path} has no inline script");
    }
    let page = app
        .http
        .get(format!("{}/dashboard/integrations", app.base))
        .header("cookie", &app.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let login = app
        .http
        .get(format!("{}/dashboard/login", app.base))
        .header("cookie", &app.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(login.headers()["location"], "/dashboard/integrations");
    assert!(
        !page.contains("sandbox-banner"),
        "no sandbox banner outside sandbox mode"
    );
}

async fn simulate(app: &Served, cookie: Option<&str>, csrf: bool) -> (StatusCode, Value) {
    let mut request = app
        .http
        .post(format!("{}/dashboard/sandbox/inbound", app.base))
        .json(&json!({"channel": "telegram", "contact": "42", "text": "hello"}));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if csrf {
        request = request.header("x-switchboard-csrf", "1");
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_simulate_endpoint_does_not_exist_outside_sandbox_mode() {
    let app = serve(config(false, "")).await;
    let (status, body) = simulate(&app, Some(&app.cookie), true).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = simulate(&app, None, false).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn in_sandbox_mode_simulating_needs_a_session_the_csrf_header_and_a_connected_channel() {
    let app = serve(config(true, "")).await;
    assert_eq!(simulate(&app, None, true).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = simulate(&app, Some(&app.cookie), false).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "csrf_header_missing");
    let (status, body) = simulate(&app, Some(&app.cookie), true).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "not_connected");
    let page = app
        .http
        .get(format!("{}/dashboard/conversations", app.base))
        .header("cookie", &app.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("sandbox-banner") && page.contains("simulate-form"));
}

#[tokio::test]
async fn sandbox_mode_refuses_a_configured_meta_app_secret() {
    let mut config = config(
        true,
        "[channels.whatsapp]\napp_secret = \"a-real-secret\"\n",
    );
    let error = sandbox::start(&mut config).await.unwrap_err();
    assert!(error.contains("channels.whatsapp.app_secret"), "{error}");
}

#[test]
fn serve_sandbox_with_a_real_telegram_api_url_exits_with_a_clear_message() {
    let dir = temp_dir();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--sandbox"])
        .env_clear()
        .current_dir(&dir)
        .env("SWITCHBOARD_SERVER__BIND", "127.0.0.1:0")
        .env(
            "SWITCHBOARD_CHANNELS__TELEGRAM__API_BASE_URL",
            "https://api.telegram.org",
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("sandbox mode refuses to start with real provider credentials"),
        "{stderr}"
    );
    assert!(
        stderr.contains("channels.telegram.api_base_url"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_restarted_sandbox_reuses_its_tenant() {
    let dir = temp_dir();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut config = config_in(&dir, true, "");
        let emulators = sandbox::start(&mut config).await.unwrap();
        let state = switchboard::app::build(&config).await.unwrap();
        let info = sandbox::activate(emulators, &state, &config).await.unwrap();
        runs.push(info.business);
    }
    assert_eq!(runs[0], runs[1], "the second run reuses the tenant");
}
