//! Wiring of scheduled work: the generation pass on a UTC cron with tokio-cron-scheduler (its
//! time-zone jobs drift by an hour after each DST change; every pass computes each firm's own
//! local date instead), the reminder pass on an interval, and one of each at start so downtime
//! is caught up (and the daily digest and file sweep on their own intervals). Every generation
//! and reminder pass is journaled in `scheduler_runs`. The work itself is plain async
//! functions in `generation` and `delivery::reminders`; a tick that is missed, doubled or run on
//! two instances changes nothing, since the generation and dedupe keys decide.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::db::{Pool, runs};
use crate::delivery::DeliveryWaker;
use crate::delivery::reminders::{self, ReminderSettings};
use crate::events::EventBus;
use crate::generation::{GenerationSettings, run_pass};

/// Runs one pass at the current time and journals it in `scheduler_runs` as `kind`, with what
/// it created or why it failed; returns what it created (0 on failure, logged here).
async fn journaled<Pass, E>(
    pool: &Pool,
    kind: &str,
    instance: &str,
    pass: impl FnOnce(DateTime<Utc>) -> Pass,
) -> i64
where
    Pass: Future<Output = Result<i64, E>>,
    E: Display,
{
    let started = Utc::now();
    let run_id = match pool.get().await {
        Ok(mut conn) => {
            runs::start_run(&mut conn.as_db(), kind, instance, None, started.naive_utc())
                .await
                .ok()
        }
        Err(_) => None,
    };
    let (created, error) = match pass(started).await {
        Ok(created) => (created, None),
        Err(error) => {
            tracing::error!(%error, kind, "scheduled pass failed; the next tick will try again");
            (0, Some(error.to_string()))
        }
    };
    if let (Some(run_id), Ok(mut conn)) = (run_id, pool.get().await) {
        let _ = runs::finish_run(
            &mut conn.as_db(),
            run_id,
            created,
            error.as_deref(),
            Utc::now().naive_utc(),
        )
        .await;
    }
    created
}

/// Runs one generation pass now and journals it; a pass already running in this process makes
/// this one a no-op.
pub async fn generation_tick(
    pool: &Pool,
    settings: &GenerationSettings,
    events: &EventBus,
    running: &Mutex<()>,
    instance: &str,
) {
    let Ok(_guard) = running.try_lock() else {
        tracing::info!("a generation pass is still running; this tick is skipped");
        return;
    };
    journaled(pool, "GENERATION", instance, |now| async move {
        run_pass(pool, settings, now, None, Some(events))
            .await
            .map(|report| {
                i64::try_from(report.tasks_created + report.requests_created).unwrap_or(i64::MAX)
            })
    })
    .await;
}

/// Runs one reminder pass now and journals it; wakes the delivery worker when it enqueued
/// something.
pub async fn reminder_tick(
    pool: &Pool,
    settings: &ReminderSettings,
    waker: &DeliveryWaker,
    instance: &str,
) {
    let enqueued = journaled(pool, "REMINDERS", instance, |now| async move {
        reminders::run_pass(pool, settings, now, None)
            .await
            .map(|report| i64::try_from(report.deliveries_enqueued).unwrap_or(i64::MAX))
    })
    .await;
    if enqueued > 0 {
        waker.wake();
    }
}

/// Runs a reminder pass every `interval` in the background (the first one at once when
/// `run_at_start`). Abort the handle to stop it.
pub fn start_reminders(
    pool: Pool,
    settings: ReminderSettings,
    interval: Duration,
    waker: DeliveryWaker,
    run_at_start: bool,
) -> JoinHandle<()> {
    let instance = instance_name();
    tokio::spawn(async move {
        let start = if run_at_start {
            tokio::time::Instant::now()
        } else {
            tokio::time::Instant::now() + interval
        };
        let mut ticks = tokio::time::interval_at(start, interval.max(Duration::from_secs(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            reminder_tick(&pool, &settings, &waker, &instance).await;
        }
    })
}

/// This process's name in the journal.
fn instance_name() -> String {
    format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple())
}

/// Starts the scheduler: a pass at start (when asked) and on every tick of `cron` (UTC).
pub async fn start(
    pool: Pool,
    settings: GenerationSettings,
    events: EventBus,
    cron: &str,
    run_at_start: bool,
) -> anyhow::Result<JobScheduler> {
    let instance = instance_name();
    let running = Arc::new(Mutex::new(()));
    let scheduler = JobScheduler::new().await?;
    let job = {
        let (pool, settings, events, running, instance) = (
            pool.clone(),
            settings.clone(),
            events.clone(),
            running.clone(),
            instance.clone(),
        );
        Job::new_async(cron, move |_id, _scheduler| {
            let (pool, settings, events, running, instance) = (
                pool.clone(),
                settings.clone(),
                events.clone(),
                running.clone(),
                instance.clone(),
            );
            Box::pin(async move {
                generation_tick(&pool, &settings, &events, &running, &instance).await;
            })
        })?
    };
    scheduler.add(job).await?;
    scheduler.start().await?;
    if run_at_start {
        tokio::spawn(async move {
            generation_tick(&pool, &settings, &events, &running, &instance).await;
        });
    }
    Ok(scheduler)
}

// ---- The firm's day: the staff's daily digest ----

/// Runs one daily digest pass now. Not journaled in `scheduler_runs` (its kinds are
/// GENERATION and REMINDERS); each digest sent is in the activity journal instead.
pub async fn digest_tick(
    pool: &Pool,
    mailer: &crate::delivery::email::Mailer,
    settings: &crate::delivery::digest::DigestSettings,
) {
    if let Err(error) = crate::delivery::digest::run_pass(pool, mailer, settings, Utc::now()).await
    {
        tracing::error!(%error, "daily digest pass failed; the next tick will try again");
    }
}

/// Runs a daily digest pass every `interval` in the background (the first one at once when
/// `run_at_start`). Abort the handle to stop it.
pub fn start_digests(
    pool: Pool,
    mailer: crate::delivery::email::Mailer,
    settings: crate::delivery::digest::DigestSettings,
    interval: Duration,
    run_at_start: bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let start = if run_at_start {
            tokio::time::Instant::now()
        } else {
            tokio::time::Instant::now() + interval
        };
        let mut ticks = tokio::time::interval_at(start, interval.max(Duration::from_secs(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            digest_tick(&pool, &mailer, &settings).await;
        }
    })
}

// ---- The document store: the daily file sweep ----

/// How often the file sweep runs.
pub const FILE_SWEEP_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// Runs one file sweep now (`ops::sweep`). Not journaled in `scheduler_runs` (its kinds are
/// GENERATION and REMINDERS); the sweep logs each deletion and its summary.
pub async fn file_sweep_tick(
    pool: &Pool,
    settings: &GenerationSettings,
    storage: &crate::storage::Storage,
    min_age: chrono::Duration,
) {
    let env = crate::ops::Env::new(pool, settings).with_storage(storage);
    if let Err(error) = crate::ops::sweep::sweep_files(env, Utc::now(), min_age, false).await {
        tracing::error!(error = %error.message(), "file sweep failed; the next one will try again");
    }
}

/// Runs the file sweep every [`FILE_SWEEP_INTERVAL`] in the background (the first one at once
/// when `run_at_start`). Abort the handle to stop it.
pub fn start_file_sweeps(
    pool: Pool,
    settings: GenerationSettings,
    storage: crate::storage::Storage,
    min_age: chrono::Duration,
    run_at_start: bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let start = if run_at_start {
            tokio::time::Instant::now()
        } else {
            tokio::time::Instant::now() + FILE_SWEEP_INTERVAL
        };
        let mut ticks = tokio::time::interval_at(start, FILE_SWEEP_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            file_sweep_tick(&pool, &settings, &storage, min_age).await;
        }
    })
}
