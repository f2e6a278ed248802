//! The ticket shop: an actix-web application of its own that embeds errand.
//! Placing an order writes the order and queues its work in one Postgres
//! transaction: a `generate_ticket` task per seat, and a `send_tickets`
//! task that depends on all of them, so the tickets go out once every one
//! is made, and no task exists for an order that was never saved.
//!
//! Both kinds are Rust types; they reach the shop's database through the
//! pool the shop hands errand as state, never through errand's store.
//! (Shared by `main.rs` and the test that runs the shop, `tests/api`.)

use actix_web::{HttpResponse, web};
use errand::sqlx::{self, PgPool};
use errand::{Enqueuer, Kind, Principal, Role, TaskContext, TaskDraft, TaskError, TaskToken};
use serde::Deserialize;
use serde_json::{Value, json};

/// Who owns the shop's tasks: a token named "shop" sees them.
pub const OWNER: &str = "shop";

/// Makes one ticket PDF and keeps it in the shop's own table.
pub struct GenerateTicket;

#[derive(Deserialize)]
pub struct TicketPayload {
    pub order: i64,
    pub seat: i32,
}

impl Kind for GenerateTicket {
    const NAME: &'static str = "generate_ticket";
    type Payload = TicketPayload;

    fn schema(&self) -> Option<Value> {
        Some(json!({
            "type": "object",
            "required": ["order", "seat"],
            "properties": {
                "order": {"type": "integer"},
                "seat": {"type": "integer", "minimum": 1}
            }
        }))
    }

    async fn run(&self, p: TicketPayload, ctx: &TaskContext) -> Result<Value, TaskError> {
        let pool = ctx.state::<PgPool>()?;
        ctx.progress(0.3, "rendering");
        let pdf = format!(
            "%PDF-1.4\n% ticket: order {} seat {}\n%%EOF\n",
            p.order, p.seat
        );
        // At-least-once: a retried attempt writes the same row again.
        sqlx::query(
            "INSERT INTO shop_tickets (order_id, seat, pdf) VALUES ($1, $2, $3)
             ON CONFLICT (order_id, seat) DO UPDATE SET pdf = EXCLUDED.pdf",
        )
        .bind(p.order)
        .bind(p.seat)
        .bind(pdf.as_bytes())
        .execute(pool)
        .await
        .map_err(|e| TaskError::retryable(format!("could not store the ticket: {e}")))?;
        Ok(json!({"seat": p.seat, "bytes": pdf.len()}))
    }
}

/// Sends an order's tickets, once they all exist.
pub struct SendTickets;

#[derive(Deserialize)]
pub struct SendPayload {
    pub order: i64,
}

impl Kind for SendTickets {
    const NAME: &'static str = "send_tickets";
    type Payload = SendPayload;

    async fn run(&self, p: SendPayload, ctx: &TaskContext) -> Result<Value, TaskError> {
        let pool = ctx.state::<PgPool>()?;
        let db = |e: sqlx::Error| TaskError::retryable(format!("shop database: {e}"));
        let (email, seats): (String, i32) =
            sqlx::query_as("SELECT email, seats FROM shop_orders WHERE id = $1")
                .bind(p.order)
                .fetch_one(pool)
                .await
                .map_err(db)?;
        let made: i64 = sqlx::query_scalar("SELECT count(*) FROM shop_tickets WHERE order_id = $1")
            .bind(p.order)
            .fetch_one(pool)
            .await
            .map_err(db)?;
        if made != i64::from(seats) {
            // Can't happen: this task waits for every ticket task.
            return Err(TaskError::permanent(format!(
                "{made} of {seats} tickets exist"
            )));
        }
        ctx.progress(0.5, format!("mailing {seats} tickets to {email}"));
        sqlx::query("UPDATE shop_orders SET sent_at = now() WHERE id = $1")
            .bind(p.order)
            .execute(pool)
            .await
            .map_err(db)?;
        Ok(json!({"sent": seats, "to": email}))
    }
}

/// The shop's own tables.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS shop_orders (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             email text NOT NULL,
             seats integer NOT NULL CHECK (seats BETWEEN 1 AND 20),
             sent_at timestamptz);
         CREATE TABLE IF NOT EXISTS shop_tickets (
             order_id bigint NOT NULL REFERENCES shop_orders (id),
             seat integer NOT NULL,
             pdf bytea NOT NULL,
             PRIMARY KEY (order_id, seat));",
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// What the shop's handlers share.
pub struct Shop {
    pub pool: PgPool,
    pub enqueuer: Enqueuer,
}

#[derive(Deserialize)]
pub struct OrderRequest {
    pub email: String,
    pub seats: i32,
}

/// A placed order and the tasks that will fulfil it.
#[derive(Debug, serde::Serialize)]
pub struct Placed {
    pub order: i64,
    pub tickets: Vec<TaskToken>,
    pub send: TaskToken,
}

impl Shop {
    /// Saves the order and queues its tickets and their sending, all in one
    /// transaction: all of it happens, or none.
    pub async fn place(&self, request: &OrderRequest) -> Result<Placed, String> {
        let owner = Principal {
            name: OWNER.into(),
            role: Role::User,
            product: None,
        };
        let mut tx = self.pool.begin().await.map_err(|e| e.to_string())?;
        let order: i64 = sqlx::query_scalar(
            "INSERT INTO shop_orders (email, seats) VALUES ($1, $2) RETURNING id",
        )
        .bind(&request.email)
        .bind(request.seats)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        let mut tickets = Vec::new();
        for seat in 1..=request.seats {
            let draft = TaskDraft::new(GenerateTicket::NAME, json!({"order": order, "seat": seat}));
            let created = self.enqueuer.create_in(&mut tx, draft, &owner, None).await;
            tickets.push(created.map_err(|e| e.to_string())?.task.token);
        }
        let send = TaskDraft {
            depends_on: Some(tickets.clone()),
            ..TaskDraft::new(SendTickets::NAME, json!({"order": order}))
        };
        let send = self.enqueuer.create_in(&mut tx, send, &owner, None).await;
        let send = send.map_err(|e| e.to_string())?.task.token;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(Placed {
            order,
            tickets,
            send,
        })
    }
}

/// `POST /shop/orders {"email": …, "seats": n}`: 202 with the order and the
/// tokens to poll at `/v1/tasks/{token}`.
async fn place_order(shop: web::Data<Shop>, request: web::Json<OrderRequest>) -> HttpResponse {
    if !(1..=20).contains(&request.seats) {
        return HttpResponse::UnprocessableEntity().json(json!({"error": "seats: 1 to 20"}));
    }
    match shop.place(&request).await {
        Ok(placed) => HttpResponse::Accepted().json(placed),
        Err(e) => HttpResponse::InternalServerError().json(json!({"error": e})),
    }
}

/// The shop's own routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/shop/orders", web::post().to(place_order));
}
