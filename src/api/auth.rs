//! Bearer-token authentication: the [`Caller`] extractor, and a short-lived
//! cache of verified tokens so that a poll does not cost a token lookup, yet
//! a revoked token stops working within `auth.cache_ttl`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::{ApiError, ApiState};
use crate::store::Store;
use crate::tasks::{Principal, TokenHash};

/// The authenticated caller of a request.
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<ApiState>>().cloned();
        let presented = bearer(req).map(TokenHash::of);
        Box::pin(async move {
            let state = state.expect("ApiState is registered with every route");
            let hash = presented?;
            state
                .tokens
                .verify(&state.store, &hash)
                .await?
                .map(Caller)
                .ok_or(ApiError::Unauthorized("unknown or revoked API token"))
        })
    }
}

/// The token in `Authorization: Bearer <token>`.
fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized(
            "missing API token: send Authorization: Bearer <token>",
        ))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::Unauthorized(
            "the Authorization header must be: Bearer <token>",
        )),
    }
}

/// Verified tokens, remembered for a short time. Unknown tokens are not
/// remembered, so a token minted a moment ago works at once.
pub struct TokenCache {
    ttl: Duration,
    verified: Mutex<HashMap<TokenHash, (Principal, Instant)>>,
}

/// More cached tokens than any real deployment has; past it the cache
/// starts over rather than grow.
const MAX_CACHED: usize = 10_000;

impl TokenCache {
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache {
            ttl,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The caller this token stands for, if it is known and not revoked.
    pub async fn verify(
        &self,
        store: &Store,
        hash: &TokenHash,
    ) -> Result<Option<Principal>, ApiError> {
        if let Some(principal) = self.cached(hash) {
            return Ok(Some(principal));
        }
        let found = store.token_find(hash).await?;
        if let Some(principal) = &found {
            let mut verified = self.lock();
            if verified.len() >= MAX_CACHED {
                verified.clear();
            }
            verified.insert(*hash, (principal.clone(), Instant::now()));
        }
        Ok(found)
    }

    fn cached(&self, hash: &TokenHash) -> Option<Principal> {
        let mut verified = self.lock();
        match verified.get(hash) {
            Some((principal, at)) if at.elapsed() < self.ttl => Some(principal.clone()),
            Some(_) => {
                verified.remove(hash);
                None
            }
            None => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, (Principal, Instant)>> {
        // The map holds no invariant a panic could break.
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}
