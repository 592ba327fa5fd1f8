//! The command line (the README's command table): `serve [--sandbox]`, `migrate`, `tenant create --name`,
//! `config check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::net::TcpListener;

use crate::app;
use crate::config::{LogFormat, Settings, Sources, Validated};

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A self-hosted, multi-tenant messaging gateway"
)]
pub struct Cli {
    /// Configuration file (overrides SWITCHBOARD_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// Demo mode: embedded SQLite, in-process provider emulators, a sandbox tenant.
        #[arg(long)]
        sandbox: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants (businesses).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a business and print its id and API key as JSON (the key is shown once).
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration, print it with secrets redacted.
    Check,
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load(cli_config: Option<PathBuf>, sandbox: bool) -> Result<Validated, String> {
    let settings = Settings::load(&Sources { file: cli_config }).map_err(|e| e.to_string())?;
    settings.validate(sandbox).map_err(|e| e.to_string())
}

async fn dispatch(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { sandbox } => serve(load(cli.config, sandbox)?).await,
        Command::Migrate => {
            let config = load(cli.config, false)?;
            init_tracing(&config);
            let store = switchboard_store::open(config.database_url.expose_secret())
                .await
                .map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())?;
            eprintln!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Tenant {
            command: TenantCommand::Create { name },
        } => {
            let name = name.trim();
            if name.is_empty() {
                return Err("--name must not be empty".into());
            }
            // The encryption key is not needed to create a tenant.
            let config = load(cli.config, true)?;
            let store = app::open_store(&config).await.map_err(|e| e.to_string())?;
            let tenant = crate::tenants::create(store.as_ref(), name)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                json!({ "business_id": tenant.business.id, "api_key": tenant.api_key.expose_secret() })
            );
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => config_check(cli.config),
    }
}

fn config_check(file: Option<PathBuf>) -> Result<(), String> {
    let settings = Settings::load(&Sources { file }).map_err(|e| e.to_string())?;
    let redacted = settings.redacted();
    let config = settings.validate(false).map_err(|e| e.to_string())?;
    let http = app::http_client().map_err(|e| e.to_string())?;
    let registry = app::registry(&config, http).map_err(|e| e.to_string())?;
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    let enabled: Vec<&str> = registry
        .enabled()
        .map(|a| a.descriptor().name.as_str())
        .collect();
    eprintln!(
        "configuration is valid; enabled channels: [{}]",
        enabled.join(", ")
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&redacted).unwrap_or_default()
    );
    Ok(())
}

async fn serve(mut config: Validated) -> Result<(), String> {
    init_tracing(&config);
    let emulators = if config.sandbox {
        tracing::warn!("SANDBOX MODE: provider emulators, demo data; not for production");
        Some(crate::sandbox::start(&mut config).await?)
    } else {
        None
    };
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let mut state = app::build(&config).await.map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    if let Some(emulators) = emulators {
        let info = crate::sandbox::activate(emulators, &state, &config).await?;
        state.sandbox = Some(std::sync::Arc::new(info));
    }
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let channels: Vec<&str> = state
        .registry
        .enabled()
        .map(|a| a.descriptor().name.as_str())
        .collect();
    tracing::info!(
        %address,
        public_url = %config.public_url,
        database = state.store.backend(),
        channels = ?channels,
        "switchboard listening"
    );
    let pipeline = app::pipeline(&state, &config);
    app::serve(
        listener,
        state,
        pipeline,
        app::shutdown_signal(),
        config.shutdown_grace,
    )
    .await
    .map_err(|e| e.to_string())
}

fn init_tracing(config: &Validated) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.settings.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.settings.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
