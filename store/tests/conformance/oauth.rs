//! OAuth states (single use, expiry) and pending account choices.

use std::sync::Arc;

use chrono::Duration;
use switchboard_core::crypto::EncryptedBlob;
use switchboard_core::store::{OAuthState, PendingChoice, Store};

use crate::support::{at, business, channel, hash, micros};

switchboard_store::on_both_backends!(crate::support::migrated =>
    an_oauth_state_can_be_taken_only_once,
    an_expired_oauth_state_is_not_returned_and_is_removed,
    concurrent_takes_of_one_oauth_state_have_exactly_one_winner,
    a_pending_choice_is_replaced_expires_and_can_be_cleared,
    a_take_from_another_browser_session_leaves_the_state,
    expired_states_and_choices_are_swept_and_fresh_ones_kept,
);

/// The hash of the browser nonce a state `seed` was issued to.
fn session(seed: &str) -> switchboard_core::store::SecretHash {
    hash(&format!("session-{seed}"))
}

fn state(business: switchboard_core::BusinessId, seed: &str) -> OAuthState {
    OAuthState {
        state_hash: hash(seed),
        business_id: business,
        channel: channel("whatsapp"),
        session_hash: session(seed),
        expires_at: at(600),
    }
}

fn trunc(mut s: OAuthState) -> OAuthState {
    s.expires_at = micros(s.expires_at);
    s
}

async fn an_oauth_state_can_be_taken_only_once(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    store.put_oauth_state(state(a.id, "s1")).await.unwrap();
    let taken = store
        .take_oauth_state(hash("s1"), session("s1"), at(0))
        .await
        .unwrap();
    assert_eq!(taken, Some(trunc(state(a.id, "s1"))));
    assert_eq!(
        store
            .take_oauth_state(hash("s1"), session("s1"), at(0))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_oauth_state(hash("unknown"), session("unknown"), at(0))
            .await
            .unwrap(),
        None
    );
}

async fn an_expired_oauth_state_is_not_returned_and_is_removed(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    store.put_oauth_state(state(a.id, "old")).await.unwrap();
    assert_eq!(
        store
            .take_oauth_state(hash("old"), session("old"), at(601))
            .await
            .unwrap(),
        None
    );
    // Gone, not merely hidden: taking it "earlier" finds nothing either.
    assert_eq!(
        store
            .take_oauth_state(hash("old"), session("old"), at(0))
            .await
            .unwrap(),
        None
    );
}

async fn concurrent_takes_of_one_oauth_state_have_exactly_one_winner(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    for round in 0..10 {
        let seed = format!("race-{round}");
        store.put_oauth_state(state(a.id, &seed)).await.unwrap();
        let takes: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                let (h, s) = (hash(&seed), session(&seed));
                tokio::spawn(async move { store.take_oauth_state(h, s, at(0)).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for take in takes {
            winners += usize::from(take.await.unwrap().is_some());
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

async fn a_pending_choice_is_replaced_expires_and_can_be_cleared(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let b = business(&store, "B").await;
    let wa = channel("whatsapp");
    let choice = |n: u8| PendingChoice {
        business_id: a.id,
        channel: channel("whatsapp"),
        pending: EncryptedBlob::from_stored(vec![n, 0xfe]),
        options: serde_json::json!([{ "id": format!("pn-{n}") }]),
        expires_at: at(600),
    };
    store.put_pending_choice(choice(1)).await.unwrap();
    store.put_pending_choice(choice(2)).await.unwrap();
    let read = store
        .pending_choice(a.id, &wa, at(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.pending.as_bytes(), &[2, 0xfe]);
    assert_eq!(read.options, choice(2).options);
    assert!(
        store
            .pending_choice(b.id, &wa, at(0))
            .await
            .unwrap()
            .is_none()
    );
    let late = at(0) + Duration::seconds(601);
    assert!(
        store
            .pending_choice(a.id, &wa, late)
            .await
            .unwrap()
            .is_none()
    );
    store.clear_pending_choice(a.id, &wa).await.unwrap();
    assert!(
        store
            .pending_choice(a.id, &wa, at(0))
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_take_from_another_browser_session_leaves_the_state(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    store.put_oauth_state(state(a.id, "s1")).await.unwrap();
    assert_eq!(
        store
            .take_oauth_state(hash("s1"), session("other"), at(0))
            .await
            .unwrap(),
        None
    );
    let taken = store
        .take_oauth_state(hash("s1"), session("s1"), at(0))
        .await
        .unwrap();
    assert_eq!(taken, Some(trunc(state(a.id, "s1"))));
}

async fn expired_states_and_choices_are_swept_and_fresh_ones_kept(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let b = business(&store, "B").await;
    store.put_oauth_state(state(a.id, "old")).await.unwrap();
    let mut fresh = state(a.id, "fresh");
    fresh.expires_at = at(1_200);
    store.put_oauth_state(fresh.clone()).await.unwrap();
    let choice = |business, expires_at| PendingChoice {
        business_id: business,
        channel: channel("whatsapp"),
        pending: EncryptedBlob::from_stored(vec![1, 2, 3]),
        options: serde_json::json!([]),
        expires_at,
    };
    store
        .put_pending_choice(choice(a.id, at(600)))
        .await
        .unwrap();
    store
        .put_pending_choice(choice(b.id, at(1_200)))
        .await
        .unwrap();
    assert_eq!(store.delete_expired_oauth(at(900)).await.unwrap(), 2);
    assert_eq!(
        store.delete_expired_oauth(at(900)).await.unwrap(),
        0,
        "nothing left to sweep"
    );
    assert!(
        store
            .pending_choice(a.id, &channel("whatsapp"), at(0))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .pending_choice(b.id, &channel("whatsapp"), at(0))
            .await
            .unwrap()
            .is_some()
    );
    let taken = store
        .take_oauth_state(hash("fresh"), session("fresh"), at(0))
        .await
        .unwrap();
    assert_eq!(taken, Some(trunc(fresh)));
}
