//! Channel integrations: the unique rules, reconnecting, deactivating, look-ups.

use std::sync::Arc;

use switchboard_core::StoreError;
use switchboard_core::domain::IntegrationState;
use switchboard_core::error::Conflict;
use switchboard_core::store::Store;

use switchboard_store::testing::Backend;

use crate::support::{at, business, channel, connected, hash, micros, record};

switchboard_store::on_both_backends!(crate::support::migrated =>
    connecting_stores_an_active_connected_integration_with_its_credentials,
    reconnecting_keeps_the_integration_id_and_clears_errors,
    concurrent_connects_of_one_business_and_channel_share_one_integration,
    an_account_active_for_one_business_is_refused_to_another_with_account_in_use,
    deactivating_wipes_secrets_and_frees_the_account_for_another_business,
    look_ups_by_account_and_webhook_secret_find_only_active_integrations,
    bulk_look_ups_find_what_single_look_ups_find,
    state_error_expiry_and_webhook_time_can_be_updated,
    updating_a_missing_integration_is_not_found,
    a_business_lists_only_its_own_integrations,
    account_events_are_recorded_newest_first,
);

async fn connecting_stores_an_active_connected_integration_with_its_credentials(
    store: Arc<dyn Store>,
) {
    let a = business(&store, "A").await;
    let rec = record(a.id, "whatsapp", "pn-1");
    let saved = store.save_connection(rec.clone()).await.unwrap();
    assert!(saved.is_active);
    assert_eq!(saved.state, IntegrationState::Connected);
    assert_eq!(saved.account_id.as_deref(), Some("pn-1"));
    assert_eq!(saved.parent_account_id.as_deref(), Some("waba-1"));
    assert_eq!(saved.details, rec.details);
    assert_eq!(saved.token_expires_at, Some(micros(at(3600))));
    let read = store.integration_by_id(saved.id).await.unwrap().unwrap();
    assert_eq!(read, saved);
    let creds = store.credentials(saved.id).await.unwrap().unwrap();
    assert_eq!(creds.as_bytes(), rec.credentials.as_bytes());
    let wa = channel("whatsapp");
    assert_eq!(store.integration_for(a.id, &wa).await.unwrap(), Some(saved));
    assert_eq!(
        store
            .integration_for(a.id, &channel("telegram"))
            .await
            .unwrap(),
        None
    );
}

async fn reconnecting_keeps_the_integration_id_and_clears_errors(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let first = connected(&store, a.id, "whatsapp", "pn-1").await;
    store
        .set_state(
            first.id,
            IntegrationState::NeedsReauth,
            Some("token expired"),
        )
        .await
        .unwrap();
    store.set_last_error(first.id, Some("190")).await.unwrap();
    let again = connected(&store, a.id, "whatsapp", "pn-2").await;
    assert_eq!(again.id, first.id);
    assert_eq!(again.state, IntegrationState::Connected);
    assert_eq!(again.state_reason, None);
    assert_eq!(again.last_error, None);
    assert_eq!(again.account_id.as_deref(), Some("pn-2"));
    assert_eq!(again.created_at, first.created_at);
    assert_eq!(store.list_integrations(a.id).await.unwrap().len(), 1);
}

async fn concurrent_connects_of_one_business_and_channel_share_one_integration(
    store: Arc<dyn Store>,
) {
    let a = business(&store, "A").await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { connected(&store, a.id, "telegram", "bot-1").await.id })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(store.list_integrations(a.id).await.unwrap().len(), 1);
}

async fn an_account_active_for_one_business_is_refused_to_another_with_account_in_use(
    store: Arc<dyn Store>,
) {
    let a = business(&store, "A").await;
    let b = business(&store, "B").await;
    connected(&store, a.id, "whatsapp", "pn-1").await;
    let mut rec = record(b.id, "whatsapp", "pn-1");
    rec.webhook_secret_hash = Some(hash("another secret"));
    let refused = store.save_connection(rec).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(Conflict::AccountInUse))),
        "{refused:?}"
    );
    // The same account id on another channel is another account.
    connected(&store, b.id, "telegram", "pn-1").await;
}

async fn deactivating_wipes_secrets_and_frees_the_account_for_another_business(
    store: Arc<dyn Store>,
) {
    let a = business(&store, "A").await;
    let b = business(&store, "B").await;
    let wa = channel("whatsapp");
    let first = connected(&store, a.id, "whatsapp", "pn-1").await;
    store
        .deactivate(first.id, Some("disconnected"))
        .await
        .unwrap();
    let gone = store.integration_by_id(first.id).await.unwrap().unwrap();
    assert!(!gone.is_active);
    assert_eq!(gone.state, IntegrationState::NotConnected);
    assert_eq!(gone.last_error.as_deref(), Some("disconnected"));
    assert_eq!(store.credentials(first.id).await.unwrap(), None);
    let secret = hash("secret-pn-1");
    assert_eq!(
        store.active_by_webhook_secret(&wa, secret).await.unwrap(),
        None
    );
    assert_eq!(store.active_by_account(&wa, "pn-1").await.unwrap(), None);
    // A's inactive row is still A's integration for the channel.
    assert_eq!(store.integration_for(a.id, &wa).await.unwrap(), Some(gone));
    let taken = connected(&store, b.id, "whatsapp", "pn-1").await;
    assert_eq!(
        store.active_by_account(&wa, "pn-1").await.unwrap(),
        Some(taken)
    );
}

async fn look_ups_by_account_and_webhook_secret_find_only_active_integrations(
    store: Arc<dyn Store>,
) {
    let a = business(&store, "A").await;
    let tg = channel("telegram");
    let bot = connected(&store, a.id, "telegram", "bot-7").await;
    let secret = hash("secret-bot-7");
    let by_secret = store.active_by_webhook_secret(&tg, secret).await.unwrap();
    assert_eq!(by_secret.map(|i| i.id), Some(bot.id));
    let by_account = store.active_by_account(&tg, "bot-7").await.unwrap();
    assert_eq!(by_account.map(|i| i.id), Some(bot.id));
    let wa = channel("whatsapp");
    assert_eq!(store.active_by_account(&wa, "bot-7").await.unwrap(), None);
    assert_eq!(
        store
            .active_by_webhook_secret(&tg, hash("x"))
            .await
            .unwrap(),
        None
    );
}

async fn bulk_look_ups_find_what_single_look_ups_find(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let b = business(&store, "B").await;
    let wa = channel("whatsapp");
    let one = connected(&store, a.id, "whatsapp", "pn-1").await;
    let two = connected(&store, b.id, "whatsapp", "pn-2").await;
    let bot = connected(&store, b.id, "telegram", "pn-3").await;
    let c = business(&store, "C").await;
    let gone = connected(&store, c.id, "whatsapp", "pn-4").await;
    store.deactivate(gone.id, None).await.unwrap();

    let sorted = |mut found: Vec<switchboard_core::domain::Integration>| {
        found.sort_by_key(|i| i.id);
        found
    };
    // By id: every one that exists, active or not; unknown ids are left out.
    let unknown = switchboard_core::IntegrationId::new();
    let by_id = store
        .integrations_by_ids(&[two.id, unknown, one.id, gone.id])
        .await
        .unwrap();
    let mut expected = vec![
        one.clone(),
        two.clone(),
        store.integration_by_id(gone.id).await.unwrap().unwrap(),
    ];
    expected.sort_by_key(|i| i.id);
    assert_eq!(sorted(by_id), expected);
    assert!(store.integrations_by_ids(&[]).await.unwrap().is_empty());

    // By account: only active ones of that channel (pn-3 is a Telegram account, pn-4 is off).
    let accounts: Vec<String> = ["pn-1", "pn-2", "pn-3", "pn-4", "pn-9"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let by_account = store.active_by_accounts(&wa, &accounts).await.unwrap();
    let mut expected = vec![one.clone(), two];
    expected.sort_by_key(|i| i.id);
    assert_eq!(sorted(by_account), expected);
    let tg = channel("telegram");
    let bots = store.active_by_accounts(&tg, &accounts).await.unwrap();
    assert_eq!(bots, vec![bot.clone()]);
    assert!(store.active_by_accounts(&wa, &[]).await.unwrap().is_empty());

    // Credentials: those of active integrations only, the same bytes as one by one.
    let mut blobs = store
        .credentials_by_ids(&[one.id, gone.id, bot.id, unknown])
        .await
        .unwrap();
    blobs.sort_by_key(|(id, _)| *id);
    let mut expected = Vec::new();
    for id in [one.id, bot.id] {
        expected.push((id, store.credentials(id).await.unwrap().unwrap()));
    }
    expected.sort_by_key(|(id, _)| *id);
    let bytes = |list: &[(
        switchboard_core::IntegrationId,
        switchboard_core::crypto::EncryptedBlob,
    )]| {
        list.iter()
            .map(|(id, blob)| (*id, blob.as_bytes().to_vec()))
            .collect::<Vec<_>>()
    };
    assert_eq!(bytes(&blobs), bytes(&expected));
    assert!(store.credentials_by_ids(&[]).await.unwrap().is_empty());
}

async fn state_error_expiry_and_webhook_time_can_be_updated(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let i = connected(&store, a.id, "whatsapp", "pn-1").await;
    store
        .set_state(i.id, IntegrationState::Error, Some("boom"))
        .await
        .unwrap();
    store.set_last_error(i.id, Some("last")).await.unwrap();
    store.set_token_expiry(i.id, Some(at(60))).await.unwrap();
    store.touch_webhook(i.id, at(10)).await.unwrap();
    store.touch_webhook(i.id, at(5)).await.unwrap();
    let read = store.integration_by_id(i.id).await.unwrap().unwrap();
    assert_eq!(read.state, IntegrationState::Error);
    assert_eq!(read.state_reason.as_deref(), Some("boom"));
    assert_eq!(read.last_error.as_deref(), Some("last"));
    assert_eq!(read.token_expires_at, Some(micros(at(60))));
    assert_eq!(
        read.last_webhook_at,
        Some(micros(at(10))),
        "webhook time never goes back"
    );
    // Only active, connected integrations are due for a token refresh.
    assert!(store.expiring_before(at(120)).await.unwrap().is_empty());
    store
        .set_state(i.id, IntegrationState::Connected, None)
        .await
        .unwrap();
    let due = store.expiring_before(at(120)).await.unwrap();
    assert_eq!(due.iter().map(|i| i.id).collect::<Vec<_>>(), vec![i.id]);
    assert!(store.expiring_before(at(30)).await.unwrap().is_empty());
    store.set_token_expiry(i.id, None).await.unwrap();
    assert!(store.expiring_before(at(120)).await.unwrap().is_empty());
}

async fn updating_a_missing_integration_is_not_found(store: Arc<dyn Store>) {
    let id = switchboard_core::IntegrationId::new();
    let result = store.set_state(id, IntegrationState::Error, None).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    assert!(matches!(
        store.deactivate(id, None).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.integration_by_id(id).await.unwrap(), None);
    assert_eq!(store.credentials(id).await.unwrap(), None);
}

async fn a_business_lists_only_its_own_integrations(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let b = business(&store, "B").await;
    connected(&store, a.id, "whatsapp", "pn-a").await;
    connected(&store, a.id, "telegram", "bot-a").await;
    connected(&store, b.id, "whatsapp", "pn-b").await;
    let listed = store.list_integrations(a.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|i| i.business_id == a.id));
    assert_eq!(
        store
            .integration_for(b.id, &channel("telegram"))
            .await
            .unwrap(),
        None
    );
}

async fn account_events_are_recorded_newest_first(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let i = connected(&store, a.id, "telegram", "bot-1").await;
    for (kind, summary) in [
        ("bot_blocked", "user 42 blocked the bot"),
        ("template_status", "APPROVED"),
    ] {
        store
            .record_integration_event(i.id, kind, summary, &serde_json::json!({ "kind": kind }))
            .await
            .unwrap();
    }
    let events = store.integration_events(i.id, 10).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["template_status", "bot_blocked"]);
    assert_eq!(events[1].summary, "user 42 blocked the bot");
    assert_eq!(events[1].payload["kind"], "bot_blocked");
    assert_eq!(store.integration_events(i.id, 1).await.unwrap().len(), 1);
    let other = connected(&store, a.id, "whatsapp", "pn-9").await;
    assert!(
        store
            .integration_events(other.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

switchboard_store::on_both_backends! {
    async fn routing_identifiers_read_back_under_their_channel_names(backend: Backend) {
        use sqlx::Connection as _;
        use switchboard_store::testing::TestDatabase;

        let Some(db) = TestDatabase::create(backend).await else {
            return;
        };
        let store: Arc<dyn Store> = switchboard_store::open(&db.url).await.unwrap();
        store.migrate().await.unwrap();
        let a = business(&store, "A").await;
        let whatsapp = store.save_connection(record(a.id, "whatsapp", "pn-1")).await.unwrap();
        let telegram = store.save_connection(record(a.id, "telegram", "777")).await.unwrap();
        let sql = "SELECT phone_number_id, waba_id, bot_id FROM channel_integrations WHERE id = $1";
        type Names = (Option<String>, Option<String>, Option<String>);
        let read = |id: switchboard_core::IntegrationId| {
            let url = db.url.clone();
            async move {
                match backend {
                    Backend::Sqlite => {
                        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                        sqlx::query_as::<_, Names>(sql).bind(id.as_uuid()).fetch_one(&mut c).await
                    }
                    Backend::Postgres => {
                        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                        sqlx::query_as::<_, Names>(sql).bind(id.as_uuid()).fetch_one(&mut c).await
                    }
                }
                .unwrap()
            }
        };
        assert_eq!(
            read(whatsapp.id).await,
            (Some("pn-1".into()), Some("waba-1".into()), None)
        );
        assert_eq!(read(telegram.id).await.2.as_deref(), Some("777"));
        assert_eq!(read(telegram.id).await.0, None);
    }
}
