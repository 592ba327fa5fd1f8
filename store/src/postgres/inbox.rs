//! The webhook inbox's inserts on PostgreSQL, group-committed ([`InboxWriter`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgExecutor, PgPool};
use switchboard_core::store::{NewWebhookEvent, StoreResult};
use switchboard_core::{EventId, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::{ACQUIRE_TIMEOUT, ts};
use crate::error::db;

/// The inbox's multi-row insert, from one array per column.
macro_rules! insert_sql {
    () => {
        "INSERT INTO webhook_events (id, channel, integration_id, body, received_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::bytea[], $5::timestamptz[])"
    };
}
/// Wakes the inbox workers of every instance (delivered when the transaction commits).
macro_rules! notify_sql {
    () => {
        concat!(
            "SELECT pg_notify('switchboard_inbox', ",
            crate::notify::notify_payload!(),
            ")"
        )
    };
}
pub(super) use notify_sql;

/// Group commit of webhook inserts.
///
/// `insert_webhook_event` is the one write between a provider and its `200`, and the commit's
/// flush to disk dominates it. So callers queue their row and wait; a writer takes
/// everything waiting (up to [`MAX_ROWS`] rows or [`MAX_BYTES`] of bodies), inserts it as one
/// multi-row `INSERT` (one transaction, one WAL flush) and answers every caller only after the
/// commit. Batches form while the previous commit is in flight; nothing waits on a timer, so a
/// lone request costs about what a plain insert does. A failed batch fails every caller in it.
///
/// The writer also announces new rows to the workers of every instance (`NOTIFY` on the inbox
/// channel, see [`crate::notify`]), at most once per [`NOTIFY_INTERVAL`] ([`Announcements`]).
///
/// The writer is a thread of its own with a connection of its own, started with the first
/// insert; it stops when the last clone of the store (holding the queue's sender) is dropped.
/// See [`spawn_writer`] for why a thread.
#[derive(Debug, Clone, Default)]
pub(crate) struct InboxWriter {
    queue: Arc<OnceLock<mpsc::Sender<Pending>>>,
}

/// Most rows in one `INSERT`.
const MAX_ROWS: usize = 256;
/// Most body bytes in one `INSERT` (a body may be megabytes).
const MAX_BYTES: usize = 8 << 20;
/// Rows queued before callers wait for room.
const QUEUE: usize = 4096;

/// One caller's row, its id and where its outcome goes.
struct Pending {
    id: EventId,
    event: NewWebhookEvent,
    done: oneshot::Sender<StoreResult<()>>,
}

impl InboxWriter {
    /// Inserts `event` as `id`; returns once it is committed.
    pub(super) async fn insert(
        &self,
        pool: &PgPool,
        id: EventId,
        event: NewWebhookEvent,
    ) -> StoreResult<()> {
        let queue = self.queue.get_or_init(|| spawn_writer(pool));
        let (done, committed) = oneshot::channel();
        if let Err(mpsc::error::SendError(pending)) = queue.send(Pending { id, event, done }).await
        {
            // The writer is gone (or never started): the database directly, then.
            return insert_rows(pool, std::slice::from_ref(&pending), Announce::Yes).await;
        }
        committed
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the inbox writer stopped".into())))
    }
}

/// Starts the writer on a thread of its own, with a single-threaded runtime and a connection of
/// its own (made from the pool's settings, outside the pool's count).
///
/// Every webhook waits on the writer's cycle, and as a task among the request handlers each
/// step of it waited behind them for a turn (BENCHMARKS.md, "The writer on its own thread").
///
/// Should the thread not start, the queue's receiver is dropped with it and every insert
/// goes to the database directly (see [`InboxWriter::insert`]).
fn spawn_writer(pool: &PgPool) -> mpsc::Sender<Pending> {
    let (sender, receiver) = mpsc::channel(QUEUE);
    let options = pool.connect_options();
    let started = std::thread::Builder::new()
        .name("inbox-writer".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(write(&options, receiver)),
                Err(error) => {
                    tracing::error!(%error, "inbox writer: no runtime; inserting row by row");
                }
            }
        });
    if let Err(error) = started {
        tracing::error!(%error, "inbox writer: no thread; inserting row by row");
    }
    sender
}

/// One writer: while its commit is in flight the next batch forms in the queue. (Two or four
/// writers measured no faster: the WAL flush is the limit, and PostgreSQL already shares one
/// flush among concurrent commits. Two in flight with commits kept in order measured slower,
/// and so did `COPY`: each costs round trips that a single `INSERT` does not.)
///
/// After a failed batch the connection is closed and the next batch connects anew.
async fn write(options: &PgConnectOptions, mut queue: mpsc::Receiver<Pending>) {
    let mut connection: Option<PgConnection> = None;
    let mut announcements = Announcements::default();
    let mut previous = 0;
    loop {
        // `recv` may be cancelled; `next_batch` awaits nothing else.
        let next = match announcements.owed_at() {
            None => next_batch(&mut queue).await,
            Some(at) => match tokio::time::timeout_at(at, next_batch(&mut queue)).await {
                Ok(next) => next,
                Err(_) => {
                    announce(options, &mut connection).await;
                    announcements.made(Instant::now());
                    continue;
                }
            },
        };
        let Some((mut batch, mut bytes)) = next else {
            break;
        };
        if lingers(previous, batch.len()) {
            // The writer's own thread: sleeping holds up nothing but this batch.
            std::thread::sleep(LINGER);
            top_up(&mut queue, &mut batch, &mut bytes);
        }
        previous = batch.len();
        let now = Instant::now();
        let announced = announcements.due(now);
        let outcome = insert_batch(options, &mut connection, &batch, bytes, announced).await;
        if outcome.is_ok() {
            announcements.stored(announced, now);
        }
        for pending in batch {
            let _ = pending.done.send(match &outcome {
                Ok(()) => Ok(()),
                Err(error) => Err(copy_error(error)),
            });
        }
    }
    if announcements.owed_at().is_some() {
        announce(options, &mut connection).await;
    }
    if let Some(connection) = connection {
        let _ = connection.close().await;
    }
}

/// The writer's connection, connecting first if it has none.
async fn connected<'c>(
    options: &PgConnectOptions,
    slot: &'c mut Option<PgConnection>,
) -> StoreResult<&'c mut PgConnection> {
    let connection = match slot.take() {
        Some(connection) => connection,
        // As long as a pooled connection would be waited for.
        None => tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(options))
            .await
            .map_err(|_| StoreError::Unavailable("cannot connect to PostgreSQL in time".into()))?
            .map_err(db)?,
    };
    Ok(slot.insert(connection))
}

/// The shortest time between two announcements of new inbox rows by one writer.
///
/// PostgreSQL serialises notifying commits, so a `NOTIFY` per batch slowed every commit under a
/// flood (BENCHMARKS.md, "Announcements in the batch's statement"). With one more after the
/// last batch, no instance waits longer than this for rows it has not been told about.
const NOTIFY_INTERVAL: Duration = Duration::from_millis(10);

/// Whether a batch is stored with an announcement of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announce {
    Yes,
    No,
}

/// When the writer last announced new rows, and whether rows have been stored since without
/// an announcement.
#[derive(Debug, Default)]
struct Announcements {
    last: Option<Instant>,
    owed: bool,
}

impl Announcements {
    /// Whether a batch stored at `now` is to announce itself.
    fn due(&self, now: Instant) -> Announce {
        match self.last {
            Some(last) if now < last + NOTIFY_INTERVAL => Announce::No,
            _ => Announce::Yes,
        }
    }

    /// A batch was stored at `now`, `announced` or not.
    fn stored(&mut self, announced: Announce, now: Instant) {
        match announced {
            Announce::Yes => self.made(now),
            Announce::No => self.owed = true,
        }
    }

    /// An announcement was made (or tried: polling is the fallback, and retrying at once
    /// against a database that is down would spin).
    fn made(&mut self, now: Instant) {
        self.last = Some(now);
        self.owed = false;
    }

    /// When the announcement that stored rows are owed is to be made, if one is owed.
    fn owed_at(&self) -> Option<Instant> {
        self.owed.then(|| {
            self.last
                .map_or_else(Instant::now, |last| last + NOTIFY_INTERVAL)
        })
    }
}

/// Announces new inbox rows on the writer's connection. A failure is left to polling.
async fn announce(options: &PgConnectOptions, slot: &mut Option<PgConnection>) {
    let Ok(connection) = connected(options, slot).await else {
        return;
    };
    if sqlx::query(NOTIFY).execute(connection).await.is_err() {
        *slot = None;
    }
}

/// Waits for one row, then takes whatever else is already waiting, up to the caps; returns the
/// rows and their body bytes.
async fn next_batch(queue: &mut mpsc::Receiver<Pending>) -> Option<(Vec<Pending>, usize)> {
    let first = queue.recv().await?;
    let mut bytes = first.event.body.len();
    let mut batch = vec![first];
    top_up(queue, &mut batch, &mut bytes);
    Some((batch, bytes))
}

/// Adds to `batch` (`bytes` of bodies) whatever rows are waiting, up to the caps.
fn top_up(queue: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>, bytes: &mut usize) {
    while batch.len() < MAX_ROWS && *bytes < MAX_BYTES {
        let Ok(next) = queue.try_recv() else { break };
        *bytes += next.event.body.len();
        batch.push(next);
    }
}

/// How long the writer waits for more rows before it commits a batch that [`lingers`] names.
///
/// The callers of a full batch come back together while the writer commits the few rows in
/// between, each such commit costing a flush; waiting for the rows on their way evens the
/// batches out (BENCHMARKS.md, "The writer's linger"). `commit_delay` is the same idea inside
/// the server, but needs a superuser and applies to every commit.
const LINGER: Duration = Duration::from_micros(120);

/// Batches from this size on show callers arriving together (a flood); below it, every
/// batch is committed at once, so a lone webhook never waits.
const LINGER_FROM: usize = 8;

/// Whether a batch of `rows`, after one of `previous` rows, waits [`LINGER`] for more before
/// it is committed: when the last batch showed many callers at once and this one holds fewer
/// than half as many (the rest are likely on their way).
fn lingers(previous: usize, rows: usize) -> bool {
    previous >= LINGER_FROM && rows < previous / 2
}

/// Inserts `batch` (`bytes` of bodies) on the writer's connection; `announced`: with an
/// announcement in the same transaction.
async fn insert_batch(
    options: &PgConnectOptions,
    slot: &mut Option<PgConnection>,
    batch: &[Pending],
    bytes: usize,
    announced: Announce,
) -> StoreResult<()> {
    let connection = connected(options, slot).await?;
    let outcome = insert_rows(&mut *connection, batch, announced).await;
    if outcome.is_err() {
        *slot = None;
    } else if bytes > SHRINK_AFTER_BYTES {
        // As the pool does on release: a batch of large bodies leaves large buffers behind.
        sqlx::Connection::shrink_buffers(connection);
    }
    outcome
}

/// Body bytes after which the writer's connection gives its buffers back.
const SHRINK_AFTER_BYTES: usize = 1 << 20;

const INSERT: &str = insert_sql!();
const INSERT_AND_NOTIFY: &str = concat!("WITH stored AS (", insert_sql!(), ") ", notify_sql!());
const NOTIFY: &str = notify_sql!();

/// One statement, hence one transaction, for the whole batch, and if `announced`, its
/// announcement.
async fn insert_rows(
    executor: impl PgExecutor<'_>,
    batch: &[Pending],
    announced: Announce,
) -> StoreResult<()> {
    let ids: Vec<Uuid> = batch.iter().map(|p| p.id.as_uuid()).collect();
    let channels: Vec<&str> = batch.iter().map(|p| p.event.channel.as_str()).collect();
    let integrations: Vec<Option<Uuid>> = batch
        .iter()
        .map(|p| p.event.integration_id.map(|i| i.as_uuid()))
        .collect();
    let bodies: Vec<&[u8]> = batch.iter().map(|p| &p.event.body[..]).collect();
    let received: Vec<DateTime<Utc>> = batch.iter().map(|p| ts(p.event.received_at)).collect();
    let sql = match announced {
        Announce::Yes => INSERT_AND_NOTIFY,
        Announce::No => INSERT,
    };
    sqlx::query(sql)
        .bind(&ids)
        .bind(&channels)
        .bind(&integrations)
        .bind(&bodies)
        .bind(&received)
        .execute(executor)
        .await
        .map_err(db)?;
    Ok(())
}

/// The same error for another caller of a failed batch (driver errors are not `Clone`).
fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Conflict(conflict) => StoreError::Conflict(*conflict),
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Corrupt(message) => StoreError::Corrupt(message.clone()),
        StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
        StoreError::Database(source) => StoreError::Database(source.to_string().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_announcement_names_the_channel_the_listeners_listen_on() {
        let call = format!(
            "pg_notify('{}', {})",
            crate::notify::INBOX,
            crate::notify::notify_payload!()
        );
        assert!(NOTIFY.contains(&call), "{NOTIFY}");
        assert!(INSERT_AND_NOTIFY.contains(&call), "{INSERT_AND_NOTIFY}");
        assert!(INSERT_AND_NOTIFY.contains(INSERT), "{INSERT_AND_NOTIFY}");
    }

    #[test]
    fn only_a_batch_much_smaller_than_a_large_one_before_it_lingers() {
        // Light traffic: nothing waits, however the sizes compare.
        assert!(!lingers(0, 1));
        assert!(!lingers(1, 1));
        assert!(!lingers(LINGER_FROM - 1, 1));
        // After a large batch, a small one waits for the rows on their way; one at least half
        // as large does not.
        assert!(lingers(LINGER_FROM, 1));
        assert!(lingers(64, 3));
        assert!(lingers(64, 31));
        assert!(!lingers(64, 32));
        assert!(!lingers(64, 64));
        assert!(!lingers(64, MAX_ROWS));
    }

    fn pending(body: usize) -> Pending {
        let (done, _) = oneshot::channel();
        Pending {
            id: EventId::new(),
            event: NewWebhookEvent {
                channel: switchboard_core::ChannelName::parse("whatsapp").expect("a channel name"),
                integration_id: None,
                body: bytes::Bytes::from(vec![b'x'; body]),
                received_at: Utc::now(),
            },
            done,
        }
    }

    #[test]
    fn topping_up_takes_what_is_waiting_up_to_the_row_and_byte_caps() {
        let (sender, mut queue) = mpsc::channel(QUEUE);
        for _ in 0..3 {
            sender.try_send(pending(10)).expect("room in the queue");
        }
        let (mut batch, mut bytes) = (vec![pending(10)], 10);
        top_up(&mut queue, &mut batch, &mut bytes);
        assert_eq!((batch.len(), bytes), (4, 40));
        // Nothing waiting: nothing added, and no waiting either.
        top_up(&mut queue, &mut batch, &mut bytes);
        assert_eq!((batch.len(), bytes), (4, 40));

        for _ in 0..MAX_ROWS + 5 {
            sender.try_send(pending(1)).expect("room in the queue");
        }
        let (mut batch, mut bytes) = (Vec::new(), 0);
        top_up(&mut queue, &mut batch, &mut bytes);
        assert_eq!(batch.len(), MAX_ROWS);
        assert_eq!(queue.len(), 5, "the rest wait for the next batch");

        // The byte cap: the row that crosses it is the last one taken.
        let (mut batch, mut bytes) = (Vec::new(), MAX_BYTES - 1);
        top_up(&mut queue, &mut batch, &mut bytes);
        assert_eq!((batch.len(), bytes), (1, MAX_BYTES));
        assert_eq!(queue.len(), 4);
    }

    #[test]
    fn batches_are_announced_at_most_once_per_interval_and_the_last_one_always() {
        let start = Instant::now();
        let mut announcements = Announcements::default();
        assert_eq!(announcements.owed_at(), None);
        // The first batch announces itself.
        assert_eq!(announcements.due(start), Announce::Yes);
        announcements.stored(Announce::Yes, start);
        assert_eq!(announcements.owed_at(), None);
        // Batches within the interval do not, but leave an announcement owed for its end.
        let soon = start + NOTIFY_INTERVAL / 2;
        assert_eq!(announcements.due(soon), Announce::No);
        announcements.stored(Announce::No, soon);
        assert_eq!(announcements.owed_at(), Some(start + NOTIFY_INTERVAL));
        // After the interval the next batch announces itself and everything before it.
        let later = start + NOTIFY_INTERVAL;
        assert_eq!(announcements.due(later), Announce::Yes);
        announcements.stored(Announce::Yes, later);
        assert_eq!(announcements.owed_at(), None);
        // An owed announcement made (or tried) on its own starts a new interval.
        announcements.stored(Announce::No, later);
        let quiet = later + NOTIFY_INTERVAL;
        announcements.made(quiet);
        assert_eq!(announcements.owed_at(), None);
        assert_eq!(announcements.due(quiet), Announce::No);
    }
}
