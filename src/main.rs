//! The `rappel` command line: parse, load the configuration, call into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use clap::{Parser, Subcommand};
use rappel::config::{Config, DEFAULT_CONFIG_PATH, LogConfig};

/// `rappel --version`: the crate's version and the git commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("RAPPEL_GIT_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "rappel",
    version = VERSION,
    about = "Reminder engine for accounting firms"
)]
struct Cli {
    /// Settings file to read instead of config/default.toml.
    #[arg(long, global = true, value_name = "FILE", env = "RAPPEL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the API (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    ExportSchema,
    /// Run one generation pass and print what it created.
    Generate {
        /// Generate as if every firm's local date were this one (YYYY-MM-DD); default: today.
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
        as_of: Option<NaiveDate>,
    },
    /// Manage firms.
    Firm {
        #[command(subcommand)]
        command: FirmCommand,
    },
    /// Export data as files.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Import data into a firm.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Inspect the settings.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Clean up the document store.
    Sweep {
        #[command(subcommand)]
        command: SweepCommand,
    },
    /// Copy a live SQLite database to FILE, consistently, while the server keeps serving
    /// (PostgreSQL: use pg_dump).
    Backup {
        /// The copy to write; must not exist yet.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Print a firm's activity journal as CSV (RFC 4180), oldest first.
    History {
        /// The firm's id.
        #[arg(long)]
        firm: i64,
        /// First day exported (the firm's local midnight), YYYY-MM-DD.
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
        since: NaiveDate,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import clients and contacts from a CSV file (header: client, reference, contact_name,
    /// contact_email, language); all lines or none.
    Clients {
        /// The CSV file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The firm's id.
        #[arg(long)]
        firm: i64,
        /// Check and report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Delete the stored objects (under staging/ and inbound/) that no answer file or held
    /// reply names and that are older than `[storage] sweep_after_hours`; the scheduler runs
    /// this daily.
    Files {
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check the settings and print each one (secrets masked) with where it came from.
    Check,
}

#[derive(Subcommand)]
enum FirmCommand {
    /// Create a firm and its first admin.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        /// At least 12 characters; a password is generated and printed when left out.
        #[arg(long)]
        admin_password: Option<String>,
        /// IANA time zone of the firm: its "today" for generation.
        #[arg(long, default_value = "Europe/Paris")]
        time_zone: String,
        /// Language of the firm's emails: fr or en.
        #[arg(long, default_value = "fr")]
        locale: String,
    },
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    rappel::domain::validation::parse_calendar_date(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rappel: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, as text or as one JSON object per line; colours only on a terminal
/// (or when asked). `RUST_LOG` overrides the levels.
fn init_logging(log: &LogConfig) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if log.format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        let color = match log.color.as_str() {
            "always" => true,
            "never" => false,
            _ => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        };
        builder.with_ansi(color).try_init()
    };
    if let Err(error) = result {
        eprintln!("rappel: cannot set up logging: {error}");
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::ExportSchema = command {
        print!("{}", rappel::graphql::schema_sdl());
        return Ok(());
    }
    let (path, required) = match cli.config {
        Some(path) => (path, true),
        None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
    };
    let (config, report) = match Config::load_reporting(&path, required) {
        Ok(loaded) => loaded,
        Err(error) => {
            init_logging(&LogConfig::default());
            return Err(error.into());
        }
    };
    init_logging(&config.log);
    for variable in &report.ignored_variables {
        tracing::warn!(
            variable = %variable,
            "ignoring an environment variable that names no Rappel setting"
        );
    }
    if let Command::Config {
        command: ConfigCommand::Check,
    } = command
    {
        println!("settings are valid (file: {})", path.display());
        for (setting, value, source) in config.describe(&report) {
            println!("{setting} = {value}    # {source}");
        }
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match command {
            Command::Serve => rappel::app::serve(config).await,
            Command::Migrate => {
                rappel::app::open_and_migrate(&config).await?;
                println!("migrations applied");
                Ok(())
            }
            Command::ExportSchema | Command::Config { .. } => Ok(()),
            Command::Backup { file } => {
                // Opening a missing SQLite file would create an empty database to copy.
                if let Ok(rappel::db::DatabaseUrl::Sqlite(path)) =
                    rappel::db::DatabaseUrl::parse(&config.database.url)
                {
                    anyhow::ensure!(path.exists(), "no database at {}", path.display());
                }
                let pool = rappel::app::open_database(&config).await?;
                pool.backup_sqlite(&file).await?;
                println!("backup written to {}", file.display());
                Ok(())
            }
            Command::Export {
                command: ExportCommand::History { firm, since },
            } => {
                let pool = rappel::app::open_and_migrate(&config).await?;
                let settings = rappel::app::generation_settings(&config);
                let env = rappel::ops::Env::new(&pool, &settings);
                let actor = rappel::ops::Actor::System { firm_id: firm };
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                let written = rappel::ops::journal::export_csv(env, &actor, since, &mut out)
                    .await
                    .map_err(|error| anyhow::anyhow!(error.message()))?;
                std::io::Write::flush(&mut out)?;
                eprintln!("{written} journal entries exported");
                Ok(())
            }
            Command::Sweep {
                command: SweepCommand::Files { dry_run },
            } => {
                let pool = rappel::app::open_and_migrate(&config).await?;
                let storage = rappel::storage::Storage::from_config(&config.storage)
                    .context("cannot open the document store ([storage])")?;
                let settings = rappel::app::generation_settings(&config);
                let env = rappel::ops::Env::new(&pool, &settings).with_storage(&storage);
                let min_age = chrono::Duration::hours(i64::from(config.storage.sweep_after_hours));
                let report = rappel::ops::sweep::sweep_files(env, Utc::now(), min_age, dry_run)
                    .await
                    .map_err(|error| anyhow::anyhow!(error.message()))?;
                for key in &report.sample {
                    println!("  {key}");
                }
                if report.orphans > report.sample.len() {
                    println!("  ... and {} more", report.orphans - report.sample.len());
                }
                println!(
                    "file sweep{} of {}: {} object(s) examined, {} named by no answer or held \
                     reply and older than {} h ({} bytes), {} deleted, {} failed",
                    if dry_run { " (dry run)" } else { "" },
                    storage.location,
                    report.examined,
                    report.orphans,
                    config.storage.sweep_after_hours,
                    report.orphan_bytes,
                    report.deleted,
                    report.failed,
                );
                anyhow::ensure!(
                    report.failed == 0,
                    "{} object(s) could not be deleted (see the log)",
                    report.failed
                );
                Ok(())
            }
            Command::Generate { as_of } => {
                let pool = rappel::app::open_and_migrate(&config).await?;
                let settings = rappel::app::generation_settings(&config);
                let report =
                    rappel::generation::run_pass(&pool, &settings, Utc::now(), as_of, None).await?;
                println!(
                    "generation{}: {} firm(s), {} line(s) examined, {} task(s) and {} request(s) \
                     created, {} deliveries enqueued",
                    as_of
                        .map(|date| format!(" as of {date}"))
                        .unwrap_or_default(),
                    report.firms,
                    report.lines_examined,
                    report.tasks_created,
                    report.requests_created,
                    report.deliveries_enqueued,
                );
                for request in &report.sample {
                    println!(
                        "  request {} (firm {}, client {}): due {}, created on {}: {}",
                        request.id,
                        request.firm_id,
                        request.client_id,
                        request.due_date,
                        request.created_on,
                        request.text
                    );
                }
                if report.requests_created > report.sample.len() {
                    println!(
                        "  ... and {} more",
                        report.requests_created - report.sample.len()
                    );
                }
                if report.lines_in_error > 0 {
                    anyhow::bail!(
                        "{} line(s) could not be generated (see the log)",
                        report.lines_in_error
                    );
                }
                Ok(())
            }
            Command::Import {
                command:
                    ImportCommand::Clients {
                        file,
                        firm,
                        dry_run,
                    },
            } => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", file.display()))?;
                let pool = rappel::app::open_and_migrate(&config).await?;
                let report = rappel::setup::import_clients(&pool, firm, &text, dry_run).await?;
                for error in &report.errors {
                    println!(
                        "line {}{}: {}",
                        error.line,
                        error
                            .field
                            .as_deref()
                            .map(|field| format!(" ({field})"))
                            .unwrap_or_default(),
                        error.message
                    );
                }
                let verb = if report.applied {
                    "imported"
                } else {
                    "would import"
                };
                println!(
                    "{verb}: {} client(s), {} contact(s); {} line(s) unchanged",
                    report.clients_created, report.contacts_created, report.lines_unchanged
                );
                anyhow::ensure!(
                    report.errors.is_empty(),
                    "{} line(s) refused: nothing was imported",
                    report.errors.len()
                );
                Ok(())
            }
            Command::Firm {
                command:
                    FirmCommand::Create {
                        name,
                        admin_email,
                        admin_password,
                        time_zone,
                        locale,
                    },
            } => {
                let pool = rappel::app::open_and_migrate(&config).await?;
                let created = rappel::setup::create_firm(
                    &pool,
                    &name,
                    &admin_email,
                    admin_password.as_deref(),
                    &time_zone,
                    &locale,
                )
                .await?;
                println!(
                    "firm {} created (id {}), admin {}",
                    created.firm.name, created.firm.id, created.admin.email
                );
                if created.password_was_generated {
                    println!("admin password (shown once): {}", created.password);
                }
                Ok(())
            }
        }
    })
}
