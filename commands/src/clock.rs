//! The service's notion of "now", with a seam for tests.

use time::{Duration, OffsetDateTime};

/// Wall-clock time, optionally shifted (tests move a second server instance into the future
/// instead of sleeping).
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    offset: Duration,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system clock shifted by `offset`.
    pub fn shifted(offset: Duration) -> Self {
        Self { offset }
    }

    /// Now, in UTC, to the microsecond (PostgreSQL's precision, so that an instant recorded in
    /// an event and the same instant read back from a read model are equal).
    pub fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc() + self.offset;
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now)
    }
}
