//! Why processing an object failed, when the failure is not a verdict on the object.
//!
//! Verdicts (wrong type, oversize, corrupt DICOM…) are not errors here: they are
//! `Outcome::Rejected`, written to the row like any outcome. What remains is classified once,
//! and the consumer turns the class into the message's fate.

use thiserror::Error;

pub mod database;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Error)]
pub enum ProcessError {
    /// `detail` is the SDK's whole error chain, flattened: its `Display` alone says only
    /// "service error". `status` is the HTTP status S3 answered with, when it answered: a HEAD
    /// response has no body, so its 403, 404 and 412 come without an error code.
    #[error("S3 {operation} s3://{bucket}/{key} failed ({code}): {detail}")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        code: String,
        status: Option<u16>,
        detail: String,
    },
    #[error("reading s3://{bucket}/{key} failed after {bytes} bytes: {source}")]
    Body {
        bucket: String,
        key: String,
        bytes: u64,
        source: BoxError,
    },
    /// A range of a ranged read failed every attempt, or a large object's GetObject failed at
    /// its end (see `process::ranged`): retried whole.
    #[error(
        "reading s3://{bucket}/{key} failed at byte {offset} after {attempts} attempts: {detail}"
    )]
    Range {
        bucket: String,
        key: String,
        offset: u64,
        attempts: usize,
        detail: String,
    },
    /// Displayed through [`database::describe`], which leaves out a refused value.
    #[error("database: {}", database::describe(.0))]
    Database(#[from] sqlx::Error),
    #[error("DICOM header task failed: {0}")]
    HeaderTask(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Reader(#[from] ReaderError),
}

/// A reader of the streamed bytes could not reach its verdict (a scanner it could not ask, say).
/// Not a verdict on the object: the reader classifies it, since only it knows what failed.
#[derive(Debug, Error)]
#[error("{reader} reader failed: {source}")]
pub struct ReaderError {
    pub reader: &'static str,
    pub class: Class,
    /// Rendered with its whole chain: wrap an SDK error in `DisplayErrorContext` first.
    pub source: BoxError,
}

impl ReaderError {
    pub fn new(reader: &'static str, class: Class, source: impl Into<BoxError>) -> ReaderError {
        ReaderError {
            reader,
            class,
            source: source.into(),
        }
    }
}

/// An AWS SDK error as every log line and error message renders it: with its whole chain of
/// sources, since its `Display` alone says only "service error" or "unhandled error".
pub fn sdk_error<E: std::error::Error>(error: &E) -> String {
    aws_sdk_s3::error::DisplayErrorContext(error).to_string()
}

/// What a failure means for the message that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Throttling, timeouts, connection failures, 5xx, an unavailable or contended database:
    /// the same message will succeed later. Retried in process, then handed back to the queue
    /// with a delay.
    Retryable,
    /// No retry can succeed (the bucket does not exist, the database refuses even the rejection
    /// row): left undeleted so the redrive policy moves it to the dead-letter queue, where an
    /// operator can look at it.
    Poison,
    /// S3 answered 403: the worker's role may not read the object (a policy or key-policy
    /// change, or, without `s3:ListBucket`, a missing key). An IAM change can take seconds to
    /// propagate, so it is retried in process like a retryable failure; then it is recorded as
    /// `access_denied` and left for the dead-letter queue like poison, since only an operator
    /// can fix it. Never taken for "gone": the object may well exist.
    AccessDenied,
    /// The database as a whole is unavailable: no other message can be recorded either. Retried
    /// in process like a retryable failure; then the consumer stops receiving until the
    /// database answers, and hands the message back soon, since the failure is not its own.
    Outage,
}

/// S3 error codes that settle an event rather than fail it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settles {
    /// 404: the object was deleted before its event was processed.
    Gone,
    /// 412: the key now holds other bytes than the event announced.
    Superseded,
}

impl ProcessError {
    /// Whether this failure is in fact an answer about the object. By the error code, or by
    /// the HTTP status when S3 sent no code (HEAD): a 404 other than a missing bucket is gone,
    /// any 412 is a failed condition.
    pub fn settles(&self) -> Option<Settles> {
        match self {
            ProcessError::S3 { code, status, .. } => match (code.as_str(), status) {
                ("NoSuchBucket", _) => None,
                ("NoSuchKey" | "NotFound" | "NoSuchVersion", _) | (_, Some(404)) => {
                    Some(Settles::Gone)
                }
                ("PreconditionFailed", _) | (_, Some(412)) => Some(Settles::Superseded),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn class(&self) -> Class {
        match self {
            ProcessError::S3 { code, .. } if code == "NoSuchBucket" => Class::Poison,
            ProcessError::S3 { code, status, .. }
                if code == "AccessDenied" || *status == Some(403) =>
            {
                Class::AccessDenied
            }
            ProcessError::Database(e) => match database::classify(e) {
                database::Fault::Outage => Class::Outage,
                database::Fault::Contention => Class::Retryable,
                // The pipeline turns a refused row into a rejection: a refusal that reaches
                // here is of a row nothing else can be written for (the rejection, a deletion).
                database::Fault::Refused(_) => Class::Poison,
            },
            ProcessError::Reader(e) => e.class,
            _ => Class::Retryable,
        }
    }

    /// The rejection a refused write amounts to.
    pub fn refusal(&self) -> Option<docworker_shared::Rejection> {
        match self {
            ProcessError::Database(e) => match database::classify(e) {
                database::Fault::Refused(rejection) => Some(rejection),
                _ => None,
            },
            _ => None,
        }
    }

    /// Every [`label`](Self::label), so that metrics start at 0 for each kind. Keep in step with
    /// `label`.
    pub const LABELS: &'static [&'static str] = &[
        "s3",
        "s3_access_denied",
        "s3_body",
        "s3_range",
        "database",
        "database_contention",
        "database_refused",
        "header_task",
        "reader",
    ];

    /// A short label for log fields and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ProcessError::S3 { .. } if self.class() == Class::AccessDenied => "s3_access_denied",
            ProcessError::S3 { .. } => "s3",
            ProcessError::Body { .. } => "s3_body",
            ProcessError::Range { .. } => "s3_range",
            ProcessError::Database(e) => match database::classify(e) {
                database::Fault::Outage => "database",
                database::Fault::Contention => "database_contention",
                database::Fault::Refused(_) => "database_refused",
            },
            ProcessError::HeaderTask(_) => "header_task",
            ProcessError::Reader(_) => "reader",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(code: &str, status: Option<u16>) -> ProcessError {
        ProcessError::S3 {
            operation: "HeadObject",
            bucket: "b".into(),
            key: "k".into(),
            code: code.into(),
            status,
            detail: String::new(),
        }
    }

    #[test]
    fn a_head_answer_without_a_code_is_classified_by_its_status() {
        assert_eq!(
            s3("Unknown", Some(412)).settles(),
            Some(Settles::Superseded)
        );
        assert_eq!(s3("Unknown", Some(404)).settles(), Some(Settles::Gone));
        assert_eq!(s3("Unknown", Some(403)).class(), Class::AccessDenied);
        assert_eq!(
            s3("Unknown", Some(403)).settles(),
            None,
            "forbidden is never gone"
        );
        assert_eq!(s3("Unknown", Some(500)).settles(), None);
        assert_eq!(s3("Unknown", Some(500)).class(), Class::Retryable);
    }

    #[test]
    fn codes_settle_as_before_and_a_missing_bucket_stays_poison() {
        assert_eq!(s3("NoSuchKey", Some(404)).settles(), Some(Settles::Gone));
        assert_eq!(
            s3("NoSuchVersion", Some(404)).settles(),
            Some(Settles::Gone)
        );
        assert_eq!(
            s3("PreconditionFailed", Some(412)).settles(),
            Some(Settles::Superseded)
        );
        assert_eq!(s3("NoSuchBucket", Some(404)).settles(), None);
        assert_eq!(s3("NoSuchBucket", Some(404)).class(), Class::Poison);
    }

    #[test]
    fn access_denied_is_its_own_class_with_its_own_label() {
        let denied = s3("AccessDenied", Some(403));
        assert_eq!(denied.class(), Class::AccessDenied);
        assert_eq!(denied.label(), "s3_access_denied");
        assert_eq!(s3("Timeout", None).class(), Class::Retryable);
        assert_eq!(s3("Timeout", None).label(), "s3");
    }
}
