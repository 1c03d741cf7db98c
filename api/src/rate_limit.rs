//! Rate limits (governor's GCRA limiters, in memory per process): sign-in and registration per
//! client IP, sign-in per account (plus a lockout after repeated failures, kept in the database
//! so that every process and a restart honour it), every other request per user (per IP when
//! anonymous); chat and signaling per live connection are `telemed-live`'s. An excess gets 429
//! problem+json with `Retry-After`. `TELEMED_RATE_LIMITS=off` turns all of it off (load tests, benchmarks).

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sqlx::PgPool;
use telemed_domain::UserId;
use telemed_tasks::Background;

use crate::auth::jwt::VerifiedToken;
use crate::error::ApiError;

/// Sign-ins and registrations per client IP: 20 a minute, in bursts of 20.
const AUTH_PER_IP: (u32, Duration) = (20, Duration::from_secs(60));
/// Sign-ins per account: 10 a minute.
const LOGIN_PER_ACCOUNT: (u32, Duration) = (10, Duration::from_secs(60));
/// Requests per signed-in user: 20 a second, in bursts of 100.
const PER_USER: (u32, Duration) = (100, Duration::from_secs(5));
/// Anonymous requests (health, docs, calendar feeds) per client IP: 50 a second, bursts 200.
const ANONYMOUS_PER_IP: (u32, Duration) = (200, Duration::from_secs(4));

/// Consecutive failed sign-ins after which an account is locked.
pub const LOCKOUT_AFTER_FAILURES: i32 = 5;
/// How long a locked account refuses sign-ins.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// A quota of `burst` requests replenished evenly over `period`.
fn quota((burst, period): (u32, Duration)) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period / burst.get())
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst)
}

/// The 429 for a limiter that refused until `retry_after`.
pub fn refused(what: &str, retry_after: Duration) -> ApiError {
    ApiError::rate_limited(what, retry_after)
}

fn check<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Option<Duration> {
    limiter
        .check_key(key)
        .err()
        .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

/// The process's limiters.
pub struct RateLimits {
    enabled: bool,
    auth_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    login_per_account: DefaultKeyedRateLimiter<String>,
    per_user: DefaultKeyedRateLimiter<UserId>,
    anonymous_per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimits {
    /// Limits, enforced when `enabled`.
    pub fn new(enabled: bool) -> Arc<Self> {
        Arc::new(Self {
            enabled,
            auth_per_ip: RateLimiter::keyed(quota(AUTH_PER_IP)),
            login_per_account: RateLimiter::keyed(quota(LOGIN_PER_ACCOUNT)),
            per_user: RateLimiter::keyed(quota(PER_USER)),
            anonymous_per_ip: RateLimiter::keyed(quota(ANONYMOUS_PER_IP)),
        })
    }

    /// Forgets idle keys every minute, under `background`.
    pub fn spawn_forgetting(self: &Arc<Self>, background: &Background) {
        let limits = self.clone();
        background.every(Duration::from_secs(60), move || {
            limits.forget_idle();
            std::future::ready(())
        });
    }

    /// Whether limits are enforced.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Forgets keys whose limits are fully replenished (bounded memory); run periodically.
    pub fn forget_idle(&self) {
        self.auth_per_ip.retain_recent();
        self.login_per_account.retain_recent();
        self.per_user.retain_recent();
        self.anonymous_per_ip.retain_recent();
        self.auth_per_ip.shrink_to_fit();
        self.login_per_account.shrink_to_fit();
        self.per_user.shrink_to_fit();
        self.anonymous_per_ip.shrink_to_fit();
    }

    /// Admits one sign-in attempt for `email`: per-account rate, then the lockout.
    pub async fn admit_login(&self, pool: &PgPool, email: &str) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let key = email.trim().to_lowercase();
        if let Some(wait) = check(&self.login_per_account, &key) {
            return Err(refused("sign-in attempts for this account", wait));
        }
        let locked: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM locked_until - now())::float8 FROM login_failures
              WHERE email = $1 AND locked_until > now()",
        )
        .bind(&key)
        .fetch_optional(pool)
        .await?;
        match locked {
            Some(seconds) => Err(ApiError::RateLimited {
                detail: format!(
                    "this account is locked after {LOCKOUT_AFTER_FAILURES} failed sign-ins; retry after the time in Retry-After"
                ),
                retry_after: Duration::from_secs_f64(seconds.max(1.0)),
            }),
            None => Ok(()),
        }
    }

    /// Records the outcome of a sign-in for `email`: a failure counts towards the lockout, a
    /// success clears the count.
    pub async fn record_login(
        &self,
        pool: &PgPool,
        email: &str,
        succeeded: bool,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let key = email.trim().to_lowercase();
        if succeeded {
            sqlx::query("DELETE FROM login_failures WHERE email = $1")
                .bind(&key)
                .execute(pool)
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO login_failures AS f (email, failures) VALUES ($1, 1)
             ON CONFLICT (email) DO UPDATE
                SET failures = CASE WHEN f.failures + 1 >= $2 THEN 0 ELSE f.failures + 1 END,
                    locked_until = CASE WHEN f.failures + 1 >= $2
                                        THEN now() + make_interval(secs => $3)
                                        ELSE f.locked_until END",
        )
        .bind(&key)
        .bind(LOCKOUT_AFTER_FAILURES)
        .bind(LOCKOUT.as_secs_f64())
        .execute(pool)
        .await?;
        Ok(())
    }
}

/// The client's IP address (`0.0.0.0` when the connection's address is unknown).
fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The 429 for `refusal`, or the request run when there is none.
async fn admit(refusal: Option<(&str, Duration)>, request: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    match refusal {
        Some((what, wait)) => refused(what, wait).into_response(),
        None => next.run(request).await,
    }
}

/// Route middleware of sign-in and registration: the per-IP limit on attempts.
pub async fn sign_in_attempts(
    Extension(limits): Extension<Arc<RateLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let refusal = if limits.enabled {
        check(&limits.auth_per_ip, &client_ip(&request))
            .map(|wait| ("sign-in attempts from this address", wait))
    } else {
        None
    };
    admit(refusal, request, next).await
}

/// Route middleware of every other route: the per-user limit, per IP for a request without a
/// valid token (the caller as [`crate::auth::identify`] found it).
pub async fn per_caller(
    Extension(limits): Extension<Arc<RateLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let refusal = if !limits.enabled {
        None
    } else if let Some(verified) = request.extensions().get::<VerifiedToken>() {
        check(&limits.per_user, &verified.user_id).map(|wait| ("requests", wait))
    } else {
        check(&limits.anonymous_per_ip, &client_ip(&request))
            .map(|wait| ("requests from this address", wait))
    };
    admit(refusal, request, next).await
}
