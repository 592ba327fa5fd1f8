//! Webhook delivery from the emulator to a receiver on loopback: signatures over the exact
//! bytes, Meta's escaping, status progressions, retries, duplicates, reordering and batching.

use std::time::Duration;

use switchboard_core::domain::{DeliveryStatus, InboundEvent};
use switchboard_whatsapp::emulator::{
    DeliveryRecord, FailStatus, SimulatedContent, SimulatedInbound,
};

use crate::harness::{Env, env};
use crate::receiver::Receiver;
use crate::send::{CUSTOMER, open_window, text};

fn customer(name: &str, body: &str) -> SimulatedInbound {
    SimulatedInbound {
        phone_number_id: None,
        from: Some(CUSTOMER.into()),
        name: Some(name.into()),
        user_id: None,
        content: SimulatedContent::Text { body: body.into() },
    }
}

async fn wait(env: &Env, ready: impl Fn(&[DeliveryRecord]) -> bool) {
    assert!(
        env.emulator
            .wait_for_deliveries(Duration::from_secs(5), ready)
            .await,
        "{:#?}",
        env.emulator.deliveries()
    );
}

#[tokio::test]
async fn a_simulated_customer_message_arrives_signed_with_metas_escaping_and_parses() {
    let env = env().await;
    env.connected().await;
    let receiver = Receiver::start(&env, vec![]).await;
    let receipt = env
        .emulator
        .simulate_inbound(customer("José 🌵", "Olá, têm https://x.pt/a?"))
        .await
        .unwrap();
    assert_eq!(receipt.delivery_status, Some(200));
    let body = String::from_utf8(receiver.bodies()[0].clone()).unwrap();
    assert!(body.is_ascii(), "non-ASCII is escaped: {body}");
    assert!(
        body.contains(r"Jos\u00e9 \ud83c\udf35") && body.contains(r"https:\/\/x.pt\/a?"),
        "{body}"
    );
    let events = receiver.events(&env);
    let [InboundEvent::Message(m)] = events.as_slice() else {
        panic!("{events:#?}")
    };
    assert_eq!(
        (m.account_id.as_str(), m.provider_message_id.as_str()),
        ("106540352242922", receipt.message_id.as_str())
    );
    assert_eq!(
        (m.sender.name.as_deref(), m.text.as_deref()),
        (Some("José 🌵"), Some("Olá, têm https://x.pt/a?"))
    );
    assert_eq!(m.chat.external_id, CUSTOMER);
}

#[tokio::test]
async fn a_send_is_followed_by_sent_delivered_and_read_statuses() {
    let (env, ctx, _) = open_window().await;
    let receiver = Receiver::start(&env, vec![]).await;
    let id = env
        .adapter
        .send(&ctx, &text("hello"))
        .await
        .unwrap()
        .provider_message_ids
        .remove(0);
    wait(&env, |d| d.iter().filter(|r| r.delivered).count() >= 3).await;
    let statuses: Vec<(String, DeliveryStatus)> = receiver
        .events(&env)
        .into_iter()
        .filter_map(|e| match e {
            InboundEvent::Status(s) => Some((s.provider_message_id, s.status)),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (id.clone(), DeliveryStatus::Sent),
            (id.clone(), DeliveryStatus::Delivered),
            (id, DeliveryStatus::Read)
        ]
    );
}

#[tokio::test]
async fn out_of_order_mode_delivers_read_before_sent() {
    let (env, ctx, _) = open_window().await;
    env.emulator.update_faults(|f| f.out_of_order = true);
    let receiver = Receiver::start(&env, vec![]).await;
    env.adapter.send(&ctx, &text("hello")).await.unwrap();
    wait(&env, |d| d.iter().filter(|r| r.delivered).count() >= 3).await;
    let order: Vec<DeliveryStatus> = receiver
        .events(&env)
        .into_iter()
        .filter_map(|e| match e {
            InboundEvent::Status(s) => Some(s.status),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            DeliveryStatus::Read,
            DeliveryStatus::Delivered,
            DeliveryStatus::Sent
        ]
    );
}

#[tokio::test]
async fn a_failed_status_carries_the_error_code() {
    let (env, ctx, _) = open_window().await;
    env.emulator.update_faults(|f| {
        f.fail_status = Some(FailStatus {
            code: 131_026,
            title: "Message undeliverable".into(),
            details: "Message Undeliverable.".into(),
        });
    });
    let receiver = Receiver::start(&env, vec![]).await;
    env.adapter.send(&ctx, &text("hello")).await.unwrap();
    wait(&env, |d| d.iter().filter(|r| r.delivered).count() >= 2).await;
    let failed = receiver
        .events(&env)
        .into_iter()
        .find_map(|e| match e {
            InboundEvent::Status(s) if s.status == DeliveryStatus::Failed => Some(s),
            _ => None,
        })
        .unwrap();
    assert_eq!(failed.error_code.as_deref(), Some("131026"));
    assert_eq!(
        failed.error_reason.as_deref(),
        Some("Message undeliverable: Message Undeliverable.")
    );
}

#[tokio::test]
async fn a_delivery_that_does_not_get_200_is_retried_until_it_does() {
    let env = env().await;
    env.connected().await;
    let receiver = Receiver::start(&env, vec![500, 503, 200]).await;
    let receipt = env
        .emulator
        .simulate_inbound(customer("Ana", "retry me"))
        .await
        .unwrap();
    assert_eq!(receipt.delivery_status, Some(500));
    wait(&env, |d| d.first().is_some_and(|r| r.delivered)).await;
    assert_eq!(env.emulator.deliveries()[0].attempts, [500, 503, 200]);
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "retries resend the exact bytes"
    );
    assert_eq!(
        receiver.events(&env).len(),
        3,
        "every attempt is signed and parses"
    );
}

#[tokio::test]
async fn duplicate_mode_delivers_the_same_body_twice() {
    let env = env().await;
    env.connected().await;
    env.emulator.update_faults(|f| {
        f.duplicate_delivery = true;
        f.statuses = false;
    });
    let receiver = Receiver::start(&env, vec![]).await;
    env.emulator
        .simulate_inbound(customer("Ana", "twice"))
        .await
        .unwrap();
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn batch_mode_sends_several_changes_in_one_post() {
    let env = env().await;
    env.connected().await;
    env.emulator.update_faults(|f| f.batch = true);
    let receiver = Receiver::start(&env, vec![]).await;
    env.emulator
        .simulate_inbound(customer("Ana", "one"))
        .await
        .unwrap();
    env.emulator
        .simulate_inbound(customer("Ana", "two"))
        .await
        .unwrap();
    assert!(receiver.bodies().is_empty());
    assert_eq!(env.emulator.flush_batch().await, Some(200));
    assert_eq!(receiver.bodies().len(), 1);
    let texts: Vec<String> = receiver
        .events(&env)
        .into_iter()
        .filter_map(|e| match e {
            InboundEvent::Message(m) => m.text,
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["one", "two"]);
}

#[tokio::test]
async fn nothing_is_delivered_for_a_waba_the_app_is_not_subscribed_to() {
    let env = env().await;
    let receiver = Receiver::start(&env, vec![]).await;
    let receipt = env
        .emulator
        .simulate_inbound(customer("Ana", "lost"))
        .await
        .unwrap();
    assert_eq!(receipt.delivery_status, None);
    assert!(receiver.bodies().is_empty());
}
