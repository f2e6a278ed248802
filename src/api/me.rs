//! `GET /v1/me`: who the caller's token is and what it may do, so that a
//! client (the dashboard) offers only the actions the server would allow.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::error::CommonProblems;
use super::{ApiError, ApiState, Caller};
use crate::tasks::CancelReach;

/// `GET /v1/me` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The token's name: the owner of the tasks it creates.
    pub name: String,
    /// `user`, `admin` or `superuser`.
    pub role: String,
    /// Its product: an admin sees that product's tasks.
    pub product: Option<String>,
    /// What it may do beyond creating and reading tasks.
    pub may: Abilities,
}

/// The actions a caller may take.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Abilities {
    /// Which of the tasks it sees it may cancel (`auth.cancel_role`).
    pub cancel: CancelReach,
    /// Retry ended tasks, and cancel and retry by filter (superusers).
    pub retry: bool,
    pub cancel_matching: bool,
    pub retry_matching: bool,
    /// Read stats, the workers and the queues (admins, superusers).
    pub stats: bool,
    pub workers: bool,
    pub queues: bool,
    /// Pause and resume queues (superusers).
    pub pause_queues: bool,
    /// See and steer schedules (superusers; admins, their product's).
    pub schedules: bool,
}

/// `GET /v1/me` (anyone with a token): the token's name, role and product,
/// and what it may do.
#[utoipa::path(
    get, path = "/v1/me", tag = "service",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me), CommonProblems)
)]
pub async fn get_me(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let me = Me {
        name: caller.name.clone(),
        role: caller.role.to_string(),
        product: caller.product.clone(),
        may: Abilities {
            cancel: caller.cancel_reach(state.cancel_role),
            retry: caller.is_superuser(),
            cancel_matching: caller.is_superuser(),
            retry_matching: caller.is_superuser(),
            stats: caller.is_operator(),
            workers: caller.is_operator(),
            queues: caller.is_operator(),
            pause_queues: caller.is_superuser(),
            schedules: caller.is_operator(),
        },
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(me))
}
