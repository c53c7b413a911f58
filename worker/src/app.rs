//! Start-up: connects the database, applies migrations, builds the AWS clients from the SDK's
//! standard configuration chain, and runs the poller until shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use docworker_shared::{DocumentStore, MIGRATOR};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::RunConfig;
use crate::observe::{self, QueueWatch, Readiness};
use crate::pipeline::Pipeline;
use crate::poller::Poller;
use crate::queue;

/// Recorded on every row the worker writes.
pub const PROCESSOR_VERSION: &str = concat!("docworker ", env!("CARGO_PKG_VERSION"));

pub async fn run(config: RunConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    if config.migrate {
        // Its own connection, without the worker's timeouts: a migration may wait for another
        // worker's migration lock, or rewrite a table for longer than a statement of the worker's
        // may take.
        let migrations = pool(config.migration_database.clone(), 1);
        migrate(&migrations).await?;
        migrations.close().await;
    }
    // One connection per object in flight, plus headroom for readiness checks.
    let pool = pool(config.database.clone(), config.concurrency as u32 + 2);
    let aws = aws().await?;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws)
            .force_path_style(config.s3_path_style)
            .build(),
    );
    let store = DocumentStore::new(pool);
    let readiness = Arc::new(Readiness::default());
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&aws)
            .interceptor(QueueWatch(readiness.clone()))
            .build(),
    );
    let metrics = observe::install_metrics()?;
    let server = observe::serve(
        config.metrics_addr,
        metrics,
        readiness.clone(),
        store.clone(),
        shutdown.clone(),
    )
    .await?;
    let stopping = readiness.clone();
    let on_stop = shutdown.clone();
    tokio::spawn(async move {
        on_stop.cancelled().await;
        stopping.shutting_down.store(true, Ordering::Release);
    });
    let Some(facts) = queue::inspect(&sqs, &config.queue_url, &shutdown).await else {
        return Ok(());
    };
    if config.require_dlq && facts.dlq_url.is_none() {
        anyhow::bail!(
            "the queue has no redrive policy and --require-dlq is set: poison messages would circulate forever"
        );
    }
    let mut watched = vec![("main", config.queue_url.clone())];
    if let Some(dlq) = config.dlq_url.clone().or(facts.dlq_url) {
        watched.push(("dead_letter", dlq));
    }
    tokio::spawn(queue::watch_depth(sqs.clone(), watched, shutdown.clone()));
    let poller = Poller {
        sqs,
        queue_url: config.queue_url,
        pipeline: Pipeline {
            s3,
            store,
            max_object_bytes: config.max_object_bytes,
            max_dicom_header_bytes: config.max_dicom_header_bytes,
            processor_version: PROCESSOR_VERSION,
        },
        concurrency: config.concurrency,
        shutdown_deadline: config.shutdown_deadline,
        receive_linger: config.receive_linger,
        visibility_timeout: facts.visibility_timeout,
        database_down: AtomicBool::new(false),
        readiness,
    };
    poller.run(shutdown).await;
    let _ = server.await;
    info!("stopped");
    Ok(())
}

/// The AWS SDK's standard configuration chain (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials).
pub async fn aws() -> anyhow::Result<aws_config::SdkConfig> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    if aws.region().is_none() {
        anyhow::bail!("no AWS region configured: set AWS_REGION (or a profile's region)");
    }
    Ok(aws)
}

/// Connections are opened on demand, so a database that is down at start-up (or later) delays
/// processing instead of killing the worker.
pub fn pool(options: PgConnectOptions, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options)
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")?;
    info!("database schema is up to date");
    Ok(())
}
