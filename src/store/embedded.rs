//! For an application that embeds errand: creating a task inside the
//! application's own open Postgres transaction (the transactional outbox),
//! with the same checks and writes as [`Store::task_insert`](super::Store::task_insert).

use super::{KeyClaim, KeyClaimTerms, StoreError, postgres};
use crate::tasks::{IdempotencyKey, NewTask, Refused, Scope, Task};

/// Inserts a checked task inside an application's own open Postgres
/// transaction (see [`Store::task_insert`](super::Store::task_insert) for the checks): the task exists
/// if and only if that transaction commits. Workers are woken when it does.
pub async fn task_insert_in(
    conn: &mut sqlx::PgConnection,
    task: &NewTask,
    creator: &Scope,
    key: Option<&IdempotencyKey>,
) -> Result<Result<Task, Refused>, StoreError> {
    // Not handed to an idle worker in this insert: the application's
    // transaction may stay open past the lease a pushed task would get.
    let inserted =
        postgres::PgStore::tasks_insert_on(conn, std::slice::from_ref(task), creator, key, &|_| {
            false
        })
        .await?;
    Ok(inserted
        .map(|mut tasks| tasks.remove(0))
        .map_err(|(_, refused)| refused))
}

/// Claims an `Idempotency-Key` inside an application's own open Postgres
/// transaction: a concurrent transaction holding the same key makes this
/// wait for it to end.
pub async fn idempotency_claim_in(
    conn: &mut sqlx::PgConnection,
    claim: &KeyClaimTerms<'_>,
) -> Result<KeyClaim, StoreError> {
    postgres::PgStore::idempotency_claim_on(conn, claim).await
}
