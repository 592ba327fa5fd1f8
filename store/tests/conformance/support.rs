//! Test databases for the conformance suite (a temporary SQLite file, a throw-away PostgreSQL
//! database) and small fixtures shared by the tests.

use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Once};

use chrono::{DateTime, Duration, Utc};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use switchboard_core::crypto::EncryptedBlob;
use switchboard_core::domain::{DeliveryStatus, Integration, MessageKind};
use switchboard_core::store::{
    Business, ConnectionRecord, Conversation, ConversationUpsert, Direction, Inserted, NewMessage,
    SecretHash, StatusChange, Store,
};
use switchboard_core::{BusinessId, ChannelName, MessageId};
use switchboard_store::testing::Backend;
use switchboard_store::{PgStore, SqliteStore};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Whether a test starts on a migrated store or on an empty database.
#[derive(Debug, Clone, Copy)]
pub enum Prepare {
    Migrated,
    Fresh,
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("sb-store-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn prepared(store: Arc<dyn Store>, prepare: Prepare) -> Arc<dyn Store> {
    if let Prepare::Migrated = prepare {
        store.migrate().await.expect("migrate");
    }
    store
}

/// Runs `test` on a migrated store of the backend (the runner of `on_both_backends!`).
pub async fn migrated<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    on_backend(backend, Prepare::Migrated, test).await;
}

/// Runs `test` on an empty database of the backend.
pub async fn fresh<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    on_backend(backend, Prepare::Fresh, test).await;
}

async fn on_backend<F, Fut>(backend: Backend, prepare: Prepare, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    match backend {
        Backend::Sqlite => on_sqlite(prepare, test).await,
        Backend::Postgres => on_postgres(prepare, test).await,
    }
}

/// Runs `test` on a fresh SQLite file (in a directory that does not exist yet).
pub async fn on_sqlite<F, Fut>(prepare: Prepare, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = TempDir::new();
    let url = format!("sqlite://{}/nested/test.db", dir.0.display());
    let store = SqliteStore::connect(&url).await.expect("open SQLite");
    test(prepared(Arc::new(store), prepare).await).await;
}

/// The server the PostgreSQL variants run on.
pub fn pg_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

/// Connects to the admin database; `None` (after saying so loudly) when the server is
/// unreachable outside CI. Under CI an unreachable server fails the test.
pub async fn pg_admin() -> Option<PgConnection> {
    let url = pg_url();
    match PgConnection::connect(&url).await {
        Ok(conn) => Some(conn),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL unreachable at {} under CI: {e}", redacted(&url))
        }
        Err(e) => {
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            static SAY_ONCE: Once = Once::new();
            SAY_ONCE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** SKIPPED: PostgreSQL unreachable at {} ({e}): every postgres \
                     conformance test is skipped; set TEST_DATABASE_URL ***\n",
                    redacted(&url)
                );
            });
            None
        }
    }
}

fn redacted(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "<malformed URL>".to_owned(),
        |mut u| {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        },
    )
}

/// Runs `test` on a store of its own, on a database dropped afterwards whatever the outcome.
pub async fn on_postgres<F, Fut>(prepare: Prepare, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    in_postgres_database(move |name| async move {
        // As the gateway connects, with the pool's session settings.
        let store = PgStore::connect_with_pool_size(&database_url(&name), 5)
            .await
            .expect("connect to the test database");
        let pool = store.pool().clone();
        test(prepared(Arc::new(store), prepare).await).await;
        pool.close().await;
    })
    .await;
}

/// Runs `test` with the name of a new, empty PostgreSQL database (see [`database_url`]), which
/// is dropped afterwards whatever the outcome. Skipped when PostgreSQL is unreachable.
pub async fn in_postgres_database<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(mut admin) = pg_admin().await else {
        return;
    };
    let name = format!("sb_t_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let outcome = tokio::spawn(test(name.clone())).await;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop test database");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The URL of the database `name` on the test server.
pub fn database_url(name: &str) -> String {
    let mut url = url::Url::parse(&pg_url()).expect("URL");
    url.set_path(name);
    url.to_string()
}

/// A fixed instant plus `secs` seconds, with sub-microsecond noise that the store truncates.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap() + Duration::seconds(secs)
}

pub fn channel(name: &str) -> ChannelName {
    ChannelName::parse(name).unwrap()
}

pub fn hash(seed: &str) -> SecretHash {
    SecretHash::of(seed.as_bytes())
}

pub async fn business(store: &Arc<dyn Store>, name: &str) -> Business {
    store.create_business(name).await.expect("create business")
}

/// What connecting `account` on `channel` for `business` writes.
pub fn record(business: BusinessId, channel_name: &str, account: &str) -> ConnectionRecord {
    ConnectionRecord {
        business_id: business,
        channel: channel(channel_name),
        channel_name: Some(format!("{channel_name} {account}")),
        account_id: account.to_owned(),
        parent_account_id: Some("waba-1".into()),
        details: serde_json::json!({ "display_phone_number": "+1 555 0100" }),
        credentials: EncryptedBlob::from_stored(vec![1, 0xff, 0, 42]),
        webhook_secret_hash: Some(hash(&format!("secret-{account}"))),
        token_expires_at: Some(at(3600)),
    }
}

/// A connected integration.
pub async fn connected(
    store: &Arc<dyn Store>,
    business: BusinessId,
    channel_name: &str,
    account: &str,
) -> Integration {
    store
        .save_connection(record(business, channel_name, account))
        .await
        .expect("save connection")
}

/// Microsecond precision, as stored.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

pub fn upsert(i: &Integration, chat: &str, name: Option<&str>, secs: i64) -> ConversationUpsert {
    ConversationUpsert {
        business_id: i.business_id,
        integration_id: i.id,
        channel_type: i.channel.clone(),
        external_chat_id: chat.to_owned(),
        contact_name: name.map(str::to_owned),
        last_message_at: at(secs),
        window_expires_at: None,
    }
}

pub fn message(c: &Conversation, provider_id: Option<&str>, status: DeliveryStatus) -> NewMessage {
    NewMessage {
        conversation_id: c.id,
        integration_id: c.integration_id,
        direction: Direction::Outbound,
        provider_message_id: provider_id.map(str::to_owned),
        kind: MessageKind::Other("poll_vote".into()),
        text: Some("héllo".into()),
        payload: serde_json::json!({ "raw": [1, 2] }),
        status,
        provider_timestamp: Some(at(1)),
    }
}

/// A business, a WhatsApp integration and one conversation.
pub async fn setup(store: &Arc<dyn Store>) -> (Integration, Conversation) {
    let a = business(store, "A").await;
    let i = connected(store, a.id, "whatsapp", "pn-1").await;
    let c = store
        .upsert_conversation(upsert(&i, "15550001", Some("Ann"), 0))
        .await
        .unwrap();
    (i, c)
}

/// Inserts `message(c, provider_id, status)`, which must be new; its id.
pub async fn stored(
    store: &Arc<dyn Store>,
    c: &Conversation,
    provider_id: Option<&str>,
    status: DeliveryStatus,
) -> MessageId {
    new_id(
        store
            .insert_message(message(c, provider_id, status))
            .await
            .unwrap(),
    )
}

pub fn new_id(inserted: Inserted) -> MessageId {
    match inserted {
        Inserted::New(id) => id,
        Inserted::Duplicate(id) => panic!("unexpected duplicate {id}"),
    }
}

pub fn change(c: &Conversation, status: DeliveryStatus, secs: i64) -> StatusChange<'static> {
    StatusChange {
        integration_id: c.integration_id,
        provider_message_id: "wamid.s",
        status,
        at: at(secs),
        error_code: None,
        error_reason: None,
    }
}
