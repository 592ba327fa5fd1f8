//! A stateful emulator of Meta's Graph API (WhatsApp Cloud API) and Facebook Login dialog, served
//! over real HTTP on loopback. Tests and the gateway's sandbox mode point the adapter's
//! `graph_base_url` and `dialog_base_url` at [`EmulatorHandle::base_url`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use switchboard_whatsapp::emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::new("1234", "app-secret")).await?;
//! emulator.set_webhook_url(Some("http://127.0.0.1:8000/api/webhooks/whatsapp".into()));
//! # Ok(()) }
//! ```
//!
//! Controls exist both as handle methods and as JSON endpoints under `/_emulator/` (see
//! `control.rs`), so a dashboard can press "simulate incoming message".

mod control;
mod delivery;
mod dialog;
mod errors;
mod graph;
mod inbound;
mod messages;
mod oauth;
mod seed;
mod state;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Notify;

pub use delivery::{meta_json, signature};
pub use inbound::{InboundReceipt, SimulatedContent, SimulatedInbound};
pub use seed::{DialogMode, FailStatus, Faults, Seed, SeedBusiness, SeedPhone, SeedWaba};
pub use state::{DeliveryRecord, SentMessage};

use state::{Inner, Shared, State};

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub app_id: String,
    pub app_secret: String,
    pub app_name: String,
    /// Where webhooks are POSTed (`{public_url}/api/webhooks/whatsapp`); none: recorded only.
    pub webhook_url: Option<String>,
    pub seed: Seed,
    pub faults: Faults,
    /// Delays between retries of a webhook that did not get `200` (Meta: minutes to days).
    pub retry_schedule: Vec<Duration>,
    /// Pause between a send's response and its first status webhook.
    pub status_delay: Duration,
}

impl EmulatorConfig {
    /// The sandbox seed, default faults, a millisecond retry schedule.
    #[must_use]
    pub fn new(app_id: &str, app_secret: &str) -> Self {
        Self {
            app_id: app_id.to_owned(),
            app_secret: app_secret.to_owned(),
            app_name: "Switchboard".to_owned(),
            webhook_url: None,
            seed: Seed::sandbox(),
            faults: Faults::default(),
            retry_schedule: [10, 20, 40, 80, 160].map(Duration::from_millis).to_vec(),
            status_delay: Duration::from_millis(20),
        }
    }
}

/// Starts emulators.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Binds `127.0.0.1:0` and serves in the background until the handle is dropped.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<EmulatorHandle> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::start_on(listener, config)
    }

    /// Serves on a listener the caller bound (a fixed sandbox port, say). Call it inside a
    /// Tokio runtime.
    ///
    /// # Errors
    /// When the listener has no local address or the HTTP client cannot be built.
    pub fn start_on(
        listener: tokio::net::TcpListener,
        config: EmulatorConfig,
    ) -> std::io::Result<EmulatorHandle> {
        let base_url = format!("http://{}", listener.local_addr()?);
        let mut state = State::new(config.seed, config.webhook_url);
        state.faults = config.faults;
        let inner = Arc::new(Inner {
            app_id: config.app_id,
            app_secret: config.app_secret,
            app_name: config.app_name,
            base_url: base_url.clone(),
            retry_schedule: config.retry_schedule,
            status_delay: config.status_delay,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(std::io::Error::other)?,
            state: Mutex::new(state),
            delivered: Notify::new(),
        });
        let app = router(inner.clone());
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(error = %err, "whatsapp emulator stopped");
            }
        });
        Ok(EmulatorHandle {
            inner,
            base_url,
            task,
        })
    }
}

/// The Graph and dialog routes, the `/_emulator` controls, and the 5xx / app-limit switches.
fn router(inner: Shared) -> Router {
    let graph = Router::new()
        .route("/{version}/oauth/access_token", get(oauth::access_token))
        .route(
            "/{version}/debug_token",
            get(oauth::debug_token).post(oauth::debug_token_post),
        )
        .route("/{version}/{node}", get(graph::node).post(graph::node))
        .route("/{version}/{node}/messages", post(messages::send))
        .route(
            "/{version}/{node}/{edge}",
            get(graph::edge).post(graph::edge).delete(graph::edge),
        )
        .layer(axum::middleware::from_fn_with_state(
            inner.clone(),
            server_error_switch,
        ));
    Router::new()
        .route("/{version}/dialog/oauth", get(dialog::dialog))
        .route("/{version}/dialog/oauth/confirm", get(dialog::confirm))
        .merge(control::router())
        .merge(graph)
        .with_state(inner)
}

async fn server_error_switch(
    AxState(inner): AxState<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (server_error, app_limited) = {
        let faults = &inner.lock().faults;
        (faults.server_error, faults.app_rate_limited)
    };
    if server_error {
        return errors::GraphFault::server_error().into_response();
    }
    let is_send = request.uri().path().ends_with("/messages");
    if app_limited && !is_send {
        return errors::GraphFault::app_rate_limit().into_response();
    }
    next.run(request).await
}

mod handle;
pub use handle::EmulatorHandle;
