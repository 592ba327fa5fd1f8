//! The sweeper, every ten minutes:
//! - an integration whose token expires within seven days becomes `needs_reauth` ahead of time,
//!   with a reason the dashboard shows, so a business reconnects before messages start failing;
//! - expired OAuth states and pending account choices are deleted (a flow abandoned at the
//!   consent page leaves its state behind);
//! - processed webhooks older than `workers.inbox_retention_days` leave the inbox, so the raw
//!   bodies do not pile up for ever (their messages and statuses stay in their own tables).

use std::time::Duration;

use std::sync::Arc;

use chrono::Utc;
use switchboard_core::domain::IntegrationState;
use switchboard_core::error::StoreError;
use switchboard_core::store::Store;
use tokio::sync::watch;

/// How far ahead an expiry is flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 7;
const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Processed webhooks deleted by one statement of the retention sweep.
pub const SWEEP_BATCH: u32 = 1_000;

/// The sweeper's store and the one setting it reads.
#[derive(Debug)]
pub struct Sweeper {
    store: Arc<dyn Store>,
    /// How long a processed webhook is kept (`None`: forever).
    inbox_retention: Option<Duration>,
}

impl Sweeper {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, inbox_retention: Option<Duration>) -> Self {
        Self {
            store,
            inbox_retention,
        }
    }

    /// Sweeps now and every ten minutes until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.expiring_tokens().await {
                tracing::error!(%error, "token sweep failed");
            }
            match self.store.delete_expired_oauth(Utc::now()).await {
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(deleted, "expired OAuth states and choices deleted"),
                Err(error) => tracing::error!(%error, "OAuth state sweep failed"),
            }
            match self.processed_webhooks(&shutdown).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "old processed webhooks deleted"),
                Err(error) => tracing::error!(%error, "inbox retention sweep failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = shutdown.changed() => if *shutdown.borrow() { break },
            }
        }
    }

    /// Deletes the processed webhooks received longer than the retention ago, in batches of
    /// [`SWEEP_BATCH`] (each a short statement, so the workers' own statements are not held
    /// up), until none is left or the process is shutting down; returns how many.
    ///
    /// # Errors
    /// A store failure.
    pub async fn processed_webhooks(
        &self,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<u64, StoreError> {
        let Some(retention) = self.inbox_retention else {
            return Ok(0);
        };
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let Some(before) = Utc::now().checked_sub_signed(retention) else {
            return Ok(0);
        };
        let store = self.store.as_ref();
        let mut deleted = 0;
        while !*shutdown.borrow() {
            let batch = store
                .delete_processed_webhook_events(before, SWEEP_BATCH)
                .await?;
            deleted += batch;
            if batch < u64::from(SWEEP_BATCH) {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(deleted)
    }

    /// Marks integrations whose token expires within [`EXPIRY_WARNING_DAYS`]; returns how many.
    ///
    /// # Errors
    /// A store failure.
    pub async fn expiring_tokens(&self) -> Result<usize, StoreError> {
        let store = self.store.as_ref();
        let horizon = Utc::now() + chrono::Duration::days(EXPIRY_WARNING_DAYS);
        let expiring = store.expiring_before(horizon).await?;
        for integration in &expiring {
            let at = integration
                .token_expires_at
                .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M UTC").to_string());
            let reason =
                format!("the access token expires on {at}; reconnect to keep messages flowing");
            store
                .set_state(integration.id, IntegrationState::NeedsReauth, Some(&reason))
                .await?;
            tracing::warn!(integration_id = %integration.id, channel = %integration.channel, "token expires soon; marked needs_reauth");
        }
        Ok(expiring.len())
    }
}
