//! `/api/integrations…`: the generic connect / callback / status / disconnect routes, dispatched
//! to the adapter named in the path. Nothing here knows any particular channel.

use axum::extract::State;
use axum::http::header::{ACCEPT, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Duration, Utc};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::BusinessId;
use switchboard_core::adapter::{CallbackParams, ConnectAttempt, OAuthOutcome};
use switchboard_core::error::{Conflict, ConnectError, StoreError};
use switchboard_core::store::PendingChoice;

use super::auth::Tenant;
use super::channel::Channel;
use super::error::{ApiError, ApiResult, Query};
use super::oauth::{self, Outcome};
use crate::connections::{self, StoreDirectory};
use crate::state::AppState;

/// How long a pending account choice waits for the business.
const CHOICE_TTL_MINUTES: i64 = 30;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/integrations", get(list))
        .route(
            "/api/integrations/{channel}/connect",
            get(connect_redirect).post(connect_token),
        )
        .route("/api/integrations/{channel}/callback", get(callback))
        .route("/api/integrations/{channel}/status", get(status))
        .route(
            "/api/integrations/{channel}/disconnect",
            axum::routing::delete(disconnect),
        )
        .route(
            "/api/integrations/{channel}/phone_numbers",
            get(choices).post(choose),
        )
}

/// Every enabled channel with this business's stored state.
async fn list(State(app): State<AppState>, Tenant(business): Tenant) -> ApiResult<Json<Value>> {
    let integrations = app.store.list_integrations(business).await?;
    let objects = app
        .registry
        .enabled()
        .map(|adapter| {
            let descriptor = adapter.descriptor();
            let integration = integrations.iter().find(|i| i.channel == descriptor.name);
            connections::status_object(descriptor, integration, None)
        })
        .collect();
    Ok(Json(Value::Array(objects)))
}

/// OAuth channels: `302` to the consent page, or `200 {"authorize_url"}` for JSON clients.
async fn connect_redirect(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    channel: Channel,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Ask the adapter first, so token channels answer 405 before a state is stored.
    channel.0.authorize_url("probe")?;
    let started = oauth::start(&app, business, channel.name()).await?;
    let url = channel.0.authorize_url(started.state.expose_secret())?;
    let wants_json = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let response = if wants_json {
        Json(json!({ "authorize_url": url.as_str() })).into_response()
    } else {
        (StatusCode::FOUND, [(LOCATION, url.as_str().to_owned())]).into_response()
    };
    Ok(oauth::with_cookie(response, started.set_cookie))
}

/// Token channels: connect with a pasted credential; `201` with the status object.
async fn connect_token(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    channel: Channel,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let Json(input) = body.map_err(ApiError::from)?;
    let directory = StoreDirectory(app.store.as_ref());
    let attempt = ConnectAttempt {
        business_id: business,
        directory: &directory,
    };
    let connection = channel.0.connect_with_token(&input, &attempt).await?;
    let integration = connections::save(
        app.store.as_ref(),
        &app.cipher,
        business,
        channel.name(),
        connection,
    )
    .await
    .map_err(account_conflict)?;
    tracing::info!(channel = %channel.name(), integration_id = %integration.id, "channel connected");
    app.wake.jobs.notify_one();
    let body = connections::status_object(channel.0.descriptor(), Some(&integration), None);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A store conflict on the account becomes the adapter-agnostic `account_in_use` (`409`).
fn account_conflict(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict(Conflict::AccountInUse) => ConnectError::conflict(
            "account_in_use",
            "this account is already connected to another business",
        )
        .into(),
        other => other.into(),
    }
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_reason: Option<String>,
    error_description: Option<String>,
}

/// The OAuth redirect target (unauthenticated: the business comes from `state`).
async fn callback(
    State(app): State<AppState>,
    channel: Channel,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let name = channel.name().clone();
    let outcome = match run_callback(&app, &channel, &headers, query).await {
        Ok(outcome) => outcome,
        Err(error) => {
            tracing::warn!(channel = %name, code = error.code, "OAuth callback failed");
            Outcome::Failed {
                code: error.code.to_owned(),
            }
        }
    };
    let page = oauth::outcome_page(&app.web, &name, &outcome);
    oauth::with_cookie(page, oauth::clear_cookie(&app.web, &name))
}

async fn run_callback(
    app: &AppState,
    channel: &Channel,
    headers: &HeaderMap,
    query: CallbackQuery,
) -> Result<Outcome, ConnectError> {
    let state = oauth::finish(app, channel.name(), query.state.as_deref(), headers)
        .await
        .map_err(|_| ConnectError::internal())?
        .ok_or_else(|| {
            ConnectError::rejected(
                "invalid_state",
                "this sign-in link is unknown, used, expired or was started in another browser",
            )
        })?;
    let business = state.business_id;
    let directory = StoreDirectory(app.store.as_ref());
    let attempt = ConnectAttempt {
        business_id: business,
        directory: &directory,
    };
    let params = CallbackParams {
        code: query.code,
        error: query.error,
        error_reason: query.error_reason,
        error_description: query.error_description,
    };
    match channel.0.finish_oauth(&params, &attempt).await? {
        OAuthOutcome::Connected(connection) => {
            save_oauth_connection(app, channel, business, connection).await?;
            Ok(Outcome::Connected)
        }
        OAuthOutcome::ChooseAccount { pending, options } => {
            let blob = connections::seal_pending(&app.cipher, business, channel.name(), &pending);
            app.store
                .put_pending_choice(PendingChoice {
                    business_id: business,
                    channel: channel.name().clone(),
                    pending: blob,
                    options: serde_json::to_value(&options).unwrap_or(Value::Null),
                    expires_at: Utc::now() + Duration::minutes(CHOICE_TTL_MINUTES),
                })
                .await
                .map_err(|_| ConnectError::internal())?;
            Ok(Outcome::ChooseAccount)
        }
    }
}

async fn save_oauth_connection(
    app: &AppState,
    channel: &Channel,
    business: switchboard_core::BusinessId,
    connection: switchboard_core::adapter::NewConnection,
) -> Result<(), ConnectError> {
    match connections::save(
        app.store.as_ref(),
        &app.cipher,
        business,
        channel.name(),
        connection,
    )
    .await
    {
        Ok(integration) => {
            tracing::info!(channel = %channel.name(), integration_id = %integration.id, "channel connected");
            app.wake.jobs.notify_one();
            Ok(())
        }
        Err(StoreError::Conflict(Conflict::AccountInUse)) => Err(ConnectError::conflict(
            "number_in_use",
            "this account is already connected to another business",
        )),
        Err(error) => {
            tracing::error!(%error, "storing a connection failed");
            Err(ConnectError::internal())
        }
    }
}

/// The live status object.
async fn status(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    channel: Channel,
) -> ApiResult<Json<Value>> {
    let descriptor = channel.0.descriptor();
    let integration = match app.store.integration_for(business, channel.name()).await? {
        Some(integration) if integration.is_active => integration,
        inactive => {
            let mut object = connections::status_object(descriptor, inactive.as_ref(), None);
            let pending = app
                .store
                .pending_choice(business, channel.name(), Utc::now())
                .await?;
            object["pending_choice"] = json!(pending.is_some());
            return Ok(Json(object));
        }
    };
    let Some(ctx) =
        connections::context(app.store.as_ref(), &app.cipher, integration.clone()).await?
    else {
        return Ok(Json(connections::status_object(
            descriptor,
            Some(&integration),
            None,
        )));
    };
    let live = channel.0.status(&ctx).await;
    if live.state != integration.state || live.reason != integration.state_reason {
        app.store
            .set_state(integration.id, live.state, live.reason.as_deref())
            .await?;
    }
    if live.token_expires_at.is_some() && live.token_expires_at != integration.token_expires_at {
        app.store
            .set_token_expiry(integration.id, live.token_expires_at)
            .await?;
    }
    Ok(Json(connections::status_object(
        descriptor,
        Some(&integration),
        Some(&live),
    )))
}

/// Undoes the provider side, deactivates and wipes secrets; idempotent.
async fn disconnect(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    channel: Channel,
) -> ApiResult<Json<Value>> {
    let descriptor = channel.0.descriptor();
    app.store
        .clear_pending_choice(business, channel.name())
        .await?;
    let integration = app.store.integration_for(business, channel.name()).await?;
    let Some(integration) = integration.filter(|i| i.is_active) else {
        return Ok(Json(connections::status_object(descriptor, None, None)));
    };
    let mut upstream_error = None;
    if let Some(ctx) =
        connections::context(app.store.as_ref(), &app.cipher, integration.clone()).await?
        && let Err(error) = channel.0.disconnect(&ctx).await
    {
        tracing::warn!(channel = %channel.name(), integration_id = %integration.id, %error, "upstream disconnect failed");
        upstream_error = Some(format!(
            "disconnected locally; the provider call failed: {error}"
        ));
    }
    app.store
        .deactivate(integration.id, upstream_error.as_deref())
        .await?;
    tracing::info!(channel = %channel.name(), integration_id = %integration.id, "channel disconnected");
    let after = app.store.integration_by_id(integration.id).await?;
    Ok(Json(connections::status_object(
        descriptor,
        after.as_ref(),
        None,
    )))
}

/// The business's unexpired pending choice for the channel, or `404 no_pending_choice`.
async fn pending_choice(
    app: &AppState,
    business: BusinessId,
    channel: &Channel,
) -> ApiResult<PendingChoice> {
    app.store
        .pending_choice(business, channel.name(), Utc::now())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "no_pending_choice",
                "there is no account waiting to be chosen; connect again",
            )
        })
}

/// The accounts waiting to be chosen after an OAuth callback.
async fn choices(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    channel: Channel,
) -> ApiResult<Json<Value>> {
    let pending = pending_choice(&app, business, &channel).await?;
    Ok(Json(
        json!({ "channel": channel.name(), "options": pending.options, "expires_at": pending.expires_at }),
    ))
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(alias = "phone_number_id")]
    id: String,
}

/// Completes a pending connection with the chosen account.
async fn choose(
    State(app): State<AppState>,
    Tenant(business): Tenant,
    channel: Channel,
    body: Result<Json<Choice>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(choice) = body.map_err(ApiError::from)?;
    let pending = pending_choice(&app, business, &channel).await?;
    let credentials =
        connections::open_pending(&app.cipher, business, channel.name(), &pending.pending)?;
    let directory = StoreDirectory(app.store.as_ref());
    let attempt = ConnectAttempt {
        business_id: business,
        directory: &directory,
    };
    let connection = channel
        .0
        .choose_account(&credentials, &choice.id, &attempt)
        .await?;
    let integration = connections::save(
        app.store.as_ref(),
        &app.cipher,
        business,
        channel.name(),
        connection,
    )
    .await
    .map_err(account_conflict)?;
    app.store
        .clear_pending_choice(business, channel.name())
        .await?;
    app.wake.jobs.notify_one();
    Ok(Json(connections::status_object(
        channel.0.descriptor(),
        Some(&integration),
        None,
    )))
}
