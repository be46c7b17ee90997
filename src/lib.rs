//! Rappel: a reminder engine for accounting firms, served over GraphQL.

pub mod app;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
