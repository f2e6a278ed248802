//! `[files]`: where task files live (the database, or an object store) and
//! their limits.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration};

/// `[files]`: task files, where they live and their limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesSettings {
    /// "database", or an object store URL (`s3://bucket/prefix`, `gs://…`,
    /// `az://…`, `file:///path`).
    pub store: String,
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// An upload no task uses is deleted this long after it was made.
    #[serde(with = "duration")]
    pub upload_ttl: Duration,
    /// Most input files per task, and most output files per task.
    pub max_per_task: usize,
    /// In the database store, the size of each stored chunk, in bytes.
    pub chunk_bytes: usize,
    /// A file being written is renewed by its writer as it goes; one not
    /// renewed for this long was abandoned (its process died): it is
    /// removed. Outputs an attempt stored are kept this long past its end
    /// if the task did not take them.
    #[serde(with = "duration")]
    pub writing_timeout: Duration,
}

impl FilesSettings {
    /// Checks what serde can't.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let f = self;
        let bad = |msg: String| Err(ConfigError::Value(msg));
        if !(f.store == "database"
            || ["s3://", "gs://", "az://", "file://"]
                .iter()
                .any(|s| f.store.starts_with(s)))
        {
            return bad(format!(
                "files.store must be \"database\" or an s3://, gs://, az:// or file:// URL, not {:?}",
                f.store
            ));
        }
        if f.max_bytes == 0 || f.max_per_task == 0 || f.upload_ttl.is_zero() {
            return bad(
                "files.max_bytes, files.max_per_task and files.upload_ttl must be more than 0"
                    .into(),
            );
        }
        if f.writing_timeout < Duration::from_secs(1) {
            return bad("files.writing_timeout must be at least 1s".into());
        }
        if !(64 * 1024..=64 * 1024 * 1024).contains(&f.chunk_bytes) {
            return bad("files.chunk_bytes must be from 64 KiB to 64 MiB".into());
        }
        Ok(())
    }
}
