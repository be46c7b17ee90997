//! Documents a client's contact deposits with an answer: each file is streamed into the
//! document store under a staging key ([`stage_file`]) while its size is counted, its SHA-256
//! computed and its real type read from its first bytes; `ops::answers::answer_request` then
//! records the answer and a row per file in one transaction. Downloads are checked by
//! [`file_for_download`], one function for every kind of caller.
//!
//! Never here: a whole file in memory (only the first bytes are kept, to read the type), a
//! file kept after a refusal (what was written is deleted), HTTP or GraphQL types.

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};

use super::{Actor, Env, OpError, found};
use crate::db::files::{self, AnswerFile};
use crate::db::work;
use crate::domain::RequestStatus;
use crate::storage::{Storage, UploadLimits, Writing};

/// How many leading bytes are kept to read a file's type.
const SNIFF_BYTES: usize = 64 * 1024;
/// The longest display name kept, in characters.
const MAX_NAME_CHARS: usize = 200;

/// A file written to the store and checked, not yet linked to an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    /// Where its bytes are in the store.
    pub key: String,
    /// The original name, sanitised.
    pub name: String,
    pub size: i64,
    /// The type read from its bytes.
    pub media_type: String,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

/// Who asks for a file: the door resolves its caller (a staff bearer token, a contact's
/// bearer token, a portal session) to one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileReader {
    /// A member of the firm (or the system): any file of the firm.
    Staff { firm_id: i64 },
    /// A contact: files of its own client's requests only.
    Contact { firm_id: i64, client_id: i64 },
}

impl From<&Actor> for FileReader {
    fn from(actor: &Actor) -> Self {
        match *actor {
            Actor::Staff { firm_id, .. } | Actor::System { firm_id } => Self::Staff { firm_id },
            Actor::Contact {
                firm_id, client_id, ..
            } => Self::Contact { firm_id, client_id },
        }
    }
}

/// The file `id` if `reader` may download it; NOT_FOUND otherwise, exactly as a missing one.
pub async fn file_for_download(
    env: Env<'_>,
    reader: FileReader,
    id: i64,
) -> Result<AnswerFile, OpError> {
    let (firm_id, client_id) = match reader {
        FileReader::Staff { firm_id } => (firm_id, None),
        FileReader::Contact { firm_id, client_id } => (firm_id, Some(client_id)),
    };
    let mut conn = env.pool.get().await?;
    found(
        files::find(&mut conn.as_db(), firm_id, client_id, id).await,
        "file",
    )
}

/// The store, or a refusal when this door was given none.
fn storage<'a>(env: &Env<'a>) -> Result<&'a Storage, OpError> {
    env.storage
        .ok_or_else(|| OpError::bad_input("files", "this server does not accept files"))
}

/// The most files one answer may carry.
pub fn max_files(env: &Env<'_>) -> usize {
    env.storage.map_or(20, |storage| storage.limits.max_files)
}

/// Streams one file of the contact into the store for an answer to `request_id`: checks the
/// request is its client's and open or answered, then writes the bytes part by part while
/// counting them (the declared length is never trusted), hashing them and reading their type.
/// A refusal (too large, a type not allowed, a cut-off upload) deletes what was written and
/// answers BAD_USER_INPUT on `files`.
pub async fn stage_file<S>(
    env: Env<'_>,
    actor: &Actor,
    request_id: i64,
    name: &str,
    mut body: S,
) -> Result<StagedFile, OpError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin,
{
    let contact = actor.contact()?;
    let storage = storage(&env)?;
    {
        let mut conn = env.pool.get().await?;
        let request = found(
            work::find_client_request(
                &mut conn.as_db(),
                contact.firm_id,
                contact.client_id,
                request_id,
            )
            .await,
            "request",
        )?;
        check_answerable(request.status)?;
    }
    let name = display_name(name);
    let key = format!(
        "staging/{}/{}/{}",
        contact.firm_id,
        contact.client_id,
        uuid::Uuid::new_v4().simple()
    );
    let writing = storage.begin(&key).await.map_err(store_error)?;
    let mut upload = Upload {
        writing,
        limits: &storage.limits,
        name: &name,
        hasher: Sha256::new(),
        size: 0,
        sniffed: Vec::new(),
        media_type: None,
    };
    let outcome = upload.take_all(&mut body).await;
    let Upload {
        writing,
        hasher,
        size,
        media_type,
        ..
    } = upload;
    match outcome {
        Ok(()) => {}
        Err(error) => {
            if let Err(abort) = writing.abort().await {
                tracing::warn!(%abort, "cannot abort a refused upload");
            }
            delete_quietly(storage, &key).await;
            return Err(error);
        }
    }
    if let Err(error) = writing.finish().await {
        delete_quietly(storage, &key).await;
        return Err(store_error(error));
    }
    Ok(StagedFile {
        key,
        name,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        media_type: media_type.unwrap_or_default(),
        sha256: format!("{:x}", hasher.finalize()),
    })
}

/// Deletes staged files that will not be recorded (a refused answer, a later file refused).
pub async fn discard(env: Env<'_>, files: &[StagedFile]) {
    let Some(storage) = env.storage else {
        return;
    };
    for file in files {
        delete_quietly(storage, &file.key).await;
    }
}

async fn delete_quietly(storage: &Storage, key: &str) {
    if let Err(error) = storage.delete(key).await {
        tracing::error!(%error, key, "cannot delete a refused file from the store");
    }
}

/// A failure of the document store, as operations report it (logged, never shown).
pub(crate) fn store_error(error: object_store::Error) -> OpError {
    OpError::Internal(format!("document store: {error}"))
}

/// A closed or withdrawn request takes no answer and no file.
pub(crate) fn check_answerable(status: RequestStatus) -> Result<(), OpError> {
    if matches!(status, RequestStatus::Open | RequestStatus::Answered) {
        Ok(())
    } else {
        Err(OpError::bad_input(
            "id",
            "this request is closed; contact the firm if something is missing",
        ))
    }
}

/// One file being received.
struct Upload<'a> {
    writing: Writing,
    limits: &'a UploadLimits,
    name: &'a str,
    hasher: Sha256,
    size: u64,
    sniffed: Vec<u8>,
    media_type: Option<String>,
}

impl Upload<'_> {
    async fn take_all<S>(&mut self, body: &mut S) -> Result<(), OpError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin,
    {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| {
                OpError::bad_input(
                    "files",
                    format!("the upload of {} was cut off: {error}", self.name),
                )
            })?;
            self.size = self.size.saturating_add(chunk.len() as u64);
            if self.size > self.limits.max_file_bytes {
                return Err(too_large(self.name, self.limits));
            }
            self.hasher.update(&chunk);
            if self.sniffed.len() < SNIFF_BYTES {
                let room = SNIFF_BYTES - self.sniffed.len();
                self.sniffed
                    .extend_from_slice(&chunk[..chunk.len().min(room)]);
                if self.sniffed.len() == SNIFF_BYTES {
                    self.media_type = Some(checked_type(self.name, &self.sniffed, self.limits)?);
                }
            }
            self.writing.write(&chunk).await.map_err(store_error)?;
        }
        if self.size == 0 {
            return Err(OpError::bad_input(
                "files",
                format!("{} is empty", self.name),
            ));
        }
        if self.media_type.is_none() {
            self.media_type = Some(checked_type(self.name, &self.sniffed, self.limits)?);
        }
        Ok(())
    }
}

/// The refusal of a file past the size limit.
pub fn too_large(name: &str, limits: &UploadLimits) -> OpError {
    OpError::bad_input(
        "files",
        format!(
            "{name} is larger than {} MB, the largest file accepted",
            limits.max_file_bytes / (1024 * 1024)
        ),
    )
}

/// The type of a file read from its first bytes, if the allow-list takes it.
fn checked_type(name: &str, first_bytes: &[u8], limits: &UploadLimits) -> Result<String, OpError> {
    let media_type = media_type_of(name, first_bytes);
    if limits.allows(&media_type) {
        Ok(media_type)
    } else {
        Err(OpError::bad_input(
            "files",
            format!(
                "{name} is not accepted: its content is {media_type}; send PDF, images, office \
                 documents, CSV, text or ZIP files"
            ),
        ))
    }
}

/// What the bytes are, whatever the name says; text (no magic number) is `text/csv` when
/// the name ends in `.csv`, `text/plain` otherwise; unknown binary is
/// `application/octet-stream`.
pub fn media_type_of(name: &str, first_bytes: &[u8]) -> String {
    if let Some(kind) = infer::get(first_bytes) {
        return kind.mime_type().to_string();
    }
    if looks_like_text(first_bytes) {
        if name.to_ascii_lowercase().ends_with(".csv") {
            "text/csv".into()
        } else {
            "text/plain".into()
        }
    } else {
        "application/octet-stream".into()
    }
}

/// UTF-8 without NUL or other control bytes than tab, CR, LF and form feed (a character
/// cut at the end of the sample is fine).
fn looks_like_text(bytes: &[u8]) -> bool {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none(),
    };
    valid
        && !bytes
            .iter()
            .any(|b| b.is_ascii_control() && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
}

/// A file name for display: its last path component, without control characters, trimmed,
/// at most 200 characters; `file` when nothing is left.
pub fn display_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_folders_and_control_characters() {
        assert_eq!(display_name("C:\\Users\\me\\relevé.pdf"), "relevé.pdf");
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("a\u{0}b\r\n.pdf"), "ab.pdf");
        assert_eq!(display_name("  "), "file");
        assert_eq!(display_name("..."), "file");
        assert_eq!(display_name(&"x".repeat(500)).chars().count(), 200);
    }

    #[test]
    fn the_type_comes_from_the_bytes_not_the_name() {
        assert_eq!(media_type_of("a.pdf", b"%PDF-1.7\n..."), "application/pdf");
        let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
        elf.resize(128, 0);
        assert!(
            !UploadLimits::from_config(&crate::config::StorageConfig::default())
                .allows(&media_type_of("a.pdf", &elf))
        );
        assert_eq!(media_type_of("a.csv", b"a;b\n1;2\n"), "text/csv");
        assert_eq!(media_type_of("a.txt", "déjà".as_bytes()), "text/plain");
        assert_eq!(
            media_type_of("a.pdf", b"\0\x01\x02\x03"),
            "application/octet-stream"
        );
        let limits = UploadLimits::from_config(&crate::config::StorageConfig::default());
        let windows_exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0";
        assert!(checked_type("setup.pdf", windows_exe, &limits).is_err());
        assert!(checked_type("photo.jpg", b"\xff\xd8\xff\xe0\0\x10JFIF\0", &limits).is_ok());
    }
}
