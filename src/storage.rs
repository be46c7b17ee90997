//! Where the bytes of deposited documents live: an `object_store` store, the local file system
//! under `data/files/` by default or any S3-compatible store (`[storage] url = "s3://..."`),
//! with the upload limits of `[storage]`. It moves bytes by key and nothing else: who may
//! write or read a file, its type and its size are decided by `crate::ops::documents`, and
//! its metadata lives in the database (`crate::db::files`).
//!
//! Never here: a whole file held in memory (writes go part by part, reads are streams), SQL,
//! or any rule about callers.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};

use crate::config::StorageConfig;

/// The document store and its upload limits (cheap to clone: the store is shared).
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Where it points, for logs and `config check` (no credentials).
    pub location: String,
    pub limits: UploadLimits,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("location", &self.location)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What a deposit may hold.
#[derive(Debug, Clone)]
pub struct UploadLimits {
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
    /// Most files in one answer.
    pub max_files: usize,
    /// Media types accepted (`type/*` for a family).
    pub allowed_types: Vec<String>,
}

impl UploadLimits {
    pub fn from_config(config: &StorageConfig) -> Self {
        Self {
            max_file_bytes: config.max_file_mb.saturating_mul(1024 * 1024),
            max_files: config.max_files_per_answer,
            allowed_types: config.allowed_types.clone(),
        }
    }

    /// True when `media_type` is on the allow-list.
    pub fn allows(&self, media_type: &str) -> bool {
        self.allowed_types.iter().any(|allowed| {
            allowed.eq_ignore_ascii_case(media_type)
                || allowed.strip_suffix("/*").is_some_and(|family| {
                    media_type
                        .split_once('/')
                        .is_some_and(|(kind, _)| kind.eq_ignore_ascii_case(family))
                })
        })
    }

    /// The largest body a multipart request may carry: every file at its largest, plus room
    /// for the operations and the map.
    pub fn max_request_bytes(&self) -> usize {
        let files = self.max_file_bytes.saturating_mul(self.max_files as u64);
        usize::try_from(files.saturating_add(1024 * 1024)).unwrap_or(usize::MAX)
    }
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// An object being written part by part; dropped without [`Writing::finish`] it leaves
/// nothing (call [`Writing::abort`] to clean up at once).
pub struct Writing {
    upload: WriteMultipart,
}

impl Writing {
    /// Adds bytes; waits when too many parts are in flight (memory stays bounded).
    pub async fn write(&mut self, bytes: &[u8]) -> object_store::Result<()> {
        self.upload.wait_for_capacity(4).await?;
        self.upload.write(bytes);
        Ok(())
    }

    /// Completes the object.
    pub async fn finish(self) -> object_store::Result<()> {
        self.upload.finish().await.map(|_| ())
    }

    /// Gives the object up: nothing is kept.
    pub async fn abort(self) -> object_store::Result<()> {
        self.upload.abort().await
    }
}

impl Storage {
    /// The store `[storage]` describes; a local folder is created when missing.
    pub fn from_config(config: &StorageConfig) -> anyhow::Result<Self> {
        let limits = UploadLimits::from_config(config);
        let url = config.url.trim();
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(!bucket.is_empty(), "storage.url names no bucket: {url}");
            let mut builder =
                object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            if !config.endpoint.is_empty() {
                builder = builder
                    .with_endpoint(config.endpoint.trim_end_matches('/'))
                    .with_allow_http(config.endpoint.starts_with("http://"));
            }
            if !config.region.is_empty() {
                builder = builder.with_region(&config.region);
            }
            let store = builder
                .build()
                .with_context(|| format!("cannot set up the S3 store {url}"))?;
            let prefix = prefix.trim_matches('/');
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(store)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
            };
            return Ok(Self {
                store,
                location: format!("s3://{bucket}/{prefix}"),
                limits,
            });
        }
        let folder = url.strip_prefix("file://").unwrap_or(url);
        anyhow::ensure!(!folder.is_empty(), "storage.url is empty");
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create the storage folder {folder}"))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(folder)
            .with_context(|| format!("cannot use the storage folder {folder}"))?;
        Ok(Self {
            store: Arc::new(store),
            location: folder.to_string(),
            limits,
        })
    }

    /// Starts writing the object `key`.
    pub async fn begin(&self, key: &str) -> object_store::Result<Writing> {
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        Ok(Writing {
            upload: WriteMultipart::new(upload),
        })
    }

    /// The bytes of `key`, as a stream.
    pub async fn read(
        &self,
        key: &str,
    ) -> object_store::Result<BoxStream<'static, Result<Bytes, std::io::Error>>> {
        let result = self.store.get(&Path::from(key)).await?;
        Ok(result
            .into_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed())
    }

    /// Deletes `key`; a missing object is no error.
    pub async fn delete(&self, key: &str) -> object_store::Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The objects whose keys start with the folder `prefix` (`staging`), each with its size
    /// and when it was written, as a stream (a listing is never held whole). Objects still being
    /// written are not listed.
    pub fn list(&self, prefix: &str) -> BoxStream<'static, object_store::Result<StoredObject>> {
        self.store
            .list(Some(&Path::from(prefix)))
            .map(|meta| {
                meta.map(|meta| StoredObject {
                    key: meta.location.to_string(),
                    size: meta.size,
                    last_modified: meta.last_modified,
                })
            })
            .boxed()
    }

    /// True when `key` holds an object.
    pub async fn exists(&self, key: &str) -> object_store::Result<bool> {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_takes_families_and_exact_types() {
        let limits = UploadLimits::from_config(&StorageConfig::default());
        assert!(limits.allows("application/pdf"));
        assert!(limits.allows("image/jpeg"));
        assert!(limits.allows("IMAGE/PNG"));
        assert!(!limits.allows("application/x-executable"));
        assert!(!limits.allows("application/vnd.microsoft.portable-executable"));
        assert_eq!(limits.max_file_bytes, 25 * 1024 * 1024);
    }

    #[tokio::test]
    async fn a_local_store_keeps_what_is_finished_and_nothing_aborted() {
        let folder = tempfile::tempdir().expect("folder");
        let config = StorageConfig {
            url: folder.path().join("files").display().to_string(),
            ..StorageConfig::default()
        };
        let storage = Storage::from_config(&config).expect("store");
        let mut writing = storage.begin("a/kept").await.expect("begin");
        writing.write(b"hello ").await.expect("write");
        writing.write(b"world").await.expect("write");
        writing.finish().await.expect("finish");
        let mut read = Vec::new();
        let mut stream = storage.read("a/kept").await.expect("read");
        while let Some(chunk) = stream.next().await {
            read.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(read, b"hello world");
        let mut writing = storage.begin("a/dropped").await.expect("begin");
        writing.write(b"partial").await.expect("write");
        writing.abort().await.expect("abort");
        assert!(!storage.exists("a/dropped").await.expect("head"));
        storage.delete("a/kept").await.expect("delete");
        assert!(!storage.exists("a/kept").await.expect("head"));
    }

    #[tokio::test]
    async fn a_listing_names_the_objects_under_its_prefix_only() {
        let folder = tempfile::tempdir().expect("folder");
        let config = StorageConfig {
            url: folder.path().join("files").display().to_string(),
            ..StorageConfig::default()
        };
        let storage = Storage::from_config(&config).expect("store");
        let listed = |prefix: &'static str| {
            let storage = storage.clone();
            async move {
                let mut keys: Vec<String> = storage
                    .list(prefix)
                    .map(|object| object.expect("listed").key)
                    .collect()
                    .await;
                keys.sort();
                keys
            }
        };
        assert!(
            listed("staging").await.is_empty(),
            "a missing folder lists nothing"
        );
        for key in [
            "staging/1/2/a",
            "staging/1/3/b",
            "stagingless/c",
            "inbound/1/d.eml",
        ] {
            let mut writing = storage.begin(key).await.expect("begin");
            writing.write(key.as_bytes()).await.expect("write");
            writing.finish().await.expect("finish");
        }
        let mut open = storage
            .begin("staging/1/2/unfinished")
            .await
            .expect("begin");
        open.write(b"partial").await.expect("write");
        assert_eq!(listed("staging").await, ["staging/1/2/a", "staging/1/3/b"]);
        assert_eq!(listed("inbound").await, ["inbound/1/d.eml"]);
        open.abort().await.expect("abort");
        let object = storage
            .list("inbound")
            .next()
            .await
            .expect("one")
            .expect("listed");
        assert_eq!(object.size, "inbound/1/d.eml".len() as u64);
        assert!(object.last_modified <= chrono::Utc::now());
    }
}
