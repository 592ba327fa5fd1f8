//! Sending through the emulator: the request bodies that reach it for every content kind.

use serde_json::json;
use switchboard_core::domain::{
    MediaKind, MediaSource, OutboundContent, OutboundMessage, ReplyButton,
};
use switchboard_whatsapp::emulator::{SimulatedContent, SimulatedInbound};

use crate::harness::{Env, context, env};

pub const CUSTOMER: &str = "16505551234";

pub fn message(content: OutboundContent) -> OutboundMessage {
    OutboundMessage {
        to: CUSTOMER.into(),
        content,
        reply_to: None,
        thread_id: None,
        reference: None,
    }
}

pub fn text(body: &str) -> OutboundMessage {
    message(OutboundContent::Text {
        body: body.into(),
        preview_url: false,
    })
}

/// A connected env whose customer has just written (the 24-hour window is open).
pub async fn open_window() -> (Env, switchboard_core::adapter::IntegrationContext, String) {
    let env = env().await;
    let ctx = context(&env.connected().await);
    let inbound = SimulatedInbound {
        phone_number_id: None,
        from: Some(CUSTOMER.into()),
        name: Some("Sheena".into()),
        user_id: None,
        content: SimulatedContent::Text { body: "hi".into() },
    };
    let receipt = env.emulator.simulate_inbound(inbound).await.unwrap();
    (env, ctx, receipt.message_id)
}

/// Every content kind the adapter can send, as it reaches the emulator.
pub async fn send_every_kind() -> (Env, Vec<serde_json::Value>) {
    let (env, ctx, inbound_id) = open_window().await;
    let mut reply = text("Thanks, on it!");
    reply.reply_to = Some(inbound_id.clone());
    let contents = vec![
        reply,
        message(OutboundContent::Text {
            body: "See https://example.com".into(),
            preview_url: true,
        }),
        message(OutboundContent::Template {
            name: "order_update".into(),
            language: "en_US".into(),
            components: vec![
                json!({"type": "body", "parameters": [{"type": "text", "text": "42"}]}),
            ],
        }),
        message(OutboundContent::Media {
            kind: MediaKind::Image,
            source: MediaSource::Link("https://example.com/a.jpg".into()),
            caption: Some("Your plant".into()),
            filename: None,
        }),
        message(OutboundContent::Media {
            kind: MediaKind::Document,
            source: MediaSource::Id("1003383421387256".into()),
            caption: None,
            filename: Some("invoice.pdf".into()),
        }),
        message(OutboundContent::Media {
            kind: MediaKind::Audio,
            source: MediaSource::Id("55".into()),
            caption: None,
            filename: None,
        }),
        message(OutboundContent::Media {
            kind: MediaKind::Video,
            source: MediaSource::Link("https://example.com/v.mp4".into()),
            caption: Some("clip".into()),
            filename: None,
        }),
        message(OutboundContent::Media {
            kind: MediaKind::Sticker,
            source: MediaSource::Id("77".into()),
            caption: None,
            filename: None,
        }),
        message(OutboundContent::Buttons {
            body: "Pick one".into(),
            buttons: vec![
                ReplyButton {
                    id: "yes".into(),
                    title: "Yes".into(),
                },
                ReplyButton {
                    id: "no".into(),
                    title: "No".into(),
                },
            ],
        }),
        message(OutboundContent::Reaction {
            message_id: inbound_id.clone(),
            emoji: "👍".into(),
        }),
    ];
    for msg in &contents {
        let receipt = env
            .adapter
            .send(&ctx, msg)
            .await
            .unwrap_or_else(|e| panic!("{msg:?}: {e}"));
        assert_eq!(receipt.provider_message_ids.len(), 1);
        assert!(receipt.provider_message_ids[0].starts_with("wamid."));
    }
    let read = env
        .adapter
        .send(
            &ctx,
            &message(OutboundContent::MarkRead {
                message_id: inbound_id,
            }),
        )
        .await
        .unwrap();
    assert!(read.provider_message_ids.is_empty());
    let bodies = env
        .emulator
        .sent_messages()
        .into_iter()
        .map(|m| m.body)
        .collect();
    (env, bodies)
}

#[tokio::test]
async fn each_content_kind_is_sent_with_metas_request_shape() {
    let (_env, bodies) = send_every_kind().await;
    assert_eq!(bodies.len(), 10, "mark-as-read is not a message");
    assert_eq!(bodies[0]["to"], "+16505551234", "wa_ids get a leading +");
    assert_eq!(
        bodies[0]["text"],
        json!({"preview_url": false, "body": "Thanks, on it!"})
    );
    assert!(
        bodies[0]["context"]["message_id"]
            .as_str()
            .unwrap()
            .starts_with("wamid.")
    );
    assert_eq!(bodies[1]["text"]["preview_url"], true);
    assert_eq!(
        bodies[2]["template"]["language"],
        json!({"policy": "deterministic", "code": "en_US"})
    );
    assert_eq!(
        bodies[3]["image"],
        json!({"link": "https://example.com/a.jpg", "caption": "Your plant"})
    );
    assert_eq!(
        bodies[4]["document"],
        json!({"id": "1003383421387256", "filename": "invoice.pdf"})
    );
    assert_eq!(
        bodies[8]["interactive"]["action"]["buttons"][1],
        json!({"type": "reply", "reply": {"id": "no", "title": "No"}})
    );
    assert_eq!(bodies[9]["reaction"]["emoji"], "👍");
}

#[tokio::test]
async fn mark_as_read_posts_status_read_with_the_message_id() {
    let (env, ctx, inbound_id) = open_window().await;
    let receipt = env
        .adapter
        .send(
            &ctx,
            &message(OutboundContent::MarkRead {
                message_id: inbound_id,
            }),
        )
        .await
        .unwrap();
    assert!(receipt.provider_message_ids.is_empty());
    assert!(env.emulator.sent_messages().is_empty());
}

#[tokio::test]
async fn a_long_text_is_split_into_several_messages() {
    let (env, ctx, _) = open_window().await;
    let long = "word ".repeat(1800);
    let receipt = env.adapter.send(&ctx, &text(&long)).await.unwrap();
    assert_eq!(receipt.provider_message_ids.len(), 3);
    let sent = env.emulator.sent_messages();
    assert!(
        sent.iter()
            .all(|m| m.body["text"]["body"].as_str().unwrap().chars().count() <= 4096)
    );
}
