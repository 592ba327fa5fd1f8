//! Routing and authentication: every authenticated route refuses missing and wrong keys;
//! unknown and disabled channels answer their codes; health probes.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use switchboard_tests::TestApp;

const AUTHENTICATED: &[(Method, &str)] = &[
    (Method::GET, "/api/integrations"),
    (Method::GET, "/api/integrations/loopback/connect"),
    (Method::POST, "/api/integrations/loopback/connect"),
    (Method::GET, "/api/integrations/loopback/status"),
    (Method::DELETE, "/api/integrations/loopback/disconnect"),
    (Method::GET, "/api/integrations/loopback/phone_numbers"),
    (Method::POST, "/api/integrations/loopback/phone_numbers"),
];

async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("JSON error body");
    (
        status,
        body["error"]["code"]
            .as_str()
            .expect("error.code")
            .to_owned(),
    )
}

crate::on_both_backends! {
    async fn every_authenticated_route_refuses_missing_and_wrong_keys(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key) = app.tenant("Acme").await;
        for (method, path) in AUTHENTICATED {
            let anonymous = app.client.request(method.clone(), app.url(path)).send().await.unwrap();
            assert_eq!(error_code(anonymous).await, (StatusCode::UNAUTHORIZED, "unauthorized".into()), "{method} {path}");
            let wrong = app
                .client
                .request(method.clone(), app.url(path))
                .bearer_auth(format!("{key}x"))
                .send()
                .await
                .unwrap();
            assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{method} {path} with a wrong key");
            let not_bearer = app
                .client
                .request(method.clone(), app.url(path))
                .header("authorization", format!("Basic {key}"))
                .send()
                .await
                .unwrap();
            assert_eq!(not_bearer.status(), StatusCode::UNAUTHORIZED, "{method} {path} with Basic");
        }
    }

    async fn unknown_and_disabled_channels_answer_404_with_their_codes(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "[channels.dormant]\nenabled = false\n").await else { return };
        let (_, key) = app.tenant("Acme").await;
        for path in ["/api/integrations/nosuch/status", "/api/integrations/nosuch/connect"] {
            let response = app.client.get(app.url(path)).bearer_auth(&key).send().await.unwrap();
            assert_eq!(error_code(response).await, (StatusCode::NOT_FOUND, "unknown_channel".into()));
        }
        let response = app.client.get(app.url("/api/integrations/dormant/status")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(error_code(response).await, (StatusCode::NOT_FOUND, "channel_disabled".into()));
        let response = app.client.post(app.url("/api/webhooks/nosuch")).body("{}").send().await.unwrap();
        assert_eq!(error_code(response).await, (StatusCode::NOT_FOUND, "unknown_channel".into()));
        let response = app.client.post(app.url("/api/webhooks/dormant")).body("{}").send().await.unwrap();
        assert_eq!(error_code(response).await, (StatusCode::NOT_FOUND, "channel_disabled".into()));
        // A disabled channel is not listed.
        let list: Value = app.client.get(app.url("/api/integrations")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
        let names: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["channel"].as_str().unwrap()).collect();
        assert_eq!(names, ["loopback"]);
    }

    async fn health_and_readiness_answer(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let health: Value = app.client.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
        assert_eq!(health["status"], "ok");
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready["status"], "ready");
        let expected = match backend {
            switchboard_tests::Backend::Sqlite => "sqlite",
            switchboard_tests::Backend::Postgres => "postgres",
        };
        assert_eq!(ready["database"], expected);
    }

    async fn unknown_paths_answer_a_json_404(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let response = app.client.get(app.url("/api/nope")).send().await.unwrap();
        assert_eq!(error_code(response).await, (StatusCode::NOT_FOUND, "not_found".into()));
    }
}
