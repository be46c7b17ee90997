//! Bootstrapping: `rappel firm create` (a firm and its first admin), and the demo data seeded
//! on the first start against an empty database when `demo = true`. Both are doors over the
//! operations (`crate::ops`), acting as the system: the demo obeys every rule a firm does.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{NaiveDate, Utc};

use crate::config::Config;
use crate::db::{Pool, firms};
use crate::domain::schedule::Frequency;
use crate::domain::{DeliverableType, ItemKind, Language};
use crate::events::EventBus;
use crate::generation::GenerationSettings;
use crate::ops::catalog::{ServiceInput, ServiceItemInput};
use crate::ops::clients::{ClientInput, ContactInput};
use crate::ops::missions::{MissionInput, MissionLineInput};
use crate::ops::staff::FirmInput;
use crate::ops::{self, Actor, Env, OpError};

pub use crate::ops::staff::CreatedFirm;

/// Creates a firm and its first admin (`rappel firm create`), through the operation every
/// door shares; a refusal is an error with the operation's message.
pub async fn create_firm(
    pool: &Pool,
    name: &str,
    admin_email: &str,
    admin_password: Option<&str>,
    time_zone: &str,
    locale: &str,
) -> anyhow::Result<CreatedFirm> {
    let settings = GenerationSettings::default();
    ops::staff::create_firm(
        Env::new(pool, &settings),
        &FirmInput {
            name,
            admin_email,
            admin_password,
            time_zone,
            locale,
        },
    )
    .await
    .map_err(operator_error)
}

/// `rappel import clients FILE --firm ID`: imports clients and contacts from CSV text into a
/// firm, as the system (see `ops::import`); all lines or none.
pub async fn import_clients(
    pool: &Pool,
    firm_id: i64,
    csv_text: &str,
    dry_run: bool,
) -> anyhow::Result<ops::import::ImportReport> {
    let settings = GenerationSettings::default();
    ops::import::import_clients(
        Env::new(pool, &settings),
        &ops::Actor::System { firm_id },
        csv_text,
        dry_run,
    )
    .await
    .map_err(operator_error)
}

/// An operation's refusal as the operator reads it (an internal error keeps its detail: the
/// operator runs the server).
fn operator_error(error: OpError) -> anyhow::Error {
    match error {
        OpError::Internal(detail) => anyhow::anyhow!(detail),
        other => anyhow::anyhow!(other.message()),
    }
}

/// What the demo seed prints for a new user.
pub struct DemoInfo {
    pub admin_email: String,
    pub admin_password: String,
    pub admin_token: String,
    pub contact_email: String,
    pub contact_token: String,
}

/// The marker file kept beside a SQLite database once it holds data: `rappel.db.had-data`
/// for `rappel.db`. It lives outside the database so that it survives the file's loss.
pub fn had_data_marker(database_path: &Path) -> PathBuf {
    let mut name = database_path
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push(".had-data");
    database_path.with_file_name(name)
}

/// Records, beside a SQLite database that holds firms, that it did: a later start that finds
/// the file empty then knows data was lost and does not seed a demo over the loss.
pub async fn note_database_has_data(pool: &Pool) -> anyhow::Result<()> {
    let Some(path) = pool.sqlite_path() else {
        return Ok(());
    };
    let marker = had_data_marker(path);
    if marker.exists() {
        return Ok(());
    }
    let mut conn = pool.get().await?;
    if firms::count_firms(&mut conn.as_db()).await? > 0 {
        std::fs::write(
            &marker,
            format!(
                "Rappel: the database {} held data on {}. If the database file is lost, \
                 Rappel will not seed demo data over it; delete this file to start afresh.\n",
                path.display(),
                Utc::now().to_rfc3339()
            ),
        )
        .with_context(|| format!("cannot write {}", marker.display()))?;
    }
    Ok(())
}

/// Seeds the demo firm when the database holds no firm yet; returns what to print. Refuses
/// (an error) when the database is empty but a SQLite marker shows it held data before: the
/// file was lost or replaced, and a fresh demo firm with a new admin password would hide it.
pub async fn seed_demo_if_empty(
    pool: &Pool,
    config: &Config,
    events: Option<&EventBus>,
) -> anyhow::Result<Option<DemoInfo>> {
    {
        let mut conn = pool.get().await?;
        if firms::count_firms(&mut conn.as_db()).await? > 0 {
            drop(conn);
            note_database_has_data(pool).await?;
            return Ok(None);
        }
    }
    if let Some(path) = pool.sqlite_path() {
        let marker = had_data_marker(path);
        if marker.exists() {
            bail!(
                "the database {} is empty but held data before ({} says so): the file was \
                 deleted or replaced. Restore it from a backup; to start afresh on purpose, \
                 delete {} (demo data is not seeded over lost data)",
                path.display(),
                marker.display(),
                marker.display()
            );
        }
    }
    tracing::warn!(
        backend = pool.backend_name(),
        "the database holds no firm: seeding the demo firm"
    );
    // Through the operations, like a firm's own staff: every rule applies to the demo too.
    let created = create_firm(
        pool,
        "Cabinet Démo",
        "admin@cabinet-demo.fr",
        None,
        "Europe/Paris",
        "fr",
    )
    .await?;
    let settings = crate::app::generation_settings(config);
    let env = Env {
        pool,
        generation: &settings,
        events,
        storage: None,
    };
    let system = Actor::System {
        firm_id: created.firm.id,
    };
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).context("demo date");
    let (start, first_due, end) = (date(2027, 1, 1)?, date(2027, 1, 30)?, date(2027, 12, 31)?);
    let category = ops::catalog::create_category(env, &system, "Fiscal")
        .await
        .map_err(operator_error)?;
    let service = ops::catalog::create_service(
        env,
        &system,
        &ServiceInput {
            category_id: Some(category.id),
            title: "Rappel TVA".into(),
            deliverable_type: DeliverableType::Documents,
            lead_days: 10,
            items: vec![
                ServiceItemInput {
                    id: None,
                    kind: ItemKind::InformationRequest,
                    title: "Merci de déposer vos éléments du mois sur le portail du cabinet".into(),
                },
                ServiceItemInput {
                    id: None,
                    kind: ItemKind::Task,
                    title: "Préparer la déclaration de TVA".into(),
                },
            ],
            reminder_policy: None,
        },
    )
    .await
    .map_err(operator_error)?;
    let client = ops::clients::create_client(
        env,
        &system,
        &ClientInput {
            name: "Boulangerie Martin".into(),
            reference: Some("BM-001".into()),
        },
    )
    .await
    .map_err(operator_error)?;
    let contact = ops::clients::add_contact(
        env,
        &system,
        client.id,
        &ContactInput {
            name: "Marie Martin".into(),
            email: "marie.martin@example.fr".into(),
            language: Some(Language::French),
            notifications_enabled: true,
        },
    )
    .await
    .map_err(operator_error)?;
    let mission = ops::missions::create_mission(
        env,
        &system,
        &MissionInput {
            client_id: client.id,
            name: "TVA mensuelle 2027".into(),
            start_date: start,
            end_date: Some(end),
            lines: vec![MissionLineInput {
                service_id: service.id,
                frequency: Frequency::Monthly,
                first_due_date: Some(first_due),
                quantity: None,
                rrule: None,
                working_day_adjustment: None,
            }],
        },
    )
    .await
    .map_err(operator_error)?;
    // Signed like any mission: whatever is already due to be created is created now.
    ops::missions::sign_mission(env, &system, mission.id)
        .await
        .map_err(operator_error)?;
    let admin_session =
        ops::access::open_staff_session(env, &system, created.admin.id, config.auth.session_hours)
            .await
            .map_err(operator_error)?;
    let contact_session = ops::access::create_contact_access_token(
        env,
        &system,
        contact.id,
        config.auth.contact_token_days,
    )
    .await
    .map_err(operator_error)?;
    note_database_has_data(pool).await?;
    Ok(Some(DemoInfo {
        admin_email: created.admin.email,
        admin_password: created.password,
        admin_token: admin_session.token,
        contact_email: contact.email,
        contact_token: contact_session.token,
    }))
}
