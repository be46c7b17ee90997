//! Wiring of the long-running server: open the database, migrate, build the schema, listen,
//! and stop cleanly on SIGTERM or Ctrl-C. The CLI calls into here; tests start the binary.

use anyhow::Context as _;

use crate::config::Config;
use crate::db::Pool;
use crate::events::EventBus;
use crate::generation::GenerationSettings;
use crate::graphql::{SchemaData, build_schema_with_delivery};
use crate::http::{AppState, router};

/// Opens the configured database.
pub async fn open_database(config: &Config) -> anyhow::Result<Pool> {
    Pool::connect(
        &config.database.url,
        config.database.pool_size,
        config.database.busy_timeout_ms,
    )
    .await
    .with_context(|| {
        format!(
            "cannot open the database at {}",
            redact(&config.database.url)
        )
    })
}

/// Opens the database and applies pending migrations.
pub async fn open_and_migrate(config: &Config) -> anyhow::Result<Pool> {
    let pool = open_database(config).await?;
    let applied = pool
        .run_migrations()
        .await
        .context("cannot apply the database migrations")?;
    for version in applied {
        tracing::info!(%version, backend = pool.backend_name(), "migration applied");
    }
    Ok(pool)
}

/// The generation settings of a configuration.
pub fn generation_settings(config: &Config) -> GenerationSettings {
    GenerationSettings {
        batch_size: i64::from(config.scheduler.batch_size),
        default_sending_hour: config.delivery.sending_hour,
        occurrences_per_transaction: usize::try_from(config.scheduler.occurrences_per_transaction)
            .unwrap_or(usize::MAX),
        limits: crate::domain::schedule::ScheduleLimits {
            max_quantity: config.scheduler.max_line_quantity,
            max_service_items: usize::try_from(config.scheduler.max_service_items)
                .unwrap_or(usize::MAX),
            max_mission_lines: usize::try_from(config.scheduler.max_mission_lines)
                .unwrap_or(usize::MAX),
            max_occurrences: usize::try_from(config.scheduler.max_occurrences_at_once)
                .unwrap_or(usize::MAX),
        },
    }
}

/// `rappel serve`: migrate, then answer HTTP until told to stop.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    if config.metrics.enabled {
        crate::metrics::install();
    }
    let pool = open_and_migrate(&config).await?;
    let mut events = EventBus::new();
    if let crate::db::DatabaseUrl::Postgres(url) =
        crate::db::DatabaseUrl::parse(&config.database.url)
            .map_err(|reason| anyhow::anyhow!(reason))?
    {
        // Several instances may share this database: subscribers hear every instance's events.
        events.bridge_postgres(&url);
    }
    let waker = crate::delivery::DeliveryWaker::default();
    let schema = build_schema_with_delivery(
        Some(SchemaData {
            pool: pool.clone(),
            events: events.clone(),
            auth: config.auth.clone(),
            generation: generation_settings(&config),
        }),
        Some(crate::delivery::DeliveryControl::from_config(
            &config,
            waker.clone(),
        )),
        &config.graphql,
    );
    let state = AppState {
        schema,
        pool: pool.clone(),
        callers: crate::graphql::CallerCache::new(config.auth.caller_cache_seconds, events.clone()),
        graphiql: config.graphql.graphiql,
        max_batch: config.graphql.max_batch,
        web: crate::http::WebOptions {
            storage: Some(
                crate::storage::Storage::from_config(&config.storage)
                    .context("cannot open the document store ([storage])")?,
            ),
            ..crate::http::WebOptions::from_config(&config)
        },
    };
    let listener = tokio::net::TcpListener::bind(config.listen_addr()?)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    if config.demo {
        if let Some(demo) = crate::setup::seed_demo_if_empty(&pool, &config, Some(&events)).await? {
            print_demo(&config, address, &demo);
            // Prefilled in the playground's Headers tab (the database keeps only its hash).
            state.web.demo_token.set(&demo.admin_token);
        }
    } else {
        crate::setup::note_database_has_data(&pool).await?;
    }
    let mut scheduler = if config.scheduler.enabled {
        Some(
            crate::scheduler::start(
                pool.clone(),
                generation_settings(&config),
                events.clone(),
                &config.scheduler.generation_cron,
                config.scheduler.run_at_start,
            )
            .await
            .context("cannot start the scheduler")?,
        )
    } else {
        None
    };
    let reminders = config.scheduler.enabled.then(|| {
        crate::scheduler::start_reminders(
            pool.clone(),
            crate::delivery::reminders::ReminderSettings::from_config(&config),
            std::time::Duration::from_secs(
                u64::from(config.delivery.reminder_interval_minutes) * 60,
            ),
            waker.clone(),
            config.scheduler.run_at_start,
        )
    });
    // The firm's day: the staff's daily digest, with the scheduler and email delivery.
    let digests = if config.scheduler.enabled && config.delivery.enabled {
        let mailer = crate::delivery::email::Mailer::from_config(&config.smtp)
            .context("cannot set up email for the daily digest")?;
        Some(crate::scheduler::start_digests(
            pool.clone(),
            mailer,
            crate::delivery::digest::DigestSettings::from_config(&config),
            std::time::Duration::from_secs(
                u64::from(config.delivery.digest_interval_minutes.max(1)) * 60,
            ),
            // The first pass after one interval: start-up already runs generation and
            // reminders, and a digest is due only once a day.
            false,
        ))
    } else {
        None
    };
    let worker = if config.delivery.enabled {
        Some(
            crate::delivery::Worker::from_config(pool.clone(), &config, waker.clone())
                .context("cannot start the delivery worker")?
                .spawn(Some(&events)),
        )
    } else {
        None
    };
    // Objects of the store that no row names (a crash between writing and recording a file).
    let file_sweeps = match (&state.web.storage, config.scheduler.enabled) {
        (Some(storage), true) => Some(crate::scheduler::start_file_sweeps(
            pool.clone(),
            generation_settings(&config),
            storage.clone(),
            chrono::Duration::hours(i64::from(config.storage.sweep_after_hours)),
            config.scheduler.run_at_start,
        )),
        _ => None,
    };
    // Replies by email (issue 15): the SMTP listener and the IMAP fetcher, when configured.
    let inbound = crate::inbound::start(
        &config,
        pool.clone(),
        state.web.storage.clone(),
        generation_settings(&config),
        events.clone(),
    )
    .await?;
    let operations = watch_operations(&config, scheduler.as_ref(), &reminders, &worker).await?;
    let metrics_listener = match config.metrics.listen.parse() {
        Ok(address) if config.metrics.enabled => Some(
            crate::http::spawn_metrics_listener(address, pool.clone(), operations.clone())
                .await
                .with_context(|| format!("cannot listen on {}", config.metrics.listen))?,
        ),
        _ => None,
    };
    // Printed on stdout (not only logged) so scripts and tests can find the port.
    println!("Rappel listening on http://{}/graphql", reachable(address));
    let app = router(state, config.graphql.max_body_bytes)
        .layer(axum::Extension(operations))
        .layer(axum::Extension(crate::http::WsInitTimeout(
            std::time::Duration::from_secs(config.http.ws_init_timeout_seconds),
        )));
    crate::listener::serve(listener, app, &config.http, shutdown_signal()).await;
    if let Some(scheduler) = scheduler.as_mut() {
        let _ = scheduler.shutdown().await;
    }
    if let Some(digests) = digests {
        digests.abort();
    }
    if let Some(file_sweeps) = file_sweeps {
        file_sweeps.abort();
    }
    if let Some(reminders) = reminders {
        reminders.abort();
    }
    if let Some(metrics_listener) = metrics_listener {
        metrics_listener.abort();
    }
    for task in inbound {
        task.abort();
    }
    if let Some(worker) = worker {
        worker.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// What `/readyz` watches in this process, and who may read `/metrics`.
async fn watch_operations(
    config: &Config,
    scheduler: Option<&tokio_cron_scheduler::JobScheduler>,
    reminders: &Option<tokio::task::JoinHandle<()>>,
    worker: &Option<crate::delivery::WorkerHandle>,
) -> anyhow::Result<crate::health::Operations> {
    let mut operations = crate::health::Operations::from_config(config);
    if let Some(scheduler) = scheduler {
        operations
            .watch_scheduler(scheduler)
            .await
            .context("cannot start the scheduler's heartbeat")?;
    }
    if let Some(reminders) = reminders {
        operations.watch_task("reminders", reminders.abort_handle());
    }
    if let Some(worker) = worker {
        operations.watch_task("delivery_worker", worker.abort_handle());
    }
    Ok(operations)
}

/// The listening address as a browser on this machine reaches it (0.0.0.0 -> 127.0.0.1).
fn reachable(address: std::net::SocketAddr) -> std::net::SocketAddr {
    let ip = match address.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    std::net::SocketAddr::new(ip, address.port())
}

/// The demo's accounts and tokens, and GraphiQL at the address really listened on (which
/// `public_base_url` need not be: it is where emailed links point).
fn print_demo(config: &Config, address: std::net::SocketAddr, demo: &crate::setup::DemoInfo) {
    println!(
        "The database {} held no firm: demo data seeded into it (turn off with demo = false / RAPPEL_DEMO=false):",
        redact(&config.database.url)
    );
    println!(
        "  firm admin:  {} / password {}",
        demo.admin_email, demo.admin_password
    );
    println!("  staff token (firm view):   {}", demo.admin_token);
    println!(
        "  contact {} token (client view): {}",
        demo.contact_email, demo.contact_token
    );
    println!(
        "  GraphiQL: http://{}/graphql  (the staff token is prefilled in its Headers tab)",
        reachable(address)
    );
    println!("  The demo mission's first request is created on 2027-01-20; try it now with");
    println!("  `cargo run -- generate --as-of 2027-01-20`.");
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
