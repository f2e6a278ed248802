//! Idempotency keys: claim one for a create request (or learn what the
//! request holding it did), free it when that request failed, forget those
//! past their time.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Database, Row as _};

use super::count;
use crate::store::dialect::{Query, shared_queries};
use crate::store::{KeyClaim, KeyClaimTerms, StoreError};
use crate::tasks::IdempotencyKey;

shared_queries! {
    pub(in crate::store) async fn idempotency_claim(
        &self,
        claim: &KeyClaimTerms<'_>,
    ) -> Result<KeyClaim, StoreError> {
        self.alone(async |c| Self::idempotency_claim_on(c, claim).await)
            .await
    }

    /// Claims an `Idempotency-Key` on a connection (inside an application's
    /// transaction, possibly), or says what the request holding it did.
    pub(in crate::store) async fn idempotency_claim_on(
        conn: &mut <D::Db as Database>::Connection,
        c: &KeyClaimTerms<'_>,
    ) -> Result<KeyClaim, StoreError> {
        let key = c.key;
        let claimed = Self::sql(Query::IdempotencyClaim)
            .bind(key.owner.clone())
            .bind(key.key.clone())
            .bind(key.request_hash.to_vec())
            .bind(D::time(c.now))
            .bind(D::time(c.expires_at))
            .bind(D::time(c.stale_before))
            .fetch_optional(&mut *conn)
            .await?;
        if claimed.is_some() {
            return Ok(KeyClaim::Claimed);
        }
        let Some(row) = Self::sql(Query::IdempotencyGet)
            .bind(key.owner.clone())
            .bind(key.key.clone())
            .fetch_optional(&mut *conn)
            .await?
        else {
            // Deleted just now (it expired): as good as in flight; retry.
            return Ok(KeyClaim::InFlight);
        };
        let hash: Vec<u8> = row.try_get("request_hash")?;
        if hash != key.request_hash {
            return Ok(KeyClaim::Mismatch);
        }
        let Some(task_id) = row.try_get::<Option<i64>, _>("task_id")? else {
            return Ok(KeyClaim::InFlight);
        };
        // A batch names all its tasks; a single create, its one.
        let ids = match row.try_get::<Option<Value>, _>("batch")? {
            Some(batch) => serde_json::from_value(batch)
                .map_err(|e| StoreError::corrupt("idempotency key's batch", e))?,
            None => vec![task_id],
        };
        let tasks = Self::tasks_get_by_ids(conn, &ids).await?;
        if tasks.is_empty() {
            return Ok(KeyClaim::InFlight);
        }
        Ok(KeyClaim::Done(tasks))
    }

    pub(in crate::store) async fn idempotency_release(
        &self,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError> {
        self.execute(Self::sql(Query::IdempotencyRelease)
            .bind(key.owner.clone())
            .bind(key.key.clone())
            )
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn idempotency_prune(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let done = self.execute(Self::sql(Query::IdempotencyPrune)
            .bind(D::time(now))
            .bind(count(limit))
            )
            .await?;
        Ok(D::rows_affected(&done))
    }
}
