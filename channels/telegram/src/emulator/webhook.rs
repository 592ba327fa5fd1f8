//! `setWebhook`, `deleteWebhook`, `getWebhookInfo` and `getUpdates`, with the real server's
//! checks, throttle and descriptions.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::methods::{Outcome, Params};
use super::state::{Bot, EmulatorConfig, Inner, Webhook};
use super::wire::Answer;
use crate::token::is_secret_char;

const PORTS: &[u16] = &[443, 80, 88, 8443];

fn truthy(params: &Params, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1"))
}

fn check_url(config: &EmulatorConfig, raw: &str) -> Result<(), Answer> {
    let url = url::Url::parse(raw)
        .or_else(|_| url::Url::parse(&format!("https://{raw}")))
        .map_err(|_| Answer::bad_request("invalid webhook URL specified"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if config.allow_loopback_webhooks && loopback {
        return Ok(());
    }
    if url.scheme() != "https" {
        return Err(Answer::bad_request(
            "bad webhook: An HTTPS URL must be provided for webhook",
        ));
    }
    if !PORTS.contains(&url.port_or_known_default().unwrap_or(0)) {
        return Err(Answer::bad_request(
            "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
        ));
    }
    Ok(())
}

fn check_secret(secret: &str) -> Result<(), Answer> {
    if secret.len() > 256 {
        return Err(Answer::bad_request("secret token is too long"));
    }
    if !secret.chars().all(is_secret_char) {
        return Err(Answer::bad_request(
            "secret token contains unallowed characters",
        ));
    }
    Ok(())
}

fn parse_webhook(config: &EmulatorConfig, params: &Params) -> Result<Webhook, Answer> {
    let url = params.get("url").cloned().unwrap_or_default();
    check_url(config, &url)?;
    let secret = params
        .get("secret_token")
        .filter(|s| !s.is_empty())
        .cloned();
    if let Some(secret) = &secret {
        check_secret(secret)?;
    }
    let max_connections = params
        .get("max_connections")
        .and_then(|m| m.trim().parse::<i64>().ok())
        .unwrap_or(40)
        .clamp(1, 100);
    let allowed_updates = params
        .get("allowed_updates")
        .and_then(|a| serde_json::from_str::<Vec<String>>(a).ok());
    Ok(Webhook {
        url,
        secret,
        max_connections,
        allowed_updates,
    })
}

pub(crate) fn set_webhook(
    inner: &mut Inner,
    config: &EmulatorConfig,
    token: &str,
    params: &Params,
) -> Outcome {
    if params.get("url").is_none_or(String::is_empty) {
        return delete_webhook(inner, token, params).into();
    }
    let bot = inner.bots.get_mut(token).expect("resolved bot");
    let now = Instant::now();
    let throttled = bot
        .last_set_webhook
        .is_some_and(|t| now - t < Duration::from_secs(1));
    if config.throttle_set_webhook && throttled {
        return Answer::too_many(1).into();
    }
    let mut webhook = match parse_webhook(config, params) {
        Ok(webhook) => webhook,
        Err(answer) => return answer.into(),
    };
    bot.last_set_webhook = Some(now);
    if webhook.allowed_updates.is_none() {
        webhook.allowed_updates = bot.webhook.as_ref().and_then(|w| w.allowed_updates.clone());
    }
    let same = bot.webhook.as_ref().is_some_and(|old| {
        old.url == webhook.url
            && old.secret == webhook.secret
            && old.max_connections == webhook.max_connections
    });
    if truthy(params, "drop_pending_updates") {
        bot.queues.clear();
    }
    bot.webhook = Some(webhook);
    let answer = if same {
        Answer::ok_described("Webhook is already set")
    } else {
        bot.last_error = None;
        Answer::ok_described("Webhook was set")
    };
    Outcome {
        answer,
        stall: None,
        kick: true,
    }
}

pub(crate) fn delete_webhook(inner: &mut Inner, token: &str, params: &Params) -> Answer {
    let bot = inner.bots.get_mut(token).expect("resolved bot");
    if truthy(params, "drop_pending_updates") {
        bot.queues.clear();
    }
    match bot.webhook.take() {
        Some(_) => Answer::ok_described("Webhook was deleted"),
        None => Answer::ok_described("Webhook is already deleted"),
    }
}

/// `WebhookInfo`, emitting optional fields only when the server would.
pub(crate) fn webhook_info(bot: &Bot) -> Answer {
    let mut info = json!({
        "url": bot.webhook.as_ref().map(|w| w.url.clone()).unwrap_or_default(),
        "has_custom_certificate": false,
        "pending_update_count": bot.pending_count(),
    });
    if let Some(webhook) = &bot.webhook {
        info["max_connections"] = json!(webhook.max_connections);
        info["ip_address"] = json!("127.0.0.1");
        if let Some(allowed) = &webhook.allowed_updates {
            info["allowed_updates"] = json!(allowed);
        }
    }
    if let Some((date, message)) = &bot.last_error {
        info["last_error_date"] = json!(date);
        info["last_error_message"] = json!(message);
    }
    Answer::ok(info)
}

/// `getUpdates`: `409` while a webhook is set; otherwise confirms updates below `offset` and
/// returns the pending ones in id order.
pub(crate) fn get_updates(inner: &mut Inner, token: &str, params: &Params) -> Answer {
    let bot = inner.bots.get_mut(token).expect("resolved bot");
    if bot.webhook.is_some() {
        return Answer::err(
            409,
            "Conflict: can't use getUpdates method while webhook is active; \
             use deleteWebhook to delete the webhook first",
        );
    }
    let offset = params.get("offset").and_then(|o| o.parse::<i64>().ok());
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    if let Some(offset) = offset {
        for queue in bot.queues.values_mut() {
            queue.retain(|p| p.update_id >= offset);
        }
    }
    let mut pending: Vec<_> = bot.queues.values().flatten().collect();
    pending.sort_by_key(|p| p.update_id);
    let updates: Vec<Value> = pending
        .into_iter()
        .take(limit)
        .map(|p| {
            let mut update = json!({ "update_id": p.update_id });
            update[p.kind.as_str()] = p.payload.clone();
            update
        })
        .collect();
    Answer::ok(Value::Array(updates))
}
