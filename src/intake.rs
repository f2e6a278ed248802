//! Creating tasks: the checks and the writes that every way in shares. A
//! request to `POST /v1/tasks` and an application enqueueing inside its own
//! Postgres transaction go through the same [`Enqueuer`]: the kind and its
//! payload schema, the fields, the callback destination, the
//! `Idempotency-Key` protocol, and the insert with its dependencies.
//! Nothing is written unless the whole request is good.
//!
//! Uses `kinds` (is the kind known, is the payload good), `tasks` (the rules
//! for a new task, idempotency keys) and `store`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::batching::Batcher;
use crate::config::{CallbackSettings, IdempotencySettings, Settings};
use crate::kinds::{DraftError, KindError, Registry, resolve_destination};
use crate::store::{self, KeyClaim, KeyClaimTerms, Store, StoreError};
use crate::tasks::{IdempotencyKey, Invalid, NewTask, Principal, Refused, Scope, Task, TaskDraft};

/// Why a task was not created. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// An unknown kind, or a payload its schema or the kind refuses.
    #[error(transparent)]
    Kind(#[from] KindError),
    /// A field that can't be accepted (named).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A malformed `Idempotency-Key`.
    #[error("{0}")]
    BadKey(Invalid),
    /// A parent that does not exist, can't be seen, or ended badly; an
    /// input file that is not the creator's or expired.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// A `callback_url` that can't be delivered to.
    #[error("callback_url: {0}")]
    Callback(String),
    /// Another request with this `Idempotency-Key` has not finished.
    #[error("a request with this Idempotency-Key is still in flight; try again shortly")]
    KeyInFlight,
    /// This `Idempotency-Key` named a request with another body.
    #[error("this Idempotency-Key was used for a request with another body")]
    KeyReused,
    /// The database failed (unreachable: try again).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DraftError> for EnqueueError {
    fn from(e: DraftError) -> EnqueueError {
        match e {
            DraftError::Kind(e) => EnqueueError::Kind(e),
            DraftError::Invalid(e) => EnqueueError::Invalid(e),
        }
    }
}

/// A created task, or (`replayed`) the one an earlier request with the
/// same `Idempotency-Key` and body created.
#[derive(Debug, Clone)]
pub struct Created {
    /// The task as written.
    pub task: Task,
    /// Whether an earlier request with the same key created it.
    pub replayed: bool,
}

/// Created tasks, in the order asked, or (`replayed`) those an earlier
/// request with the same `Idempotency-Key` and body created.
#[derive(Debug, Clone)]
pub struct CreatedBatch {
    pub tasks: Vec<Task>,
    pub replayed: bool,
}

/// Why a batch was not created. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Tasks that can't be created, each with its place in the batch.
    #[error("{} of the batch's tasks can't be created", .0.len())]
    Items(Vec<(usize, EnqueueError)>),
    /// The batch as a whole: its key, or the database.
    #[error(transparent)]
    Whole(EnqueueError),
}

/// Creates tasks. Cheap to clone.
#[derive(Clone)]
pub struct Enqueuer {
    store: Store,
    registry: Arc<Registry>,
    idempotency: IdempotencySettings,
    callbacks: CallbackSettings,
    /// Writes concurrent plain creates together (`http.create_batch`); one
    /// arriving alone on a thread with its own connections is written
    /// there (`Store::local`).
    inserter: Batcher<NewTask, Result<Result<Task, Refused>, StoreError>>,
}

/// Writers of concurrent plain creates at once.
const CREATE_WRITERS: usize = 2;

impl Enqueuer {
    /// Usually made by [`App::enqueuer`](crate::App::enqueuer).
    pub fn new(store: Store, registry: Arc<Registry>, settings: &Settings) -> Enqueuer {
        let writes = store.clone();
        let inserter = Batcher::new(settings.http.create_batch, CREATE_WRITERS, move |tasks| {
            let store = writes.clone();
            async move { insert_together(&store, tasks).await }
        });
        Enqueuer {
            store,
            registry,
            idempotency: settings.idempotency.clone(),
            callbacks: settings.callbacks.clone(),
            inserter,
        }
    }

    /// The kinds it accepts.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Creates a task for `creator`, in a transaction of its own. With
    /// `key` (an `Idempotency-Key`), a retry of the same request answers the
    /// first one's task.
    pub async fn create(
        &self,
        draft: TaskDraft,
        creator: &Principal,
        key: Option<&str>,
    ) -> Result<Created, EnqueueError> {
        let request = named(key, &draft);
        self.create_named(draft, creator, key, &request).await
    }

    /// [`Enqueuer::create`], the request named by `request` for its
    /// `Idempotency-Key` (a multipart create names its files by their
    /// digests: their ids are new with every upload).
    pub async fn create_named(
        &self,
        draft: TaskDraft,
        creator: &Principal,
        key: Option<&str>,
        request: &Value,
    ) -> Result<Created, EnqueueError> {
        let now = Utc::now();
        let key = idempotency_key(creator, key, request)?;
        let new = self.prepare(draft, creator, now).await?;
        if key.is_none() && new.depends_on.is_empty() && new.inputs.is_empty() {
            // Nothing to check in the database: written with the creates
            // that arrive alongside, in one statement.
            let gone = || Err(StoreError::Unavailable(sqlx::Error::PoolClosed));
            let task = match self.store.local() {
                // Alone, on this thread's own connection.
                Some(own) => {
                    (self.inserter)
                        .submit_or_write(
                            new,
                            |tasks| async move { insert_together(&own, tasks).await },
                        )
                        .await
                }
                None => self.inserter.submit(new).await,
            };
            let task = task.unwrap_or_else(gone)??;
            return Ok(Created {
                task: created(vec![task]).tasks.swap_remove(0),
                replayed: false,
            });
        }
        let mut batch = self
            .insert_keyed(std::slice::from_ref(&new), creator, key.as_ref(), now)
            .await?
            .map_err(|(_, refused)| refused)?;
        Ok(Created {
            task: batch.tasks.swap_remove(0),
            replayed: batch.replayed,
        })
    }

    /// Creates tasks for `creator` in one go (`POST /v1/tasks/batch`): all,
    /// in order, in one statement, or none. Every task is checked first,
    /// and all that are refused are named by their place. With `key`, a
    /// retry of the same batch answers the first one's tasks.
    pub async fn create_batch(
        &self,
        drafts: Vec<TaskDraft>,
        creator: &Principal,
        key: Option<&str>,
    ) -> Result<CreatedBatch, BatchError> {
        let now = Utc::now();
        let request = named(key, &drafts);
        let key = idempotency_key(creator, key, &request).map_err(BatchError::Whole)?;
        let mut news = Vec::with_capacity(drafts.len());
        let mut refused = Vec::new();
        for (i, draft) in drafts.into_iter().enumerate() {
            match self.prepare(draft, creator, now).await {
                Ok(new) => news.push(new),
                Err(e) => refused.push((i, e)),
            }
        }
        if !refused.is_empty() {
            return Err(BatchError::Items(refused));
        }
        match self.insert_keyed(&news, creator, key.as_ref(), now).await {
            Ok(Ok(batch)) => Ok(batch),
            Ok(Err((i, refused))) => Err(BatchError::Items(vec![(i, refused.into())])),
            Err(e) => Err(BatchError::Whole(e)),
        }
    }

    /// Inserts checked tasks, under `key` if there is one: a request that
    /// used it before with the same body gets its tasks back; one still in
    /// flight, or one with another body, a refusal. A failed insert frees
    /// the key for a retry.
    async fn insert_keyed(
        &self,
        news: &[NewTask],
        creator: &Principal,
        key: Option<&IdempotencyKey>,
        now: DateTime<Utc>,
    ) -> Result<Result<CreatedBatch, (usize, Refused)>, EnqueueError> {
        if let Some(key) = key {
            let claim = self
                .store
                .idempotency_claim(&self.key_terms(key, now))
                .await?;
            if let Some(earlier) = settled(claim)? {
                return Ok(Ok(earlier));
            }
        }
        let inserted = self.store.tasks_insert(news, &creator.scope(), key).await;
        if let (false, Some(key)) = (matches!(inserted, Ok(Ok(_))), key) {
            // Free the key, so that a retry of this request may proceed.
            if let Err(e) = self.store.idempotency_release(key).await {
                tracing::warn!(error = %e, "could not free an idempotency key");
            }
        }
        Ok(inserted?.map(created))
    }

    /// Creates a task inside the caller's open Postgres transaction (the
    /// transactional outbox): it exists if and only if that transaction
    /// commits, and workers hear of it when it does. The same checks as
    /// over HTTP, dependencies and `Idempotency-Key` included; an error
    /// leaves the transaction to the caller (after a database error,
    /// Postgres refuses anything but a rollback).
    pub async fn create_in(
        &self,
        conn: &mut sqlx::PgConnection,
        draft: TaskDraft,
        creator: &Principal,
        key: Option<&str>,
    ) -> Result<Created, EnqueueError> {
        let now = Utc::now();
        let request = named(key, &draft);
        let key = idempotency_key(creator, key, &request)?;
        let new = self.prepare(draft, creator, now).await?;
        if let Some(key) = &key {
            let claim = store::idempotency_claim_in(conn, &self.key_terms(key, now)).await?;
            if let Some(mut earlier) = settled(claim)? {
                return Ok(Created {
                    task: earlier.tasks.swap_remove(0),
                    replayed: true,
                });
            }
        }
        let task = store::task_insert_in(conn, &new, &creator.scope(), key.as_ref()).await??;
        let mut batch = created(vec![task]);
        Ok(Created {
            task: batch.tasks.swap_remove(0),
            replayed: false,
        })
    }

    /// Checks a request and makes the row to insert: the kind and its
    /// payload, every field, and where a `callback_url` points. Writes
    /// nothing.
    pub async fn prepare(
        &self,
        draft: TaskDraft,
        creator: &Principal,
        now: DateTime<Utc>,
    ) -> Result<NewTask, EnqueueError> {
        let new = self.registry.prepare(draft, creator, now)?;
        if let Some(url) = &new.callback_url {
            self.check_callback_destination(url).await?;
        }
        Ok(new)
    }

    /// Refuses a `callback_url` that can't be delivered to: callbacks off, a
    /// host that does not resolve, or one that points where callbacks may
    /// not go (the SSRF guard; checked again at each delivery).
    async fn check_callback_destination(&self, url: &str) -> Result<(), EnqueueError> {
        if self.callbacks.secret.is_empty() {
            return Err(EnqueueError::Callback(
                "callbacks are off on this server (set callbacks.secret)".into(),
            ));
        }
        let url = url::Url::parse(url).map_err(|e| EnqueueError::Callback(e.to_string()))?;
        resolve_destination(&url, self.callbacks.allow_private_networks)
            .await
            .map(|_| ())
            .map_err(|e| EnqueueError::Callback(e.to_string()))
    }

    fn key_terms<'k>(&self, key: &'k IdempotencyKey, now: DateTime<Utc>) -> KeyClaimTerms<'k> {
        let span = |d| chrono::Duration::from_std(d).unwrap_or_default();
        KeyClaimTerms {
            key,
            now,
            expires_at: now + span(self.idempotency.ttl),
            stale_before: now - span(self.idempotency.in_flight_timeout),
        }
    }
}

/// The request, as its `Idempotency-Key` names it: its parsed body (only
/// needed, and so only made, when there is a key).
fn named(key: Option<&str>, body: &impl serde::Serialize) -> Value {
    match key {
        Some(_) => serde_json::to_value(body).unwrap_or_default(),
        None => Value::Null,
    }
}

/// The request's key, checked, naming the request by its parsed body (so
/// that formatting, key order or a field given as its default do not make
/// two requests differ).
fn idempotency_key(
    creator: &Principal,
    key: Option<&str>,
    request: &Value,
) -> Result<Option<IdempotencyKey>, EnqueueError> {
    let Some(key) = key else { return Ok(None) };
    IdempotencyKey::new(&creator.name, key, request)
        .map(Some)
        .map_err(EnqueueError::BadKey)
}

/// What a key claim means for this request: go on (`None`), the earlier
/// request's tasks, or a refusal.
fn settled(claim: KeyClaim) -> Result<Option<CreatedBatch>, EnqueueError> {
    match claim {
        KeyClaim::Claimed => Ok(None),
        KeyClaim::InFlight => Err(EnqueueError::KeyInFlight),
        KeyClaim::Mismatch => Err(EnqueueError::KeyReused),
        KeyClaim::Done(tasks) => Ok(Some(CreatedBatch {
            tasks,
            replayed: true,
        })),
    }
}

/// Writes plain new tasks (no parents, no files, no key: nothing can
/// refuse them) in one statement; if that fails, each alone, so that each
/// gets its own answer.
async fn insert_together(
    store: &Store,
    tasks: Vec<NewTask>,
) -> Vec<Result<Result<Task, Refused>, StoreError>> {
    let anyone = Scope::everything();
    if let Ok(Ok(inserted)) = store.tasks_insert(&tasks, &anyone, None).await {
        return inserted.into_iter().map(|t| Ok(Ok(t))).collect();
    }
    let mut answers = Vec::with_capacity(tasks.len());
    for task in &tasks {
        answers.push(store.task_insert(task, &anyone, None).await);
    }
    answers
}

/// Newly created tasks, counted and logged (a batch as one line, each of
/// its tasks at debug level).
fn created(tasks: Vec<Task>) -> CreatedBatch {
    for task in &tasks {
        crate::telemetry::task_created(&task.kind);
        if tasks.len() == 1 {
            tracing::info!(task.token = %task.token, task.kind = %task.kind, owner = %task.owner, "task created");
        } else {
            tracing::debug!(task.token = %task.token, task.kind = %task.kind, owner = %task.owner, "task created");
        }
    }
    if let (Some(first), true) = (tasks.first(), tasks.len() > 1) {
        tracing::info!(count = tasks.len(), first.token = %first.token, owner = %first.owner, "tasks created");
    }
    CreatedBatch {
        tasks,
        replayed: false,
    }
}
