//! The SQS consumer: receives messages while there is room to process them, runs each through
//! the pipeline, and decides each message's fate in one place ([`Disposition`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use backon::{ExponentialBuilder, Retryable};
use docworker_shared::event::REPLAY_ATTRIBUTE;
use docworker_shared::{Notification, ObjectEvent, Trail};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, error, field, info, info_span, warn};

pub mod deletes;
pub mod queue;

use self::deletes::Deletes;
use crate::backoff;
use crate::error::{Class, ProcessError, sdk_error};
use crate::observe::{LONG_POLL_WAIT, Readiness, events, names};
use crate::process::{Pipeline, Processed};

/// SQS's maximum batch size for ReceiveMessage.
const MAX_BATCH: usize = 10;
/// In-process attempts for a retryable failure before the message goes back to the queue.
const IN_PROCESS_ATTEMPTS: usize = 3;
/// Visibility delays for a message handed back after retryable failures, growing with its
/// receive count: 30 s, 60 s, … up to 15 minutes.
const REQUEUE_BASE_SECS: u64 = 30;
const REQUEUE_MAX_SECS: u64 = 15 * 60;
const DATABASE_REQUEUE: Duration = Duration::from_secs(5);
/// How long shutdown waits for the last delete batch after in-flight messages are done. Within
/// the deployments' stop timeouts (35 s) together with the shutdown deadline (25 s by default).
const DELETE_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// What happens to a message once its records are settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Every record's outcome is committed (or there was nothing to do): delete it.
    Delete,
    /// A retryable failure outlasted the in-process retries: make the message visible again after
    /// this delay. Its receive count grows, so a failure that never clears still ends in the DLQ.
    Requeue(Duration),
    /// Poison: never deleted by the worker. It becomes visible again after the queue's visibility
    /// timeout, and once it exceeds `maxReceiveCount` the redrive policy moves it to the DLQ.
    DeadLetter,
}

/// How the consumer paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub concurrency: usize,
    pub shutdown_deadline: Duration,
    /// How long to wait after a partial receive, so that the next request carries several
    /// messages ([`linger_after`]).
    pub receive_linger: Duration,
    /// The queue's visibility timeout: how long a received message stays hidden. The heartbeat
    /// extends in-flight messages by this much, a third of it before it runs out.
    pub visibility_timeout: Duration,
}

pub struct Consumer {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    pipeline: Pipeline,
    concurrency: usize,
    shutdown_deadline: Duration,
    receive_linger: Duration,
    visibility_timeout: Duration,
    /// Set when a write failed because the database is unavailable: receiving stops until it
    /// answers again, so an outage does not burn through messages' receive counts (and push
    /// healthy messages into the dead-letter queue).
    database_down: AtomicBool,
    /// Told when a long poll is open: it has not failed, though it has no answer yet.
    readiness: Arc<Readiness>,
}

impl Consumer {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
        pipeline: Pipeline,
        settings: Settings,
        readiness: Arc<Readiness>,
    ) -> Consumer {
        Consumer {
            sqs,
            queue_url,
            pipeline,
            concurrency: settings.concurrency,
            shutdown_deadline: settings.shutdown_deadline,
            receive_linger: settings.receive_linger,
            visibility_timeout: settings.visibility_timeout,
            database_down: AtomicBool::new(false),
            readiness,
        }
    }
}

impl Consumer {
    /// Runs until `shutdown` is cancelled, then lets in-flight messages finish within the
    /// shutdown deadline.
    pub async fn run(self, shutdown: CancellationToken) {
        let consumer = Arc::new(self);
        let permits = Arc::new(Semaphore::new(consumer.concurrency));
        let tracker = TaskTracker::new();
        let (deletes, deleter) = Deletes::spawn(consumer.sqs.clone(), consumer.queue_url.clone());
        let mut receive_backoff = receive_backoff();
        info!(queue_url = %consumer.queue_url, concurrency = consumer.concurrency, "consuming");
        loop {
            // Wait for room before receiving, so every received message starts at once and none
            // sits invisible in memory while its visibility timeout runs down.
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = permits.clone().acquire_owned() => permit,
            };
            let Ok(first) = first else { break };
            if consumer.database_down.load(Ordering::Acquire)
                && !consumer.wait_for_database(&shutdown).await
            {
                break;
            }
            let wanted = (1 + permits.available_permits()).min(MAX_BATCH);
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                received = consumer.receive(wanted) => received,
            };
            let messages = match received {
                Ok(messages) => {
                    receive_backoff = self::receive_backoff();
                    events::Received {
                        wanted,
                        messages: messages.len(),
                    }
                    .emit();
                    messages
                }
                Err(e) => {
                    let delay = receive_backoff.next().unwrap_or(Duration::from_secs(30));
                    warn!(error = %sdk_error(&e), retry_in_ms = delay.as_millis() as u64, "receiving from the queue failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            let linger = linger_after(messages.len(), wanted, consumer.receive_linger);
            let mut first = Some(first);
            for message in messages {
                let permit = match first.take() {
                    Some(permit) => permit,
                    // Only this loop takes permits, so the ones counted above are still free.
                    None => match permits.clone().try_acquire_owned() {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                let consumer = consumer.clone();
                let deletes = deletes.clone();
                metrics::gauge!(names::IN_FLIGHT).increment(1.0);
                tracker.spawn(async move {
                    consumer.handle(message, &deletes).await;
                    metrics::gauge!(names::IN_FLIGHT).decrement(1.0);
                    drop(permit);
                });
            }
            if let Some(linger) = linger {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(linger) => {}
                }
            }
        }
        tracker.close();
        info!(
            in_flight = tracker.len(),
            deadline_secs = consumer.shutdown_deadline.as_secs(),
            "stopping: no new messages; waiting for in-flight ones"
        );
        if tokio::time::timeout(consumer.shutdown_deadline, tracker.wait())
            .await
            .is_err()
        {
            warn!(
                unfinished = tracker.len(),
                "shutdown deadline passed; unfinished messages return to the queue when their visibility timeout ends"
            );
        }
        // Settled messages may still wait for their delete batch: send them before exiting.
        drop(deletes);
        if tokio::time::timeout(DELETE_FLUSH_DEADLINE, deleter)
            .await
            .is_err()
        {
            warn!(
                "pending deletions not confirmed; those messages will be redelivered and settled again"
            );
        }
    }

    /// Pings the database with backoff until it answers (true) or shutdown begins (false).
    async fn wait_for_database(&self, shutdown: &CancellationToken) -> bool {
        // A ping is cheap: check often, so processing resumes within seconds of recovery.
        let mut delays = backoff::outage(Duration::from_secs(5));
        loop {
            match self.pipeline.store.ping().await {
                Ok(()) => {
                    info!("database is back: receiving again");
                    self.database_down.store(false, Ordering::Release);
                    return true;
                }
                Err(e) => {
                    let delay = delays.next().unwrap_or(Duration::from_secs(30));
                    warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "database unavailable: not receiving");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    async fn receive(&self, max: usize) -> Result<Vec<Message>, aws_sdk_sqs::Error> {
        let _poll = self.readiness.long_poll();
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max as i32)
            .wait_time_seconds(LONG_POLL_WAIT.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names(REPLAY_ATTRIBUTE)
            .send()
            .await?;
        Ok(output.messages.unwrap_or_default())
    }

    async fn handle(&self, message: Message, deletes: &Deletes) {
        let receive_count: u32 = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|count| count.parse().ok())
            .unwrap_or(1);
        let replayed = message
            .message_attributes()
            .is_some_and(|a| a.contains_key(REPLAY_ATTRIBUTE));
        let span = info_span!(
            "message",
            message_id = message.message_id().unwrap_or("unknown"),
            receive_count,
            replayed,
        );
        async {
            let started = Instant::now();
            let Some(receipt) = message.receipt_handle() else {
                error!("message has no receipt handle; SQS will redeliver it");
                return;
            };
            let message_id = message.message_id().unwrap_or("unknown");
            let work = self.settle(
                message_id,
                message.body().unwrap_or_default(),
                receive_count,
                replayed,
            );
            let disposition = self.with_heartbeat(receipt, work).await;
            let duration = started.elapsed();
            let outcome = match disposition {
                Disposition::Delete => {
                    deletes.delete(message_id, receipt).await;
                    "deleted"
                }
                Disposition::Requeue(delay) => {
                    self.requeue(receipt, delay).await;
                    "requeued"
                }
                Disposition::DeadLetter => "left_for_dlq",
            };
            events::MessageSettled { outcome, duration }.emit();
        }
        .instrument(span)
        .await
    }

    /// Runs `work` while keeping the message invisible: every third of the visibility timeout the
    /// timeout is renewed, so a long object is never handed to a second consumer meanwhile.
    async fn with_heartbeat(
        &self,
        receipt: &str,
        work: impl Future<Output = Disposition>,
    ) -> Disposition {
        let period = (self.visibility_timeout / 3).max(Duration::from_secs(1));
        let mut beats = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tokio::pin!(work);
        loop {
            tokio::select! {
                disposition = &mut work => return disposition,
                _ = beats.tick() => self.extend(receipt).await,
            }
        }
    }

    async fn extend(&self, receipt: &str) {
        let result = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(self.visibility_timeout.as_secs() as i32)
            .send()
            .await;
        match result {
            Ok(_) => debug!(
                extended_secs = self.visibility_timeout.as_secs(),
                "heartbeat: visibility extended"
            ),
            Err(e) => {
                warn!(error = %sdk_error(&e), "heartbeat failed; another consumer may receive this message")
            }
        }
    }

    /// Processes every record of the message and decides its fate.
    async fn settle(
        &self,
        message_id: &str,
        body: &str,
        receive_count: u32,
        replayed: bool,
    ) -> Disposition {
        let trail = |started| Trail {
            message_id,
            attempt: receive_count as i32,
            started,
            replayed,
            seen: None,
        };
        let started = Instant::now();
        let records = match Notification::parse(body) {
            Ok(Notification::Test { bucket }) => {
                info!(
                    bucket = bucket.as_deref().unwrap_or(""),
                    "s3:TestEvent received; nothing to process"
                );
                return Disposition::Delete;
            }
            Ok(Notification::Records(events)) => events,
            Err(e) => {
                events::LeftForDeadLetter::Unparseable(&e).emit();
                self.audit(trail(started), None, "poison", Some(&e.to_string()))
                    .await;
                return Disposition::DeadLetter;
            }
        };
        for event in &records {
            let trail = trail(Instant::now());
            let result = self.process_with_retries(event, trail).await;
            match &result {
                Ok(processed) if processed.audited() => {}
                Ok(processed) => {
                    self.audit(trail, Some(event), processed.label(), None)
                        .await
                }
                Err(e) => {
                    let outcome = match e.class() {
                        Class::Retryable | Class::Outage => "failed",
                        Class::Poison => "poison",
                        Class::AccessDenied => "access_denied",
                    };
                    self.audit(trail, Some(event), outcome, Some(&e.to_string()))
                        .await;
                }
            }
            if let Err(e) = result {
                if e.class() == Class::Outage {
                    self.database_down.store(true, Ordering::Release);
                }
                let disposition = disposition(e.class(), receive_count);
                match (e.class(), disposition) {
                    (_, Disposition::Requeue(delay)) => {
                        events::Requeueing { error: &e, delay }.emit()
                    }
                    (Class::AccessDenied, _) => events::LeftForDeadLetter::AccessDenied(&e).emit(),
                    _ => events::LeftForDeadLetter::Failed(&e).emit(),
                }
                return disposition;
            }
        }
        Disposition::Delete
    }

    /// Appends an attempt that wrote no row to the audit trail. Failing to is logged, not fatal:
    /// the message's fate is already decided.
    async fn audit(
        &self,
        trail: Trail<'_>,
        event: Option<&ObjectEvent>,
        outcome: &str,
        reason: Option<&str>,
    ) {
        let object = event.map(|e| (e.bucket.as_str(), e.key.as_str()));
        if let Err(e) = self
            .pipeline
            .store
            .record_attempt(trail, object, outcome, reason)
            .await
        {
            warn!(error = %e, "could not append to the audit trail (document_events)");
        }
    }

    async fn process_with_retries(
        &self,
        event: &ObjectEvent,
        trail: Trail<'_>,
    ) -> Result<Processed, ProcessError> {
        // The one line an object leaves at `info` is its "object settled", in this span: the span
        // carries the message id too, so the line reads alone (JSON logs print the current span
        // only). What is known only at the end goes in that event rather than into the span:
        // each `Span::record` re-serializes the span's JSON fields.
        let span = info_span!(
            "object",
            message_id = trail.message_id,
            bucket = %event.bucket,
            key = %event.key,
            event = %event.name,
            size = field::Empty,
        );
        span.in_scope(|| debug!("processing object"));
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(IN_PROCESS_ATTEMPTS - 1)
            .with_jitter();
        let processed = (|| self.pipeline.process(event, trail))
            .retry(backoff)
            .when(|e| e.class() != Class::Poison)
            .notify(|error, delay| events::Retrying { error, delay }.emit())
            .instrument(span.clone())
            .await?;
        // Only a finalized object has a verified type and integrity check.
        let (content_type, integrity) = match &processed {
            Processed::Finalized {
                content_type,
                integrity,
            } => (Some(*content_type), Some(integrity.as_str())),
            _ => (None, None),
        };
        let settled = events::ObjectSettled {
            outcome: processed.label(),
            content_type,
            integrity,
            duration: trail.started.elapsed(),
        };
        span.in_scope(|| settled.emit());
        Ok(processed)
    }

    async fn requeue(&self, receipt: &str, delay: Duration) {
        let result = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(delay.as_secs() as i32)
            .send()
            .await;
        if let Err(e) = result {
            warn!(error = %sdk_error(&e), "could not delay the message; it returns after the queue's visibility timeout");
        }
    }
}

/// Whether to wait before the next receive. A partial batch means messages arrive more slowly
/// than the worker takes them, so each long poll returns with the first one; waiting a moment
/// lets a few gather for the next request. A full batch (a backlog) or an empty long poll (an
/// idle queue) receives again at once. The messages wait in SQS, still visible to any other
/// consumer, so nothing is held while the worker waits.
fn linger_after(received: usize, wanted: usize, linger: Duration) -> Option<Duration> {
    (received > 0 && received < wanted && !linger.is_zero()).then_some(linger)
}

fn requeue_delay(receive_count: u32) -> Duration {
    let exponent = receive_count.saturating_sub(1).min(10);
    Duration::from_secs((REQUEUE_BASE_SECS << exponent).min(REQUEUE_MAX_SECS))
}

/// The fate of a message whose record failed with a failure of `class`, on its
/// `receive_count`th receive.
fn disposition(class: Class, receive_count: u32) -> Disposition {
    match class {
        Class::Retryable => Disposition::Requeue(requeue_delay(receive_count)),
        // Not the message's fault, and receiving pauses until the database answers: bring the
        // message back soon after.
        Class::Outage => Disposition::Requeue(DATABASE_REQUEUE),
        Class::Poison => Disposition::DeadLetter,
        // Each receive retries it again; past `maxReceiveCount` the redrive policy moves it to
        // the DLQ, where the audit trail says why.
        Class::AccessDenied => Disposition::DeadLetter,
    }
}

/// Backoff for failing receives (queue or network down): quick at first, then every 30 s at most,
/// so an outage neither spins nor delays recovery long.
fn receive_backoff() -> impl Iterator<Item = Duration> {
    backoff::outage(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requeue_delays_grow_and_are_capped() {
        assert_eq!(requeue_delay(0), Duration::from_secs(30));
        assert_eq!(requeue_delay(1), Duration::from_secs(30));
        assert_eq!(requeue_delay(2), Duration::from_secs(60));
        assert_eq!(requeue_delay(4), Duration::from_secs(240));
        assert_eq!(requeue_delay(6), Duration::from_secs(900));
        assert_eq!(requeue_delay(u32::MAX), Duration::from_secs(900));
    }

    #[test]
    fn only_a_partial_batch_waits_before_the_next_receive() {
        let linger = Duration::from_millis(50);
        assert_eq!(linger_after(1, 10, linger), Some(linger));
        assert_eq!(linger_after(9, 10, linger), Some(linger));
        assert_eq!(
            linger_after(10, 10, linger),
            None,
            "a backlog: receive again"
        );
        assert_eq!(
            linger_after(0, 10, linger),
            None,
            "an idle queue: poll again"
        );
        assert_eq!(linger_after(1, 10, Duration::ZERO), None, "turned off");
    }

    #[test]
    fn a_failure_is_requeued_or_left_for_the_dead_letter_queue_by_its_class() {
        assert_eq!(
            disposition(Class::Retryable, 3),
            Disposition::Requeue(Duration::from_secs(120))
        );
        assert_eq!(
            disposition(Class::Outage, 3),
            Disposition::Requeue(DATABASE_REQUEUE),
            "an outage is not the message's fault: back soon, whatever its receive count"
        );
        assert_eq!(disposition(Class::Poison, 1), Disposition::DeadLetter);
        assert_eq!(disposition(Class::AccessDenied, 1), Disposition::DeadLetter);
    }
}
