//! Authentication: access tokens and the sign-in sessions behind them.

pub mod jwt;
pub mod sessions;
