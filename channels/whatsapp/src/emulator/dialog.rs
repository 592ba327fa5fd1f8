//! The Facebook Login dialog: `GET /{version}/dialog/oauth` shows a consent page a person can
//! click through (pick a WhatsApp Business Account, approve or cancel), or answers at once
//! with a `302` when the dialog mode is `auto_approve` / `auto_deny`.
//!
//! Approval redirects to `{redirect_uri}?code=…&state=…#_=_`; cancelling redirects with Meta's
//! five cancel parameters `error, error_code, error_description, error_reason, state`.

use std::collections::HashMap;

use axum::extract::{Query, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use secrecy::ExposeSecret;
use switchboard_core::crypto::random_token;

use super::seed::DialogMode;
use super::state::{CODE_SECS, CodeRecord, Shared};

type Params = Query<HashMap<String, String>>;

/// `GET /{version}/dialog/oauth`.
pub(crate) async fn dialog(AxState(inner): AxState<Shared>, Query(q): Params) -> Response {
    if q.get("client_id") != Some(&inner.app_id) {
        return error_page("Invalid App ID: the client_id parameter does not name this app.");
    }
    let Some(redirect) = q.get("redirect_uri").filter(|r| url::Url::parse(r).is_ok()) else {
        return error_page("Can't load URL: the redirect_uri parameter is missing or malformed.");
    };
    let state = q.get("state").cloned().unwrap_or_default();
    let mode = inner.lock().faults.dialog;
    match mode {
        DialogMode::AutoApprove => approve(&inner, redirect, &state, &scopes(&q), None),
        DialogMode::AutoDeny => cancel(redirect, &state),
        DialogMode::Interactive => consent_page(&inner, &q, redirect, &state),
    }
}

/// `GET /{version}/dialog/oauth/confirm`: the consent page's form target.
pub(crate) async fn confirm(AxState(inner): AxState<Shared>, Query(q): Params) -> Response {
    let Some(redirect) = q.get("redirect_uri").filter(|r| url::Url::parse(r).is_ok()) else {
        return error_page("Can't load URL: the redirect_uri parameter is missing or malformed.");
    };
    let state = q.get("state").cloned().unwrap_or_default();
    if q.get("action").map(String::as_str) != Some("approve") {
        return cancel(redirect, &state);
    }
    let only = q.get("waba").filter(|w| w.as_str() != "all").cloned();
    approve(&inner, redirect, &state, &scopes(&q), only)
}

fn scopes(q: &HashMap<String, String>) -> Vec<String> {
    let requested = q.get("scope").map_or(
        "whatsapp_business_management,whatsapp_business_messaging,business_management",
        String::as_str,
    );
    let mut list: Vec<String> = requested
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    list.push("public_profile".to_owned());
    list
}

fn approve(
    inner: &Shared,
    redirect: &str,
    state: &str,
    scopes: &[String],
    only_waba: Option<String>,
) -> Response {
    let code = format!("AQ{}", random_token(48).expose_secret());
    {
        let mut st = inner.lock();
        let mut grant = st.full_grant(scopes.to_vec());
        if let Some(waba) = only_waba {
            grant.wabas.retain(|w| *w == waba);
            let owners: Vec<String> = st
                .seed
                .wabas()
                .filter(|(_, w)| w.id == waba)
                .map(|(b, _)| b.id.clone())
                .collect();
            grant.businesses.retain(|b| owners.contains(b));
        }
        let expires_at = st.now() + CODE_SECS;
        st.codes.insert(
            code.clone(),
            CodeRecord {
                redirect_uri: redirect.to_owned(),
                grant,
                expires_at,
                used: false,
            },
        );
    }
    redirect_with(redirect, &[("code", &code), ("state", state)])
}

fn cancel(redirect: &str, state: &str) -> Response {
    redirect_with(
        redirect,
        &[
            ("error", "access_denied"),
            ("error_code", "200"),
            ("error_description", "Permissions error"),
            ("error_reason", "user_denied"),
            ("state", state),
        ],
    )
}

fn redirect_with(redirect: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect) else {
        return error_page("Can't load URL");
    };
    url.query_pairs_mut().extend_pairs(params);
    url.set_fragment(Some("_=_"));
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

fn error_page(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!doctype html><title>Error</title><h1>Sorry, something went wrong.</h1><p>{}</p>",
            escape(message)
        )),
    )
        .into_response()
}

fn consent_page(
    inner: &Shared,
    q: &HashMap<String, String>,
    redirect: &str,
    state: &str,
) -> Response {
    let (user, options) = {
        let st = inner.lock();
        let options: String = st
            .seed
            .wabas()
            .map(|(b, w)| {
                format!(
                    "<option value=\"{}\">{} — {} ({} numbers)</option>",
                    escape(&w.id),
                    escape(&b.name),
                    escape(&w.name),
                    w.phone_numbers.len()
                )
            })
            .collect();
        (st.seed.user_name.clone(), options)
    };
    let hidden: String = [
        ("redirect_uri", redirect),
        ("state", state),
        ("scope", q.get("scope").map_or("", String::as_str)),
    ]
    .iter()
    .map(|(k, v)| {
        format!(
            "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
            escape(v)
        )
    })
    .collect();
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Log in with Facebook (emulated)</title></head><body>\
<p><strong>Emulated Facebook Login</strong> — nothing here talks to Meta.</p>\
<h1>Continue as {user}?</h1><p>{app} is requesting access to your WhatsApp accounts.</p>\
<form method=\"get\" action=\"oauth/confirm\">{hidden}\
<label>WhatsApp Business Account <select name=\"waba\"><option value=\"all\">All accounts</option>{options}</select></label>\
<p><button type=\"submit\" name=\"action\" value=\"approve\">Continue</button> \
<button type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button></p></form></body></html>",
        user = escape(&user),
        app = escape(&inner.app_name),
    ))
    .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
