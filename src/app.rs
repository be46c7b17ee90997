//! Wiring of the long-running server: open the database, migrate, build the schema, listen,
//! and stop cleanly on SIGTERM or Ctrl-C. The CLI calls into here; tests start the binary.

use anyhow::Context as _;

use crate::config::Config;
use crate::db::Pool;
use crate::graphql::build_schema;
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

/// `rappel serve`: migrate, then answer HTTP until told to stop.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let pool = open_and_migrate(&config).await?;
    let schema = build_schema(Some(pool.clone()), &config.graphql);
    let state = AppState {
        schema,
        pool,
        graphiql: config.graphql.graphiql,
        max_batch: config.graphql.max_batch,
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
    tracing::info!("stopped");
    Ok(())
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
