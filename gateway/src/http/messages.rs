//! The conversation and message API (tenant-scoped, paginated newest first): listing
//! conversations and their messages, replying by hand, sending to a channel recipient, the
//! quarantine of webhook bodies that did not parse (with replay), and dead-lettered jobs (with
//! retry). Every send is queued (`202`) and its message returned with its status.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::domain::{DeliveryStatus, OutboundContent, OutboundMessage};
use switchboard_core::store::{InboxState, JobState, Message, Page};
use switchboard_core::{ChannelName, ConversationId, EventId, JobId, MessageId};

use super::auth::Tenant;
use super::error::{ApiError, ApiResult, Query};
use crate::pipeline::jobs::{self, SEND_JOB, SendPayload};
use crate::state::AppState;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/conversations", get(conversations))
        .route(
            "/api/conversations/{id}/messages",
            get(messages).post(reply),
        )
        .route("/api/messages", post(send))
        .route("/api/events/quarantine", get(quarantine))
        .route("/api/events/quarantine/{id}/replay", post(replay))
        .route("/api/jobs/dead", get(dead_jobs))
        .route("/api/jobs/{id}/retry", post(retry_job))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    before: Option<String>,
    limit: Option<u32>,
}

impl PageQuery {
    fn page<T: std::str::FromStr>(&self) -> ApiResult<Page<T>> {
        let before = self
            .before
            .as_deref()
            .map(|raw| {
                raw.parse().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_cursor",
                        "`before` is not an id from a previous page",
                    )
                })
            })
            .transpose()?;
        Ok(Page {
            before,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        })
    }
}

fn parse_id<T: std::str::FromStr>(raw: &str, what: &'static str) -> ApiResult<T> {
    raw.parse().map_err(|_| {
        ApiError::not_found(
            what,
            format!("no such {}", what.trim_end_matches("_not_found")),
        )
    })
}

/// A message as the API shows it (gateway-local placeholder ids are not shown as provider ids).
fn message_view(message: &Message) -> Value {
    let provider_id = message
        .provider_message_id
        .as_deref()
        .filter(|id| !id.starts_with("sb:"));
    json!({
        "id": message.id,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "type": message.kind.as_str(),
        "text": message.text,
        "status": message.status,
        "status_at": message.status_at,
        "error_code": message.error_code,
        "error_reason": message.error_reason,
        "provider_message_id": provider_id,
        "provider_timestamp": message.provider_timestamp,
        "created_at": message.created_at,
    })
}

async fn conversations(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    let page = query.page::<ConversationId>()?;
    let items = app.store.list_conversations(business, page).await?;
    let next = (items.len() == page.limit as usize)
        .then(|| items.last().map(|c| c.id))
        .flatten();
    Ok(Json(json!({ "items": items, "next_before": next })))
}

async fn messages(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    let id: ConversationId = parse_id(&id, "conversation_not_found")?;
    let conversation = app
        .store
        .conversation(business, id)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation_not_found", "no such conversation"))?;
    let page = query.page::<MessageId>()?;
    let items = app.store.list_messages(conversation.id, page).await?;
    let next = (items.len() == page.limit as usize)
        .then(|| items.last().map(|m| m.id))
        .flatten();
    let items: Vec<Value> = items.iter().map(message_view).collect();
    Ok(Json(
        json!({ "conversation": conversation, "items": items, "next_before": next }),
    ))
}

/// What to send: `{"text": "…"}` or `{"content": {…OutboundContent…}}`, optionally replying to
/// a provider message id.
#[derive(Debug, Deserialize)]
struct Compose {
    text: Option<String>,
    content: Option<OutboundContent>,
    reply_to: Option<String>,
}

impl Compose {
    fn content(self) -> ApiResult<(OutboundContent, Option<String>)> {
        let content = match (self.text, self.content) {
            (Some(text), None) if !text.trim().is_empty() => OutboundContent::Text {
                body: text,
                preview_url: false,
            },
            (None, Some(content)) => content,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_message",
                    "give either a non-empty `text` or a `content` object",
                ));
            }
        };
        Ok((content, self.reply_to))
    }
}

fn json_body<T>(body: Result<Json<T>, axum::extract::rejection::JsonRejection>) -> ApiResult<T> {
    body.map(|Json(v)| v).map_err(ApiError::from)
}

/// Replies by hand in a conversation: queued, answered `202` with the message.
async fn reply(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    Path(id): Path<String>,
    body: Result<Json<Compose>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (content, reply_to) = json_body(body)?.content()?;
    let id: ConversationId = parse_id(&id, "conversation_not_found")?;
    let conversation = app
        .store
        .conversation(business, id)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation_not_found", "no such conversation"))?;
    let outbound = OutboundMessage {
        to: conversation.external_chat_id.clone(),
        content,
        reply_to,
        thread_id: None,
        reference: None,
    };
    queued(&app, &conversation, outbound).await
}

#[derive(Debug, Deserialize)]
struct SendRequest {
    channel: String,
    to: String,
    #[serde(flatten)]
    compose: Compose,
}

/// Sends to a channel recipient (a new conversation if there is none).
async fn send(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    body: Result<Json<SendRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = json_body(body)?;
    let channel = ChannelName::parse(&request.channel)
        .map_err(|_| ApiError::UnknownChannel(request.channel.clone()))?;
    let to = request.to.trim().to_owned();
    if to.is_empty() || to.len() > 128 {
        return Err(ApiError::bad_request(
            "invalid_recipient",
            "`to` must be the recipient's chat id or number",
        ));
    }
    let (content, reply_to) = request.compose.content()?;
    let integration = app
        .store
        .integration_for(business, &channel)
        .await?
        .filter(|i| i.is_active)
        .ok_or_else(|| {
            ApiError::bad_request("not_connected", format!("connect {channel} before sending"))
        })?;
    let conversation = jobs::conversation_for(&app, business, &integration, &to).await?;
    let outbound = OutboundMessage {
        to,
        content,
        reply_to,
        thread_id: None,
        reference: None,
    };
    queued(&app, &conversation, outbound).await
}

async fn queued(
    app: &AppState,
    conversation: &switchboard_core::store::Conversation,
    outbound: OutboundMessage,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let max_attempts = app.max_attempts;
    let id = jobs::queue_message(app, conversation, outbound, None, max_attempts).await?;
    let message = app
        .store
        .message(id)
        .await?
        .ok_or_else(|| ApiError::Internal("a queued message vanished".into()))?;
    Ok((StatusCode::ACCEPTED, Json(message_view(&message))))
}

/// Webhook bodies that did not parse. A tenant sees the bodies of events routed to its own
/// integrations; events that could not be attributed to anyone are listed without their body.
async fn quarantine(
    State(app): State<AppState>,
    Tenant(business): Tenant,
) -> ApiResult<Json<Value>> {
    let events = app
        .store
        .webhook_events_in_state(InboxState::Quarantined, MAX_LIMIT)
        .await?;
    let mut items = Vec::new();
    for event in events {
        let owner = match event.integration_id {
            Some(id) => app
                .store
                .integration_by_id(id)
                .await?
                .map(|i| i.business_id),
            None => None,
        };
        if owner.is_some_and(|o| o != business) {
            continue;
        }
        let body = owner.map(|_| String::from_utf8_lossy(&event.body).into_owned());
        items.push(json!({
            "id": event.id,
            "channel": event.channel,
            "received_at": event.received_at,
            "error": event.error,
            "size": event.body.len(),
            "body": body,
        }));
    }
    Ok(Json(json!({ "items": items })))
}

/// Puts a quarantined (or unrouted) event back in the inbox, after a fix.
async fn replay(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id: EventId = parse_id(&id, "event_not_found")?;
    let event = app
        .store
        .webhook_event(id)
        .await?
        .ok_or_else(|| ApiError::not_found("event_not_found", "no such event"))?;
    if let Some(integration) = event.integration_id {
        let owner = app
            .store
            .integration_by_id(integration)
            .await?
            .map(|i| i.business_id);
        if owner.is_some_and(|o| o != business) {
            return Err(ApiError::not_found("event_not_found", "no such event"));
        }
    }
    if !app.store.requeue_webhook_event(id).await? {
        return Err(ApiError::Conflict {
            code: "not_replayable",
            message: "only quarantined or unrouted events can be replayed".into(),
        });
    }
    app.wake.inbox.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "state": "pending" })),
    ))
}

async fn dead_jobs(
    State(app): State<AppState>,
    Tenant(business): Tenant,
) -> ApiResult<Json<Value>> {
    let jobs = app
        .store
        .list_jobs(business, JobState::Dead, MAX_LIMIT)
        .await?;
    let items: Vec<Value> = jobs
        .iter()
        .map(|job| {
            json!({
                "id": job.id,
                "kind": job.kind,
                "integration_id": job.integration_id,
                "attempts": job.attempts,
                "last_error": job.last_error,
                "message_id": job.payload.get("message_id"),
                "created_at": job.created_at,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Gives a dead job a fresh attempt budget; a send's message is queued again.
async fn retry_job(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id: JobId = parse_id(&id, "job_not_found")?;
    let job = app
        .store
        .job(id)
        .await?
        .filter(|j| j.business_id == business && j.state == JobState::Dead)
        .ok_or_else(|| ApiError::not_found("job_not_found", "no such dead job"))?;
    if job.kind == SEND_JOB
        && let Ok(payload) = serde_json::from_value::<SendPayload>(job.payload.clone())
    {
        app.store
            .set_message_status(payload.message_id, DeliveryStatus::Queued, None, None)
            .await?;
    }
    if !app
        .store
        .retry_dead_job(business, id, chrono::Utc::now())
        .await?
    {
        return Err(ApiError::not_found("job_not_found", "no such dead job"));
    }
    app.wake.jobs.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "state": "pending" })),
    ))
}
