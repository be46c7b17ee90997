//! The file sweep: deletes objects of the document store that nothing names any more. Files
//! are written to the store before the transaction that records them (`ops::documents::
//! stage_file`, a held reply's raw copy in `ops::replies`), and a refusal deletes them at
//! once; a crash between the write and the commit (or a failed delete after a decision) leaves
//! an object no row names. The sweep lists the objects under the prefixes Rappel writes
//! ([`SWEPT_PREFIXES`]), keeps those an `answer_files` or `inbound_messages` row names and
//! those younger than the safe age (an upload being recorded now), and deletes the rest, each
//! deletion logged. Run daily by the scheduler and by `rappel sweep files [--dry-run]`.
//!
//! Never here: an object outside those prefixes (the store may share a bucket), a listing held
//! whole (keys are checked in batches), SQL (`crate::db::files`, `crate::db::replies`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;

use super::documents::store_error;
use super::{Env, OpError};
use crate::db::{files, replies};

/// The folders of the store Rappel writes to: staged and recorded answer files, and held
/// replies' raw copies.
pub const SWEPT_PREFIXES: [&str; 2] = ["staging", "inbound"];

/// The youngest an object may be and still be swept: writing a file and committing its row
/// take seconds, and a message claim goes stale after `ops::replies::STALE_CLAIM_MINUTES`.
pub const MIN_SAFE_AGE_HOURS: i64 = 1;

/// Keys checked against the database per statement.
const BATCH: usize = 500;

/// Keys kept in the report (the CLI prints them).
const SAMPLE: usize = 100;

/// What one sweep found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Objects listed under the swept prefixes.
    pub examined: usize,
    /// Objects no row names, older than the safe age.
    pub orphans: usize,
    /// Their total size, in bytes.
    pub orphan_bytes: u64,
    /// Orphans deleted (none on a dry run).
    pub deleted: usize,
    /// Orphans whose deletion failed (left for the next sweep).
    pub failed: usize,
    /// The first orphans' keys.
    pub sample: Vec<String>,
}

/// Lists the swept prefixes and deletes (unless `dry_run`) every object older than `min_age`
/// at `now` that no answer file or held reply names. `min_age` below
/// [`MIN_SAFE_AGE_HOURS`] is refused: it could delete a file whose answer is being recorded.
pub async fn sweep_files(
    env: Env<'_>,
    now: DateTime<Utc>,
    min_age: chrono::Duration,
    dry_run: bool,
) -> Result<SweepReport, OpError> {
    if min_age < chrono::Duration::hours(MIN_SAFE_AGE_HOURS) {
        return Err(OpError::bad_input(
            "olderThan",
            format!("the sweep only deletes objects at least {MIN_SAFE_AGE_HOURS} hour old"),
        ));
    }
    let storage = env
        .storage
        .ok_or_else(|| OpError::bad_input("storage", "no document store to sweep"))?;
    let cutoff = now - min_age;
    let mut report = SweepReport::default();
    for prefix in SWEPT_PREFIXES {
        let mut listing = storage.list(prefix).chunks(BATCH);
        while let Some(batch) = listing.next().await {
            let mut old = Vec::with_capacity(batch.len());
            for object in batch {
                let object = object.map_err(store_error)?;
                report.examined += 1;
                if object.last_modified <= cutoff {
                    old.push(object);
                }
            }
            if old.is_empty() {
                continue;
            }
            let keys: Vec<String> = old.iter().map(|object| object.key.clone()).collect();
            let named: HashSet<String> = {
                let mut conn = env.pool.get().await?;
                let mut named = files::named_keys(&mut conn.as_db(), &keys).await?;
                named.extend(replies::kept_raw_keys(&mut conn.as_db(), &keys).await?);
                named.into_iter().collect()
            };
            for object in old {
                if named.contains(&object.key) {
                    continue;
                }
                report.orphans += 1;
                report.orphan_bytes = report.orphan_bytes.saturating_add(object.size);
                if report.sample.len() < SAMPLE {
                    report.sample.push(object.key.clone());
                }
                if dry_run {
                    continue;
                }
                // Deleted before another pass could see a row name it: a file is named by its
                // answer's transaction within seconds of being written, never a day later.
                match storage.delete(&object.key).await {
                    Ok(()) => {
                        report.deleted += 1;
                        tracing::info!(
                            key = %object.key,
                            size = object.size,
                            written = %object.last_modified,
                            "file sweep: deleted an object no answer or held reply names"
                        );
                    }
                    Err(error) => {
                        report.failed += 1;
                        tracing::warn!(%error, key = %object.key, "file sweep: cannot delete an orphaned object");
                    }
                }
            }
        }
    }
    tracing::info!(
        examined = report.examined,
        orphans = report.orphans,
        orphan_bytes = report.orphan_bytes,
        deleted = report.deleted,
        failed = report.failed,
        dry_run,
        "file sweep done"
    );
    Ok(report)
}
