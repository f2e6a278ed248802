//! Request bodies: JSON of bounded size (413 past `http.max_body_bytes`,
//! checked before reading and while reading), refused with 400 if it is not
//! JSON or holds a NUL character anywhere (no database text can hold one),
//! and with 422 naming the field if it has the wrong shape; and JSON merge
//! patches (RFC 7396) applied.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{self, BytesMut};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiError;

/// Reads a JSON request body of at most `limit` bytes: 413 past the limit
/// (checked against `Content-Length` before reading, and while reading),
/// 400 if it is not JSON, 422 if it is JSON of the wrong shape.
pub(super) async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    json_into(read_json_value(req, payload, limit).await?)
}

/// Reads a JSON object body of at most `limit` bytes (see [`read_json`]).
pub(super) async fn read_json_value(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<serde_json::Value, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("could not read the request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "the request body is empty; send JSON".into(),
        ));
    }
    parse_json_object(&body)
}

/// A JSON object from bytes: 400 if it is not JSON or holds a NUL, 422 if
/// it is not an object.
pub(super) fn parse_json_object(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    if let Some(at) = nul_at(&value) {
        return Err(ApiError::BadRequest(format!(
            "{at}: text must not contain a NUL character (\\u0000)"
        )));
    }
    if !value.is_object() {
        return Err(ApiError::Unprocessable(
            "the request body must be a JSON object".into(),
        ));
    }
    Ok(value)
}

/// A JSON object as `T`: 422 naming the field at fault.
pub(super) fn json_into<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        // Name the field at fault ("priority: invalid type…") when there is one.
        match e.path().to_string().as_str() {
            "." => ApiError::Unprocessable(e.into_inner().to_string()),
            path => ApiError::Unprocessable(format!("{path}: {}", e.into_inner())),
        }
    })
}

/// Applies a JSON merge patch (RFC 7396) to `target`.
pub(super) fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(changes) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(fields) = target else {
        return;
    };
    for (key, value) in changes {
        if value.is_null() {
            fields.remove(&key);
        } else {
            merge_patch(fields.entry(key).or_insert(Value::Null), value);
        }
    }
}

/// Where the first NUL character in `value` is (in a key or a string), as
/// a JSON pointer, if there is one.
fn nul_at(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if text.contains('\0') => Some(String::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item).map(|at| format!("/{i}{at}"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let here = || format!("/{}", key.replace('~', "~0").replace('/', "~1"));
            match key.contains('\0') {
                true => Some(here()),
                false => nul_at(item).map(|at| format!("{}{at}", here())),
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_found_wherever_it_is() {
        assert_eq!(
            nul_at(&json!({"kind": "sleep", "payload": {"a": [1, "x"]}})),
            None
        );
        assert_eq!(
            nul_at(&json!({"kind": "sl\u{0}eep"})).as_deref(),
            Some("/kind")
        );
        let deep = json!({"payload": {"a/b": ["ok", {"c": "\u{0}"}]}});
        assert_eq!(nul_at(&deep).as_deref(), Some("/payload/a~1b/1/c"));
        assert_eq!(nul_at(&json!({"x\u{0}": 1})).as_deref(), Some("/x\u{0}"));
    }

    #[test]
    fn a_merge_patch_sets_changes_and_removes_nulls() {
        let mut target = json!({"cron": "* * * * *", "queue": "a", "payload": {"x": 1, "y": 2}});
        merge_patch(
            &mut target,
            json!({"cron": "0 * * * *", "queue": null, "payload": {"y": null, "z": 3}}),
        );
        assert_eq!(
            target,
            json!({"cron": "0 * * * *", "payload": {"x": 1, "z": 3}})
        );
    }
}
