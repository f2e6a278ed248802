//! `POST /v1/files`: a file for later tasks, streamed to storage (never
//! whole in memory), at most `files.max_bytes`, its SHA-256 computed on the
//! way and checked against `Content-Digest` (RFC 9530) or `Digest`
//! (RFC 3230) when the request has one.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::error::CommonProblems;
use super::{ApiError, ApiState, Caller, Problem};
use crate::files::Upload;
use crate::tasks::{FileView, Principal};

/// Longest accepted `Content-Type` of a file.
const MAX_CONTENT_TYPE: usize = 255;

/// `POST /v1/files`: stores the body as a file of the caller's, for tasks
/// to name in their `files`. Unused, it is deleted after `files.upload_ttl`.
#[utoipa::path(
    post, path = "/v1/files", tag = "files",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file's bytes, of any content type (which is kept)"),
    params(
        ("Content-Digest" = Option<String>, Header, description = "`sha-256=:<base64>:` (RFC 9530): refused with 400, and nothing kept, if the body's digest differs"),
        ("Digest" = Option<String>, Header, description = "`SHA-256=<base64>` (RFC 3230), checked the same way"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored", body = FileView),
        (status = 400, description = "A digest that does not match, or can't be read", body = Problem, content_type = "application/problem+json"),
        CommonProblems,
        (status = 413, description = "Larger than `files.max_bytes`: nothing is kept", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn upload_file(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let limit = state.files.max_bytes();
    if declared_length(&req).is_some_and(|n| n > limit) {
        return Err(ApiError::FileTooLarge { limit });
    }
    let upload = upload_terms(&req, &caller, &state)?;
    let file = state.files.put(upload, payload).await?.file;
    tracing::info!(file.id = %file.id, size = file.size, owner = %caller.name, "file uploaded");
    Ok(HttpResponse::Created().json(FileView::from(&file)))
}

/// The new file's owner, content type, declared digest and time to live.
pub(super) fn upload_terms(
    req: &HttpRequest,
    caller: &Principal,
    state: &ApiState,
) -> Result<Upload, ApiError> {
    let content_type = match req.headers().get(header::CONTENT_TYPE) {
        None => "application/octet-stream".to_string(),
        Some(value) => content_type(value.to_str().ok())?,
    };
    Ok(Upload {
        owner: caller.name.clone(),
        product: caller.product.clone(),
        content_type,
        expected_sha256: expected_digest(req)?,
        ttl: state.files.upload_ttl(),
        made_by: None,
    })
}

/// A file's content type as given: visible ASCII, at most 255 characters.
pub(super) fn content_type(text: Option<&str>) -> Result<String, ApiError> {
    match text {
        Some(t)
            if !t.is_empty()
                && t.len() <= MAX_CONTENT_TYPE
                && t.bytes().all(|b| (32..127).contains(&b)) =>
        {
            Ok(t.to_string())
        }
        _ => Err(ApiError::BadRequest(format!(
            "Content-Type: must be 1 to {MAX_CONTENT_TYPE} visible ASCII characters"
        ))),
    }
}

/// `Content-Length`, when the request declares it.
fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The SHA-256 the request declares for its body, if it declares one:
/// `Content-Digest: sha-256=:<base64>:` or `Digest: SHA-256=<base64>`.
/// Other algorithms are ignored (RFC 9530 lets a recipient); a SHA-256 that
/// can't be read is a 400.
fn expected_digest(req: &HttpRequest) -> Result<Option<[u8; 32]>, ApiError> {
    let headers = req.headers();
    for (name, sep) in [("content-digest", ':'), ("digest", '\0')] {
        let Some(value) = headers.get(name) else {
            continue;
        };
        let text = value
            .to_str()
            .map_err(|_| ApiError::BadRequest(format!("{name}: must be visible ASCII")))?;
        for member in text.split(',') {
            let Some((algorithm, encoded)) = member.trim().split_once('=') else {
                continue;
            };
            if !algorithm.trim().eq_ignore_ascii_case("sha-256") {
                continue;
            }
            let encoded = encoded.trim();
            let encoded = match sep {
                ':' => encoded.strip_prefix(':').and_then(|e| e.strip_suffix(':')),
                _ => Some(encoded),
            };
            return decode_sha256(encoded).map(Some).ok_or_else(|| {
                ApiError::BadRequest(format!("{name}: sha-256 is not a base64 SHA-256"))
            });
        }
    }
    Ok(None)
}

fn decode_sha256(encoded: Option<&str>) -> Option<[u8; 32]> {
    BASE64.decode(encoded?).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn digests_are_read_from_either_header() {
        let digest = [7u8; 32];
        let b64 = BASE64.encode(digest);
        let req = TestRequest::default()
            .insert_header(("Content-Digest", format!("sha-512=:xx:, sha-256=:{b64}:")))
            .to_http_request();
        assert_eq!(expected_digest(&req).unwrap(), Some(digest));
        let req = TestRequest::default()
            .insert_header(("Digest", format!("SHA-256={b64}")))
            .to_http_request();
        assert_eq!(expected_digest(&req).unwrap(), Some(digest));
        let req = TestRequest::default()
            .insert_header(("Content-Digest", "sha-512=:abc:"))
            .to_http_request();
        assert_eq!(expected_digest(&req).unwrap(), None);
        let req = TestRequest::default()
            .insert_header(("Content-Digest", "sha-256=:not base64:"))
            .to_http_request();
        assert!(expected_digest(&req).is_err());
    }
}
