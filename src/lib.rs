//! Rappel: a reminder engine for accounting firms, served over GraphQL.

pub mod announce;
pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod delivery;
pub mod domain;
pub mod downloads;
pub mod error;
pub mod events;
pub mod generation;
pub mod graphql;
pub mod graphql_over_http;
pub mod health;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod ops;
pub mod playground;
pub mod portal;
pub mod scheduler;
pub mod setup;
pub mod storage;
pub mod templates;
pub mod throttle;
// Replies by email (issue 15): the IMAP fetcher and the SMTP listener.
pub mod inbound;
