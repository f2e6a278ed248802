//! Task files' bytes ([`Files`]): where they live (`files.store`: the task
//! database, in chunks, or object storage), streamed in with their SHA-256
//! and a size limit, streamed out whole or by range, and deleted by the
//! pruner once no task uses them. Whatever the backing, a file is visible
//! only once it is all written and its digest checked: a file row stays
//! `writing` until then, and only `ready` files can be used or read.
//!
//! - `database`: chunks through the store (`file_chunks`);
//! - `object`: `object_store` (S3 and compatibles, GCS, Azure, a local
//!   folder), chosen by URL, credentials from the standard environment.
//!
//! Uses `store` (the file rows, and the chunks), `tasks` and `config`.

mod database;
mod object;

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest, Sha256};

use crate::config::FilesSettings;
use crate::store::{FileBytes, FileRow, FileRowId, NewFile, Store, StoreError};
use crate::tasks::{FileId, TaskId};

/// Why a file could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// Past `files.max_bytes`.
    #[error("the file is larger than the limit of {limit} bytes (files.max_bytes)")]
    TooLarge { limit: u64 },
    /// The digest the sender declared is not that of what arrived.
    #[error("the body's SHA-256 is {actual}, not the {expected} the request declared")]
    DigestMismatch { expected: String, actual: String },
    /// The bytes could not be read from their source (the request, a file).
    #[error("could not read the file: {0}")]
    Source(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Object storage failed.
    #[error("object storage: {0}")]
    Object(#[from] object_store::Error),
    /// The file was taken for abandoned while it was written (it was not
    /// renewed within `files.writing_timeout`: the database was out of
    /// reach that long).
    #[error("the file was removed while it was written (not renewed within files.writing_timeout)")]
    Removed,
    /// `files.store` can't be used.
    #[error("files.store: {0}")]
    Config(String),
}

impl FilesError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            FilesError::Store(e) => e.is_transient(),
            FilesError::Object(_) | FilesError::Removed => true,
            _ => false,
        }
    }
}

/// A new file's owner and terms.
#[derive(Debug, Clone)]
pub struct Upload {
    pub owner: String,
    pub product: Option<String>,
    pub content_type: String,
    /// The SHA-256 the sender declared (`Content-Digest`), to check.
    pub expected_sha256: Option<[u8; 32]>,
    /// Unused this long after it is written, it is deleted.
    pub ttl: Duration,
    /// The task whose attempt writes it (an output): kept while it runs.
    pub made_by: Option<TaskId>,
}

/// A file's bytes as a stream.
pub type ByteStream = BoxStream<'static, Result<Bytes, FilesError>>;

/// Where files live and how big they may be. Cheap to clone.
#[derive(Clone)]
pub struct Files {
    store: Store,
    backing: Backing,
    settings: FilesSettings,
}

#[derive(Clone)]
enum Backing {
    Database,
    Object(object::Objects),
}

impl Files {
    /// Files kept as `settings.store` says. An object store is set up now
    /// (its URL and credentials checked), so a bad one stops the start.
    pub fn new(store: Store, settings: &FilesSettings) -> Result<Files, FilesError> {
        let backing = match settings.store.as_str() {
            "database" => Backing::Database,
            url => Backing::Object(object::Objects::open(url)?),
        };
        Ok(Files {
            store,
            backing,
            settings: settings.clone(),
        })
    }

    /// Largest file, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.settings.max_bytes
    }

    /// Most input files, and output files, per task.
    pub fn max_per_task(&self) -> usize {
        self.settings.max_per_task
    }

    /// How long an upload no task uses is kept.
    pub fn upload_ttl(&self) -> Duration {
        self.settings.upload_ttl
    }

    /// How long an output is kept past its attempt's end if its task did
    /// not take it (the attempt failed).
    pub fn output_ttl(&self) -> Duration {
        self.settings.writing_timeout
    }

    /// Streams `body` into a new file: at most `files.max_bytes`, digested
    /// as it goes, and visible only once all of it is stored and its digest
    /// checked. On any failure nothing is left behind.
    pub async fn put<S, E>(&self, upload: Upload, body: S) -> Result<FileRow, FilesError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let now = Utc::now();
        let id = FileId::generate();
        let bytes = match &self.backing {
            Backing::Database => FileBytes::Chunks {
                chunk_bytes: self.settings.chunk_bytes,
            },
            Backing::Object(objects) => FileBytes::Object {
                location: objects.location(id),
            },
        };
        let row = self
            .store
            .file_insert(&NewFile {
                id,
                owner: upload.owner.clone(),
                product: upload.product.clone(),
                content_type: upload.content_type.clone(),
                bytes: bytes.clone(),
                created_at: now,
                expires_at: expiry(now, self.settings.writing_timeout),
                made_by: upload.made_by,
            })
            .await?;
        let written = self.renewing(row, self.write(row, &bytes, body)).await;
        let checked = written.and_then(|(size, sha256)| {
            check_digest(upload.expected_sha256, sha256).map(|()| (size, sha256))
        });
        let finished = match checked {
            Ok((size, sha256)) => {
                let expires_at = expiry(Utc::now(), upload.ttl);
                self.store.file_finish(row, size, sha256, expires_at).await
            }
            Err(e) => {
                self.discard(row).await;
                return Err(e);
            }
        };
        match finished {
            Ok(Some(file)) => Ok(file),
            Ok(None) => Err(FilesError::Removed),
            Err(e) => {
                self.discard(row).await;
                Err(e.into())
            }
        }
    }

    /// Runs `write`, renewing the file every quarter of
    /// `files.writing_timeout` meanwhile: however long a write takes, only
    /// one whose writer died is taken for abandoned.
    async fn renewing<T>(
        &self,
        row: FileRowId,
        write: impl Future<Output = Result<T, FilesError>>,
    ) -> Result<T, FilesError> {
        let timeout = self.settings.writing_timeout;
        let mut write = std::pin::pin!(write);
        loop {
            tokio::select! {
                done = &mut write => return done,
                () = tokio::time::sleep(timeout / 4) => {
                    match self.store.file_renew(row, expiry(Utc::now(), timeout)).await {
                        Ok(true) => {}
                        Ok(false) => return Err(FilesError::Removed),
                        // Three more quarters to try in.
                        Err(e) => tracing::warn!(error = %e, "could not renew a file being written"),
                    }
                }
            }
        }
    }

    /// Writes the bytes: their size and SHA-256.
    async fn write<S, E>(
        &self,
        row: FileRowId,
        bytes: &FileBytes,
        body: S,
    ) -> Result<(u64, [u8; 32]), FilesError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut meter = Meter::new(self.settings.max_bytes);
        match (&self.backing, bytes) {
            (Backing::Object(objects), FileBytes::Object { location }) => {
                objects.write(location, body, &mut meter).await?
            }
            _ => {
                let chunk = self.settings.chunk_bytes;
                database::write(&self.store, row, chunk, body, &mut meter).await?
            }
        }
        Ok(meter.finish())
    }

    /// The ready file with this id, and where its bytes are.
    pub async fn get(&self, id: FileId) -> Result<Option<FileRow>, FilesError> {
        Ok(self.store.file_get(id).await?)
    }

    /// `range` of a file's bytes (within its size), as a stream that holds
    /// at most a chunk or two in memory.
    pub async fn read(&self, file: &FileRow, range: Range<u64>) -> Result<ByteStream, FilesError> {
        match (&file.bytes, &self.backing) {
            (FileBytes::Chunks { chunk_bytes }, _) => Ok(database::read(
                self.store.clone(),
                file.row,
                *chunk_bytes,
                range,
            )),
            (FileBytes::Object { location }, Backing::Object(objects)) => {
                objects.read(location, range).await
            }
            (FileBytes::Object { .. }, Backing::Database) => Err(FilesError::Config(
                "this file is in object storage, but files.store is \"database\"".into(),
            )),
        }
    }

    /// Removes a file at once (a failed write, or an upload for a request
    /// that was refused). Best effort: the pruner removes what this misses.
    pub async fn discard(&self, row: FileRowId) {
        let doomed = match self.store.file_doom(row).await {
            Ok(doomed) => doomed,
            Err(e) => {
                tracing::warn!(error = %e, "could not discard a file; the pruner will");
                return;
            }
        };
        if let Err(e) = self.delete(doomed.into_iter().collect()).await {
            tracing::warn!(error = %e, "could not discard a file; the pruner will");
        }
    }

    /// One pruning pass as of `now`: up to `limit` files no task uses (nor
    /// runs to make) that expired, or were abandoned while written, are
    /// deleted. How many.
    pub async fn prune(&self, now: DateTime<Utc>, limit: usize) -> Result<u64, FilesError> {
        let doomed = self.store.files_doom(now, limit).await?;
        self.delete(doomed).await
    }

    /// Deletes doomed files: their bytes, then their rows.
    async fn delete(&self, doomed: Vec<(FileRowId, Option<String>)>) -> Result<u64, FilesError> {
        if doomed.is_empty() {
            return Ok(0);
        }
        if let Backing::Object(objects) = &self.backing {
            for location in doomed.iter().filter_map(|(_, l)| l.as_deref()) {
                objects.delete(location).await?;
            }
        }
        let rows: Vec<FileRowId> = doomed.iter().map(|(row, _)| *row).collect();
        Ok(self.store.files_delete(&rows).await?)
    }
}

/// Counts and digests bytes as they pass, refusing more than the limit.
struct Meter {
    limit: u64,
    size: u64,
    hasher: Sha256,
}

impl Meter {
    fn new(limit: u64) -> Meter {
        Meter {
            limit,
            size: 0,
            hasher: Sha256::new(),
        }
    }

    fn take(&mut self, bytes: &[u8]) -> Result<(), FilesError> {
        self.size += bytes.len() as u64;
        if self.size > self.limit {
            return Err(FilesError::TooLarge { limit: self.limit });
        }
        self.hasher.update(bytes);
        Ok(())
    }

    /// The next piece of `body`, counted against the limit.
    async fn next<S, E>(&mut self, body: &mut S) -> Result<Option<Bytes>, FilesError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        match body.next().await {
            Some(piece) => {
                let piece = piece.map_err(|e| FilesError::Source(e.to_string()))?;
                self.take(&piece)?;
                Ok(Some(piece))
            }
            None => Ok(None),
        }
    }

    fn finish(self) -> (u64, [u8; 32]) {
        (self.size, self.hasher.finalize().into())
    }
}

/// Refuses a digest that is not the one the sender declared.
fn check_digest(expected: Option<[u8; 32]>, actual: [u8; 32]) -> Result<(), FilesError> {
    match expected {
        Some(expected) if expected != actual => Err(FilesError::DigestMismatch {
            expected: hex(&expected),
            actual: hex(&actual),
        }),
        _ => Ok(()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    now.checked_add_signed(chrono_duration(ttl))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
