//! The emulator's HTTP controls under `/_emulator/` (JSON in, JSON out), for the gateway's
//! sandbox dashboard and for scripts:
//!
//! | method and path | body | effect |
//! |---|---|---|
//! | `GET /_emulator/state` | | snapshot: faults, webhook URL, subscriptions, sent messages, deliveries |
//! | `POST /_emulator/faults` | partial [`Faults`] | merges the given switches |
//! | `POST /_emulator/seed` | [`Seed`] | replaces the seeded user and accounts |
//! | `POST /_emulator/webhook_url` | `{"url": "…" or null}` | sets the delivery target |
//! | `POST /_emulator/inbound` | [`SimulatedInbound`] | a customer message; answers [`InboundReceipt`](super::InboundReceipt) |
//! | `POST /_emulator/expire_tokens` | | every user token now fails with 190 |
//! | `POST /_emulator/advance_clock` | `{"seconds": n}` | moves the clock forward |
//! | `POST /_emulator/flush` | | sends batched webhooks as one POST |

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::inbound::SimulatedInbound;
use super::seed::{Faults, Seed};
use super::state::{Shared, State};

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/_emulator/state",
            get(|AxState(inner): AxState<Shared>| async move { Json(snapshot(&inner)) }),
        )
        .route("/_emulator/faults", post(faults))
        .route("/_emulator/seed", post(seed))
        .route("/_emulator/webhook_url", post(webhook_url))
        .route("/_emulator/inbound", post(inbound))
        .route("/_emulator/expire_tokens", post(expire_tokens))
        .route("/_emulator/advance_clock", post(advance_clock))
        .route(
            "/_emulator/flush",
            post(|AxState(inner): AxState<Shared>| async move {
                Json(json!({"delivery_status": super::delivery::flush(&inner).await}))
            }),
        )
}

pub(super) fn snapshot(inner: &Shared) -> Value {
    let st = inner.lock();
    json!({
        "base_url": inner.base_url,
        "faults": st.faults,
        "webhook_url": st.webhook_url,
        "seed": st.seed,
        "subscribed_wabas": st.subscribed,
        "sent_messages": st.sent,
        "deliveries": st.deliveries,
        "batched": st.batch.len(),
    })
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"code": "bad_request", "message": message}})),
    )
        .into_response()
}

async fn faults(AxState(inner): AxState<Shared>, Json(patch): Json<Value>) -> Response {
    let mut st = inner.lock();
    let mut merged = serde_json::to_value(&st.faults).unwrap_or_default();
    if let (Some(target), Some(changes)) = (merged.as_object_mut(), patch.as_object()) {
        target.extend(changes.clone());
    }
    match serde_json::from_value::<Faults>(merged) {
        Ok(faults) => {
            st.faults = faults;
            Json(json!({"faults": st.faults})).into_response()
        }
        Err(e) => bad_request(&format!("invalid faults: {e}")),
    }
}

async fn seed(AxState(inner): AxState<Shared>, Json(seed): Json<Seed>) -> Response {
    let mut st = inner.lock();
    let (faults, url) = (st.faults.clone(), st.webhook_url.clone());
    *st = State::new(seed, url);
    st.faults = faults;
    Json(json!({"seeded": true})).into_response()
}

#[derive(Deserialize)]
struct UrlBody {
    url: Option<String>,
}

async fn webhook_url(AxState(inner): AxState<Shared>, Json(body): Json<UrlBody>) -> Response {
    if body
        .url
        .as_deref()
        .is_some_and(|url| url::Url::parse(url).is_err())
    {
        return bad_request("url is not a valid URL");
    }
    inner.lock().webhook_url = body.url;
    Json(json!({"webhook_url": inner.lock().webhook_url})).into_response()
}

async fn inbound(AxState(inner): AxState<Shared>, Json(spec): Json<SimulatedInbound>) -> Response {
    match super::inbound::simulate(&inner, spec).await {
        Ok(receipt) => Json(receipt).into_response(),
        Err(message) => bad_request(&message),
    }
}

async fn expire_tokens(AxState(inner): AxState<Shared>) -> Response {
    let mut st = inner.lock();
    let past = st.now() - 1;
    st.tokens
        .values_mut()
        .for_each(|t| t.expires_at = Some(past));
    Json(json!({"expired": st.tokens.len()})).into_response()
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(AxState(inner): AxState<Shared>, Json(body): Json<Advance>) -> Response {
    let mut st = inner.lock();
    st.clock_offset += body.seconds.max(0);
    Json(json!({"clock_offset": st.clock_offset})).into_response()
}
