//! Clients and their contacts: create, edit, archive. Archiving a client or a contact ends the
//! contacts' bearer tokens and sign-in links in the same transaction (they stay ended if the
//! client or contact is brought back); unsubscribe links keep working.

use chrono::Utc;

use super::journal::{self, Entry};
use super::{Actor, Env, OpError, found};
use crate::db::clients::{
    self, Client, ClientChanges, Contact, ContactChanges, NewClient, NewContact,
};
use crate::db::tokens;
use crate::domain::Language;
use crate::domain::validation::{check_email, check_name};
use crate::transaction;

/// A client as a door hands it over.
#[derive(Debug, Clone)]
pub struct ClientInput {
    pub name: String,
    /// Blank means none.
    pub reference: Option<String>,
}

/// A contact as a door hands it over.
#[derive(Debug, Clone)]
pub struct ContactInput {
    pub name: String,
    pub email: String,
    /// None: the firm's language.
    pub language: Option<Language>,
    pub notifications_enabled: bool,
}

/// An optional single-line text: blank means none.
pub(crate) fn optional_name(field: &str, value: Option<&str>) -> Result<Option<String>, OpError> {
    Ok(value
        .filter(|text| !text.trim().is_empty())
        .map(|text| check_name(field, text))
        .transpose()?)
}

pub(crate) fn validate_contact_input(
    input: &ContactInput,
) -> Result<(String, String, Option<&'static str>), OpError> {
    let name = check_name("name", &input.name)?;
    let email = check_email("email", &input.email)?;
    Ok((name, email, input.language.map(Language::as_str)))
}

/// Creates a client.
pub async fn create_client(
    env: Env<'_>,
    actor: &Actor,
    input: &ClientInput,
) -> Result<Client, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let name = check_name("name", &input.name)?;
    let reference = optional_name("reference", input.reference.as_deref())?;
    let mut conn = env.pool.get().await?;
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let client = clients::insert_client(
            &mut tx,
            &NewClient {
                firm_id,
                name: &name,
                reference: reference.as_deref(),
                created_at: now,
            },
        )
        .await?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("client.created", "client", client.id).client(client.id)],
        )
        .await?;
        Ok::<_, OpError>(client)
    })
}

/// Renames a client or changes its reference.
pub async fn update_client(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
    input: &ClientInput,
) -> Result<Client, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let name = check_name("name", &input.name)?;
    let reference = optional_name("reference", input.reference.as_deref())?;
    let mut conn = env.pool.get().await?;
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let client = found(
            clients::update_client(
                &mut tx,
                firm_id,
                id,
                &ClientChanges {
                    name: Some(&name),
                    reference: Some(reference.as_deref()),
                },
            )
            .await,
            "client",
        )?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("client.updated", "client", id).client(id)],
        )
        .await?;
        Ok::<_, OpError>(client)
    })
}

/// Archives a client: its contacts' tokens and sign-in links end at once (and stay ended if
/// the client is brought back), so they lose the client view.
pub async fn archive_client(env: Env<'_>, actor: &Actor, id: i64) -> Result<Client, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let now = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    let archived = transaction!(conn, |tx| {
        let row = found(
            clients::set_client_archived(&mut tx, firm_id, id, Some(now)).await,
            "client",
        )?;
        tokens::revoke_client_contacts_access(&mut tx, firm_id, id, now).await?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("client.archived", "client", id).client(id)],
        )
        .await?;
        Ok::<_, OpError>(row)
    })?;
    env.access_changed();
    Ok(archived)
}

/// Adds a contact to a client; an email is unique among a client's contacts.
pub async fn add_contact(
    env: Env<'_>,
    actor: &Actor,
    client_id: i64,
    input: &ContactInput,
) -> Result<Contact, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let (name, email, language) = validate_contact_input(input)?;
    let mut conn = env.pool.get().await?;
    found(
        clients::find_client(&mut conn.as_db(), firm_id, client_id).await,
        "client",
    )?;
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let contact = clients::insert_contact(
            &mut tx,
            &NewContact {
                firm_id,
                client_id,
                name: &name,
                email: &email,
                language,
                notifications_enabled: input.notifications_enabled,
                created_at: now,
            },
        )
        .await
        .map_err(|error| match OpError::from(error) {
            OpError::Conflict(_) => {
                OpError::Conflict("this client already has a contact with that email".into())
            }
            other => other,
        })?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("contact.created", "contact", contact.id).client(client_id)],
        )
        .await?;
        Ok::<_, OpError>(contact)
    })
}

/// Changes a contact's name, email, language or notifications.
pub async fn update_contact(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
    input: &ContactInput,
) -> Result<Contact, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let (name, email, language) = validate_contact_input(input)?;
    let mut conn = env.pool.get().await?;
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let contact = found(
            clients::update_contact(
                &mut tx,
                firm_id,
                id,
                &ContactChanges {
                    name: Some(&name),
                    email: Some(&email),
                    language: Some(language),
                    notifications_enabled: Some(input.notifications_enabled),
                },
            )
            .await,
            "contact",
        )?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("contact.updated", "contact", id).client(contact.client_id)],
        )
        .await?;
        Ok::<_, OpError>(contact)
    })
}

/// Archives a contact: its tokens and sign-in links end at once.
pub async fn archive_contact(env: Env<'_>, actor: &Actor, id: i64) -> Result<Contact, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let now = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    let archived = transaction!(conn, |tx| {
        let row = found(
            clients::set_contact_archived(&mut tx, firm_id, id, Some(now)).await,
            "contact",
        )?;
        tokens::revoke_contact_access(&mut tx, firm_id, id, now).await?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("contact.archived", "contact", id).client(row.client_id)],
        )
        .await?;
        Ok::<_, OpError>(row)
    })?;
    env.access_changed();
    Ok(archived)
}
