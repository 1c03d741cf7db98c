//! Authentication: access tokens.

pub mod jwt;
