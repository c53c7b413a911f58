//! Building the clients every command uses: the AWS SDK's from its standard configuration chain,
//! and the database pool. The one place that knows how they are configured.

use std::sync::Arc;
use std::time::Duration;

use docworker_shared::DocumentStore;
use sqlx::postgres::PgPoolOptions;
use sqlx::{ConnectOptions, PgPool};

use crate::config::{Database, Destination, RunConfig};
use crate::observe::{QueueWatch, Readiness};
use crate::scanner::Scanner;

/// What `run` talks to. Built apart from the worker (it is handed to `App::build`), so that a test
/// can hand it clients of its own.
#[derive(Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub store: DocumentStore,
    /// Fed by every SQS call's outcome (see [`QueueWatch`]).
    pub readiness: Arc<Readiness>,
    /// clamd, when `DOCWORKER_CLAMD_ADDR` names one (connections open per object).
    pub scanner: Option<Scanner>,
    /// One connection for the outbox publisher and the study scanner, apart from the objects'
    /// pool: neither ever waits for the other.
    pub background: PgPool,
    /// Where the outbox is published, when it is.
    pub publish: Option<Publish>,
}

/// The client for the outbox's destination ([`Destination`]).
#[derive(Clone)]
pub enum Publish {
    // Clients named for their services: tests/integration/infra.rs finds the calls by name.
    EventBridge {
        eventbridge: aws_sdk_eventbridge::Client,
        bus: String,
    },
    Sns {
        sns: aws_sdk_sns::Client,
        topic_arn: String,
    },
}

/// A publish call, retries included, gives up after this: the outbox lease outlasts it.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(20);

impl Publish {
    pub fn new(aws: &aws_config::SdkConfig, destination: &Destination) -> Publish {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(PUBLISH_TIMEOUT)
            .build();
        match destination {
            Destination::EventBridge { bus } => Publish::EventBridge {
                eventbridge: aws_sdk_eventbridge::Client::from_conf(
                    aws_sdk_eventbridge::config::Builder::from(aws)
                        .timeout_config(timeouts)
                        .build(),
                ),
                bus: bus.clone(),
            },
            Destination::Sns { topic_arn } => Publish::Sns {
                sns: aws_sdk_sns::Client::from_conf(
                    aws_sdk_sns::config::Builder::from(aws)
                        .timeout_config(timeouts)
                        .build(),
                ),
                topic_arn: topic_arn.clone(),
            },
        }
    }
}

impl Clients {
    pub async fn connect(config: &RunConfig) -> anyhow::Result<Clients> {
        // One connection per object in flight, plus headroom for readiness checks.
        let pool = pool(&config.database, config.concurrency as u32 + 2);
        let aws = aws().await?;
        let readiness = Arc::new(Readiness::default());
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&aws)
                .interceptor(QueueWatch(readiness.clone()))
                .build(),
        );
        Ok(Clients {
            s3: s3(&aws, config.s3_path_style),
            sqs,
            store: DocumentStore::new(pool),
            readiness,
            scanner: config.scan.clone().map(Scanner::new),
            background: background_pool(&config.database),
            publish: config
                .notify
                .destination
                .as_ref()
                .map(|destination| Publish::new(&aws, destination)),
        })
    }
}

/// The AWS SDK's standard configuration chain (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials).
pub async fn aws() -> anyhow::Result<aws_config::SdkConfig> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    if aws.region().is_none() {
        anyhow::bail!("no AWS region configured: set AWS_REGION (or a profile's region)");
    }
    Ok(aws)
}

/// `path_style` for endpoints without virtual-hosted buckets (moto, MinIO).
pub fn s3(aws: &aws_config::SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(aws)
            .force_path_style(path_style)
            .build(),
    )
}

/// The outbox publisher's and study scanner's connection. They poll (every second, when the
/// outbox is idle), so their statements stay out of the debug log, which then shows each
/// object's own statements only.
fn background_pool(database: &Database) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(database.options().clone().disable_statement_logging())
}

/// Connections are opened on demand, so a database that is down at start-up (or later) delays
/// processing instead of killing the worker.
pub fn pool(database: &Database, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(database.options().clone())
}
