//! Rows by id for `node`/`nodes`: one statement per table for any number of ids, always scoped
//! by the caller's firm (and, for the client view, its client), so another firm's id, a
//! deleted row or an id the caller may not read is simply absent.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{
    answer_files, categories, clients, contacts, deliveries, inbound_messages,
    information_requests, journal_entries, mission_lines, missions, request_answers, service_items,
    services, tasks, users, webhook_endpoints,
};
use super::{DbConn, DbResult};
use super::{catalog, clients as client_rows, files, firms, journal, missions as mission_rows};
use super::{outbox, replies, work};
use crate::domain::RequestStatus;
use crate::with_conn;

macro_rules! of_firm {
    ($(#[$meta:meta])* $name:ident, $table:ident, $row:ty) => {
        $(#[$meta])*
        pub async fn $name(db: &mut DbConn<'_>, firm_id: i64, ids: &[i64]) -> DbResult<Vec<$row>> {
            Ok(with_conn!(db, |c| $table::table
                .filter($table::firm_id.eq(firm_id))
                .filter($table::id.eq_any(ids))
                .select(<$row>::as_select())
                .load(c)
                .await)?)
        }
    };
}

of_firm!(
    /// The firm's categories among `ids`.
    categories_by_id, categories, catalog::Category
);
of_firm!(
    /// The firm's services among `ids`.
    services_by_id, services, catalog::Service
);
of_firm!(
    /// The firm's service items among `ids`.
    service_items_by_id, service_items, catalog::ServiceItem
);
of_firm!(
    /// The firm's clients among `ids`.
    clients_by_id, clients, client_rows::Client
);
of_firm!(
    /// The firm's contacts among `ids`.
    contacts_by_id, contacts, client_rows::Contact
);
of_firm!(
    /// The firm's missions among `ids`.
    missions_by_id, missions, mission_rows::Mission
);
of_firm!(
    /// The firm's mission lines among `ids`.
    mission_lines_by_id, mission_lines, mission_rows::MissionLine
);
of_firm!(
    /// The firm's tasks among `ids`.
    tasks_by_id, tasks, work::Task
);
of_firm!(
    /// The firm's requests among `ids`.
    requests_by_id, information_requests, work::InformationRequest
);
of_firm!(
    /// The firm's answers among `ids`.
    answers_by_id, request_answers, work::RequestAnswer
);
of_firm!(
    /// The firm's files among `ids`.
    files_by_id, answer_files, files::AnswerFile
);
of_firm!(
    /// The firm's staff among `ids`.
    users_by_id, users, firms::User
);
of_firm!(
    /// The firm's webhook endpoints among `ids`.
    webhook_endpoints_by_id, webhook_endpoints, outbox::WebhookEndpoint
);
of_firm!(
    /// The firm's deliveries among `ids`.
    deliveries_by_id, deliveries, outbox::Delivery
);
of_firm!(
    /// The firm's inbound replies among `ids`.
    inbound_messages_by_id, inbound_messages, replies::InboundMessage
);
of_firm!(
    /// The firm's journal entries among `ids`.
    journal_entries_by_id, journal_entries, journal::JournalEntry
);

/// The client's requests among `ids`, as its contacts see them (withdrawn ones are absent).
pub async fn client_requests_by_id(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: i64,
    ids: &[i64],
) -> DbResult<Vec<work::InformationRequest>> {
    Ok(with_conn!(db, |c| information_requests::table
        .filter(information_requests::firm_id.eq(firm_id))
        .filter(information_requests::client_id.eq(client_id))
        .filter(information_requests::id.eq_any(ids))
        .filter(information_requests::status.ne(RequestStatus::Cancelled))
        .select(work::InformationRequest::as_select())
        .load(c)
        .await)?)
}

/// The answers among `ids` to the client's visible requests.
pub async fn client_answers_by_id(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: i64,
    ids: &[i64],
) -> DbResult<Vec<work::RequestAnswer>> {
    Ok(with_conn!(db, |c| request_answers::table
        .inner_join(
            information_requests::table.on(information_requests::id
                .eq(request_answers::request_id)
                .and(information_requests::firm_id.eq(request_answers::firm_id))),
        )
        .filter(request_answers::firm_id.eq(firm_id))
        .filter(information_requests::client_id.eq(client_id))
        .filter(information_requests::status.ne(RequestStatus::Cancelled))
        .filter(request_answers::id.eq_any(ids))
        .select(work::RequestAnswer::as_select())
        .load(c)
        .await)?)
}

/// The files among `ids` of the client's visible requests.
pub async fn client_files_by_id(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: i64,
    ids: &[i64],
) -> DbResult<Vec<files::AnswerFile>> {
    Ok(with_conn!(db, |c| answer_files::table
        .inner_join(
            information_requests::table.on(information_requests::id
                .eq(answer_files::request_id)
                .and(information_requests::firm_id.eq(answer_files::firm_id))),
        )
        .filter(answer_files::firm_id.eq(firm_id))
        .filter(answer_files::client_id.eq(client_id))
        .filter(information_requests::status.ne(RequestStatus::Cancelled))
        .filter(answer_files::id.eq_any(ids))
        .select(files::AnswerFile::as_select())
        .load(c)
        .await)?)
}
