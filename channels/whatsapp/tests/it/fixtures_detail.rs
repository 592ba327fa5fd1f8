//! Detailed parsing assertions: senders and business-scoped user ids, replies and reactions,
//! media references, errors carried by messages and statuses, batched bodies, unknown types,
//! and what counts as "not a WhatsApp webhook".

use serde_json::json;
use switchboard_core::domain::{ChatKind, InboundEvent, MessageKind};

use crate::support::{offline_adapter, only_message, only_status, parse_fixture};

#[test]
fn sender_carries_wa_id_user_id_name_and_username() {
    let m = only_message("secreto31126__v25-incoming-text-bsuid-username.json");
    assert_eq!(m.sender.external_id.as_deref(), Some("16315551181"));
    assert_eq!(m.sender.user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(m.sender.name.as_deref(), Some("test user name"));
    assert_eq!(m.sender.username.as_deref(), Some("@testusername"));
    assert_eq!(m.sender.phone.as_deref(), Some("+16315551181"));
    assert_eq!(m.chat.external_id, "16315551181");
    assert_eq!(m.chat.kind, ChatKind::Direct);
    assert_eq!(m.timestamp.timestamp(), 1_504_902_988);
    assert!(m.wants_reply());
}

#[test]
fn a_message_without_wa_id_is_keyed_by_the_business_scoped_user_id() {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Ana", "username": "@ana"}, "user_id": "US.13491208655302741918"}],
        "messages": [{"from_user_id": "US.13491208655302741918", "id": "wamid.bsuid1", "timestamp": "1775000000", "type": "text", "text": {"body": "olá"}}]}}]}]});
    let events = offline_adapter()
        .parse_webhook(body.to_string().as_bytes())
        .unwrap();
    let [InboundEvent::Message(m)] = events.as_slice() else {
        panic!("{events:#?}")
    };
    assert_eq!(m.sender.external_id, None);
    assert_eq!(m.sender.user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(m.chat.external_id, "US.13491208655302741918");
    assert_eq!(m.sender.name.as_deref(), Some("Ana"));
    assert_eq!(m.text.as_deref(), Some("olá"));
}

#[test]
fn replies_reactions_edits_and_revokes_point_at_the_original_message() {
    let reply = only_message("pywa__msg-text-reply-context.json");
    assert_eq!(reply.reply_to.as_deref(), Some("wamid.xyzxyz=="));
    let reaction = only_message("meta-openapi__msg-reaction.json");
    assert_eq!(
        reaction.reply_to.as_deref(),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA")
    );
    assert!(!reaction.wants_reply(), "reactions are not answered");
    let removed = only_message("pywa__msg-reaction-removed-empty-emoji.json");
    assert_eq!(
        (removed.text, removed.reply_to.as_deref()),
        (None, Some("wamid.yzxyzx="))
    );
    let edit = only_message("pywa__msg-edit-image.json");
    assert_eq!(
        edit.reply_to.as_deref(),
        Some("wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=")
    );
    assert_eq!(
        edit.media.unwrap().url.as_deref(),
        Some("https://media.example.com/updated-image.jpg")
    );
    let revoke = only_message("pywa__msg-revoke-deleted.json");
    assert_eq!(
        revoke.reply_to.as_deref(),
        Some("<ORIGINAL_WHATSAPP_MESSAGE_ID>")
    );
    let button = only_message("meta-openapi__msg-button-template-quick-reply.json");
    assert_eq!(
        button.reply_to.as_deref(),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJFNjk2OTMwNEZCQjhGMzUyQUYA")
    );
}

#[test]
fn media_messages_keep_id_mime_type_hash_url_and_filename() {
    let image = only_message("meta-openapi__msg-image.json").media.unwrap();
    assert_eq!(image.id.as_deref(), Some("1003383421387256"));
    assert_eq!(image.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        image.sha256.as_deref(),
        Some("SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=")
    );
    let with_url = only_message("pywa__msg-image-with-url.json").media.unwrap();
    assert!(
        with_url
            .url
            .unwrap()
            .starts_with("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=65463453")
    );
    let doc = only_message("pywa__msg-document.json").media.unwrap();
    assert_eq!(
        (doc.filename.as_deref(), doc.mime_type.as_deref()),
        (Some("filename.pdf"), Some("application/pdf"))
    );
    let voice = only_message("pywa__msg-audio-voice.json").media.unwrap();
    assert_eq!(voice.mime_type.as_deref(), Some("audio/ogg; codecs=opus"));
    let sticker = only_message("pywa__msg-sticker-animated.json");
    assert_eq!(
        sticker.media.unwrap().mime_type.as_deref(),
        Some("image/webp")
    );
}

#[test]
fn unsupported_messages_keep_their_error_code_and_type() {
    let m = only_message("pywa__msg-unsupported-with-type.json");
    assert_eq!(m.kind, MessageKind::Unsupported);
    assert_eq!(m.raw["errors"][0]["code"], 131_051);
    assert_eq!(m.raw["unsupported"]["type"], "pool");
    assert!(!m.wants_reply());
}

#[test]
fn value_level_errors_become_webhook_error_events_beside_the_message() {
    let events = parse_fixture("pywa__msg-interactive-with-errors.json");
    let InboundEvent::Account(err) = &events[1] else {
        panic!("{events:#?}")
    };
    assert_eq!(err.kind, "webhook_error");
    assert_eq!(err.account_id.as_deref(), Some("1122334455667"));
    assert_eq!(
        err.summary.as_deref(),
        Some("131000 Something went wrong: Unsupported webhook payload")
    );
}

#[test]
fn failed_statuses_carry_the_error_code_and_reason_and_keep_pricing_raw() {
    let failed = only_status("pywa__status-failed-130472.json");
    assert_eq!(failed.error_code.as_deref(), Some("130472"));
    assert_eq!(
        failed.error_reason.as_deref(),
        Some(
            "User's number is part of an experiment: Failed to send message because this user's phone number is part of an experiment"
        )
    );
    assert_eq!(failed.recipient.as_deref(), Some("972987654321"));
    let sent = only_status("secreto31126__v25-status-sent-pmp-bsuid.json");
    assert_eq!(sent.raw["pricing"]["pricing_model"], "PMP");
    assert_eq!(sent.timestamp.timestamp(), 1_504_902_988);
    let opaque = only_status("pywa__status-sent-biz-opaque-callback-data.json");
    assert_eq!(opaque.raw["biz_opaque_callback_data"], "some data");
}

#[test]
fn contacts_and_orders_and_flows_keep_their_content() {
    let contacts = only_message("meta-openapi__msg-contacts.json");
    assert_eq!(
        contacts.raw["contacts"][0]["phones"][0]["wa_id"],
        "19835552319"
    );
    let order = only_message("meta-openapi__msg-order.json");
    assert_eq!(order.raw["order"]["catalog_id"], "194836987003835");
    let flow = only_message("pywa__msg-interactive-nfm-reply-flow.json");
    assert!(
        flow.raw["interactive"]["nfm_reply"]["response_json"]
            .as_str()
            .unwrap()
            .contains("delivery_rating")
    );
}

#[test]
fn template_events_keep_the_waba_id_and_the_whole_value() {
    let events = parse_fixture("pywa__template-status-rejected.json");
    let InboundEvent::Account(event) = &events[0] else {
        panic!()
    };
    assert_eq!(event.raw["waba_id"], "102290129340398");
    assert_eq!(
        event.raw["value"]["rejection_info"]["recommendation"],
        "Separate parameters with descriptive text and ensure each parameter is clearly contextualized."
    );
    assert_eq!(event.timestamp.unwrap().timestamp(), 1_751_247_548);
}

#[test]
fn one_body_with_several_entries_changes_and_numbers_yields_every_event_routed_by_its_number() {
    let change = |pn: &str, id: &str| {
        json!({"field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "1555", "phone_number_id": pn},
        "contacts": [{"profile": {"name": "A"}, "wa_id": "491701234567"}],
        "messages": [{"from": "491701234567", "id": id, "timestamp": "1700000000", "type": "text", "text": {"body": id}}],
        "statuses": [{"id": format!("{id}-out"), "status": "delivered", "timestamp": "1700000001", "recipient_id": "491701234567"}]}})
    };
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "waba-1", "changes": [change("pn-1", "m1"), change("pn-2", "m2")]},
        {"id": "waba-2", "changes": [change("pn-3", "m3")]}]});
    let events = offline_adapter()
        .parse_webhook(body.to_string().as_bytes())
        .unwrap();
    let routed: Vec<(&str, &str)> = events
        .iter()
        .map(|e| match e {
            InboundEvent::Message(m) => (m.account_id.as_str(), m.provider_message_id.as_str()),
            InboundEvent::Status(s) => (s.account_id.as_str(), s.provider_message_id.as_str()),
            InboundEvent::Account(a) => panic!("{a:?}"),
        })
        .collect();
    assert_eq!(
        routed,
        [
            ("pn-1", "m1"),
            ("pn-1", "m1-out"),
            ("pn-2", "m2"),
            ("pn-2", "m2-out"),
            ("pn-3", "m3"),
            ("pn-3", "m3-out")
        ]
    );
}

#[test]
fn unknown_message_types_and_fields_are_kept_not_rejected() {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "w", "changes": [
        {"field": "messages", "value": {"metadata": {"phone_number_id": "pn"}, "messages": [{"from": "1", "id": "x", "timestamp": "1", "type": "poll_vote_2027", "poll_vote_2027": {"option": 2}}]}},
        {"field": "brand_new_field", "value": {"event": "SOMETHING"}}]}]});
    let events = offline_adapter()
        .parse_webhook(body.to_string().as_bytes())
        .unwrap();
    let InboundEvent::Message(m) = &events[0] else {
        panic!()
    };
    assert_eq!(m.kind, MessageKind::Other("poll_vote_2027".into()));
    assert_eq!(m.raw["poll_vote_2027"]["option"], 2);
    let InboundEvent::Account(a) = &events[1] else {
        panic!()
    };
    assert_eq!(
        (a.kind.as_str(), a.summary.as_deref()),
        ("brand_new_field", Some("SOMETHING"))
    );
}

#[test]
fn bodies_that_are_not_whatsapp_webhooks_are_parse_errors() {
    let adapter = offline_adapter();
    assert!(adapter.parse_webhook(b"not json").is_err());
    assert!(
        adapter
            .parse_webhook(br#"{"object":"page","entry":[]}"#)
            .is_err()
    );
    assert!(adapter.parse_webhook(br#"{"entry":[]}"#).is_err());
    assert!(
        adapter
            .parse_webhook(br#"{"object":"whatsapp_business_account","entry":[]}"#)
            .unwrap()
            .is_empty()
    );
}
