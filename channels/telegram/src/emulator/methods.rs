//! The Bot API methods the emulator implements, each a function of the locked state and the
//! request's parameters (all strings, as the real server sees them).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::state::{Bot, EmulatorConfig, Inner, RateLimits, SendFault, SentMessage};
use super::wire::Answer;

pub(crate) type Params = BTreeMap<String, String>;

/// What a call produced: the answer, an optional stall before answering, and whether webhook
/// delivery must be (re)started.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub answer: Answer,
    pub stall: Option<Duration>,
    pub kick: bool,
}

impl From<Answer> for Outcome {
    fn from(answer: Answer) -> Self {
        Self {
            answer,
            stall: None,
            kick: false,
        }
    }
}

const CHAT_ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

/// Methods that send a message with a file, and their file parameter.
const MEDIA_METHODS: &[(&str, &str, &str)] = &[
    ("sendphoto", "sendPhoto", "photo"),
    ("senddocument", "sendDocument", "document"),
    ("sendaudio", "sendAudio", "audio"),
    ("sendvideo", "sendVideo", "video"),
    ("sendvoice", "sendVoice", "voice"),
    ("sendsticker", "sendSticker", "sticker"),
];

/// Runs `method` (lower-cased) for the bot with `token`.
pub(crate) fn dispatch(
    inner: &mut Inner,
    config: &EmulatorConfig,
    token: &str,
    method: &str,
    params: &Params,
) -> Outcome {
    match method {
        "getme" => Answer::ok(get_me(&inner.bots[token])).into(),
        "setwebhook" => super::webhook::set_webhook(inner, config, token, params),
        "deletewebhook" => super::webhook::delete_webhook(inner, token, params).into(),
        "getwebhookinfo" => super::webhook::webhook_info(&inner.bots[token]).into(),
        "getupdates" => super::webhook::get_updates(inner, token, params).into(),
        "answercallbackquery" | "setmessagereaction" => with_chat_check(inner, token, params),
        "sendchataction" => send_chat_action(inner, token, params).into(),
        "sendmessage" => with_faults(inner, |inner| send_message(inner, config, token, params)),
        _ => match MEDIA_METHODS.iter().find(|(m, _, _)| *m == method) {
            Some((_, name, field)) => with_faults(inner, |inner| {
                send_media(inner, config, token, name, field, params)
            }),
            None => Answer::not_found().into(),
        },
    }
}

fn get_me(bot: &Bot) -> Value {
    json!({
        "id": bot.seed.id, "is_bot": true, "first_name": bot.seed.first_name,
        "username": bot.seed.username, "can_join_groups": true,
        "can_read_all_group_messages": false, "supports_inline_queries": false,
        "can_connect_to_business": false, "has_main_web_app": false,
    })
}

/// Applies the next injected send fault, if any, around a send.
fn with_faults(inner: &mut Inner, send: impl FnOnce(&mut Inner) -> Answer) -> Outcome {
    match inner.send_faults.pop_front() {
        Some(SendFault::TooManyRequests { retry_after }) => Answer::too_many(retry_after).into(),
        Some(SendFault::ServerError) => Answer::err(500, "Internal Server Error").into(),
        Some(SendFault::Stall { millis }) => Outcome {
            answer: send(inner),
            stall: Some(Duration::from_millis(millis)),
            kick: false,
        },
        None => send(inner).into(),
    }
}

fn with_chat_check(inner: &mut Inner, token: &str, params: &Params) -> Outcome {
    if params.contains_key("callback_query_id") {
        return Answer::ok(Value::Bool(true)).into();
    }
    match target_chat(inner, token, params) {
        Ok(_) => Answer::ok(Value::Bool(true)).into(),
        Err(answer) => answer.into(),
    }
}

/// Resolves `chat_id` to a known chat the bot may write to.
fn target_chat(inner: &Inner, token: &str, params: &Params) -> Result<i64, Answer> {
    let raw = params.get("chat_id").map(|s| s.trim()).unwrap_or_default();
    if raw.is_empty() {
        return Err(Answer::bad_request("chat_id is empty"));
    }
    let chat_id = match raw.parse::<i64>() {
        Ok(id) => id,
        Err(_) => inner
            .chats
            .values()
            .find(|c| c.username.as_deref() == raw.strip_prefix('@'))
            .map(|c| c.id)
            .ok_or_else(|| Answer::bad_request("chat not found"))?,
    };
    if let Some(to) = inner.migrated.get(&chat_id) {
        return Err(Answer::Err {
            code: 400,
            description: "Bad Request: group chat was upgraded to a supergroup chat".into(),
            parameters: Some(json!({ "migrate_to_chat_id": to })),
        });
    }
    if !inner.chats.contains_key(&chat_id) {
        return Err(Answer::bad_request("chat not found"));
    }
    if inner.bots[token].blocked_by.contains(&chat_id) {
        return Err(Answer::err(403, "Forbidden: bot was blocked by the user"));
    }
    Ok(chat_id)
}

fn send_chat_action(inner: &Inner, token: &str, params: &Params) -> Answer {
    let chat = match target_chat(inner, token, params) {
        Ok(chat) => chat,
        Err(answer) => return answer,
    };
    let action = params.get("action").map(String::as_str).unwrap_or_default();
    if !CHAT_ACTIONS.contains(&action) {
        return Answer::bad_request("wrong parameter action in request");
    }
    let _ = chat;
    Answer::ok(Value::Bool(true))
}

fn send_message(
    inner: &mut Inner,
    config: &EmulatorConfig,
    token: &str,
    params: &Params,
) -> Answer {
    let text = params.get("text").map(String::as_str).unwrap_or_default();
    if text.trim().is_empty() {
        return Answer::bad_request("message text is empty");
    }
    if text.len() > 32_768 {
        return Answer::bad_request("text is too long");
    }
    let chat = match target_chat(inner, token, params) {
        Ok(chat) => chat,
        Err(answer) => return answer,
    };
    // TDLib counts the limit in Unicode code points.
    if text.trim().chars().count() > 4096 {
        return Answer::bad_request("message is too long");
    }
    let mut message = json!({ "text": text.trim() });
    if let Some(Ok(value)) = params
        .get("link_preview_options")
        .map(|p| serde_json::from_str::<Value>(p))
    {
        message["link_preview_options"] = value;
    }
    deliver_sent(inner, config, token, "sendMessage", chat, params, message)
}

fn send_media(
    inner: &mut Inner,
    config: &EmulatorConfig,
    token: &str,
    method: &'static str,
    field: &str,
    params: &Params,
) -> Answer {
    let Some(file) = params.get(field).filter(|f| !f.is_empty()) else {
        return Answer::bad_request(&format!("there is no {field} in the request"));
    };
    let chat = match target_chat(inner, token, params) {
        Ok(chat) => chat,
        Err(answer) => return answer,
    };
    let stored = json!({"file_id": file, "file_unique_id": format!("u{}", file.len())});
    let mut message = json!({});
    message[field] = if field == "photo" {
        json!([stored])
    } else {
        stored
    };
    if let Some(caption) = params.get("caption") {
        message["caption"] = json!(caption);
    }
    deliver_sent(inner, config, token, method, chat, params, message)
}

/// Checks flood limits, records the message and answers with the sent `Message`.
fn deliver_sent(
    inner: &mut Inner,
    config: &EmulatorConfig,
    token: &str,
    method: &str,
    chat_id: i64,
    params: &Params,
    mut message: Value,
) -> Answer {
    let chat = inner.chats[&chat_id].to_json();
    let bot = inner.bots.get_mut(token).expect("resolved bot");
    let flooded = config
        .rate_limits
        .and_then(|limits| flood_wait(bot, chat_id, limits, Instant::now()));
    if let Some(retry_after) = flooded {
        return Answer::too_many(retry_after);
    }
    let message_id = bot.next_message_id(chat_id);
    message["message_id"] = json!(message_id);
    message["from"] = bot.user_json();
    message["chat"] = chat;
    message["date"] = json!(chrono::Utc::now().timestamp());
    if let Some(thread) = params
        .get("message_thread_id")
        .and_then(|t| t.parse::<i64>().ok())
    {
        message["message_thread_id"] = json!(thread);
        message["is_topic_message"] = json!(true);
    }
    let bot_id = bot.seed.id;
    inner.sent.push(SentMessage {
        bot_id,
        method: method.to_owned(),
        chat_id,
        message_id,
        text: message
            .get("text")
            .and_then(Value::as_str)
            .map(str::to_owned),
        params: params.clone(),
    });
    Answer::ok(message)
}

/// The `retry_after` of the first flood limit a send to `chat_id` now would break.
fn flood_wait(bot: &mut Bot, chat_id: i64, limits: RateLimits, now: Instant) -> Option<u64> {
    let minute = Duration::from_secs(60);
    let second = Duration::from_secs(1);
    while bot
        .send_times
        .front()
        .is_some_and(|(t, _)| now - *t > minute)
    {
        bot.send_times.pop_front();
    }
    let wait = |window: Duration, limit: usize, only_chat: bool| {
        let recent: Vec<Instant> = bot
            .send_times
            .iter()
            .filter(|(t, c)| now - *t < window && (!only_chat || *c == chat_id))
            .map(|(t, _)| *t)
            .collect();
        (recent.len() >= limit).then(|| {
            let oldest = recent[recent.len() - limit];
            (window - (now - oldest)).as_secs_f64().ceil().max(1.0) as u64
        })
    };
    let verdict = wait(second, limits.per_bot_per_second, false)
        .or_else(|| wait(second, limits.per_chat_per_second, true))
        .or_else(|| {
            (chat_id < 0)
                .then(|| wait(minute, limits.per_group_per_minute, true))
                .flatten()
        });
    if verdict.is_none() {
        bot.send_times.push_back((now, chat_id));
    }
    verdict
}
