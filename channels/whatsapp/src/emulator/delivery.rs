//! Webhook delivery to the configured target: bodies serialised like Meta's (compact, non-ASCII
//! as lowercase `\uXXXX`, `/` as `\/`), signed `X-Hub-Signature-256: sha256=<hex>` over the
//! exact bytes, retried on a compressed copy of Meta's schedule when the answer is not `200`,
//! optionally duplicated, reordered or batched. Only WABAs our app is subscribed to deliver.

use std::fmt::Write as _;

use serde_json::{Value, json};
use switchboard_core::crypto::hmac_sha256;

use super::state::{DeliveryRecord, SentMessage, Shared};

/// Serialises like Meta: compact JSON, non-ASCII escaped as `\uXXXX` (UTF-16, lowercase hex)
/// and `/` escaped as `\/`.
#[must_use]
pub fn meta_json(value: &Value) -> String {
    let compact = value.to_string();
    let mut out = String::with_capacity(compact.len() + 16);
    for ch in compact.chars() {
        if ch == '/' {
            out.push_str("\\/");
        } else if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`.
#[must_use]
pub fn signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), body))
    )
}

/// The envelope of one or more changes, grouped into one entry per WABA.
pub(crate) fn envelope(changes: &[(String, Value)]) -> Value {
    let mut entries: Vec<(String, Vec<Value>)> = Vec::new();
    for (waba, change) in changes {
        match entries.iter_mut().find(|(w, _)| w == waba) {
            Some((_, list)) => list.push(change.clone()),
            None => entries.push((waba.clone(), vec![change.clone()])),
        }
    }
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|(id, changes)| json!({"id": id, "changes": changes}))
        .collect();
    json!({"object": "whatsapp_business_account", "entry": entry})
}

/// Delivers one change (or queues it when batching). Returns the first attempt's status.
pub(crate) async fn deliver_change(inner: &Shared, waba: &str, change: Value) -> Option<u16> {
    {
        let mut st = inner.lock();
        if !st.subscribed.contains(waba) {
            tracing::debug!(waba, "emulator: app not subscribed, webhook dropped");
            return None;
        }
        if st.faults.batch {
            st.batch.push((waba.to_owned(), change));
            return None;
        }
    }
    deliver_body(inner, meta_json(&envelope(&[(waba.to_owned(), change)]))).await
}

/// Sends every queued change as one POST.
pub(crate) async fn flush(inner: &Shared) -> Option<u16> {
    let queued = std::mem::take(&mut inner.lock().batch);
    if queued.is_empty() {
        return None;
    }
    deliver_body(inner, meta_json(&envelope(&queued))).await
}

/// Records and POSTs `body`; retries in the background on failure.
pub(crate) async fn deliver_body(inner: &Shared, body: String) -> Option<u16> {
    let (id, target, duplicate) = {
        let mut st = inner.lock();
        let id = st.next();
        let sig = signature(&inner.app_secret, body.as_bytes());
        st.deliveries.push(DeliveryRecord {
            id,
            body: body.clone(),
            signature: sig,
            attempts: Vec::new(),
            delivered: false,
        });
        (id, st.webhook_url.clone(), st.faults.duplicate_delivery)
    };
    let target = target?;
    let first = attempt(inner, id, &target, &body).await;
    if first != 200 {
        let (inner, target, body) = (inner.clone(), target.clone(), body.clone());
        tokio::spawn(async move { retry(&inner, id, &target, &body).await });
    } else if duplicate {
        let _ = attempt(inner, id, &target, &body).await;
    }
    Some(first)
}

async fn retry(inner: &Shared, id: u64, target: &str, body: &str) {
    for delay in inner.retry_schedule.clone() {
        tokio::time::sleep(delay).await;
        if attempt(inner, id, target, body).await == 200 {
            return;
        }
    }
}

async fn attempt(inner: &Shared, id: u64, target: &str, body: &str) -> u16 {
    let sig = signature(&inner.app_secret, body.as_bytes());
    let result = inner
        .http
        .post(target)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sig)
        .body(body.to_owned())
        .send()
        .await;
    let status = result.map_or(0, |r| r.status().as_u16());
    {
        let mut st = inner.lock();
        // From the newest: the record is almost always among the last few, and a long run
        // records hundreds of thousands.
        if let Some(record) = st.deliveries.iter_mut().rev().find(|d| d.id == id) {
            record.attempts.push(status);
            record.delivered |= status == 200;
        }
    }
    inner.delivered.notify_waiters();
    status
}

/// Schedules the status webhooks of an accepted message: sent → delivered → read, or
/// sent → failed, reversed when out-of-order delivery is switched on.
pub(crate) fn after_send(inner: &Shared, sent: SentMessage) {
    let inner = inner.clone();
    tokio::spawn(async move {
        tokio::time::sleep(inner.status_delay).await;
        let Some((waba, changes)) = status_changes(&inner, &sent) else {
            return;
        };
        for change in changes {
            deliver_change(&inner, &waba, change).await;
        }
    });
}

fn status_changes(inner: &Shared, sent: &SentMessage) -> Option<(String, Vec<Value>)> {
    let st = inner.lock();
    if !st.faults.statuses {
        return None;
    }
    let (waba, phone) = st.seed.phone(&sent.phone_number_id)?;
    let metadata =
        json!({"display_phone_number": phone.display_phone_number, "phone_number_id": phone.id});
    let recipient: String = sent.to.chars().filter(char::is_ascii_digit).collect();
    let now = st.now();
    let plan: Vec<(&str, Option<Value>)> = match &st.faults.fail_status {
        Some(fail) => vec![
            ("sent", None),
            (
                "failed",
                Some(json!([{
                    "code": fail.code, "title": fail.title, "message": fail.title,
                    "error_data": {"details": fail.details}, "href": "/documentation/business-messaging/whatsapp/support/error-codes",
                }])),
            ),
        ],
        None => vec![("sent", None), ("delivered", None), ("read", None)],
    };
    let mut changes: Vec<Value> = plan
        .into_iter()
        .enumerate()
        .map(|(i, (status, errors))| {
            let mut item = json!({"id": sent.id, "status": status, "timestamp": (now + i64::try_from(i).unwrap_or(0)).to_string(), "recipient_id": recipient});
            if let Some(reference) = sent.body.get("biz_opaque_callback_data") {
                item["biz_opaque_callback_data"] = reference.clone();
            }
            match errors {
                Some(errors) => item["errors"] = errors,
                None if status != "read" => item["pricing"] = json!({"billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}),
                None => {}
            }
            json!({"value": {"messaging_product": "whatsapp", "metadata": metadata, "statuses": [item]}, "field": "messages"})
        })
        .collect();
    if st.faults.out_of_order {
        changes.reverse();
    }
    Some((waba.id.clone(), changes))
}
