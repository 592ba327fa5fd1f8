//! The token sweeper: an integration whose token expires within seven days becomes
//! `needs_reauth` ahead of time, with a reason the dashboard shows, so a business reconnects
//! before messages start failing.

use std::time::Duration;

use chrono::Utc;
use switchboard_core::domain::IntegrationState;
use switchboard_core::error::StoreError;
use tokio::sync::watch;

use super::Pipeline;

/// How far ahead an expiry is flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 7;
const SWEEP_EVERY: Duration = Duration::from_secs(600);

impl Pipeline {
    pub(super) async fn sweeper_loop(
        self: std::sync::Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            if let Err(error) = self.sweep_expiring_tokens().await {
                tracing::error!(%error, "token sweep failed");
            }
            tokio::select! {
                () = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = shutdown.changed() => if *shutdown.borrow() { break },
            }
        }
    }

    /// Marks integrations whose token expires within [`EXPIRY_WARNING_DAYS`]; returns how many.
    ///
    /// # Errors
    /// A store failure.
    pub async fn sweep_expiring_tokens(&self) -> Result<usize, StoreError> {
        let store = self.app.store.as_ref();
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
