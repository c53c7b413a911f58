//! The command line and its configuration: flags with environment fallbacks, validated once at
//! start-up so that a bad setting stops the process with one line that names it (exit code 2).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sqlx::postgres::PgConnectOptions;
use thiserror::Error;

#[derive(Debug, Parser)]
#[command(
    name = "docworker",
    version,
    about = "Finalizes documents uploaded to S3: consumes \
    ObjectCreated events from SQS, streams and verifies each object, and records it in PostgreSQL."
)]
pub struct Cli {
    /// Log format: JSON lines for machines, text for people; `auto` picks text on a terminal.
    #[arg(long, env = "DOCWORKER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume the queue until SIGTERM or SIGINT (applies pending migrations first).
    Run(RunArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Reprocess objects by enqueueing S3-shaped ObjectCreated events onto the processing queue.
    Replay(ReplayArgs),
    /// Inspect and drain the dead-letter queue (found from the queue's redrive policy).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

/// `replay`'s settings: what to select, where to send it, and the database only for `--status`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The bucket whose objects are replayed.
    #[arg(long)]
    pub bucket: String,
    /// Only keys starting with this prefix (e.g. a category: `medical/`).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Only objects uploaded at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Select by Document status instead of listing the bucket; `any` lists the bucket.
    #[arg(long, value_enum, default_value_t = ReplayStatus::Any)]
    pub status: ReplayStatus,
    /// Events enqueued per second at most.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Report what would be enqueued without sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// URL of the SQS queue the events are sent to.
    #[arg(long, env = "DOCWORKER_QUEUE_URL")]
    pub queue_url: Option<String>,
    /// Path-style S3 URLs; on by default when `AWS_ENDPOINT_URL(_S3)` is set.
    #[arg(long, env = "DOCWORKER_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,
    /// Read only with `--status`, to select rows.
    #[command(flatten, next_help_heading = "Database (only with --status)")]
    pub database: DatabaseArgs,
}

/// Where the dead-letter queue is: named by the processing queue's redrive policy, or given.
#[derive(Debug, Args)]
pub struct DlqArgs {
    /// URL of the processing queue, whose redrive policy names the dead-letter queue.
    #[arg(long, env = "DOCWORKER_QUEUE_URL")]
    pub queue_url: Option<String>,
    /// The dead-letter queue, when the processing queue's redrive policy cannot name it.
    #[arg(long, env = "DOCWORKER_DLQ_URL")]
    pub dlq_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplayStatus {
    Finalized,
    Rejected,
    Pending,
    Any,
}

impl ReplayStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplayStatus::Finalized => "finalized",
            ReplayStatus::Rejected => "rejected",
            ReplayStatus::Pending => "pending",
            ReplayStatus::Any => "any",
        }
    }
}

/// Each action takes only what it uses: the database only for `peek`, and only optionally.
#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// Depth, messages in flight, and the age of the oldest message.
    Stats {
        #[command(flatten)]
        queues: DlqArgs,
    },
    /// Show messages without consuming them (they are made visible again at once).
    Peek {
        /// How many messages to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        queues: DlqArgs,
        /// Optional: with it, each message shows the last attempt recorded for its object.
        #[command(
            flatten,
            next_help_heading = "Database (optional: each message's last recorded attempt)"
        )]
        database: DatabaseArgs,
    },
    /// Move messages back to the processing queue.
    Redrive {
        /// Move at most this many (receive/send/delete); without it, SQS's native message-move
        /// task moves them all where available.
        #[arg(long)]
        max: Option<usize>,
        #[command(flatten)]
        queues: DlqArgs,
    },
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// URL of the SQS queue that receives the bucket's event notifications.
    #[arg(long, env = "DOCWORKER_QUEUE_URL")]
    pub queue_url: Option<String>,
    /// Objects larger than this are rejected from their metadata, without downloading them.
    #[arg(long, env = "DOCWORKER_MAX_OBJECT_BYTES", default_value_t = 1 << 30)]
    pub max_object_bytes: u64,
    /// Objects processed at once (each holds one message, one S3 stream and at most one
    /// database connection).
    #[arg(long, env = "DOCWORKER_CONCURRENCY", default_value_t = 16)]
    pub concurrency: usize,
    /// A DICOM file's elements before Pixel Data are held in memory while parsed; a header
    /// larger than this is rejected, which bounds memory per object.
    #[arg(long, env = "DOCWORKER_MAX_DICOM_HEADER_BYTES", default_value_t = 64 << 20)]
    pub max_dicom_header_bytes: u64,
    /// On SIGTERM, how long in-flight objects may take to finish; kept below ECS's 30 s stop
    /// timeout so the worker exits on its own terms.
    #[arg(long, env = "DOCWORKER_SHUTDOWN_DEADLINE_SECS", default_value_t = 25)]
    pub shutdown_deadline_secs: u64,
    /// After a receive that returned some messages but fewer than asked for (the queue is
    /// shallow), wait this long before the next one so that several messages share one
    /// ReceiveMessage request. At a steady trickle each request otherwise carries one message:
    /// SQS bills per request, and each costs the worker more CPU than the rest of a small
    /// object's processing. Adds at most this much latency; 0 turns it off.
    #[arg(long, env = "DOCWORKER_RECEIVE_LINGER_MS", default_value_t = 50)]
    pub receive_linger_ms: u64,
    /// Use path-style S3 URLs. Defaults to on when `AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3`
    /// points the SDK at an S3-compatible endpoint (emulators and most on-premise stores lack
    /// virtual-host DNS), off against AWS itself.
    #[arg(long, env = "DOCWORKER_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, env = "DOCWORKER_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_addr: String,
    /// The dead-letter queue, when it cannot be found from the main queue's redrive policy.
    #[arg(long, env = "DOCWORKER_DLQ_URL")]
    pub dlq_url: Option<String>,
    /// Refuse to start when the queue has no redrive policy (poison would circulate forever).
    #[arg(long, env = "DOCWORKER_REQUIRE_DLQ")]
    pub require_dlq: bool,
    /// Do not apply pending migrations at start.
    #[arg(long)]
    pub no_migrate: bool,
}

/// A configuration problem, phrased for the one line the operator sees.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0} is required (set the environment variable or pass --{1})")]
    Missing(&'static str, &'static str),
    #[error("{0} is not valid: {1}")]
    Invalid(&'static str, String),
}

/// `run`'s configuration after validation.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub database: PgConnectOptions,
    pub queue_url: String,
    pub max_object_bytes: u64,
    pub concurrency: usize,
    pub max_dicom_header_bytes: u64,
    pub shutdown_deadline: Duration,
    pub receive_linger: Duration,
    pub s3_path_style: bool,
    pub migrate: bool,
    pub metrics_addr: SocketAddr,
    pub dlq_url: Option<String>,
    pub require_dlq: bool,
}

/// `replay`'s configuration after validation.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub queue_url: String,
    pub s3_path_style: bool,
    /// Present when `--status` selects rows.
    pub database: Option<PgConnectOptions>,
}

/// `dlq`'s configuration after validation.
#[derive(Debug, Clone)]
pub struct DlqConfig {
    /// The processing queue; required to redrive, and to find the DLQ without `dlq_url`.
    pub queue_url: Option<String>,
    pub dlq_url: Option<String>,
    /// Only for `peek`, when given.
    pub database: Option<PgConnectOptions>,
}

/// Upper bound on `DOCWORKER_CONCURRENCY`: beyond this the database pool, not the worker, limits.
const MAX_CONCURRENCY: usize = 1024;
/// Upper bound on `DOCWORKER_RECEIVE_LINGER_MS`: beyond a second the wait costs latency that no
/// saving in requests pays for.
const MAX_RECEIVE_LINGER_MS: u64 = 1000;

impl DatabaseArgs {
    /// For commands that use the database only when it is given: `None` without a URL.
    pub fn validate_optional(&self) -> Result<Option<PgConnectOptions>, ConfigError> {
        match self.database_url.as_deref() {
            Some(url) if !url.trim().is_empty() => self.validate().map(Some),
            _ => Ok(None),
        }
    }

    pub fn validate(&self) -> Result<PgConnectOptions, ConfigError> {
        let url = self
            .database_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .ok_or(ConfigError::Missing("DATABASE_URL", "database-url"))?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::Invalid(
                "DATABASE_URL",
                "expected a postgres:// or postgresql:// URL".into(),
            ));
        }
        // The parser's message could quote the URL, password included: say only that it failed.
        url.parse().map_err(|_| {
            ConfigError::Invalid("DATABASE_URL", "not a parseable PostgreSQL URL".into())
        })
    }
}

impl RunArgs {
    pub fn validate(&self) -> Result<RunConfig, ConfigError> {
        let database = self.database.validate()?;
        let queue_url = required_queue_url(&self.queue_url)?;
        if self.max_object_bytes == 0 {
            return Err(ConfigError::Invalid(
                "DOCWORKER_MAX_OBJECT_BYTES",
                "must be at least 1".into(),
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(ConfigError::Invalid(
                "DOCWORKER_CONCURRENCY",
                format!(
                    "must be between 1 and {MAX_CONCURRENCY}, got {}",
                    self.concurrency
                ),
            ));
        }
        if self.receive_linger_ms > MAX_RECEIVE_LINGER_MS {
            return Err(ConfigError::Invalid(
                "DOCWORKER_RECEIVE_LINGER_MS",
                format!(
                    "must be at most {MAX_RECEIVE_LINGER_MS}, got {}",
                    self.receive_linger_ms
                ),
            ));
        }
        if self.max_dicom_header_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "DOCWORKER_MAX_DICOM_HEADER_BYTES",
                "must be at least 1024".into(),
            ));
        }
        let metrics_addr = self.metrics_addr.parse().map_err(|_| {
            ConfigError::Invalid(
                "DOCWORKER_METRICS_ADDR",
                format!(
                    "expected host:port such as 0.0.0.0:9090, got {:?}",
                    self.metrics_addr
                ),
            )
        })?;
        Ok(RunConfig {
            database,
            queue_url,
            max_object_bytes: self.max_object_bytes,
            concurrency: self.concurrency,
            max_dicom_header_bytes: self.max_dicom_header_bytes,
            shutdown_deadline: Duration::from_secs(self.shutdown_deadline_secs),
            receive_linger: Duration::from_millis(self.receive_linger_ms),
            s3_path_style: path_style(self.s3_path_style),
            migrate: !self.no_migrate,
            metrics_addr,
            dlq_url: self.dlq_url.clone().filter(|u| !u.trim().is_empty()),
            require_dlq: self.require_dlq,
        })
    }
}

impl ReplayArgs {
    pub fn validate(&self) -> Result<ReplayConfig, ConfigError> {
        let queue_url = required_queue_url(&self.queue_url)?;
        let database = match self.status {
            ReplayStatus::Any => None,
            _ => Some(self.database.validate()?),
        };
        Ok(ReplayConfig {
            queue_url,
            s3_path_style: path_style(self.s3_path_style),
            database,
        })
    }
}

impl DlqAction {
    pub fn validate(&self) -> Result<DlqConfig, ConfigError> {
        let (queues, database, redrive) = match self {
            DlqAction::Stats { queues } => (queues, None, false),
            DlqAction::Peek {
                queues, database, ..
            } => (queues, database.validate_optional()?, false),
            DlqAction::Redrive { queues, .. } => (queues, None, true),
        };
        let dlq_url = queues.dlq_url.clone().filter(|u| !u.trim().is_empty());
        // Redriving sends to the processing queue; otherwise it only leads to the DLQ.
        let queue_url = if redrive || dlq_url.is_none() {
            Some(required_queue_url(&queues.queue_url)?)
        } else {
            queue_url(&queues.queue_url)?
        };
        Ok(DlqConfig {
            queue_url,
            dlq_url,
            database,
        })
    }
}

/// `DOCWORKER_QUEUE_URL` when set: it must be an http(s) URL.
fn queue_url(value: &Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(url) = value.clone().filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConfigError::Invalid(
            "DOCWORKER_QUEUE_URL",
            format!("expected an http(s) SQS queue URL, got {url:?}"),
        ));
    }
    Ok(Some(url))
}

fn required_queue_url(value: &Option<String>) -> Result<String, ConfigError> {
    queue_url(value)?.ok_or(ConfigError::Missing("DOCWORKER_QUEUE_URL", "queue-url"))
}

/// Path-style S3 URLs unless said otherwise when an endpoint override points the SDK at an
/// S3-compatible store (emulators and most on-premise stores lack virtual-host DNS).
fn path_style(flag: Option<bool>) -> bool {
    flag.unwrap_or_else(|| {
        ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> RunArgs {
        let mut argv = vec!["docworker", "run"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Run(args) => args,
            _ => unreachable!("asked for run"),
        }
    }

    const GOOD: &[&str] = &[
        "--database-url",
        "postgres://postgres@127.0.0.1/docworker",
        "--queue-url",
        "http://127.0.0.1:4566/123456789012/uploads",
    ];

    #[test]
    fn defaults_follow_the_contract() {
        let config = run_args(GOOD).validate().unwrap();
        assert_eq!(config.max_object_bytes, 1_073_741_824);
        assert_eq!(config.concurrency, 16);
        assert_eq!(config.shutdown_deadline, Duration::from_secs(25));
        assert_eq!(config.receive_linger, Duration::from_millis(50));
        assert!(config.migrate);
    }

    #[test]
    fn each_bad_setting_is_named() {
        // Empty values stand for missing ones: the environment may hold real settings.
        let cases: &[(&[&str], &str)] = &[
            (
                &["--database-url", "", "--queue-url", "http://q"],
                "DATABASE_URL is required",
            ),
            (
                &["--database-url", "postgres://x/db", "--queue-url", ""],
                "DOCWORKER_QUEUE_URL is required",
            ),
            (
                &["--database-url", "mysql://x/db", "--queue-url", "http://q"],
                "DATABASE_URL is not valid",
            ),
            (
                &[
                    "--database-url",
                    "postgres://x/db",
                    "--queue-url",
                    "uploads",
                ],
                "DOCWORKER_QUEUE_URL is not valid",
            ),
        ];
        for (args, expected) in cases {
            let message = run_args(args).validate().unwrap_err().to_string();
            assert!(message.starts_with(expected), "{args:?}: {message}");
        }
        let mut zero = GOOD.to_vec();
        zero.extend(["--concurrency", "0"]);
        assert!(
            run_args(&zero)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("DOCWORKER_CONCURRENCY")
        );
        let mut slow = GOOD.to_vec();
        slow.extend(["--receive-linger-ms", "1001"]);
        assert!(
            run_args(&slow)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("DOCWORKER_RECEIVE_LINGER_MS")
        );
        let mut empty = GOOD.to_vec();
        empty.extend(["--max-object-bytes", "0"]);
        assert!(
            run_args(&empty)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("DOCWORKER_MAX_OBJECT_BYTES")
        );
    }

    #[test]
    fn a_bad_database_url_is_not_echoed() {
        let message = DatabaseArgs {
            database_url: Some("postgres://user:s3cret@host:notaport/db".into()),
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(!message.contains("s3cret"), "{message}");
    }

    fn parse(args: &[&str]) -> Command {
        let mut argv = vec!["docworker"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses").command
    }

    #[test]
    fn replay_needs_the_database_only_to_select_by_status() {
        let queue = ["--queue-url", "http://q/1/uploads", "--database-url", ""];
        let Command::Replay(listing) = parse(&[&["replay", "--bucket", "b"], &queue[..]].concat())
        else {
            unreachable!("asked for replay")
        };
        assert!(listing.validate().unwrap().database.is_none());
        let Command::Replay(by_status) = parse(
            &[
                &["replay", "--bucket", "b", "--status", "rejected"],
                &queue[..],
            ]
            .concat(),
        ) else {
            unreachable!("asked for replay")
        };
        let message = by_status.validate().unwrap_err().to_string();
        assert!(message.starts_with("DATABASE_URL is required"), "{message}");
    }

    #[test]
    fn dlq_actions_take_only_their_settings() {
        let dlq = |args: &[&str]| match parse(&[&["dlq"], args].concat()) {
            Command::Dlq { action } => action.validate(),
            _ => unreachable!("asked for dlq"),
        };
        let stats = dlq(&["stats", "--queue-url", "", "--dlq-url", "http://q/1/dlq"]).unwrap();
        assert_eq!(stats.queue_url, None);
        assert!(stats.database.is_none());
        let message = dlq(&["stats", "--queue-url", "", "--dlq-url", ""])
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("DOCWORKER_QUEUE_URL is required"),
            "{message}"
        );
        let message = dlq(&["redrive", "--queue-url", "", "--dlq-url", "http://q/1/dlq"])
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("DOCWORKER_QUEUE_URL is required"),
            "{message}"
        );
        let peek = dlq(&[
            "peek",
            "--queue-url",
            "http://q/1/uploads",
            "--database-url",
            "",
        ]);
        assert!(peek.unwrap().database.is_none(), "the database is optional");
        let message = dlq(&[
            "peek",
            "--queue-url",
            "http://q/1/u",
            "--database-url",
            "mysql://x",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            message.starts_with("DATABASE_URL is not valid"),
            "{message}"
        );
        for help in ["stats", "peek", "redrive"] {
            let error = Cli::try_parse_from(["docworker", "dlq", help, "--help"]).unwrap_err();
            let text = error.render().to_string();
            for unused in ["CONCURRENCY", "SHUTDOWN", "LINGER", "HEADER", "MAX_OBJECT"] {
                assert!(
                    !text.contains(unused),
                    "dlq {help} --help shows {unused}:\n{text}"
                );
            }
            assert_eq!(text.contains("DATABASE_URL"), help == "peek", "{text}");
        }
    }
}
