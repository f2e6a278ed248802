//! Task files: a file's public id ([`FileId`]), a stored file
//! ([`StoredFile`]), a task's files as its row keeps them ([`TaskFiles`])
//! and as its JSON shows them ([`TaskFilesView`]), and the rules: what a
//! file may be named, who may use which file, which inputs a new task may
//! take.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Scope, TaskToken, TaskView};

/// The public name of a file: 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(Uuid);

impl FileId {
    /// A fresh random id.
    pub fn generate() -> FileId {
        FileId(Uuid::new_v4())
    }

    pub fn from_uuid(uuid: Uuid) -> FileId {
        FileId(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.simple())
    }
}

impl FromStr for FileId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s)
            .map(FileId)
            .map_err(|_| format!("{s:?} is not a file id"))
    }
}

impl Serialize for FileId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FileId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A file as stored and ready: its bytes are all written and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFile {
    pub id: FileId,
    /// The name of the token that uploaded it (or whose task wrote it).
    pub owner: String,
    pub product: Option<String>,
    pub size: u64,
    pub sha256: [u8; 32],
    pub content_type: String,
    pub created_at: DateTime<Utc>,
    /// Unused after this, it is deleted; a task that uses it keeps it.
    pub expires_at: DateTime<Utc>,
}

impl StoredFile {
    /// The digest as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// This file under `name`, as a task keeps it.
    pub fn as_task_file(&self, name: &str) -> TaskFile {
        TaskFile {
            name: name.to_string(),
            file: self.id,
            size: self.size,
            sha256: self.sha256_hex(),
            content_type: self.content_type.clone(),
        }
    }
}

/// What `POST /v1/files` answers: the stored file.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FileView {
    /// Name it in a task's `files` with this.
    #[schema(value_type = String)]
    pub id: FileId,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of its bytes, 64 hex digits.
    pub sha256: String,
    pub content_type: String,
    pub created_at: DateTime<Utc>,
    /// Unless a task uses it by then, it is deleted at this time.
    pub expires_at: DateTime<Utc>,
}

impl From<&StoredFile> for FileView {
    fn from(f: &StoredFile) -> FileView {
        FileView {
            id: f.id,
            size: f.size,
            sha256: f.sha256_hex(),
            content_type: f.content_type.clone(),
            created_at: f.created_at,
            expires_at: f.expires_at,
        }
    }
}

/// One of a task's files, as the task's row keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFile {
    /// Its name in the task (an input's key in `files`, an output's file name).
    pub name: String,
    pub file: FileId,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
}

/// A task's files: the inputs it was given, the outputs it made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskFiles {
    pub inputs: Vec<TaskFile>,
    pub outputs: Vec<TaskFile>,
}

impl TaskFiles {
    /// The input or output of this name.
    pub fn find(&self, name: &str) -> Option<&TaskFile> {
        self.inputs
            .iter()
            .chain(&self.outputs)
            .find(|f| f.name == name)
    }
}

/// One of a task's files, as its JSON shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskFileView {
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of its bytes, 64 hex digits.
    pub sha256: String,
    pub content_type: String,
    /// Where to download it: `/v1/tasks/{token}/files/{name}`.
    pub href: String,
}

/// A task's files, as its JSON shows them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskFilesView {
    /// What it was given (`files` at create).
    pub inputs: Vec<TaskFileView>,
    /// What it made (once completed).
    pub outputs: Vec<TaskFileView>,
}

impl TaskFilesView {
    /// `files` of the task with this token.
    pub fn of(files: &TaskFiles, token: TaskToken) -> TaskFilesView {
        let view = |list: &[TaskFile]| {
            list.iter()
                .map(|f| TaskFileView {
                    name: f.name.clone(),
                    size: f.size,
                    sha256: f.sha256.clone(),
                    content_type: f.content_type.clone(),
                    href: format!("{}/files/{}", TaskView::path(token), f.name),
                })
                .collect()
        };
        TaskFilesView {
            inputs: view(&files.inputs),
            outputs: view(&files.outputs),
        }
    }
}

/// File names: 1 to 128 of `A-Z a-z 0-9 _ - .`, not starting with a dot,
/// so that each is a safe file name in a program's input folder and a safe
/// URL path segment.
pub fn validate_file_name(name: &str) -> Result<(), String> {
    if super::new::is_plain_name(name, 128) && !name.starts_with('.') {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a file name (1 to 128 letters, digits, '_', '-' or '.', not starting with '.')"
        ))
    }
}

impl Scope {
    /// Whether a caller of this scope may use `file` in a task: its
    /// uploader may, and a superuser (whose scope is everything).
    pub fn may_use(&self, file: &StoredFile) -> bool {
        match (&self.owner, &self.product) {
            (None, None) => true,
            (Some(owner), _) => *owner == file.owner,
            (None, Some(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_path_segments() {
        for good in ["audio", "talk.wav", "out-1_b.OGG"] {
            assert!(validate_file_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(validate_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_the_uploader_or_a_superuser_may_use_a_file() {
        let file = StoredFile {
            id: FileId::generate(),
            owner: "alice".into(),
            product: Some("shop".into()),
            size: 1,
            sha256: [0; 32],
            content_type: "audio/wav".into(),
            created_at: Utc::now(),
            expires_at: Utc::now(),
        };
        let scope = |owner: Option<&str>, product: Option<&str>| Scope {
            owner: owner.map(Into::into),
            product: product.map(Into::into),
        };
        assert!(scope(Some("alice"), None).may_use(&file));
        assert!(Scope::everything().may_use(&file));
        assert!(!scope(Some("bob"), None).may_use(&file));
        assert!(!scope(Some("shop-admin"), Some("shop")).may_use(&file));
        assert_eq!(file.sha256_hex().len(), 64);
        assert_eq!(FileId::generate().to_string().len(), 32);
    }
}
