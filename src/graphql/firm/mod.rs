//! The firm view: what a firm's staff read and change. Every object here is firm-only.

pub mod day;
pub mod history;
pub mod mutation;
pub mod preview;
pub mod query;
pub mod types;
pub mod webhooks;
// Replies by email (issue 15).
pub mod replies;
