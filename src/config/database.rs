//! `[database]`: where tasks live, how errand connects, and the checks on
//! those settings.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration};

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    /// Connections of its own for each thread serving HTTP requests, for
    /// polls (Postgres only; 0: none).
    pub thread_connections: u32,
    #[serde(with = "duration")]
    pub acquire_timeout: Duration,
    /// A pooled connection idle longer than this is pinged before use.
    #[serde(with = "duration")]
    pub check_idle_after: Duration,
    #[serde(with = "duration")]
    pub statement_timeout: Duration,
    pub migrate_on_start: bool,
    /// `url` goes through a transaction-mode pooler (PgBouncer).
    pub pooled: bool,
    /// Straight to Postgres: LISTEN and migrations, when `pooled`.
    pub direct_url: String,
}

impl DatabaseSettings {
    /// Checks what serde can't.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let bad = |msg: &str| Err(ConfigError::Value(msg.into()));
        let postgres = |url: &str| url.starts_with("postgres");
        if self.pooled && !(postgres(&self.url) && postgres(&self.direct_url)) {
            return bad(
                "database.pooled needs a postgres:// url (the pooler) and database.direct_url \
                 (Postgres itself, for LISTEN and migrations)",
            );
        }
        if self.max_connections < 2 {
            return bad("database.max_connections must be at least 2");
        }
        Ok(())
    }
}
