//! The message pipeline over Telegram (issue 5): updates delivered by the emulator are stored
//! and answered in the right chat; duplicates, flood limits, server errors, revoked tokens,
//! blocked bots, long texts and migrated groups.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::store::{InboxState, JobState};
use switchboard_telegram::emulator::{BotRequest, SendFault, SimulatedMessage};
use switchboard_tests::telegram::{AUTO_REPLY, BOT_ID, BOT_USERNAME, TelegramWorld, eventually};

/// A private chat whose id does not fit in 32 bits.
const ALICE: i64 = 5_000_000_001;

fn from_alice(text: &str) -> SimulatedMessage {
    SimulatedMessage {
        text: text.into(),
        from_id: Some(ALICE),
        first_name: Some("Alice".into()),
        ..Default::default()
    }
}

fn in_group(chat_id: i64, kind: &str, text: &str) -> SimulatedMessage {
    SimulatedMessage {
        text: text.into(),
        chat_id: Some(chat_id),
        chat_type: Some(kind.into()),
        chat_title: Some("Support group".into()),
        from_id: Some(ALICE),
        first_name: Some("Alice".into()),
        ..Default::default()
    }
}

/// The `message_id` Telegram gave a simulated message.
fn message_id(simulated: &Value) -> i64 {
    simulated["message_id"].as_i64().unwrap()
}

/// The message a reply quotes (`reply_parameters.message_id`).
fn quoted(params: &std::collections::BTreeMap<String, String>) -> Option<i64> {
    let reply: Value = serde_json::from_str(params.get("reply_parameters")?).ok()?;
    reply["message_id"].as_i64()
}

/// Connects, then waits for the conversation with `chat` to hold an inbound message.
async fn connected_with_conversation(world: &TelegramWorld, message: &SimulatedMessage) -> String {
    world.connect().await;
    world.emulator.simulate_message(BOT_ID, message).unwrap();
    let chat = message.chat_id.or(message.from_id).unwrap();
    eventually("the conversation", || async {
        !world.messages(chat).await.is_empty()
    })
    .await;
    world.conversation(chat).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

crate::on_both_backends! {
    async fn a_private_message_is_stored_and_answered_in_its_chat_with_emoji_intact(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "[responder]\nkind = \"echo\"\n").await else { return };
        world.connect().await;
        let text = "Hallo 👋🏽 — ça va? 日本語 𝄞";
        let sim = world.emulator.simulate_message(BOT_ID, &from_alice(text)).unwrap();
        eventually("the echo", || async { !world.sent_to(ALICE).is_empty() }).await;
        let sent = world.sent_to(ALICE);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].method, "sendMessage");
        assert_eq!(sent[0].text.as_deref(), Some(text));
        assert_eq!(sent[0].params["chat_id"], ALICE.to_string());
        assert_eq!(quoted(&sent[0].params), Some(message_id(&sim)), "the reply quotes the message");

        let conversation = world.conversation(ALICE).await.unwrap();
        assert_eq!(conversation["external_chat_id"], "5000000001");
        assert_eq!(conversation["contact_name"], "Alice");
        eventually("the reply is marked sent", || async {
            world.outbound(ALICE).await.first().is_some_and(|m| m["status"] == "sent")
        })
        .await;
        let messages = world.messages(ALICE).await;
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[1]["direction"], "inbound");
        assert_eq!(messages[1]["text"], text);
        assert_eq!(messages[0]["text"], text);
        let provider_id = messages[0]["provider_message_id"].as_str().unwrap();
        assert!(provider_id.ends_with(&format!(":{}", sent[0].message_id)), "{provider_id}");
        assert!(provider_id.starts_with("5000000001"), "{provider_id}");
    }

    async fn a_supergroup_message_that_mentions_the_bot_is_answered_and_other_chatter_is_not(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        world.connect().await;
        let group = -1_009_876_543_210;
        world.emulator.simulate_message(BOT_ID, &in_group(group, "supergroup", "lunch at noon, everyone?")).unwrap();
        let asked = world.emulator
            .simulate_message(BOT_ID, &in_group(group, "supergroup", &format!("@{BOT_USERNAME} what are your hours? 🕘")))
            .unwrap();
        world.emulator.simulate_message(BOT_ID, &in_group(group, "supergroup", "thanks, see you 👋")).unwrap();
        eventually("three group messages stored", || async {
            world.messages(group).await.iter().filter(|m| m["direction"] == "inbound").count() == 3
        })
        .await;
        eventually("the reply", || async { !world.sent_to(group).is_empty() }).await;
        eventually("the reply is marked sent", || async {
            world.outbound(group).await.iter().any(|m| m["status"] == "sent")
        })
        .await;
        let sent = world.sent_to(group);
        assert_eq!(sent.len(), 1, "only the message that mentions the bot is answered: {sent:?}");
        assert_eq!(sent[0].params["chat_id"], "-1009876543210");
        assert_eq!(sent[0].text.as_deref(), Some(AUTO_REPLY));
        assert_eq!(quoted(&sent[0].params), Some(message_id(&asked)));
        assert_eq!(world.outbound(group).await.len(), 1);
        let conversation = world.conversation(group).await.unwrap();
        assert_eq!(conversation["contact_name"], "Support group");
        assert!(world.sent_to(ALICE).is_empty(), "nothing goes to the sender's private chat");
    }

    async fn duplicate_deliveries_store_one_message_and_send_one_reply(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        world.connect().await;
        world.emulator.set_duplicate_deliveries(true);
        let sim = world.emulator.simulate_message(BOT_ID, &from_alice("are you open today?")).unwrap();
        let update_id = sim["update_id"].as_i64().unwrap();
        assert!(world.emulator.wait_for_deliveries(Duration::from_secs(10), |d| {
            d.iter().filter(|a| a.update_id == update_id && a.status == Some(200)).count() == 2
        }).await, "the update was delivered twice");
        let store = world.app.state.store.clone();
        eventually("both deliveries processed", || async {
            store.webhook_events_in_state(InboxState::Processed, 10).await.unwrap().len() == 2
        })
        .await;
        eventually("the reply is marked sent", || async {
            world.outbound(ALICE).await.iter().any(|m| m["status"] == "sent")
        })
        .await;
        let messages = world.messages(ALICE).await;
        assert_eq!(messages.iter().filter(|m| m["direction"] == "inbound").count(), 1, "{messages:?}");
        assert_eq!(messages.iter().filter(|m| m["direction"] == "outbound").count(), 1, "{messages:?}");
        assert_eq!(world.sent_to(ALICE).len(), 1);
        world.wait_for_send_jobs(JobState::Done, 1).await;
    }

    async fn server_errors_and_flood_limits_are_retried_honouring_retry_after(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        world.connect().await;
        world.emulator.fail_next_sends([SendFault::ServerError, SendFault::TooManyRequests { retry_after: 2 }]);
        let started = Instant::now();
        world.emulator.simulate_message(BOT_ID, &from_alice("hello?")).unwrap();
        eventually("the reply after two failures", || async { !world.sent_to(ALICE).is_empty() }).await;
        let elapsed = started.elapsed();
        // At least the 1 s backoff (minus its 20 % jitter) plus the 2 s Telegram asked for.
        assert!(elapsed >= Duration::from_millis(2_750), "retried too early: {elapsed:?}");
        assert!(elapsed < Duration::from_secs(8), "retried too late: {elapsed:?}");
        eventually("sent", || async {
            world.outbound(ALICE).await.first().is_some_and(|m| m["status"] == "sent")
        })
        .await;
        assert_eq!(world.sent_to(ALICE).len(), 1);
        assert_eq!(world.sent_to(ALICE)[0].text.as_deref(), Some(AUTO_REPLY));
        let jobs = world.wait_for_send_jobs(JobState::Done, 1).await;
        assert_eq!(jobs[0].attempts, 3, "two failures, then success");
    }

    async fn a_revoked_token_holds_the_queue_until_the_bot_is_reconnected_with_its_new_token(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        world.connect().await;
        world.emulator.revoke_token(BOT_ID).unwrap();
        world.emulator.simulate_message(BOT_ID, &from_alice("first")).unwrap();
        eventually("needs_reauth", || async {
            let (_, list) = world.get("/api/integrations").await;
            list.as_array().unwrap().iter().any(|i| i["channel"] == "telegram" && i["state"] == "needs_reauth")
        })
        .await;
        world.emulator.simulate_message(BOT_ID, &from_alice("second")).unwrap();
        eventually("both messages stored", || async {
            world.messages(ALICE).await.iter().filter(|m| m["direction"] == "inbound").count() == 2
        })
        .await;
        world.wait_for_send_jobs(JobState::Held, 1).await;
        // Give a wrongly retrying worker the time to try again (poll interval: 50 ms).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let held = world.send_jobs(JobState::Held).await;
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0].attempts, 1, "a held queue does not burn attempts");
        assert!(held[0].last_error.as_deref().unwrap().contains("Unauthorized"), "{held:?}");
        assert!(world.outbound(ALICE).await.iter().all(|m| m["status"] == "queued"));
        assert!(world.sent_to(ALICE).is_empty());

        // @BotFather issues a new token for the same bot; the business pastes it.
        let renewed = world.emulator.add_bot(BotRequest {
            id: Some(BOT_ID),
            username: Some(BOT_USERNAME.into()),
            first_name: Some("Switchboard E2E".into()),
            token: None,
        }).unwrap();
        assert_ne!(renewed.token, world.bot.token);
        let (status, body) = world.connect_as(&world.key, &renewed.token).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        eventually("both replies after the reconnect", || async { world.sent_to(ALICE).len() == 2 }).await;
        eventually("both sent", || async {
            let out = world.outbound(ALICE).await;
            out.len() == 2 && out.iter().all(|m| m["status"] == "sent")
        })
        .await;
        assert_eq!(world.status().await["state"], "connected");
    }

    async fn a_user_blocking_the_bot_makes_the_chat_unreachable_until_unblocked_and_sends_fail_at_once(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "[responder]\nkind = \"off\"\n").await else { return };
        let id = connected_with_conversation(&world, &from_alice("hi")).await;
        world.emulator.block_bot(BOT_ID, ALICE).unwrap();
        eventually("unreachable", || async {
            world.conversation(ALICE).await.is_some_and(|c| c["unreachable"] == true)
        })
        .await;
        let (status, body) = world.post(&format!("/api/conversations/{id}/messages"), &json!({ "text": "still there?" })).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        eventually("failed", || async {
            world.outbound(ALICE).await.first().is_some_and(|m| m["status"] == "failed")
        })
        .await;
        let failed = world.outbound(ALICE).await.remove(0);
        assert_eq!(failed["error_code"], "unreachable");
        assert_eq!(failed["error_reason"], "the recipient blocked or left the chat");
        assert!(world.sent_to(ALICE).is_empty());
        let dead = world.wait_for_send_jobs(JobState::Dead, 1).await;
        assert_eq!(dead[0].attempts, 1, "not retried");

        // Unblocking makes the chat reachable again.
        world.emulator.unblock_bot(BOT_ID, ALICE).unwrap();
        eventually("reachable again", || async {
            world.conversation(ALICE).await.is_some_and(|c| c["unreachable"] == false)
        })
        .await;
        let (status, _) = world.post(&format!("/api/conversations/{id}/messages"), &json!({ "text": "welcome back" })).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        eventually("delivered", || async { !world.sent_to(ALICE).is_empty() }).await;
        assert_eq!(world.sent_to(ALICE)[0].text.as_deref(), Some("welcome back"));
    }

    async fn a_send_refused_with_403_fails_with_telegrams_reason_and_is_not_retried(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "[responder]\nkind = \"off\"\n").await else { return };
        let id = connected_with_conversation(&world, &from_alice("hi")).await;
        // The block notice does not reach the gateway (the webhook is someone else's for a
        // moment), so the gateway learns of the block from the send itself.
        world.set_webhook_behind_our_back("someone-elses-secret").await;
        world.emulator.block_bot(BOT_ID, ALICE).unwrap();
        let (status, _) = world.post(&format!("/api/conversations/{id}/messages"), &json!({ "text": "still there?" })).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        eventually("failed", || async {
            world.outbound(ALICE).await.first().is_some_and(|m| m["status"] == "failed")
        })
        .await;
        let failed = world.outbound(ALICE).await.remove(0);
        assert_eq!(failed["error_code"], "403");
        assert_eq!(failed["error_reason"], "Forbidden: bot was blocked by the user");
        assert_eq!(world.conversation(ALICE).await.unwrap()["unreachable"], true);
        let dead = world.wait_for_send_jobs(JobState::Dead, 1).await;
        assert_eq!(dead[0].attempts, 1, "not retried");
        assert!(world.sent_to(ALICE).is_empty());
        assert_eq!(world.status().await["state"], "error", "the webhook is still not ours");
    }

    async fn a_reply_longer_than_4096_characters_arrives_split_into_parts(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "[responder]\nkind = \"off\"\n").await else { return };
        let id = connected_with_conversation(&world, &from_alice("send me the full terms")).await;
        let paragraph = "Ünïcödé terms apply to every order 📦 placed through our shop. ".repeat(10);
        let text = [paragraph.trim_end(); 9].join("\n\n");
        assert!(text.chars().count() > 5_000);
        let (status, _) = world.post(&format!("/api/conversations/{id}/messages"), &json!({ "text": text })).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        eventually("sent", || async {
            world.outbound(ALICE).await.first().is_some_and(|m| m["status"] == "sent")
        })
        .await;
        let parts: Vec<String> = world.sent_to(ALICE).into_iter().map(|s| s.text.unwrap()).collect();
        assert!(parts.len() >= 2, "{} part(s)", parts.len());
        assert!(parts.iter().all(|p| p.chars().count() <= 4096));
        let words = |t: &str| t.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert!(words(&parts.join(" ")) == words(&text), "words lost or repeated: {parts:#?}");
        assert!(parts.iter().all(|p| !p.starts_with(char::is_whitespace)));
    }

    async fn a_send_to_a_group_that_became_a_supergroup_follows_migrate_to_chat_id(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        let (old, new) = (-4_012_345_678, -1_004_012_345_678);
        let id = connected_with_conversation(&world, &in_group(old, "group", "morning all")).await;
        world.emulator.migrate_chat(old, new);
        let (status, _) = world.post(&format!("/api/conversations/{id}/messages"), &json!({ "text": "We are open 9–17 🕘" })).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        eventually("sent to the supergroup", || async { !world.sent_to(new).is_empty() }).await;
        let sent = world.sent_to(new);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].params["chat_id"], "-1004012345678");
        assert_eq!(sent[0].text.as_deref(), Some("We are open 9–17 🕘"));
        assert!(world.sent_to(old).is_empty());
        eventually("sent in the supergroup's conversation", || async {
            world.outbound(new).await.first().is_some_and(|m| m["status"] == "sent")
        })
        .await;
        let first = world.outbound(old).await;
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0]["status"], "failed");
        assert_eq!(first[0]["error_code"], "chat_migrated");
        assert!(first[0]["error_reason"].as_str().unwrap().contains("-1004012345678"));
    }
}

/// A group message that mentions another bot gets no reply (the responder answers group
/// messages that mention or reply to *our* bot only).
mod a_group_message_that_mentions_another_bot_gets_no_reply {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        another_bots_mention(switchboard_tests::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        another_bots_mention(switchboard_tests::Backend::Postgres).await;
    }
}

async fn another_bots_mention(backend: switchboard_tests::Backend) {
    let Some(world) = TelegramWorld::spawn(backend, "").await else {
        return;
    };
    world.connect().await;
    let group = -1_009_876_543_211;
    world
        .emulator
        .simulate_message(
            BOT_ID,
            &in_group(group, "supergroup", "@someone_else_bot ping"),
        )
        .unwrap();
    let asked = world
        .emulator
        .simulate_message(
            BOT_ID,
            &in_group(group, "supergroup", &format!("@{BOT_USERNAME} and you?")),
        )
        .unwrap();
    // Replies in one conversation go out in order: once the reply to the second message is
    // sent, a reply to the first would have been sent before it.
    eventually("the reply to the mention of our bot", || async {
        world
            .sent_to(group)
            .iter()
            .any(|s| quoted(&s.params) == Some(message_id(&asked)))
    })
    .await;
    let sent = world.sent_to(group);
    assert_eq!(
        sent.len(),
        1,
        "a mention of another bot is not addressed to ours: {sent:?}"
    );
}
