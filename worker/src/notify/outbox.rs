//! The outbox publisher: moves the `outbox` rows that the triggers write in each outcome's
//! transaction to EventBridge or SNS, at least once.
//!
//! A batch is claimed with `FOR UPDATE SKIP LOCKED` and leased by pushing its `next_attempt_at`
//! forward, in one short statement: workers draining side by side take different rows, and no
//! connection or lock is held while AWS answers. A published row is deleted; a failed one is
//! given a jittered, growing delay and tried again, so an unreachable destination costs retries,
//! never events, and never holds up processing. A worker that dies between publishing and
//! deleting leaves the lease to expire: the event is published again (consumers dedupe by the
//! payload's `id`, or simply re-read the row).

use std::time::{Duration, Instant};

use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::clients::Publish;
use crate::observe;

/// The outbox's gauges, exported only by a worker that publishes (a worker without a
/// destination has no depth to report: the outbox then only grows), so they are registered here
/// rather than with the rest in `observe`.
pub mod names {
    pub const OUTBOX_EVENTS: &str = "docworker_outbox_events";
    pub const OUTBOX_OLDEST_SECONDS: &str = "docworker_outbox_oldest_seconds";
}

fn describe() {
    use metrics::{Unit, describe_gauge};
    describe_gauge!(
        names::OUTBOX_EVENTS,
        Unit::Count,
        "Events in the outbox not yet published (waiting, leased or backing off), counted every 15 s"
    );
    describe_gauge!(
        names::OUTBOX_OLDEST_SECONDS,
        Unit::Seconds,
        "Age of the oldest event in the outbox, 0 when it is empty; measured every 15 s"
    );
    metrics::gauge!(names::OUTBOX_EVENTS).set(0.0);
    metrics::gauge!(names::OUTBOX_OLDEST_SECONDS).set(0.0);
}

/// Both services take at most ten entries per call.
const BATCH: i64 = 10;
/// How long a claimed batch is left to this worker: beyond the publish call's timeout
/// ([`crate::clients::PUBLISH_TIMEOUT`]).
const LEASE_SECS: f64 = 60.0;
/// With nothing due, the outbox is looked at again after this.
const IDLE: Duration = Duration::from_secs(1);
const MEASURE_EVERY: Duration = Duration::from_secs(15);

/// A failure of one drain round. Holds error codes and classes only: never a payload.
#[derive(Debug, Error)]
pub enum OutboxError {
    #[error("database: {}", crate::error::database::describe(.0))]
    Database(#[from] sqlx::Error),
    /// The whole call failed: `code` is the service's error code, or the SDK's failure class
    /// (`unreachable`, `timeout`, `bad_response`).
    #[error("publishing {events} events failed: {code}")]
    Publish { events: usize, code: String },
}

pub struct Publisher {
    publish: Publish,
    pool: PgPool,
}

#[derive(Debug, sqlx::FromRow)]
struct Event {
    id: i64,
    kind: String,
    payload: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl Publisher {
    pub fn new(publish: Publish, pool: PgPool) -> Publisher {
        Publisher { publish, pool }
    }

    /// Drains until shutdown: back to back while batches come full, every second when idle, and
    /// with a jittered, growing pause (up to 30 s) while the database or the destination fails.
    pub async fn run(self, shutdown: CancellationToken) {
        describe();
        let backoff = || {
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(30))
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut failing = backoff();
        let mut measured: Option<Instant> = None;
        info!(
            destination = self.describe_destination(),
            "publishing the outbox"
        );
        loop {
            if measured.is_none_or(|at| at.elapsed() >= MEASURE_EVERY) {
                if let Err(e) = self.measure().await {
                    debug!(error = %e, "outbox depth not measured");
                }
                measured = Some(Instant::now());
            }
            let pause = match self.drain_batch().await {
                Ok(claimed) => {
                    failing = backoff();
                    if claimed == BATCH as usize {
                        Duration::ZERO
                    } else {
                        IDLE
                    }
                }
                Err(e) => {
                    warn!(error = %e, "outbox not drained; retrying");
                    failing.next().unwrap_or(Duration::from_secs(30))
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    fn describe_destination(&self) -> String {
        match &self.publish {
            Publish::EventBridge { bus, .. } => format!("eventbridge:{bus}"),
            Publish::Sns { topic_arn, .. } => format!("sns:{topic_arn}"),
        }
    }

    /// One round: claim what is due, publish it, delete what was published and reschedule
    /// the rest. Returns how many events were claimed.
    async fn drain_batch(&self) -> Result<usize, OutboxError> {
        let events: Vec<Event> = sqlx::query_as(
            "UPDATE outbox o
             SET next_attempt_at = now() + make_interval(secs => $2), attempts = o.attempts + 1
             FROM (SELECT id FROM outbox WHERE next_attempt_at <= now()
                   ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) due
             WHERE o.id = due.id
             RETURNING o.id, o.kind, o.payload, o.created_at",
        )
        .bind(BATCH)
        .bind(LEASE_SECS)
        .fetch_all(&self.pool)
        .await?;
        if events.is_empty() {
            return Ok(0);
        }
        let results = match self.publish(&events).await {
            Ok(results) => results,
            Err(code) => {
                self.reschedule(&events.iter().collect::<Vec<_>>(), &code)
                    .await?;
                return Err(OutboxError::Publish {
                    events: events.len(),
                    code,
                });
            }
        };
        let mut published = Vec::new();
        let mut failed: Vec<(&Event, String)> = Vec::new();
        for (event, result) in events.iter().zip(results) {
            match result {
                None => published.push(event),
                Some(code) => failed.push((event, code)),
            }
        }
        if !published.is_empty() {
            let ids: Vec<i64> = published.iter().map(|e| e.id).collect();
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
                .bind(&ids)
                .execute(&self.pool)
                .await?;
            for event in &published {
                metrics::counter!(observe::names::OUTBOX_PUBLISHED, "kind" => kind_label(&event.kind))
                    .increment(1);
            }
            debug!(events = published.len(), "outbox events published");
        }
        for (event, code) in &failed {
            warn!(
                outbox_id = event.id,
                code, "outbox event refused by the destination; rescheduled"
            );
            self.reschedule(&[*event], code).await?;
        }
        Ok(events.len())
    }

    /// Puts events back with a delay of about 2^attempts seconds (at most 60), jittered by PostgreSQL
    /// so that workers retrying the same outage do not retry in step.
    async fn reschedule(&self, events: &[&Event], code: &str) -> Result<(), sqlx::Error> {
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        sqlx::query(
            "UPDATE outbox
             SET next_attempt_at = now() + make_interval(
                     secs => least(60, power(2, least(attempts, 10) - 1)) * (0.5 + random() / 2)),
                 last_error = $2
             WHERE id = ANY($1)",
        )
        .bind(&ids)
        .bind(code)
        .execute(&self.pool)
        .await?;
        for event in events {
            metrics::counter!(observe::names::OUTBOX_PUBLISH_FAILURES, "kind" => kind_label(&event.kind))
                .increment(1);
        }
        Ok(())
    }

    /// One call for the batch: per event, `None` when published or the error code it was
    /// refused with; `Err` with a code when the call as a whole failed.
    async fn publish(&self, events: &[Event]) -> Result<Vec<Option<String>>, String> {
        match &self.publish {
            Publish::EventBridge { eventbridge, bus } => {
                use aws_sdk_eventbridge::types::PutEventsRequestEntry;
                let entries = events
                    .iter()
                    .map(|event| {
                        PutEventsRequestEntry::builder()
                            .event_bus_name(bus)
                            .source("docworker")
                            .detail_type(detail_type(&event.kind))
                            .detail(event.payload.to_string())
                            .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
                                event.created_at.timestamp_millis(),
                            ))
                            .build()
                    })
                    .collect();
                let output = eventbridge
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| failure_code(&e))?;
                // The result entries are in the order of the request's.
                let results = output.entries();
                Ok((0..events.len())
                    .map(|i| match results.get(i) {
                        Some(entry) => entry.error_code().map(str::to_owned),
                        None => Some("missing_result".to_owned()),
                    })
                    .collect())
            }
            Publish::Sns { sns, topic_arn } => {
                use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
                let mut entries = Vec::with_capacity(events.len());
                for (i, event) in events.iter().enumerate() {
                    let kind = MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(kind_label(&event.kind))
                        .build()
                        .map_err(|_| "invalid_request".to_owned())?;
                    entries.push(
                        PublishBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message(event.payload.to_string())
                            .message_attributes("kind", kind)
                            .build()
                            .map_err(|_| "invalid_request".to_owned())?,
                    );
                }
                let output = sns
                    .publish_batch()
                    .topic_arn(topic_arn)
                    .set_publish_batch_request_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| failure_code(&e))?;
                let published: Vec<&str> = output
                    .successful()
                    .iter()
                    .filter_map(|entry| entry.id())
                    .collect();
                Ok((0..events.len())
                    .map(|i| {
                        let id = i.to_string();
                        if published.contains(&id.as_str()) {
                            None
                        } else {
                            Some(
                                output
                                    .failed()
                                    .iter()
                                    .find(|entry| entry.id() == id)
                                    .map_or("missing_result", |entry| entry.code())
                                    .to_owned(),
                            )
                        }
                    })
                    .collect())
            }
        }
    }

    /// The outbox's depth and the age of its oldest event, for the gauges.
    async fn measure(&self) -> Result<(), sqlx::Error> {
        let (events, oldest): (i64, f64) = sqlx::query_as(
            "SELECT count(*),
                    COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
             FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        metrics::gauge!(names::OUTBOX_EVENTS).set(events as f64);
        metrics::gauge!(names::OUTBOX_OLDEST_SECONDS).set(oldest);
        Ok(())
    }
}

/// The EventBridge `detail-type` of an outbox kind: what a rule's pattern selects on.
fn detail_type(kind: &str) -> &'static str {
    match kind {
        "study" => "Study complete",
        _ => "Document settled",
    }
}

fn kind_label(kind: &str) -> &'static str {
    observe::OUTBOX_KINDS
        .iter()
        .find(|known| **known == kind)
        .copied()
        .unwrap_or("document")
}

/// What a failed call is recorded as: the service's error code when it answered with one,
/// otherwise the SDK's class of failure. Never the message, which may quote the request.
fn failure_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> String {
    match error {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("service_error").to_owned(),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "unreachable".to_owned(),
        SdkError::ResponseError(_) => "bad_response".to_owned(),
        _ => "construction_failure".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_detail_type_and_label() {
        assert_eq!(detail_type("document"), "Document settled");
        assert_eq!(detail_type("study"), "Study complete");
        assert_eq!(kind_label("study"), "study");
        assert_eq!(kind_label("document"), "document");
    }
}
