//! What operators watch: Prometheus metrics on `/metrics`, liveness on `/healthz`, readiness on
//! `/readyz` (database answers, queue reachable, not shutting down).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use docworker_shared::DocumentStore;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Metric names, in one place so that the dashboard and alerts in `infra/` can rely on them.
pub mod names {
    pub const RECEIVE_REQUESTS: &str = "docworker_receive_requests_total";
    pub const MESSAGES_RECEIVED: &str = "docworker_messages_received_total";
    pub const MESSAGES_DELETED: &str = "docworker_messages_deleted_total";
    pub const MESSAGES_REQUEUED: &str = "docworker_messages_requeued_total";
    pub const POISON_MESSAGES: &str = "docworker_poison_messages_total";
    pub const OBJECTS: &str = "docworker_objects_total";
    pub const REJECTIONS: &str = "docworker_rejections_total";
    pub const RETRIES: &str = "docworker_retries_total";
    pub const BYTES_STREAMED: &str = "docworker_bytes_streamed_total";
    pub const PROCESSING_SECONDS: &str = "docworker_processing_seconds";
    pub const LAG_SECONDS: &str = "docworker_event_lag_seconds";
    pub const IN_FLIGHT: &str = "docworker_objects_in_flight";
    pub const QUEUE_MESSAGES: &str = "docworker_queue_messages";
    pub const NO_REDRIVE_POLICY: &str = "docworker_queue_without_redrive_policy";
    pub const READY: &str = "docworker_ready";
}

/// Installs the Prometheus recorder for the process.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let buckets = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)?
        .install_recorder()?;
    Ok(handle)
}

/// Shared readiness facts, updated by the poller.
#[derive(Default)]
pub struct Readiness {
    pub shutting_down: AtomicBool,
    /// The last receive from the queue succeeded.
    pub queue_reachable: AtomicBool,
}

#[derive(Clone)]
struct AppState {
    metrics: PrometheusHandle,
    /// CPU seconds, resident memory, open files, threads: read from /proc at each scrape.
    process: metrics_process::Collector,
    readiness: Arc<Readiness>,
    store: DocumentStore,
}

/// Binds the address (failing start-up if it cannot) and serves until shutdown.
pub async fn serve(
    addr: SocketAddr,
    metrics: PrometheusHandle,
    readiness: Arc<Readiness>,
    store: DocumentStore,
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
    state.metrics.render()
}

async fn ready(State(state): State<AppState>) -> (StatusCode, String) {
    let readiness = &state.readiness;
    let database = matches!(
        tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await,
        Ok(Ok(()))
    );
    let queue = readiness.queue_reachable.load(Ordering::Acquire);
    let stopping = readiness.shutting_down.load(Ordering::Acquire);
    let ready = database && queue && !stopping;
    metrics::gauge!(names::READY).set(if ready { 1.0 } else { 0.0 });
    let body = format!("database: {database}\nqueue: {queue}\nshutting_down: {stopping}\n");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}
