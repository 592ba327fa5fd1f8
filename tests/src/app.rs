//! [`TestApp`]: the real gateway (`switchboard::app::build` + `run`) on 127.0.0.1:0 with a fresh
//! database, the `loopback` test channel enabled, and helpers to create tenants.

use secrecy::ExposeSecret;
use switchboard::config::Settings;
use switchboard::state::AppState;
use switchboard_core::BusinessId;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use switchboard_store::testing::{Backend, TestDatabase};

/// The signing secret of the `loopback` channel in tests.
pub const LOOPBACK_SECRET: &str = "loopback-signing-secret";
/// A valid encryption key for tests.
pub const TEST_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A running gateway.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub state: AppState,
    /// The running pipeline (workers, sweeper), for tests that drive it directly.
    pub pipeline: std::sync::Arc<switchboard::pipeline::Pipeline>,
    /// A client that keeps cookies and does not follow redirects.
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    database: TestDatabase,
}

impl TestApp {
    /// Starts the gateway on `backend` with the loopback channel enabled and `extra` TOML on
    /// top of the defaults. `None` when the backend is unavailable (see [`TestDatabase`]).
    ///
    /// # Panics
    /// When the configuration is invalid or the gateway cannot start.
    pub async fn spawn(backend: Backend, extra: &str) -> Option<Self> {
        Self::start(backend, extra, true).await
    }

    /// Like [`TestApp::spawn`], but only the HTTP API runs: no worker drains the inbox or runs
    /// jobs, so a test can store webhooks and then drive [`TestApp::pipeline`] step by step.
    ///
    /// # Panics
    /// When the configuration is invalid or the gateway cannot start.
    pub async fn spawn_without_workers(backend: Backend, extra: &str) -> Option<Self> {
        Self::start(backend, extra, false).await
    }

    async fn start(backend: Backend, extra: &str, workers: bool) -> Option<Self> {
        let database = TestDatabase::create(backend).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let toml = format!(
            "[server]\npublic_url = \"{base}\"\n[database]\nurl = \"{url}\"\n[security]\nencryption_key = \"{TEST_KEY}\"\n\
             [workers]\npoll_interval_ms = 50\n\
             [channels.loopback]\nenabled = true\nsigning_secret = \"{LOOPBACK_SECRET}\"\n\
             [channels.telegram]\nenabled = false\n",
            url = database.url,
        );
        let settings = Settings::from_toml(&[&toml, extra]).expect("test configuration loads");
        let config = settings
            .validate(false)
            .expect("test configuration is valid");
        let state = switchboard::app::build(&config)
            .await
            .expect("gateway builds");
        let (stop, stopped) = oneshot::channel::<()>();
        let pipeline = switchboard::app::pipeline(&state, &config);
        let shutdown = async move {
            let _ = stopped.await;
        };
        if workers {
            tokio::spawn(switchboard::app::serve(
                listener,
                state.clone(),
                std::sync::Arc::clone(&pipeline),
                shutdown,
                std::time::Duration::from_secs(5),
            ));
        } else {
            tokio::spawn(switchboard::app::run(listener, state.clone(), shutdown));
        }
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Some(Self {
            base,
            state,
            pipeline,
            client,
            stop: Some(stop),
            database,
        })
    }

    /// The URL of this gateway's database (a fresh one per test).
    #[must_use]
    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    /// `{base}{path}`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a business and returns it with its API key.
    ///
    /// # Panics
    /// When the store fails.
    pub async fn tenant(&self, name: &str) -> (BusinessId, String) {
        let tenant = switchboard::tenants::create(self.state.store.as_ref(), name)
            .await
            .expect("tenant");
        (
            tenant.business.id,
            tenant.api_key.expose_secret().to_owned(),
        )
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
