//! Task files' rows: a new file (written in chunks when files live in the
//! database), finished and made visible at once; read back in chunks; and
//! renewed while it is written; doomed then deleted once no task uses it
//! and it expired (or was abandoned half written).

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row as _;

use super::{Row, count};
use crate::store::dialect::{Query, shared_queries};
use crate::store::{FileBytes, FileRow, FileRowId, NewFile, StoreError};
use crate::tasks::{FileId, StoredFile};

shared_queries! {
    /// Adds a file being written; invisible until [`Self::file_finish`].
    pub(in crate::store) async fn file_insert(&self, f: &NewFile) -> Result<FileRowId, StoreError> {
        let (chunk_bytes, location) = match &f.bytes {
            FileBytes::Chunks { chunk_bytes } => (Some(*chunk_bytes as i64), None),
            FileBytes::Object { location } => (None, Some(location.clone())),
        };
        let row = self.fetch_one(Self::sql(Query::FileInsert)
            .bind(f.id.as_uuid())
            .bind(f.owner.clone())
            .bind(f.product.clone())
            .bind(f.content_type.clone())
            .bind(chunk_bytes)
            .bind(location)
            .bind(D::time(f.created_at))
            .bind(D::time(f.expires_at))
            .bind(f.made_by.map(|t| t.0))
            )
            .await?;
        Ok(FileRowId(row.try_get("id")?))
    }

    pub(in crate::store) async fn file_chunk_insert(
        &self,
        file: FileRowId,
        seq: i64,
        data: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.execute(Self::sql(Query::FileChunkInsert)
            .bind(file.0)
            .bind(seq)
            .bind(data)
            )
            .await?;
        Ok(())
    }

    /// Keeps a file being written from counting as abandoned before
    /// `until`. False: it is no longer being written (doomed meanwhile).
    pub(in crate::store) async fn file_renew(
        &self,
        file: FileRowId,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = self.execute(Self::sql(Query::FileRenew)
            .bind(file.0)
            .bind(D::time(until))
            )
            .await?;
        Ok(D::rows_affected(&done) == 1)
    }

    /// Makes a written file visible, with its size and digest, to expire
    /// unused at `expires_at`. `None`: it was not being written (doomed
    /// meanwhile).
    pub(in crate::store) async fn file_finish(
        &self,
        file: FileRowId,
        size: u64,
        sha256: [u8; 32],
        expires_at: DateTime<Utc>,
    ) -> Result<Option<FileRow>, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::FileFinish)
            .bind(file.0)
            .bind(i64::try_from(size).unwrap_or(i64::MAX))
            .bind(sha256.to_vec())
            .bind(D::time(expires_at))
            )
            .await?;
        row.as_ref().map(Self::file_from_row).transpose()
    }

    /// The ready file with this id.
    pub(in crate::store) async fn file_get(&self, id: FileId) -> Result<Option<FileRow>, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::FileGet)
            .bind(id.as_uuid())
            )
            .await?;
        row.as_ref().map(Self::file_from_row).transpose()
    }

    /// Up to `limit` chunks of `file` from chunk `from` on, in order.
    pub(in crate::store) async fn file_chunks_read(
        &self,
        file: FileRowId,
        from: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let rows = self.fetch_all(Self::sql(Query::FileChunksRead)
            .bind(file.0)
            .bind(from)
            .bind(count(limit))
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("seq")?, r.try_get("data")?)))
            .collect()
    }

    /// Dooms up to `limit` files no task uses (nor runs to make) that a
    /// deleted task used, or that expired before `now` (unused, or
    /// abandoned half written): they can't be used any more. Each, and
    /// where its bytes are.
    pub(in crate::store) async fn files_doom(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(FileRowId, Option<String>)>, StoreError> {
        let rows = self.fetch_all(Self::sql(Query::FilesDoom)
            .bind(D::time(now))
            .bind(count(limit))
            )
            .await?;
        rows.iter().map(Self::doomed_from_row).collect()
    }

    /// Dooms one file at once (an upload for a request that was refused).
    pub(in crate::store) async fn file_doom(
        &self,
        file: FileRowId,
    ) -> Result<Option<(FileRowId, Option<String>)>, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::FileDoom)
            .bind(file.0)
            )
            .await?;
        row.as_ref().map(Self::doomed_from_row).transpose()
    }

    /// Deletes doomed files (their chunks with them): their bytes elsewhere
    /// are gone.
    pub(in crate::store) async fn files_delete(&self, files: &[FileRowId]) -> Result<u64, StoreError> {
        let ids: Vec<i64> = files.iter().map(|f| f.0).collect();
        let done = self.execute(Self::sql(Query::FilesDelete)
            .bind(json!(ids))
            )
            .await?;
        Ok(D::rows_affected(&done))
    }

    fn doomed_from_row(row: &Row<D>) -> Result<(FileRowId, Option<String>), StoreError> {
        Ok((FileRowId(row.try_get("id")?), row.try_get("location")?))
    }

    /// A ready file's row.
    pub(super) fn file_from_row(row: &Row<D>) -> Result<FileRow, StoreError> {
        let sha256: Vec<u8> = row.try_get("sha256")?;
        let sha256: [u8; 32] = sha256
            .try_into()
            .map_err(|_| StoreError::corrupt("file digest", std::fmt::Error))?;
        let location: Option<String> = row.try_get("location")?;
        let chunk_bytes: Option<i64> = row.try_get("chunk_bytes")?;
        let bytes = match (chunk_bytes, location) {
            (_, Some(location)) => FileBytes::Object { location },
            (Some(n), None) => FileBytes::Chunks {
                chunk_bytes: usize::try_from(n)
                    .map_err(|e| StoreError::corrupt("file chunk size", e))?,
            },
            (None, None) => return Err(StoreError::corrupt("file location", std::fmt::Error)),
        };
        let size: i64 = row.try_get("size")?;
        Ok(FileRow {
            row: FileRowId(row.try_get("id")?),
            file: StoredFile {
                id: FileId::from_uuid(row.try_get("public_id")?),
                owner: row.try_get("owner")?,
                product: row.try_get("product")?,
                size: u64::try_from(size).map_err(|e| StoreError::corrupt("file size", e))?,
                sha256,
                content_type: row.try_get("content_type")?,
                created_at: Self::time(row, "created_at")?,
                expires_at: Self::time(row, "expires_at")?,
            },
            bytes,
        })
    }
}
