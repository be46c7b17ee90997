//! Deposited documents in the API: the firm view's `AnswerFile` (on each answer, and the
//! firm-wide `files` list), the client view's `ClientAnswerFile` (on its own answers), and the
//! uploads `answerRequest` takes (the GraphQL multipart request spec). Each file is shown with
//! a download URL (`GET /files/{id}`, checked there like every read); the bytes never travel
//! through GraphQL. No diesel and no rule here: reads go through `crate::db::files` scoped by
//! the caller, uploads through `crate::ops::documents`.

use async_graphql::{Context, ID, Object, SimpleObject, Upload};
use bytes::Bytes;
use futures_util::Stream;
use tokio::io::AsyncReadExt as _;

use crate::db::files::AnswerFile as FileRow;
use crate::domain::gid::Kind;
use crate::error::AppError;
use crate::graphql::context::{Caller, StaffGuard, caller, gid, visible_to_staff};
use crate::graphql::firm::types::utc;
use crate::graphql::loaders::{FilesOf, client_loader, firm_loader, list};
use crate::graphql::scalars::DateTime;
use crate::ops::documents::{self, StagedFile};
use crate::ops::{Actor, Env, OpError};

/// The address users reach the server at (`public_base_url`), for download URLs; without it
/// URLs are paths (`/files/12`).
#[derive(Debug, Clone, Default)]
pub struct PublicBaseUrl(pub String);

/// The download URL of file `id` as the caller's request can reach it.
pub fn download_url(ctx: &Context<'_>, id: i64) -> String {
    let base = ctx
        .data_opt::<PublicBaseUrl>()
        .map(|base| base.0.trim_end_matches('/'))
        .unwrap_or_default();
    format!("{base}/files/{id}")
}

/// A file of an answer, as the firm sees it.
pub struct AnswerFile(pub FileRow);

/// A document a client's contact deposited with an answer. Download it with
/// `GET downloadUrl` and the same bearer token.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl AnswerFile {
    /// The file's id.
    async fn id(&self) -> ID {
        gid(Kind::AnswerFile, self.0.id)
    }
    /// The name the file was sent with (without folders or control characters).
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Its size in bytes.
    async fn size(&self) -> i64 {
        self.0.size_bytes
    }
    /// Its media type, read from its bytes (not from its name).
    async fn media_type(&self) -> &str {
        &self.0.media_type
    }
    /// SHA-256 of its bytes, lowercase hex: compare it with the download's.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// When it was deposited.
    async fn created_at(&self) -> DateTime {
        utc(self.0.created_at)
    }
    /// The request it answers.
    async fn request_id(&self) -> ID {
        gid(Kind::InformationRequest, self.0.request_id)
    }
    /// The client who sent it.
    async fn client_id(&self) -> ID {
        gid(Kind::Client, self.0.client_id)
    }
    /// The answer it came with.
    async fn answer_id(&self) -> ID {
        gid(Kind::RequestAnswer, self.0.answer_id)
    }
    /// Where to download it (GET with the firm's bearer token): `Content-Disposition:
    /// attachment` with its name.
    async fn download_url(&self, ctx: &Context<'_>) -> String {
        download_url(ctx, self.0.id)
    }
}

/// A document the client deposited, as the client sees it.
#[derive(SimpleObject)]
pub struct ClientAnswerFile {
    /// The file's id.
    pub id: ID,
    /// The name the file was sent with.
    pub name: String,
    /// Its size in bytes.
    pub size: i64,
    /// Its media type, read from its bytes.
    pub media_type: String,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
    /// Where to download it (GET with the same bearer token).
    pub download_url: String,
}

/// The files of an answer as the caller may see them: staff read the firm's, contacts their
/// client's. Through the request's loaders, so the answers of a page read their files in one
/// statement.
pub async fn files_of_answer(
    ctx: &Context<'_>,
    answer_id: i64,
) -> async_graphql::Result<Vec<FileRow>> {
    match caller(ctx) {
        Caller::Staff(_) => list(firm_loader(ctx)?, FilesOf(answer_id)).await,
        Caller::Contact(_) => list(client_loader(ctx)?, FilesOf(answer_id)).await,
        Caller::Anonymous => Err(AppError::Unauthenticated.into()),
    }
}

/// The client view of a file row.
pub fn client_file(ctx: &Context<'_>, row: FileRow) -> ClientAnswerFile {
    ClientAnswerFile {
        id: gid(Kind::AnswerFile, row.id),
        download_url: download_url(ctx, row.id),
        name: row.name,
        size: row.size_bytes,
        media_type: row.media_type,
        sha256: row.sha256,
    }
}

/// Streams each upload into the store (`ops::documents::stage_file`); when one is refused,
/// the ones already staged are deleted and the refusal is returned.
pub async fn stage_uploads(
    ctx: &Context<'_>,
    env: Env<'_>,
    actor: &Actor,
    request_id: i64,
    uploads: Vec<Upload>,
) -> Result<Vec<StagedFile>, OpError> {
    let most = documents::max_files(&env);
    if uploads.len() > most {
        return Err(OpError::bad_input(
            "files",
            format!(
                "an answer may carry at most {most} files, this one has {}",
                uploads.len()
            ),
        ));
    }
    let mut staged = Vec::with_capacity(uploads.len());
    for upload in uploads {
        let value = match upload.value(ctx) {
            Ok(value) => value,
            Err(_) => {
                documents::discard(env, &staged).await;
                return Err(OpError::bad_input(
                    "files",
                    "a file named in the variables was not sent with the request",
                ));
            }
        };
        let body = file_stream(tokio::fs::File::from_std(value.content));
        match documents::stage_file(env, actor, request_id, &value.filename, body).await {
            Ok(file) => staged.push(file),
            Err(error) => {
                documents::discard(env, &staged).await;
                return Err(error);
            }
        }
    }
    Ok(staged)
}

/// A file read in 64 KiB chunks.
fn file_stream(
    file: tokio::fs::File,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
    Box::pin(futures_util::stream::try_unfold(
        file,
        |mut file| async move {
            let mut buffer = vec![0; 64 * 1024];
            let read = file.read(&mut buffer).await?;
            if read == 0 {
                return Ok(None);
            }
            buffer.truncate(read);
            Ok(Some((Bytes::from(buffer), file)))
        },
    ))
}
