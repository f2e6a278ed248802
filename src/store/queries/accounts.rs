//! Who uses errand: API tokens (stored as hashes) and the worker processes
//! that register themselves and heart-beat.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row as _;

use crate::store::dialect::{Query, shared_queries};
use crate::store::{NewApiToken, StoreError};
use crate::tasks::{Principal, TokenHash, WorkerId, WorkerInfo};

shared_queries! {
    pub(in crate::store) async fn token_insert(
        &self,
        t: &NewApiToken,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Rare: a transaction of its own serves both ways of connecting.
        let mut tx = D::begin_write(self.connection().await?).await?;
        Self::token_insert_on(&mut *tx, t, now).await?;
        Ok(tx.commit().await?)
    }

    /// Stores `t` only if there is no token at all: two nodes starting on an
    /// empty database at once mint one.
    pub(in crate::store) async fn token_insert_first(
        &self,
        t: &NewApiToken,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = D::begin_token_mint(self.connection().await?).await?;
        let tokens: i64 = Self::sql(Query::TokenCount)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if tokens > 0 {
            return Ok(false);
        }
        Self::token_insert_on(&mut *tx, t, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn token_insert_on<'c>(
        executor: impl sqlx::Executor<'c, Database = D::Db>,
        t: &NewApiToken,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Self::sql(Query::TokenInsert)
            .bind(t.name.clone())
            .bind(t.role.as_str().to_string())
            .bind(t.product.clone())
            .bind(t.hash.0.to_vec())
            .bind(D::time(now))
            .execute(executor)
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn token_find(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<Principal>, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::TokenFind)
            .bind(hash.0.to_vec())
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role")?;
        Ok(Some(Principal {
            name: row.try_get("name")?,
            role: role.parse().map_err(|e| StoreError::corrupt("role", e))?,
            product: row.try_get("product")?,
        }))
    }

    pub(in crate::store) async fn token_revoke(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = self.execute(Self::sql(Query::TokenRevoke)
            .bind(name.to_string())
            .bind(D::time(now))
            )
            .await?;
        Ok(D::rows_affected(&done))
    }

    pub(in crate::store) async fn worker_upsert(&self, w: &WorkerInfo) -> Result<(), StoreError> {
        self.execute(Self::sql(Query::WorkerUpsert)
            .bind(w.id.0.clone())
            .bind(w.host.clone())
            .bind(w.pid)
            .bind(json!(w.queues))
            .bind(w.concurrency)
            .bind(D::time(w.started_at))
            .bind(D::time(w.heartbeat_at))
            .bind(w.running)
            )
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn worker_delete(&self, id: &WorkerId) -> Result<(), StoreError> {
        self.execute(Self::sql(Query::WorkerDelete)
            .bind(id.0.clone())
            )
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn worker_list(
        &self,
        alive_since: DateTime<Utc>,
    ) -> Result<Vec<WorkerInfo>, StoreError> {
        let rows = self.fetch_all(Self::sql(Query::WorkerList)
            .bind(D::time(alive_since))
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(WorkerInfo {
                    id: WorkerId(r.try_get("id")?),
                    host: r.try_get("host")?,
                    pid: r.try_get("pid")?,
                    queues: Self::json(r, "queues")?,
                    concurrency: r.try_get("concurrency")?,
                    started_at: Self::time(r, "started_at")?,
                    heartbeat_at: Self::time(r, "heartbeat_at")?,
                    running: r.try_get("running")?,
                })
            })
            .collect()
    }

    pub(in crate::store) async fn worker_prune(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = self.execute(Self::sql(Query::WorkerPrune)
            .bind(D::time(before))
            )
            .await?;
        Ok(D::rows_affected(&done))
    }
}
