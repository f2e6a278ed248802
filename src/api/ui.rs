//! `/ui`: the dashboard, static files compiled into the binary (`ui/` at
//! the repository's root, and `clients/js/index.js`, which it talks to
//! errand through). No CDN and nothing built at run time; the page's data
//! calls carry the token the user signed in with, so the files themselves
//! are public.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::ApiError;
use super::conditional::{etag, not_modified_if_unchanged};

/// One file of the dashboard.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../ui/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/app.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../ui/style.css"),
    },
    Asset {
        name: "client.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../clients/js/index.js"),
    },
];

/// Only the page's own files and calls, nothing inline, never in a frame.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Each asset's ETag, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| ASSETS.iter().map(|a| etag(a.body.as_bytes())).collect())
}

/// `GET /ui`: the dashboard's page.
#[utoipa::path(get, path = "/ui", tag = "service",
    responses((status = 200, description = "The dashboard (HTML); sign in with an API token", content_type = "text/html")))]
pub async fn ui_page(req: HttpRequest) -> HttpResponse {
    serve(&req, 0)
}

/// `GET /ui/{file}`: the page's script, style sheet and client.
pub async fn ui_asset(req: HttpRequest, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let index = ASSETS
        .iter()
        .position(|a| a.name == file.as_str() && a.name != "index.html")
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard file {file:?}")))?;
    Ok(serve(&req, index))
}

fn serve(req: &HttpRequest, index: usize) -> HttpResponse {
    let asset = &ASSETS[index];
    let response = HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::ETAG, etags()[index].as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .body(asset.body);
    not_modified_if_unchanged(req, response)
}
