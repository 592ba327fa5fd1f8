//! What the server allows a connection (header, body and request timeouts, the connection cap),
//! the headers every answer carries, and errors in the API's JSON shape for bodies and query
//! strings that do not fit. These do not depend on the database, so they run on SQLite.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use switchboard_store::testing::Backend;
use switchboard_tests::TestApp;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Tight limits, so that the slow clients below are dropped within a test's patience.
const TIGHT: &str =
    "[server]\nheader_timeout = 1\nbody_timeout = 1\nrequest_timeout = 2\nmax_connections = 64\n";

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.base.trim_start_matches("http://");
    TcpStream::connect(address).await.expect("connect")
}

/// A new connection that has sent `bytes`.
async fn sent(app: &TestApp, bytes: &[u8]) -> TcpStream {
    let mut stream = connect(app).await;
    stream.write_all(bytes).await.expect("send");
    stream
}

/// Reads until the server closes the connection (or `limit` passes); returns what it sent
/// and how long it took.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        start.elapsed(),
    )
}

/// A request on a new connection is answered (the shared client's pooled connection may be
/// one the server has just closed for idling, under these tight limits).
async fn healthz_answers(app: &TestApp) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_sending_half_a_header_is_dropped_while_others_are_served() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, TIGHT).await else {
        return;
    };
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(sent(&app, b"POST /api/webhooks/loopback HTTP/1.1\r\nHost: x\r\n").await);
    }
    healthz_answers(&app).await;
    for stream in &mut slow {
        let (_, took) = read_until_closed(stream, Duration::from_secs(5)).await;
        assert!(took < Duration::from_secs(4), "dropped after {took:?}");
    }
    healthz_answers(&app).await;
}

#[tokio::test]
async fn a_kept_alive_connection_left_idle_is_closed() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, TIGHT).await else {
        return;
    };
    let mut stream = sent(&app, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (answer, took) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off_by_the_request_timeout() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, TIGHT).await else {
        return;
    };
    let head = b"POST /api/webhooks/loopback HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
    let mut stream = sent(&app, head).await;
    let start = Instant::now();
    let mut answer = String::new();
    // A byte every 300 ms: never a pause long enough for the body timeout, so only the
    // whole request's timeout (2 s) can end it.
    for _ in 0..100 {
        if stream.write_all(b" ").await.is_err() {
            break;
        }
        let mut buffer = [0_u8; 1024];
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => {
                answer.push_str(&String::from_utf8_lossy(&buffer[..n]));
                break;
            }
            Err(_) => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "still open after {:?}",
            start.elapsed()
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "ended after {:?}",
        start.elapsed()
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    healthz_answers(&app).await;
}

#[tokio::test]
async fn a_body_that_stalls_fails_after_the_body_timeout() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, TIGHT).await else {
        return;
    };
    let head =
        b"POST /api/webhooks/loopback HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"par";
    let mut stream = sent(&app, head).await;
    let (answer, took) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(3), "ended after {took:?}");
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let limits = "[server]\nmax_connections = 2\n";
    let Some(app) = TestApp::spawn(Backend::Sqlite, limits).await else {
        return;
    };
    let first = connect(&app).await;
    let second = connect(&app).await;
    // Both are accepted and held (nothing sent yet); a third waits in the listen backlog.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = sent(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let mut buffer = [0_u8; 256];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buffer)).await;
    assert!(early.is_err(), "served beyond the cap");
    drop(first);
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(second);
}

fn assert_security_headers(response: &reqwest::Response, what: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert!(
        header("content-security-policy").contains("frame-ancestors 'none'"),
        "{what}"
    );
    assert!(!header("cache-control").is_empty(), "{what}");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "").await else {
        return;
    };
    let (_, key) = app.tenant("Acme").await;
    let api = app
        .client
        .get(app.url("/api/integrations"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_security_headers(&api, "an API answer");
    assert_eq!(api.headers()["cache-control"], "no-store");
    let missing = app
        .client
        .get(app.url("/api/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_security_headers(&missing, "the fallback 404");
    let webhook = app
        .client
        .post(app.url("/api/webhooks/loopback"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), StatusCode::UNAUTHORIZED);
    assert_security_headers(&webhook, "a webhook answer");
    let page = app
        .client
        .get(app.url("/dashboard/login"))
        .send()
        .await
        .unwrap();
    assert_security_headers(&page, "a dashboard page");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_security_headers(&health, "the health probe");
}

#[tokio::test]
async fn the_oauth_outcome_page_allows_exactly_its_own_script() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let Some(app) = TestApp::spawn(Backend::Sqlite, "").await else {
        return;
    };
    // A callback with an unknown state: the failure page, with its script.
    let response = app
        .client
        .get(app.url("/api/integrations/loopback/callback?state=unknown&code=x"))
        .send()
        .await
        .unwrap();
    assert_security_headers(&response, "the OAuth outcome page");
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = response.text().await.unwrap();
    let script = page
        .split("<script>")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the page has a script");
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
    assert!(
        policy.contains(&format!("script-src 'sha256-{hash}'")),
        "{policy}"
    );
    assert!(policy.contains("default-src 'none'"), "{policy}");
}

#[tokio::test]
async fn an_api_body_over_the_limit_is_413_and_a_bad_query_is_a_json_400() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "").await else {
        return;
    };
    let (_, key) = app.tenant("Acme").await;
    let huge = format!("{{\"api_key\": \"{}\"}}", "k".repeat(3 * 1024 * 1024));
    let response = app
        .client
        .post(app.url("/api/session"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    let response = app
        .client
        .get(app.url("/api/conversations?limit=many"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_query");
}
