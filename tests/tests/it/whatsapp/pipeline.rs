//! Messages through the gateway's pipeline with WhatsApp: a customer writes at the emulator, the
//! signed webhook reaches the gateway, the message is stored, one automated reply goes out
//! through the Graph API, and the emulator's status webhooks move it to `read` — and what
//! duplicates, batches, reordering, throttling, expired tokens, the 24-hour window and failed
//! deliveries do to that.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::BusinessId;
use switchboard_core::domain::IntegrationState;
use switchboard_core::store::JobState;
use switchboard_tests::whatsapp::{PHONE_NUMBER_ID, WhatsAppWorld, eventually, text_webhook};
use switchboard_whatsapp::emulator::{FailStatus, SimulatedContent};

const REPLY: &str = "Thanks, we got your message.";

fn responder(kind: &str) -> String {
    format!("[responder]\nkind = \"{kind}\"\ntext = \"{REPLY}\"\n")
}

async fn setup(
    backend: switchboard_tests::Backend,
    extra: &str,
) -> Option<(WhatsAppWorld, BusinessId, String)> {
    let world = WhatsAppWorld::start(backend, extra).await?;
    let (business, key) = world.tenant("Lucky Shrub").await;
    world.connect_ok(&key).await;
    Some((world, business, key))
}

/// The status of the newest outbound message with `chat` ("" while there is none).
async fn reply_status(world: &WhatsAppWorld, key: &str, chat: &str) -> String {
    world
        .replies(key, chat)
        .await
        .first()
        .and_then(|m| m["status"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Send jobs of the business in `state`.
async fn jobs(
    world: &WhatsAppWorld,
    business: BusinessId,
    state: JobState,
) -> Vec<switchboard_core::store::Job> {
    world
        .app
        .state
        .store
        .list_jobs(business, state, 50)
        .await
        .unwrap()
}

/// A manual reply in the conversation with `chat`: `202` and the queued message.
async fn reply_by_hand(world: &WhatsAppWorld, key: &str, chat: &str, body: &Value) -> Value {
    let conversation = world.conversation(key, chat).await.expect("a conversation");
    let path = format!(
        "/api/conversations/{}/messages",
        conversation["id"].as_str().unwrap()
    );
    let (status, message) = world.post(key, &path, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{message}");
    assert_eq!(message["direction"], "outbound");
    message
}

async fn message_by_id(world: &WhatsAppWorld, key: &str, chat: &str, id: &Value) -> Value {
    world
        .thread(key, chat)
        .await
        .into_iter()
        .find(|m| &m["id"] == id)
        .unwrap_or(Value::Null)
}

/// Lets in-flight work settle before asserting that something did *not* happen again.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

/// A retryable fault on every send: the first attempt fails and is rescheduled; once the fault
/// is lifted the retry delivers the reply.
async fn retried_until_sent(
    world: &WhatsAppWorld,
    business: BusinessId,
    key: &str,
    from: &str,
    code: &str,
) {
    world.customer_writes(from, "is anyone there?").await;
    let error = std::sync::Mutex::new(None::<String>);
    eventually("a failed attempt rescheduled", || async {
        let failed = jobs(world, business, JobState::Pending)
            .await
            .into_iter()
            .find(|j| j.attempts >= 1 && j.last_error.is_some());
        let found = failed.is_some();
        *error.lock().unwrap() = failed.and_then(|j| j.last_error);
        found
    })
    .await;
    let error = error.into_inner().unwrap().unwrap();
    assert!(error.starts_with(&format!("{code}:")), "{error}");
    assert!(world.sent_to(from).is_empty());
    assert_eq!(reply_status(world, key, from).await, "queued");
    world.emulator.update_faults(|f| {
        f.server_error = false;
        f.rate_limited = false;
    });
    eventually("the reply delivered on retry", || async {
        world.sent_to(from).len() == 1
    })
    .await;
    eventually("the reply marked sent or later", || async {
        matches!(
            reply_status(world, key, from).await.as_str(),
            "sent" | "delivered" | "read"
        )
    })
    .await;
}

crate::on_both_backends! {
    async fn a_nul_character_in_a_message_is_stored_as_a_replacement_character_and_answered(backend: Backend) {
        // JSON allows "\u0000"; PostgreSQL refuses NUL in text and JSONB. The message must not
        // be stuck in the inbox (nor hold up others): it is stored with U+FFFD instead.
        let Some((world, _, key)) = setup(backend, &responder("echo")).await else { return };
        let (ann, bob) = ("15553330041", "15553330042");
        world.emulator.update_faults(|f| f.batch = true);
        world.customer_writes(ann, "before\u{0}after").await;
        world.customer_writes(bob, "plain").await;
        assert_eq!(world.emulator.flush_batch().await, Some(200));
        world.emulator.update_faults(|f| f.batch = false);
        eventually("both replies at Meta", || async { world.sent_to(ann).len() == 1 && world.sent_to(bob).len() == 1 }).await;
        assert_eq!(world.sent_to(ann)[0].body["text"]["body"], "before\u{fffd}after");
        assert_eq!(world.sent_to(bob)[0].body["text"]["body"], "plain");
        let thread = world.thread(&key, ann).await;
        let inbound: Vec<&Value> = thread.iter().filter(|m| m["direction"] == "inbound").collect();
        assert_eq!(inbound.len(), 1, "{thread:?}");
        assert_eq!(inbound[0]["text"], "before\u{fffd}after");
    }

    async fn an_inbound_message_is_stored_answered_once_and_its_reply_reaches_read(backend: Backend) {
        let Some((world, _, key)) = setup(backend, &responder("static")).await else { return };
        let from = "15553330001";
        let receipt = world.customer_writes(from, "Hello there").await;
        assert_eq!(receipt.delivery_status, Some(200));
        eventually("the reply at Meta", || async { world.sent_to(from).len() == 1 }).await;
        let sent = world.sent_to(from).remove(0);
        assert_eq!(sent.phone_number_id, PHONE_NUMBER_ID);
        assert_eq!(sent.body["type"], "text");
        assert_eq!(sent.body["text"]["body"], REPLY);
        eventually("the reply read", || async { reply_status(&world, &key, from).await == "read" }).await;
        let thread = world.thread(&key, from).await;
        assert_eq!(thread.len(), 2, "{thread:?}");
        let (reply, inbound) = (&thread[0], &thread[1]);
        assert_eq!(inbound["direction"], "inbound");
        assert_eq!(inbound["text"], "Hello there");
        assert_eq!(inbound["provider_message_id"], receipt.message_id.as_str());
        assert_eq!(reply["direction"], "outbound");
        assert_eq!(reply["text"], REPLY);
        assert_eq!(reply["provider_message_id"], sent.id.as_str());
        let conversation = world.conversation(&key, from).await.unwrap();
        assert_eq!(conversation["contact_name"], format!("Customer {from}"));
    }

    async fn media_and_locations_are_answered_but_reactions_never(backend: Backend) {
        let Some((world, _, key)) = setup(backend, &responder("static")).await else { return };
        let (photo, place, fan) = ("15553330012", "15553330013", "15553330014");
        world.simulate(photo, SimulatedContent::Image { caption: Some("my receipt".into()) }).await;
        world.simulate(place, SimulatedContent::Location { latitude: 52.52, longitude: 13.405, name: Some("Shop".into()), address: None }).await;
        let liked = world.customer_writes(fan, "thanks!").await;
        eventually("the text answered", || async { world.sent_to(fan).len() == 1 }).await;
        world.simulate(fan, SimulatedContent::Reaction { message_id: liked.message_id.clone(), emoji: "👍".into() }).await;
        eventually("the image and the location answered", || async {
            world.sent_to(photo).len() == 1 && world.sent_to(place).len() == 1
        })
        .await;
        let image = world.thread(&key, photo).await.into_iter().find(|m| m["direction"] == "inbound").unwrap();
        assert_eq!(image["type"], "image");
        assert_eq!(image["text"], "my receipt");
        let location = world.thread(&key, place).await.into_iter().find(|m| m["direction"] == "inbound").unwrap();
        assert_eq!(location["type"], "location");
        settle().await;
        assert_eq!(world.sent_to(fan).len(), 1, "a reaction is never answered");
    }

    // Meta may report `sent`, `delivered` and `read` before the send's HTTP response has been
    // processed: those statuses must neither be lost nor overwritten by `sent`.
    async fn statuses_that_arrive_right_after_the_send_response_are_not_lost(backend: Backend) {
        let Some(world) = WhatsAppWorld::start_with(backend, &responder("static"), |c| c.status_delay = Duration::ZERO).await else { return };
        let (_, key) = world.tenant("Lucky Shrub").await;
        world.connect_ok(&key).await;
        let customers: Vec<String> = (0..8).map(|n| format!("1555444{n:04}")).collect();
        for from in &customers {
            world.customer_writes(from, "quick one").await;
        }
        eventually("every reply at Meta", || async { customers.iter().all(|c| world.sent_to(c).len() == 1) }).await;
        let reported = world.emulator.wait_for_deliveries(Duration::from_secs(10), |d| {
            d.iter().filter(|r| r.body.contains("\"read\"") && r.delivered).count() == customers.len()
        }).await;
        assert!(reported, "Meta reported every reply read");
        eventually("every reply read", || async {
            for from in &customers {
                if reply_status(&world, &key, from).await != "read" {
                    return false;
                }
            }
            true
        })
        .await;
    }

    async fn duplicated_and_batched_deliveries_store_one_message_and_send_one_reply(backend: Backend) {
        let Some((world, _, key)) = setup(backend, &responder("static")).await else { return };
        let (ann, bob) = ("15553330002", "15553330003");
        world.emulator.update_faults(|f| f.duplicate_delivery = true);
        let first = world.customer_writes(ann, "first").await;
        // Then a batch: Bob's message and Ann's message once more, in one POST, twice.
        world.emulator.update_faults(|f| f.batch = true);
        world.customer_writes(bob, "second").await;
        let again = json!({"type": "text", "text": {"body": "first"}, "id": first.message_id});
        world.simulate(ann, SimulatedContent::Raw { message: again }).await;
        assert_eq!(world.emulator.flush_batch().await, Some(200));
        world.emulator.update_faults(|f| { f.batch = false; f.duplicate_delivery = false; });
        let deliveries = world.emulator.deliveries();
        assert!(deliveries.iter().filter(|d| d.attempts == [200, 200]).count() >= 2, "{deliveries:?}");

        eventually("both replies at Meta", || async { world.sent_to(ann).len() == 1 && world.sent_to(bob).len() == 1 }).await;
        settle().await;
        assert_eq!(world.sent_to(ann).len(), 1, "one reply per message, ever");
        assert_eq!(world.sent_to(bob).len(), 1);
        for (chat, text) in [(ann, "first"), (bob, "second")] {
            let thread = world.thread(&key, chat).await;
            let inbound: Vec<&Value> = thread.iter().filter(|m| m["direction"] == "inbound").collect();
            assert_eq!(inbound.len(), 1, "{thread:?}");
            assert_eq!(inbound[0]["text"], text);
            assert_eq!(thread.len(), 2, "{thread:?}");
        }
    }

    async fn statuses_delivered_out_of_order_end_in_read(backend: Backend) {
        let Some((world, _, key)) = setup(backend, &responder("static")).await else { return };
        let from = "15553330004";
        world.emulator.update_faults(|f| f.out_of_order = true);
        world.customer_writes(from, "hi").await;
        eventually("the reply at Meta", || async { world.sent_to(from).len() == 1 }).await;
        let all_statuses = world.emulator.wait_for_deliveries(Duration::from_secs(10), |d| {
            d.iter().filter(|r| r.body.contains("\"statuses\"") && r.delivered).count() == 3
        }).await;
        assert!(all_statuses, "read, delivered and sent were delivered");
        let order: Vec<&str> = world.emulator.deliveries().iter().filter(|r| r.body.contains("\"statuses\"")).map(|r| {
            ["\"read\"", "\"delivered\"", "\"sent\""].into_iter().find(|s| r.body.contains(s)).unwrap()
        }).collect();
        assert_eq!(order, ["\"read\"", "\"delivered\"", "\"sent\""], "the emulator reversed them");
        eventually("read", || async { reply_status(&world, &key, from).await == "read" }).await;
        settle().await;
        assert_eq!(reply_status(&world, &key, from).await, "read", "older statuses do not move it back");
    }

    async fn server_errors_on_send_are_retried_until_the_reply_goes_out(backend: Backend) {
        let Some((world, business, key)) = setup(backend, &responder("static")).await else { return };
        world.emulator.update_faults(|f| f.server_error = true);
        retried_until_sent(&world, business, &key, "15553330005", "2").await;
    }

    async fn throughput_errors_130429_are_retried_until_the_reply_goes_out(backend: Backend) {
        let Some((world, business, key)) = setup(backend, &responder("static")).await else { return };
        world.emulator.update_faults(|f| f.rate_limited = true);
        retried_until_sent(&world, business, &key, "15553330006", "130429").await;
    }

    async fn an_expired_token_holds_the_queue_until_the_business_reconnects(backend: Backend) {
        let Some((world, business, key)) = setup(backend, &responder("static")).await else { return };
        let from = "15553330007";
        world.emulator.expire_tokens();
        world.customer_writes(from, "one").await;
        eventually("the send held", || async { jobs(&world, business, JobState::Held).await.len() == 1 }).await;
        let held = jobs(&world, business, JobState::Held).await.remove(0);
        assert!(held.last_error.as_deref().unwrap_or_default().contains("token"), "{held:?}");
        let integration = world.app.state.store.list_integrations(business).await.unwrap().remove(0);
        assert_eq!(integration.state, IntegrationState::NeedsReauth);
        assert!(integration.state_reason.is_some_and(|r| !r.is_empty()));
        world.customer_writes(from, "two").await;
        eventually("both inbound stored", || async {
            world.thread(&key, from).await.iter().filter(|m| m["direction"] == "inbound").count() == 2
        })
        .await;
        settle().await;
        assert!(world.sent_to(from).is_empty(), "nothing goes out with a dead token");
        let replies = world.replies(&key, from).await;
        assert!(!replies.is_empty() && replies.iter().all(|m| m["status"] == "queued"), "{replies:?}");
        let status = world.status(&key).await;
        assert_eq!(status["state"], "needs_reauth", "{status}");

        world.connect_ok(&key).await;
        eventually("the queue drains after reconnecting", || async { world.sent_to(from).len() == 2 }).await;
        eventually("both replies sent or later", || async {
            let replies = world.replies(&key, from).await;
            replies.len() == 2 && replies.iter().all(|m| matches!(m["status"].as_str(), Some("sent" | "delivered" | "read")))
        })
        .await;
        assert_eq!(world.status(&key).await["state"], "connected");
    }

    async fn free_text_after_the_24_hour_window_fails_but_a_template_goes_out(backend: Backend) {
        let Some((world, _, key)) = setup(backend, &responder("off")).await else { return };
        let from = "15553330008";
        let yesterday = chrono::Utc::now().timestamp() - 25 * 3600;
        let status = world.emulator.deliver_raw(&text_webhook(from, "wamid.old-1", yesterday, "are you open?")).await;
        assert_eq!(status, Some(200));
        eventually("the old message stored", || async { world.thread(&key, from).await.len() == 1 }).await;

        let text = reply_by_hand(&world, &key, from, &json!({"text": "Yes, until six."})).await;
        eventually("the reply failed", || async { message_by_id(&world, &key, from, &text["id"]).await["status"] == "failed" }).await;
        let failed = message_by_id(&world, &key, from, &text["id"]).await;
        assert_eq!(failed["error_code"], "window_closed", "{failed}");
        assert!(failed["error_reason"].as_str().unwrap().contains("24-hour"), "{failed}");
        assert!(world.sent_to(from).is_empty(), "the gateway did not even try");

        let template = json!({"content": {"type": "template", "name": "hello_world", "language": "en_US"}});
        let queued = reply_by_hand(&world, &key, from, &template).await;
        eventually("the template at Meta", || async { world.sent_to(from).len() == 1 }).await;
        let sent = world.sent_to(from).remove(0);
        assert_eq!(sent.body["type"], "template");
        assert_eq!(sent.body["template"]["name"], "hello_world");
        assert_eq!(sent.body["template"]["language"]["code"], "en_US");
        eventually("the template sent or later", || async {
            matches!(message_by_id(&world, &key, from, &queued["id"]).await["status"].as_str(), Some("sent" | "delivered" | "read"))
        })
        .await;
    }

    async fn a_window_meta_says_is_closed_fails_the_reply_with_window_closed(backend: Backend) {
        let Some((world, _, key)) = setup(backend, &responder("off")).await else { return };
        let from = "15553330009";
        world.customer_writes(from, "hello").await;
        eventually("the message stored", || async { world.thread(&key, from).await.len() == 1 }).await;
        // Meta's clock is past the window although the gateway's is not: Meta answers 131047.
        world.emulator.advance_clock(Duration::from_secs(25 * 3600));
        let text = reply_by_hand(&world, &key, from, &json!({"text": "Sorry for the wait!"})).await;
        eventually("the reply failed", || async { message_by_id(&world, &key, from, &text["id"]).await["status"] == "failed" }).await;
        let failed = message_by_id(&world, &key, from, &text["id"]).await;
        assert_eq!(failed["error_code"], "window_closed", "{failed}");
        assert!(world.sent_to(from).is_empty());
        assert_eq!(world.status(&key).await["state"], "connected", "a closed window is not the integration's fault");
    }

    async fn a_failed_delivery_report_fails_the_message_with_its_code_and_reason(backend: Backend) {
        let Some((world, _, key)) = setup(backend, &responder("static")).await else { return };
        let from = "15553330010";
        world.emulator.update_faults(|f| f.fail_status = Some(FailStatus {
            code: 131_026,
            title: "Message undeliverable".into(),
            details: "The recipient is not a WhatsApp user.".into(),
        }));
        world.customer_writes(from, "hi").await;
        eventually("the reply at Meta", || async { world.sent_to(from).len() == 1 }).await;
        eventually("the reply failed", || async { reply_status(&world, &key, from).await == "failed" }).await;
        let reply = world.replies(&key, from).await.remove(0);
        assert_eq!(reply["error_code"], "131026", "{reply}");
        let reason = reply["error_reason"].as_str().unwrap_or_default();
        assert!(reason.contains("undeliverable") || reason.contains("not a WhatsApp user"), "{reply}");
    }
}

// The status object carries `last_webhook_at`; WhatsApp webhooks name their number
// only in the body, so the inbox worker records it when it routes them.
crate::on_both_backends! {
    async fn the_status_shows_when_the_last_webhook_arrived(backend: Backend) {
        let Some((world, _, key)) = setup(backend, &responder("off")).await else { return };
        assert!(world.status(&key).await["last_webhook_at"].is_null());
        let from = "15553330011";
        world.customer_writes(from, "hello").await;
        eventually("the message stored", || async { !world.thread(&key, from).await.is_empty() }).await;
        let status = world.status(&key).await;
        let at: chrono::DateTime<chrono::Utc> = status["last_webhook_at"].as_str().expect("last_webhook_at is set").parse().unwrap();
        assert!((chrono::Utc::now() - at).num_seconds() < 60, "{status}");
    }
}
