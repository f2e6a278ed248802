//! A ticket shop that embeds errand (see `shop.rs`): its own actix-web
//! server carries the shop's routes and errand's, and runs errand's workers
//! with the shop's two kinds.
//!
//! ```sh
//! export DATABASE_URL=postgres://postgres@127.0.0.1:5432/shop   # an existing database
//! cargo run --example tickets                                   # listens on 127.0.0.1:8090
//! SHOP=$(cargo run -q -- token create --name shop --role user)
//! curl -s -X POST localhost:8090/shop/orders -H 'content-type: application/json' \
//!      -d '{"email": "ann@example.com", "seats": 5}'
//! # {"order":1,"tickets":["…",…],"send":"…"}
//! curl -s localhost:8090/v1/tasks/<send token> -H "Authorization: Bearer $SHOP"
//! ```

mod shop;

use std::collections::HashMap;

use actix_web::{App as HttpApp, HttpServer, web};
use errand::sqlx::PgPool;
use errand::{Builder, Mode};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = errand::config::load(None, &env)?;
    errand::telemetry::init(&settings.log.level, settings.log.format)?;
    let pool = PgPool::connect(&settings.database.url).await?;
    shop::migrate(&pool).await?;
    errand::app::migrate(&settings).await?;

    // errand, with the shop's kinds and its pool as their state; its
    // routes go into the shop's own server.
    let errand = Builder::new(settings)
        .kind(shop::GenerateTicket)
        .kind(shop::SendTickets)
        .state(pool.clone())
        .mounted()
        .build(Mode::Serve)?;
    let routes = errand.routes();
    let shop = web::Data::new(shop::Shop {
        pool,
        enqueuer: errand.enqueuer(),
    });
    let server = HttpServer::new(move || {
        HttpApp::new()
            .app_data(shop.clone())
            .configure(routes.clone())
            .configure(shop::routes)
    })
    .disable_signals()
    .bind(("127.0.0.1", 8090))?
    .run();
    let http = server.handle();
    let serving = tokio::spawn(server);
    println!("the shop is open on http://127.0.0.1:8090 (Ctrl-C closes it)");

    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    // errand's workers hand back their tasks first; then the HTTP server
    // stops (see `errand::App::routes`).
    errand.run(shutdown).await?;
    http.stop(true).await;
    serving.await??;
    Ok(())
}
