//! Dashboard sessions: an API key logs in to an HttpOnly cookie that authenticates like the
//! key; state-changing cookie requests need the CSRF header; tampered or logged-out cookies fail.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;
use switchboard_tests::TestApp;

async fn login(app: &TestApp, key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/session"))
        .json(&json!({ "api_key": key }))
        .send()
        .await
        .unwrap()
}

fn session_cookie(response: &reqwest::Response) -> String {
    let header = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            header.contains(attribute),
            "{attribute} missing from {header}"
        );
    }
    header.split(';').next().unwrap().to_owned()
}

crate::on_both_backends! {
    async fn an_api_key_logs_in_to_a_session_cookie_that_authenticates(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (business, key) = app.tenant("Acme").await;
        let response = login(&app, &key).await;
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = session_cookie(&response);
        assert!(!cookie.contains(&key), "the cookie never carries the key");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["business_id"], business.to_string());
        let plain = reqwest::Client::new();
        let list = plain.get(app.url("/api/integrations")).header(COOKIE, &cookie).send().await.unwrap();
        assert_eq!(list.status(), StatusCode::OK);
        // A state-changing request with only the cookie needs the CSRF header.
        let forged = plain.delete(app.url("/api/integrations/loopback/disconnect")).header(COOKIE, &cookie).send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = forged.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf_header_missing");
        let allowed = plain
            .delete(app.url("/api/integrations/loopback/disconnect"))
            .header(COOKIE, &cookie)
            .header("x-switchboard-csrf", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), StatusCode::OK);
    }

    async fn wrong_keys_and_tampered_cookies_are_refused(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key) = app.tenant("Acme").await;
        assert_eq!(login(&app, "sbk_wrong").await.status(), StatusCode::UNAUTHORIZED);
        let garbage = app.client.post(app.url("/api/session")).body("nope").header("content-type", "application/json").send().await.unwrap();
        assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
        let cookie = session_cookie(&login(&app, &key).await);
        let (name, value) = cookie.split_once('=').unwrap();
        let mut parts: Vec<String> = value.split('.').map(str::to_owned).collect();
        parts[1] = (parts[1].parse::<i64>().unwrap() + 86_400).to_string();
        let tampered = format!("{name}={}", parts.join("."));
        let plain = reqwest::Client::new();
        // A second cookie of the same name (planted from a neighbouring subdomain, say) makes
        // the session ambiguous: refused, whichever comes first.
        let doubled = format!("{name}=garbage; {cookie}");
        let doubled_after = format!("{cookie}; {name}=garbage");
        for bad in [tampered, format!("{name}=garbage"), format!("{name}="), doubled, doubled_after] {
            let response = plain.get(app.url("/api/integrations")).header(COOKIE, &bad).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bad}");
        }
    }

    async fn over_https_the_cookie_is_host_prefixed_and_secure(backend: Backend) {
        let https = "[server]\npublic_url = \"https://gateway.example.com\"\n";
        let Some(app) = TestApp::spawn(backend, https).await else { return };
        let (_, key) = app.tenant("Acme").await;
        let response = login(&app, &key).await;
        let header = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        assert!(header.starts_with("__Host-sb_session="), "{header}");
        assert!(header.contains("Secure") && header.contains("Path=/"), "{header}");
        assert!(!header.to_ascii_lowercase().contains("domain="), "{header}");
        let cookie = session_cookie(&response);
        let plain = reqwest::Client::new();
        let list = plain.get(app.url("/api/integrations")).header(COOKIE, &cookie).send().await.unwrap();
        assert_eq!(list.status(), StatusCode::OK);
        // The unprefixed name is not a session there.
        let unprefixed = cookie.replacen("__Host-", "", 1);
        let refused = plain.get(app.url("/api/integrations")).header(COOKIE, &unprefixed).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }

    async fn logging_out_clears_the_cookie(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key) = app.tenant("Acme").await;
        login(&app, &key).await;
        let ok = app.client.get(app.url("/api/integrations")).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK, "the client's cookie jar holds the session");
        let out = app.client.delete(app.url("/api/session")).send().await.unwrap();
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        assert!(out.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
        let after = app.client.get(app.url("/api/integrations")).send().await.unwrap();
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    }
}
