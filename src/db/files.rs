//! The rows of deposited documents (`answer_files`): one per file of an answer, linked to the
//! answer, the request, the client and the firm. Every read is scoped by firm, and a
//! contact's reads also by client. Nothing here deletes a row.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::page::Keyset;
use super::schema::{answer_files, information_requests};
use super::{DbConn, DbResult};
use crate::{seek_id, with_conn};

/// A deposited file's metadata; its bytes are in the object store under `storage_key`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = answer_files)]
pub struct AnswerFile {
    pub id: i64,
    pub firm_id: i64,
    pub client_id: i64,
    pub request_id: i64,
    pub answer_id: i64,
    pub uploaded_by_contact_id: Option<i64>,
    /// The original name, sanitised, for display and downloads.
    pub name: String,
    pub size_bytes: i64,
    /// The type read from the bytes.
    pub media_type: String,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    pub storage_key: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = answer_files)]
pub struct NewAnswerFile<'a> {
    pub firm_id: i64,
    pub client_id: i64,
    pub request_id: i64,
    pub answer_id: i64,
    pub uploaded_by_contact_id: Option<i64>,
    pub name: &'a str,
    pub size_bytes: i64,
    pub media_type: &'a str,
    pub sha256: &'a str,
    pub storage_key: &'a str,
    pub created_at: NaiveDateTime,
}

/// Filters of the firm's file list.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileFilter {
    pub request_id: Option<i64>,
    pub client_id: Option<i64>,
}

/// Inserts the rows, one statement each, in the caller's transaction.
pub async fn insert(db: &mut DbConn<'_>, rows: &[NewAnswerFile<'_>]) -> DbResult<Vec<AnswerFile>> {
    let mut inserted = Vec::with_capacity(rows.len());
    for row in rows {
        inserted.push(with_conn!(db, |c| diesel::insert_into(
            answer_files::table
        )
        .values(row)
        .returning(AnswerFile::as_returning())
        .get_result(c)
        .await)?);
    }
    Ok(inserted)
}

/// A file of the firm; with `client_id`, only one of that client's requests the client may
/// still see (not CANCELLED). Not found otherwise, as a missing one.
pub async fn find(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: Option<i64>,
    id: i64,
) -> DbResult<AnswerFile> {
    Ok(with_conn!(db, |c| {
        let mut query = answer_files::table
            .inner_join(
                information_requests::table
                    .on(information_requests::id.eq(answer_files::request_id)),
            )
            .filter(answer_files::firm_id.eq(firm_id))
            .filter(information_requests::firm_id.eq(firm_id))
            .filter(answer_files::id.eq(id))
            .into_boxed();
        if let Some(client_id) = client_id {
            query = query
                .filter(answer_files::client_id.eq(client_id))
                .filter(information_requests::client_id.eq(client_id))
                .filter(information_requests::status.ne(crate::domain::RequestStatus::Cancelled));
        }
        query.select(AnswerFile::as_select()).first(c).await
    })?)
}

/// The files of the firm's answers `answer_ids` (with `client_id`, of that client only), by
/// answer then id.
pub async fn of_answers(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: Option<i64>,
    answer_ids: &[i64],
) -> DbResult<Vec<AnswerFile>> {
    if answer_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(with_conn!(db, |c| {
        let mut query = answer_files::table
            .filter(answer_files::firm_id.eq(firm_id))
            .filter(answer_files::answer_id.eq_any(answer_ids))
            .into_boxed();
        if let Some(client_id) = client_id {
            query = query.filter(answer_files::client_id.eq(client_id));
        }
        query
            .order((answer_files::answer_id, answer_files::id))
            .select(AnswerFile::as_select())
            .load(c)
            .await
    })?)
}

/// The firm's files matching the filter, as a boxed query (for a page or a count).
macro_rules! filtered_files {
    ($firm_id:expr, $filter:expr) => {{
        let filter: FileFilter = $filter;
        let mut query = answer_files::table
            .filter(answer_files::firm_id.eq($firm_id))
            .into_boxed();
        if let Some(request_id) = filter.request_id {
            query = query.filter(answer_files::request_id.eq(request_id));
        }
        if let Some(client_id) = filter.client_id {
            query = query.filter(answer_files::client_id.eq(client_id));
        }
        query
    }};
}

/// One page of the firm's files, newest first (by id, descending).
pub async fn page(
    db: &mut DbConn<'_>,
    firm_id: i64,
    filter: FileFilter,
    page: &Keyset<i64>,
) -> DbResult<Vec<AnswerFile>> {
    Ok(with_conn!(db, |c| {
        let query = filtered_files!(firm_id, filter);
        seek_id!(query, page, answer_files::id, desc)
            .select(AnswerFile::as_select())
            .load(c)
            .await
    })?)
}

/// How many files the firm's list holds with the filter.
pub async fn count(db: &mut DbConn<'_>, firm_id: i64, filter: FileFilter) -> DbResult<i64> {
    Ok(with_conn!(db, |c| filtered_files!(firm_id, filter)
        .count()
        .get_result(c)
        .await)?)
}

/// Which of `keys` a file row names (the file sweep keeps those). Every firm's: the sweep
/// runs for the whole store.
pub async fn named_keys(db: &mut DbConn<'_>, keys: &[String]) -> DbResult<Vec<String>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    Ok(with_conn!(db, |c| answer_files::table
        .filter(answer_files::storage_key.eq_any(keys))
        .select(answer_files::storage_key)
        .load(c)
        .await)?)
}
