//! The Bot API endpoint `/bot<token>/<method>` (and `/bot<token>/test/<method>`): token checks
//! (malformed → `404 Not Found`, unknown or revoked → `401 Unauthorized`), parameters from the
//! query string, urlencoded or JSON bodies (JSON members flattened to strings, as the server
//! does), case-insensitive method names, and the envelope.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::Shared;
use super::methods::{Params, dispatch};
use super::state::{Bot, EmulatorConfig, Inner, SeededBot};
use super::wire::Answer;
use crate::token::BotToken;

/// Splits `/bot<token>/<method>` or `/bot<token>/test/<method>`.
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/bot")?;
    let (token, method) = rest.split_once('/')?;
    let method = method.strip_prefix("test/").unwrap_or(method);
    (!method.is_empty() && !method.contains('/')).then_some((token, method))
}

fn well_formed(token: &str) -> bool {
    BotToken::parse(token).is_ok_and(|t| t.expose() == token)
}

fn params_of(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Params {
    let mut params = Params::new();
    if let Some(query) = uri.query() {
        params.extend(url::form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/json") {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            for (name, value) in map {
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                params.insert(name, text);
            }
        }
    } else if !content_type.starts_with("multipart/") {
        params.extend(url::form_urlencoded::parse(body).into_owned());
    }
    params
}

/// Finds the bot of a well-formed token, creating it in auto-accept mode.
fn resolve(inner: &mut Inner, config: &EmulatorConfig, token: &str) -> Result<(), Answer> {
    if let Some(bot) = inner.bots.get(token) {
        return if bot.revoked {
            Err(Answer::unauthorized())
        } else {
            Ok(())
        };
    }
    let parsed = BotToken::parse(token).map_err(|_| Answer::not_found())?;
    let id = parsed.bot_id();
    if !config.auto_accept_tokens || inner.token_of(id).is_some() {
        return Err(Answer::unauthorized());
    }
    let seed = SeededBot {
        id,
        token: token.to_owned(),
        username: format!("sandbox_{id}_bot"),
        first_name: "Sandbox Bot".to_owned(),
    };
    inner.bots.insert(token.to_owned(), Bot::new(seed));
    Ok(())
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((token, method)) = split_path(uri.path()) else {
        return Answer::not_found().into_response();
    };
    if !well_formed(token) {
        return Answer::not_found().into_response();
    }
    let params = params_of(&uri, &headers, &body);
    let method = method.to_ascii_lowercase();
    let outcome = {
        let mut inner = shared.lock();
        match resolve(&mut inner, &shared.config, token) {
            Ok(()) => dispatch(&mut inner, &shared.config, token, &method, &params),
            Err(answer) => answer.into(),
        }
    };
    if outcome.kick {
        super::delivery::kick(&shared, token);
    }
    if let Some(stall) = outcome.stall {
        tokio::time::sleep(stall).await;
    }
    outcome.answer.into_response()
}
