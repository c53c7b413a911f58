//! What operators watch: Prometheus metrics on `/metrics`, liveness on `/healthz`, readiness on
//! `/readyz` (database answers, queue reachable, clamd answers when configured, not shutting
//! down).

pub mod events;
pub mod stale;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use docworker_shared::DocumentStore;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::scanner::Scanner;

/// Metric names, in one place so that the dashboard and alerts in `infra/` can rely on them.
pub mod names {
    pub const RECEIVE_REQUESTS: &str = "docworker_receive_requests_total";
    pub const MESSAGES_RECEIVED: &str = "docworker_messages_received_total";
    pub const MESSAGES_DELETED: &str = "docworker_messages_deleted_total";
    pub const MESSAGES_REQUEUED: &str = "docworker_messages_requeued_total";
    pub const POISON_MESSAGES: &str = "docworker_poison_messages_total";
    pub const OBJECTS: &str = "docworker_objects_total";
    pub const OBJECTS_BY_INTEGRITY: &str = "docworker_objects_by_integrity_total";
    pub const REJECTIONS: &str = "docworker_rejections_total";
    pub const RETRIES: &str = "docworker_retries_total";
    pub const BYTES_STREAMED: &str = "docworker_bytes_streamed_total";
    pub const S3_RANGED_OBJECTS: &str = "docworker_s3_ranged_objects_total";
    pub const S3_RANGE_REQUESTS: &str = "docworker_s3_range_requests_total";
    pub const S3_RANGE_RETRIES: &str = "docworker_s3_range_retries_total";
    pub const PROCESSING_SECONDS: &str = "docworker_processing_seconds";
    pub const LAG_SECONDS: &str = "docworker_event_lag_seconds";
    pub const IN_FLIGHT: &str = "docworker_objects_in_flight";
    pub const QUEUE_MESSAGES: &str = "docworker_queue_messages";
    pub const NO_REDRIVE_POLICY: &str = "docworker_queue_without_redrive_policy";
    pub const READY: &str = "docworker_ready";
    pub const TAG_WRITES: &str = "docworker_tag_writes_total";
    pub const TAGS_DROPPED: &str = "docworker_tags_dropped_total";
    pub use crate::scanner::names::{SCAN_BACKLOG_BYTES, SCAN_SECONDS, SCANNER_AVAILABLE, SCANS};
    pub const STALE_PENDING_ROWS: &str = "docworker_stale_pending_rows";
    pub const OUTBOX_PUBLISHED: &str = "docworker_outbox_published_total";
    pub const OUTBOX_PUBLISH_FAILURES: &str = "docworker_outbox_publish_failures_total";
    pub const STUDIES_COMPLETED: &str = "docworker_studies_completed_total";
}

/// The kinds of outbox rows (the migration's CHECK on `outbox.kind`), the label of the outbox
/// counters. The outbox's depth and age gauges belong to the publisher (`notify::outbox`), which
/// exports them only where it runs.
pub const OUTBOX_KINDS: &[&str] = &["document", "study"];

/// Installs the Prometheus recorder for the process. `outcomes` are every outcome an object can
/// settle with (the pipeline's), so that each series starts at 0.
pub fn install_metrics(outcomes: &[&'static str]) -> anyhow::Result<PrometheusHandle> {
    let buckets = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)?
        .install_recorder()?;
    describe();
    start_at_zero(outcomes);
    Ok(handle)
}

/// Help text and unit for every metric: `# HELP` on `/metrics`, what `promtool check metrics`
/// asks for, and what a dashboard shows beside a series.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        names::OBJECTS_BY_INTEGRITY,
        Unit::Count,
        "Finalized objects by what vouched for their bytes and who computed it (`sha256:client` is end to end; `length-only` means S3 held nothing else to check)"
    );
    describe_counter!(
        names::RECEIVE_REQUESTS,
        Unit::Count,
        "ReceiveMessage requests answered by SQS, empty long polls included"
    );
    describe_counter!(
        names::MESSAGES_RECEIVED,
        Unit::Count,
        "SQS messages received; a message redelivered after its visibility timeout counts again"
    );
    describe_counter!(
        names::MESSAGES_DELETED,
        Unit::Count,
        "SQS messages deleted once every record's outcome was committed"
    );
    describe_counter!(
        names::MESSAGES_REQUEUED,
        Unit::Count,
        "Messages handed back to the queue with a delay after a retryable failure outlasted the in-process retries"
    );
    describe_counter!(
        names::POISON_MESSAGES,
        Unit::Count,
        "Messages or events no retry can settle, left for the dead-letter queue, by reason"
    );
    describe_counter!(
        names::OBJECTS,
        Unit::Count,
        "Objects settled, by outcome (finalized, rejected, deleted, stale, ignored, superseded, gone)"
    );
    describe_counter!(
        names::REJECTIONS,
        Unit::Count,
        "Objects rejected, by reason"
    );
    describe_counter!(
        names::RETRIES,
        Unit::Count,
        "In-process retries of retryable failures, by kind"
    );
    describe_counter!(
        names::BYTES_STREAMED,
        Unit::Bytes,
        "Object bytes read from S3"
    );
    describe_counter!(
        names::S3_RANGE_REQUESTS,
        Unit::Count,
        "Ranged GetObject requests of large objects read by ranges, retries included"
    );
    describe_counter!(
        names::S3_RANGED_OBJECTS,
        Unit::Count,
        "Large objects read on by ranges: their GetObject delivered slower than DOCWORKER_RANGED_BELOW_BYTES_PER_SEC, or it is always"
    );
    describe_counter!(
        names::S3_RANGE_RETRIES,
        Unit::Count,
        "Ranges asked for again after a failed request or a cut connection"
    );
    describe_histogram!(
        names::PROCESSING_SECONDS,
        Unit::Seconds,
        "Time from receiving a message to settling it"
    );
    describe_histogram!(
        names::LAG_SECONDS,
        Unit::Seconds,
        "Time from the S3 event to the finalized row's commit"
    );
    describe_gauge!(names::IN_FLIGHT, Unit::Count, "Objects being processed now");
    describe_gauge!(
        names::QUEUE_MESSAGES,
        Unit::Count,
        "Approximate messages in the queue (main or dead_letter) by state (visible or in_flight), polled every 15 s"
    );
    describe_gauge!(
        names::NO_REDRIVE_POLICY,
        "1 when the processing queue has no redrive policy (poison messages then circulate forever), else 0"
    );
    describe_counter!(
        names::OUTBOX_PUBLISHED,
        Unit::Count,
        "Events published from the outbox to EventBridge or SNS, by kind (document, study)"
    );
    describe_counter!(
        names::OUTBOX_PUBLISH_FAILURES,
        Unit::Count,
        "Outbox events whose publish failed and was rescheduled, by kind (document, study)"
    );
    describe_counter!(
        names::STUDIES_COMPLETED,
        Unit::Count,
        "Studies reported complete after their quiet period without a new instance"
    );
    describe_gauge!(
        names::READY,
        "1 while /readyz would answer 200 (database answers, queue reachable, clamd answers when configured, not shutting down), else 0; evaluated at each scrape and probe"
    );
    describe_counter!(
        names::SCANS,
        Unit::Count,
        "Objects scanned by clamd, by verdict (clean, infected, unavailable, too_large, timeout)"
    );
    describe_histogram!(
        names::SCAN_SECONDS,
        Unit::Seconds,
        "Time from an object's first chunk sent to clamd to its verdict (the scan overlaps the download)"
    );
    describe_histogram!(
        names::SCAN_BACKLOG_BYTES,
        Unit::Bytes,
        "Bytes of an object still queued for clamd when its download ended: at most the bounded queue, because the scan streams alongside the download"
    );
    describe_gauge!(
        names::SCANNER_AVAILABLE,
        "1 while clamd answers (its last ping or scan got a reply), else 0; exported only with DOCWORKER_CLAMD_ADDR"
    );
    describe_counter!(
        names::TAG_WRITES,
        Unit::Count,
        "Objects tagged with their docworker-status after the row committed, by outcome (written, unchanged, gone, failed after the in-process retries)"
    );
    describe_counter!(
        names::TAGS_DROPPED,
        Unit::Count,
        "Uploader tags dropped to make room for docworker's within S3's limit of 10 per object"
    );
    describe_gauge!(
        names::STALE_PENDING_ROWS,
        Unit::Count,
        "Rows pending for longer than DOCWORKER_PENDING_STALE_SECS (all buckets), counted every minute; docworker reconcile lists and repairs them"
    );
}

/// Counters with known label sets, at 0: a fresh worker exports `rejected 0` rather than no
/// series, so rates and alerts read 0 instead of "no data" until the first increment.
fn start_at_zero(outcomes: &[&'static str]) {
    use docworker_shared::{EventError, Rejection};

    use crate::error::ProcessError;
    for name in [
        names::RECEIVE_REQUESTS,
        names::MESSAGES_RECEIVED,
        names::MESSAGES_DELETED,
        names::MESSAGES_REQUEUED,
        names::BYTES_STREAMED,
        names::S3_RANGED_OBJECTS,
        names::S3_RANGE_REQUESTS,
        names::S3_RANGE_RETRIES,
        names::STUDIES_COMPLETED,
    ] {
        metrics::counter!(name).increment(0);
    }
    for kind in OUTBOX_KINDS {
        metrics::counter!(names::OUTBOX_PUBLISHED, "kind" => *kind).increment(0);
        metrics::counter!(names::OUTBOX_PUBLISH_FAILURES, "kind" => *kind).increment(0);
    }
    for outcome in outcomes {
        metrics::counter!(names::OBJECTS, "outcome" => *outcome).increment(0);
    }
    for reason in Rejection::LABELS {
        metrics::counter!(names::REJECTIONS, "reason" => *reason).increment(0);
    }
    for integrity in docworker_shared::integrity::Integrity::LABELS {
        metrics::counter!(names::OBJECTS_BY_INTEGRITY, "integrity" => *integrity).increment(0);
    }
    for kind in ProcessError::LABELS {
        metrics::counter!(names::RETRIES, "kind" => *kind).increment(0);
    }
    // A message is poison when its body does not parse, or when processing fails in a way no
    // retry can fix: both label sets.
    for reason in EventError::LABELS.iter().chain(ProcessError::LABELS) {
        metrics::counter!(names::POISON_MESSAGES, "reason" => *reason).increment(0);
    }
    for verdict in docworker_shared::gate::ScanVerdict::LABELS {
        metrics::counter!(names::SCANS, "verdict" => *verdict).increment(0);
    }
    for outcome in docworker_shared::gate::Tagged::LABELS {
        metrics::counter!(names::TAG_WRITES, "outcome" => *outcome).increment(0);
    }
    metrics::counter!(names::TAGS_DROPPED).increment(0);
    metrics::gauge!(names::IN_FLIGHT).set(0.0);
    // Registered so that they render with empty buckets before the first object.
    let _ = metrics::histogram!(names::PROCESSING_SECONDS);
    let _ = metrics::histogram!(names::LAG_SECONDS);
    let _ = metrics::histogram!(names::SCAN_SECONDS);
    let _ = metrics::histogram!(names::SCAN_BACKLOG_BYTES);
}

/// SQS's maximum long-poll wait, which the consumer polls with: fewer empty receives, and
/// messages arrive as soon as they exist. Readiness judges an open poll by it.
pub const LONG_POLL_WAIT: Duration = Duration::from_secs(20);

/// Shared readiness facts. The queue's part follows what the worker knows about SQS: every
/// attempt of every SQS call (start-up's GetQueueAttributes, receives, deletes, heartbeats, depth
/// polls) through [`QueueWatch`], and the long poll in flight, which holds no answer until it
/// ends but has not failed either.
#[derive(Debug, Default)]
pub struct Readiness {
    pub shutting_down: AtomicBool,
    queue: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    /// The last SQS attempt got an answer from the queue; false before the first one.
    answered: bool,
    last_failure: Option<Instant>,
    /// When the long poll in flight began.
    polling_since: Option<Instant>,
}

/// A refused or reset connection fails well within this: a poll open longer, begun after the
/// last failure, has reached the queue.
const POLL_SETTLES: Duration = Duration::from_secs(1);
/// Past its wait time and this much more, a long poll that has not returned is stuck (a network
/// that drops packets instead of refusing them), however quietly.
const POLL_GRACE: Duration = Duration::from_secs(10);

impl Readiness {
    /// Records one attempt's outcome: `answered` when the queue responded in a way that shows
    /// it can be used.
    fn record(&self, answered: bool) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.answered = answered;
        if !answered {
            queue.last_failure = Some(Instant::now());
        }
    }

    /// A long poll begins; the guard marks its end when dropped.
    pub fn long_poll(self: &Arc<Self>) -> LongPoll {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .polling_since = Some(Instant::now());
        LongPoll(self.clone())
    }

    /// Whether the queue is usable as far as the worker knows at `now`.
    fn queue_ready(&self, now: Instant) -> bool {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        match queue.polling_since {
            Some(since) if queue.last_failure.is_none_or(|failed| failed < since) => {
                let open = now.saturating_duration_since(since);
                open <= LONG_POLL_WAIT + POLL_GRACE && (queue.answered || open >= POLL_SETTLES)
            }
            _ => queue.answered,
        }
    }
}

/// A long poll in flight; see [`Readiness::long_poll`].
pub struct LongPoll(Arc<Readiness>);

impl Drop for LongPoll {
    fn drop(&mut self) {
        self.0
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .polling_since = None;
    }
}

/// Reports every attempt of every call on the worker's SQS client to [`Readiness`], so that
/// readiness needs no bookkeeping at each call site. Unreachable means no response, a 5xx, or
/// refused credentials (401/403): the worker cannot consume then. Other 4xx answers concern one
/// request (an expired receipt handle) and show the queue is there.
#[derive(Debug)]
pub struct QueueWatch(pub Arc<Readiness>);

impl Intercept for QueueWatch {
    fn name(&self) -> &'static str {
        "docworker-queue-readiness"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sqs::error::BoxError> {
        let answered = context.response().is_some_and(|response| {
            let status = response.status().as_u16();
            status < 500 && status != 401 && status != 403
        });
        self.0.record(answered);
        Ok(())
    }
}

#[derive(Clone)]
struct AppState {
    metrics: PrometheusHandle,
    /// CPU seconds, resident memory, open files, threads: read from /proc at each scrape.
    process: metrics_process::Collector,
    readiness: Arc<Readiness>,
    store: DocumentStore,
    /// Pinged by each readiness check when scanning is configured.
    scanner: Option<Scanner>,
}

/// Binds the address (failing start-up if it cannot) and serves until shutdown.
pub async fn serve(
    addr: SocketAddr,
    metrics: PrometheusHandle,
    readiness: Arc<Readiness>,
    store: DocumentStore,
    scanner: Option<Scanner>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on DOCWORKER_METRICS_ADDR {addr}: {e}"))?;
    info!(metrics_addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(AppState {
            process: {
                let collector = metrics_process::Collector::default();
                collector.describe();
                collector
            },
            metrics,
            readiness,
            store,
            scanner,
        });
    Ok(tokio::spawn(async move {
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    }))
}

async fn render_metrics(State(state): State<AppState>) -> String {
    state.process.collect();
    // The gauge follows readiness at each scrape, not only when something probes /readyz.
    check(&state).await;
    state.metrics.render()
}

async fn ready(State(state): State<AppState>) -> (StatusCode, String) {
    let (ready, body) = check(&state).await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

/// Whether the worker is ready, with the facts behind it; sets the readiness gauge.
async fn check(state: &AppState) -> (bool, String) {
    let readiness = &state.readiness;
    let database = matches!(
        tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await,
        Ok(Ok(()))
    );
    let queue = readiness.queue_ready(Instant::now());
    let stopping = readiness.shutting_down.load(Ordering::Acquire);
    // Without clamd nothing can be finalized: a configured scanner must answer too.
    let scanner = match &state.scanner {
        Some(scanner) => Some(scanner.ping().await),
        None => None,
    };
    let ready = database && queue && !stopping && scanner != Some(false);
    metrics::gauge!(names::READY).set(if ready { 1.0 } else { 0.0 });
    let mut body = format!("database: {database}\nqueue: {queue}\n");
    if let Some(scanner) = scanner {
        body.push_str(&format!("scanner: {scanner}\n"));
    }
    body.push_str(&format!("shutting_down: {stopping}\n"));
    (ready, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_ready_once_it_answered_and_while_a_poll_is_open() {
        let readiness = Arc::new(Readiness::default());
        assert!(!readiness.queue_ready(Instant::now()), "nothing known yet");
        readiness.record(true);
        assert!(
            readiness.queue_ready(Instant::now()),
            "start-up's call answered"
        );
        let poll = readiness.long_poll();
        assert!(
            readiness.queue_ready(Instant::now() + LONG_POLL_WAIT),
            "a poll waiting out its time has not failed"
        );
        assert!(
            !readiness.queue_ready(Instant::now() + LONG_POLL_WAIT + POLL_GRACE * 2),
            "a poll open far past its wait is stuck"
        );
        drop(poll);
        assert!(readiness.queue_ready(Instant::now() + LONG_POLL_WAIT * 10));
    }

    #[test]
    fn a_failure_makes_the_queue_unready_until_a_poll_outlives_fast_failures() {
        let readiness = Arc::new(Readiness::default());
        readiness.record(true);
        let poll = readiness.long_poll();
        readiness.record(false);
        assert!(
            !readiness.queue_ready(Instant::now() + POLL_SETTLES * 2),
            "the open poll's attempt failed"
        );
        drop(poll);
        assert!(!readiness.queue_ready(Instant::now()));
        let _poll = readiness.long_poll();
        assert!(
            !readiness.queue_ready(Instant::now()),
            "just begun: it may yet be refused"
        );
        assert!(
            readiness.queue_ready(Instant::now() + POLL_SETTLES * 2),
            "open for longer than a refused connection takes"
        );
        readiness.record(true);
        assert!(readiness.queue_ready(Instant::now()));
    }
}
