//! `GET /{version}/oauth/access_token` (code exchange and `fb_exchange_token`) and
//! `GET /{version}/debug_token`, with Meta's error bodies: single-use codes, expiry,
//! `redirect_uri` equality, client secret checks, app-token-only `debug_token`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use switchboard_core::crypto::random_token;

use super::errors::GraphFault;
use super::state::{Grant, LONG_TOKEN_SECS, SHORT_TOKEN_SECS, Shared, State, TokenRecord};

type Params = Query<HashMap<String, String>>;

/// `GET /{version}/oauth/access_token`.
pub(crate) async fn access_token(AxState(inner): AxState<Shared>, Query(q): Params) -> Response {
    let mut st = inner.lock();
    if q.get("client_id") != Some(&inner.app_id) {
        return GraphFault::new(
            StatusCode::BAD_REQUEST,
            101,
            "Error validating application. Invalid application ID.",
        )
        .into_response();
    }
    if q.get("client_secret") != Some(&inner.app_secret) {
        return GraphFault::new(
            StatusCode::BAD_REQUEST,
            1,
            "Error validating client secret.",
        )
        .into_response();
    }
    let result = if q.get("grant_type").map(String::as_str) == Some("fb_exchange_token") {
        exchange_long(&mut st, q.get("fb_exchange_token").map(String::as_str))
    } else {
        exchange_code(
            &mut st,
            q.get("code").map(String::as_str),
            q.get("redirect_uri").map_or("", String::as_str),
        )
    };
    match result {
        Ok((token, Some(lifetime))) => {
            Json(json!({"access_token": token, "token_type": "bearer", "expires_in": lifetime}))
                .into_response()
        }
        Ok((token, None)) => {
            Json(json!({"access_token": token, "token_type": "bearer"})).into_response()
        }
        Err(fault) => fault.into_response(),
    }
}

fn bad_code(message: &str, subcode: i64) -> GraphFault {
    GraphFault::new(StatusCode::BAD_REQUEST, 100, message).subcode(subcode)
}

fn exchange_code(
    st: &mut State,
    code: Option<&str>,
    redirect_uri: &str,
) -> Result<(String, Option<i64>), GraphFault> {
    let now = st.now();
    let Some(record) = code.and_then(|c| st.codes.get_mut(c)) else {
        return Err(GraphFault::new(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid verification code format.",
        ));
    };
    if record.used {
        return Err(bad_code("This authorization code has been used.", 36009));
    }
    if record.expires_at <= now {
        return Err(bad_code("This authorization code has expired.", 36007));
    }
    if record.redirect_uri != redirect_uri {
        return Err(bad_code(
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            36008,
        ));
    }
    record.used = true;
    let grant = record.grant.clone();
    Ok((
        issue(st, grant, Some(SHORT_TOKEN_SECS)),
        Some(SHORT_TOKEN_SECS),
    ))
}

/// A long-lived token (about 60 days), or a never-expiring business token when switched on.
fn exchange_long(st: &mut State, token: Option<&str>) -> Result<(String, Option<i64>), GraphFault> {
    let record = super::errors::check_token(st, token)?;
    let lifetime = (!st.faults.never_expiring_tokens).then_some(LONG_TOKEN_SECS);
    Ok((issue(st, record.grant, lifetime), lifetime))
}

/// Issues a user token with `lifetime` seconds (`None`: never expires).
pub(crate) fn issue(st: &mut State, grant: Grant, lifetime: Option<i64>) -> String {
    let token = format!("EAAG{}", random_token(60).expose_secret());
    let now = st.now();
    st.tokens.insert(
        token.clone(),
        TokenRecord {
            grant,
            issued_at: now,
            expires_at: lifetime.map(|l| now + l),
        },
    );
    token
}

/// `GET /{version}/debug_token?input_token=…&access_token={app_id}|{app_secret}`.
pub(crate) async fn debug_token(
    AxState(inner): AxState<Shared>,
    headers: axum::http::HeaderMap,
    Query(q): Params,
) -> Response {
    let presented =
        super::errors::presented_token(&headers, q.get("access_token").map(String::as_str));
    if presented.as_deref() != Some(inner.app_token().as_str()) {
        return GraphFault::new(StatusCode::BAD_REQUEST, 100, "(#100) You must provide an app access token, or a user access token that is an owner or developer of the app").into_response();
    }
    let st = inner.lock();
    let input = q.get("input_token").map_or("", String::as_str);
    let Some(record) = st.tokens.get(input) else {
        let data = json!({"error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"}, "is_valid": false, "scopes": []});
        return Json(json!({ "data": data })).into_response();
    };
    Json(json!({ "data": describe(&st, &inner, record) })).into_response()
}

fn describe(st: &State, inner: &Shared, record: &TokenRecord) -> Value {
    let expired = record.expires_at.is_some_and(|e| e <= st.now());
    let granular: Vec<Value> = record
        .grant
        .scopes
        .iter()
        .filter(|s| *s != "public_profile")
        .map(|scope| {
            let targets = if scope.starts_with("whatsapp_business_") {
                &record.grant.wabas
            } else {
                &record.grant.businesses
            };
            json!({"scope": scope, "target_ids": targets})
        })
        .collect();
    let mut data = json!({
        "app_id": inner.app_id,
        "type": "USER",
        "application": inner.app_name,
        "data_access_expires_at": record.issued_at + 90 * 86400,
        "expires_at": record.expires_at.unwrap_or(0),
        "is_valid": !expired,
        "issued_at": record.issued_at,
        "scopes": record.grant.scopes,
        "granular_scopes": granular,
        "user_id": st.seed.user_id,
    });
    if expired {
        data["error"] = json!({"code": 190, "message": "Error validating access token: Session has expired.", "subcode": 463});
    }
    data
}

/// `POST /{version}/debug_token`: Graph only answers `GET` here.
pub(crate) async fn debug_token_post() -> Response {
    GraphFault::new(StatusCode::BAD_REQUEST, 100, "Unsupported post request. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api").subcode(33).into_response()
}
