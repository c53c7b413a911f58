//! The command line and its configuration: flags with environment fallbacks, validated once at
//! start-up so that a bad setting stops the process with one line that names it (exit code 2).

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
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
    /// Compare the bucket with the documents table, key by key; with --fix, repair the drift.
    Reconcile(ReconcileArgs),
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

/// `reconcile`'s settings: what to compare, the database always, the queue only for `--fix`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The bucket compared with its rows.
    #[arg(long)]
    pub bucket: String,
    /// Only keys starting with this prefix.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Only keys whose object was modified, or row uploaded, at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Resume after this key (the last key done, as a previous run's summary printed it).
    #[arg(long, value_name = "KEY")]
    pub start_after: Option<String>,
    /// Repair: enqueue replays of objects to process, mark rows of vanished objects deleted.
    #[arg(long)]
    pub fix: bool,
    /// One JSON object per line: each finding, then the summary.
    #[arg(long)]
    pub json: bool,
    /// Repairs (replays and deletions) per second at most.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// A `pending` row older than this (seconds since its creation) is a finding.
    #[arg(
        long,
        env = "DOCWORKER_PENDING_STALE_SECS",
        default_value_t = 3600,
        value_name = "SECS"
    )]
    pub pending_stale_secs: u64,
    /// URL of the SQS queue replays are sent to (only with --fix).
    #[arg(long, env = "DOCWORKER_QUEUE_URL")]
    pub queue_url: Option<String>,
    /// Path-style S3 URLs; on by default when `AWS_ENDPOINT_URL(_S3)` is set.
    #[arg(long, env = "DOCWORKER_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,
    #[command(flatten, next_help_heading = "Database")]
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
    pub database_url: Option<DatabaseUrl>,
    /// TLS to the database, as libpq's `sslmode`; overrides the URL's. `verify-full` checks the
    /// server's certificate against `DOCWORKER_DB_SSL_ROOT_CERT` and its name against the host:
    /// anything less lets whoever sits on the network path read the records.
    #[arg(long, env = "DOCWORKER_DB_SSL_MODE", value_enum)]
    pub db_ssl_mode: Option<SslMode>,
    /// PEM bundle of the certificate authorities the database's certificate must chain to (on
    /// RDS, `global-bundle.pem`); overrides the URL's `sslrootcert`.
    #[arg(long, env = "DOCWORKER_DB_SSL_ROOT_CERT", value_name = "PEM")]
    pub db_ssl_root_cert: Option<PathBuf>,
}

/// A PostgreSQL connection URL as given. It may hold the password, so its `Debug` shows none of
/// it: the arguments can be printed whole without leaking it.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl(<redacted>)")
    }
}

impl FromStr for DatabaseUrl {
    type Err = Infallible;

    fn from_str(url: &str) -> Result<DatabaseUrl, Infallible> {
        Ok(DatabaseUrl(url.to_owned()))
    }
}

/// Validated connection options. They hold the password: `Debug` names the server, database
/// and role only.
#[derive(Clone)]
pub struct Database(PgConnectOptions);

impl Database {
    pub fn options(&self) -> &PgConnectOptions {
        &self.0
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("host", &self.0.get_host())
            .field("port", &self.0.get_port())
            .field("database", &self.0.get_database())
            .field("username", &self.0.get_username())
            .field("ssl_mode", &self.0.get_ssl_mode())
            .finish_non_exhaustive()
    }
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl From<SslMode> for PgSslMode {
    fn from(mode: SslMode) -> PgSslMode {
        match mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Allow => PgSslMode::Allow,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        }
    }
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
    /// What reading one DICOM header may allocate (its bytes after inflation, each value, the
    /// JSON, a quarter of it at most); a header that needs more is rejected. One term of the
    /// memory bound checked against `DOCWORKER_MEMORY_LIMIT`.
    #[arg(long, env = "DOCWORKER_MAX_DICOM_HEADER_BYTES", default_value_t = 16 << 20)]
    pub max_dicom_header_bytes: u64,
    /// The memory the worker may use, in bytes (or with a binary suffix: `512Mi`, `1Gi`);
    /// without it, the container's cgroup limit when there is one. A configuration whose bound
    /// (see [`memory_bound`]) exceeds it does not start.
    #[arg(long, env = "DOCWORKER_MEMORY_LIMIT", value_parser = parse_bytes)]
    pub memory_limit: Option<u64>,
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
    /// Do not apply pending migrations at start (the runtime role of a two-role set-up cannot).
    #[arg(long)]
    pub no_migrate: bool,
    /// Longest a statement of the worker's may run. Bounds what a slow or stuck database costs:
    /// without it a write waits forever while the heartbeat keeps its message in flight.
    #[arg(
        long,
        env = "DOCWORKER_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub db_statement_timeout_ms: u64,
    /// Longest a statement of the worker's waits for a row lock (another session holding the
    /// document's row): the write fails as retryable instead of queueing behind it.
    #[arg(long, env = "DOCWORKER_DB_LOCK_TIMEOUT_MS", default_value_t = 5_000)]
    pub db_lock_timeout_ms: u64,
    /// A `pending` row older than this (seconds since the upload path created it) counts in the
    /// `docworker_stale_pending_rows` gauge: an upload that never completed, or a lost event.
    #[arg(
        long,
        env = "DOCWORKER_PENDING_STALE_SECS",
        default_value_t = 3600,
        value_name = "SECS"
    )]
    pub pending_stale_secs: u64,
    #[command(flatten, next_help_heading = "Notifications")]
    pub notify: NotifyArgs,
    #[command(flatten, next_help_heading = "Malware scanning")]
    pub scan: ScanArgs,
    #[command(flatten, next_help_heading = "Ranged reads of large objects")]
    pub ranges: RangeArgs,
}

/// Ranged reads (see `process::ranged`): large objects fetched as byte ranges over several
/// connections at once, since one S3 connection serves a small share of what one core hashes.
/// Defaults from the measurements in docs/performance.md §10.
#[derive(Debug, Args)]
pub struct RangeArgs {
    /// Objects of at least this many bytes (as their event announces) are read by ranges; a
    /// value above DOCWORKER_MAX_OBJECT_BYTES turns ranged reads off.
    #[arg(long, env = "DOCWORKER_RANGED_THRESHOLD_BYTES", default_value_t = RangeConfig::DEFAULT.threshold)]
    pub ranged_threshold_bytes: u64,
    /// A large object's GetObject is read on by ranges when its first MiB, read as soon as its
    /// headers are in, came slower than this (bytes per second):
    /// S3 serves one connection at 85–200 MB/s, a local emulator at over 1 GB/s, one core hashes
    /// SHA-256 at 1.4–2.1 GB/s. `never` (or 0) reads every object over its one GetObject;
    /// `always` splits every one without measuring, its first ranges asked for with the
    /// GetObject (the setting for S3).
    #[arg(long, env = "DOCWORKER_RANGED_BELOW_BYTES_PER_SEC", default_value_t = RangeConfig::DEFAULT.split_below, value_parser = parse_rate)]
    pub ranged_below_bytes_per_sec: u64,
    /// The bytes one ranged GET asks for.
    #[arg(long, env = "DOCWORKER_RANGE_BYTES", default_value_t = RangeConfig::DEFAULT.range_bytes)]
    pub range_bytes: u64,
    /// Ranges in flight across the worker (requested and not yet read to their end).
    #[arg(long, env = "DOCWORKER_RANGE_WINDOW", default_value_t = RangeConfig::DEFAULT.window)]
    pub range_window: usize,
    /// Bytes read ahead of their turn across the worker: every range but the one being hashed
    /// keeps what it read within this budget, and waits when it is spent.
    #[arg(long, env = "DOCWORKER_RANGE_BUFFER_BYTES", default_value_t = RangeConfig::DEFAULT.buffer_bytes)]
    pub range_buffer_bytes: u64,
}

/// The ranged-read settings after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeConfig {
    pub threshold: u64,
    pub split_below: u64,
    pub range_bytes: u64,
    pub window: usize,
    pub buffer_bytes: u64,
}

impl RangeConfig {
    pub const DEFAULT: RangeConfig = RangeConfig {
        threshold: 64 << 20,
        split_below: 300_000_000,
        range_bytes: 8 << 20,
        window: 16,
        buffer_bytes: 32 << 20,
    };
}

impl Default for RangeConfig {
    fn default() -> Self {
        RangeConfig::DEFAULT
    }
}

/// The most ranges in flight: each is a connection to S3.
const MAX_RANGE_WINDOW: usize = 256;

impl RangeArgs {
    pub fn validate(&self) -> Result<RangeConfig, ConfigError> {
        if !(64 << 10..=1 << 30).contains(&self.range_bytes) {
            return Err(ConfigError::Invalid(
                "DOCWORKER_RANGE_BYTES",
                format!(
                    "must be between 65536 (64 KiB) and 1073741824 (1 GiB), got {}",
                    self.range_bytes
                ),
            ));
        }
        if !(1..=MAX_RANGE_WINDOW).contains(&self.range_window) {
            return Err(ConfigError::Invalid(
                "DOCWORKER_RANGE_WINDOW",
                format!(
                    "must be between 1 and {MAX_RANGE_WINDOW}, got {}",
                    self.range_window
                ),
            ));
        }
        // A chunk is at most a range: a smaller budget could never hold one read ahead.
        if self.range_buffer_bytes < self.range_bytes {
            return Err(ConfigError::Invalid(
                "DOCWORKER_RANGE_BUFFER_BYTES",
                format!(
                    "must be at least DOCWORKER_RANGE_BYTES ({}), got {}",
                    self.range_bytes, self.range_buffer_bytes
                ),
            ));
        }
        Ok(RangeConfig {
            threshold: self.ranged_threshold_bytes.max(1),
            split_below: self.ranged_below_bytes_per_sec,
            range_bytes: self.range_bytes,
            window: self.range_window,
            buffer_bytes: self.range_buffer_bytes,
        })
    }
}

/// The gate's scanner. Off unless `DOCWORKER_CLAMD_ADDR` names a clamd: the worker then behaves
/// as before and rows say `scan: not configured`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The clamd every object is streamed to (INSTREAM), as `host:port` or the path of its Unix
    /// socket.
    #[arg(long, env = "DOCWORKER_CLAMD_ADDR")]
    pub clamd_addr: Option<String>,
    /// How long clamd may take to accept a chunk; and to answer once the last one is sent, plus
    /// one second per 5 MiB sent, since clamd scans the stream only after its end
    /// (`scanner::answer_timeout`). Then the object is not scanned (timeout), which is retried
    /// like an unavailable scanner.
    #[arg(long, env = "DOCWORKER_SCAN_TIMEOUT_SECS", default_value_t = 60)]
    pub scan_timeout_secs: u64,
    /// Objects above this many bytes are not sent to clamd (not scanned: too large). Keep it at
    /// most clamd's `StreamMaxLength`, which refuses a longer stream midway. The default is the
    /// default `DOCWORKER_MAX_OBJECT_BYTES`, so that every object the worker reads (a 1 GB CBCT
    /// study too) is scanned rather than refused as too large.
    #[arg(long, env = "DOCWORKER_SCAN_MAX_BYTES", default_value_t = 1 << 30)]
    pub scan_max_bytes: u64,
    /// Finalize objects that could not be scanned (unavailable, too large, timeout) instead of
    /// retrying them (transient reasons) or rejecting them (too large).
    #[arg(long, env = "DOCWORKER_SCAN_ALLOW_UNSCANNED")]
    pub scan_allow_unscanned: bool,
}

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddr {
    Tcp(String),
    Unix(PathBuf),
}

impl std::fmt::Display for ClamdAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClamdAddr::Tcp(addr) => f.write_str(addr),
            ClamdAddr::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The scanner's settings after validation.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub addr: ClamdAddr,
    pub timeout: Duration,
    pub max_bytes: u64,
    pub allow_unscanned: bool,
}

impl ScanArgs {
    /// `None` when no clamd is named (unset or empty).
    pub fn validate(&self) -> Result<Option<ScanConfig>, ConfigError> {
        let Some(addr) = self
            .clamd_addr
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
        else {
            return Ok(None);
        };
        let addr = if addr.contains('/') {
            ClamdAddr::Unix(PathBuf::from(addr))
        } else {
            match addr.rsplit_once(':') {
                Some((host, port))
                    if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) =>
                {
                    ClamdAddr::Tcp(addr.to_owned())
                }
                _ => {
                    return Err(ConfigError::Invalid(
                        "DOCWORKER_CLAMD_ADDR",
                        format!(
                            "expected host:port such as 127.0.0.1:3310, or the path of clamd's Unix socket, got {addr:?}"
                        ),
                    ));
                }
            }
        };
        if self.scan_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "DOCWORKER_SCAN_TIMEOUT_SECS",
                "must be at least 1".into(),
            ));
        }
        if self.scan_max_bytes == 0 || self.scan_max_bytes > u64::from(u32::MAX) {
            return Err(ConfigError::Invalid(
                "DOCWORKER_SCAN_MAX_BYTES",
                format!(
                    "must be between 1 and {} (clamd's StreamMaxLength is at most 4 GiB), got {}",
                    u32::MAX,
                    self.scan_max_bytes
                ),
            ));
        }
        Ok(Some(ScanConfig {
            addr,
            timeout: Duration::from_secs(self.scan_timeout_secs),
            max_bytes: self.scan_max_bytes,
            allow_unscanned: self.scan_allow_unscanned,
        }))
    }
}

/// `run`'s notification settings: where the outbox is published, and when a study is complete.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// EventBridge bus (name or ARN) that receives one event per settled outcome and per
    /// completed study, published from the outbox. Unset (and no SNS topic): the outbox is kept,
    /// not published.
    #[arg(long, env = "DOCWORKER_EVENT_BUS")]
    pub event_bus: Option<String>,
    /// SNS topic ARN that receives them instead (one of the two at most).
    #[arg(long, env = "DOCWORKER_SNS_TOPIC_ARN")]
    pub sns_topic_arn: Option<String>,
    /// A study that has received no new instance for this long is reported complete, once.
    #[arg(long, env = "DOCWORKER_STUDY_QUIET_SECS", default_value_t = 120)]
    pub study_quiet_secs: u64,
}

/// Where the outbox is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An EventBridge bus, by name or ARN: events with source `docworker`.
    EventBridge { bus: String },
    /// A standard SNS topic.
    Sns { topic_arn: String },
}

/// The notification settings after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub destination: Option<Destination>,
    pub study_quiet: Duration,
}

impl NotifyArgs {
    pub fn validate(&self) -> Result<NotifyConfig, ConfigError> {
        let set = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        let destination = match (set(&self.event_bus), set(&self.sns_topic_arn)) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "DOCWORKER_EVENT_BUS",
                    "set DOCWORKER_EVENT_BUS or DOCWORKER_SNS_TOPIC_ARN, not both".into(),
                ));
            }
            (Some(bus), None) => Some(Destination::EventBridge { bus }),
            (None, Some(topic_arn)) => {
                if !topic_arn.starts_with("arn:") {
                    return Err(ConfigError::Invalid(
                        "DOCWORKER_SNS_TOPIC_ARN",
                        format!("expected an arn:…:sns:… topic ARN, got {topic_arn:?}"),
                    ));
                }
                Some(Destination::Sns { topic_arn })
            }
            (None, None) => None,
        };
        if self.study_quiet_secs == 0 {
            return Err(ConfigError::Invalid(
                "DOCWORKER_STUDY_QUIET_SECS",
                "must be at least 1".into(),
            ));
        }
        Ok(NotifyConfig {
            destination,
            study_quiet: Duration::from_secs(self.study_quiet_secs),
        })
    }
}

/// A configuration problem, phrased for the one line the operator sees.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0} is required (set the environment variable or pass --{1})")]
    Missing(&'static str, &'static str),
    #[error("{0} is not valid: {1}")]
    Invalid(&'static str, String),
    #[error(
        "DOCWORKER_CONCURRENCY × (DOCWORKER_MAX_DICOM_HEADER_BYTES + {stream} MiB) + \
         DOCWORKER_RANGE_WINDOW × {range} MiB + DOCWORKER_RANGE_BUFFER_BYTES + {base} MiB = \
         {concurrency} × ({budget} MiB + {stream} MiB) + {window} × {range} MiB + {buffer} MiB + \
         {base} MiB = {bound} MiB exceeds the memory limit of {limit} MiB ({origin}): lower \
         DOCWORKER_CONCURRENCY, DOCWORKER_MAX_DICOM_HEADER_BYTES or the ranged-read settings, or \
         raise the limit",
        stream = PER_OBJECT_STREAM_BYTES >> 20,
        range = PER_RANGE_BYTES >> 20,
        base = BASE_MEMORY_BYTES >> 20,
        budget = mib(*budget),
        window = ranges.window,
        buffer = mib(ranges.buffer_bytes),
        bound = mib(*bound),
        limit = mib(*limit)
    )]
    OverMemory {
        concurrency: usize,
        budget: u64,
        ranges: RangeConfig,
        bound: u64,
        limit: u64,
        origin: &'static str,
    },
}

/// What the worker holds besides its objects: the runtime and its threads, the AWS and database
/// clients, the pool's connections and the metrics registry. Measured at 20–30 MiB resident idle
/// and after a run of small objects (docs/performance.md); rounded up.
pub const BASE_MEMORY_BYTES: u64 = 64 << 20;

/// What one object in flight holds besides its DICOM header budget: the 32 KiB sniffing prefix,
/// up to four 1 MiB hashing batches, the parser's chunk queue, and the HTTP and TLS buffers of its
/// stream. A 1 GiB object streams in under 30 MiB of RSS including the base; rounded up.
pub const PER_OBJECT_STREAM_BYTES: u64 = 8 << 20;

/// What one range in flight holds besides the bytes charged to the read-ahead budget: the HTTP
/// client's read buffer (hyper's grows to ~400 KiB) and one chunk read but not yet charged.
pub const PER_RANGE_BYTES: u64 = 1 << 20;

/// The most memory the worker can use: every object in flight at its header budget, the ranges in
/// flight and the read-ahead budget of ranged reads, plus the base. The header budget counts what
/// the DICOM reader allocates, so it is the only term an uploader moves; the others are fixed by
/// the code and the settings.
pub fn memory_bound(concurrency: usize, max_dicom_header_bytes: u64, ranges: &RangeConfig) -> u64 {
    (concurrency as u64)
        .saturating_mul(max_dicom_header_bytes.saturating_add(PER_OBJECT_STREAM_BYTES))
        .saturating_add((ranges.window as u64).saturating_mul(PER_RANGE_BYTES))
        .saturating_add(ranges.buffer_bytes)
        .saturating_add(BASE_MEMORY_BYTES)
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// A byte count: a plain integer, or one with a binary suffix as Kubernetes writes them (`Ki`,
/// `Mi`, `Gi`, `Ti`, optionally followed by `B`).
fn parse_bytes(value: &str) -> Result<u64, String> {
    let value = value.trim();
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let shift = match &value[digits.len()..] {
        "" | "B" => 0,
        "Ki" | "KiB" => 10,
        "Mi" | "MiB" => 20,
        "Gi" | "GiB" => 30,
        "Ti" | "TiB" => 40,
        _ => {
            return Err(format!(
                "expected bytes, e.g. 536870912 or 512Mi, got {value:?}"
            ));
        }
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("expected bytes, e.g. 536870912 or 512Mi, got {value:?}"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{value:?} is too large"))
}

/// A rate in bytes per second, or `never` (0) or `always` (`u64::MAX`, which no measure reaches).
fn parse_rate(value: &str) -> Result<u64, String> {
    match value.trim() {
        "never" => Ok(0),
        "always" => Ok(u64::MAX),
        digits => digits
            .parse()
            .map_err(|_| format!("expected bytes per second, never or always, got {value:?}")),
    }
}

/// The memory limit of the cgroup the process runs in, under `root` (`/sys/fs/cgroup`): v2's
/// `memory.max`, else v1's `memory/memory.limit_in_bytes`. `None` when unlimited (`max`, or v1's
/// "no limit" of nearly 2^63) or when neither file is there.
pub fn cgroup_memory_limit(root: &Path) -> Option<(u64, &'static str)> {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).ok();
    if let Some(max) = read("memory.max") {
        return max
            .trim()
            .parse()
            .ok()
            .map(|limit| (limit, "cgroup v2 memory.max"));
    }
    let limit: u64 = read("memory/memory.limit_in_bytes")?.trim().parse().ok()?;
    (limit < 1 << 62).then_some((limit, "cgroup v1 memory.limit_in_bytes"))
}

/// Refuses a configuration whose memory bound exceeds the limit, when there is one.
pub fn check_memory(
    concurrency: usize,
    max_dicom_header_bytes: u64,
    ranges: &RangeConfig,
    limit: Option<(u64, &'static str)>,
) -> Result<(), ConfigError> {
    let bound = memory_bound(concurrency, max_dicom_header_bytes, ranges);
    match limit {
        Some((limit, origin)) if bound > limit => Err(ConfigError::OverMemory {
            concurrency,
            budget: max_dicom_header_bytes,
            ranges: *ranges,
            bound,
            limit,
            origin,
        }),
        _ => Ok(()),
    }
}

/// `run`'s configuration after validation.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The worker's connections: with statement and lock timeouts.
    pub database: Database,
    /// For migrations, which may lawfully wait on a lock or run long: without the timeouts.
    pub migration_database: Database,
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
    /// `None` when scanning is not configured.
    pub scan: Option<ScanConfig>,
    pub ranges: RangeConfig,
    pub pending_stale: Duration,
    pub notify: NotifyConfig,
}

/// `replay`'s configuration after validation.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub queue_url: String,
    pub s3_path_style: bool,
    /// Present when `--status` selects rows.
    pub database: Option<Database>,
}

/// `reconcile`'s configuration after validation.
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    pub database: Database,
    /// Present with `--fix`: where replays go.
    pub queue_url: Option<String>,
    pub s3_path_style: bool,
    pub pending_stale: Duration,
}

/// `dlq`'s configuration after validation.
#[derive(Debug, Clone)]
pub struct DlqConfig {
    /// The processing queue; required to redrive, and to find the DLQ without `dlq_url`.
    pub queue_url: Option<String>,
    pub dlq_url: Option<String>,
    /// Only for `peek`, when given.
    pub database: Option<Database>,
}

/// Upper bound on `DOCWORKER_CONCURRENCY`: beyond this the database pool, not the worker, limits.
const MAX_CONCURRENCY: usize = 1024;
/// Upper bound on `DOCWORKER_RECEIVE_LINGER_MS`: beyond a second the wait costs latency that no
/// saving in requests pays for.
const MAX_RECEIVE_LINGER_MS: u64 = 1000;

impl DatabaseArgs {
    /// For commands that use the database only when it is given: `None` without a URL.
    pub fn validate_optional(&self) -> Result<Option<Database>, ConfigError> {
        match self.database_url.as_ref().map(DatabaseUrl::expose) {
            Some(url) if !url.trim().is_empty() => self.validate().map(Some),
            _ => Ok(None),
        }
    }

    /// The connection options, TLS settings applied.
    pub fn validate(&self) -> Result<Database, ConfigError> {
        let options = self.url()?;
        let url_root_cert = self
            .database_url
            .as_ref()
            .map(DatabaseUrl::expose)
            .and_then(url_root_cert);
        let mode = match self.db_ssl_mode {
            Some(mode) => mode.into(),
            None => options.get_ssl_mode(),
        };
        let root_cert = self.db_ssl_root_cert.clone().or(url_root_cert);
        // sqlx also reads libpq's PGSSLROOTCERT, a path or the PEM itself.
        let env_root_cert = std::env::var_os("PGSSLROOTCERT").is_some_and(|v| !v.is_empty());
        if matches!(mode, PgSslMode::VerifyCa | PgSslMode::VerifyFull)
            && root_cert.is_none()
            && !env_root_cert
        {
            return Err(ConfigError::Invalid(
                "DOCWORKER_DB_SSL_MODE",
                "verify-ca and verify-full need DOCWORKER_DB_SSL_ROOT_CERT (the CA bundle, e.g. RDS's global-bundle.pem)".into(),
            ));
        }
        if let Some(path) = &root_cert {
            check_root_cert(path)?;
        }
        let options = options.ssl_mode(mode);
        Ok(Database(match &self.db_ssl_root_cert {
            Some(path) => options.ssl_root_cert(path),
            None => options,
        }))
    }

    fn url(&self) -> Result<PgConnectOptions, ConfigError> {
        let url = self
            .database_url
            .as_ref()
            .map(DatabaseUrl::expose)
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
        let migration_database = self.database.validate()?;
        if self.db_statement_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "DOCWORKER_DB_STATEMENT_TIMEOUT_MS",
                "must be at least 1 (0 would let a statement run forever)".into(),
            ));
        }
        if !(1..=self.db_statement_timeout_ms).contains(&self.db_lock_timeout_ms) {
            return Err(ConfigError::Invalid(
                "DOCWORKER_DB_LOCK_TIMEOUT_MS",
                format!(
                    "must be between 1 and DOCWORKER_DB_STATEMENT_TIMEOUT_MS ({}), got {}",
                    self.db_statement_timeout_ms, self.db_lock_timeout_ms
                ),
            ));
        }
        let database = Database(migration_database.0.clone().options([
            ("statement_timeout", self.db_statement_timeout_ms),
            ("lock_timeout", self.db_lock_timeout_ms),
        ]));
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
        let limit = match self.memory_limit {
            Some(limit) => Some((limit, "DOCWORKER_MEMORY_LIMIT")),
            None => cgroup_memory_limit(Path::new("/sys/fs/cgroup")),
        };
        let ranges = self.ranges.validate()?;
        check_memory(
            self.concurrency,
            self.max_dicom_header_bytes,
            &ranges,
            limit,
        )?;
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
            migration_database,
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
            scan: self.scan.validate()?,
            ranges,
            pending_stale: pending_stale(self.pending_stale_secs)?,
            notify: self.notify.validate()?,
        })
    }
}

/// The `sslrootcert` of a URL's query, which sqlx reads too: checked here, so that a missing
/// file stops start-up instead of failing every connection.
fn url_root_cert(url: &str) -> Option<PathBuf> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(name, _)| matches!(name.as_ref(), "sslrootcert" | "ssl-root-cert"))
        .map(|(_, value)| PathBuf::from(value.into_owned()))
}

fn check_root_cert(path: &std::path::Path) -> Result<(), ConfigError> {
    let setting = "DOCWORKER_DB_SSL_ROOT_CERT";
    let pem = std::fs::read(path).map_err(|e| {
        ConfigError::Invalid(setting, format!("cannot read {}: {e}", path.display()))
    })?;
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(ConfigError::Invalid(
            setting,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(())
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

impl ReconcileArgs {
    pub fn validate(&self) -> Result<ReconcileConfig, ConfigError> {
        let database = self.database.validate()?;
        let queue_url = if self.fix {
            Some(required_queue_url(&self.queue_url)?)
        } else {
            None
        };
        if self.rate == 0 {
            return Err(ConfigError::Invalid("--rate", "must be at least 1".into()));
        }
        Ok(ReconcileConfig {
            database,
            queue_url,
            s3_path_style: path_style(self.s3_path_style),
            pending_stale: pending_stale(self.pending_stale_secs)?,
        })
    }
}

/// `DOCWORKER_PENDING_STALE_SECS`: 0 would call every pending row stale, uploads in flight too.
fn pending_stale(secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(ConfigError::Invalid(
            "DOCWORKER_PENDING_STALE_SECS",
            "must be at least 1".into(),
        ));
    }
    Ok(Duration::from_secs(secs))
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

    fn notify(args: &[&str]) -> Result<NotifyConfig, ConfigError> {
        let mut argv = GOOD.to_vec();
        argv.extend_from_slice(args);
        run_args(&argv).notify.validate()
    }

    #[test]
    fn without_a_destination_nothing_is_published_and_studies_settle_after_two_minutes() {
        let config = notify(&[]).expect("valid");
        assert_eq!(config.destination, None);
        assert_eq!(config.study_quiet, Duration::from_secs(120));
        assert_eq!(notify(&["--event-bus", " "]).unwrap().destination, None);
    }

    #[test]
    fn one_outbox_destination_at_most_and_each_bad_notify_setting_is_named() {
        assert_eq!(
            notify(&["--event-bus", "clinic"]).unwrap().destination,
            Some(Destination::EventBridge {
                bus: "clinic".into()
            })
        );
        let topic = "arn:aws:sns:eu-west-1:123456789012:docworker";
        assert_eq!(
            notify(&["--sns-topic-arn", topic]).unwrap().destination,
            Some(Destination::Sns {
                topic_arn: topic.into()
            })
        );
        let both = notify(&["--event-bus", "b", "--sns-topic-arn", topic]).unwrap_err();
        assert!(both.to_string().contains("not both"), "{both}");
        let bad = notify(&["--sns-topic-arn", "docworker"]).unwrap_err();
        assert!(
            bad.to_string().starts_with("DOCWORKER_SNS_TOPIC_ARN"),
            "{bad}"
        );
        let zero = notify(&["--study-quiet-secs", "0"]).unwrap_err();
        assert!(
            zero.to_string().starts_with("DOCWORKER_STUDY_QUIET_SECS"),
            "{zero}"
        );
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = run_args(GOOD).validate().unwrap();
        assert_eq!(config.max_object_bytes, 1_073_741_824);
        assert_eq!(config.concurrency, 16);
        assert_eq!(config.shutdown_deadline, Duration::from_secs(25));
        assert_eq!(config.receive_linger, Duration::from_millis(50));
        assert!(config.migrate);
        let args = run_args(GOOD);
        assert_eq!(
            args.scan.scan_max_bytes, args.max_object_bytes,
            "every object the worker reads is scanned, none refused as too large to scan"
        );
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
    fn the_worker_connections_carry_statement_and_lock_timeouts() {
        let config = run_args(GOOD).validate().unwrap();
        let options = config.database.options().get_options().unwrap_or_default();
        assert!(options.contains("statement_timeout=30000"), "{options}");
        assert!(options.contains("lock_timeout=5000"), "{options}");
        assert_eq!(
            config.migration_database.options().get_options(),
            None,
            "migrations may wait on the migration lock"
        );
        let mut custom = GOOD.to_vec();
        custom.extend([
            "--db-statement-timeout-ms",
            "800",
            "--db-lock-timeout-ms",
            "200",
        ]);
        let options = run_args(&custom).validate().unwrap().database;
        let options = options.options().get_options().unwrap_or_default();
        assert!(options.contains("statement_timeout=800"), "{options}");
        assert!(options.contains("lock_timeout=200"), "{options}");
    }

    #[test]
    fn timeouts_that_would_not_bound_anything_are_refused() {
        for (args, setting) in [
            (
                &["--db-statement-timeout-ms", "0"][..],
                "DOCWORKER_DB_STATEMENT_TIMEOUT_MS",
            ),
            (
                &["--db-lock-timeout-ms", "0"][..],
                "DOCWORKER_DB_LOCK_TIMEOUT_MS",
            ),
            (
                &[
                    "--db-statement-timeout-ms",
                    "1000",
                    "--db-lock-timeout-ms",
                    "2000",
                ][..],
                "DOCWORKER_DB_LOCK_TIMEOUT_MS",
            ),
        ] {
            let mut argv = GOOD.to_vec();
            argv.extend_from_slice(args);
            let message = run_args(&argv).validate().unwrap_err().to_string();
            assert!(message.starts_with(setting), "{args:?}: {message}");
        }
    }

    fn scan_args(addr: Option<&str>) -> ScanArgs {
        ScanArgs {
            clamd_addr: addr.map(str::to_owned),
            scan_timeout_secs: 60,
            scan_max_bytes: 100 << 20,
            scan_allow_unscanned: false,
        }
    }

    #[test]
    fn clamd_is_named_by_host_and_port_or_by_a_socket_path_and_unset_means_no_scanning() {
        assert!(scan_args(None).validate().unwrap().is_none());
        assert!(scan_args(Some("  ")).validate().unwrap().is_none());
        let tcp = scan_args(Some("clamd.internal:3310"))
            .validate()
            .unwrap()
            .unwrap();
        assert_eq!(tcp.addr, ClamdAddr::Tcp("clamd.internal:3310".into()));
        assert_eq!(tcp.timeout, Duration::from_secs(60));
        assert!(
            !tcp.allow_unscanned,
            "unscanned objects are not finalized by default"
        );
        let unix = scan_args(Some("/run/clamav/clamd.ctl"))
            .validate()
            .unwrap()
            .unwrap();
        assert_eq!(unix.addr, ClamdAddr::Unix("/run/clamav/clamd.ctl".into()));
        for bad in ["clamd", "clamd:", ":3310", "clamd:0", "clamd:http"] {
            let message = scan_args(Some(bad)).validate().unwrap_err().to_string();
            assert!(
                message.starts_with("DOCWORKER_CLAMD_ADDR"),
                "{bad}: {message}"
            );
        }
        let mut zero = scan_args(Some("127.0.0.1:3310"));
        zero.scan_timeout_secs = 0;
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .starts_with("DOCWORKER_SCAN_TIMEOUT_SECS")
        );
        let mut huge = scan_args(Some("127.0.0.1:3310"));
        huge.scan_max_bytes = 5 << 30;
        assert!(
            huge.validate()
                .unwrap_err()
                .to_string()
                .starts_with("DOCWORKER_SCAN_MAX_BYTES")
        );
    }

    fn database(url: &str, mode: Option<SslMode>, root: Option<&str>) -> DatabaseArgs {
        DatabaseArgs {
            database_url: Some(DatabaseUrl(url.into())),
            db_ssl_mode: mode,
            db_ssl_root_cert: root.map(PathBuf::from),
        }
    }

    #[test]
    fn verify_full_needs_a_readable_root_certificate() {
        let url = "postgres://app@db.example.com/docworker";
        let message = database(url, Some(SslMode::VerifyFull), None)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(message.contains("DOCWORKER_DB_SSL_ROOT_CERT"), "{message}");
        let missing = "/nonexistent/global-bundle.pem";
        for args in [
            database(url, Some(SslMode::VerifyFull), Some(missing)),
            database(
                &format!("{url}?sslmode=verify-full&sslrootcert={missing}"),
                None,
                None,
            ),
        ] {
            let message = args.validate().unwrap_err().to_string();
            assert!(
                message.starts_with("DOCWORKER_DB_SSL_ROOT_CERT is not valid: cannot read"),
                "{message}"
            );
        }
        let not_pem = std::env::temp_dir().join(format!("not-pem-{}", std::process::id()));
        std::fs::write(&not_pem, "hello").unwrap();
        let message = database(url, Some(SslMode::VerifyCa), not_pem.to_str())
            .validate()
            .unwrap_err()
            .to_string();
        std::fs::remove_file(&not_pem).unwrap();
        assert!(message.contains("holds no PEM certificate"), "{message}");
    }

    #[test]
    fn the_ssl_mode_setting_overrides_the_url() {
        let pem = std::env::temp_dir().join(format!("ca-{}.pem", std::process::id()));
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let options = database(
            "postgres://app@db.example.com/docworker?sslmode=disable",
            Some(SslMode::VerifyFull),
            pem.to_str(),
        )
        .validate();
        std::fs::remove_file(&pem).unwrap();
        assert!(matches!(
            options.unwrap().options().get_ssl_mode(),
            PgSslMode::VerifyFull
        ));
        let options = database("postgres://app@db/docworker?sslmode=require", None, None)
            .validate()
            .unwrap();
        assert!(matches!(
            options.options().get_ssl_mode(),
            PgSslMode::Require
        ));
    }

    #[test]
    fn the_defaults_fit_a_512_mib_container() {
        let config = run_args(GOOD).validate().unwrap();
        let bound = memory_bound(
            config.concurrency,
            config.max_dicom_header_bytes,
            &config.ranges,
        );
        assert_eq!(bound, (16 * (16 + 8) + 16 + 32 + 64) * (1 << 20));
        assert!(bound <= 512 << 20, "{} MiB", bound >> 20);
        let defaults = RangeConfig::DEFAULT;
        assert!(check_memory(16, 16 << 20, &defaults, Some((512 << 20, "test"))).is_ok());
    }

    #[test]
    fn a_configuration_that_could_exceed_the_memory_limit_is_refused_naming_its_settings() {
        let mut big = GOOD.to_vec();
        big.extend([
            "--max-dicom-header-bytes",
            "67108864",
            "--memory-limit",
            "512Mi",
        ]);
        let message = run_args(&big).validate().unwrap_err().to_string();
        assert_eq!(
            message,
            "DOCWORKER_CONCURRENCY × (DOCWORKER_MAX_DICOM_HEADER_BYTES + 8 MiB) + \
             DOCWORKER_RANGE_WINDOW × 1 MiB + DOCWORKER_RANGE_BUFFER_BYTES + 64 MiB = \
             16 × (64 MiB + 8 MiB) + 16 × 1 MiB + 32 MiB + 64 MiB = 1264 MiB exceeds the memory \
             limit of 512 MiB (DOCWORKER_MEMORY_LIMIT): lower DOCWORKER_CONCURRENCY, \
             DOCWORKER_MAX_DICOM_HEADER_BYTES or the ranged-read settings, or raise the limit"
        );
        assert_eq!(message.lines().count(), 1);
        let mut enough = big.clone();
        *enough.last_mut().unwrap() = "1264Mi";
        assert!(
            run_args(&enough).validate().is_ok(),
            "the bound itself fits"
        );
        assert!(
            check_memory(1024, 1 << 40, &RangeConfig::DEFAULT, None).is_ok(),
            "no limit, no check"
        );
        let most = RangeConfig {
            window: usize::MAX,
            buffer_bytes: u64::MAX,
            ..RangeConfig::DEFAULT
        };
        assert_eq!(
            memory_bound(usize::MAX, u64::MAX, &most),
            u64::MAX,
            "saturates"
        );
    }

    #[test]
    fn a_rate_is_a_number_never_or_always() {
        assert_eq!(parse_rate("300000000"), Ok(300_000_000));
        assert_eq!(parse_rate("never"), Ok(0));
        assert_eq!(parse_rate("always"), Ok(u64::MAX));
        for bad in ["", "300MB", "-1", "sometimes"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn memory_limits_parse_as_bytes_or_binary_suffixes() {
        assert_eq!(parse_bytes("536870912"), Ok(536_870_912));
        assert_eq!(parse_bytes("512Mi"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("64Ki"), Ok(64 << 10));
        for bad in ["", "512M", "lots", "-1", "1.5Gi", "99999999999Ti"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
        let mut bad = GOOD.to_vec();
        bad.extend(["--memory-limit", "half"]);
        let mut argv = vec!["docworker", "run"];
        argv.extend_from_slice(&bad);
        let error = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(
            error.contains("DOCWORKER_MEMORY_LIMIT") || error.contains("memory-limit"),
            "{error}"
        );
    }

    #[test]
    fn the_cgroup_limit_is_read_from_v2_then_v1() {
        let root = std::env::temp_dir().join(format!("docworker-cgroup-{}", std::process::id()));
        let v1 = root.join("memory");
        std::fs::create_dir_all(&v1).unwrap();
        assert_eq!(cgroup_memory_limit(&root), None, "neither file");
        std::fs::write(v1.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(cgroup_memory_limit(&root), None, "v1 without a limit");
        std::fs::write(v1.join("memory.limit_in_bytes"), "268435456\n").unwrap();
        assert_eq!(
            cgroup_memory_limit(&root),
            Some((256 << 20, "cgroup v1 memory.limit_in_bytes"))
        );
        std::fs::write(root.join("memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_memory_limit(&root), None, "v2 without a limit");
        std::fs::write(root.join("memory.max"), "536870912\n").unwrap();
        assert_eq!(
            cgroup_memory_limit(&root),
            Some((512 << 20, "cgroup v2 memory.max"))
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn no_debug_prints_the_database_password() {
        let argv = [
            "docworker",
            "run",
            "--database-url",
            "postgres://app:s3cret@db.example.com/docworker",
            "--queue-url",
            "http://q",
        ];
        let cli = Cli::try_parse_from(argv).unwrap();
        let printed = format!("{cli:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        let Command::Run(args) = cli.command else {
            panic!("run")
        };
        let config = format!("{:?}", args.validate().unwrap());
        assert!(!config.contains("s3cret"), "{config}");
        assert!(config.contains("db.example.com"), "{config}");
    }

    #[test]
    fn a_bad_database_url_is_not_echoed() {
        let message = DatabaseArgs {
            database_url: Some(DatabaseUrl(
                "postgres://user:s3cret@host:notaport/db".into(),
            )),
            db_ssl_mode: None,
            db_ssl_root_cert: None,
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
    fn reconcile_takes_the_queue_only_to_fix_and_refuses_a_zero_threshold_or_rate() {
        let reconcile = |args: &[&str]| {
            let base = [
                "reconcile",
                "--bucket",
                "b",
                "--database-url",
                "postgres://x/db",
            ];
            match parse(&[&base[..], args].concat()) {
                Command::Reconcile(args) => args.validate(),
                _ => unreachable!("asked for reconcile"),
            }
        };
        let report = reconcile(&["--queue-url", "", "--pending-stale-secs", "600"]).unwrap();
        assert_eq!(report.queue_url, None);
        assert_eq!(report.pending_stale, Duration::from_secs(600));
        let fix = reconcile(&["--fix", "--queue-url", "http://q/1/uploads"]).unwrap();
        assert_eq!(fix.queue_url.as_deref(), Some("http://q/1/uploads"));
        for (args, setting) in [
            (
                &["--fix", "--queue-url", ""][..],
                "DOCWORKER_QUEUE_URL is required",
            ),
            (
                &["--pending-stale-secs", "0"][..],
                "DOCWORKER_PENDING_STALE_SECS",
            ),
            (&["--rate", "0"][..], "--rate"),
        ] {
            let message = reconcile(args).unwrap_err().to_string();
            assert!(message.starts_with(setting), "{args:?}: {message}");
        }
        let mut zero = GOOD.to_vec();
        zero.extend(["--pending-stale-secs", "0"]);
        let message = run_args(&zero).validate().unwrap_err().to_string();
        assert!(
            message.starts_with("DOCWORKER_PENDING_STALE_SECS"),
            "{message}"
        );
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
