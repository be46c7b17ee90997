//! Rappel's one integration test binary. Each `backend_test!` runs on a fresh SQLite file and on
//! a fresh PostgreSQL database (when `RAPPEL_TEST_POSTGRES_URL` is set; with `CI=true` a missing
//! PostgreSQL fails instead of skipping).

mod support;

mod api;
mod bulk;
mod calendar;
mod callers;
mod day;
mod delivery;
mod digest;
mod docs;
mod documents;
mod explain;
mod foundation;
mod generation;
mod graphql_http;
mod journal;
mod layers;
mod limits;
mod nodes;
mod operations;
mod ops;
mod pages;
mod portal;
mod replies;
mod schedule_limits;
mod sorting;
mod truth;
