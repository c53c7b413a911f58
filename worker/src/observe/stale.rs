//! Drift seen without running `docworker reconcile`: the running worker counts, every minute,
//! the `pending` rows older than `DOCWORKER_PENDING_STALE_SECS` (uploads that never completed, or
//! whose event was lost) into the `docworker_stale_pending_rows` gauge, which an alert watches.

use std::time::Duration;

use docworker_shared::DocumentStore;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::error::database;
use crate::observe::names;

/// A minute: pending rows go stale over an hour, and the count is one scan of the partial index
/// of pending rows.
const EVERY: Duration = Duration::from_secs(60);

/// Counts until shutdown, the first time at once. A failed count leaves the last value and is
/// logged: the database's outage shows in readiness, not as drift.
pub async fn watch(store: DocumentStore, stale_after: Duration, shutdown: CancellationToken) {
    let gauge = metrics::gauge!(names::STALE_PENDING_ROWS);
    let mut every = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match store.count_stale_pending(stale_after).await {
            Ok(count) => gauge.set(count as f64),
            Err(e) => warn!(error = %database::describe(&e), "counting stale pending rows failed"),
        }
    }
}
