//! Query strings that carry a task filter beside keys of their own (a
//! listing's paging, the stats' interval): each part is read by its own
//! derive, so that one type serves the handler and the OpenAPI document,
//! and a bad value is a 400 naming its key. And the body that names the
//! tasks a bulk action (cancel, retry) acts on ([`Matching`]).

use serde::Deserialize;
use serde::de::DeserializeOwned;

use actix_web::{HttpRequest, web};

use super::ApiError;
use super::body::read_json;
use crate::tasks::{Principal, TaskFilter};

/// The body of a bulk action (`POST /v1/tasks/cancel`, `/v1/tasks/retry`):
/// the tasks a filter matches (the keys of `GET /v1/tasks`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Matching {
    #[serde(flatten)]
    pub filter: TaskFilter,
    /// Required with an empty filter: every task is meant.
    #[serde(default)]
    pub all: bool,
}

impl Matching {
    /// The tasks a superuser's bulk action is to `act` on, as the request's
    /// body names them: 403 for anyone else, 422 for an empty filter
    /// without `"all": true` (every task).
    pub(super) async fn read(
        req: &HttpRequest,
        payload: web::Payload,
        caller: &Principal,
        limit: usize,
        act: &str,
    ) -> Result<TaskFilter, ApiError> {
        if !caller.is_superuser() {
            return Err(ApiError::Forbidden(format!(
                "only superusers may {act} by filter"
            )));
        }
        let body: Matching = read_json(req, payload, limit).await?;
        if body.filter.is_empty() && !body.all {
            return Err(ApiError::Unprocessable(format!(
                "the filter is empty, which would {act} every task; send \"all\": true if that is meant"
            )));
        }
        Ok(body.filter)
    }
}

/// Reads `query` as the keys `own_keys` (into `O`) and a [`TaskFilter`]
/// (every other key; the filter refuses keys it does not know).
pub(super) fn filter_and<O: DeserializeOwned>(
    query: &str,
    own_keys: &[&str],
) -> Result<(TaskFilter, O), ApiError> {
    let bad =
        |e: serde_html_form::de::Error| ApiError::BadRequest(format!("invalid query string: {e}"));
    let pairs: Vec<(String, String)> = serde_html_form::from_str(query).map_err(bad)?;
    let (own, filter): (Vec<_>, Vec<_>) = pairs
        .into_iter()
        .partition(|(key, _)| own_keys.contains(&key.as_str()));
    Ok((parse_pairs(&filter)?, parse_pairs(&own)?))
}

/// Reads query pairs into `T`: 400 naming the key at fault.
fn parse_pairs<T: DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, ApiError> {
    let text = serde_html_form::to_string(pairs)
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
    let form = serde_html_form::Deserializer::new(form_urlencoded::parse(text.as_bytes()));
    serde_path_to_error::deserialize(form).map_err(|e| match e.path().to_string().as_str() {
        "." => ApiError::BadRequest(format!("invalid query string: {}", e.into_inner())),
        path => ApiError::BadRequest(format!("{path}: {}", e.into_inner())),
    })
}
