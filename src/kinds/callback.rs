//! `callback`: delivers a task's final JSON to its `callback_url`, signed as
//! Standard Webhooks are. Delivery is a task of its own (queued by
//! maintenance when the task ends, with that JSON in its payload), so it
//! retries with backoff, survives restarts, and shows in listings, and the
//! same body goes out on every attempt. Internal: clients can't create it.
//!
//! A 2xx ends delivery; 410 Gone stops it; anything else is retried. The
//! `webhook-id` is fixed when the delivery is queued, so it stays the same
//! across retries and a receiver can drop duplicates. Redirects are not
//! followed. The host is resolved and checked at every attempt (the SSRF
//! guard), and the connection goes to the address that was checked.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::{Host, Url};

use super::{Kind, TaskContext, TaskError};
use crate::tasks::{TaskToken, WebhookSecret, check_callback_url, forbidden_address};

/// The `callback` payload: which task, where to, the message id, and the
/// body to send (the task's final JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackPayload {
    /// The task that ended.
    pub task: TaskToken,
    /// Its `callback_url`.
    pub url: String,
    /// The `webhook-id`, the same on every attempt.
    pub webhook_id: String,
    /// The task's final JSON.
    pub body: Value,
}

/// The `callback` kind.
pub struct Callback {
    secret: Option<WebhookSecret>,
    allow_private_networks: bool,
    timeout: Duration,
}

impl Callback {
    /// `secret` `None`: callbacks are off (create refuses `callback_url`).
    pub fn new(
        secret: Option<WebhookSecret>,
        allow_private_networks: bool,
        timeout: Duration,
    ) -> Callback {
        // reqwest is built without a TLS crypto provider of its own; use
        // ring's. A second install (tests start many apps) changes nothing.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Callback {
            secret,
            allow_private_networks,
            timeout,
        }
    }
}

/// Why a callback URL may not be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Destination {
    /// It points somewhere callbacks may not go: never retried.
    #[error("{0}")]
    Forbidden(String),
    /// Its host does not resolve now: may be retried.
    #[error("{0}")]
    Unresolvable(String),
}

/// Resolves the URL's host and checks every address it has (unless private
/// networks are allowed); the address to connect to.
pub async fn resolve_destination(
    url: &Url,
    allow_private_networks: bool,
) -> Result<SocketAddr, Destination> {
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| Destination::Unresolvable(format!("{name} does not resolve: {e}")))?
            .collect(),
        None => return Err(Destination::Forbidden("the URL names no host".into())),
    };
    if !allow_private_networks {
        for addr in &addrs {
            if let Some(why) = forbidden_address(addr.ip()) {
                return Err(Destination::Forbidden(format!(
                    "{} is {why}; callbacks may not go there",
                    addr.ip()
                )));
            }
        }
    }
    addrs
        .first()
        .copied()
        .ok_or_else(|| Destination::Unresolvable("the host has no address".into()))
}

impl Kind for Callback {
    const NAME: &'static str = "callback";
    const PUBLIC: bool = false;
    type Payload = CallbackPayload;

    async fn run(&self, p: CallbackPayload, ctx: &TaskContext) -> Result<Value, TaskError> {
        let secret = self.secret.as_ref().ok_or_else(|| {
            TaskError::permanent("callbacks are off: callbacks.secret is not set")
        })?;
        let body = serde_json::to_vec(&p.body).map_err(|e| TaskError::permanent(e.to_string()))?;
        let url = check_callback_url(&p.url).map_err(|e| TaskError::permanent(e.to_string()))?;
        let addr = resolve_destination(&url, self.allow_private_networks)
            .await
            .map_err(|e| match e {
                Destination::Forbidden(why) => TaskError::permanent(why),
                Destination::Unresolvable(why) => TaskError::retryable(why),
            })?;
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout);
        if let Some(Host::Domain(name)) = url.host() {
            // Connect to the address that was checked, not to whatever the
            // name resolves to a moment later.
            client = client.resolve(name, addr);
        }
        let client = client
            .build()
            .map_err(|e| TaskError::permanent(format!("HTTP client: {e}")))?;
        let timestamp = chrono::Utc::now().timestamp();
        let request = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &p.webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                secret.sign(&p.webhook_id, timestamp, &body),
            )
            .body(body)
            .send();
        let response = tokio::select! {
            _ = ctx.cancelled() => return Err(TaskError::cancelled()),
            response = request => response,
        }
        .map_err(|e| TaskError::retryable(format!("delivery failed: {e}")))?;
        let status = response.status();
        if status.is_success() {
            Ok(json!({"status": status.as_u16()}))
        } else if status == reqwest::StatusCode::GONE {
            Err(TaskError::permanent(
                "the endpoint answered 410 Gone: delivery stopped",
            ))
        } else {
            Err(TaskError::retryable(format!(
                "the endpoint answered {status}"
            )))
        }
    }
}
