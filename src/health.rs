//! Readiness (`GET /readyz`): the database answers, its migrations are current, and the
//! background parts this process runs (scheduler, reminder loop, delivery worker) are alive.
//! Also who may read `/metrics` on the main listener. Every check is cheap and bounded in time;
//! nothing here changes data.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::Config;
use crate::db::Pool;

/// How often the scheduler proves it still runs jobs, and when silence means it stopped.
const SCHEDULER_BEAT: Duration = Duration::from_secs(10);
const SCHEDULER_STALE_AFTER: Duration = Duration::from_secs(60);

/// What `serve` hands the HTTP layer about the running process (an axum `Extension`). The
/// default (a router built without `serve`, as in tests) serves `/metrics` without a token and
/// watches nothing in the background.
#[derive(Clone)]
pub struct Operations {
    /// `/metrics` is served on the main listener (not on its own address, not turned off).
    pub metrics_on_main_listener: bool,
    /// The bearer token `/metrics` asks for; empty: none.
    pub metrics_bearer_token: String,
    tasks: Vec<(&'static str, AbortHandle)>,
    heartbeats: Vec<(&'static str, Heartbeat)>,
}

/// The last time a background part showed it was alive (Unix milliseconds).
#[derive(Clone, Debug)]
pub struct Heartbeat {
    last_beat_ms: Arc<AtomicI64>,
    stale_after: Duration,
}

impl Default for Operations {
    fn default() -> Self {
        Self {
            metrics_on_main_listener: true,
            metrics_bearer_token: String::new(),
            tasks: Vec::new(),
            heartbeats: Vec::new(),
        }
    }
}

impl Heartbeat {
    fn new(stale_after: Duration) -> Self {
        let beat = Self {
            last_beat_ms: Arc::new(AtomicI64::new(0)),
            stale_after,
        };
        beat.beat();
        beat
    }

    fn beat(&self) {
        self.last_beat_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    fn is_fresh(&self) -> bool {
        let age_ms =
            chrono::Utc::now().timestamp_millis() - self.last_beat_ms.load(Ordering::Relaxed);
        u128::try_from(age_ms).unwrap_or(0) <= self.stale_after.as_millis()
    }
}

impl Operations {
    /// The part of the configuration the HTTP layer needs.
    pub fn from_config(config: &Config) -> Self {
        Self {
            metrics_on_main_listener: config.metrics.enabled && config.metrics.listen.is_empty(),
            metrics_bearer_token: config.metrics.bearer_token.clone(),
            ..Self::default()
        }
    }

    /// Watches a background task: it is dead once it ended (a panic or an early return).
    pub fn watch_task(&mut self, name: &'static str, task: AbortHandle) {
        self.tasks.push((name, task));
    }

    /// Adds a job that beats every few seconds to `scheduler`, so `/readyz` notices a
    /// scheduler that stopped running jobs.
    pub async fn watch_scheduler(&mut self, scheduler: &JobScheduler) -> anyhow::Result<()> {
        let heartbeat = Heartbeat::new(SCHEDULER_STALE_AFTER);
        let beating = heartbeat.clone();
        scheduler
            .add(Job::new_repeated_async(
                SCHEDULER_BEAT,
                move |_id, _scheduler| {
                    let beating = beating.clone();
                    Box::pin(async move { beating.beat() })
                },
            )?)
            .await?;
        self.heartbeats.push(("scheduler", heartbeat));
        Ok(())
    }

    /// Whether each watched background part is alive.
    pub fn background_checks(&self) -> Vec<Check> {
        let beating = self.heartbeats.iter().map(|(name, heartbeat)| {
            if heartbeat.is_fresh() {
                Check::ok(name)
            } else {
                Check::failed(name, "stopped running its jobs")
            }
        });
        let running = self.tasks.iter().map(|(name, task)| {
            if task.is_finished() {
                Check::failed(name, "stopped")
            } else {
                Check::ok(name)
            }
        });
        beating.chain(running).collect()
    }

    /// Whether a bearer token (or none) may read `/metrics`.
    pub fn may_read_metrics(&self, bearer: Option<&str>) -> bool {
        if self.metrics_bearer_token.is_empty() {
            return true;
        }
        bearer.is_some_and(|bearer| same_secret(bearer, &self.metrics_bearer_token))
    }
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// One line of the readiness answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Runs every readiness check; each is bounded by `timeout`.
pub async fn readiness(pool: &Pool, operations: Option<&Operations>) -> Vec<Check> {
    let timeout = Duration::from_secs(3);
    let mut checks = Vec::new();
    let database = tokio::time::timeout(timeout, pool.check_health()).await;
    checks.push(match database {
        Ok(Ok(())) => Check::ok("database"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: database check failed");
            Check::failed("database", "cannot query the database")
        }
        Err(_) => Check::failed("database", "the database did not answer within 3 s"),
    });
    let migrations = tokio::time::timeout(timeout, pool.migrations_are_current()).await;
    checks.push(match migrations {
        Ok(Ok(true)) => Check::ok("migrations"),
        Ok(Ok(false)) => Check::failed("migrations", "migrations are pending"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: migration check failed");
            Check::failed("migrations", "cannot read the applied migrations")
        }
        Err(_) => Check::failed("migrations", "the migration check timed out"),
    });
    if let Some(operations) = operations {
        checks.extend(operations.background_checks());
    }
    checks
}

impl Check {
    fn ok(name: &'static str) -> Self {
        Self {
            name,
            ok: true,
            detail: "ok".into(),
        }
    }

    fn failed(name: &'static str, detail: &str) -> Self {
        Self {
            name,
            ok: false,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metrics_token_must_match_exactly_when_one_is_set() {
        let mut operations = Operations::default();
        assert!(operations.may_read_metrics(None));
        operations.metrics_bearer_token = "s3cret-token".into();
        assert!(!operations.may_read_metrics(None));
        assert!(!operations.may_read_metrics(Some("s3cret-tokem")));
        assert!(!operations.may_read_metrics(Some("s3cret")));
        assert!(operations.may_read_metrics(Some("s3cret-token")));
    }

    #[tokio::test]
    async fn a_finished_task_is_reported_stopped_and_a_running_one_alive() {
        let finished = tokio::spawn(async {});
        let finished_handle = finished.abort_handle();
        finished.await.expect("the task ends");
        let running = tokio::spawn(std::future::pending::<()>());
        let mut operations = Operations::default();
        operations.watch_task("delivery_worker", finished_handle);
        operations.watch_task("reminders", running.abort_handle());
        let checks = operations.background_checks();
        assert_eq!(checks.len(), 2);
        assert!(!checks[0].ok, "{checks:?}");
        assert!(checks[1].ok, "{checks:?}");
        running.abort();
    }

    #[test]
    fn a_heartbeat_goes_stale_after_its_limit() {
        let heartbeat = Heartbeat::new(Duration::from_secs(60));
        assert!(heartbeat.is_fresh());
        heartbeat.last_beat_ms.store(
            chrono::Utc::now().timestamp_millis() - 61_000,
            Ordering::Relaxed,
        );
        assert!(!heartbeat.is_fresh());
    }
}
