//! errand: a durable background-task service. An HTTP client POSTs slow work
//! and gets `202 Accepted` and a token at once; the task is a database row;
//! worker processes claim rows with `SELECT … FOR UPDATE SKIP LOCKED`, run
//! them, and record progress and results; clients poll
//! `GET /v1/tasks/{token}`.
//!
//! # As a library
//!
//! A Rust application embeds errand to run kinds of its own:
//!
//! - a kind is a type implementing [`Kind`]: a name, a serde payload, and
//!   `async fn run(payload, &ctx)`; [`TaskContext`] reports progress, tells
//!   of cancellation, and hands out the application's own state;
//! - [`Builder`] assembles an errand process (`serve`, `api` or `worker`)
//!   with those kinds and that state, or one whose routes the application
//!   mounts into its own actix-web `App` ([`App::routes`]);
//! - [`Enqueuer::create_in`] creates a task inside the application's own
//!   Postgres transaction: the task exists if and only if the application's
//!   write commits.
//!
//! `examples/tickets.rs` is a whole application doing all three.
//!
//! # The crate's map
//!
//! Data flows one way (`ARCHITECTURE.md` says more, and walks one task
//! through the code):
//!
//! ```text
//!   api ──► intake ──► store ◄── worker          app: builds and runs them all
//!    │ │      │          ▲         │ │
//!    │ └──────┼──────► files ◄─────┼─┘           files: a task file's bytes
//!    │        ▼          │         │
//!    │      kinds ◄──────┼─────────┘
//!    ▼        ▼          ▼
//!         tasks (the domain: pure)     config (plain settings)
//!         pacing (loops' backoff and waits) → tasks     telemetry → config
//! ```
//!
//! - [`tasks`]: the domain — a task, its statuses and transitions, creation
//!   rules, how an attempt ends (retry, backoff, drop), who may see and
//!   cancel what. Pure: no I/O.
//! - `store`: the only module that speaks SQL; one method per query, the
//!   shared query code generic over each database's dialect.
//! - [`kinds`]: the `Kind` trait, the registry of known kinds (which the API
//!   asks to check payloads and the worker asks for handlers), built-ins
//!   (`sleep`, `callback`, command kinds).
//! - [`intake`]: creating a task, the one way every caller takes (HTTP, an
//!   application's transaction): checks, idempotency, the insert.
//! - `api`: actix-web routes, one module per route, authentication, the
//!   error mapping.
//! - `worker`: claim loops, the executor, heartbeats, and the maintenance
//!   services (rescuer, pruner, callback outbox).
//! - `files`: task files' bytes, in the database or object storage:
//!   streamed in with their digest and a size limit, streamed out, pruned.
//! - [`config`], `telemetry`: settings and logging; `pacing`: how every loop
//!   backs off after failures and waits for an event or a deadline.
//! - [`app`]: the composition root that wires them into `serve`, `api` and
//!   `worker` processes, and the one-shot commands.

// The library's API is what is documented: `app`, `config`, `intake`,
// `kinds`, `tasks`, and the re-exports below. The other modules are public
// only so that errand's binary, tests and benchmarks reach them; they are
// hidden from the documentation and may change without notice.
#[doc(hidden)]
pub mod api;
pub mod app;
#[doc(hidden)]
pub mod batching;
pub mod config;
#[doc(hidden)]
pub mod files;
pub mod intake;
pub mod kinds;
#[doc(hidden)]
pub mod pacing;
#[doc(hidden)]
pub mod store;
pub mod tasks;
#[doc(hidden)]
pub mod telemetry;
#[doc(hidden)]
pub mod worker;

pub use app::{App, AppError, Builder, Mode};
pub use config::Settings;
pub use intake::{Created, EnqueueError, Enqueuer};
pub use kinds::{Kind, Outcome, TaskContext, TaskError};
/// The sqlx errand is built with: an application's transaction handed to
/// [`Enqueuer::create_in`] must come from this version.
pub use sqlx;
pub use tasks::{Principal, Role, Status, Task, TaskDraft, TaskToken, TaskView};
