//! Tracing setup: human-readable text or one JSON object per line, to
//! stderr (stdout is kept for what a command prints, such as a new token).
//! Spans carry the same fields everywhere: `task.token`, `task.kind`,
//! `task.attempt`, `worker.id`.

use tracing_subscriber::EnvFilter;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log.level {level:?}: {source}")]
    Level {
        level: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("invalid log.format {0:?} (\"text\" or \"json\")")]
    Format(String),
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level`.
pub fn init(level: &str, format: &str) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives),
        _ => EnvFilter::try_new(level),
    }
    .map_err(|source| TelemetryError::Level {
        level: level.to_string(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests calling it twice) keeps the first subscriber.
    let _ = match format {
        "text" => builder.with_ansi(false).try_init(),
        "json" => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        other => return Err(TelemetryError::Format(other.to_string())),
    };
    Ok(())
}
