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
    }
}

/// `rappel serve`: migrate, then answer HTTP until told to stop.
pub async fn serve(config: Config) -> anyhow::Result<()> {
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
        graphiql: config.graphql.graphiql,
        max_batch: config.graphql.max_batch,
    };
    if config.demo {
        if let Some(demo) = crate::setup::seed_demo_if_empty(&pool, &config, Some(&events)).await? {
            print_demo(&config, &demo);
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
    let worker = if config.delivery.enabled {
        Some(
            crate::delivery::Worker::from_config(pool.clone(), &config, waker.clone())
                .context("cannot start the delivery worker")?
                .spawn(Some(&events)),
        )
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.listen_addr()?)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    // Printed on stdout (not only logged) so scripts and tests can find the port.
    println!("Rappel listening on http://{address}/graphql");
    axum::serve(listener, router(state, config.graphql.max_body_bytes))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server failed")?;
    if let Some(scheduler) = scheduler.as_mut() {
        let _ = scheduler.shutdown().await;
    }
    if let Some(reminders) = reminders {
        reminders.abort();
    }
    if let Some(worker) = worker {
        worker.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

fn print_demo(config: &Config, demo: &crate::setup::DemoInfo) {
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
        "  GraphiQL: {}/graphql  (add the header {{\"Authorization\": \"Bearer <token>\"}})",
        config.public_base_url
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
