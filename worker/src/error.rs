//! Why processing an object failed, when the failure is not a verdict on the object.
//!
//! Verdicts (wrong type, oversize, corrupt DICOM…) are not errors here: they are
//! `Outcome::Rejected`, written to the row like any outcome. What remains is classified once,
//! and the poller turns the class into the message's fate.

use thiserror::Error;

pub mod database;

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
    /// Displayed through [`database::describe`], which leaves out a refused value.
    #[error("database: {}", database::describe(.0))]
    Database(#[from] sqlx::Error),
    #[error("DICOM header task failed: {0}")]
    HeaderTask(#[from] tokio::task::JoinError),
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
            ProcessError::Database(e) => match database::classify(e) {
                database::Fault::Outage | database::Fault::Contention => Class::Retryable,
                // The pipeline turns a refused row into a rejection: a refusal that reaches
                // here is of a row nothing else can be written for (the rejection, a deletion).
                database::Fault::Refused(_) => Class::Poison,
            },
            _ => Class::Retryable,
        }
    }

    /// Whether the database as a whole is unavailable: no other message can be recorded either,
    /// so the poller stops receiving until it answers.
    pub fn is_outage(&self) -> bool {
        matches!(self, ProcessError::Database(e) if database::classify(e) == database::Fault::Outage)
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

    /// A short label for log fields and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ProcessError::S3 { .. } => "s3",
            ProcessError::Body { .. } => "s3_body",
            ProcessError::Database(e) => match database::classify(e) {
                database::Fault::Outage => "database",
                database::Fault::Contention => "database_contention",
                database::Fault::Refused(_) => "database_refused",
            },
            ProcessError::HeaderTask(_) => "header_task",
        }
    }
}
