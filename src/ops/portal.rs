//! The client portal's rules: an emailed link opens a portal session (the link stays usable
//! until it expires, from any device), a session is checked, ended, and carries its CSRF
//! token; a contact asks for a new link by address; a contact unsubscribes and undoes it; and
//! what a signed-in contact may read (its own client's requests, their answers).
//!
//! Never here: cookies, headers, HTML or any HTTP type (that is `crate::portal`), nor anything
//! firm-only in what is returned for a contact (no task, no mission, no service title).

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use super::journal::{self, Entry};
use super::{Actor, Env, OpError, found};
use crate::auth::{new_token, token_hash};
use crate::db::clients::{self, Contact};
use crate::db::firms;
use crate::db::page::Keyset;
use crate::db::portal::{self as sessions, NewPortalSession};
use crate::db::tokens::{self, NewAccessToken};
use crate::db::work::{self, InformationRequest, RequestAnswer};
use crate::domain::{Language, RequestStatus, TokenKind};
use crate::transaction;

/// Most requests a portal page lists in each part (open, answered).
pub const MAX_LISTED: i64 = 200;

/// A link's holder, before anyone pressed its button.
#[derive(Debug, Clone)]
pub struct LinkHolder {
    pub contact_id: i64,
    pub firm_id: i64,
}

/// A portal session just opened: the cookie's value (shown once) and when it ends.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub actor: Actor,
}

/// A signed-in contact, as a portal request sees it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session_id: i64,
    pub actor: Actor,
    pub contact: Contact,
    pub language: Language,
}

/// What the portal shows of the contact's world: names, never firm-only fields.
#[derive(Debug, Clone)]
pub struct Overview {
    pub firm_name: String,
    pub client_name: String,
    /// Open requests, by due date then id.
    pub open: Vec<InformationRequest>,
    /// Answered and closed requests, most recent due date first.
    pub done: Vec<InformationRequest>,
    /// Each request's period ("janvier 2027", "T1 2027"), by request id, in the contact's
    /// language.
    pub periods: std::collections::HashMap<i64, String>,
}

/// One request as its page shows it: the request, its period, the answers and their files.
#[derive(Debug, Clone)]
pub struct RequestDetail {
    pub request: InformationRequest,
    pub period: String,
    pub answers: Vec<RequestAnswer>,
    /// The answers' files, by answer then id.
    pub files: Vec<crate::db::files::AnswerFile>,
}

/// The period labels of `requests` from their mission lines' frequencies, by request id.
async fn period_labels(
    db: &mut crate::db::DbConn<'_>,
    firm_id: i64,
    requests: &[&InformationRequest],
    language: Language,
) -> Result<std::collections::HashMap<i64, String>, OpError> {
    let line_ids: Vec<i64> = requests.iter().map(|r| r.mission_line_id).collect();
    let lines = crate::db::missions::find_lines(db, firm_id, &line_ids).await?;
    let frequencies: std::collections::HashMap<i64, crate::domain::schedule::Frequency> =
        lines.iter().map(|line| (line.id, line.frequency)).collect();
    Ok(requests
        .iter()
        .filter_map(|request| {
            frequencies.get(&request.mission_line_id).map(|frequency| {
                (
                    request.id,
                    crate::domain::placeholders::period_label(
                        request.due_date,
                        *frequency,
                        language,
                    ),
                )
            })
        })
        .collect())
}

/// A new sign-in link to email to one contact.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub token: String,
    pub to: String,
    pub contact_name: String,
    pub firm_name: String,
    pub language: Language,
}

/// The contact an unsubscribe link names, with its firm's name (for the page).
#[derive(Debug, Clone)]
pub struct UnsubscribeHolder {
    pub contact: Contact,
    pub firm_name: String,
    pub language: Language,
}

/// The CSRF token of a session: derived from the session's secret, so it is per session,
/// needs no storage, and cannot be computed by anyone without the cookie.
pub fn csrf_token(session_token: &str) -> String {
    let digest = Sha256::digest(format!("rappel portal csrf\0{session_token}").as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether `given` is the session's CSRF token (compared in constant time).
pub fn csrf_matches(session_token: &str, given: &str) -> bool {
    let expected = csrf_token(session_token);
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The language a contact reads: its own, else its firm's, else French.
fn contact_language(contact: &Contact, firm: &firms::Firm) -> Language {
    contact
        .language
        .as_deref()
        .and_then(|language| language.parse().ok())
        .unwrap_or_else(|| firm.locale.parse().unwrap_or(Language::French))
}

fn contact_actor(contact: &Contact) -> Actor {
    Actor::Contact {
        contact_id: contact.id,
        client_id: contact.client_id,
        firm_id: contact.firm_id,
    }
}

/// The holder of a live sign-in link (unexpired, unrevoked, of a contact and client that
/// are not archived); None for any other link. Spends nothing: mail scanners open links.
pub async fn link_holder(env: Env<'_>, link_token: &str) -> Result<Option<LinkHolder>, OpError> {
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let Some(link) = live_link(&mut db, link_token).await? else {
        return Ok(None);
    };
    Ok(Some(LinkHolder {
        contact_id: link.0,
        firm_id: link.1,
    }))
}

/// (contact, firm) of a live link.
async fn live_link(
    db: &mut crate::db::DbConn<'_>,
    link_token: &str,
) -> Result<Option<(i64, i64)>, OpError> {
    let now = Utc::now().naive_utc();
    let Some(link) = tokens::find_valid(
        db,
        &token_hash(link_token.trim()),
        &[TokenKind::SignInLink],
        now,
    )
    .await?
    else {
        return Ok(None);
    };
    let Some(contact_id) = link.contact_id else {
        return Ok(None);
    };
    let contact = clients::find_contact(db, link.firm_id, contact_id).await?;
    let client = clients::find_client(db, link.firm_id, contact.client_id).await?;
    if contact.archived_at.is_some() || client.archived_at.is_some() {
        return Ok(None);
    }
    Ok(Some((contact_id, link.firm_id)))
}

/// Opens a portal session with an emailed link (the button press). The link stays usable
/// until it expires; an invalid, expired or revoked link answers UNAUTHENTICATED.
pub async fn sign_in_with_link(
    env: Env<'_>,
    link_token: &str,
    session_hours: u32,
) -> Result<OpenedSession, OpError> {
    let token = new_token();
    let hash = token_hash(&token);
    let now = Utc::now();
    let expires_at = now + Duration::hours(i64::from(session_hours));
    let mut conn = env.pool.get().await?;
    let actor = transaction!(conn, |tx| {
        let (contact_id, firm_id) = live_link(&mut tx, link_token)
            .await?
            .ok_or_else(|| OpError::AuthFailed(LINK_REFUSED.into()))?;
        let contact = clients::find_contact(&mut tx, firm_id, contact_id).await?;
        sessions::insert(
            &mut tx,
            &NewPortalSession {
                firm_id,
                contact_id,
                token_hash: &hash,
                created_at: now.naive_utc(),
                expires_at: expires_at.naive_utc(),
            },
        )
        .await?;
        let actor = contact_actor(&contact);
        journal::record(
            &mut tx,
            &actor,
            now.naive_utc(),
            &[Entry::new("contact.signed_in", "contact", contact_id).client(contact.client_id)],
        )
        .await?;
        Ok::<_, OpError>(actor)
    })?;
    Ok(OpenedSession {
        token,
        expires_at,
        actor,
    })
}

/// The answer to every link that cannot be used: it says no more than that.
pub const LINK_REFUSED: &str = "this link is invalid or expired";

/// The signed-in contact of a session cookie's value; None when the session is unknown,
/// expired, revoked, or its contact or client was archived.
pub async fn session(env: Env<'_>, session_token: &str) -> Result<Option<SignedIn>, OpError> {
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let Some((session, contact)) = sessions::find_live(
        &mut db,
        &token_hash(session_token.trim()),
        Utc::now().naive_utc(),
    )
    .await?
    else {
        return Ok(None);
    };
    let firm = found(firms::find_firm(&mut db, contact.firm_id).await, "firm")?;
    Ok(Some(SignedIn {
        session_id: session.id,
        actor: contact_actor(&contact),
        language: contact_language(&contact, &firm),
        contact,
    }))
}

/// Ends a session (sign out). True when it was live.
pub async fn sign_out(env: Env<'_>, signed_in: &SignedIn) -> Result<bool, OpError> {
    let now = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    let contact = signed_in.contact.clone();
    let revoked = transaction!(conn, |tx| {
        let revoked = sessions::revoke(&mut tx, signed_in.session_id, now).await?;
        if revoked {
            journal::record(
                &mut tx,
                &signed_in.actor,
                now,
                &[Entry::new("contact.signed_out", "contact", contact.id)
                    .client(contact.client_id)],
            )
            .await?;
        }
        Ok::<_, OpError>(revoked)
    })?;
    Ok(revoked)
}

/// New sign-in links for every live contact with `email` (any case; a person may be the
/// contact of several clients), valid `link_days`. An unknown address gets an empty list and
/// no error: the door answers the same either way.
pub async fn request_new_links(
    env: Env<'_>,
    email: &str,
    link_days: u32,
) -> Result<Vec<NewLink>, OpError> {
    let email = email.trim();
    if email.is_empty() || !email.contains('@') || email.chars().count() > 320 {
        return Err(OpError::bad_input("email", "enter your email address"));
    }
    let now = Utc::now();
    let expires_at = now + Duration::days(i64::from(link_days));
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let contacts = clients::find_live_contacts_by_email(&mut db, email).await?;
    let mut links = Vec::with_capacity(contacts.len());
    for contact in contacts {
        let firm = found(firms::find_firm(&mut db, contact.firm_id).await, "firm")?;
        let token = new_token();
        tokens::insert(
            &mut db,
            &NewAccessToken {
                firm_id: contact.firm_id,
                token_hash: &token_hash(&token),
                kind: TokenKind::SignInLink,
                user_id: None,
                contact_id: Some(contact.id),
                expires_at: Some(expires_at.naive_utc()),
                created_at: now.naive_utc(),
            },
        )
        .await?;
        links.push(NewLink {
            token,
            language: contact_language(&contact, &firm),
            to: contact.email,
            contact_name: contact.name,
            firm_name: firm.name,
        });
    }
    Ok(links)
}

/// The firm's and client's names a contact's pages show.
#[derive(Debug, Clone)]
pub struct Names {
    pub firm_name: String,
    pub client_name: String,
}

/// The names of the contact's firm and client.
pub async fn names(env: Env<'_>, actor: &Actor) -> Result<Names, OpError> {
    let contact = actor.contact()?;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let firm = found(firms::find_firm(&mut db, contact.firm_id).await, "firm")?;
    let client = found(
        clients::find_client(&mut db, contact.firm_id, contact.client_id).await,
        "client",
    )?;
    Ok(Names {
        firm_name: firm.name,
        client_name: client.name,
    })
}

/// The language of a link's contact (for its button page).
pub async fn link_language(env: Env<'_>, holder: &LinkHolder) -> Result<Language, OpError> {
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let contact = clients::find_contact(&mut db, holder.firm_id, holder.contact_id).await?;
    let firm = found(firms::find_firm(&mut db, holder.firm_id).await, "firm")?;
    Ok(contact_language(&contact, &firm))
}

/// The contact's portal: its firm's and client's names, its open requests, then the others.
pub async fn overview(env: Env<'_>, actor: &Actor) -> Result<Overview, OpError> {
    let contact = actor.contact()?;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let firm = found(firms::find_firm(&mut db, contact.firm_id).await, "firm")?;
    let client = found(
        clients::find_client(&mut db, contact.firm_id, contact.client_id).await,
        "client",
    )?;
    let open = work::list_client_requests(
        &mut db,
        contact.firm_id,
        contact.client_id,
        Some(RequestStatus::Open),
        &Keyset::first(MAX_LISTED),
    )
    .await?;
    let mut done = Vec::new();
    for status in [RequestStatus::Answered, RequestStatus::Closed] {
        done.extend(
            work::list_client_requests(
                &mut db,
                contact.firm_id,
                contact.client_id,
                Some(status),
                &Keyset::first(MAX_LISTED),
            )
            .await?,
        );
    }
    done.sort_by(|a, b| b.due_date.cmp(&a.due_date).then(b.id.cmp(&a.id)));
    let language = contact_language_of(&mut db, &contact).await?;
    let all: Vec<&InformationRequest> = open.iter().chain(&done).collect();
    let periods = period_labels(&mut db, contact.firm_id, &all, language).await?;
    Ok(Overview {
        firm_name: firm.name,
        client_name: client.name,
        open,
        done,
        periods,
    })
}

/// One request of the contact's own client and its answers, oldest first; NOT_FOUND for a
/// request of another client (the same answer as a missing one).
pub async fn request(env: Env<'_>, actor: &Actor, id: i64) -> Result<RequestDetail, OpError> {
    let contact = actor.contact()?;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let request = found(
        work::find_client_request(&mut db, contact.firm_id, contact.client_id, id).await,
        "request",
    )?;
    let answers = work::list_answers(&mut db, contact.firm_id, request.id).await?;
    let answer_ids: Vec<i64> = answers.iter().map(|answer| answer.id).collect();
    let files = crate::db::files::of_answers(
        &mut db,
        contact.firm_id,
        Some(contact.client_id),
        &answer_ids,
    )
    .await?;
    let language = contact_language_of(&mut db, &contact).await?;
    let period = period_labels(&mut db, contact.firm_id, &[&request], language)
        .await?
        .remove(&request.id)
        .unwrap_or_default();
    Ok(RequestDetail {
        request,
        period,
        answers,
        files,
    })
}

/// The language a contact reads (its own, else its firm's).
async fn contact_language_of(
    db: &mut crate::db::DbConn<'_>,
    contact: &super::ContactActor,
) -> Result<Language, OpError> {
    let row = clients::find_contact(db, contact.firm_id, contact.contact_id).await?;
    let firm = found(firms::find_firm(db, contact.firm_id).await, "firm")?;
    Ok(contact_language(&row, &firm))
}

/// The contact a live unsubscribe link names, for its confirmation page.
pub async fn unsubscribe_holder(
    env: Env<'_>,
    link_token: &str,
) -> Result<Option<UnsubscribeHolder>, OpError> {
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let Some(link) = tokens::find_valid(
        &mut db,
        &token_hash(link_token.trim()),
        &[TokenKind::Unsubscribe],
        Utc::now().naive_utc(),
    )
    .await?
    else {
        return Ok(None);
    };
    let Some(contact_id) = link.contact_id else {
        return Ok(None);
    };
    let contact = clients::find_contact(&mut db, link.firm_id, contact_id).await?;
    let firm = found(firms::find_firm(&mut db, link.firm_id).await, "firm")?;
    Ok(Some(UnsubscribeHolder {
        language: contact_language(&contact, &firm),
        firm_name: firm.name,
        contact,
    }))
}

/// One-click unsubscribe (RFC 8058) with the link's token, or its undo (`subscribed`
/// true). The link stays usable (a mailbox provider may post it more than once); the change
/// and its journal entry (`contact.unsubscribed` / `contact.resubscribed`) are one
/// transaction, and a repeat changes nothing. None when the link names nobody.
pub async fn set_subscription(
    env: Env<'_>,
    link_token: &str,
    subscribed: bool,
) -> Result<Option<UnsubscribeHolder>, OpError> {
    let Some(holder) = unsubscribe_holder(env, link_token).await? else {
        return Ok(None);
    };
    let contact = holder.contact.clone();
    let now: NaiveDateTime = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    transaction!(conn, |tx| {
        let changed = if subscribed {
            clients::resubscribe_contact(&mut tx, contact.id).await?
        } else {
            clients::unsubscribe_contact(&mut tx, contact.id, now).await?
        };
        if changed == 1 {
            let kind = if subscribed {
                "contact.resubscribed"
            } else {
                "contact.unsubscribed"
            };
            journal::record(
                &mut tx,
                &contact_actor(&contact),
                now,
                &[Entry::new(kind, "contact", contact.id).client(contact.client_id)],
            )
            .await?;
        }
        Ok::<_, OpError>(())
    })?;
    if subscribed {
        tracing::info!(contact_id = contact.id, "a contact resubscribed to emails");
    } else {
        tracing::info!(
            contact_id = contact.id,
            "a contact unsubscribed from emails"
        );
    }
    Ok(Some(holder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_belongs_to_its_session_only() {
        let (a, b) = (new_token(), new_token());
        assert!(csrf_matches(&a, &csrf_token(&a)));
        assert!(!csrf_matches(&b, &csrf_token(&a)));
        assert!(!csrf_matches(&a, ""));
        assert!(!csrf_matches(&a, &csrf_token(&a)[1..]));
        assert_ne!(csrf_token(&a), a, "the token is not the session's secret");
    }
}
