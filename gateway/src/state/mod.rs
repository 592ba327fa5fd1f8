//! The one `Clone` application state shared by every handler and worker, and the shared
//! types it holds. The rest of the gateway builds on this module, which imports none of it.

mod rejections;
mod sandbox;
mod session_key;
pub mod wake;

pub use rejections::Rejections;
pub use sandbox::{Emulators, SandboxInfo};
pub use session_key::SessionKey;
pub use wake::Wakeups;

use std::sync::Arc;

use switchboard_core::Registry;
use switchboard_core::crypto::Cipher;
use switchboard_core::store::Store;
use url::Url;

use crate::config::ServerLimits;

/// What handlers need: the store, the channel registry, the credential cipher and the few
/// settings the HTTP layer reads.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub cipher: Cipher,
    pub web: Arc<WebSettings>,
    /// Early wake-ups for the workers (a webhook stored, a job queued).
    pub wake: Arc<Wakeups>,
    /// Webhooks that failed authentication, logged at a bounded rate.
    pub rejections: Arc<Rejections>,
    /// The shared outbound HTTP client (provider calls, the responder webhook).
    pub http: reqwest::Client,
    /// Attempts of a queued send before it is dead-lettered (`workers.max_attempts`).
    pub max_attempts: i32,
    /// The MAC key of dashboard session cookies.
    pub session_key: Arc<SessionKey>,
    /// The in-process emulators and the sandbox tenant (`serve --sandbox` only).
    pub sandbox: Option<Arc<SandboxInfo>>,
}

/// Settings the HTTP layer uses.
#[derive(Debug)]
pub struct WebSettings {
    pub public_url: Url,
    /// What the server allows a connection.
    pub limits: ServerLimits,
    pub frontend_url: Url,
    pub max_webhook_body_bytes: usize,
    pub sandbox: bool,
}

impl WebSettings {
    /// Whether cookies must carry `Secure` (the gateway is served over https).
    #[must_use]
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// `frontend_url`'s origin, the only target of the OAuth outcome `postMessage`.
    #[must_use]
    pub fn frontend_origin(&self) -> String {
        self.frontend_url.origin().ascii_serialization()
    }

    /// `{frontend_url}/dashboard/integrations`.
    #[must_use]
    pub fn integrations_page(&self) -> String {
        format!(
            "{}/dashboard/integrations",
            self.frontend_url.as_str().trim_end_matches('/')
        )
    }
}
