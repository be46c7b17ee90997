//! The activity journal as the firm reads it: `history` connections (firm, client, mission,
//! request, task), newest first, filterable by kind and time, each entry with its actor.
//! Firm view only: contacts never see the journal. Read-only: nothing here (nor anywhere)
//! changes or deletes an entry. No diesel here.

use async_graphql::{Context, Enum, ID, InputObject, Object};
use futures_util::FutureExt as _;

use super::types::{Client, Contact, Mission, StaffMember, utc};
use std::sync::Arc;

use crate::db::journal::{self, EntryLinks, HistoryOwner, JournalEntry, JournalFilter};
use crate::domain::gid::Kind;
use crate::error::AppError;
use crate::graphql::context::{StaffGuard, connect, gid, staff, visible_to_staff};
use crate::graphql::loaders::{
    ClientKey, ContactKey, HistoryCountOf, HistoryOf, MissionKey, firm_loader, one, user_of,
};
use crate::graphql::pages::{Page, PageArgs, TotalCount};
use crate::graphql::scalars::DateTime;

/// Most kinds one history filter may name.
const MAX_KINDS: usize = 50;

/// Which entries of a history to list.
#[derive(InputObject, Default)]
pub struct HistoryFilter {
    /// Only entries of these kinds (such as `request.closed`, `task.completed`); none: all.
    pub kinds: Option<Vec<String>>,
    /// Only entries at or after this instant.
    pub since: Option<DateTime>,
    /// Only entries before this instant.
    pub until: Option<DateTime>,
}

/// Who did something.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ActorKind {
    /// A member of the firm.
    Staff,
    /// A contact of a client (an answer).
    Contact,
    /// Rappel itself: generation, deliveries, the CLI.
    System,
}

/// Who did something: a staff member, a contact, or Rappel itself.
pub struct HistoryActor {
    kind: ActorKind,
    user_id: Option<i64>,
    contact_id: Option<i64>,
    /// The staff member and contact read with the entry, if they were.
    read: Option<(
        Option<crate::db::firms::User>,
        Option<crate::db::clients::Contact>,
    )>,
}

impl HistoryActor {
    /// The actor of `entry`, with the staff member or contact read in the entry's statement
    /// when `links` holds them (else its fields load them).
    pub fn read_with(entry: &JournalEntry, links: Option<&EntryLinks>) -> Self {
        Self {
            read: links.map(|links| (links.user.clone(), links.contact.clone())),
            ..Self::of(entry)
        }
    }

    pub fn of(entry: &JournalEntry) -> Self {
        let kind = match entry.actor_kind.as_str() {
            "STAFF" => ActorKind::Staff,
            "CONTACT" => ActorKind::Contact,
            _ => ActorKind::System,
        };
        Self {
            kind,
            user_id: entry.actor_user_id,
            contact_id: entry.actor_contact_id,
            read: None,
        }
    }
}

/// Who did something recorded in the journal.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl HistoryActor {
    /// A staff member, a contact, or the system.
    async fn kind(&self) -> ActorKind {
        self.kind
    }
    /// The staff member who acted (kind STAFF).
    async fn staff_member(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StaffMember>> {
        let Some(user_id) = self.user_id else {
            return Ok(None);
        };
        if let Some((Some(user), _)) = &self.read {
            return Ok(Some(StaffMember(user.clone())));
        }
        Ok(Some(StaffMember(user_of(ctx, user_id).await?)))
    }
    /// The contact who acted (kind CONTACT).
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        let Some(contact_id) = self.contact_id else {
            return Ok(None);
        };
        if let Some((_, Some(contact))) = &self.read {
            return Ok(Some(Contact(contact.clone())));
        }
        let row = one(firm_loader(ctx)?, ContactKey(contact_id), "contact").await?;
        Ok(Some(Contact(row)))
    }
}

/// One state change in the firm's journal, with the rows it names when its list read them
/// in its statement (else its fields load them).
pub struct HistoryEntry(pub JournalEntry, pub Option<Box<EntryLinks>>);

/// One state change recorded in the firm's journal: what happened, to what, by whom, when.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl HistoryEntry {
    /// The entry's id (entries are numbered in the order they were written).
    async fn id(&self) -> ID {
        gid(Kind::HistoryEntry, self.0.id)
    }
    /// When it happened.
    async fn occurred_at(&self) -> DateTime {
        utc(self.0.occurred_at)
    }
    /// What happened, such as `mission.signed`, `request.answered`, `occurrence.generated`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// What it happened to: `mission`, `mission_line`, `request`, `task`, `client`,
    /// `contact`, `service`, `staff`, `webhook_endpoint`.
    async fn object_type(&self) -> &str {
        &self.0.object_type
    }
    /// The global id of what it happened to (`node(id:)` reads it back while it exists).
    async fn object_id(&self) -> ID {
        match Kind::of_journal_object(&self.0.object_type) {
            Some(kind) => gid(kind, self.0.object_id),
            None => self.0.object_id.into(),
        }
    }
    /// Who did it.
    async fn actor(&self) -> HistoryActor {
        HistoryActor::read_with(&self.0, self.1.as_deref())
    }
    /// The status before the change, when it changed one.
    async fn before_status(&self) -> Option<&str> {
        self.0.before_status.as_deref()
    }
    /// The status after the change, when it changed one.
    async fn after_status(&self) -> Option<&str> {
        self.0.after_status.as_deref()
    }
    /// A JSON object with what the kind needs beside the statuses (due date of an
    /// occurrence, assignee, contact emailed...); the ids in it are global ids.
    async fn detail(&self) -> Option<String> {
        let detail = self.0.detail.as_deref()?;
        Some(crate::domain::gid::globalize_detail(&self.0.kind, detail))
    }
    /// The client concerned, if any.
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Client>> {
        let Some(client_id) = self.0.client_id else {
            return Ok(None);
        };
        if let Some(client) = self.1.as_deref().and_then(|links| links.client.as_ref()) {
            return Ok(Some(Client(client.clone())));
        }
        let row = one(firm_loader(ctx)?, ClientKey(client_id), "client").await?;
        Ok(Some(Client(row)))
    }
    /// The mission concerned, if any.
    async fn mission(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Mission>> {
        let Some(mission_id) = self.0.mission_id else {
            return Ok(None);
        };
        if let Some(mission) = self.1.as_deref().and_then(|links| links.mission.as_ref()) {
            return Ok(Some(Mission(mission.clone())));
        }
        let row = one(firm_loader(ctx)?, MissionKey(mission_id), "mission").await?;
        Ok(Some(Mission(row)))
    }
}

/// The pagination of a history field, as the caller gave it.
pub struct HistoryArgs {
    pub filter: Option<HistoryFilter>,
    pub page: PageArgs,
}

/// `base` with the caller's history filter, checked (BAD_USER_INPUT naming the argument).
fn history_filter(
    mut base: JournalFilter,
    filter: Option<HistoryFilter>,
) -> Result<JournalFilter, AppError> {
    let filter = filter.unwrap_or_default();
    let kinds = filter.kinds.unwrap_or_default();
    if kinds.len() > MAX_KINDS {
        return Err(AppError::bad_input(
            "filter.kinds",
            format!("name at most {MAX_KINDS} kinds"),
        ));
    }
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && until < since
    {
        return Err(AppError::bad_input("filter.until", "until is before since"));
    }
    base.kinds = kinds;
    base.since = filter.since.map(|instant| instant.0.naive_utc());
    base.until = filter.until.map(|instant| instant.0.naive_utc());
    Ok(base)
}

/// One page of the signed-in firm's history narrowed by `base` (an object, a client, a
/// mission) and the caller's filter, newest first.
pub async fn history_page(
    ctx: &Context<'_>,
    base: JournalFilter,
    args: HistoryArgs,
) -> async_graphql::Result<Page<i64, HistoryEntry>> {
    let firm_id = staff(ctx)?.firm_id;
    let base = history_filter(base, args.filter)?;
    let page = args.page.read(ctx)?;
    let mut conn = connect(ctx).await?;
    // The client, mission and actor of each entry in the page's own statement.
    let rows = journal::list_linked(&mut conn.as_db(), firm_id, &base, &page.keyset)
        .await
        .map_err(AppError::from)?;
    let total = TotalCount::new(move |pool| {
        let base = base.clone();
        async move { journal::count(&mut pool.get().await?.as_db(), firm_id, &base).await }.boxed()
    });
    Ok(page.connection(
        rows,
        total,
        |(row, _)| row.id,
        |(row, links)| HistoryEntry(row, Some(Box::new(links))),
    ))
}

/// One page of the history of one owner (a client, a mission, a task, a request: `owner`'s
/// kind, `id`): what [`history_page`] answers with the owner as filter, read for every owner
/// of the level in one statement, and their `totalCount`s in one more (the [`HistoryOf`]
/// loaders).
pub async fn owner_history_page(
    ctx: &Context<'_>,
    owner: HistoryOwner,
    id: i64,
    args: HistoryArgs,
) -> async_graphql::Result<Page<i64, HistoryEntry>> {
    staff(ctx)?;
    let filter = history_filter(JournalFilter::default(), args.filter)?;
    let page = args.page.read(ctx)?;
    let key = HistoryOf {
        owner,
        id,
        query: Arc::new((filter.clone(), page.keyset.clone())),
    };
    let (rows, known) = firm_loader(ctx)?.load_one(key).await?.unwrap_or_default();
    let total = match known {
        Some(total) => TotalCount::known(total),
        None => TotalCount::history_of(HistoryCountOf {
            owner,
            id,
            filter: Arc::new(filter),
        }),
    };
    Ok(page.connection(
        rows,
        total,
        |(row, _)| row.id,
        |(row, links)| HistoryEntry(row, Some(Box::new(links))),
    ))
}
