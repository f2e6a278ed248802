//! `POST /v1/tasks` as `multipart/form-data`, for a client that sends a
//! task and its files in one request (`curl -F task=@task.json -F
//! audio=@talk.wav`): the part named `task` holds the usual JSON body;
//! every other part is a file, stored as an upload of the caller's and given
//! to the task under its part's name. A refused task leaves no file behind.

use actix_multipart::{Field, Multipart};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};

use super::body::{json_into, parse_json_object};
use super::create::{created_response, idempotency_key_header};
use super::upload::{content_type, upload_terms};
use super::{ApiError, ApiState};
use crate::store::FileRow;
use crate::tasks::{Principal, TaskDraft, validate_file_name};

/// Creates a task from a multipart form (see the module's documentation).
pub(super) async fn create_multipart(
    req: &HttpRequest,
    caller: &Principal,
    state: &ApiState,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let mut uploaded = Vec::new();
    let created = async {
        let body = read_form(req, caller, state, payload, &mut uploaded).await?;
        let mut draft: TaskDraft = json_into(body)?;
        // The key names the request by its files' digests: a retry uploads
        // them again, under new ids.
        let mut request = serde_json::to_value(&draft).unwrap_or_default();
        let files = draft.files.get_or_insert_default();
        for (name, row) in &uploaded {
            if files.insert(name.clone(), row.file.id).is_some() {
                return Err(ApiError::Unprocessable(format!(
                    "files.{name}: given both as a part and in the task's files"
                )));
            }
            request["uploaded"][name.as_str()] = json!(row.file.sha256_hex());
        }
        let key = idempotency_key_header(req)?;
        Ok(state
            .enqueuer
            .create_named(draft, caller, key, &request)
            .await?)
    }
    .await;
    // A refused task, or a replay of an earlier one, uses none of these.
    if !matches!(&created, Ok(c) if !c.replayed) {
        for (_, row) in &uploaded {
            state.files.discard(row.row).await;
        }
    }
    let created = created?;
    created_response(req, created, state).await
}

/// Reads the form: the `task` part's JSON, and every other part stored as a
/// file (into `uploaded` as it goes, so that a failure midway can remove
/// what was stored).
async fn read_form(
    req: &HttpRequest,
    caller: &Principal,
    state: &ApiState,
    payload: web::Payload,
    uploaded: &mut Vec<(String, FileRow)>,
) -> Result<Value, ApiError> {
    let bad = |e: actix_multipart::MultipartError| {
        ApiError::BadRequest(format!("the multipart body can't be read: {e}"))
    };
    let mut form = Multipart::new(req.headers(), payload);
    let mut task = None;
    while let Some(field) = form.next().await {
        let field = field.map_err(bad)?;
        let name = field.name().unwrap_or_default().to_string();
        if name == "task" {
            task = Some(read_task(field, state.max_body_bytes).await?);
            continue;
        }
        validate_file_name(&name).map_err(|m| ApiError::Unprocessable(format!("files: {m}")))?;
        if uploaded.len() == state.files.max_per_task() {
            return Err(ApiError::Unprocessable(
                "files: more parts than files.max_per_task".into(),
            ));
        }
        let mut upload = upload_terms(req, caller, state)?;
        upload.expected_sha256 = None;
        upload.content_type = match field.content_type() {
            Some(mime) => content_type(Some(mime.essence_str()))?,
            None => "application/octet-stream".into(),
        };
        let row = state.files.put(upload, field).await?;
        uploaded.push((name, row));
    }
    task.ok_or_else(|| ApiError::BadRequest("the form has no part named \"task\"".into()))
}

/// The `task` part: a JSON object of at most `limit` bytes.
async fn read_task(field: Field, limit: usize) -> Result<Value, ApiError> {
    let bytes = field
        .map_err(|e| ApiError::BadRequest(format!("the task part can't be read: {e}")))
        .try_fold(Vec::new(), |mut all, piece| async move {
            if all.len() + piece.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            all.extend_from_slice(&piece);
            Ok(all)
        })
        .await?;
    parse_json_object(&bytes)
}
