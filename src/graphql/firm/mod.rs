//! The firm view: what a firm's staff read and change. Every object here is firm-only.

pub mod mutation;
pub mod preview;
pub mod query;
pub mod types;
pub mod webhooks;
