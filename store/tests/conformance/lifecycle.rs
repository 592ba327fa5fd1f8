//! Migrations, readiness and choosing a backend from a URL.

use std::sync::Arc;

use switchboard_core::StoreError;
use switchboard_core::store::{ConversationStore, MessageStore, Store};

use crate::support::{TempDir, business, database_url, in_postgres_database, pg_admin, pg_url};

switchboard_store::on_both_backends!(crate::support::fresh => ready_fails_before_migrate_and_succeeds_after, migrating_twice_is_harmless);

async fn ready_fails_before_migrate_and_succeeds_after(store: Arc<dyn Store>) {
    assert!(store.ready().await.is_err(), "ready before migrations");
    store.migrate().await.unwrap();
    store.ready().await.unwrap();
}

async fn migrating_twice_is_harmless(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    let kept = business(&store, "kept").await;
    store.migrate().await.unwrap();
    store.ready().await.unwrap();
    assert_eq!(store.get_business(kept.id).await.unwrap(), Some(kept));
}

#[tokio::test]
async fn open_creates_a_missing_sqlite_file_and_its_directory() {
    let dir = TempDir::new();
    let path = dir.0.join("a/b/switchboard.db");
    let store = switchboard_store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.migrate().await.unwrap();
    store.ready().await.unwrap();
    assert!(path.exists());
}

#[tokio::test]
async fn a_sqlite_file_that_cannot_be_created_is_unavailable() {
    let dir = TempDir::new();
    let blocker = dir.0.join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let url = format!("sqlite://{}/x.db", blocker.display());
    let result = switchboard_store::open(&url).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{:?}",
        result.err()
    );
}

#[tokio::test]
async fn open_picks_postgres_for_postgres_urls() {
    if pg_admin().await.is_none() {
        return;
    }
    let store = switchboard_store::open(&pg_url()).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    let alias = pg_url().replacen("postgres://", "postgresql://", 1);
    assert_eq!(
        switchboard_store::open(&alias).await.unwrap().backend(),
        "postgres"
    );
}

#[tokio::test]
async fn open_refuses_an_unknown_scheme_without_echoing_the_url() {
    let Err(error) = switchboard_store::open("mysql://root:hunter2@db/x").await else {
        panic!("mysql:// was accepted");
    };
    let message = error.to_string();
    assert!(message.contains("mysql"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn postgres_notifies_listeners_of_stored_and_replayed_webhooks_and_pending_jobs() {
    use switchboard_core::store::InboxState;
    use switchboard_store::Topic;

    in_postgres_database(|name| {
        let url = database_url(&name);
        async move {
            let store = switchboard_store::open(&url).await.unwrap();
            store.migrate().await.unwrap();
            let mut subscription = listening(&url, None).await;
            let stored = || store.insert_webhook_event(a_webhook(chrono::Utc::now()));
            let first = stored().await.unwrap();
            assert_eq!(next_wake_up(&mut subscription, IN_TIME).await, Topic::Inbox);
            // A second webhook right after the first falls within the writer's announcement
            // interval: it is announced once the interval is over, not left to polling.
            stored().await.unwrap();
            assert_eq!(
                next_wake_up(&mut subscription, "the later webhook announced too").await,
                Topic::Inbox
            );
            let business = crate::support::business(&store, "A").await;
            let queued = || store.enqueue_job(a_job(business.id, chrono::Utc::now()));
            queued().await.unwrap();
            assert_eq!(next_wake_up(&mut subscription, IN_TIME).await, Topic::Jobs);
            // A replayed webhook is announced like a stored one; a requeue that changes
            // nothing announces nothing (the next notification is the job's).
            store
                .finish_webhook_event(first, InboxState::Quarantined, Some("unparseable"))
                .await
                .unwrap();
            assert!(store.requeue_webhook_event(first).await.unwrap());
            assert_eq!(
                next_wake_up(&mut subscription, "the replay announced").await,
                Topic::Inbox
            );
            assert!(!store.requeue_webhook_event(first).await.unwrap());
            queued().await.unwrap();
            assert_eq!(next_wake_up(&mut subscription, IN_TIME).await, Topic::Jobs);
            assert!(
                switchboard_store::subscribe("sqlite://x.db", None)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    })
    .await;
}

/// Each instance signs its wake-ups; its own listener passes over them (the instance woke its
/// workers in process already) and hears every other instance's. Notifications arrive in
/// commit order, so one that is not skipped would be the first received.
#[tokio::test]
async fn postgres_listeners_pass_over_their_own_instances_wake_ups() {
    use switchboard_store::Topic;

    in_postgres_database(|name| {
        let url = database_url(&name);
        async move {
            let mine = switchboard_store::open(&url).await.unwrap();
            mine.migrate().await.unwrap();
            let other = switchboard_store::open(&url).await.unwrap();
            let tag = mine
                .wake_up_tag()
                .expect("a PostgreSQL store signs its wake-ups");
            assert_ne!(Some(tag), other.wake_up_tag());
            let mut subscription = listening(&url, Some(tag)).await;
            let business = crate::support::business(&mine, "A").await;
            let job = async |store: &Arc<dyn Store>| {
                store
                    .enqueue_job(a_job(business.id, chrono::Utc::now()))
                    .await
                    .unwrap();
            };
            let webhook = async |store: &Arc<dyn Store>| {
                store
                    .insert_webhook_event(a_webhook(chrono::Utc::now()))
                    .await
                    .unwrap();
            };
            job(&mine).await;
            webhook(&other).await;
            assert_eq!(next_wake_up(&mut subscription, IN_TIME).await, Topic::Inbox);
            webhook(&mine).await;
            job(&other).await;
            assert_eq!(next_wake_up(&mut subscription, IN_TIME).await, Topic::Jobs);

            // Without a tag of its own, a listener hears every instance.
            let mut everything = listening(&url, None).await;
            job(&mine).await;
            assert_eq!(next_wake_up(&mut everything, IN_TIME).await, Topic::Jobs);
        }
    })
    .await;
}

/// The inbox writer keeps one connection. When PostgreSQL ends it (a restart, an idle
/// timeout, an administrator), the batch on it fails and is reported to its callers (the
/// provider gets an error and delivers again); the next batch is stored on a new connection.
#[tokio::test]
async fn postgres_inbox_writer_recovers_from_a_lost_connection() {
    use switchboard_core::store::NewWebhookEvent;

    in_postgres_database(|name| async move {
        let mut admin = pg_admin()
            .await
            .expect("reachable: the database was just created");
        let event = |body: &'static [u8]| NewWebhookEvent {
            channel: crate::support::channel("whatsapp"),
            integration_id: None,
            body: bytes::Bytes::from_static(body),
            received_at: chrono::Utc::now(),
        };
        let store = switchboard_store::open(&database_url(&name)).await.unwrap();
        store.migrate().await.unwrap();
        let first = store.insert_webhook_event(event(b"first")).await.unwrap();
        // The writer's connection is the one whose last statement was the inbox insert.
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND query LIKE '%INSERT INTO webhook_events%'",
        )
        .bind(&name)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        for _ in 0..500 {
            let left: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND query LIKE '%INSERT INTO webhook_events%'",
            )
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(ended, [true], "exactly one writer connection");
        let lost = store.insert_webhook_event(event(b"lost")).await;
        assert!(
            lost.is_err(),
            "a batch on the ended connection must fail, not vanish"
        );
        let second = store.insert_webhook_event(event(b"second")).await.unwrap();
        for (id, body) in [(first, &b"first"[..]), (second, &b"second"[..])] {
            let stored = store.webhook_event(id).await.unwrap().expect("stored");
            assert_eq!(stored.body, body);
        }
    })
    .await;
}

/// A queue's claim must not read the whole backlog once its table has grown. Left to its
/// estimates, PostgreSQL reads every pending row and sorts them whenever it believes there are
/// few: with a plan it settled on for the prepared claim while the table was nearly empty (the
/// inbox here), or with statistics that predate the backlog (the jobs below: the table was never
/// analysed). A flood makes that the whole backlog on every claim.
#[tokio::test]
async fn postgres_inbox_claims_read_a_batch_not_the_backlog_after_the_table_grows() {
    use switchboard_core::store::InboxStore;

    in_postgres_database(|name| async move {
        let store = small_pool_store(&name).await;
        let now = chrono::Utc::now();
        for _ in 0..8 {
            store.insert_webhook_event(a_webhook(now)).await.unwrap();
        }
        // Claimed one by one while the table is small: more than the five executions after
        // which PostgreSQL would otherwise settle on a plan for good.
        for _ in 0..8 {
            assert_eq!(
                store
                    .claim_webhook_events(1, LEASE, now)
                    .await
                    .unwrap()
                    .len(),
                1
            );
        }
        sqlx::query(
            "INSERT INTO webhook_events (id, channel, body, received_at) \
             SELECT gen_random_uuid(), 'whatsapp', '\\x7b7d', now() + g * interval '1 microsecond' \
             FROM generate_series(1, $1) g",
        )
        .bind(BACKLOG)
        .execute(store.pool())
        .await
        .unwrap();
        let (claimed, read) = index_entries_read_by(&store, "webhook_events_pending_idx", async {
            store
                .claim_webhook_events(16, LEASE, now)
                .await
                .unwrap()
                .len()
        })
        .await;
        assert_eq!(claimed, 16);
        assert!(
            read < 1_000,
            "a claim of 16 read {read} index entries of {BACKLOG} pending rows"
        );
    })
    .await;
}

/// The same for the jobs queue.
#[tokio::test]
async fn postgres_job_claims_read_a_batch_not_the_backlog_after_the_table_grows() {
    use switchboard_core::store::{JobStore, TenantStore};

    in_postgres_database(|name| async move {
        let store = small_pool_store(&name).await;
        let business = store.create_business("A").await.unwrap();
        let now = chrono::Utc::now();
        for _ in 0..8 {
            store.enqueue_job(a_job(business.id, now)).await.unwrap();
        }
        for _ in 0..8 {
            assert_eq!(store.claim_jobs("w", 1, LEASE, now).await.unwrap().len(), 1);
        }
        sqlx::query(
            "INSERT INTO jobs (id, kind, business_id, payload, max_attempts, run_at) \
             SELECT gen_random_uuid(), 'send', $2, '{}', 3, now() - interval '1 hour' \
                 + g * interval '1 microsecond' \
             FROM generate_series(1, $1) g",
        )
        .bind(BACKLOG)
        .bind(business.id.as_uuid())
        .execute(store.pool())
        .await
        .unwrap();
        let (claimed, read) = index_entries_read_by(&store, "jobs_due_idx", async {
            store.claim_jobs("w", 16, LEASE, now).await.unwrap().len()
        })
        .await;
        assert_eq!(claimed, 16);
        assert!(
            read < 1_000,
            "a claim of 16 read {read} index entries of {BACKLOG} due jobs"
        );
    })
    .await;
}

/// The job workers' bulk reads of messages and conversations must probe their keys, not read
/// the whole table, once it has grown: a plan settled on while the tables were nearly empty
/// hashed every row on every call.
#[tokio::test]
async fn postgres_bulk_reads_probe_their_keys_after_the_tables_grow() {
    use switchboard_core::{BusinessId, ConversationId, MessageId};

    in_postgres_database(|name| async move {
        let store = Arc::new(small_pool_store(&name).await);
        let dyn_store: Arc<dyn Store> = store.clone();
        let (_, first) = crate::support::setup(&dyn_store).await;
        let first_message = crate::support::stored(
            &dyn_store,
            &first,
            Some("wamid.first"),
            switchboard_core::domain::DeliveryStatus::Sent,
        )
        .await;
        // More than the five executions after which PostgreSQL may settle on a plan for good.
        for _ in 0..8 {
            assert_eq!(
                store.messages_by_ids(&[first_message]).await.unwrap().len(),
                1
            );
            assert_eq!(
                store
                    .conversations_by_ids(&[(first.business_id, first.id)])
                    .await
                    .unwrap()
                    .len(),
                1
            );
        }
        // A conversation and a message for each of `BACKLOG` chats.
        sqlx::query(
            "INSERT INTO conversations (id, business_id, integration_id, channel_type, \
                 external_chat_id) \
             SELECT gen_random_uuid(), $2, $3, 'whatsapp', 'chat-' || g \
             FROM generate_series(1, $1) g",
        )
        .bind(BACKLOG)
        .bind(first.business_id.as_uuid())
        .bind(first.integration_id.as_uuid())
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO messages (id, conversation_id, integration_id, direction, type, status) \
             SELECT gen_random_uuid(), id, integration_id, 'inbound', 'text', 'delivered' \
             FROM conversations",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let picked: Vec<(uuid::Uuid, uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
            "SELECT m.id, c.business_id, c.id FROM messages m \
             JOIN conversations c ON c.id = m.conversation_id ORDER BY m.id LIMIT 64",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let messages: Vec<MessageId> = picked
            .iter()
            .map(|(m, _, _)| MessageId::from_uuid(*m))
            .collect();
        let conversations: Vec<(BusinessId, ConversationId)> = picked
            .iter()
            .map(|(_, b, c)| (BusinessId::from_uuid(*b), ConversationId::from_uuid(*c)))
            .collect();

        let (found, read) = rows_scanned_in(&store, "messages", async {
            store.messages_by_ids(&messages).await.unwrap().len()
        })
        .await;
        assert_eq!(found, 64);
        assert!(read < 1_000, "reading 64 messages scanned {read} rows");
        let (found, read) = rows_scanned_in(&store, "conversations", async {
            store
                .conversations_by_ids(&conversations)
                .await
                .unwrap()
                .len()
        })
        .await;
        assert_eq!(found, 64);
        assert!(read < 1_000, "reading 64 conversations scanned {read} rows");
        // The tenant still bounds the read.
        let other = BusinessId::new();
        assert!(
            store
                .conversations_by_ids(&[(other, conversations[0].1)])
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

/// What `read` returns, and how many rows of `table` sequential scans read meanwhile (as the
/// pool's one connection reports them).
async fn rows_scanned_in(
    store: &switchboard_store::PgStore,
    table: &str,
    read: impl std::future::Future<Output = usize>,
) -> (usize, i64) {
    const ROWS_SCANNED: &str = "SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = $1";
    statistic_growth(store, ROWS_SCANNED, table, read).await
}

/// A `LISTEN` on the database at `url`, passing over notifications tagged `own`.
async fn listening(url: &str, own: Option<&str>) -> switchboard_store::Subscription {
    switchboard_store::subscribe(url, own)
        .await
        .unwrap()
        .expect("a postgres subscription")
}

const IN_TIME: &str = "a notification in time";

/// The next wake-up `subscription` hears, within 5 s (`expected` says which one is awaited).
async fn next_wake_up(
    subscription: &mut switchboard_store::Subscription,
    expected: &str,
) -> switchboard_store::Topic {
    tokio::time::timeout(std::time::Duration::from_secs(5), subscription.recv())
        .await
        .expect(expected)
        .unwrap()
}

/// An empty WhatsApp webhook received at `at`.
fn a_webhook(at: chrono::DateTime<chrono::Utc>) -> switchboard_core::store::NewWebhookEvent {
    switchboard_core::store::NewWebhookEvent {
        channel: crate::support::channel("whatsapp"),
        integration_id: None,
        body: bytes::Bytes::from_static(b"{}"),
        received_at: at,
    }
}

/// A send job of `business`, due at `at`, in no queue.
fn a_job(
    business: switchboard_core::BusinessId,
    at: chrono::DateTime<chrono::Utc>,
) -> switchboard_core::store::NewJob {
    switchboard_core::store::NewJob {
        kind: "send".into(),
        business_id: business,
        integration_id: None,
        payload: serde_json::json!({}),
        run_at: at,
        dedupe_key: None,
        queue_key: None,
        max_attempts: 3,
    }
}

const LEASE: std::time::Duration = std::time::Duration::from_secs(60);
/// Rows added to a queue after its claim has run a few times.
const BACKLOG: i64 = 20_000;

/// A migrated store on `name` whose pool has one connection, so every statement runs on it.
async fn small_pool_store(name: &str) -> switchboard_store::PgStore {
    let store = switchboard_store::PgStore::connect_with_pool_size(&database_url(name), 1)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

/// The pool's plans are generic (planned once per statement, whatever the parameters), so a
/// list whose right plan depends on a parameter is written as separate statements: the dead
/// jobs and the quarantined webhooks each read their own partial index, and a page of messages
/// or of conversations after a cursor seeks to the cursor in an index of the list's own order.
/// One statement for every state or cursor read the whole table, or the whole conversation, for
/// each page; the conversations list, ordered by an expression no index held, sorted all of a
/// business's conversations for each page.
#[tokio::test]
async fn postgres_lists_read_their_page_not_the_table() {
    use switchboard_core::store::{
        ConversationStore, InboxState, InboxStore, JobState, JobStore, Page,
    };
    use switchboard_core::{ConversationId, MessageId};

    in_postgres_database(|name| async move {
        let store = Arc::new(small_pool_store(&name).await);
        let dyn_store: Arc<dyn Store> = store.clone();
        let (_, conversation) = crate::support::setup(&dyn_store).await;
        for sql in [
            "INSERT INTO messages (id, conversation_id, integration_id, direction, type, status) \
             SELECT gen_random_uuid(), $2, $3, 'inbound', 'text', 'delivered' \
             FROM generate_series(1, $1)",
            "INSERT INTO jobs (id, kind, business_id, payload, max_attempts, run_at, state) \
             SELECT gen_random_uuid(), 'send', $4, '{}', 3, now(), \
                 CASE WHEN g <= 3 THEN 'dead' ELSE 'done' END \
             FROM generate_series(1, $1) g",
            "INSERT INTO webhook_events (id, channel, body, received_at, state) \
             SELECT gen_random_uuid(), 'whatsapp', '\\x7b7d', now(), \
                 CASE WHEN g <= 3 THEN 'quarantined' ELSE 'processed' END \
             FROM generate_series(1, $1) g",
            // The business's other conversations, one a second further back.
            "INSERT INTO conversations (id, business_id, integration_id, channel_type, \
                 external_chat_id, last_message_at) \
             SELECT gen_random_uuid(), $4, $3, 'whatsapp', 'chat-' || g, \
                 now() - g * interval '1 second' \
             FROM generate_series(1, $1) g",
        ] {
            sqlx::query(sql)
                .bind(BACKLOG)
                .bind(conversation.id.as_uuid())
                .bind(conversation.integration_id.as_uuid())
                .bind(conversation.business_id.as_uuid())
                .execute(store.pool())
                .await
                .unwrap();
        }
        // The 30th oldest message by id, and the 30th least recent conversation: a page before
        // either walks past, or sorts, almost all the others unless it seeks.
        let message: uuid::Uuid =
            sqlx::query_scalar("SELECT id FROM messages ORDER BY id OFFSET 29 LIMIT 1")
                .fetch_one(store.pool())
                .await
                .unwrap();
        let chat: uuid::Uuid = sqlx::query_scalar(
            "SELECT id FROM conversations \
             ORDER BY COALESCE(last_message_at, created_at), id OFFSET 29 LIMIT 1",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        let (business, s) = (conversation.business_id, &store);
        let messages = Page {
            before: Some(MessageId::from_uuid(message)),
            limit: 20,
        };
        let conversations = Page {
            before: Some(ConversationId::from_uuid(chat)),
            limit: 20,
        };

        let page = async {
            s.list_messages(conversation.id, messages)
                .await
                .map(|l| l.len())
        };
        lists_reading_little(s, "messages", "a page of messages", 20, page).await;
        let page = async {
            s.list_conversations(business, conversations)
                .await
                .map(|l| l.len())
        };
        lists_reading_little(s, "conversations", "a page of conversations", 20, page).await;
        let dead = async {
            s.list_jobs(business, JobState::Dead, 50)
                .await
                .map(|l| l.len())
        };
        lists_reading_little(s, "jobs", "the dead jobs", 3, dead).await;
        let held = async {
            let listed = s.webhook_events_in_state(InboxState::Quarantined, 50).await;
            listed.map(|l| l.len())
        };
        lists_reading_little(s, "webhook_events", "the quarantined webhooks", 3, held).await;
        // A retention sweep that finds nothing old walks no further than the old ids.
        let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
        let sweep = async {
            let swept = s.delete_processed_webhook_events(yesterday, 1_000).await;
            swept.map(|n| usize::try_from(n).unwrap())
        };
        lists_reading_little(s, "webhook_events", "the old processed webhooks", 0, sweep).await;
    })
    .await;
}

/// Asserts that `list` (`what`) lists `expected` items and reads fewer than 1,000 rows of
/// `table` to do so.
async fn lists_reading_little(
    store: &switchboard_store::PgStore,
    table: &str,
    what: &str,
    expected: usize,
    list: impl std::future::Future<Output = Result<usize, switchboard_core::StoreError>>,
) {
    let (listed, read) = rows_read_from(store, table, async { list.await.unwrap() }).await;
    assert_eq!(listed, expected, "{what}");
    assert!(read < 1_000, "listing {what} ({listed}) read {read} rows");
}

/// What `read` returns, and how many rows of `table` it read, by scanning it or through an
/// index (as the pool's one connection reports them).
async fn rows_read_from(
    store: &switchboard_store::PgStore,
    table: &str,
    read: impl std::future::Future<Output = usize>,
) -> (usize, i64) {
    const ROWS_READ: &str = "SELECT seq_tup_read + idx_tup_fetch FROM pg_stat_user_tables \
         WHERE relname = $1";
    statistic_growth(store, ROWS_READ, table, read).await
}

/// What `claim` returns, and how many entries of `index` it read (as the pool's one connection
/// reports them).
async fn index_entries_read_by(
    store: &switchboard_store::PgStore,
    index: &str,
    claim: impl std::future::Future<Output = usize>,
) -> (usize, i64) {
    const ENTRIES_READ: &str =
        "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = $1";
    statistic_growth(store, ENTRIES_READ, index, claim).await
}

/// What `work` returns, and how much the statistic `sql` reads for `name` grew meanwhile.
async fn statistic_growth(
    store: &switchboard_store::PgStore,
    sql: &str,
    name: &str,
    work: impl std::future::Future<Output = usize>,
) -> (usize, i64) {
    let so_far = || async {
        sqlx::query("SELECT pg_stat_force_next_flush()")
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>(sql)
            .bind(name)
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    let before = so_far().await;
    let returned = work.await;
    (returned, so_far().await - before)
}
