//! Bootstrapping: `rappel firm create` (a firm and its first admin), and the demo data seeded
//! on the first start against an empty database when `demo = true`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{Duration, NaiveDate, Utc};

use crate::auth::{generate_password, hash_password, new_token, token_hash};
use crate::config::Config;
use crate::db::catalog::{NewServiceItem, ServiceFields};
use crate::db::clients::{NewClient, NewContact};
use crate::db::firms::{Firm, NewFirm, NewUser, User};
use crate::db::missions::{NewMission, NewMissionLine};
use crate::db::tokens::NewAccessToken;
use crate::db::{Pool, catalog, clients, firms, missions, tokens};
use crate::domain::calendar::parse_time_zone;
use crate::domain::schedule::{Frequency, WorkingDayAdjustment};
use crate::domain::validation::{check_email, check_name};
use crate::domain::{DeliverableType, ItemKind, MissionStatus, Role, TokenKind};
use crate::events::EventBus;
use crate::generation::{firm_today, generate_for_firm};

/// A firm just created, with its admin and the admin's password (generated when none given).
pub struct CreatedFirm {
    pub firm: Firm,
    pub admin: User,
    pub password: String,
    pub password_was_generated: bool,
}

/// Creates a firm and its first admin.
pub async fn create_firm(
    pool: &Pool,
    name: &str,
    admin_email: &str,
    admin_password: Option<&str>,
    time_zone: &str,
    locale: &str,
) -> anyhow::Result<CreatedFirm> {
    let name = check_name("name", name).map_err(|invalid| anyhow::anyhow!(invalid.message))?;
    let email = check_email("admin-email", admin_email)
        .map_err(|invalid| anyhow::anyhow!(invalid.message))?;
    if parse_time_zone(time_zone).is_none() {
        bail!("{time_zone:?} is not an IANA time zone such as Europe/Paris");
    }
    if !matches!(locale, "fr" | "en") {
        bail!("{locale:?} is not a supported locale (fr or en)");
    }
    let (password, password_was_generated) = match admin_password {
        Some(password) if password.chars().count() >= 12 => (password.to_string(), false),
        Some(_) => bail!("the admin password must be at least 12 characters long"),
        None => (generate_password(), true),
    };
    let password_hash = hash_password(&password).map_err(|error| anyhow::anyhow!(error))?;
    let now = Utc::now().naive_utc();
    let mut conn = pool.get().await?;
    let (firm, admin) = crate::transaction!(conn, |tx| {
        let firm = firms::insert_firm(
            &mut tx,
            &NewFirm {
                name: &name,
                time_zone,
                locale,
                created_at: now,
            },
        )
        .await?;
        let admin = firms::insert_user(
            &mut tx,
            &NewUser {
                firm_id: firm.id,
                email: &email,
                name: "Admin",
                password_hash: &password_hash,
                role: Role::Admin,
                created_at: now,
            },
        )
        .await?;
        Ok::<_, crate::db::DbError>((firm, admin))
    })
    .with_context(|| format!("cannot create the firm (is {email} already a user?)"))?;
    Ok(CreatedFirm {
        firm,
        admin,
        password,
        password_was_generated,
    })
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
    let created = create_firm(
        pool,
        "Cabinet Démo",
        "admin@cabinet-demo.fr",
        None,
        "Europe/Paris",
        "fr",
    )
    .await?;
    let firm_id = created.firm.id;
    let now = Utc::now();
    let naive_now = now.naive_utc();
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).context("demo date");
    let (start, first_due, end) = (date(2027, 1, 1)?, date(2027, 1, 30)?, date(2027, 12, 31)?);
    let admin_token = new_token();
    let contact_token = new_token();
    let mut conn = pool.get().await?;
    let contact_email = crate::transaction!(conn, |tx| {
        let category = catalog::insert_category(&mut tx, firm_id, "Fiscal", naive_now).await?;
        let service = catalog::insert_service(
            &mut tx,
            firm_id,
            &ServiceFields {
                category_id: Some(category.id),
                title: "Rappel TVA".into(),
                deliverable_type: DeliverableType::Documents,
                lead_days: 10,
                reminder_days_before: None,
                reminder_on_due_date: None,
                reminder_every_days: None,
                reminder_max_count: None,
            },
            naive_now,
        )
        .await?;
        let items = [
            (
                ItemKind::InformationRequest,
                "Merci de déposer vos éléments du mois sur le portail du cabinet",
            ),
            (ItemKind::Task, "Préparer la déclaration de TVA"),
        ];
        let rows: Vec<NewServiceItem> = items
            .iter()
            .enumerate()
            .map(|(position, (kind, text))| NewServiceItem {
                firm_id,
                service_id: service.id,
                kind: *kind,
                text: (*text).to_string(),
                position: i32::try_from(position).unwrap_or(0),
                created_at: naive_now,
            })
            .collect();
        catalog::insert_items(&mut tx, &rows).await?;
        let client = clients::insert_client(
            &mut tx,
            &NewClient {
                firm_id,
                name: "Boulangerie Martin",
                reference: Some("BM-001"),
                created_at: naive_now,
            },
        )
        .await?;
        let contact = clients::insert_contact(
            &mut tx,
            &NewContact {
                firm_id,
                client_id: client.id,
                name: "Marie Martin",
                email: "marie.martin@example.fr",
                language: Some("fr"),
                notifications_enabled: true,
                created_at: naive_now,
            },
        )
        .await?;
        let mission = missions::insert_mission(
            &mut tx,
            &NewMission {
                firm_id,
                client_id: client.id,
                name: "TVA mensuelle 2027",
                start_date: start,
                end_date: Some(end),
                status: MissionStatus::Draft,
                created_at: naive_now,
            },
        )
        .await?;
        missions::insert_lines(
            &mut tx,
            &[NewMissionLine {
                firm_id,
                mission_id: mission.id,
                service_id: service.id,
                frequency: Frequency::Monthly,
                first_due_date: first_due,
                quantity: 1,
                rrule: None,
                working_day_adjustment: WorkingDayAdjustment::None,
                created_at: naive_now,
            }],
        )
        .await?;
        missions::transition(
            &mut tx,
            firm_id,
            mission.id,
            &[MissionStatus::Draft],
            MissionStatus::Signed,
            naive_now,
            None,
        )
        .await?;
        for (hash, kind, user_id, contact_id, lifetime) in [
            (
                token_hash(&admin_token),
                TokenKind::StaffSession,
                Some(created.admin.id),
                None,
                Duration::hours(i64::from(config.auth.session_hours)),
            ),
            (
                token_hash(&contact_token),
                TokenKind::Contact,
                None,
                Some(contact.id),
                Duration::days(i64::from(config.auth.contact_token_days)),
            ),
        ] {
            tokens::insert(
                &mut tx,
                &NewAccessToken {
                    firm_id,
                    token_hash: &hash,
                    kind,
                    user_id,
                    contact_id,
                    expires_at: Some(naive_now + lifetime),
                    created_at: naive_now,
                },
            )
            .await?;
        }
        Ok::<_, crate::db::DbError>(contact.email)
    })?;
    drop(conn);
    // Signed like any mission: whatever is already due to be created is created now.
    let settings = crate::app::generation_settings(config);
    let today = firm_today(&created.firm, now);
    generate_for_firm(pool, &settings, &created.firm, today, now, None, events).await?;
    note_database_has_data(pool).await?;
    Ok(Some(DemoInfo {
        admin_email: created.admin.email,
        admin_password: created.password,
        admin_token,
        contact_email,
        contact_token,
    }))
}
