//! The `documents` repository. Each write is one statement, so concurrent workers handling the
//! same event cannot interleave a read and a write: the unique (bucket, file_key) constraint and
//! `ON CONFLICT` settle it inside PostgreSQL. The same statement appends the attempt to the audit
//! trail, so recording an object's outcome costs one round trip.

use std::sync::LazyLock;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, PgPool};

use crate::gate::ScanVerdict;
use crate::reconcile::RowFacts;
use crate::{Document, ObjectFacts, Outcome};

/// The schema, embedded in the binary so `docworker migrate` needs no files beside it.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The message and attempt a write belongs to, recorded beside it in the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct Trail<'a> {
    pub message_id: &'a str,
    pub attempt: i32,
    /// When processing of the object began: the audit row records the time until the write.
    pub started: Instant,
    /// The message was enqueued by `docworker replay`: the row keeps its `uploaded_at`, and the
    /// audit row says it was a replay.
    pub replayed: bool,
    /// Set when the write was decided from S3's answer about the key's current version rather
    /// than from a sequencer: the row as it was read before S3 was asked.
    pub seen: Option<Seen>,
}

/// The row as a decision saw it. The write then applies only if the row is still as seen, or
/// already holds the version being written: a newer version written in between (its own event
/// processed meanwhile) is never replaced by a decision made before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The row's `updated_at`; `None` when there was no row.
    pub updated_at: Option<DateTime<Utc>>,
}

/// What a removal is weighed against: the row's version, status and last write.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RowState {
    pub version_id: Option<String>,
    pub status: String,
    pub updated_at: DateTime<Utc>,
}

/// Whether a write took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Written,
    /// The row already holds the outcome of a newer event for this key (by S3 sequencer).
    Stale,
}

/// [`DocumentStore::reconcile_page`]'s statement: `$1` bucket, `$2` prefix, `$3` the key to
/// start after, `$4` the pending threshold in seconds, `$5` the page size.
pub const RECONCILE_PAGE: &str = r#"
SELECT file_key, status, etag, version_id, file_size, uploaded_at, created_at, updated_at,
       status = 'pending' AND created_at < now() - make_interval(secs => $4) AS stale_pending
FROM documents
WHERE bucket = $1 AND file_key COLLATE "C" >= $2 AND file_key COLLATE "C" > $3
ORDER BY file_key COLLATE "C"
LIMIT $5
"#;

#[derive(Clone)]
pub struct DocumentStore {
    pool: PgPool,
}

const UPSERT: &str = r#"
INSERT INTO documents AS d (
    bucket, file_key, category, title, description, original_filename, uploaded_by, case_id,
    declared_content_type, content_type, file_size, sha256, etag, version_id, sequencer,
    status, rejection_reason, rejection_label,
    study_instance_uid, series_instance_uid, sop_instance_uid, sop_class_uid, modality,
    patient_id, study_date, transfer_syntax_uid, dicom, integrity,
    uploaded_at, processed_at, processor_version, scan)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $31,
        $18, $19, $20, $21, $22, $23, $24, $25, $26::jsonb, $27, $28, now(), $29, $32)
ON CONFLICT (bucket, file_key) DO UPDATE SET
    category              = EXCLUDED.category,
    title                 = COALESCE(d.title, EXCLUDED.title),
    description           = COALESCE(d.description, EXCLUDED.description),
    original_filename     = COALESCE(d.original_filename, EXCLUDED.original_filename),
    uploaded_by           = COALESCE(d.uploaded_by, EXCLUDED.uploaded_by),
    case_id               = COALESCE(d.case_id, EXCLUDED.case_id),
    declared_content_type = EXCLUDED.declared_content_type,
    content_type          = EXCLUDED.content_type,
    file_size             = EXCLUDED.file_size,
    sha256                = EXCLUDED.sha256,
    etag                  = EXCLUDED.etag,
    version_id            = EXCLUDED.version_id,
    sequencer             = COALESCE(EXCLUDED.sequencer, d.sequencer),
    status                = EXCLUDED.status,
    rejection_reason      = EXCLUDED.rejection_reason,
    -- $31: the rejection's label, what notifications carry instead of the reason's text.
    rejection_label       = EXCLUDED.rejection_label,
    study_instance_uid    = EXCLUDED.study_instance_uid,
    series_instance_uid   = EXCLUDED.series_instance_uid,
    sop_instance_uid      = EXCLUDED.sop_instance_uid,
    sop_class_uid         = EXCLUDED.sop_class_uid,
    modality              = EXCLUDED.modality,
    patient_id            = EXCLUDED.patient_id,
    study_date            = EXCLUDED.study_date,
    transfer_syntax_uid   = EXCLUDED.transfer_syntax_uid,
    dicom                 = EXCLUDED.dicom,
    integrity             = EXCLUDED.integrity,
    -- $30: replayed. A replay happens long after the upload; the row keeps when S3 stored it.
    uploaded_at           = CASE WHEN $30 THEN COALESCE(d.uploaded_at, EXCLUDED.uploaded_at)
                                 ELSE EXCLUDED.uploaded_at END,
    processed_at          = EXCLUDED.processed_at,
    processor_version     = EXCLUDED.processor_version,
    -- $32: the malware scan's verdict.
    scan                  = EXCLUDED.scan,
    updated_at            = now()
"#;
static UPSERT_AUDITED: LazyLock<String> = LazyLock::new(|| audited(UPSERT, 33));

const MARK_DELETED: &str = r#"
INSERT INTO documents AS d (bucket, file_key, category, status, sequencer, etag, version_id,
                            processed_at, processor_version)
VALUES ($1, $2, $3, 'deleted', $4, $5, $6, now(), $7)
ON CONFLICT (bucket, file_key) DO UPDATE SET
    status = 'deleted',
    rejection_reason = NULL,
    rejection_label = NULL,
    sequencer = COALESCE(EXCLUDED.sequencer, d.sequencer),
    processed_at = EXCLUDED.processed_at,
    processor_version = EXCLUDED.processor_version,
    updated_at = now()
"#;
static MARK_DELETED_AUDITED: LazyLock<String> = LazyLock::new(|| audited(MARK_DELETED, 8));

/// Completes an upsert into `documents` (whose `$1`, `$2` are bucket and key, ending in its
/// `DO UPDATE SET` list) with the sequencer guard, under which an event older than the row's
/// changes nothing, and the [`Seen`] guard when the trail carries one; and has the same
/// statement append the attempt to `document_events`: `$first` message id, then attempt,
/// duration (ms), outcome, reason, replayed, then whether the row was seen and its `updated_at`
/// then. A write a guard refused is recorded as `stale`. The statement returns whether the write took effect.
/// Built only from this module's constants, so the SQL is as safe as a literal.
fn audited(upsert: &str, first: usize) -> String {
    let [
        message_id,
        attempt,
        duration_ms,
        outcome,
        reason,
        replayed,
        seen,
        seen_updated_at,
    ] = std::array::from_fn(|i| format!("${}", first + i));
    format!(
        "WITH written AS (
             {upsert}
             WHERE (d.sequencer IS NULL OR EXCLUDED.sequencer IS NULL
                    OR docworker_sequencer_le(d.sequencer, EXCLUDED.sequencer))
               AND (NOT {seen}
                    OR d.version_id = EXCLUDED.version_id
                    OR d.updated_at IS NOT DISTINCT FROM {seen_updated_at}::timestamptz)
             RETURNING id
         ),
         logged AS (
             INSERT INTO document_events
                 (bucket, file_key, message_id, attempt, outcome, reason, duration_ms, replayed)
             SELECT $1, $2, {message_id}, {attempt},
                    CASE WHEN EXISTS (SELECT FROM written) THEN {outcome} ELSE 'stale' END,
                    CASE WHEN EXISTS (SELECT FROM written) THEN {reason} END,
                    {duration_ms}, {replayed}
         )
         SELECT EXISTS (SELECT FROM written)"
    )
}

impl DocumentStore {
    pub fn new(pool: PgPool) -> DocumentStore {
        DocumentStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Writes the outcome of processing one object: finalizes or rejects a pending row in place
    /// (keeping what the upload path wrote), or inserts the row. Writing the same outcome twice
    /// leaves the same row; an outcome older than the row's (by sequencer) is not applied. The
    /// row says `scan: not configured`: see [`record_scanned`](Self::record_scanned).
    pub async fn record(
        &self,
        facts: &ObjectFacts,
        outcome: &Outcome,
        processor_version: &str,
        trail: Trail<'_>,
    ) -> Result<Applied, sqlx::Error> {
        self.record_scanned(
            facts,
            outcome,
            Some(&ScanVerdict::NotConfigured),
            processor_version,
            trail,
        )
        .await
    }

    /// [`record`](Self::record), with the malware scan's verdict in the row's `scan` column
    /// (`None`, NULL: refused before any byte was read, so not scanned).
    pub async fn record_scanned(
        &self,
        facts: &ObjectFacts,
        outcome: &Outcome,
        scan: Option<&ScanVerdict>,
        processor_version: &str,
        trail: Trail<'_>,
    ) -> Result<Applied, sqlx::Error> {
        let (content_type, sha256, integrity, reason, label, dicom) = match outcome {
            Outcome::Finalized(f) => (
                Some(f.content_type),
                Some(f.sha256.as_str()),
                Some(f.integrity.as_str()),
                None,
                None,
                f.dicom.as_ref(),
            ),
            Outcome::Rejected {
                reason,
                content_type,
                sha256,
            } => (
                *content_type,
                sha256.as_deref(),
                None,
                Some(reason.to_string()),
                Some(reason.label()),
                None,
            ),
        };
        let size = facts
            .file_size
            .map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        let status = outcome.status().as_str();
        let reason = reason.as_deref();
        let written: bool = sqlx::query_scalar(AssertSqlSafe(UPSERT_AUDITED.as_str()))
            .bind(&facts.bucket)
            .bind(&facts.key)
            .bind(facts.category.as_str())
            .bind(&facts.upload.title)
            .bind(&facts.upload.description)
            .bind(&facts.upload.original_filename)
            .bind(&facts.upload.uploaded_by)
            .bind(&facts.upload.case_id)
            .bind(&facts.declared_content_type)
            .bind(content_type)
            .bind(size)
            .bind(sha256)
            .bind(&facts.etag)
            .bind(&facts.version_id)
            .bind(&facts.sequencer)
            .bind(status)
            .bind(reason)
            .bind(dicom.map(|d| &d.study_instance_uid))
            .bind(dicom.and_then(|d| d.series_instance_uid.as_ref()))
            .bind(dicom.map(|d| &d.sop_instance_uid))
            .bind(dicom.and_then(|d| d.sop_class_uid.as_ref()))
            .bind(dicom.and_then(|d| d.modality.as_ref()))
            .bind(dicom.and_then(|d| d.patient_id.as_ref()))
            .bind(dicom.and_then(|d| d.study_date))
            .bind(dicom.map(|d| &d.transfer_syntax_uid))
            .bind(dicom.map(|d| &d.json))
            .bind(integrity)
            .bind(facts.uploaded_at)
            .bind(processor_version)
            .bind(trail.replayed)
            .bind(label)
            .bind(scan.map(ScanVerdict::row_value))
            .bind(trail.message_id)
            .bind(trail.attempt)
            .bind(trail.elapsed_ms())
            .bind(status)
            .bind(reason)
            .bind(trail.replayed)
            .bind(trail.seen.is_some())
            .bind(trail.seen.and_then(|s| s.updated_at))
            .fetch_one(&self.pool)
            .await?;
        Ok(applied(written))
    }

    /// Marks the row of a removed object `deleted`, inserting one if the object was never seen,
    /// so that a late, older `ObjectCreated` cannot bring it back. `outcome` is what the audit
    /// trail calls it (a removal event, or an object found gone).
    pub async fn mark_deleted(
        &self,
        facts: &ObjectFacts,
        processor_version: &str,
        trail: Trail<'_>,
        outcome: &str,
    ) -> Result<Applied, sqlx::Error> {
        let written: bool = sqlx::query_scalar(AssertSqlSafe(MARK_DELETED_AUDITED.as_str()))
            .bind(&facts.bucket)
            .bind(&facts.key)
            .bind(facts.category.as_str())
            .bind(&facts.sequencer)
            .bind(&facts.etag)
            .bind(&facts.version_id)
            .bind(processor_version)
            .bind(trail.message_id)
            .bind(trail.attempt)
            .bind(trail.elapsed_ms())
            .bind(outcome)
            .bind(None::<&str>)
            .bind(trail.replayed)
            .bind(trail.seen.is_some())
            .bind(trail.seen.and_then(|s| s.updated_at))
            .fetch_one(&self.pool)
            .await?;
        Ok(applied(written))
    }

    /// The row's state, read before asking S3 what the key holds now (see [`Seen`]).
    pub async fn row_state(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<RowState>, sqlx::Error> {
        sqlx::query_as(
            "SELECT version_id, status, updated_at FROM documents WHERE bucket = $1 AND file_key = $2",
        )
        .bind(bucket)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Document>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM documents WHERE bucket = $1 AND file_key = $2")
            .bind(bucket)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
    }

    /// Appends one processing attempt to the audit trail, for attempts that wrote no row (an
    /// ignored or superseded event, a failure, a poison message). `object` (bucket, key) is
    /// absent for a message that could not be read as an event.
    pub async fn record_attempt(
        &self,
        trail: Trail<'_>,
        object: Option<(&str, &str)>,
        outcome: &str,
        reason: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO document_events
                 (bucket, file_key, message_id, attempt, outcome, reason, duration_ms, replayed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(object.map(|(bucket, _)| bucket))
        .bind(object.map(|(_, key)| key))
        .bind(trail.message_id)
        .bind(trail.attempt)
        .bind(outcome)
        .bind(reason)
        .bind(trail.elapsed_ms())
        .bind(trail.replayed)
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// The latest attempt recorded for a key, or else for a message: what a DLQ entry is about.
    pub async fn last_attempt(
        &self,
        bucket: Option<&str>,
        key: Option<&str>,
        message_id: &str,
    ) -> Result<Option<(String, Option<String>, chrono::DateTime<chrono::Utc>)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT outcome, reason, at FROM document_events
             WHERE (bucket = $1 AND file_key = $2) OR message_id = $3
             ORDER BY at DESC, id DESC LIMIT 1",
        )
        .bind(bucket)
        .bind(key)
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// One page of a bucket's rows for reconciliation, in the order S3 lists keys (byte-wise:
    /// `COLLATE "C"`, served by the `documents_bucket_key_c` index), from the first key after
    /// `after` that is not before `prefix`. A page can run past the prefix: the caller stops at
    /// the first key outside it. `stale_after` decides [`RowFacts::stale_pending`].
    pub async fn reconcile_page(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        stale_after: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<RowFacts>, sqlx::Error> {
        sqlx::query_as(RECONCILE_PAGE)
            .bind(bucket)
            .bind(prefix)
            .bind(after)
            .bind(stale_after.as_secs_f64())
            .bind(limit)
            .fetch_all(&self.pool)
            .await
    }

    /// Rows `pending` for longer than `stale_after` (since the upload path created them), in
    /// every bucket: uploads that never completed, or whose event was lost. Served by the
    /// partial index `documents_pending_created`.
    pub async fn count_stale_pending(
        &self,
        stale_after: std::time::Duration,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT count(*) FROM documents
             WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1)",
        )
        .bind(stale_after.as_secs_f64())
        .fetch_one(&self.pool)
        .await
    }

    /// Cheap round trip for readiness checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
    }
}

impl Trail<'_> {
    fn elapsed_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

fn applied(written: bool) -> Applied {
    if written {
        Applied::Written
    } else {
        Applied::Stale
    }
}
