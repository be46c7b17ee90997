//! Automatic persisted queries (Apollo's `persistedQuery` extension, version 1): a client
//! sends `extensions.persistedQuery.sha256Hash` without the query text; an unknown hash
//! answers PERSISTED_QUERY_NOT_FOUND, and the client sends the text with its hash once, which
//! is kept (a bounded LRU, `[graphql] persisted_queries` documents). The text is put back into
//! the request before anything else runs, so the document limits, the input checks and the
//! GET-means-no-mutation rule apply to a persisted query exactly as to a written one. It never
//! keeps a text whose hash does not match, nor one past `max_document_bytes`.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::{ErrorExtensionValues, Request, ServerError, ServerResult};
use sha2::{Digest, Sha256};

/// The persisted documents by the hex SHA-256 of their text; shared by the schema's extension
/// ([`super::pipeline`]) and the GET handler (which must know the operation before it runs).
#[derive(Clone)]
pub struct PersistedQueries {
    documents: Arc<Mutex<lru::LruCache<String, Arc<str>>>>,
    max_document_bytes: usize,
}

impl PersistedQueries {
    /// Keeps at most `capacity` documents (at least one) of at most `max_document_bytes`.
    pub fn new(capacity: usize, max_document_bytes: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            documents: Arc::new(Mutex::new(lru::LruCache::new(capacity))),
            max_document_bytes,
        }
    }

    /// Resolves the `persistedQuery` extension of `request`, if any: puts the kept text back
    /// (hash only) or keeps the given text (hash and text). The extension is removed, so a
    /// second call changes nothing.
    pub fn resolve(&self, request: &mut Request) -> ServerResult<()> {
        let Some(value) = request.extensions.remove("persistedQuery") else {
            return Ok(());
        };
        let json = value
            .into_json()
            .map_err(|_| refusal("BAD_USER_INPUT", "persistedQuery is not an object"))?;
        if json.get("version").and_then(serde_json::Value::as_i64) != Some(1) {
            return Err(refusal(
                "BAD_USER_INPUT",
                "only version 1 of persistedQuery is supported",
            ));
        }
        let Some(hash) = json.get("sha256Hash").and_then(serde_json::Value::as_str) else {
            return Err(refusal(
                "BAD_USER_INPUT",
                "persistedQuery needs sha256Hash, the hex SHA-256 of the query text",
            ));
        };
        let hash = hash.to_ascii_lowercase();
        let mut documents = self
            .documents
            .lock()
            .map_err(|_| refusal("INTERNAL", "the persisted query cache is unusable"))?;
        if request.query.is_empty() {
            let Some(text) = documents.get(&hash) else {
                return Err(refusal(
                    "PERSISTED_QUERY_NOT_FOUND",
                    "PersistedQueryNotFound",
                ));
            };
            request.query = text.to_string();
            return Ok(());
        }
        if format!("{:x}", Sha256::digest(request.query.as_bytes())) != hash {
            return Err(refusal(
                "BAD_USER_INPUT",
                "persistedQuery.sha256Hash is not the SHA-256 of the query text",
            ));
        }
        if request.query.len() <= self.max_document_bytes {
            documents.put(hash, Arc::from(request.query.as_str()));
        }
        Ok(())
    }
}

fn refusal(code: &str, message: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_hash(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        let extension = serde_json::json!({ "version": 1, "sha256Hash": hash });
        request.extensions.insert(
            "persistedQuery".into(),
            async_graphql::Value::from_json(extension).expect("a value"),
        );
        request
    }

    fn code(error: &ServerError) -> Option<String> {
        error
            .extensions
            .as_ref()
            .and_then(|values| values.get("code"))
            .map(|value| value.to_string().trim_matches('"').to_string())
    }

    #[test]
    fn a_hash_is_unknown_until_its_text_is_sent_once_and_the_cache_stays_bounded() {
        let cache = PersistedQueries::new(1, 100);
        let text = "{ __typename }";
        let hash = format!("{:x}", Sha256::digest(text.as_bytes()));
        let error = cache
            .resolve(&mut with_hash("", &hash))
            .expect_err("unknown");
        assert_eq!(code(&error).as_deref(), Some("PERSISTED_QUERY_NOT_FOUND"));
        let error = cache
            .resolve(&mut with_hash("{ a }", &hash))
            .expect_err("a hash of another text");
        assert_eq!(code(&error).as_deref(), Some("BAD_USER_INPUT"));
        cache.resolve(&mut with_hash(text, &hash)).expect("kept");
        let mut request = with_hash("", &hash);
        cache.resolve(&mut request).expect("found");
        assert_eq!(request.query, text);
        assert!(!request.extensions.contains_key("persistedQuery"));
        let other = "{ b }";
        let other_hash = format!("{:x}", Sha256::digest(other.as_bytes()));
        cache
            .resolve(&mut with_hash(other, &other_hash))
            .expect("kept");
        assert!(
            cache.resolve(&mut with_hash("", &hash)).is_err(),
            "one document at most: the older one is gone"
        );
        let long = format!("{{ {} }}", "a ".repeat(100));
        let long_hash = format!("{:x}", Sha256::digest(long.as_bytes()));
        cache
            .resolve(&mut with_hash(&long, &long_hash))
            .expect("runs");
        assert!(
            cache.resolve(&mut with_hash("", &long_hash)).is_err(),
            "a text past max_document_bytes is not kept"
        );
    }
}
