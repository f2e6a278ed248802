//! errand: a durable background-task service. An HTTP client POSTs slow work
//! and gets `202 Accepted` and a token at once; the task is a database row;
//! worker processes claim rows with `SELECT … FOR UPDATE SKIP LOCKED`, run
//! them, and record progress and results; clients poll
//! `GET /v1/tasks/{token}`.
//!
//! A map of the crate, data flowing one way:
//!
//! ```text
//!   api ──────► store ◄────── worker
//!    │            │             │
//!    └──► kinds ◄─┼─────────────┘
//!           │     │
//!           ▼     ▼
//!         tasks (the domain)     config (plain settings)
//! ```
//!
//! - [`tasks`]: the domain — a task, its statuses and transitions, creation
//!   rules, how an attempt ends (retry, backoff, drop), who may see and
//!   cancel what. Pure: no I/O.
//! - [`store`]: the only module that speaks SQL; one method per query.
//! - [`kinds`]: the `Kind` trait, the registry of known kinds (which the API
//!   asks to check payloads and the worker asks for handlers), built-ins.
//! - [`api`]: actix-web routes, authentication, the error mapping.
//! - [`worker`]: claim loops, the executor, heartbeats, the rescuer.
//! - [`config`], [`telemetry`]: settings and logging.
//! - [`app`]: the composition root that wires them into `serve`, `api` and
//!   `worker` processes, and the one-shot commands.

pub mod api;
pub mod app;
pub mod config;
pub mod kinds;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod worker;
