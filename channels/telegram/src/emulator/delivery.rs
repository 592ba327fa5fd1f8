//! Webhook delivery, as Telegram's server does it: updates of one queue (chat) strictly one at a
//! time and in order, queues in parallel; any 2xx acknowledges, anything else (redirects
//! included) is retried on the configured schedule and recorded in `last_error_message`.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use super::state::{DeliveryAttempt, Inner};

/// One POST to make.
struct Job {
    url: String,
    secret: Option<String>,
    body: String,
    update_id: i64,
    bot_id: i64,
}

/// The result of one POST.
enum Reply {
    Acknowledged(u16),
    Refused {
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
    },
}

/// Starts a delivery task for every non-empty queue of the bot that has none running.
pub(crate) fn kick(shared: &Arc<Shared>, token: &str) {
    let keys: Vec<i64> = {
        let mut inner = shared.lock();
        let Some(bot) = inner.bots.get_mut(token) else {
            return;
        };
        if bot.webhook.is_none() {
            return;
        }
        let idle: Vec<i64> = bot
            .queues
            .iter()
            .filter(|(k, q)| !q.is_empty() && !bot.active_queues.contains(k))
            .map(|(k, _)| *k)
            .collect();
        bot.active_queues.extend(idle.iter().copied());
        idle
    };
    for key in keys {
        tokio::spawn(run_queue(Arc::clone(shared), token.to_owned(), key));
    }
}

async fn run_queue(shared: Arc<Shared>, token: String, key: i64) {
    loop {
        let job = next_job(&mut shared.lock(), &token, key);
        let Some(job) = job else {
            shared.notify.notify_waiters();
            return;
        };
        let reply = post(&shared.http, &job).await;
        let duplicate =
            matches!(reply, Reply::Acknowledged(_)) && shared.lock().duplicate_deliveries;
        let delay = record(&shared, &token, key, &job, reply);
        if duplicate {
            let again = post(&shared.http, &job).await;
            record_attempt(&mut shared.lock(), &job, &again);
        }
        shared.notify.notify_waiters();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// The head of the queue, or `None` (and the queue marked idle) when there is nothing to send.
fn next_job(inner: &mut Inner, token: &str, key: i64) -> Option<Job> {
    let bot = inner.bots.get_mut(token)?;
    let head = bot.queues.get(&key).and_then(|q| q.front());
    match (&bot.webhook, head) {
        (Some(webhook), Some(head)) => Some(Job {
            url: webhook.url.clone(),
            secret: webhook.secret.clone(),
            body: head.body(),
            update_id: head.update_id,
            bot_id: bot.seed.id,
        }),
        _ => {
            bot.active_queues.remove(&key);
            if bot
                .queues
                .get(&key)
                .is_some_and(std::collections::VecDeque::is_empty)
            {
                bot.queues.remove(&key);
            }
            None
        }
    }
}

async fn post(http: &reqwest::Client, job: &Job) -> Reply {
    let mut request = http
        .post(&job.url)
        .header("content-type", "application/json")
        .body(job.body.clone());
    if let Some(secret) = &job.secret {
        request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            Reply::Acknowledged(response.status().as_u16())
        }
        Ok(response) => {
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(3600)));
            Reply::Refused {
                status: Some(status.as_u16()),
                message: format!(
                    "Wrong response from the webhook: {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("Unknown")
                ),
                retry_after,
            }
        }
        Err(error) => Reply::Refused {
            status: None,
            message: if error.is_timeout() {
                "Read timeout expired".to_owned()
            } else if error.is_connect() {
                "Connection refused".to_owned()
            } else {
                "Webhook connection closed".to_owned()
            },
            retry_after: None,
        },
    }
}

fn record_attempt(inner: &mut Inner, job: &Job, reply: &Reply) {
    let (status, error) = match reply {
        Reply::Acknowledged(status) => (Some(*status), None),
        Reply::Refused {
            status, message, ..
        } => (*status, Some(message.clone())),
    };
    inner.deliveries.push(DeliveryAttempt {
        bot_id: job.bot_id,
        update_id: job.update_id,
        status,
        error,
    });
}

/// Books the outcome: pops an acknowledged (or finally failed) update, records the error, and
/// returns how long to wait before the next attempt.
fn record(shared: &Shared, token: &str, key: i64, job: &Job, reply: Reply) -> Duration {
    let mut inner = shared.lock();
    record_attempt(&mut inner, job, &reply);
    let Some(bot) = inner.bots.get_mut(token) else {
        return Duration::ZERO;
    };
    let Some(queue) = bot.queues.get_mut(&key) else {
        return Duration::ZERO;
    };
    if queue.front().is_none_or(|p| p.update_id != job.update_id) {
        return Duration::ZERO;
    }
    match reply {
        Reply::Acknowledged(_) => {
            queue.pop_front();
            Duration::ZERO
        }
        Reply::Refused {
            message,
            retry_after,
            ..
        } => {
            let head = queue.front_mut().expect("checked above");
            head.failures += 1;
            let failures = head.failures;
            if failures >= shared.config.retry.max_attempts {
                queue.pop_front();
            }
            bot.last_error = Some((chrono::Utc::now().timestamp(), message));
            retry_after.unwrap_or_else(|| shared.config.retry.delay_after(failures))
        }
    }
}
