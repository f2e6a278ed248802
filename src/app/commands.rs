//! The one-shot commands (`errand migrate`, `errand token create|revoke`)
//! and the bootstrap token `errand serve` mints on an empty database.

use chrono::Utc;

use super::AppError;
use crate::config::Settings;
use crate::store::{NewApiToken, Store};
use crate::tasks::{ApiToken, Principal, Role, UnknownRole};

/// On a database with no API token at all, mints a superuser token and
/// prints it, once: the way in on a fresh install.
pub(super) async fn print_bootstrap_token(store: &Store) -> Result<(), AppError> {
    let token = ApiToken::generate().map_err(AppError::Random)?;
    let row = NewApiToken {
        name: "bootstrap".into(),
        role: Role::Superuser,
        product: None,
        hash: token.hash(),
    };
    if store.token_insert_first(&row, Utc::now()).await? {
        println!(
            "No API token existed, so errand minted a superuser token named \"bootstrap\".\n\
             It is shown only this once; keep it safe:\n\n{}\n",
            token.secret()
        );
        tracing::info!("minted the bootstrap superuser token");
    }
    Ok(())
}

/// `errand migrate`: applies migrations and returns.
pub async fn migrate(settings: &Settings) -> Result<(), AppError> {
    let store = Store::connect(&settings.database)?;
    store.migrate().await?;
    store.close().await;
    Ok(())
}

/// `errand token create`: mints a token and returns it (to print once).
pub async fn token_create(
    settings: &Settings,
    name: &str,
    role: &str,
    product: Option<&str>,
) -> Result<String, AppError> {
    let role: Role = role
        .parse()
        .map_err(|e: UnknownRole| AppError::Invalid(e.to_string()))?;
    let who = Principal::checked(name, role, product).map_err(AppError::Invalid)?;
    let store = Store::connect(&settings.database)?;
    if settings.database.migrate_on_start {
        store.migrate().await?;
    }
    let token = ApiToken::generate().map_err(AppError::Random)?;
    let row = NewApiToken {
        name: who.name,
        role: who.role,
        product: who.product,
        hash: token.hash(),
    };
    store.token_insert(&row, Utc::now()).await?;
    store.close().await;
    Ok(token.secret().to_string())
}

/// `errand token revoke`: revokes every token with this name; returns how
/// many.
pub async fn token_revoke(settings: &Settings, name: &str) -> Result<u64, AppError> {
    let store = Store::connect(&settings.database)?;
    let revoked = store.token_revoke(name, Utc::now()).await?;
    store.close().await;
    Ok(revoked)
}
