//! Units of work on PostgreSQL: one transaction, one set-based statement per phase (arrays
//! bound as parameters and expanded with `UNNEST`), one commit.
//!
//! Rows are written in a stable order (conversations by key, messages and jobs in the order
//! given, updates by id) so that concurrent units on several instances take row locks in the
//! same order and rarely deadlock; a unit that does fail is retried by its caller.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row as _};
use switchboard_core::domain::DeliveryStatus;
use switchboard_core::store::{
    Committed, ConversationUpsert, Direction, Inserted, JobEnd, NewJob, NewMessage, StoreResult,
    Stored, Work,
};
use switchboard_core::{ConversationId, IntegrationId, JobId, MessageId, StoreError};
use uuid::Uuid;

use super::{opt_ts, ts};
use crate::common;
use crate::error::db;

/// Applies a unit in one transaction.
pub(super) async fn commit_unit(pool: &PgPool, work: Work) -> StoreResult<Committed> {
    if work.is_empty() {
        return Ok(Committed::default());
    }
    let now = common::now();
    let mut tx = pool.begin().await.map_err(db)?;
    let mut committed = Committed::default();
    touch_webhooks(&mut tx, &work.webhook_touches).await?;

    // Arrivals: conversations first, then messages, then follow-ups.
    let mut pending_jobs = Vec::new();
    if !work.arrivals.is_empty() {
        let upserts: Vec<&ConversationUpsert> =
            work.arrivals.iter().map(|a| &a.conversation).collect();
        let conversations = upsert_conversations(&mut tx, &upserts, now).await?;
        let mut messages = Vec::with_capacity(work.arrivals.len());
        for arrival in &work.arrivals {
            let key = (
                arrival.conversation.integration_id,
                arrival.conversation.external_chat_id.clone(),
            );
            let Some(conversation) = conversations.get(&key) else {
                // The chat belongs to another business's conversation: never touched.
                return Err(StoreError::NotFound);
            };
            messages.push(NewMessage {
                conversation_id: *conversation,
                integration_id: arrival.conversation.integration_id,
                direction: Direction::Inbound,
                provider_message_id: Some(arrival.provider_message_id.clone()),
                kind: arrival.kind.clone(),
                text: arrival.text.clone(),
                payload: arrival.payload.clone(),
                status: DeliveryStatus::Delivered,
                provider_timestamp: Some(arrival.provider_timestamp),
            });
        }
        let stored = insert_messages(&mut tx, &messages, now).await?;
        let mut replies = Vec::new();
        let mut reply_follow_ups = Vec::new();
        for (arrival, stored) in work.arrivals.iter().zip(&stored) {
            if let Some(follow_up) = &arrival.follow_up {
                pending_jobs.push(follow_up.job(stored.message_id(), stored.conversation_id));
            }
            // A repeat's replies were committed with its first arrival.
            if matches!(stored.message, Inserted::Duplicate(_)) {
                continue;
            }
            for reply in &arrival.replies {
                replies.push(
                    reply.message(stored.conversation_id, arrival.conversation.integration_id),
                );
                reply_follow_ups.push(reply.follow_up.as_ref());
            }
        }
        committed.arrivals = stored;
        if !replies.is_empty() {
            let stored = insert_messages(&mut tx, &replies, now).await?;
            for (follow_up, stored) in reply_follow_ups.into_iter().zip(&stored) {
                if let Some(follow_up) = follow_up {
                    pending_jobs.push(follow_up.job(stored.message_id(), stored.conversation_id));
                }
            }
            committed.replies = stored;
        }
    }
    if !work.outgoing.is_empty() {
        let messages: Vec<NewMessage> = work.outgoing.iter().map(|o| o.message.clone()).collect();
        let stored = insert_messages(&mut tx, &messages, now).await?;
        for (outgoing, stored) in work.outgoing.iter().zip(&stored) {
            if let Some(follow_up) = &outgoing.follow_up {
                pending_jobs.push(follow_up.job(stored.message_id(), stored.conversation_id));
            }
        }
        committed.outgoing = stored;
    }
    committed.jobs_created = insert_jobs(&mut tx, &pending_jobs, now).await?;

    apply_statuses(&mut tx, &work).await?;
    set_statuses(&mut tx, &work, now).await?;
    accept_sends(&mut tx, &work, now).await?;
    for record in &work.account_events {
        if let (Some(chat), Some(reachable)) = (record.chat.as_deref(), record.reachable) {
            sqlx::query(
                "UPDATE conversations SET unreachable = $3, updated_at = $4 \
                 WHERE integration_id = $1 AND external_chat_id = $2",
            )
            .bind(record.integration_id.as_uuid())
            .bind(chat)
            .bind(!reachable)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        sqlx::query(
            "INSERT INTO integration_events (id, integration_id, kind, summary, payload, \
                 created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(record.integration_id.as_uuid())
        .bind(&record.kind)
        .bind(&record.summary)
        .bind(Json(&record.raw))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    end_jobs(&mut tx, &work.job_ends, now).await?;
    finish_inbox(&mut tx, &work, now).await?;
    tx.commit().await.map_err(db)?;
    Ok(committed)
}

/// Upserts each distinct (integration, chat) once — the latest times, the last name given —
/// and returns the conversation ids by key. A chat held by another business's row is left
/// alone and missing from the result.
async fn upsert_conversations<'a>(
    tx: &mut PgConnection,
    upserts: &[&'a ConversationUpsert],
    now: DateTime<Utc>,
) -> StoreResult<HashMap<(IntegrationId, String), ConversationId>> {
    let mut merged: BTreeMap<(IntegrationId, &'a str), ConversationUpsert> = BTreeMap::new();
    for upsert in upserts {
        let key = (upsert.integration_id, upsert.external_chat_id.as_str());
        match merged.get_mut(&key) {
            None => {
                merged.insert(key, (*upsert).clone());
            }
            Some(seen) => {
                if upsert.contact_name.is_some() {
                    seen.contact_name.clone_from(&upsert.contact_name);
                }
                seen.last_message_at = seen.last_message_at.max(upsert.last_message_at);
                seen.window_expires_at = seen.window_expires_at.max(upsert.window_expires_at);
            }
        }
    }
    let count = merged.len();
    let (mut ids, mut businesses, mut integrations, mut channels, mut chats) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    let (mut names, mut lasts, mut windows) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    for upsert in merged.values() {
        ids.push(ConversationId::new().as_uuid());
        businesses.push(upsert.business_id.as_uuid());
        integrations.push(upsert.integration_id.as_uuid());
        channels.push(upsert.channel_type.as_str().to_owned());
        chats.push(upsert.external_chat_id.clone());
        names.push(upsert.contact_name.clone());
        lasts.push(ts(upsert.last_message_at));
        windows.push(opt_ts(upsert.window_expires_at));
    }
    let sql = format!(
        "INSERT INTO conversations (id, business_id, integration_id, channel_type, \
             external_chat_id, contact_name, last_message_at, window_expires_at, created_at, \
             updated_at) \
         SELECT v.id, v.business_id, v.integration_id, v.channel_type, v.chat, v.name, \
             v.last_at, v.window_at, $9, $9 \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], \
             $7::timestamptz[], $8::timestamptz[]) \
             AS v(id, business_id, integration_id, channel_type, chat, name, last_at, window_at) \
         {conflict} RETURNING id, integration_id, external_chat_id",
        conflict = &*crate::conversations::PG_UPSERT_CONFLICT,
    );
    let rows = sqlx::query(&sql)
        .bind(ids)
        .bind(businesses)
        .bind(integrations)
        .bind(channels)
        .bind(chats)
        .bind(names)
        .bind(lasts)
        .bind(windows)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let integration = IntegrationId::from_uuid(row.try_get("integration_id").map_err(db)?);
        let chat: String = row.try_get("external_chat_id").map_err(db)?;
        let id = ConversationId::from_uuid(row.try_get("id").map_err(db)?);
        found.insert((integration, chat), id);
    }
    Ok(found)
}

/// Inserts messages once per (integration, provider id); a repeat — in the database or earlier
/// in the same slice — is returned as the first one's id.
async fn insert_messages(
    tx: &mut PgConnection,
    messages: &[NewMessage],
    now: DateTime<Utc>,
) -> StoreResult<Vec<Stored>> {
    // Fresh ids in order, so a conversation's messages keep the order they were given in.
    let fresh: Vec<MessageId> = messages.iter().map(|_| MessageId::new()).collect();
    let mut first_of: HashMap<(IntegrationId, &str), usize> = HashMap::new();
    let mut insert = Vec::with_capacity(messages.len());
    for (n, message) in messages.iter().enumerate() {
        match message.provider_message_id.as_deref() {
            Some(pid) => {
                if let Entry::Vacant(slot) = first_of.entry((message.integration_id, pid)) {
                    slot.insert(n);
                    insert.push(n);
                }
            }
            None => insert.push(n),
        }
    }
    let count = insert.len();
    let mut ids = Vec::with_capacity(count);
    let mut conversations = Vec::with_capacity(count);
    let mut integrations = Vec::with_capacity(count);
    let mut directions = Vec::with_capacity(count);
    let mut pids = Vec::with_capacity(count);
    let mut kinds = Vec::with_capacity(count);
    let mut texts = Vec::with_capacity(count);
    let mut payloads = Vec::with_capacity(count);
    let mut statuses = Vec::with_capacity(count);
    let mut provider_times = Vec::with_capacity(count);
    for &n in &insert {
        let message = &messages[n];
        ids.push(fresh[n].as_uuid());
        conversations.push(message.conversation_id.as_uuid());
        integrations.push(message.integration_id.as_uuid());
        directions.push(message.direction.as_str());
        pids.push(message.provider_message_id.as_deref());
        kinds.push(message.kind.as_str());
        texts.push(message.text.as_deref());
        payloads.push(Json(&message.payload));
        statuses.push(message.status.as_str());
        provider_times.push(opt_ts(message.provider_timestamp));
    }
    let created: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO messages (id, conversation_id, integration_id, direction, \
             provider_message_id, type, text, payload, status, status_at, provider_timestamp, \
             created_at) \
         SELECT v.id, v.conversation_id, v.integration_id, v.direction, v.pid, v.kind, v.text, \
             v.payload, v.status, $11, v.provider_at, $11 \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], \
             $7::text[], $8::jsonb[], $9::text[], $10::timestamptz[]) WITH ORDINALITY \
             AS v(id, conversation_id, integration_id, direction, pid, kind, text, payload, \
                 status, provider_at, n) \
         ORDER BY v.n \
         ON CONFLICT (integration_id, provider_message_id) DO NOTHING \
         RETURNING id",
    )
    .bind(&ids)
    .bind(conversations)
    .bind(integrations)
    .bind(directions)
    .bind(&pids)
    .bind(kinds)
    .bind(texts)
    .bind(payloads)
    .bind(statuses)
    .bind(provider_times)
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let created: HashSet<Uuid> = created.into_iter().collect();

    // Messages already stored before this unit: their first ids.
    let mut earlier: HashMap<(IntegrationId, String), (MessageId, ConversationId)> = HashMap::new();
    let repeats: Vec<usize> = insert
        .iter()
        .copied()
        .filter(|&n| !created.contains(&fresh[n].as_uuid()))
        .collect();
    if !repeats.is_empty() {
        let integrations: Vec<Uuid> = repeats
            .iter()
            .map(|&n| messages[n].integration_id.as_uuid())
            .collect();
        let pids: Vec<Option<&str>> = repeats
            .iter()
            .map(|&n| messages[n].provider_message_id.as_deref())
            .collect();
        let rows = sqlx::query(
            "SELECT m.id, m.integration_id, m.provider_message_id, m.conversation_id \
             FROM messages m \
             JOIN UNNEST($1::uuid[], $2::text[]) AS v(integration_id, pid) \
               ON m.integration_id = v.integration_id AND m.provider_message_id = v.pid",
        )
        .bind(integrations)
        .bind(pids)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        for row in rows {
            let integration = IntegrationId::from_uuid(row.try_get("integration_id").map_err(db)?);
            let pid: String = row.try_get("provider_message_id").map_err(db)?;
            let id = MessageId::from_uuid(row.try_get("id").map_err(db)?);
            let conversation =
                ConversationId::from_uuid(row.try_get("conversation_id").map_err(db)?);
            earlier.insert((integration, pid), (id, conversation));
        }
    }

    let mut stored = Vec::with_capacity(messages.len());
    for (n, message) in messages.iter().enumerate() {
        let key = message
            .provider_message_id
            .as_deref()
            .map(|pid| (message.integration_id, pid));
        let first = key.and_then(|k| first_of.get(&k).copied()).unwrap_or(n);
        let result = if created.contains(&fresh[first].as_uuid()) {
            if first == n {
                Stored {
                    message: Inserted::New(fresh[n]),
                    conversation_id: message.conversation_id,
                }
            } else {
                Stored {
                    message: Inserted::Duplicate(fresh[first]),
                    conversation_id: messages[first].conversation_id,
                }
            }
        } else {
            let pid = message.provider_message_id.clone().unwrap_or_default();
            let Some(&(id, conversation_id)) = earlier.get(&(message.integration_id, pid)) else {
                return Err(StoreError::Corrupt(
                    "a message that conflicted on insert could not be found".into(),
                ));
            };
            Stored {
                message: Inserted::Duplicate(id),
                conversation_id,
            }
        };
        stored.push(result);
    }
    Ok(stored)
}

/// Inserts jobs whose dedupe key is not taken; returns how many were created.
async fn insert_jobs(
    tx: &mut PgConnection,
    jobs: &[NewJob],
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let count = jobs.len();
    let mut ids = Vec::with_capacity(count);
    let mut kinds = Vec::with_capacity(count);
    let mut businesses = Vec::with_capacity(count);
    let mut integrations = Vec::with_capacity(count);
    let mut payloads = Vec::with_capacity(count);
    let mut max_attempts = Vec::with_capacity(count);
    let mut run_ats = Vec::with_capacity(count);
    let mut dedupe_keys = Vec::with_capacity(count);
    let mut queue_keys = Vec::with_capacity(count);
    for job in jobs {
        // In order: a queue runs its jobs in id order.
        ids.push(JobId::new().as_uuid());
        kinds.push(job.kind.as_str());
        businesses.push(job.business_id.as_uuid());
        integrations.push(job.integration_id.map(|i| i.as_uuid()));
        payloads.push(Json(&job.payload));
        max_attempts.push(job.max_attempts);
        run_ats.push(ts(job.run_at));
        dedupe_keys.push(job.dedupe_key.as_deref());
        queue_keys.push(job.queue_key.as_deref());
    }
    let result = sqlx::query(
        "INSERT INTO jobs (id, kind, business_id, integration_id, payload, max_attempts, run_at, \
             dedupe_key, queue_key, created_at, updated_at) \
         SELECT v.id, v.kind, v.business_id, v.integration_id, v.payload, v.max_attempts, \
             v.run_at, v.dedupe_key, v.queue_key, $10, $10 \
         FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::jsonb[], $6::int4[], \
             $7::timestamptz[], $8::text[], $9::text[]) WITH ORDINALITY \
             AS v(id, kind, business_id, integration_id, payload, max_attempts, run_at, \
                 dedupe_key, queue_key, n) \
         ORDER BY v.n \
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(ids)
    .bind(kinds)
    .bind(businesses)
    .bind(integrations)
    .bind(payloads)
    .bind(max_attempts)
    .bind(run_ats)
    .bind(dedupe_keys)
    .bind(queue_keys)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(result.rows_affected())
}

/// Provider status reports: references adopted, then each message's most advanced report of
/// the unit applied monotonically (as [`apply_status`] would, one after another).
///
/// [`apply_status`]: switchboard_core::store::ConversationStore::apply_status
async fn apply_statuses(tx: &mut PgConnection, work: &Work) -> StoreResult<()> {
    if work.statuses.is_empty() {
        return Ok(());
    }
    // References: one adoption per message and per provider id, the first report's.
    let mut seen_messages = HashSet::new();
    let mut seen_pids = HashSet::new();
    let (mut ref_ids, mut ref_integrations, mut ref_pids) = (Vec::new(), Vec::new(), Vec::new());
    for report in &work.statuses {
        if let Some(reference) = report.reference
            && seen_messages.insert(reference)
            && seen_pids.insert((report.integration_id, report.provider_message_id.as_str()))
        {
            ref_ids.push(reference.as_uuid());
            ref_integrations.push(report.integration_id.as_uuid());
            ref_pids.push(report.provider_message_id.as_str());
        }
    }
    if !ref_ids.is_empty() {
        sqlx::query(
            "UPDATE messages m SET provider_message_id = v.pid \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS v(id, integration_id, pid) \
             WHERE m.id = v.id AND m.integration_id = v.integration_id \
               AND (m.provider_message_id IS NULL OR m.provider_message_id LIKE 'sb:%') \
               AND NOT EXISTS (SELECT 1 FROM messages x \
                   WHERE x.integration_id = v.integration_id AND x.provider_message_id = v.pid)",
        )
        .bind(ref_ids)
        .bind(ref_integrations)
        .bind(ref_pids)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    // The most advanced report per message; on a tie the first, as one-by-one would keep it.
    let mut best: BTreeMap<(IntegrationId, &str), &switchboard_core::store::StatusReport> =
        BTreeMap::new();
    for report in &work.statuses {
        let key = (report.integration_id, report.provider_message_id.as_str());
        match best.get(&key) {
            Some(kept) if kept.status >= report.status => {}
            _ => {
                best.insert(key, report);
            }
        }
    }
    let count = best.len();
    let mut integrations = Vec::with_capacity(count);
    let mut pids = Vec::with_capacity(count);
    let mut statuses = Vec::with_capacity(count);
    let mut ats = Vec::with_capacity(count);
    let mut codes = Vec::with_capacity(count);
    let mut reasons = Vec::with_capacity(count);
    let mut ranks = Vec::with_capacity(count);
    for report in best.values() {
        integrations.push(report.integration_id.as_uuid());
        pids.push(report.provider_message_id.as_str());
        statuses.push(report.status.as_str());
        ats.push(ts(report.at));
        codes.push(report.error_code.as_deref());
        reasons.push(report.error_reason.as_deref());
        ranks.push(common::status_rank(report.status));
    }
    let rank = &*common::STATUS_RANK_SQL;
    let sql = format!(
        "UPDATE messages SET status = v.new_status, status_at = v.at, \
             error_code = COALESCE(v.code, error_code), \
             error_reason = COALESCE(v.reason, error_reason) \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], \
             $6::text[], $7::int8[]) AS v(integration_id, pid, new_status, at, code, reason, \
             new_rank) \
         WHERE messages.integration_id = v.integration_id \
           AND messages.provider_message_id = v.pid AND {rank} < v.new_rank"
    );
    sqlx::query(&sql)
        .bind(integrations)
        .bind(pids)
        .bind(statuses)
        .bind(ats)
        .bind(codes)
        .bind(reasons)
        .bind(ranks)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// Statuses set by the gateway; the last one given per message wins.
async fn set_statuses(tx: &mut PgConnection, work: &Work, now: DateTime<Utc>) -> StoreResult<()> {
    if work.status_sets.is_empty() {
        return Ok(());
    }
    let mut last: BTreeMap<MessageId, &switchboard_core::store::StatusSet> = BTreeMap::new();
    for set in &work.status_sets {
        last.insert(set.message_id, set);
    }
    let ids: Vec<Uuid> = last.keys().map(MessageId::as_uuid).collect();
    let statuses: Vec<&str> = last.values().map(|s| s.status.as_str()).collect();
    let codes: Vec<Option<&str>> = last.values().map(|s| s.error_code.as_deref()).collect();
    let reasons: Vec<Option<&str>> = last.values().map(|s| s.error_reason.as_deref()).collect();
    sqlx::query(
        "UPDATE messages m SET status = v.status, status_at = $5, error_code = v.code, \
             error_reason = v.reason \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[]) \
             AS v(id, status, code, reason) \
         WHERE m.id = v.id",
    )
    .bind(ids)
    .bind(statuses)
    .bind(codes)
    .bind(reasons)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Accepted sends: the provider's id (unless another message of the integration holds it)
/// and `sent` unless a later status is known.
async fn accept_sends(tx: &mut PgConnection, work: &Work, now: DateTime<Utc>) -> StoreResult<()> {
    if work.accepted.is_empty() {
        return Ok(());
    }
    let mut last: BTreeMap<MessageId, Option<&str>> = BTreeMap::new();
    let mut pids_seen = HashSet::new();
    for accepted in &work.accepted {
        // Two sends of one unit reporting the same provider id: only the first takes it.
        let pid = accepted
            .provider_message_id
            .as_deref()
            .filter(|pid| pids_seen.insert(*pid));
        last.insert(accepted.message_id, pid);
    }
    let ids: Vec<Uuid> = last.keys().map(MessageId::as_uuid).collect();
    let pids: Vec<Option<&str>> = last.values().copied().collect();
    let rank = common::STATUS_RANK_SQL.replace("CASE status", "CASE m.status");
    let sql = format!(
        "UPDATE messages m SET \
             provider_message_id = CASE WHEN v.pid IS NOT NULL AND NOT EXISTS ( \
                 SELECT 1 FROM messages x WHERE x.integration_id = m.integration_id \
                   AND x.provider_message_id = v.pid AND x.id <> m.id) \
                 THEN v.pid ELSE m.provider_message_id END, \
             status = CASE WHEN {rank} < $3 THEN 'sent' ELSE m.status END, \
             status_at = CASE WHEN {rank} < $3 THEN $4 ELSE m.status_at END \
         FROM UNNEST($1::uuid[], $2::text[]) AS v(id, pid) \
         WHERE m.id = v.id"
    );
    sqlx::query(&sql)
        .bind(ids)
        .bind(pids)
        .bind(common::status_rank(DeliveryStatus::Sent))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    Ok(())
}

async fn touch_webhooks(
    tx: &mut PgConnection,
    touches: &[(IntegrationId, DateTime<Utc>)],
) -> StoreResult<()> {
    if touches.is_empty() {
        return Ok(());
    }
    let mut latest: BTreeMap<IntegrationId, DateTime<Utc>> = BTreeMap::new();
    for (id, at) in touches {
        let entry = latest.entry(*id).or_insert(*at);
        *entry = (*entry).max(*at);
    }
    let ids: Vec<Uuid> = latest.keys().map(IntegrationId::as_uuid).collect();
    let ats: Vec<DateTime<Utc>> = latest.values().map(|at| ts(*at)).collect();
    // Not `updated_at`: a webhook is traffic, not a change of the integration.
    sqlx::query(
        "UPDATE channel_integrations c \
         SET last_webhook_at = GREATEST(c.last_webhook_at, v.at) \
         FROM UNNEST($1::uuid[], $2::timestamptz[]) AS v(id, at) WHERE c.id = v.id",
    )
    .bind(ids)
    .bind(ats)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Job outcomes, as `complete_job`, `retry_job`, `postpone_job`, `hold_job` and `kill_job`
/// would set them; the last outcome given per job wins.
async fn end_jobs(
    tx: &mut PgConnection,
    ends: &[(JobId, JobEnd)],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if ends.is_empty() {
        return Ok(());
    }
    let mut last: BTreeMap<JobId, &JobEnd> = BTreeMap::new();
    for (id, end) in ends {
        last.insert(*id, end);
    }
    let count = last.len();
    let mut ids = Vec::with_capacity(count);
    let mut states = Vec::with_capacity(count);
    let mut run_ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(count);
    let mut errors: Vec<Option<&str>> = Vec::with_capacity(count);
    let mut give_back = Vec::with_capacity(count);
    for (id, end) in last {
        ids.push(id.as_uuid());
        let (state, run_at, error, back) = match end {
            JobEnd::Complete => ("done", None, None, false),
            JobEnd::Retry { at, error } => ("pending", Some(ts(*at)), Some(error.as_str()), false),
            JobEnd::Postpone { at } => ("pending", Some(ts(*at)), None, true),
            JobEnd::Hold { error } => ("held", None, Some(error.as_str()), false),
            JobEnd::Kill { error } => ("dead", None, Some(error.as_str()), false),
        };
        states.push(state);
        run_ats.push(run_at);
        errors.push(error);
        give_back.push(back);
    }
    // A postponement (which gives the claim's attempt back) applies to a running job only.
    sqlx::query(
        "UPDATE jobs j SET state = v.state, run_at = COALESCE(v.run_at, j.run_at), \
             last_error = CASE WHEN v.error IS NOT NULL THEN v.error ELSE j.last_error END, \
             attempts = CASE WHEN v.give_back THEN GREATEST(j.attempts - 1, 0) \
                 ELSE j.attempts END, \
             locked_by = NULL, locked_until = NULL, updated_at = $6 \
         FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::bool[]) \
             AS v(id, state, run_at, error, give_back) \
         WHERE j.id = v.id AND (NOT v.give_back OR j.state = 'running')",
    )
    .bind(ids)
    .bind(states)
    .bind(run_ats)
    .bind(errors)
    .bind(give_back)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(())
}

async fn finish_inbox(tx: &mut PgConnection, work: &Work, now: DateTime<Utc>) -> StoreResult<()> {
    if work.inbox.is_empty() {
        return Ok(());
    }
    let mut last = BTreeMap::new();
    for (id, state, note) in &work.inbox {
        last.insert(*id, (state.as_str(), note.as_deref()));
    }
    let ids: Vec<Uuid> = last
        .keys()
        .map(switchboard_core::EventId::as_uuid)
        .collect();
    let states: Vec<&str> = last.values().map(|(state, _)| *state).collect();
    let notes: Vec<Option<&str>> = last.values().map(|(_, note)| *note).collect();
    sqlx::query(
        "UPDATE webhook_events w SET state = v.state, error = v.note, locked_until = NULL, \
             processed_at = $4 \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS v(id, state, note) \
         WHERE w.id = v.id",
    )
    .bind(ids)
    .bind(states)
    .bind(notes)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(())
}
