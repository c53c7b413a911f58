//! Study completion, as Orthanc's stable-study event: a study that has received no new instance
//! for the quiet period is marked complete. The `studies_completed` trigger announces it (NOTIFY
//! on `docworker_studies`, an outbox row) in the same transaction, so the report is made once:
//! the statement claims due studies with `FOR UPDATE SKIP LOCKED` and sets `completed_at` only
//! where it is still unset, whichever worker gets there first. A new instance sets it back, and
//! the study is reported again after another quiet period.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::observe;

/// Studies marked complete per statement; more are due at once only after an outage.
const BATCH: i64 = 100;

/// How often due studies are looked for: a tenth of the quiet period, between 1 s and 30 s, so a
/// study is reported within about a tenth past its quiet period.
pub fn scan_interval(quiet: Duration) -> Duration {
    (quiet / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

pub async fn run(pool: PgPool, quiet: Duration, shutdown: CancellationToken) {
    let every = scan_interval(quiet);
    loop {
        match complete_due(&pool, quiet).await {
            Ok(0) => {}
            Ok(completed) => {
                info!(studies = completed, "studies reported complete");
                metrics::counter!(observe::names::STUDIES_COMPLETED).increment(completed);
                // A full batch: more may be due.
                if completed == BATCH as u64 {
                    continue;
                }
            }
            Err(e) => warn!(
                error = crate::error::database::describe(&e),
                "studies not checked for completion; trying again"
            ),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    debug!("study scanner stopped");
}

/// Marks complete the studies quiet for `quiet`, returning how many.
pub async fn complete_due(pool: &PgPool, quiet: Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE studies s SET completed_at = now()
         FROM (SELECT id FROM studies
               WHERE completed_at IS NULL AND instance_count > 0
                 AND changed_at <= now() - make_interval(secs => $1)
               ORDER BY changed_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
         WHERE s.id = due.id AND s.completed_at IS NULL",
    )
    .bind(quiet.as_secs_f64())
    .bind(BATCH)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_studies_are_looked_for_a_tenth_of_the_quiet_period_apart_within_bounds() {
        assert_eq!(
            scan_interval(Duration::from_secs(120)),
            Duration::from_secs(12)
        );
        assert_eq!(
            scan_interval(Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        assert_eq!(
            scan_interval(Duration::from_secs(3600)),
            Duration::from_secs(30)
        );
    }
}
