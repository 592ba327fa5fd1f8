//! Assembling and running the gateway: [`build`] turns a validated configuration into the
//! application state (store, registry, cipher, HTTP client); [`run`] serves it on a listener
//! until the shutdown future completes. `main` and the tests call the same two functions.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use switchboard_core::crypto::{Cipher, EncryptionKey};
use switchboard_core::error::{ConfigError, StoreError};
use switchboard_core::store::Store;
use switchboard_core::{AdapterServices, Registry, RegistryError};
use tokio::net::TcpListener;

use crate::config::{ResponderKind, Validated};
use crate::pipeline::Pipeline;
use crate::state::{AppState, WebSettings};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("channels: {0}")]
    Registry(#[from] RegistryError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The shared HTTP client adapters call providers with.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client() -> Result<reqwest::Client, StartError> {
    reqwest::Client::builder()
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| StartError::Io(std::io::Error::other(e.to_string())))
}

/// Opens the database named in the configuration, migrating it when `auto_migrate` is set.
///
/// # Errors
/// When the database cannot be opened or migrated.
pub async fn open_store(config: &Validated) -> Result<Arc<dyn Store>, StartError> {
    let store = switchboard_store::open_with_pool(
        config.database_url.expose_secret(),
        Some(config.settings.database.max_connections),
    )
    .await?;
    if config.settings.database.auto_migrate {
        store.migrate().await?;
    }
    Ok(store)
}

/// Builds the channel registry from the configuration.
///
/// # Errors
/// Unknown channel sections, duplicate registrations, invalid channel configuration.
pub fn registry(config: &Validated, http: reqwest::Client) -> Result<Registry, StartError> {
    let services = AdapterServices {
        http,
        public_url: config.public_url.clone(),
        sandbox: config.sandbox,
    };
    Ok(Registry::build(&config.settings.channels, &services)?)
}

/// Everything `serve` needs, built from the configuration.
///
/// # Errors
/// See [`StartError`].
pub async fn build(config: &Validated) -> Result<AppState, StartError> {
    let generated;
    let key = match &config.encryption_key {
        Some(key) => key,
        None => {
            generated = sandbox_key(&data_dir(config.database_url.expose_secret()))?;
            &generated
        }
    };
    let http = http_client()?;
    let registry = registry(config, http.clone())?;
    let store = open_store(config).await?;
    Ok(AppState {
        store,
        registry: Arc::new(registry),
        cipher: Cipher::new(key),
        web: Arc::new(WebSettings {
            public_url: config.public_url.clone(),
            limits: config.limits,
            frontend_url: config.frontend_url.clone(),
            max_webhook_body_bytes: config.settings.server.max_webhook_body_bytes,
            sandbox: config.sandbox,
        }),
        wake: Arc::default(),
        rejections: Arc::default(),
        http,
        max_attempts: config.settings.workers.max_attempts,
        session_key: Arc::new(crate::state::SessionKey(
            key.derive("switchboard session cookie v1"),
        )),
        sandbox: None,
    })
}

/// The pipeline (workers, responder) for a built application.
#[must_use]
pub fn pipeline(state: &AppState, config: &Validated) -> Arc<Pipeline> {
    let settings = &config.settings.responder;
    let responder = crate::pipeline::responder::build(settings, state.http.clone());
    let enabled = settings.kind != ResponderKind::Off;
    Pipeline::new(
        state.clone(),
        config.settings.worker_settings(),
        responder,
        enabled,
        Some(config.database_url.clone()),
    )
}

/// Serves the API and runs the pipeline's workers until `shutdown` completes; then the server
/// stops accepting, workers stop claiming, and both get `grace` to finish what they hold (jobs
/// still running after that keep their lease, which expires, and run again elsewhere).
///
/// # Errors
/// When the server fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    pipeline: Arc<Pipeline>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = pipeline.spawn(stop_rx);
    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(listener, state, async move {
        let _ = http_stop_rx.await;
    }));
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = http_stop_tx.send(());
    let drained = tokio::time::timeout(grace, async {
        while workers.join_next().await.is_some() {}
        server.await
    })
    .await;
    match drained {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(std::io::Error::other(join.to_string())),
        Err(_) => {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "shutdown grace over; unfinished work stays leased and resumes later"
            );
            Ok(())
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes, then lets in-flight requests end.
///
/// # Errors
/// When the server fails.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.web.limits;
    let router = crate::http::router(state, crate::dashboard::router());
    crate::server::serve(listener, router, limits, shutdown).await
}

/// The directory that holds the SQLite database (or `./data`), where sandbox mode keeps its key.
#[must_use]
pub fn data_dir(database_url: &str) -> PathBuf {
    database_url
        .strip_prefix("sqlite://")
        .map(|path| path.split('?').next().unwrap_or(path))
        .and_then(|path| Path::new(path).parent().map(Path::to_path_buf))
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Sandbox mode's encryption key: generated once and kept in `{data_dir}/encryption.key`.
///
/// # Errors
/// When the file cannot be read or written, or holds something else than a key.
pub fn sandbox_key(dir: &Path) -> Result<EncryptionKey, StartError> {
    let path = dir.join("encryption.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => EncryptionKey::from_base64(&text).map_err(|e| {
            ConfigError::new(
                "security.encryption_key",
                format!("{} is not a key: {e}", path.display()),
            )
            .into()
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            create_private_dir(dir)?;
            let key = EncryptionKey::generate();
            write_private(&path, key.to_base64().expose_secret().as_bytes())?;
            tracing::warn!(path = %path.display(), "sandbox mode: generated an encryption key");
            Ok(key)
        }
        Err(error) => Err(error.into()),
    }
}

/// Creates `dir` and the directories above it where missing, readable by this user only.
///
/// # Errors
/// When a directory cannot be created.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
