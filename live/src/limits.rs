//! Per-connection rate limits of the live transports (governor's GCRA, in memory).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Chat messages per live connection: 5 a second, in bursts of 20.
pub const CHAT_PER_CONNECTION: (u32, Duration) = (20, Duration::from_secs(4));
/// Signaling messages per live connection: 50 a second, in bursts of 200 (ICE gathering).
pub const SIGNALS_PER_CONNECTION: (u32, Duration) = (200, Duration::from_secs(4));

/// A limiter for one live connection's messages of one kind: `burst` replenished evenly over
/// `period`.
pub fn per_connection((burst, period): (u32, Duration)) -> DefaultDirectRateLimiter {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period / burst.get())
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst);
    RateLimiter::direct(quota)
}
