//! The `errand` binary: parses the command line, loads the configuration,
//! sets up logging and hands over to `errand::app`. No logic lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use errand::app::{self, App, Mode};
use errand::config::{self, Settings};

/// errand: a durable background-task service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file layered over the built-in defaults (before ERRAND__* variables).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// API, workers and maintenance in one process.
    Serve {
        /// Address to listen on (overrides http.bind).
        #[arg(long, value_name = "HOST:PORT")]
        bind: Option<String>,
    },
    /// The HTTP API only.
    Api {
        /// Address to listen on (overrides http.bind).
        #[arg(long, value_name = "HOST:PORT")]
        bind: Option<String>,
    },
    /// Workers and maintenance only.
    Worker {
        /// Task slots per queue (overrides worker.concurrency; default: one per CPU).
        #[arg(long, value_name = "N")]
        concurrency: Option<usize>,
        /// Queues to serve, NAME[=N],… (overrides worker.queues).
        #[arg(long, value_name = "NAME[=N],…")]
        queues: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Measure errand on this machine: starts its own `errand api` and
    /// `errand worker` processes against the configured database, which
    /// must hold no tasks (it is migrated first).
    Bench {
        /// Tasks per enqueue and per drain.
        #[arg(long, default_value_t = 20_000)]
        tasks: usize,
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Worker slots of the drains.
        #[arg(long, default_value_t = 10)]
        concurrency: usize,
        /// Finished tasks in the table for the last drain.
        #[arg(long, default_value_t = 1_000_000)]
        history: usize,
        /// Seconds of pickups, and of polls.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token and print it, alone, on stdout. It is shown only once.
    Create {
        /// The token's name: the owner of the tasks it creates.
        #[arg(long)]
        name: String,
        /// user, admin or superuser.
        #[arg(long)]
        role: String,
        /// The product (required for admin).
        #[arg(long)]
        product: Option<String>,
    },
    /// Revoke every token with this name.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = std::env::vars().collect();
    let mut settings = match config::load(cli.config.as_deref(), &env) {
        Ok(settings) => settings,
        Err(e) => return fail(&e),
    };
    if let Err(e) = apply_overrides(&mut settings, &cli.command) {
        return fail(&e);
    }
    if let Err(e) = errand::telemetry::init(&settings.log.level, settings.log.format) {
        return fail(&e);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&e),
    };
    match runtime.block_on(run(cli.command, settings, cli.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Command-line options override the configuration.
fn apply_overrides(settings: &mut Settings, command: &Command) -> Result<(), config::ConfigError> {
    match command {
        Command::Serve { bind: Some(bind) } | Command::Api { bind: Some(bind) } => {
            settings.http.bind = bind.clone();
        }
        Command::Worker {
            concurrency,
            queues,
        } => {
            if let Some(n) = concurrency {
                settings.worker.concurrency = *n;
            }
            if let Some(q) = queues {
                settings.worker.queues = config::parse_queues(q)?;
            }
        }
        // The bench writes its history in statements sqlx would call slow.
        Command::Bench { .. } => settings.log.level.push_str(",sqlx::query=error"),
        _ => {}
    }
    Ok(())
}

async fn run(
    command: Command,
    settings: Settings,
    config: Option<PathBuf>,
) -> Result<(), app::AppError> {
    let mode = match command {
        Command::Serve { .. } => Mode::Serve,
        Command::Api { .. } => Mode::Api,
        Command::Worker { .. } => Mode::Worker,
        Command::Bench {
            tasks,
            clients,
            concurrency,
            history,
            seconds,
            json,
        } => {
            let options = app::bench::BenchOptions {
                tasks,
                clients,
                concurrency,
                history,
                seconds,
            };
            return bench(&settings, config, &options, json).await;
        }
        Command::Migrate => {
            app::migrate(&settings).await?;
            eprintln!("migrations applied");
            return Ok(());
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    name,
                    role,
                    product,
                },
        } => {
            let token = app::token_create(&settings, &name, &role, product.as_deref()).await?;
            println!("{token}");
            return Ok(());
        }
        Command::Token {
            command: TokenCommand::Revoke { name },
        } => {
            let n = app::token_revoke(&settings, &name).await?;
            eprintln!("revoked {n} token(s) named {name:?}");
            return Ok(());
        }
    };
    let app = App::build(settings, mode)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    app.run(shutdown).await
}

/// `errand bench`: the report on stdout, as a table or JSON.
async fn bench(
    settings: &Settings,
    config: Option<PathBuf>,
    options: &app::bench::BenchOptions,
    json: bool,
) -> Result<(), app::AppError> {
    let report = app::bench::run(settings, config.as_deref(), options).await?;
    match json {
        true => println!("{}", serde_json::to_string(&report).unwrap_or_default()),
        false => print!("{}", app::bench::table(&report)),
    }
    Ok(())
}

/// The first SIGTERM or SIGINT starts a graceful shutdown; a second SIGINT
/// exits at once.
async fn on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("could not install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down gracefully"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down gracefully (again to exit at once)"),
    }
    shutdown.cancel();
    int.recv().await;
    tracing::warn!("second SIGINT: exiting at once");
    std::process::exit(130);
}

/// Prints an error with its chain of causes and fails.
fn fail(error: &dyn std::error::Error) -> ExitCode {
    let mut text = format!("error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    eprintln!("{text}");
    ExitCode::FAILURE
}
