//! The `Node` interface and the root `node(id:)`/`nodes(ids:)` fields (Relay's object
//! identification, as GitHub and Shopify serve it): any global id the API hands out reads its
//! object back. Staff resolve the firm view's types, a contact only the client view's own
//! (`ClientRequest`, `ClientAnswer`, `ClientAnswerFile`), so a contact never reaches a task or
//! another client's request. Another firm's id, a deleted row, an id of a kind the caller
//! cannot read or a malformed id is `null`, never an error. `nodes` reads each kind present in
//! one statement scoped by the caller's firm (and client).

use async_graphql::{Context, ID, Interface};

use crate::db::{DbConn, nodes as rows};
use crate::domain::gid::{self, Kind};
use crate::error::AppError;
use crate::graphql::client::{ClientAnswer, ClientRequest};
use crate::graphql::context::{Caller, caller, connect, gid};
use crate::graphql::files::{AnswerFile, ClientAnswerFile, client_file};
use crate::graphql::firm::history::HistoryEntry;
use crate::graphql::firm::query::FirmView;
use crate::graphql::firm::replies::HeldReply;
use crate::graphql::firm::types::{
    Category, Client, Contact, Delivery, InformationRequest, Mission, MissionLine, RequestAnswer,
    Service, ServiceItem, StaffMember, Task, WebhookEndpoint, utc,
};

/// Most ids one `nodes` call takes (GitHub's bound).
pub const MAX_NODES: usize = 100;

/// An object with a global id: `node(id:)` reads it back with that id.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    method = "node_id",
    desc = "The object's global id: opaque, stable, the same wherever Rappel hands it out \
            (API, webhooks, subscriptions, history); `node(id:)` reads the object back."
))]
pub enum Node {
    FirmView(FirmView),
    Category(Category),
    Service(Service),
    ServiceItem(ServiceItem),
    Client(Client),
    Contact(Contact),
    Mission(Mission),
    MissionLine(MissionLine),
    Task(Task),
    InformationRequest(InformationRequest),
    RequestAnswer(RequestAnswer),
    AnswerFile(AnswerFile),
    StaffMember(StaffMember),
    WebhookEndpoint(WebhookEndpoint),
    Delivery(Delivery),
    HeldReply(HeldReply),
    HistoryEntry(HistoryEntry),
    ClientRequest(ClientRequest),
    ClientAnswer(ClientAnswer),
    ClientAnswerFile(ClientAnswerFile),
}

/// The `id` of each node type as the interface reads it (the same value as its `id` field).
macro_rules! node_ids {
    ($($ty:ty => |$row:ident, $ctx:ident| $id:expr;)+) => {
        $(impl $ty {
            /// The global id, for the `Node` interface.
            pub async fn node_id(&self, $ctx: &Context<'_>) -> async_graphql::Result<ID> {
                let $row = self;
                Ok($id)
            }
        })+
    };
}

node_ids! {
    FirmView => |_view, ctx| gid(Kind::Firm, crate::graphql::context::staff(ctx)?.firm_id);
    Category => |row, _ctx| gid(Kind::Category, row.0.id);
    Service => |row, _ctx| gid(Kind::Service, row.0.id);
    ServiceItem => |row, _ctx| gid(Kind::ServiceItem, row.0.id);
    Client => |row, _ctx| gid(Kind::Client, row.0.id);
    Contact => |row, _ctx| gid(Kind::Contact, row.0.id);
    Mission => |row, _ctx| gid(Kind::Mission, row.0.id);
    MissionLine => |row, _ctx| gid(Kind::MissionLine, row.0.id);
    Task => |row, _ctx| gid(Kind::Task, row.0.id);
    InformationRequest => |row, _ctx| gid(Kind::InformationRequest, row.0.id);
    RequestAnswer => |row, _ctx| gid(Kind::RequestAnswer, row.0.id);
    AnswerFile => |row, _ctx| gid(Kind::AnswerFile, row.0.id);
    StaffMember => |row, _ctx| gid(Kind::StaffMember, row.0.id);
    WebhookEndpoint => |row, _ctx| gid(Kind::WebhookEndpoint, row.0.id);
    Delivery => |row, _ctx| gid(Kind::Delivery, row.0.id);
    HeldReply => |row, _ctx| gid(Kind::HeldReply, row.0.id);
    HistoryEntry => |row, _ctx| gid(Kind::HistoryEntry, row.0.id);
    ClientRequest => |row, _ctx| gid(Kind::InformationRequest, row.0.id);
    ClientAnswer => |row, _ctx| row.id.clone();
    ClientAnswerFile => |row, _ctx| row.id.clone();
}

/// Checks the length of a `nodes` call.
pub fn check_count(ids: &[ID]) -> Result<(), AppError> {
    if ids.len() > MAX_NODES {
        return Err(AppError::bad_input(
            "ids",
            format!(
                "nodes takes at most {MAX_NODES} ids, this call has {}",
                ids.len()
            ),
        ));
    }
    Ok(())
}

/// The objects of `ids` the caller may read, in order; `None` where an id names nothing the
/// caller can read. Anonymous callers are UNAUTHENTICATED.
pub async fn load(ctx: &Context<'_>, ids: &[ID]) -> async_graphql::Result<Vec<Option<Node>>> {
    let wanted: Vec<Option<(Kind, i64)>> = ids.iter().map(|id| gid::decode(id).ok()).collect();
    let mut found: Vec<Option<Node>> = ids.iter().map(|_| None).collect();
    if wanted.iter().all(Option::is_none) {
        return match caller(ctx) {
            Caller::Anonymous => Err(AppError::Unauthenticated.into()),
            _ => Ok(found),
        };
    }
    let mut kinds: Vec<Kind> = wanted.iter().flatten().map(|(kind, _)| *kind).collect();
    kinds.sort();
    kinds.dedup();
    match caller(ctx).clone() {
        Caller::Anonymous => return Err(AppError::Unauthenticated.into()),
        Caller::Staff(staff) => {
            let mut conn = connect(ctx).await?;
            let mut db = conn.as_db();
            for kind in kinds {
                firm_kind(&mut db, staff.firm_id, kind, &wanted, &mut found).await?;
            }
        }
        Caller::Contact(contact) => {
            let mut conn = connect(ctx).await?;
            let mut db = conn.as_db();
            let (firm_id, client_id) = (contact.firm_id, contact.client_id);
            for kind in kinds {
                let ids = ids_of(kind, &wanted);
                match kind {
                    Kind::InformationRequest => place(
                        rows::client_requests_by_id(&mut db, firm_id, client_id, &ids)
                            .await
                            .map_err(AppError::from)?,
                        kind,
                        |row| row.id,
                        |row| Node::ClientRequest(ClientRequest(row)),
                        &wanted,
                        &mut found,
                    ),
                    Kind::RequestAnswer => place(
                        rows::client_answers_by_id(&mut db, firm_id, client_id, &ids)
                            .await
                            .map_err(AppError::from)?,
                        kind,
                        |row| row.id,
                        |answer| {
                            Node::ClientAnswer(ClientAnswer {
                                id: gid(Kind::RequestAnswer, answer.id),
                                message: answer.message,
                                nothing_to_report: answer.nothing_to_report,
                                created_at: utc(answer.created_at),
                            })
                        },
                        &wanted,
                        &mut found,
                    ),
                    Kind::AnswerFile => place(
                        rows::client_files_by_id(&mut db, firm_id, client_id, &ids)
                            .await
                            .map_err(AppError::from)?,
                        kind,
                        |row| row.id,
                        |row| Node::ClientAnswerFile(client_file(ctx, row)),
                        &wanted,
                        &mut found,
                    ),
                    // Nothing else belongs to the client view.
                    _ => {}
                }
            }
        }
    }
    Ok(found)
}

/// Reads the firm's rows of one kind among the wanted ids, in one statement.
async fn firm_kind(
    db: &mut DbConn<'_>,
    firm_id: i64,
    kind: Kind,
    wanted: &[Option<(Kind, i64)>],
    found: &mut [Option<Node>],
) -> Result<(), AppError> {
    let ids = ids_of(kind, wanted);
    macro_rules! put {
        ($query:path, $node:expr) => {
            place(
                $query(db, firm_id, &ids).await?,
                kind,
                |row| row.id,
                $node,
                wanted,
                found,
            )
        };
    }
    match kind {
        Kind::Firm => {
            for (slot, want) in found.iter_mut().zip(wanted) {
                if *want == Some((Kind::Firm, firm_id)) {
                    *slot = Some(Node::FirmView(FirmView));
                }
            }
        }
        Kind::Category => put!(rows::categories_by_id, |row| Node::Category(Category(row))),
        Kind::Service => put!(rows::services_by_id, |row| Node::Service(Service(row))),
        Kind::ServiceItem => put!(rows::service_items_by_id, |row| {
            Node::ServiceItem(ServiceItem(row))
        }),
        Kind::Client => put!(rows::clients_by_id, |row| Node::Client(Client(row))),
        Kind::Contact => put!(rows::contacts_by_id, |row| Node::Contact(Contact(row))),
        Kind::Mission => put!(rows::missions_by_id, |row| Node::Mission(Mission(row))),
        Kind::MissionLine => put!(rows::mission_lines_by_id, |row| {
            Node::MissionLine(MissionLine(row, None))
        }),
        Kind::Task => put!(rows::tasks_by_id, |row| Node::Task(Task(row))),
        Kind::InformationRequest => put!(rows::requests_by_id, |row| {
            Node::InformationRequest(InformationRequest(row))
        }),
        Kind::RequestAnswer => put!(rows::answers_by_id, |row| {
            Node::RequestAnswer(RequestAnswer(row))
        }),
        Kind::AnswerFile => put!(rows::files_by_id, |row| Node::AnswerFile(AnswerFile(row))),
        Kind::StaffMember => put!(rows::users_by_id, |row| {
            Node::StaffMember(StaffMember(row))
        }),
        Kind::WebhookEndpoint => put!(rows::webhook_endpoints_by_id, |row| {
            Node::WebhookEndpoint(WebhookEndpoint(row))
        }),
        Kind::Delivery => put!(rows::deliveries_by_id, |row| Node::Delivery(Delivery(row))),
        Kind::HeldReply => put!(rows::inbound_messages_by_id, |row| {
            Node::HeldReply(HeldReply(row))
        }),
        Kind::HistoryEntry => put!(rows::journal_entries_by_id, |row| {
            Node::HistoryEntry(HistoryEntry(row, None))
        }),
        // Calendar feeds are not objects of the API.
        Kind::CalendarFeed => {}
    }
    Ok(())
}

fn ids_of(kind: Kind, wanted: &[Option<(Kind, i64)>]) -> Vec<i64> {
    let mut ids: Vec<i64> = wanted
        .iter()
        .flatten()
        .filter(|(k, _)| *k == kind)
        .map(|(_, id)| *id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Puts each row at every position that asked for it (an id may be asked twice).
fn place<T: Clone>(
    rows: Vec<T>,
    kind: Kind,
    id_of: impl Fn(&T) -> i64,
    make: impl Fn(T) -> Node,
    wanted: &[Option<(Kind, i64)>],
    found: &mut [Option<Node>],
) {
    for row in rows {
        let id = id_of(&row);
        for (slot, want) in found.iter_mut().zip(wanted) {
            if *want == Some((kind, id)) {
                *slot = Some(make(row.clone()));
            }
        }
    }
}
