//! The schedules the configuration declares (`[schedules.NAME]`): checked
//! when the process is built (a bad one stops the start, naming its key),
//! and written to the database when a process that runs workers starts,
//! over what was there: the configuration is their source of truth, so
//! every such process must declare the same ones (as it declares the same
//! kinds), or each start undoes the last one's.

use chrono::Utc;
use serde_json::{Value, json};

use super::AppError;
use crate::config::{ConfigError, ScheduleSettings, Settings};
use crate::kinds::{DraftError, Registry};
use crate::store::{Store, StoreError};
use crate::tasks::{
    Invalid, Principal, Role, Schedule, ScheduleDraft, ScheduleRecord, ScheduleSource,
};

/// Who a configured schedule's tasks belong to unless it names an owner.
const DEFAULT_OWNER: &str = "errand";

/// Every `[schedules.NAME]`, checked: its own fields, and its task as a
/// create would be checked.
pub(super) fn configured(
    settings: &Settings,
    registry: &Registry,
) -> Result<Vec<Schedule>, AppError> {
    let now = Utc::now();
    settings
        .schedules
        .iter()
        .map(|(name, declared)| {
            let bad = |field: &str, message: String| {
                AppError::Config(ConfigError::Value(format!(
                    "schedules.{name}.{field}: {message}"
                )))
            };
            let owner = Principal {
                name: declared
                    .owner
                    .clone()
                    .unwrap_or_else(|| DEFAULT_OWNER.into()),
                role: Role::User,
                product: None,
            };
            let schedule = draft(name, declared)
                .and_then(|d| d.validate(&owner, ScheduleSource::Config, now))
                .map_err(|e| bad(e.field, e.message))?;
            match registry.schedule_task(&schedule, now, now) {
                Ok(_) => Ok(schedule),
                Err(DraftError::Invalid(e)) => Err(bad(e.field, e.message)),
                Err(DraftError::Kind(e)) => Err(bad("kind", e.to_string())),
            }
        })
        .collect()
}

/// `[schedules.NAME]` as the API would take it.
fn draft(name: &str, s: &ScheduleSettings) -> Result<ScheduleDraft, Invalid> {
    fn choice<T: serde::de::DeserializeOwned>(
        field: &'static str,
        value: &Option<String>,
    ) -> Result<Option<T>, Invalid> {
        let value = value.clone().map_or(Value::Null, Value::String);
        serde_json::from_value(value).map_err(|e| Invalid::new(field, e.to_string()))
    }
    Ok(ScheduleDraft {
        name: name.to_string(),
        cron: s.cron.clone(),
        timezone: s.timezone.clone().unwrap_or_else(|| "UTC".into()),
        kind: s.kind.clone(),
        payload: s.payload.clone().unwrap_or_else(|| json!({})),
        queue: s.queue.clone(),
        priority: s.priority,
        max_attempts: s.max_attempts,
        timeout: s.timeout.map(|t| t.as_secs_f64()),
        missed: choice("missed", &s.missed)?.unwrap_or_default(),
        overlap: choice("overlap", &s.overlap)?.unwrap_or_default(),
    })
}

/// Writes the configured schedules over the database's, and forgets those
/// the configuration no longer declares.
pub(super) async fn write(store: &Store, schedules: &[Schedule]) -> Result<(), StoreError> {
    let now = Utc::now();
    for schedule in schedules {
        store
            .schedule_upsert(&ScheduleRecord::new(schedule.clone(), now))
            .await?;
    }
    let keep: Vec<String> = schedules.iter().map(|s| s.name.clone()).collect();
    for gone in store.schedules_prune_config(&keep).await? {
        tracing::info!(
            schedule = gone,
            "deleted a schedule the configuration no longer declares"
        );
    }
    if !schedules.is_empty() {
        tracing::info!(
            count = schedules.len(),
            "schedules of the configuration written"
        );
    }
    Ok(())
}
