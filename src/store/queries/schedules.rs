//! Schedules: their definitions (the API's and the configuration's), the
//! firing of their ticks (the schedule moved on and its tasks inserted in
//! one transaction), their latest tasks, and the schedulers' clock.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Row as _;

use super::Row;
use super::rows::InsertRow;
use crate::store::dialect::{Query, shared_queries};
use crate::store::{ScheduleFire, StoreError, Violation};
use crate::tasks::{Cron, Missed, Overlap, Pause, Schedule, ScheduleRecord, ScheduleSource, Task};

shared_queries! {
    /// `schedule_insert.sql`'s nineteen parameters (also those of
    /// `schedule_update.sql` and `schedule_upsert.sql`), from `r`.
    fn schedule_bound(query: Query, r: &ScheduleRecord) -> super::Statement<D> {
        let s = &r.schedule;
        let timeout_ms = s
            .timeout
            .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX).max(1));
        Self::sql(query)
            .bind(s.name.clone())
            .bind(s.cron.expression().to_string())
            .bind(s.cron.timezone().to_string())
            .bind(s.kind.clone())
            .bind(s.payload.clone())
            .bind(s.queue.clone())
            .bind(s.priority)
            .bind(s.max_attempts)
            .bind(timeout_ms)
            .bind(s.owner.clone())
            .bind(s.product.clone())
            .bind(json_name(&s.missed))
            .bind(json_name(&s.overlap))
            .bind(json_name(&s.source))
            .bind(D::time(r.next_tick))
            .bind(r.paused.as_ref().map(|p| D::time(p.at)))
            .bind(r.paused.as_ref().map(|p| p.by.clone()))
            .bind(D::time(r.created_at))
            .bind(D::time(r.updated_at))
    }

    /// A schedule's row as the domain's [`ScheduleRecord`].
    fn schedule_from_row(row: &Row<D>) -> Result<ScheduleRecord, StoreError> {
        let (expression, zone): (String, String) = (row.try_get("cron")?, row.try_get("timezone")?);
        let cron = Cron::parse(&expression, &zone)
            .map_err(|e| StoreError::corrupt("schedule's cron", e))?;
        let missed: Missed = named(row.try_get("missed")?, "missed")?;
        let overlap: Overlap = named(row.try_get("overlap")?, "overlap")?;
        let source: ScheduleSource = named(row.try_get("source")?, "source")?;
        let timeout: Option<i64> = row.try_get("timeout_ms")?;
        let paused = match Self::maybe_time(row, "paused_at")? {
            Some(at) => Some(Pause {
                at,
                by: row.try_get::<Option<String>, _>("paused_by")?.unwrap_or_default(),
            }),
            None => None,
        };
        Ok(ScheduleRecord {
            schedule: Schedule {
                name: row.try_get("name")?,
                cron,
                kind: row.try_get("kind")?,
                payload: row.try_get("payload")?,
                queue: row.try_get("queue")?,
                priority: row.try_get("priority")?,
                max_attempts: row.try_get("max_attempts")?,
                timeout: timeout.map(|ms| std::time::Duration::from_millis(ms.unsigned_abs())),
                owner: row.try_get("owner")?,
                product: row.try_get("product")?,
                missed,
                overlap,
                source,
            },
            next_tick: Self::time(row, "next_tick")?,
            paused,
            created_at: Self::time(row, "created_at")?,
            updated_at: Self::time(row, "updated_at")?,
        })
    }

    fn schedule_maybe(row: Option<Row<D>>) -> Result<Option<ScheduleRecord>, StoreError> {
        row.as_ref().map(Self::schedule_from_row).transpose()
    }

    pub(in crate::store) async fn schedule_insert(
        &self,
        record: &ScheduleRecord,
    ) -> Result<bool, StoreError> {
        let row = self.fetch_optional(Self::schedule_bound(Query::ScheduleInsert, record)).await?;
        Ok(row.is_some())
    }

    pub(in crate::store) async fn schedule_update(
        &self,
        record: &ScheduleRecord,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        let row = self.fetch_optional(Self::schedule_bound(Query::ScheduleUpdate, record)).await?;
        Self::schedule_maybe(row)
    }

    pub(in crate::store) async fn schedule_upsert(
        &self,
        record: &ScheduleRecord,
    ) -> Result<ScheduleRecord, StoreError> {
        let row = self.fetch_one(Self::schedule_bound(Query::ScheduleUpsert, record)).await?;
        Self::schedule_from_row(&row)
    }

    pub(in crate::store) async fn schedules_prune_config(
        &self,
        keep: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let rows = self.fetch_all(Self::sql(Query::SchedulesPruneConfig).bind(json!(keep))).await?;
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    pub(in crate::store) async fn schedule_get(
        &self,
        name: &str,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::ScheduleGet).bind(name.to_string())).await?;
        Self::schedule_maybe(row)
    }

    pub(in crate::store) async fn schedule_list(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let rows = self.fetch_all(Self::sql(Query::ScheduleList)).await?;
        rows.iter().map(Self::schedule_from_row).collect()
    }

    pub(in crate::store) async fn schedule_delete(
        &self,
        name: &str,
        source: ScheduleSource,
    ) -> Result<bool, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::ScheduleDelete)
            .bind(name.to_string())
            .bind(json_name(&source)))
            .await?;
        Ok(row.is_some())
    }

    pub(in crate::store) async fn schedule_pause(
        &self,
        name: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::SchedulePause)
            .bind(name.to_string())
            .bind(by.to_string())
            .bind(D::time(now)))
            .await?;
        Self::schedule_maybe(row)
    }

    pub(in crate::store) async fn schedule_resume(
        &self,
        name: &str,
        next_tick: DateTime<Utc>,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::ScheduleResume)
            .bind(name.to_string())
            .bind(D::time(next_tick)))
            .await?;
        Self::schedule_maybe(row)
    }

    pub(in crate::store) async fn schedule_fire(
        &self,
        f: &ScheduleFire<'_>,
    ) -> Result<Option<Vec<Task>>, StoreError> {
        match self.schedule_fire_once(f, f.tasks.iter().collect()).await {
            // A tick's task exists already (the unique key): some of these
            // ticks were fired, and the schedule's move was lost. Fire the
            // ticks after its latest task.
            Err(StoreError::Violated { violation: Violation::Unique, constraint, .. })
                if is_tick_key(&constraint) =>
            {
                let names = [f.name.to_string()];
                let last = self.schedule_last_tasks(&names).await?;
                let latest = last.first().and_then(|t| t.scheduled_for);
                tracing::warn!(schedule = f.name, ?latest, "a tick's task existed already");
                let later = (f.tasks.iter())
                    .filter(|t| t.tick.as_ref().map(|tick| tick.at) > latest)
                    .collect();
                self.schedule_fire_once(f, later).await
            }
            fired => fired,
        }
    }

    /// Moves the schedule on and inserts `tasks`, in one transaction;
    /// `None` if another pass moved it first (or it was paused).
    async fn schedule_fire_once(
        &self,
        f: &ScheduleFire<'_>,
        tasks: Vec<&crate::tasks::NewTask>,
    ) -> Result<Option<Vec<Task>>, StoreError> {
        let mut tx = D::begin_write(self.connection().await?).await?;
        let moved = Self::sql(Query::ScheduleAdvance)
            .bind(f.name.to_string())
            .bind(D::time(f.seen_next_tick))
            .bind(D::time(f.next_tick))
            .execute(&mut *tx)
            .await?;
        if D::rows_affected(&moved) == 0 {
            return Ok(None);
        }
        let mut make = !tasks.is_empty();
        if make && f.unless_running {
            let rows = Self::sql(Query::ScheduleLastTasks)
                .bind(json!([f.name]))
                .fetch_all(&mut *tx)
                .await?;
            make = Self::tasks_from_rows(&rows)?.iter().all(Task::is_done);
        }
        let made = if make {
            let rows = tasks
                .into_iter()
                .map(|t| InsertRow::new(t, t.status, 0, &[]))
                .collect();
            Self::insert_rows(&mut *tx, rows).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        Ok(Some(made))
    }

    pub(in crate::store) async fn schedule_last_tasks(
        &self,
        names: &[String],
    ) -> Result<Vec<Task>, StoreError> {
        let rows = self.fetch_all(Self::sql(Query::ScheduleLastTasks).bind(json!(names))).await?;
        Self::tasks_from_rows(&rows)
    }

    pub(in crate::store) async fn schedule_clock(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::ScheduleClock)).await?;
        match row {
            Some(row) => Self::maybe_time(&row, "alive_until"),
            None => Ok(None),
        }
    }

    pub(in crate::store) async fn schedule_clock_set(
        &self,
        alive_until: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.execute(Self::sql(Query::ScheduleClockSet).bind(alive_until.map(D::time))).await?;
        Ok(())
    }
}

/// Whether a unique constraint is the one key of a schedule's ticks
/// (Postgres names the index; SQLite names its columns).
fn is_tick_key(constraint: &str) -> bool {
    constraint == "tasks_schedule_tick" || constraint == "tasks.schedule, tasks.scheduled_for"
}

/// A unit enum (`Missed`, `Overlap`, `ScheduleSource`) by the name it has
/// in JSON and the database.
fn named<T: serde::de::DeserializeOwned>(
    name: String,
    column: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_value(Value::String(name)).map_err(|e| StoreError::corrupt(column, e))
}

/// How a unit enum (`Missed`, `Overlap`, `ScheduleSource`) is named in
/// JSON and the database.
fn json_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}
