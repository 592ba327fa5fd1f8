//! Chats held back behind a failed inbox row, so that no later row of the chat overtakes it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use switchboard_core::store::Work;
use switchboard_core::{EventId, IntegrationId};

/// The chats a planned row brings messages to.
pub(super) fn chats_of(work: &Work) -> Vec<(IntegrationId, String)> {
    work.arrivals
        .iter()
        .map(|a| {
            (
                a.conversation.integration_id,
                a.conversation.external_chat_id.clone(),
            )
        })
        .collect()
}

/// Chats with a row that failed and waits for its lease to end (the *blocker*), so that rows
/// of the same chat claimed in later batches do not overtake it: they are left leased too and
/// come back after their own lease. A hold ends when its blocker is applied or when the
/// blocker's lease has run out (it can be claimed again, ahead of the later rows). The holds
/// are this process's: another instance does not know of the failure. A row held back again and
/// again counts attempts like a failing one and ends in quarantine, replayable, with it.
#[derive(Debug, Default)]
pub(super) struct HeldChats(Mutex<HashMap<(IntegrationId, String), (EventId, Instant)>>);

impl HeldChats {
    pub(super) fn hold(&self, blocker: EventId, chats: &[(IntegrationId, String)], until: Instant) {
        let mut held = self.lock();
        for chat in chats {
            held.entry(chat.clone()).or_insert((blocker, until));
        }
    }

    /// Whether `event`, planned as `work`, must wait for another row's retry.
    pub(super) fn holds_back(&self, event: EventId, work: &Work) -> bool {
        if work.arrivals.is_empty() {
            return false;
        }
        let mut held = self.lock();
        if held.is_empty() {
            return false;
        }
        let now = Instant::now();
        held.retain(|_, (_, until)| *until > now);
        chats_of(work)
            .iter()
            .any(|chat| held.get(chat).is_some_and(|(blocker, _)| *blocker != event))
    }

    /// The rows in `applied` are stored: the holds they caused end.
    pub(super) fn release(&self, applied: &[EventId]) {
        let mut held = self.lock();
        if !held.is_empty() {
            held.retain(|_, (blocker, _)| !applied.contains(blocker));
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(IntegrationId, String), (EventId, Instant)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
