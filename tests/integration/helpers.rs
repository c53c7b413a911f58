//! A per-test slice of the local stack and a handle on a running worker.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::QueueAttributeName;
use docworker_shared::{Document, DocumentStore};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub const WAIT: Duration = Duration::from_secs(90);

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

pub fn endpoint() -> String {
    env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
}

fn admin_database_url() -> String {
    env_or(
        "DOCWORKER_ADMIN_DATABASE_URL",
        "postgres://postgres:postgres@127.0.0.1:5432/postgres",
    )
}

/// The docworker binary under test: built by `cargo build -p docworker` before the tests run.
pub fn worker_binary() -> PathBuf {
    if let Ok(path) = std::env::var("DOCWORKER_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let binary = target.join("debug/docworker");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p docworker` first (scripts/test.sh does)",
        binary.display()
    );
    binary
}

pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(aws_config::Region::new(env_or("AWS_REGION", "us-east-1")))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub visibility_timeout_secs: u32,
    pub max_receive_count: u32,
    /// Wire S3 → SQS notifications (off when a test sends its own events).
    pub notify: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            visibility_timeout_secs: 30,
            max_receive_count: 3,
            notify: true,
        }
    }
}

pub struct Stack {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub bucket: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub db: PgPool,
    pub database_url: String,
    worker: Option<Child>,
    log: PathBuf,
}

impl Stack {
    pub async fn new(name: &str) -> Stack {
        Stack::with(name, Options::default()).await
    }

    /// A stack whose database has no schema yet (for testing `docworker migrate`).
    pub async fn without_schema(name: &str) -> Stack {
        Stack::build(name, Options::default(), false).await
    }

    pub async fn with(name: &str, options: Options) -> Stack {
        Stack::build(name, options, true).await
    }

    async fn build(name: &str, options: Options, migrate: bool) -> Stack {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let id = &id[..12];
        let config = aws_config().await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::new(&config);

        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("{name}-{id}-dlq"))
            .send()
            .await
            .expect("create DLQ")
            .queue_url
            .expect("DLQ URL");
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": options.max_receive_count.to_string(),
        });
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{name}-{id}"))
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                options.visibility_timeout_secs.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue URL");

        let bucket = format!("{name}-{id}");
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create bucket");
        if options.notify {
            let queue_arn = queue_arn(&sqs, &queue_url).await;
            use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
            s3.put_bucket_notification_configuration()
                .bucket(&bucket)
                .notification_configuration(
                    NotificationConfiguration::builder()
                        .queue_configurations(
                            QueueConfiguration::builder()
                                .queue_arn(queue_arn)
                                .events(Event::from("s3:ObjectCreated:*"))
                                .events(Event::from("s3:ObjectRemoved:*"))
                                .build()
                                .expect("queue configuration"),
                        )
                        .build(),
                )
                .send()
                .await
                .expect("wire notifications");
        }

        let database = format!("dw_{name}_{id}").replace('-', "_");
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_database_url())
            .await
            .expect("PostgreSQL is reachable (infra/local/stack.sh services)");
        // The name is built from a UUID and the test name: no outside input.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let base = admin_database_url();
        let database_url = format!(
            "{}/{database}",
            &base[..base.rfind('/').expect("URL has a path")]
        );
        let db = PgPoolOptions::new()
            .max_connections(4)
            .connect(&database_url)
            .await
            .expect("connect test database");
        if migrate {
            docworker_shared::MIGRATOR.run(&db).await.expect("migrate");
        }

        let log = std::env::temp_dir().join(format!("docworker-{name}-{id}.log"));
        Stack {
            s3,
            sqs,
            bucket,
            queue_url,
            dlq_url,
            db,
            database_url,
            worker: None,
            log,
        }
    }

    /// The environment `docworker run` is driven with, exactly as the contract names it.
    pub fn worker_env(&self) -> Vec<(String, String)> {
        [
            ("DATABASE_URL", self.database_url.clone()),
            ("DOCWORKER_QUEUE_URL", self.queue_url.clone()),
            ("AWS_ENDPOINT_URL", endpoint()),
            ("AWS_REGION", env_or("AWS_REGION", "us-east-1")),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("DOCWORKER_LOG_FORMAT", "json".into()),
            // Any free port: tests run workers side by side; they read the port from the log.
            ("DOCWORKER_METRICS_ADDR", "127.0.0.1:0".into()),
            ("RUST_LOG", "info,docworker=debug".into()),
            // Scanning is off unless a test turns it on: `stack.sh env` exports the local clamd.
            ("DOCWORKER_CLAMD_ADDR", String::new()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    pub fn start_worker(&mut self, extra: &[(&str, &str)]) {
        self.start_worker_with_args(&[], extra);
    }

    /// `docworker run <args>`, for flags without an environment variable (`--no-migrate`).
    pub fn start_worker_with_args(&mut self, args: &[&str], extra: &[(&str, &str)]) {
        assert!(self.worker.is_none(), "one worker per stack");
        // Appends, so that a restarted worker's log follows its predecessor's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("worker log file");
        let mut command = Command::new(worker_binary());
        command
            .arg("run")
            .args(args)
            .envs(self.worker_env())
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(log);
        self.worker = Some(command.spawn().expect("spawn docworker"));
    }

    /// Sends SIGTERM, waits for the exit, and returns the exit code and the worker's log.
    pub fn stop_worker(&mut self) -> (Option<i32>, String) {
        let mut child = self.worker.take().expect("a worker is running");
        // SAFETY: kill(2) on a child we own and have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(40);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "worker did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        (status.code(), self.worker_log())
    }

    pub fn worker_alive(&mut self) -> bool {
        self.worker
            .as_mut()
            .is_some_and(|child| child.try_wait().expect("wait").is_none())
    }

    pub fn worker_pid(&self) -> u32 {
        self.worker.as_ref().expect("a worker is running").id()
    }

    /// SIGKILL: no chance to finish anything or to make messages visible again.
    pub fn kill_worker(&mut self) {
        let mut child = self.worker.take().expect("a worker is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// Sends a signal to the running worker without waiting for it.
    pub fn signal_worker(&self, signal: i32) {
        // SAFETY: kill(2) on a child we own and have not reaped.
        unsafe { libc::kill(self.worker_pid() as i32, signal) };
    }

    /// Waits for the worker to exit by itself within `limit`, returning its exit code.
    pub fn wait_worker_exit(&mut self, limit: Duration) -> Option<i32> {
        let mut child = self.worker.take().expect("a worker is running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "worker still running after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The worker's peak resident memory (VmHWM), in bytes.
    pub fn worker_peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.worker_pid()))
            .expect("read /proc status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status");
        kib * 1024
    }

    /// Waits until the log contains `needle`.
    pub async fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.worker_log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "log never said {needle:?}:\n{}",
                self.worker_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GETs a path from the worker's metrics/health server: (status code, body).
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        self.wait_log("serving /metrics").await;
        let log = self.worker_log();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("serving /metrics"))
            .expect("line");
        let entry: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
        let addr = entry["metrics_addr"]
            .as_str()
            .expect("metrics_addr")
            .to_owned();
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(&addr).expect("connect metrics server");
            write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
            let mut response = String::new();
            stream.read_to_string(&mut response).expect("response");
            let status = response
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("status");
            let body = response
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_owned())
                .unwrap_or_default();
            (status, body)
        })
        .await
        .expect("http task")
    }

    pub fn worker_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: Option<&str>,
        metadata: &[(&str, &str)],
    ) -> aws_sdk_s3::operation::put_object::PutObjectOutput {
        let mut request = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .set_content_type(content_type.map(str::to_owned));
        for (name, value) in metadata {
            request = request.metadata(*name, *value);
        }
        request.send().await.expect("PutObject")
    }

    pub async fn delete_object(&self, key: &str) {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .expect("DeleteObject");
    }

    pub async fn enable_versioning(&self) {
        use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
        self.s3
            .put_bucket_versioning()
            .bucket(&self.bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("PutBucketVersioning");
    }

    pub async fn send(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
    }

    pub async fn document(&self, key: &str) -> Option<Document> {
        DocumentStore::new(self.db.clone())
            .get(&self.bucket, key)
            .await
            .expect("query documents")
    }

    /// Waits until the key's row satisfies `done`, and returns it.
    pub async fn wait_for(&self, key: &str, done: impl Fn(&Document) -> bool) -> Document {
        self.wait_for_within(key, WAIT, done).await
    }

    /// [`wait_for`](Self::wait_for) with a longer limit, for objects whose processing takes a
    /// known long time (a 1 GiB scan).
    pub async fn wait_for_within(
        &self,
        key: &str,
        limit: Duration,
        done: impl Fn(&Document) -> bool,
    ) -> Document {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(document) = self.document(key).await
                && done(&document)
            {
                return document;
            }
            if Instant::now() > deadline {
                panic!(
                    "{key}: no settled row after {limit:?}; row: {:?}\nworker log:\n{}",
                    self.document(key).await,
                    self.worker_log()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_settled(&self, key: &str) -> Document {
        self.wait_for(key, |d| d.status != "pending").await
    }

    pub async fn queue_counts(&self, queue_url: &str) -> (u64, u64) {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("GetQueueAttributes")
            .attributes
            .unwrap_or_default();
        let count = |name| {
            attributes
                .get(&name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Waits until the main queue holds no message, visible or in flight.
    pub async fn wait_queue_empty(&self) {
        let deadline = Instant::now() + WAIT;
        while self.queue_counts(&self.queue_url).await != (0, 0) {
            assert!(
                Instant::now() < deadline,
                "queue not drained: {:?}\nworker log:\n{}",
                self.queue_counts(&self.queue_url).await,
                self.worker_log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn count_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM documents WHERE bucket = $1")
            .bind(&self.bucket)
            .fetch_one(&self.db)
            .await
            .expect("count")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(mut child) = self.worker.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue ARN")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("QueueArn attribute")
}

/// An S3 ObjectCreated event for an object, shaped as real S3 sends it.
pub fn created_event(bucket: &str, key: &str, size: u64, etag: &str) -> serde_json::Value {
    let encoded = docworker_shared::event::encode_key(key);
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-24T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:TEST"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "TEST", "x-amz-id-2": "TEST"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "docworker",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "TEST"}, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": encoded, "size": size, "eTag": etag.trim_matches('"')}}
    }]})
}

/// The SHA-256 of `bytes` as lowercase hex, by coreutils rather than by the worker's own code.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(bytes)?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&digest.stdout)[..64].to_owned()
}
