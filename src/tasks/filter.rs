//! Which tasks an operator means: a [`TaskFilter`] (AND across fields, OR
//! within one field, as CodeChecker's `getTasks()`), the caller's
//! [`Scope`], and the keyset [`Cursor`] of a listing.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use super::{Principal, Role, Status, Task, TaskId};

/// A filter over tasks. Every field left empty matches everything; a task
/// matches when it matches every field given, and a field when it equals any
/// of its values. Times: `*_after` is inclusive, `*_before` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskFilter {
    /// Any of these statuses (repeat the parameter, or separate with commas).
    #[serde(default, deserialize_with = "one_or_many")]
    #[param(explode = true)]
    pub status: Vec<Status>,
    /// Any of these kinds.
    #[serde(default, deserialize_with = "one_or_many")]
    #[param(explode = true)]
    pub kind: Vec<String>,
    /// Any of these queues.
    #[serde(default, deserialize_with = "one_or_many")]
    #[param(explode = true)]
    pub queue: Vec<String>,
    /// Any of these owners (token names).
    #[serde(default, deserialize_with = "one_or_many")]
    #[param(explode = true)]
    pub owner: Vec<String>,
    /// Any of these products.
    #[serde(default, deserialize_with = "one_or_many")]
    #[param(explode = true)]
    pub product: Vec<String>,
    /// Made by any of these schedules.
    #[serde(default, deserialize_with = "one_or_many")]
    #[param(explode = true)]
    pub schedule: Vec<String>,
    /// Created at or after (RFC 3339).
    #[serde(default, deserialize_with = "one")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_after: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    #[serde(default, deserialize_with = "one")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_before: Option<DateTime<Utc>>,
    /// Finished at or after (RFC 3339).
    #[serde(default, deserialize_with = "one")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub finished_after: Option<DateTime<Utc>>,
    /// Finished before (RFC 3339).
    #[serde(default, deserialize_with = "one")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub finished_before: Option<DateTime<Utc>>,
    /// Whether a cancel was requested while it ran.
    #[serde(default, deserialize_with = "one")]
    pub cancel_requested: Option<bool>,
}

/// A value as a JSON body or a query string gives it: text (every query
/// value is), a boolean or number (JSON), or a list (a repeated query key).
#[derive(Deserialize)]
#[serde(untagged)]
enum Given {
    Text(String),
    Flag(bool),
    Number(serde_json::Number),
    List(Vec<String>),
}

impl Given {
    /// Every text it holds, each checked for NUL (which no text column can
    /// hold; Postgres refuses it).
    fn texts<E: serde::de::Error>(self) -> Result<Vec<String>, E> {
        let texts = match self {
            Given::Text(text) => vec![text],
            Given::Flag(flag) => vec![flag.to_string()],
            Given::Number(n) => vec![n.to_string()],
            Given::List(texts) => texts,
        };
        match texts.iter().any(|t| t.contains('\0')) {
            true => Err(E::custom("must not contain a NUL character")),
            false => Ok(texts),
        }
    }
}

/// A field given once: a second value (a repeated query key) is refused.
fn one<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let mut texts = Given::deserialize(d)?.texts()?;
    if texts.len() > 1 {
        return Err(serde::de::Error::custom("given more than once"));
    }
    texts
        .pop()
        .map(|t| t.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// A field given as one value or a list of them: `"a"`, `["a", "b"]`, a
/// comma-separated `"a,b"`, or a query key repeated.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let texts = Given::deserialize(d)?.texts()?;
    texts
        .iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().map_err(serde::de::Error::custom))
        .collect()
}

impl TaskFilter {
    /// Whether the filter matches every task.
    pub fn is_empty(&self) -> bool {
        *self == TaskFilter::default()
    }

    /// Whether `task` matches, exactly as the stores' queries decide. (The
    /// stores filter in SQL; this is the rule they implement, and what tests
    /// check them against.)
    pub fn matches(&self, task: &Task) -> bool {
        fn any<T: PartialEq + ?Sized>(values: &[impl AsRef<T>], value: &T) -> bool {
            values.is_empty() || values.iter().any(|v| v.as_ref() == value)
        }
        (self.status.is_empty() || self.status.contains(&task.status))
            && any::<str>(&self.kind, &task.kind)
            && any::<str>(&self.queue, &task.queue)
            && any::<str>(&self.owner, &task.owner)
            && (self.product.is_empty()
                || task
                    .product
                    .as_ref()
                    .is_some_and(|p| self.product.contains(p)))
            && (self.schedule.is_empty()
                || task
                    .schedule
                    .as_ref()
                    .is_some_and(|s| self.schedule.contains(s)))
            && self.created_after.is_none_or(|t| task.created_at >= t)
            && self.created_before.is_none_or(|t| task.created_at < t)
            && self
                .finished_after
                .is_none_or(|t| task.finished_at.is_some_and(|f| f >= t))
            && self
                .finished_before
                .is_none_or(|t| task.finished_at.is_some_and(|f| f < t))
            && self
                .cancel_requested
                .is_none_or(|c| task.cancel_requested_at.is_some() == c)
    }
}

/// The tasks a caller may see, as a store can query it: all of them, or
/// those with this owner, or (for an admin) this product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `None` with `product` `None`: everything.
    pub owner: Option<String>,
    pub product: Option<String>,
}

impl Scope {
    pub fn everything() -> Scope {
        Scope {
            owner: None,
            product: None,
        }
    }

    pub fn allows(&self, task: &Task) -> bool {
        match (&self.owner, &self.product) {
            (None, None) => true,
            (owner, product) => {
                owner.as_ref() == Some(&task.owner)
                    || (product.is_some() && task.product == *product)
            }
        }
    }
}

impl Principal {
    /// What this caller may see: users their own tasks, product admins their
    /// product's (and their own), superusers everything.
    pub fn scope(&self) -> Scope {
        match self.role {
            Role::Superuser => Scope::everything(),
            Role::Admin => Scope {
                owner: Some(self.name.clone()),
                product: self.product.clone(),
            },
            Role::User => Scope {
                owner: Some(self.name.clone()),
                product: None,
            },
        }
    }
}

/// Where a page of a listing ends, to ask for the next: opaque to clients.
/// Listings are newest first, by id, so tasks created while a client pages
/// come before its cursor and never shift what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub TaskId);

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{:x}", self.0.0)
    }
}

/// A cursor that this server did not hand out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a cursor from a previous page")]
pub struct BadCursor(pub String);

impl FromStr for Cursor {
    type Err = BadCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix('t')
            .and_then(|hex| i64::from_str_radix(hex, 16).ok())
            .filter(|id| *id > 0)
            .map(|id| Cursor(TaskId(id)))
            .ok_or_else(|| BadCursor(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_come_as_one_value_many_or_comma_separated() {
        let f: TaskFilter = serde_json::from_value(json!({
            "status": "failed,dropped", "kind": ["sleep", "mail"], "owner": "alice"
        }))
        .unwrap();
        assert_eq!(f.status, [Status::Failed, Status::Dropped]);
        assert_eq!(f.kind, ["sleep", "mail"]);
        assert_eq!(f.owner, ["alice"]);
        assert!(!f.is_empty());
        assert!(TaskFilter::default().is_empty());
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = serde_json::from_value::<TaskFilter>(json!({"status": "finished"})).unwrap_err();
        assert!(err.to_string().contains("finished"), "{err}");
        let err = serde_json::from_value::<TaskFilter>(json!({"colour": "red"})).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        assert!(
            serde_json::from_value::<TaskFilter>(json!({"created_after": "yesterday"})).is_err()
        );
    }

    #[test]
    fn query_strings_repeat_lists_and_refuse_repeated_values_and_nul() {
        let f: TaskFilter =
            serde_html_form::from_str("status=queued&status=failed,dropped&cancel_requested=true")
                .unwrap();
        assert_eq!(f.status, [Status::Queued, Status::Failed, Status::Dropped]);
        assert_eq!(f.cancel_requested, Some(true));
        let twice = "created_after=2026-01-01T00:00:00Z&created_after=2026-01-02T00:00:00Z";
        let err = serde_html_form::from_str::<TaskFilter>(twice).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
        for nul in ["owner=%00", "kind=a%00b", "created_after=%00"] {
            let err = serde_html_form::from_str::<TaskFilter>(nul).unwrap_err();
            assert!(err.to_string().contains("NUL"), "{nul}: {err}");
        }
        let err = serde_json::from_value::<TaskFilter>(json!({"queue": ["a", "b\u{0}"]}));
        assert!(err.is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let c = Cursor(TaskId(12345));
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
        for bad in ["", "t", "x10", "t-5", "tzz", "t0"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}
