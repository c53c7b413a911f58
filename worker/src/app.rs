//! The worker: built from its configuration and clients, then run until cancelled.

use std::sync::atomic::Ordering;

use anyhow::Context;
use docworker_shared::MIGRATOR;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::clients::{self, Clients};
use crate::config::RunConfig;
use crate::consume::{Consumer, Settings, queue};
use crate::notify;
use crate::observe;
use crate::process::ranged::Ranges;
use crate::process::{Pipeline, Processed};

/// Recorded on every row the worker writes.
pub const PROCESSOR_VERSION: &str = concat!("docworker ", env!("CARGO_PKG_VERSION"));

/// `docworker run`: migrations when asked, then the worker until `shutdown`.
pub async fn run(config: RunConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    if config.migrate {
        // Its own connection, without the worker's timeouts: a migration may wait for another
        // worker's migration lock, or rewrite a table for longer than a statement of the worker's
        // may take.
        let migrations = clients::pool(&config.migration_database, 1);
        migrate(&migrations).await?;
        migrations.close().await;
    }
    let clients = Clients::connect(&config).await?;
    App::build(config, clients).run(shutdown).await
}

/// A worker ready to run: what it is configured to do, and what it talks to.
pub struct App {
    config: RunConfig,
    clients: Clients,
    /// Built once: its window and read-ahead budget are the worker's, whatever the pipelines.
    ranges: Ranges,
}

impl App {
    pub fn build(config: RunConfig, clients: Clients) -> App {
        let ranges = Ranges::new(&config.ranges);
        App {
            config,
            clients,
            ranges,
        }
    }

    /// The pipeline this worker runs each object through.
    pub fn pipeline(&self) -> Pipeline {
        Pipeline {
            s3: self.clients.s3.clone(),
            store: self.clients.store.clone(),
            max_object_bytes: self.config.max_object_bytes,
            max_dicom_header_bytes: self.config.max_dicom_header_bytes,
            processor_version: PROCESSOR_VERSION,
            scanner: self.clients.scanner.clone(),
            ranges: self.ranges.clone(),
        }
    }

    /// Serves metrics and health, inspects the queue, and consumes until `shutdown` is
    /// cancelled and in-flight messages are done.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let pipeline = self.pipeline();
        let App {
            config, clients, ..
        } = self;
        let metrics = observe::install_metrics(Processed::LABELS)?;
        notify::spawn(&clients, config.notify.study_quiet, shutdown.clone());
        let Clients {
            sqs,
            store,
            readiness,
            scanner,
            ..
        } = clients;
        if let Some(scanner) = &scanner {
            // Sets the availability gauge from the start; a clamd still loading its signatures
            // is waited for like any outage, object by object.
            let up = scanner.ping().await;
            info!(clamd = %scanner.config().addr, answers = up, "scanning every object with clamd");
        }
        tokio::spawn(observe::stale::watch(
            store.clone(),
            config.pending_stale,
            shutdown.clone(),
        ));
        let server = observe::serve(
            config.metrics_addr,
            metrics,
            readiness.clone(),
            store,
            scanner,
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
        let settings = Settings {
            concurrency: config.concurrency,
            shutdown_deadline: config.shutdown_deadline,
            receive_linger: config.receive_linger,
            visibility_timeout: facts.visibility_timeout,
        };
        let consumer = Consumer::new(sqs, config.queue_url, pipeline, settings, readiness);
        consumer.run(shutdown).await;
        let _ = server.await;
        info!("stopped");
        Ok(())
    }
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")?;
    info!("database schema is up to date");
    Ok(())
}
