//! The API's error type: [`telemed_problem`], shared with the live transports.

pub use telemed_problem::*;
