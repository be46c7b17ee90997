//! Wiring of scheduled work with tokio-cron-scheduler: the generation pass on a UTC cron
//! (its time-zone jobs drift by an hour after each DST change; every pass computes each firm's
//! own local date instead), plus one pass at start so downtime is caught up. The work itself
//! is plain async functions in `generation`; a tick that is missed, doubled or run on two
//! instances changes nothing, since the generation keys decide.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::db::{Pool, runs};
use crate::events::EventBus;
use crate::generation::{GenerationSettings, run_pass};

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
    let started = Utc::now();
    let run_id = match pool.get().await {
        Ok(mut conn) => runs::start_run(
            &mut conn.as_db(),
            "GENERATION",
            instance,
            None,
            started.naive_utc(),
        )
        .await
        .ok(),
        Err(_) => None,
    };
    let outcome = run_pass(pool, settings, started, None, Some(events)).await;
    let (created, error) = match &outcome {
        Ok(report) => (
            i64::try_from(report.tasks_created + report.requests_created).unwrap_or(i64::MAX),
            None,
        ),
        Err(error) => {
            tracing::error!(%error, "generation pass failed; the next tick will try again");
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
}

/// Starts the scheduler: a pass at start (when asked) and on every tick of `cron` (UTC).
pub async fn start(
    pool: Pool,
    settings: GenerationSettings,
    events: EventBus,
    cron: &str,
    run_at_start: bool,
) -> anyhow::Result<JobScheduler> {
    let instance = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
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
