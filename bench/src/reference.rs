//! The reference the gateway's ingest is compared with: the least a durable webhook endpoint
//! must do. One axum route verifies `X-Hub-Signature-256` (HMAC-SHA256 of the raw bytes,
//! constant time), parses the JSON body, and hands the row to a writer task; the writer inserts
//! every row waiting at that moment as one multi-row `INSERT` into a table of its own (group
//! commit) and answers each request only after the commit.
//!
//! It runs on a runtime of its own (two worker threads, like the gateway's) so it does not share
//! the load generator's scheduler.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::Fallible;

/// Most rows in one `INSERT`.
const MAX_BATCH: usize = 512;

const TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_reference (\
    id UUID PRIMARY KEY, body BYTEA NOT NULL, received_at TIMESTAMPTZ NOT NULL)";

type Row = (Bytes, oneshot::Sender<bool>);

#[derive(Clone)]
struct Reference {
    keyed: Hmac<Sha256>,
    rows: mpsc::Sender<Row>,
}

/// A running reference server; dropping it stops the runtime.
#[derive(Debug)]
pub struct Running {
    pub address: SocketAddr,
    runtime: tokio::runtime::Runtime,
}

impl Running {
    /// Stops the server and its writer.
    pub fn stop(self) {
        self.runtime.shutdown_background();
    }
}

/// Creates the table in `database_url` and serves `POST /webhook` on `127.0.0.1:0`.
///
/// # Errors
/// When the database or the socket is not available.
pub async fn start(database_url: &str, app_secret: &str) -> Fallible<Running> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let keyed = Hmac::new_from_slice(app_secret.as_bytes())?;
    let database_url = database_url.to_owned();
    let setup = runtime.spawn(async move {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect(&database_url)
            .await?;
        sqlx::query(TABLE).execute(&pool).await?;
        let (rows, queue) = mpsc::channel(4096);
        tokio::spawn(writer(pool, queue));
        let app = Router::new()
            .route("/webhook", post(receive))
            .with_state(Reference { keyed, rows });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fallible::Ok(address)
    });
    let address = setup.await??;
    Ok(Running { address, runtime })
}

async fn receive(State(app): State<Reference>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(signature) = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|v| hex::decode(v).ok())
    else {
        return StatusCode::UNAUTHORIZED;
    };
    let mut mac = app.keyed.clone();
    mac.update(&body);
    if mac.verify_slice(&signature).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return StatusCode::BAD_REQUEST;
    }
    let (done, committed) = oneshot::channel();
    if app.rows.send((body, done)).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match committed.await {
        Ok(true) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Takes everything waiting (up to [`MAX_BATCH`]), inserts it in one statement, answers all.
async fn writer(pool: PgPool, mut queue: mpsc::Receiver<Row>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ids: Vec<uuid::Uuid> = batch.iter().map(|_| uuid::Uuid::now_v7()).collect();
        let bodies: Vec<&[u8]> = batch.iter().map(|(body, _)| &body[..]).collect();
        let now = chrono::Utc::now();
        let times = vec![now; batch.len()];
        let committed = sqlx::query(
            "INSERT INTO bench_reference (id, body, received_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::bytea[], $3::timestamptz[])",
        )
        .bind(&ids)
        .bind(&bodies)
        .bind(&times)
        .execute(&pool)
        .await
        .is_ok();
        for (_, done) in batch.drain(..) {
            let _ = done.send(committed);
        }
    }
}
