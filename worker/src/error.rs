//! Why processing an object failed, when the failure is not a verdict on the object.
//!
//! Verdicts (wrong type, oversize, corrupt DICOM…) are not errors here: they are
//! `Outcome::Rejected`, written to the row like any outcome. What remains is classified once,
//! and the poller turns the class into the message's fate.

use thiserror::Error;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Error)]
pub enum ProcessError {
    /// `detail` is the SDK's whole error chain, flattened: its `Display` alone says only
    /// "service error".
    #[error("S3 {operation} s3://{bucket}/{key} failed ({code}): {detail}")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        code: String,
        detail: String,
    },
    #[error("reading s3://{bucket}/{key} failed after {bytes} bytes: {source}")]
    Body {
        bucket: String,
        key: String,
        bytes: u64,
        source: BoxError,
    },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("DICOM header task failed: {0}")]
    HeaderTask(#[from] tokio::task::JoinError),
}

/// What a failure means for the message that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Throttling, timeouts, connection failures, 5xx, an unavailable database: the same message
    /// will succeed later. Retried in process, then handed back to the queue with a delay.
    Retryable,
    /// No retry can succeed (the bucket does not exist): left undeleted so the redrive policy
    /// moves it to the dead-letter queue, where an operator can look at it.
    Poison,
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
    /// Whether this failure is in fact an answer about the object.
    pub fn settles(&self) -> Option<Settles> {
        match self {
            ProcessError::S3 { code, .. } => match code.as_str() {
                "NoSuchKey" | "NotFound" | "NoSuchVersion" => Some(Settles::Gone),
                "PreconditionFailed" => Some(Settles::Superseded),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn class(&self) -> Class {
        match self {
            ProcessError::S3 { code, .. } if code == "NoSuchBucket" => Class::Poison,
            _ => Class::Retryable,
        }
    }

    /// Every [`label`](Self::label), so that metrics start at 0 for each kind. Keep in step with
    /// `label`.
    pub const LABELS: &'static [&'static str] = &["s3", "s3_body", "database", "header_task"];

    /// A short label for log fields and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ProcessError::S3 { .. } => "s3",
            ProcessError::Body { .. } => "s3_body",
            ProcessError::Database(_) => "database",
            ProcessError::HeaderTask(_) => "header_task",
        }
    }
}
