//! Importing clients and their contacts from CSV text (the `rappel import clients` CLI and the
//! `importClients` mutation both call [`import_clients`]). A header row names the columns
//! `client`, `reference`, `contact_name`, `contact_email`, `language` (any order; only
//! `client` is required); each following line is one client, or one more contact of a client
//! named on an earlier line or already in the firm (matched by exact name). Every line is
//! checked with the same rules as `createClient` and `addContact`; one refused line refuses
//! the whole import (each refused line is reported with its number) and nothing changes. A
//! dry run reports what would be created and writes nothing.
//!
//! Never here: a rule of its own about names or emails (those are the client operations'), or
//! SQL (that is `crate::db`).

use std::collections::{HashMap, HashSet};

use chrono::Utc;

use super::clients::{ContactInput, optional_name, validate_contact_input};
use super::journal::{self, Entry};
use super::{Actor, Env, OpError, found};
use crate::db::clients::{self, NewClient, NewContact};
use crate::db::firms;
use crate::db::page::Keyset;
use crate::domain::Language;
use crate::domain::validation::check_name;
use crate::transaction;

/// Most lines one import takes.
pub const MAX_IMPORT_LINES: usize = 10_000;

/// Why one line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The line's number in the file (the header is line 1).
    pub line: usize,
    /// The column refused, when one is.
    pub field: Option<String>,
    pub message: String,
}

/// What an import did or, in a dry run or when refused, would have done.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub dry_run: bool,
    /// True when the changes were written.
    pub applied: bool,
    /// Clients created (or that would be).
    pub clients_created: usize,
    /// Contacts added (or that would be).
    pub contacts_created: usize,
    /// Lines naming a contact the client already has (by email): left as they are.
    pub lines_unchanged: usize,
    pub errors: Vec<LineError>,
}

/// One client to create or complete, and its new contacts.
struct PlannedClient {
    existing_id: Option<i64>,
    name: String,
    reference: Option<String>,
    contacts: Vec<(String, String, Option<&'static str>)>,
}

fn line_error(line: usize, error: OpError) -> LineError {
    LineError {
        line,
        field: match &error {
            OpError::BadUserInput { field, .. } => field.clone(),
            _ => None,
        },
        message: error.message(),
    }
}

/// Imports clients and contacts from `csv_text` into the actor's firm (an admin's or the
/// system's right): all lines or none.
pub async fn import_clients(
    env: Env<'_>,
    actor: &Actor,
    csv_text: &str,
    dry_run: bool,
) -> Result<ImportReport, OpError> {
    let firm_id = actor.admin()?.firm_id;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(csv_text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|error| OpError::bad_input("csv", format!("unreadable header row: {error}")))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|header| header.eq_ignore_ascii_case(name))
    };
    let Some(client_column) = column("client") else {
        return Err(OpError::bad_input(
            "csv",
            "the header row has no `client` column (expected client, reference, contact_name, contact_email, language)",
        ));
    };
    let (reference_column, name_column, email_column, language_column) = (
        column("reference"),
        column("contact_name"),
        column("contact_email"),
        column("language"),
    );

    let mut conn = env.pool.get().await?;
    found(firms::find_firm(&mut conn.as_db(), firm_id).await, "firm")?;
    let existing: HashMap<String, i64> = {
        let mut db = conn.as_db();
        let mut all = Vec::new();
        let mut page = Keyset::first(1_000);
        loop {
            let rows = clients::list_clients(&mut db, firm_id, true, None, &page).await?;
            let Some(last) = rows.last() else { break };
            page.after = Some((last.name.clone(), last.id));
            let full = rows.len() < 1_000;
            all.extend(rows);
            if full {
                break;
            }
        }
        all.into_iter()
            .map(|client| (client.name, client.id))
            .collect()
    };
    let existing_emails: HashSet<(i64, String)> = {
        let ids: Vec<i64> = existing.values().copied().collect();
        let mut emails = HashSet::new();
        for chunk in ids.chunks(500) {
            for contact in
                clients::contacts_of_clients(&mut conn.as_db(), firm_id, chunk, true).await?
            {
                emails.insert((contact.client_id, contact.email.to_lowercase()));
            }
        }
        emails
    };

    let mut report = ImportReport {
        dry_run,
        ..ImportReport::default()
    };
    let mut planned: Vec<PlannedClient> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut new_emails: HashSet<(String, String)> = HashSet::new();
    for (position, record) in reader.records().enumerate() {
        let line = position + 2;
        if position >= MAX_IMPORT_LINES {
            return Err(OpError::bad_input(
                "csv",
                format!("at most {MAX_IMPORT_LINES} lines in one import"),
            ));
        }
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                report.errors.push(LineError {
                    line,
                    field: None,
                    message: format!("unreadable line: {error}"),
                });
                continue;
            }
        };
        let cell = |index: Option<usize>| {
            index
                .and_then(|index| record.get(index))
                .filter(|text| !text.is_empty())
        };
        let name = match check_name("client", cell(Some(client_column)).unwrap_or_default()) {
            Ok(name) => name,
            Err(error) => {
                report.errors.push(line_error(line, error.into()));
                continue;
            }
        };
        let reference = match optional_name("reference", cell(reference_column)) {
            Ok(reference) => reference,
            Err(error) => {
                report.errors.push(line_error(line, error));
                continue;
            }
        };
        let contact = match (cell(name_column), cell(email_column)) {
            (None, None) => None,
            (contact_name, email) => {
                let language = match cell(language_column) {
                    None => None,
                    Some(code) => match code.parse::<Language>() {
                        Ok(language) => Some(language),
                        Err(_) => {
                            report.errors.push(LineError {
                                line,
                                field: Some("language".into()),
                                message: format!("{code:?} is not a language (fr or en)"),
                            });
                            continue;
                        }
                    },
                };
                let input = ContactInput {
                    name: contact_name.unwrap_or_default().to_string(),
                    email: email.unwrap_or_default().to_string(),
                    language,
                    notifications_enabled: true,
                };
                match validate_contact_input(&input) {
                    Ok((name, email, language)) => Some((name, email, language)),
                    Err(error) => {
                        let mut error = line_error(line, error);
                        error.field = error.field.map(|field| format!("contact_{field}"));
                        report.errors.push(error);
                        continue;
                    }
                }
            }
        };
        let index = *by_name.entry(name.clone()).or_insert_with(|| {
            planned.push(PlannedClient {
                existing_id: existing.get(&name).copied(),
                name: name.clone(),
                reference: reference.clone(),
                contacts: Vec::new(),
            });
            planned.len() - 1
        });
        if let Some((contact_name, email, language)) = contact {
            let client = &mut planned[index];
            let lowered = email.to_lowercase();
            let known = client
                .existing_id
                .is_some_and(|id| existing_emails.contains(&(id, lowered.clone())));
            if known {
                report.lines_unchanged += 1;
            } else if !new_emails.insert((name.clone(), lowered)) {
                report.errors.push(LineError {
                    line,
                    field: Some("contact_email".into()),
                    message: format!("{email} appears twice for the client {name:?}"),
                });
            } else {
                client.contacts.push((contact_name, email, language));
            }
        } else if planned[index].existing_id.is_some() {
            report.lines_unchanged += 1;
        }
    }
    report.clients_created = planned
        .iter()
        .filter(|client| client.existing_id.is_none())
        .count();
    report.contacts_created = planned.iter().map(|client| client.contacts.len()).sum();
    if !report.errors.is_empty() || dry_run {
        return Ok(report);
    }
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let mut entries = Vec::new();
        for client in &planned {
            let client_id = match client.existing_id {
                Some(id) => id,
                None => {
                    let row = clients::insert_client(
                        &mut tx,
                        &NewClient {
                            firm_id,
                            name: &client.name,
                            reference: client.reference.as_deref(),
                            created_at: now,
                        },
                    )
                    .await?;
                    entries.push(
                        Entry::new("client.imported", "client", row.id)
                            .client(row.id)
                            .detail(serde_json::json!({ "import": true })),
                    );
                    row.id
                }
            };
            for (name, email, language) in &client.contacts {
                let contact = clients::insert_contact(
                    &mut tx,
                    &NewContact {
                        firm_id,
                        client_id,
                        name,
                        email,
                        language: *language,
                        notifications_enabled: true,
                        created_at: now,
                    },
                )
                .await?;
                entries.push(
                    Entry::new("contact.imported", "contact", contact.id)
                        .client(client_id)
                        .detail(serde_json::json!({ "import": true })),
                );
            }
        }
        journal::record(&mut tx, actor, now, &entries).await?;
        Ok::<_, OpError>(())
    })?;
    report.applied = true;
    Ok(report)
}
