//! Responder tests. Webhook tests run a real HTTP brain (axum on 127.0.0.1:0, bound before use).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use switchboard_core::crypto::hmac_sha256;
use switchboard_core::domain::{DeliveryStatus, MessageKind, OutboundContent};
use switchboard_core::ids::{BusinessId, ChannelName, ConversationId, IntegrationId, MessageId};
use switchboard_core::store::{Conversation, Direction, Message};
use tokio::net::TcpListener;

use super::{
    CONTEXT_LIMIT, MAX_ANSWER_BYTES, MAX_REPLIES, ResponderError, ResponderInput, ResponderKind,
    ResponderSettings, build,
};

const SECRET: &str = "brain-secret-5b1f0c9e7d";

// ---- fixtures --------------------------------------------------------------------------------

fn conversation() -> Conversation {
    Conversation {
        id: ConversationId::new(),
        business_id: BusinessId::new(),
        integration_id: IntegrationId::new(),
        channel_type: ChannelName::parse("whatsapp").unwrap(),
        external_chat_id: "15551234567".into(),
        contact_name: Some("Ada".into()),
        last_message_at: None,
        window_expires_at: None,
        unreachable: false,
        created_at: Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap(),
    }
}

fn message(
    conversation: &Conversation,
    direction: Direction,
    kind: MessageKind,
    text: Option<&str>,
) -> Message {
    Message {
        id: MessageId::new(),
        conversation_id: conversation.id,
        integration_id: conversation.integration_id,
        direction,
        provider_message_id: Some(format!("wamid.{}", MessageId::new())),
        kind,
        text: text.map(str::to_owned),
        payload: json!({"raw": "provider payload, never sent to the brain"}),
        status: DeliveryStatus::Delivered,
        status_at: None,
        error_code: None,
        error_reason: None,
        provider_timestamp: Some(Utc.with_ymd_and_hms(2026, 11, 24, 0, 55, 0).unwrap()),
        created_at: Utc.with_ymd_and_hms(2026, 11, 24, 0, 55, 1).unwrap(),
    }
}

fn input_with(kind: MessageKind, text: Option<&str>, context_len: usize) -> ResponderInput {
    let conversation = conversation();
    let context = (0..context_len)
        .map(|i| {
            let direction = if i % 2 == 0 {
                Direction::Inbound
            } else {
                Direction::Outbound
            };
            message(
                &conversation,
                direction,
                MessageKind::Text,
                Some(&format!("earlier {i}")),
            )
        })
        .collect();
    ResponderInput {
        business_id: conversation.business_id,
        integration_id: conversation.integration_id,
        channel: ChannelName::parse("whatsapp").unwrap(),
        message: message(&conversation, Direction::Inbound, kind, text),
        conversation,
        context,
    }
}

fn text_input(text: &str) -> ResponderInput {
    input_with(MessageKind::Text, Some(text), 2)
}

fn settings(kind: ResponderKind) -> ResponderSettings {
    ResponderSettings {
        kind,
        text: "Thanks, we will get back to you.".into(),
        url: None,
        secret: None,
        timeout: None,
    }
}

fn webhook_settings(url: &str, timeout: Option<u64>) -> ResponderSettings {
    ResponderSettings {
        kind: ResponderKind::Webhook,
        text: String::new(),
        url: Some(url.to_owned()),
        secret: Some(SecretString::from(SECRET)),
        timeout,
    }
}

fn reply_text(body: &str) -> OutboundContent {
    OutboundContent::Text {
        body: body.into(),
        preview_url: false,
    }
}

// ---- a real HTTP brain -----------------------------------------------------------------------

/// What the brain received: headers and exact body bytes of each request.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// Serves `router` on an ephemeral port; the listener is bound before this returns.
async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A brain that records each request and answers `status` with `body` as JSON.
async fn brain(status: StatusCode, body: String) -> (String, Received) {
    let received = Received::default();
    let log = Arc::clone(&received);
    let router = Router::new().route(
        "/brain",
        post(move |headers: HeaderMap, bytes: Bytes| {
            log.lock().unwrap().push((headers, bytes));
            let body = body.clone();
            async move { (status, [(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let addr = serve(router).await;
    (format!("http://{addr}/brain"), received)
}

/// Asks a brain answering `status`/`body` about a text message.
async fn answer_with(
    status: StatusCode,
    body: &str,
) -> Result<Vec<OutboundContent>, ResponderError> {
    let (url, _) = brain(status, body.to_owned()).await;
    ask(&url, None).await
}

async fn ask(url: &str, timeout: Option<u64>) -> Result<Vec<OutboundContent>, ResponderError> {
    let responder = build(&webhook_settings(url, timeout), reqwest::Client::new());
    let result = responder.respond(&text_input("Hello")).await;
    if let Err(error) = &result {
        assert!(!error.message.contains(SECRET), "secret leaked: {error:?}");
    }
    result
}

fn expected_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &signed))
    )
}

fn header_value<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers.get(name).unwrap().to_str().unwrap()
}

// ---- off, static, echo -----------------------------------------------------------------------

#[tokio::test]
async fn off_responder_never_replies() {
    let responder = build(&settings(ResponderKind::Off), reqwest::Client::new());
    assert_eq!(
        responder.respond(&text_input("Hello")).await.unwrap(),
        vec![]
    );
}

#[tokio::test]
async fn static_responder_replies_with_the_configured_text() {
    let responder = build(&settings(ResponderKind::Static), reqwest::Client::new());
    let replies = responder.respond(&text_input("Hello")).await.unwrap();
    assert_eq!(
        replies,
        vec![reply_text("Thanks, we will get back to you.")]
    );
}

#[tokio::test]
async fn echo_responder_replies_with_the_inbound_text_verbatim() {
    let responder = build(&settings(ResponderKind::Echo), reqwest::Client::new());
    let replies = responder.respond(&text_input("Hello there")).await.unwrap();
    assert_eq!(replies, vec![reply_text("Hello there")]);
}

#[tokio::test]
async fn echo_responder_replies_with_the_caption_of_media() {
    let responder = build(&settings(ResponderKind::Echo), reqwest::Client::new());
    let input = input_with(MessageKind::Image, Some("my cat"), 0);
    assert_eq!(
        responder.respond(&input).await.unwrap(),
        vec![reply_text("my cat")]
    );
}

#[tokio::test]
async fn echo_responder_describes_media_without_a_caption_by_its_type() {
    let responder = build(&settings(ResponderKind::Echo), reqwest::Client::new());
    for (kind, description) in [
        (MessageKind::Image, "[image]"),
        (MessageKind::Location, "[location]"),
        (MessageKind::Voice, "[voice]"),
    ] {
        let input = input_with(kind, None, 0);
        assert_eq!(
            responder.respond(&input).await.unwrap(),
            vec![reply_text(description)]
        );
    }
}

// ---- webhook request -------------------------------------------------------------------------

#[tokio::test]
async fn webhook_request_body_has_the_documented_shape() {
    let (url, received) = brain(StatusCode::OK, "{}".into()).await;
    let responder = build(&webhook_settings(&url, None), reqwest::Client::new());
    let input = text_input("Hello");
    responder.respond(&input).await.unwrap();

    let (_, body) = received.lock().unwrap().pop().unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    let view = |m: &Message| {
        json!({
            "id": m.id.to_string(),
            "provider_message_id": m.provider_message_id,
            "direction": m.direction.as_str(),
            "type": m.kind.as_str(),
            "text": m.text,
            "provider_timestamp": "2026-11-24T00:55:00Z",
            "created_at": "2026-11-24T00:55:01Z",
        })
    };
    let expected = json!({
        "event": "message",
        "business_id": input.business_id.to_string(),
        "integration_id": input.integration_id.to_string(),
        "channel": "whatsapp",
        "conversation": {
            "id": input.conversation.id.to_string(),
            "external_chat_id": "15551234567",
            "contact_name": "Ada",
        },
        "message": view(&input.message),
        "context": input.context.iter().map(view).collect::<Vec<_>>(),
    });
    assert_eq!(body, expected);
    assert_eq!(body["context"][0]["direction"], "inbound");
    assert_eq!(body["context"][1]["direction"], "outbound");
}

#[tokio::test]
async fn webhook_request_carries_content_type_timestamp_and_delivery_headers() {
    let (url, received) = brain(StatusCode::OK, "{}".into()).await;
    let responder = build(&webhook_settings(&url, None), reqwest::Client::new());
    let input = text_input("Hello");
    let before = Utc::now().timestamp();
    responder.respond(&input).await.unwrap();
    let after = Utc::now().timestamp();

    let (headers, _) = received.lock().unwrap().pop().unwrap();
    assert_eq!(header_value(&headers, "content-type"), "application/json");
    let timestamp: i64 = header_value(&headers, "x-switchboard-timestamp")
        .parse()
        .unwrap();
    assert!((before..=after).contains(&timestamp));
    assert_eq!(
        header_value(&headers, "x-switchboard-delivery"),
        input.message.id.to_string()
    );
    assert!(header_value(&headers, "x-switchboard-signature").starts_with("sha256="));
}

#[tokio::test]
async fn webhook_signature_verifies_over_timestamp_dot_body_with_the_secret() {
    let (url, received) = brain(StatusCode::OK, "{}".into()).await;
    ask(&url, None).await.unwrap();

    let (headers, body) = received.lock().unwrap().pop().unwrap();
    let timestamp = header_value(&headers, "x-switchboard-timestamp");
    let signature = header_value(&headers, "x-switchboard-signature");
    assert_eq!(signature, expected_signature(SECRET, timestamp, &body));
    // The signature covers the timestamp: the body alone does not verify.
    let body_only = format!(
        "sha256={}",
        hex::encode(hmac_sha256(SECRET.as_bytes(), &body))
    );
    assert_ne!(signature, body_only);
}

#[tokio::test]
async fn webhook_signature_does_not_verify_with_another_secret() {
    let (url, received) = brain(StatusCode::OK, "{}".into()).await;
    ask(&url, None).await.unwrap();

    let (headers, body) = received.lock().unwrap().pop().unwrap();
    let timestamp = header_value(&headers, "x-switchboard-timestamp");
    let signature = header_value(&headers, "x-switchboard-signature");
    assert_ne!(
        signature,
        expected_signature("another-secret", timestamp, &body)
    );
}

#[tokio::test]
async fn the_same_inbound_message_always_carries_the_same_delivery_id() {
    let (url, received) = brain(StatusCode::SERVICE_UNAVAILABLE, String::new()).await;
    let responder = build(&webhook_settings(&url, None), reqwest::Client::new());
    let input = text_input("Hello");
    for _ in 0..2 {
        responder.respond(&input).await.unwrap_err();
    }
    let other = text_input("Hello");
    responder.respond(&other).await.unwrap_err();

    let deliveries: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(headers, _)| header_value(headers, "x-switchboard-delivery").to_owned())
        .collect();
    assert_eq!(deliveries[0], deliveries[1]);
    assert_ne!(deliveries[0], deliveries[2]);
}

#[tokio::test]
async fn webhook_context_keeps_the_newest_messages_and_never_the_inbound_one() {
    let (url, received) = brain(StatusCode::OK, "{}".into()).await;
    let responder = build(&webhook_settings(&url, None), reqwest::Client::new());
    let mut input = input_with(MessageKind::Text, Some("Hello"), CONTEXT_LIMIT + 5);
    input.context.push(input.message.clone());
    responder.respond(&input).await.unwrap();

    let (_, body) = received.lock().unwrap().pop().unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    let texts: Vec<&str> = body["context"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), CONTEXT_LIMIT);
    assert_eq!(texts[0], "earlier 5");
    assert_eq!(
        texts[CONTEXT_LIMIT - 1],
        format!("earlier {}", CONTEXT_LIMIT + 4)
    );
}

// ---- webhook answers -------------------------------------------------------------------------

#[tokio::test]
async fn webhook_reply_object_becomes_one_reply() {
    let replies = answer_with(
        StatusCode::OK,
        r#"{"reply": {"type": "text", "body": "Hi Ada"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(replies, vec![reply_text("Hi Ada")]);
}

#[tokio::test]
async fn webhook_replies_array_becomes_several_replies_in_order() {
    let body =
        r#"{"replies": [{"text": "one"}, {"type": "text", "body": "two", "preview_url": true}]}"#;
    let replies = answer_with(StatusCode::OK, body).await.unwrap();
    assert_eq!(
        replies,
        vec![
            reply_text("one"),
            OutboundContent::Text {
                body: "two".into(),
                preview_url: true
            }
        ]
    );
}

#[tokio::test]
async fn webhook_text_shorthand_becomes_a_text_reply() {
    let replies = answer_with(StatusCode::OK, r#"{"reply": {"text": "Hi!"}}"#)
        .await
        .unwrap();
    assert_eq!(replies, vec![reply_text("Hi!")]);
}

#[tokio::test]
async fn webhook_template_reply_is_passed_through() {
    let body = r#"{"reply": {"type": "template", "name": "order_update", "language": "en_US",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]}}"#;
    let replies = answer_with(StatusCode::OK, body).await.unwrap();
    assert_eq!(
        replies,
        vec![OutboundContent::Template {
            name: "order_update".into(),
            language: "en_US".into(),
            components: vec![
                json!({"type": "body", "parameters": [{"type": "text", "text": "42"}]})
            ],
        }]
    );
}

#[tokio::test]
async fn webhook_empty_object_null_reply_or_empty_replies_mean_no_reply() {
    for body in ["{}", r#"{"reply": null}"#, r#"{"replies": []}"#, ""] {
        assert_eq!(
            answer_with(StatusCode::OK, body).await.unwrap(),
            vec![],
            "{body}"
        );
    }
}

#[tokio::test]
async fn webhook_204_means_no_reply() {
    assert_eq!(
        answer_with(StatusCode::NO_CONTENT, "").await.unwrap(),
        vec![]
    );
}

// ---- webhook failures ------------------------------------------------------------------------

#[tokio::test]
async fn webhook_slower_than_the_timeout_is_a_retryable_error() {
    let router = Router::new().route(
        "/slow",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "{}"
        }),
    );
    let addr = serve(router).await;
    let started = std::time::Instant::now();
    let error = ask(&format!("http://{addr}/slow"), Some(1))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert!(error.retryable);
    assert_eq!(
        error.message,
        "the responder webhook did not answer within 1 s"
    );
}

#[tokio::test]
async fn webhook_500_is_a_retryable_error() {
    let error = answer_with(StatusCode::INTERNAL_SERVER_ERROR, "oops")
        .await
        .unwrap_err();
    assert!(error.retryable);
    assert_eq!(
        error.message,
        "the responder webhook answered 500 Internal Server Error"
    );
}

#[tokio::test]
async fn webhook_429_is_a_retryable_error() {
    let error = answer_with(StatusCode::TOO_MANY_REQUESTS, "{}")
        .await
        .unwrap_err();
    assert!(error.retryable);
    assert!(error.message.contains("429"), "{error}");
}

#[tokio::test]
async fn webhook_404_is_a_final_error_naming_the_status() {
    let error = answer_with(StatusCode::NOT_FOUND, "{}").await.unwrap_err();
    assert!(!error.retryable);
    assert_eq!(
        error.message,
        "the responder webhook answered 404 Not Found"
    );
}

#[tokio::test]
async fn webhook_garbage_json_is_a_final_error() {
    let error = answer_with(StatusCode::OK, "<html>hello</html>")
        .await
        .unwrap_err();
    assert!(!error.retryable);
    assert!(
        error
            .message
            .starts_with("the responder webhook answered 200 OK with an invalid answer: not JSON"),
        "{error}"
    );
}

#[tokio::test]
async fn webhook_answers_of_the_wrong_shape_are_final_errors() {
    for (body, reason) in [
        ("[]", "not a JSON object"),
        (r#"{"text": "hi"}"#, "unexpected field `text`"),
        (
            r#"{"reply": {"text": "a"}, "replies": []}"#,
            "both `reply` and `replies`",
        ),
        (r#"{"replies": {"text": "a"}}"#, "`replies` is not an array"),
        (r#"{"reply": "hi"}"#, "not a JSON object"),
        (r#"{"reply": {"body": "hi"}}"#, "needs `text` or `type`"),
        (
            r#"{"reply": {"type": "carrier_pigeon"}}"#,
            "unknown variant `carrier_pigeon`",
        ),
        (
            r#"{"replies": [{"text": "ok"}, {"text": 7}]}"#,
            "reply 2: `text` is not a string",
        ),
    ] {
        let error = answer_with(StatusCode::OK, body).await.unwrap_err();
        assert!(!error.retryable, "{body}");
        assert!(error.message.contains(reason), "{body}: {error}");
    }
}

#[tokio::test]
async fn webhook_empty_text_is_a_final_error() {
    for body in [
        r#"{"reply": {"text": ""}}"#,
        r#"{"reply": {"type": "text", "body": "  "}}"#,
    ] {
        let error = answer_with(StatusCode::OK, body).await.unwrap_err();
        assert!(!error.retryable);
        assert!(
            error.message.ends_with("the reply text is empty"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn webhook_answer_with_too_many_replies_is_a_final_error() {
    let replies = vec![json!({"text": "spam"}); MAX_REPLIES + 1];
    let body = json!({"replies": replies}).to_string();
    let error = answer_with(StatusCode::OK, &body).await.unwrap_err();
    assert!(!error.retryable);
    assert!(
        error.message.contains("more than the 10 allowed"),
        "{error}"
    );
}

#[tokio::test]
async fn webhook_answer_over_256_kib_is_a_final_error() {
    let huge = "x".repeat(MAX_ANSWER_BYTES);
    let body = json!({"reply": {"text": huge}}).to_string();
    let error = answer_with(StatusCode::OK, &body).await.unwrap_err();
    assert!(!error.retryable);
    assert_eq!(
        error.message,
        "the responder webhook answered 200 OK with more than 256 KiB"
    );
}

#[tokio::test]
async fn webhook_refused_connection_is_a_retryable_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = ask(&format!("http://{addr}/brain"), None)
        .await
        .unwrap_err();
    assert!(error.retryable);
    assert_eq!(error.message, "could not connect to the responder webhook");
}

#[tokio::test]
async fn the_secret_never_appears_in_error_messages_even_when_the_brain_echoes_it() {
    let body = json!({"reply": {"type": SECRET}}).to_string();
    let error = answer_with(StatusCode::OK, &body).await.unwrap_err();
    assert!(!error.message.contains(SECRET));
    assert!(error.message.contains("[REDACTED]"), "{error}");
    // `answer_with` and `ask` also check every other failure in this file for the secret.
}

#[tokio::test]
async fn webhook_responder_debug_output_hides_the_secret_and_url_credentials() {
    let settings = webhook_settings("https://user:pw@brain.example/hook?token=abc", Some(5));
    let responder = build(&settings, reqwest::Client::new());
    let debug = format!("{responder:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(!debug.contains("pw") && !debug.contains("abc"), "{debug}");
    assert!(debug.contains("https://brain.example"), "{debug}");
}

#[tokio::test]
async fn webhook_without_url_or_secret_fails_every_message_finally() {
    let mut no_url = webhook_settings("http://127.0.0.1:1/", None);
    no_url.url = None;
    let mut no_secret = webhook_settings("http://127.0.0.1:1/", None);
    no_secret.secret = Some(SecretString::from(""));
    let bad_url = webhook_settings("ftp://brain.example/", None);
    for (settings, setting) in [
        (no_url, "responder.url"),
        (no_secret, "responder.secret"),
        (bad_url, "responder.url"),
    ] {
        let responder = build(&settings, reqwest::Client::new());
        let error = responder.respond(&text_input("Hello")).await.unwrap_err();
        assert!(!error.retryable);
        assert!(error.message.contains(setting), "{error}");
    }
}
