//! [`StoreError`]: database failures sorted by what a caller can do about
//! them: unreachable or too slow (try again later, answer 503), a broken
//! invariant of the schema (a bug), a corrupt row, or anything else.

/// What can go wrong talking to the database, sorted by what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database can't be reached (down, restarting, out of connections):
    /// try again later.
    #[error("the database is unreachable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A statement ran past its time limit.
    #[error("the database did not answer in time: {0}")]
    Timeout(#[source] sqlx::Error),
    /// Anything else: a bug or a broken database.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A write broke one of the schema's named invariants: a bug, since the
    /// domain checks first (the constraints are the last line).
    #[error("the database refused a write that breaks {constraint} ({violation:?})")]
    Violated {
        /// The constraint's name (SQLite names only CHECK constraints; for
        /// the others, the columns).
        constraint: String,
        violation: Violation,
        #[source]
        source: sqlx::Error,
    },
    /// A stored row broke the domain's rules (a status name it doesn't
    /// know, a time it can't read).
    #[error("a stored {what} is invalid")]
    Corrupt {
        /// The column or value at fault.
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?} (it must start with postgres:// or sqlite:)")]
    UnsupportedUrl(String),
    /// A connection pooler refused errand's session settings: it stands
    /// between errand and Postgres, and errand was not told.
    #[error(
        "the database refused errand's connection settings ({0}): behind PgBouncer in \
         transaction mode, set database.pooled = true and database.direct_url (docs/scaling.md)"
    )]
    Pooler(#[source] sqlx::Error),
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Timeout(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        use sqlx::Error as E;
        match &e {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                StoreError::Unavailable(e)
            }
            E::Database(db) if db.message().starts_with("unsupported startup parameter") => {
                StoreError::Pooler(e)
            }
            E::Database(db) => match db.code().as_deref() {
                // Class 08: connection exceptions; 57P01-03: the server is
                // shutting down or starting up; 53300: too many connections.
                Some(code)
                    if code.starts_with("08")
                        || matches!(code, "57P01" | "57P02" | "57P03" | "53300") =>
                {
                    StoreError::Unavailable(e)
                }
                // SQLite: BUSY and LOCKED (and their extended codes): another
                // writer held the file past busy_timeout.
                Some("5" | "6" | "261" | "262" | "517") => StoreError::Unavailable(e),
                // query_canceled: statement_timeout fired.
                Some("57014") => StoreError::Timeout(e),
                _ => match Violation::of(db.kind()) {
                    Some(violation) => StoreError::Violated {
                        constraint: constraint_name(db.as_ref()),
                        violation,
                        source: e,
                    },
                    None => StoreError::Database(e),
                },
            },
            _ => StoreError::Database(e),
        }
    }
}

impl StoreError {
    /// A stored value the domain can't read.
    pub(super) fn corrupt(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Corrupt {
            what,
            source: Box::new(source),
        }
    }
}

/// Which kind of schema invariant a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    Unique,
    ForeignKey,
    NotNull,
    Check,
}

impl Violation {
    fn of(kind: sqlx::error::ErrorKind) -> Option<Violation> {
        use sqlx::error::ErrorKind as K;
        match kind {
            K::UniqueViolation => Some(Violation::Unique),
            K::ForeignKeyViolation => Some(Violation::ForeignKey),
            K::NotNullViolation => Some(Violation::NotNull),
            K::CheckViolation => Some(Violation::Check),
            _ => None,
        }
    }
}

/// The broken constraint's name: Postgres gives it; SQLite puts it (or, for
/// UNIQUE, the columns) after the colon of its message.
fn constraint_name(db: &dyn sqlx::error::DatabaseError) -> String {
    match db.constraint() {
        Some(name) => name.to_string(),
        None => db
            .message()
            .rsplit_once(": ")
            .map_or_else(|| db.message().to_string(), |(_, name)| name.to_string()),
    }
}

/// A failed migration; trying again later may help if the database was
/// merely unreachable.
pub(super) fn migrate_error(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::Execute(inner) => match StoreError::from(inner) {
            StoreError::Database(inner) => {
                StoreError::Migrate(sqlx::migrate::MigrateError::Execute(inner))
            }
            transient => transient,
        },
        other => StoreError::Migrate(other),
    }
}

/// A database URL with its password hidden, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(
            redact("postgres://errand:s3cret@db:5432/errand"),
            "postgres://errand:***@db:5432/errand"
        );
        assert_eq!(redact("postgres://db/errand"), "postgres://db/errand");
    }
}
