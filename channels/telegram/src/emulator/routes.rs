//! The JSON control endpoints under `/_emulator/`, for the gateway's sandbox dashboard and for
//! tests that drive the emulator over HTTP.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::control::{BotRequest, ControlError, SimulatedMessage};
use super::state::{ChatSpec, SendFault};

type Shared_ = State<Arc<Shared>>;

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::UnknownBot(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

#[derive(Debug, Deserialize)]
struct InjectBody {
    kind: String,
    payload: Value,
}

#[derive(Debug, Deserialize)]
struct ChatIdBody {
    chat_id: i64,
}

#[derive(Debug, Deserialize)]
struct MigrateBody {
    to: i64,
}

#[derive(Debug, Deserialize)]
struct FaultsBody {
    #[serde(default)]
    send: Vec<SendFault>,
    duplicate_deliveries: Option<bool>,
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/bots", post(add_bot).get(list_bots))
        .route("/_emulator/bots/{id}/messages", post(simulate))
        .route("/_emulator/bots/{id}/updates", post(inject))
        .route("/_emulator/bots/{id}/revoke", post(revoke))
        .route("/_emulator/bots/{id}/block", post(block))
        .route("/_emulator/bots/{id}/unblock", post(unblock))
        .route("/_emulator/bots/{id}/sent", get(sent))
        .route("/_emulator/bots/{id}/webhook", get(webhook))
        .route("/_emulator/bots/{id}/deliveries", get(deliveries))
        .route("/_emulator/chats", post(add_chat))
        .route("/_emulator/chats/{id}/migrate", post(migrate))
        .route("/_emulator/faults", post(faults))
}

async fn add_bot(
    State(s): Shared_,
    Json(body): Json<BotRequest>,
) -> Result<Response, ControlError> {
    let bot = s.add_bot(body)?;
    Ok((StatusCode::CREATED, Json(bot)).into_response())
}

async fn list_bots(State(s): Shared_) -> Json<Value> {
    let inner = s.lock();
    let bots: Vec<_> = inner.bots.values().map(|b| b.seed.clone()).collect();
    Json(json!(bots))
}

async fn simulate(
    State(s): Shared_,
    Path(id): Path<i64>,
    Json(body): Json<SimulatedMessage>,
) -> Result<Json<Value>, ControlError> {
    s.simulate(id, &body).map(Json)
}

async fn inject(
    State(s): Shared_,
    Path(id): Path<i64>,
    Json(body): Json<InjectBody>,
) -> Result<Json<Value>, ControlError> {
    let update_id = s.inject(id, &body.kind, body.payload)?;
    Ok(Json(json!({ "update_id": update_id })))
}

async fn revoke(State(s): Shared_, Path(id): Path<i64>) -> Result<Json<Value>, ControlError> {
    s.revoke(id)?;
    Ok(Json(json!({})))
}

async fn block(
    State(s): Shared_,
    Path(id): Path<i64>,
    Json(body): Json<ChatIdBody>,
) -> Result<Json<Value>, ControlError> {
    let update_id = s.set_blocked(id, body.chat_id, true)?;
    Ok(Json(json!({ "update_id": update_id })))
}

async fn unblock(
    State(s): Shared_,
    Path(id): Path<i64>,
    Json(body): Json<ChatIdBody>,
) -> Result<Json<Value>, ControlError> {
    let update_id = s.set_blocked(id, body.chat_id, false)?;
    Ok(Json(json!({ "update_id": update_id })))
}

async fn sent(State(s): Shared_, Path(id): Path<i64>) -> Json<Value> {
    let inner = s.lock();
    let sent: Vec<_> = inner.sent.iter().filter(|m| m.bot_id == id).collect();
    Json(json!(sent))
}

async fn webhook(State(s): Shared_, Path(id): Path<i64>) -> Result<Json<Value>, ControlError> {
    s.webhook_info(id)
        .map(Json)
        .ok_or(ControlError::UnknownBot(id))
}

async fn deliveries(State(s): Shared_, Path(id): Path<i64>) -> Json<Value> {
    let inner = s.lock();
    let list: Vec<_> = inner.deliveries.iter().filter(|d| d.bot_id == id).collect();
    Json(json!(list))
}

async fn add_chat(State(s): Shared_, Json(chat): Json<ChatSpec>) -> StatusCode {
    s.add_chat(chat);
    StatusCode::CREATED
}

async fn migrate(
    State(s): Shared_,
    Path(id): Path<i64>,
    Json(body): Json<MigrateBody>,
) -> StatusCode {
    s.migrate(id, body.to);
    StatusCode::NO_CONTENT
}

async fn faults(State(s): Shared_, Json(body): Json<FaultsBody>) -> StatusCode {
    let mut inner = s.lock();
    inner.send_faults.extend(body.send);
    if let Some(duplicate) = body.duplicate_deliveries {
        inner.duplicate_deliveries = duplicate;
    }
    StatusCode::NO_CONTENT
}
