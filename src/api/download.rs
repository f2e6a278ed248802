//! `GET` and `HEAD /v1/tasks/{token}/files/{name}`: one of a task's input
//! or output files, streamed to whoever may see the task (else the same 404
//! as for no task), with `Content-Length`, `Content-Type`, a strong `ETag`
//! (its SHA-256), `If-None-Match` → 304, and one `Range` (206, or 416).

use std::ops::Range;

use actix_web::body::SizedStream;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;

use super::error::CommonProblems;
use super::respond::visible_task;
use super::{ApiError, ApiState, Caller, Problem};

/// `GET /v1/tasks/{token}/files/{name}`: the file's bytes.
#[utoipa::path(
    get, path = "/v1/tasks/{token}/files/{name}", tag = "files",
    params(
        ("token" = String, Path, description = "The task's token"),
        ("name" = String, Path, description = "The file's name in the task (an input's or an output's)"),
        ("Range" = Option<String>, Header, description = "`bytes=a-b`, `bytes=a-` or `bytes=-n`: one range"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of the copy you have"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream",
            headers(("ETag" = String, description = "Its SHA-256, quoted"), ("Content-Length" = u64), ("Accept-Ranges" = String))),
        (status = 206, description = "The range asked for", headers(("Content-Range" = String))),
        (status = 304, description = "Unchanged: you have it"),
        CommonProblems,
        (status = 404, description = "No such task or file, or a task you may not see", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range is past the file's end", headers(("Content-Range" = String))),
    )
)]
pub async fn download_file(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (token, name) = path.into_inner();
    let task = visible_task(&state, &caller, &token).await?;
    let gone = || ApiError::NotFound(format!("task {token} has no file {name:?}"));
    let entry = task.files.find(&name).ok_or_else(gone)?;
    let row = state.files.get(entry.file).await?.ok_or_else(gone)?;
    let size = row.file.size;
    let etag = format!("\"{}\"", entry.sha256);
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::ETAG, etag.clone()))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"));
    if matches_any(&req, header::IF_NONE_MATCH, &etag) {
        return Ok(response.status(StatusCode::NOT_MODIFIED).finish());
    }
    let range = match wanted_range(&req, size, &etag) {
        Wanted::All => 0..size,
        Wanted::Part(range) => {
            response.status(StatusCode::PARTIAL_CONTENT).insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", range.start, range.end - 1),
            ));
            range
        }
        Wanted::Unsatisfiable => {
            return Ok(HttpResponse::RangeNotSatisfiable()
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .finish());
        }
    };
    response
        .content_type(row.file.content_type.as_str())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ));
    let length = range.end - range.start;
    // HEAD: the same headers, and a body of that length never sent.
    let body = match *req.method() == Method::HEAD {
        true => futures_util::stream::empty().boxed(),
        false => state.files.read(&row, range).await?,
    };
    Ok(response.body(SizedStream::new(length, body)))
}

/// What a request's `Range` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    All,
    Part(Range<u64>),
    Unsatisfiable,
}

/// The one range a request asks for, of a file of `size` bytes. Ranges a
/// server may ignore are ignored (the whole file is sent): several ranges,
/// a unit other than bytes, a malformed one, or an `If-Range` that does not
/// name this version.
fn wanted_range(req: &HttpRequest, size: u64, etag: &str) -> Wanted {
    let Some(text) = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Wanted::All;
    };
    if req.headers().contains_key(header::IF_RANGE) && !matches_any(req, header::IF_RANGE, etag) {
        return Wanted::All;
    }
    let Some(spec) = text
        .trim()
        .strip_prefix("bytes=")
        .filter(|s| !s.contains(','))
    else {
        return Wanted::All;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::All;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(a), Ok(b)) if a <= b => a..(b + 1).min(size),
        (Ok(a), Err(_)) if last.is_empty() => a..size,
        (Err(_), Ok(n)) if first.is_empty() && n > 0 => size.saturating_sub(n)..size,
        _ => return Wanted::All,
    };
    if range.start >= size {
        return Wanted::Unsatisfiable;
    }
    Wanted::Part(range)
}

/// Whether `header` lists `etag` (or `*`).
fn matches_any(req: &HttpRequest, name: header::HeaderName, etag: &str) -> bool {
    req.headers()
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn range(value: &str, size: u64) -> Wanted {
        let req = TestRequest::default()
            .insert_header(("Range", value))
            .to_http_request();
        wanted_range(&req, size, "\"x\"")
    }

    #[test]
    fn one_byte_range_is_served_and_others_are_ignored() {
        assert_eq!(range("bytes=0-9", 100), Wanted::Part(0..10));
        assert_eq!(range("bytes=90-", 100), Wanted::Part(90..100));
        assert_eq!(range("bytes=-5", 100), Wanted::Part(95..100));
        assert_eq!(range("bytes=50-500", 100), Wanted::Part(50..100));
        assert_eq!(range("bytes=100-", 100), Wanted::Unsatisfiable);
        assert_eq!(range("bytes=0-1,5-6", 100), Wanted::All);
        assert_eq!(range("items=0-1", 100), Wanted::All);
        assert_eq!(range("bytes=9-3", 100), Wanted::All);
        let stale = TestRequest::default()
            .insert_header(("Range", "bytes=0-9"))
            .insert_header(("If-Range", "\"old\""))
            .to_http_request();
        assert_eq!(wanted_range(&stale, 100, "\"x\""), Wanted::All);
    }
}
