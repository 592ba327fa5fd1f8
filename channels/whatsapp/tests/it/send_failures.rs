//! Each failure class of a send, produced by the emulator (or by no server at all) and
//! classified from Graph's `error.code`.

use std::time::Duration;

use switchboard_core::domain::{FailureClass, OutboundContent, ReplyButton};

use crate::send::{message, open_window, text};

#[tokio::test]
async fn free_text_outside_the_24_hour_window_is_window_closed_but_a_template_goes_out() {
    let (env, ctx, _) = open_window().await;
    env.emulator.advance_clock(Duration::from_secs(25 * 3600));
    let err = env
        .adapter
        .send(&ctx, &text("hello again"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.class, err.code.as_str()),
        (FailureClass::WindowClosed, "131047")
    );
    assert!(err.reason.contains("24 hours"));
    let template = message(OutboundContent::Template {
        name: "hello_world".into(),
        language: "en_US".into(),
        components: vec![],
    });
    assert!(env.adapter.send(&ctx, &template).await.is_ok());
}

#[tokio::test]
async fn an_expired_token_needs_reauth() {
    let (env, ctx, _) = open_window().await;
    env.emulator.expire_tokens();
    let err = env.adapter.send(&ctx, &text("x")).await.unwrap_err();
    assert_eq!(
        (err.class, err.code.as_str()),
        (FailureClass::NeedsReauth, "190")
    );
    assert!(!err.reason.contains("EAAG"));
}

#[tokio::test]
async fn throughput_limits_are_retried_for_the_whole_number() {
    let (env, ctx, _) = open_window().await;
    env.emulator.update_faults(|f| f.rate_limited = true);
    let err = env.adapter.send(&ctx, &text("x")).await.unwrap_err();
    assert_eq!(
        (err.class, err.code.as_str()),
        (
            FailureClass::Retry {
                after: None,
                per_recipient: false
            },
            "130429"
        )
    );
}

#[tokio::test]
async fn the_pair_rate_limit_is_retried_for_that_recipient_only() {
    let (env, ctx, _) = open_window().await;
    env.emulator.update_faults(|f| f.pair_burst = 1);
    env.adapter.send(&ctx, &text("one")).await.unwrap();
    let err = env.adapter.send(&ctx, &text("two")).await.unwrap_err();
    assert_eq!(
        (err.class, err.code.as_str()),
        (
            FailureClass::Retry {
                after: None,
                per_recipient: true
            },
            "131056"
        )
    );
}

#[tokio::test]
async fn a_graph_outage_is_retried() {
    let (env, ctx, _) = open_window().await;
    env.emulator.update_faults(|f| f.server_error = true);
    let err = env.adapter.send(&ctx, &text("x")).await.unwrap_err();
    assert!(matches!(err.class, FailureClass::Retry { .. }), "{err:?}");
    assert_eq!(err.code, "2");
}

#[tokio::test]
async fn an_invalid_recipient_is_permanent_with_metas_reason() {
    let (env, ctx, _) = open_window().await;
    let mut msg = text("x");
    msg.to = "12".into();
    let err = env.adapter.send(&ctx, &msg).await.unwrap_err();
    assert_eq!(
        (err.class, err.code.as_str()),
        (FailureClass::Permanent, "131009")
    );
    assert!(
        err.reason.contains("recipient phone number is not valid"),
        "{}",
        err.reason
    );
}

#[tokio::test]
async fn content_whatsapp_cannot_carry_is_refused_before_sending() {
    let (env, ctx, _) = open_window().await;
    let four = (0..4)
        .map(|i| ReplyButton {
            id: i.to_string(),
            title: format!("B{i}"),
        })
        .collect();
    let err = env
        .adapter
        .send(
            &ctx,
            &message(OutboundContent::Buttons {
                body: "b".into(),
                buttons: four,
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.class, FailureClass::Permanent);
    let err = env
        .adapter
        .send(
            &ctx,
            &message(OutboundContent::ChatAction {
                action: "typing".into(),
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.class, FailureClass::Permanent);
    assert!(env.emulator.sent_messages().is_empty());
}

#[tokio::test]
async fn nothing_listening_is_retried_and_a_hung_server_is_uncertain() {
    let (env, ctx, _) = open_window().await;
    let closed = crate::support::adapter("http://127.0.0.1:9");
    let err = closed.send(&ctx, &text("x")).await.unwrap_err();
    assert_eq!(
        (err.class, err.code.as_str()),
        (
            FailureClass::Retry {
                after: None,
                per_recipient: false
            },
            "connect"
        )
    );
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hung.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    let config = switchboard_core::registry::ChannelConfig {
        name: "whatsapp".into(),
        section: crate::support::section(&format!("http://{addr}")),
    };
    let mut services = crate::support::services();
    services.http = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let slow = switchboard_whatsapp::build_adapter(&config, &services).unwrap();
    let err = slow.send(&ctx, &text("x")).await.unwrap_err();
    assert_eq!(
        (err.class, err.code.as_str()),
        (FailureClass::Uncertain, "timeout")
    );
    drop(env);
}

#[tokio::test]
async fn a_split_text_failing_after_its_first_part_is_final_and_says_what_went_out() {
    let (env, ctx, _) = open_window().await;
    env.emulator.update_faults(|f| f.pair_burst = 1);
    let err = env
        .adapter
        .send(&ctx, &text(&"word ".repeat(1800)))
        .await
        .unwrap_err();
    assert_eq!(
        (err.class, err.code.as_str()),
        (FailureClass::Permanent, "131056")
    );
    assert!(
        err.reason.starts_with("Only 1 of 3 parts were sent"),
        "{}",
        err.reason
    );
    assert_eq!(env.emulator.sent_messages().len(), 1);
}
