//! What is worth seeing, one type per thing: emitting an event writes its log line and its
//! metrics together, so the two cannot drift apart (as Vector's `internal_events` do). The log
//! lines and metric names are contracts (dashboards, alerts, `docs/operations.md`): an event
//! changes neither, it only keeps them in one place.
//!
//! Events take labels and numbers, never the runtime types they describe, so that this leaf
//! module depends on nothing above it.

use std::time::Duration;

use docworker_shared::{EventError, Rejection};
use tracing::{debug, error, info, warn};

use super::names;
use crate::error::ProcessError;

/// A receive returned `messages` of the `wanted`.
pub struct Received {
    pub wanted: usize,
    pub messages: usize,
}

impl Received {
    pub fn emit(self) {
        metrics::counter!(names::RECEIVE_REQUESTS).increment(1);
        metrics::counter!(names::MESSAGES_RECEIVED).increment(self.messages as u64);
        debug!(
            wanted = self.wanted,
            messages = self.messages,
            "messages received"
        );
    }
}

/// A message's fate was carried out: `outcome` is `deleted`, `requeued` or `left_for_dlq`.
pub struct MessageSettled {
    pub outcome: &'static str,
    pub duration: Duration,
}

impl MessageSettled {
    pub fn emit(self) {
        metrics::histogram!(names::PROCESSING_SECONDS).record(self.duration.as_secs_f64());
        if self.outcome == "requeued" {
            metrics::counter!(names::MESSAGES_REQUEUED).increment(1);
        }
        let duration_ms = self.duration.as_millis() as u64;
        debug!(outcome = self.outcome, duration_ms, "message settled");
    }
}

/// An object's outcome; a finalized one names its verified type and integrity check.
pub struct ObjectSettled {
    pub outcome: &'static str,
    pub content_type: Option<&'static str>,
    pub integrity: Option<&'static str>,
    pub duration: Duration,
}

impl ObjectSettled {
    pub fn emit(self) {
        metrics::counter!(names::OBJECTS, "outcome" => self.outcome).increment(1);
        if let Some(integrity) = self.integrity {
            metrics::counter!(names::OBJECTS_BY_INTEGRITY, "integrity" => integrity).increment(1);
        }
        let duration_ms = self.duration.as_millis() as u64;
        // `None` fields are left out of the line.
        let (content_type, integrity) = (self.content_type, self.integrity);
        info!(
            outcome = self.outcome,
            content_type, integrity, duration_ms, "object settled"
        );
    }
}

/// The verdict on an object is a rejection.
pub struct Rejected<'a>(pub &'a Rejection);

impl Rejected<'_> {
    pub fn emit(self) {
        let rejection = self.0;
        warn!(reason = %rejection, reason_label = rejection.label(), "rejected");
        metrics::counter!(names::REJECTIONS, "reason" => rejection.label()).increment(1);
    }
}

/// A failed attempt at an object is tried again in process after `delay`.
pub struct Retrying<'a> {
    pub error: &'a ProcessError,
    pub delay: Duration,
}

impl Retrying<'_> {
    pub fn emit(self) {
        let e = self.error;
        metrics::counter!(names::RETRIES, "kind" => e.label()).increment(1);
        warn!(error = %e, error_kind = e.label(), retry_in_ms = self.delay.as_millis() as u64, "retrying");
    }
}

/// A failure outlasted the in-process retries: the message goes back to the queue.
pub struct Requeueing<'a> {
    pub error: &'a ProcessError,
    pub delay: Duration,
}

impl Requeueing<'_> {
    pub fn emit(self) {
        let e = self.error;
        error!(error = %e, error_kind = e.label(), requeue_in_secs = self.delay.as_secs(), "processing failed; message goes back to the queue");
    }
}

/// A message no retry can settle is left for the dead-letter queue.
pub enum LeftForDeadLetter<'a> {
    /// Its body is not an event notification.
    Unparseable(&'a EventError),
    /// Processing one of its events failed for good.
    Failed(&'a ProcessError),
    /// S3 refused the worker access to the object.
    AccessDenied(&'a ProcessError),
}

impl LeftForDeadLetter<'_> {
    pub fn emit(self) {
        match self {
            LeftForDeadLetter::Unparseable(e) => {
                error!(reason = %e, "poison message: not deleted, left for the dead-letter queue");
                metrics::counter!(names::POISON_MESSAGES, "reason" => e.label()).increment(1);
            }
            LeftForDeadLetter::Failed(e) => {
                metrics::counter!(names::POISON_MESSAGES, "reason" => e.label()).increment(1);
                error!(error = %e, error_kind = e.label(), "poison event: not deleted, left for the dead-letter queue");
            }
            LeftForDeadLetter::AccessDenied(e) => {
                metrics::counter!(names::POISON_MESSAGES, "reason" => e.label()).increment(1);
                error!(error = %e, error_kind = e.label(), "access denied: not deleted, left for the dead-letter queue; check the worker role's S3 permissions");
            }
        }
    }
}

/// A delete batch was answered: `deleted` messages are gone from the queue, `failed` will be
/// delivered again.
pub struct DeleteBatchSent {
    pub deleted: usize,
    pub failed: usize,
}

impl DeleteBatchSent {
    pub fn emit(self) {
        metrics::counter!(names::MESSAGES_DELETED).increment(self.deleted as u64);
        debug!(
            deleted = self.deleted,
            failed = self.failed,
            "delete batch sent"
        );
    }
}
