//! [`EmulatorHandle`]: the Rust-side controls of a running emulator (seeding, fault switches,
//! simulated customers, recorded sends and deliveries). Dropping it stops the server.

use std::time::Duration;

use serde_json::Value;

use super::inbound::{self, InboundReceipt, SimulatedInbound};
use super::seed::{Faults, Seed};
use super::state::{DeliveryRecord, SentMessage, Shared, State};

/// A running emulator.
#[derive(Debug)]
pub struct EmulatorHandle {
    pub(super) inner: Shared,
    pub(super) base_url: String,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EmulatorHandle {
    /// `http://127.0.0.1:{port}`: use it as both `graph_base_url` and `dialog_base_url`.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Replaces the seeded user, businesses, WABAs and numbers (and resets subscriptions).
    pub fn seed(&self, seed: Seed) {
        let mut st = self.inner.lock();
        let (faults, url) = (st.faults.clone(), st.webhook_url.clone());
        *st = State::new(seed, url);
        st.faults = faults;
    }

    #[must_use]
    pub fn faults(&self) -> Faults {
        self.inner.lock().faults.clone()
    }

    /// Changes fault switches: `emulator.update_faults(|f| f.server_error = true)`.
    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.inner.lock().faults);
    }

    /// Where webhooks go (`{public_url}/api/webhooks/whatsapp`); `None` records them only.
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.inner.lock().webhook_url = url;
    }

    /// Expires every issued user token: Graph answers error 190 (subcode 463) from now on.
    pub fn expire_tokens(&self) {
        let mut st = self.inner.lock();
        let past = st.now() - 1;
        for token in st.tokens.values_mut() {
            token.expires_at = Some(past);
        }
    }

    /// Moves the emulator's clock forward (closes 24-hour windows, expires codes and tokens).
    pub fn advance_clock(&self, by: Duration) {
        self.inner.lock().clock_offset += i64::try_from(by.as_secs()).unwrap_or(i64::MAX / 2);
    }

    /// Subscribes or unsubscribes our app to a WABA's webhooks, as `subscribed_apps` would.
    pub fn set_subscribed(&self, waba_id: &str, subscribed: bool) {
        let mut st = self.inner.lock();
        if subscribed {
            st.subscribed.insert(waba_id.to_owned());
        } else {
            st.subscribed.remove(waba_id);
        }
    }

    #[must_use]
    pub fn is_subscribed(&self, waba_id: &str) -> bool {
        self.inner.lock().subscribed.contains(waba_id)
    }

    /// A customer writes to a business number; returns after the first delivery attempt.
    ///
    /// # Errors
    /// When the phone number is not seeded or no sender is given.
    pub async fn simulate_inbound(&self, spec: SimulatedInbound) -> Result<InboundReceipt, String> {
        inbound::simulate(&self.inner, spec).await
    }

    /// Sends every batched change as one POST; the first attempt's status.
    pub async fn flush_batch(&self) -> Option<u16> {
        super::delivery::flush(&self.inner).await
    }

    /// Delivers an arbitrary body, signed, as if Meta sent it (retries included).
    pub async fn deliver_raw(&self, body: &Value) -> Option<u16> {
        super::delivery::deliver_body(&self.inner, super::delivery::meta_json(body)).await
    }

    /// Every message accepted on `/messages`, oldest first.
    #[must_use]
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.inner.lock().sent.clone()
    }

    /// The messages accepted after the first `skip`, oldest first: a poller that remembers how
    /// many it has seen copies only the new ones.
    #[must_use]
    pub fn sent_messages_after(&self, skip: usize) -> Vec<SentMessage> {
        self.inner
            .lock()
            .sent
            .get(skip..)
            .map(<[SentMessage]>::to_vec)
            .unwrap_or_default()
    }

    /// Every webhook POST with its attempts, oldest first.
    #[must_use]
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.inner.lock().deliveries.clone()
    }

    /// Waits until `ready` holds for the recorded deliveries, or `timeout` passes. Woken by
    /// each delivery attempt, so no polling sleeps.
    pub async fn wait_for_deliveries(
        &self,
        timeout: Duration,
        ready: impl Fn(&[DeliveryRecord]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.delivered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ready(&self.inner.lock().deliveries) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return ready(&self.inner.lock().deliveries);
            }
        }
    }

    /// A JSON snapshot of the state (also `GET /_emulator/state`).
    #[must_use]
    pub fn snapshot(&self) -> Value {
        super::control::snapshot(&self.inner)
    }
}
