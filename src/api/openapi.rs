//! The OpenAPI 3.1 description, generated from the handlers and types
//! themselves (so it can't drift from them), at `/openapi.json`, and the
//! API docs page at `/docs` (Swagger UI, served from the binary: no CDN).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::{
    batch, cancel, create, download, error, get, health, list, me, operations, queues, retry,
    schedules, stats, ui, upload,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "errand",
        description = "A durable background-task service: POST slow work, get 202 and a token at once, poll for the result.",
    ),
    paths(
        create::create_task,
        batch::create_batch,
        list::list_tasks,
        get::get_task,
        cancel::cancel_task,
        retry::retry_task,
        stats::task_stats,
        cancel::cancel_tasks,
        retry::retry_tasks,
        upload::upload_file,
        download::download_file,
        operations::list_workers,
        queues::list_queues,
        queues::pause_queue,
        queues::resume_queue,
        schedules::create_schedule,
        schedules::list_schedules,
        schedules::get_schedule,
        schedules::update_schedule,
        schedules::delete_schedule,
        schedules::pause_schedule,
        schedules::resume_schedule,
        operations::list_kinds,
        me::get_me,
        operations::metrics,
        health::healthz,
        health::readyz,
        openapi_json,
        docs,
        ui::ui_page,
    ),
    components(schemas(error::Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "tasks", description = "Create, poll and cancel tasks"),
        (name = "files", description = "Upload files for tasks, download tasks' files"),
        (name = "operators", description = "For admins and superusers"),
        (name = "schedules", description = "Tasks made at every tick of a cron expression (superusers; product admins, their product's)"),
        (name = "service", description = "Health, readiness, metrics, this description"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI description", body = Object)))]
pub async fn openapi_json() -> HttpResponse {
    static SPEC: OnceLock<String> = OnceLock::new();
    let spec = SPEC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(spec.as_str())
}

/// `GET /docs`: the API docs page, rendering `/openapi.json`.
#[utoipa::path(get, path = "/docs", tag = "service",
    responses((status = 308, description = "To the docs page, `/docs/`")))]
pub async fn docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/docs/"))
        .finish()
}

/// The docs page's routes (its HTML and assets, under `/docs/`).
pub fn docs_service() -> SwaggerUi {
    // The page loads the spec from /openapi.json, served above.
    SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from("/openapi.json"))
}
