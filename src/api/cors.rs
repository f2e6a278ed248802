//! Cross-origin requests (CORS, as the Fetch standard defines them): a
//! page served from another origin (`http.cors_origins`) may call the API
//! from a browser. Preflights are answered here; other requests get the
//! headers that let the page read the answer, and the ones it needs
//! (`ETag`, `Retry-After`, `Location`, …). Requests of origins not listed
//! go through untouched, so the browser keeps their answers from the page;
//! a preflight of one is a 403 problem. Bearer tokens, not cookies, carry
//! identity, so no credentials are allowed.

use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use super::ApiError;
use crate::config::CorsOrigins;

/// What a cross-origin page may send.
const ALLOW_METHODS: &str = "GET, HEAD, POST, PATCH, DELETE";
const ALLOW_HEADERS: &str = "authorization, content-type, content-digest, digest, if-none-match, \
                             idempotency-key, prefer, range";
/// What it may read of an answer, beyond the always-safe headers.
const EXPOSE_HEADERS: &str = "etag, location, retry-after, link, idempotent-replayed, \
                              preference-applied, content-range, content-digest, accept-ranges";
/// How long a browser may keep a preflight's answer, in seconds.
const MAX_AGE_SECS: &str = "600";

/// The middleware: wrap errand's own server with it when any origin is
/// allowed.
pub async fn cors(
    origins: Rc<CorsOrigins>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let Some(origin) = origin else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let allowed = origins.allows(&origin);
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let response = if allowed {
            preflight_answer(&origin)
        } else {
            ApiError::Forbidden(format!(
                "pages of {origin} may not call this API (see http.cors_origins)"
            ))
            .error_response()
        };
        return Ok(req.into_response(response).map_into_right_body());
    }
    let mut response = next.call(req).await?;
    if allowed {
        let headers = response.headers_mut();
        allow(headers, &origin);
        set(
            headers,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            EXPOSE_HEADERS,
        );
    }
    Ok(response.map_into_left_body())
}

/// `204` with what the page may send, for a listed origin.
fn preflight_answer(origin: &str) -> HttpResponse {
    let mut response = HttpResponse::new(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    allow(headers, origin);
    set(headers, header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
    set(headers, header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
    set(headers, header::ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECS);
    headers.append(
        header::VARY,
        HeaderValue::from_static("access-control-request-method, access-control-request-headers"),
    );
    response
}

/// Names `origin` as allowed; the answer differs by origin, so caches must
/// keep them apart.
fn allow(headers: &mut HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &'static str) {
    headers.insert(name, HeaderValue::from_static(value));
}
