//! The OAuth redirect flow's gateway side: state bound to tenant and browser, single use,
//! JSON or redirect, the outcome page, and the account choice.

use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use switchboard_tests::TestApp;

/// Starts a flow with `client` (which keeps the nonce cookie) and returns the state.
async fn start(app: &TestApp, client: &reqwest::Client, key: &str) -> String {
    let response = client
        .get(app.url("/api/integrations/loopback/connect"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    location
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned()
}

async fn callback(app: &TestApp, client: &reqwest::Client, query: &str) -> (StatusCode, String) {
    let response = client
        .get(app.url(&format!("/api/integrations/loopback/callback?{query}")))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

crate::on_both_backends! {
    async fn connect_redirects_or_answers_json_and_sets_a_scoped_http_only_cookie(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key) = app.tenant("Acme").await;
        let redirect = app.client.get(app.url("/api/integrations/loopback/connect")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(redirect.status(), StatusCode::FOUND);
        assert!(redirect.headers()[LOCATION].to_str().unwrap().starts_with("https://consent.invalid/authorize?state="));
        let cookie = redirect.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/api/integrations/", "Max-Age=600"] {
            assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
        }
        assert!(!cookie.contains("Secure"), "plain-http gateways cannot set Secure cookies");
        let json: Value = app
            .client
            .get(app.url("/api/integrations/loopback/connect"))
            .bearer_auth(&key)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(json["authorize_url"].as_str().unwrap().contains("state="));
    }

    async fn a_successful_callback_connects_and_tells_the_opener_at_the_frontend_origin_only(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key) = app.tenant("Acme").await;
        let browser = cookie_client();
        let state = start(&app, &browser, &key).await;
        let (status, page) = callback(&app, &browser, &format!("state={state}&code=account-42")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(r#""type":"switchboard:oauth""#), "{page}");
        assert!(page.contains(r#""ok":true"#));
        assert!(page.contains("postMessage(message, origin)"));
        assert!(page.contains(&format!("\"{}\"", app.base)), "target origin is frontend_url's origin");
        assert!(!page.contains("\"*\""), "never a wildcard origin");
        assert!(page.contains("/dashboard/integrations?success=true&amp;channel=loopback\""), "the noscript link: {page}");
        assert!(page.contains("<noscript>"));
        let status: Value = app.client.get(app.url("/api/integrations/loopback/status")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
        assert_eq!(status["state"], "connected");
        assert_eq!(status["account"]["account_id"], "42");
        // The state is single use.
        let (status, page) = callback(&app, &browser, &format!("state={state}&code=account-43")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains(r#""error":"invalid_state""#), "{page}");
    }

    async fn a_callback_from_another_browser_is_invalid_state(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (business, key) = app.tenant("Acme").await;
        let state = start(&app, &cookie_client(), &key).await;
        let (status, page) = callback(&app, &cookie_client(), &format!("state={state}&code=account-42")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains(r#""error":"invalid_state""#));
        assert!(page.contains("/dashboard/integrations?error=invalid_state&amp;channel=loopback\""), "{page}");
        let channel = switchboard_core::ChannelName::parse("loopback").unwrap();
        assert!(app.state.store.integration_for(business, &channel).await.unwrap().is_none(), "nothing created");
    }

    async fn a_callback_from_another_browser_leaves_the_flow_to_the_browser_that_started_it(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (business, key) = app.tenant("Acme").await;
        let browser = cookie_client();
        let state = start(&app, &browser, &key).await;
        let query = format!("state={state}&code=account-42");
        let (status, _) = callback(&app, &cookie_client(), &query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "another browser");
        let (status, page) = callback(&app, &browser, &query).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains(r#""ok":true"#), "{page}");
        let channel = switchboard_core::ChannelName::parse("loopback").unwrap();
        assert!(app.state.store.integration_for(business, &channel).await.unwrap().is_some());
    }

    async fn unknown_missing_and_garbage_states_are_invalid_state(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let browser = cookie_client();
        let long = "x".repeat(5000);
        for query in ["code=account-1".to_owned(), "state=nope&code=account-1".to_owned(), format!("state={long}")] {
            let (status, page) = callback(&app, &browser, &query).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert!(page.contains(r#""error":"invalid_state""#));
        }
    }

    async fn a_cancelled_consent_is_access_denied(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key) = app.tenant("Acme").await;
        let browser = cookie_client();
        let state = start(&app, &browser, &key).await;
        let query = format!("error=access_denied&error_code=200&error_description=Permissions+error&error_reason=user_denied&state={state}");
        let (status, page) = callback(&app, &browser, &query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains(r#""error":"access_denied""#));
    }

    async fn several_accounts_wait_for_the_tenants_choice(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key) = app.tenant("Acme").await;
        let browser = cookie_client();
        let state = start(&app, &browser, &key).await;
        let (status, page) = callback(&app, &browser, &format!("state={state}&code=choose")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(r#""next":"choose_account""#));
        let choices: Value = app.client.get(app.url("/api/integrations/loopback/phone_numbers")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
        let ids: Vec<&str> = choices["options"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b"]);
        let wrong = app.client.post(app.url("/api/integrations/loopback/phone_numbers")).bearer_auth(&key).json(&json!({"id": "z"})).send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
        let chosen = app.client.post(app.url("/api/integrations/loopback/phone_numbers")).bearer_auth(&key).json(&json!({"phone_number_id": "b"})).send().await.unwrap();
        assert_eq!(chosen.status(), StatusCode::OK);
        let body: Value = chosen.json().await.unwrap();
        assert_eq!(body["state"], "connected");
        assert_eq!(body["account"]["account_id"], "b");
        let gone = app.client.get(app.url("/api/integrations/loopback/phone_numbers")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    }

    async fn another_tenants_pending_choice_is_invisible(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key_a) = app.tenant("A").await;
        let (_, key_b) = app.tenant("B").await;
        let browser = cookie_client();
        let state = start(&app, &browser, &key_a).await;
        callback(&app, &browser, &format!("state={state}&code=choose")).await;
        let b = app.client.get(app.url("/api/integrations/loopback/phone_numbers")).bearer_auth(&key_b).send().await.unwrap();
        assert_eq!(b.status(), StatusCode::NOT_FOUND);
        let b = app.client.post(app.url("/api/integrations/loopback/phone_numbers")).bearer_auth(&key_b).json(&json!({"id": "a"})).send().await.unwrap();
        assert_eq!(b.status(), StatusCode::NOT_FOUND);
    }
}
