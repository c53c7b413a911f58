//! `docworker reconcile`: walks a bucket and its rows side by side, in key order, and reports
//! where they drifted apart (see [`docworker_shared::reconcile`] for what counts as drift); with
//! `--fix`, repairs it.
//!
//! Both sides are streamed a page at a time: the bucket by `ListObjectVersions` (the bucket is
//! versioned: a key's object is its current version, and a key whose current version is a delete
//! marker has none), the rows by keyset pages in the same byte-wise order (`COLLATE "C"`). Memory
//! holds two pages whatever the bucket's size, and no query stays open during the walk.
//!
//! Repairs go through the paths the worker already trusts. An object to process gets a replay
//! event ([`crate::operate::replay`]: marked with the replay attribute, pinned to the version listed), and
//! the worker decides it as it would its lost event. A row whose object vanished is marked
//! `deleted` by the store's removal write, after a HeadObject confirms nothing is current, and
//! only while the row is still as the walk read it: a row written since (a new upload's event
//! processed meanwhile) is left alone. Repairs are paced by `--rate`, and a run is resumable:
//! the summary, and the error of a run that stopped, name the last key done.

use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::MessageAttributeValue;
use chrono::{DateTime, Utc};
use docworker_shared::event::REPLAY_ATTRIBUTE;
use docworker_shared::reconcile::{self, CurrentObject, Drift, Finding, Repair, RowFacts};
use docworker_shared::{Applied, Category, DocumentStore, ObjectFacts, Seen, Trail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use thiserror::Error;

use crate::app::PROCESSOR_VERSION;
use crate::clients;
use crate::config::{ReconcileArgs, ReconcileConfig};
use crate::error::{database, sdk_error};
use crate::operate::replay;
use crate::shutdown;

/// Rows read per query: one short query per page, so the walk holds no snapshot open.
const ROWS_PER_PAGE: i64 = 1000;

/// Why a reconciliation stopped, phrased for the operator's one line.
#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("bucket {0} does not exist")]
    NoSuchBucket(String),
    #[error("access denied to {operation} on bucket {bucket}: the caller needs {action}")]
    AccessDenied {
        operation: &'static str,
        bucket: String,
        action: &'static str,
    },
    #[error("S3 {operation} on bucket {bucket} failed: {detail}")]
    S3 {
        operation: &'static str,
        bucket: String,
        detail: String,
    },
    #[error("S3 listed {key:?} after {previous:?}: the walk needs keys in order")]
    OutOfOrder { previous: String, key: String },
    #[error("enqueueing a replay failed: {0}")]
    Queue(String),
    #[error("interrupted by a signal")]
    Interrupted,
    /// Displayed through [`database::describe`], which leaves out a refused value.
    #[error("database: {}", database::describe(.0))]
    Database(#[from] sqlx::Error),
}

/// Classifies an S3 failure once: a missing bucket and a refusal are the operator's to fix and
/// say so; anything else carries the SDK's whole error chain.
fn s3_error<E>(
    operation: &'static str,
    action: &'static str,
    bucket: &str,
    error: SdkError<E, HttpResponse>,
) -> ReconcileError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    match (error.code(), status) {
        (Some("NoSuchBucket"), _) => ReconcileError::NoSuchBucket(bucket.to_owned()),
        (Some("AccessDenied"), _) | (_, Some(403)) => ReconcileError::AccessDenied {
            operation,
            bucket: bucket.to_owned(),
            action,
        },
        _ => ReconcileError::S3 {
            operation,
            bucket: bucket.to_owned(),
            detail: sdk_error(&error),
        },
    }
}

/// What was found and done, for the summary.
#[derive(Default)]
struct Summary {
    objects: u64,
    rows: u64,
    findings: BTreeMap<Drift, u64>,
    enqueued: u64,
    marked_deleted: u64,
    /// Repairs not made because the key changed since it was listed (its own event, or the
    /// next run, settles it).
    skipped: u64,
    last_key: Option<String>,
}

/// Runs the walk to its end, or until an error or a signal stops it; either way the summary is
/// printed, and a run that stopped says after which key to resume.
pub async fn execute(args: ReconcileArgs, config: ReconcileConfig) -> anyhow::Result<()> {
    let stop = shutdown::on_signals()?;
    let mut walk = Walk::new(&args, &config).await?;
    let result = tokio::select! {
        result = walk.run() => result,
        () = stop.cancelled() => Err(ReconcileError::Interrupted),
    };
    walk.progress.finish_and_clear();
    let where_ = format!("s3://{}/{}", args.bucket, args.prefix);
    let Err(e) = result else {
        walk.print_summary(&where_);
        return Ok(());
    };
    let resume = match &walk.summary.last_key {
        Some(key) => {
            walk.print_summary(&where_);
            format!("stopped after {key:?} (resume with --start-after)")
        }
        None => "stopped before the first key".to_owned(),
    };
    Err(anyhow::Error::new(e).context(format!("reconcile of {where_} {resume}")))
}

struct Walk<'a> {
    args: &'a ReconcileArgs,
    s3: aws_sdk_s3::Client,
    /// With `--fix`: the client and the queue replays go to.
    queue: Option<(aws_sdk_sqs::Client, String)>,
    store: DocumentStore,
    objects: Objects,
    rows: Rows,
    /// One tick per repair: `--rate` repairs per second.
    pace: tokio::time::Interval,
    /// The audit trail's message id for this run's deletions.
    run_id: String,
    progress: ProgressBar,
    summary: Summary,
}

impl<'a> Walk<'a> {
    async fn new(args: &'a ReconcileArgs, config: &ReconcileConfig) -> anyhow::Result<Walk<'a>> {
        let aws = clients::aws().await?;
        let s3 = clients::s3(&aws, config.s3_path_style);
        let queue = config
            .queue_url
            .clone()
            .map(|url| (aws_sdk_sqs::Client::new(&aws), url));
        let store = DocumentStore::new(clients::pool(&config.database, 2));
        let start_after = args.start_after.clone().unwrap_or_default();
        let progress = if std::io::stderr().is_terminal() {
            let spinner = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {pos} keys compared, {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            spinner.enable_steady_tick(Duration::from_millis(200));
            spinner
        } else {
            ProgressBar::hidden()
        };
        let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Walk {
            args,
            objects: Objects {
                s3: s3.clone(),
                bucket: args.bucket.clone(),
                prefix: args.prefix.clone(),
                key_marker: args.start_after.clone(),
                version_id_marker: None,
                done: false,
                page: VecDeque::new(),
                last: None,
            },
            rows: Rows {
                store: store.clone(),
                bucket: args.bucket.clone(),
                prefix: args.prefix.clone(),
                after: start_after,
                stale_after: config.pending_stale,
                done: false,
                page: VecDeque::new(),
            },
            s3,
            queue,
            store,
            pace,
            run_id: format!(
                "docworker-reconcile-{}",
                Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
            ),
            progress,
            summary: Summary::default(),
        })
    }

    /// The merge: each step takes the smaller key from either side, or both when they are equal.
    async fn run(&mut self) -> Result<(), ReconcileError> {
        loop {
            self.objects.fill().await?;
            self.rows.fill().await?;
            let order = match (self.objects.page.front(), self.rows.page.front()) {
                (None, None) => return Ok(()),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(object), Some(row)) => object.key.as_bytes().cmp(row.file_key.as_bytes()),
            };
            let object = order
                .is_le()
                .then(|| self.objects.page.pop_front())
                .flatten();
            let row = order.is_ge().then(|| self.rows.page.pop_front()).flatten();
            self.summary.objects += u64::from(object.is_some());
            self.summary.rows += u64::from(row.is_some());
            let key = match (&object, &row) {
                (Some(object), _) => object.key.clone(),
                (None, Some(row)) => row.file_key.clone(),
                (None, None) => unreachable!("one side had a key"),
            };
            if reconcile::in_window(self.args.since, object.as_ref(), row.as_ref())
                && let Some(finding) = reconcile::compare(object.as_ref(), row.as_ref())
            {
                self.found(&key, &finding, object.as_ref(), row.as_ref())
                    .await?;
            }
            self.progress.inc(1);
            self.summary.last_key = Some(key);
        }
    }

    async fn found(
        &mut self,
        key: &str,
        finding: &Finding,
        object: Option<&CurrentObject>,
        row: Option<&RowFacts>,
    ) -> Result<(), ReconcileError> {
        *self.summary.findings.entry(finding.drift).or_default() += 1;
        let findings: u64 = self.summary.findings.values().sum();
        self.progress.set_message(format!("{findings} findings"));
        let repaired = if self.args.fix {
            Some(self.repair(key, finding.repair, object, row).await?)
        } else {
            None
        };
        let line = if self.args.json {
            let mut line = finding.to_json(key, object, row);
            if let Some(repaired) = repaired {
                line["repaired"] = json!(repaired);
            }
            line.to_string()
        } else {
            let mut line = format!("{:<18}  {key}", finding.drift.as_str());
            if !finding.differs.is_empty() {
                line.push_str(&format!("  ({} differ)", finding.differs.join(", ")));
            }
            if let Some(row) = row {
                line.push_str(&format!("  [row {}]", row.status));
            }
            if let Some(repaired) = repaired {
                line.push_str(&format!("  -> {repaired}"));
            }
            line
        };
        self.progress.suspend(|| println!("{line}"));
        Ok(())
    }

    /// Makes one repair, paced; returns what became of it for the report.
    async fn repair(
        &mut self,
        key: &str,
        repair: Repair,
        object: Option<&CurrentObject>,
        row: Option<&RowFacts>,
    ) -> Result<&'static str, ReconcileError> {
        self.pace.tick().await;
        match (repair, object, row) {
            (Repair::Replay, Some(object), _) => {
                self.replay(object).await?;
                self.summary.enqueued += 1;
                Ok("enqueued")
            }
            (Repair::MarkDeleted, None, Some(row)) => {
                if self.mark_deleted(key, row).await? == Applied::Written {
                    self.summary.marked_deleted += 1;
                    Ok("marked_deleted")
                } else {
                    self.summary.skipped += 1;
                    Ok("skipped")
                }
            }
            _ => unreachable!("compare pairs a replay with an object and a deletion with a row"),
        }
    }

    /// Enqueues the replay event of the object as listed. Should the key have changed since, the
    /// worker finds the pinned version no longer current (or the ETag no longer matching) and
    /// leaves the row to the newer object's own event.
    async fn replay(&self, object: &CurrentObject) -> Result<(), ReconcileError> {
        let Some((sqs, queue_url)) = &self.queue else {
            unreachable!("--fix validates the queue URL")
        };
        let selected = replay::Selected {
            key: object.key.clone(),
            size: object.size,
            etag: object.etag.clone(),
            version_id: object.version_id.clone(),
            modified: object.last_modified,
        };
        let marker = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("true")
            .build()
            .map_err(|e| ReconcileError::Queue(e.to_string()))?;
        sqs.send_message()
            .queue_url(queue_url)
            .message_body(replay::event(&self.args.bucket, &selected).to_string())
            .message_attributes(REPLAY_ATTRIBUTE, marker)
            .send()
            .await
            .map_err(|e| ReconcileError::Queue(sdk_error(&e)))?;
        Ok(())
    }

    /// The removal write, as the worker makes it for a removal event: the row as read, then S3
    /// asked whether anything is current, then the write guarded by the row as read.
    async fn mark_deleted(&self, key: &str, row: &RowFacts) -> Result<Applied, ReconcileError> {
        match self
            .s3
            .head_object()
            .bucket(&self.args.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => return Ok(Applied::Stale),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {}
            Err(e) => return Err(s3_error("HeadObject", "s3:GetObject", &self.args.bucket, e)),
        }
        let facts = ObjectFacts {
            bucket: self.args.bucket.clone(),
            key: key.to_owned(),
            category: Category::of_key(key),
            etag: None,
            version_id: None,
            sequencer: None,
            uploaded_at: Utc::now(),
            declared_content_type: None,
            file_size: None,
            upload: Default::default(),
        };
        let trail = Trail {
            message_id: &self.run_id,
            attempt: 1,
            started: Instant::now(),
            replayed: false,
            seen: Some(Seen {
                updated_at: Some(row.updated_at),
            }),
        };
        Ok(self
            .store
            .mark_deleted(&facts, PROCESSOR_VERSION, trail, "gone")
            .await?)
    }

    fn print_summary(&self, where_: &str) {
        let s = &self.summary;
        let count = |drift| s.findings.get(&drift).copied().unwrap_or(0);
        if self.args.json {
            let findings: serde_json::Map<String, serde_json::Value> = Drift::ALL
                .iter()
                .map(|d| (d.as_str().to_owned(), json!(count(*d))))
                .collect();
            let repaired = self.args.fix.then(|| {
                json!({
                    "enqueued": s.enqueued,
                    "marked_deleted": s.marked_deleted,
                    "skipped": s.skipped,
                })
            });
            let summary = json!({"summary": {
                "bucket": self.args.bucket,
                "prefix": self.args.prefix,
                "since": self.args.since,
                "start_after": self.args.start_after,
                "objects": s.objects,
                "rows": s.rows,
                "findings": findings,
                "repaired": repaired,
                "last_key": s.last_key,
            }});
            println!("{summary}");
            return;
        }
        let total: u64 = s.findings.values().sum();
        let kinds: Vec<String> = Drift::ALL
            .iter()
            .map(|d| format!("{} {}", d.as_str(), count(*d)))
            .collect();
        println!(
            "reconcile of {where_}: {} objects, {} rows, {total} findings ({})",
            s.objects,
            s.rows,
            kinds.join(", ")
        );
        if self.args.fix {
            println!(
                "repaired: {} replays enqueued, {} rows marked deleted, {} skipped (changed since listed)",
                s.enqueued, s.marked_deleted, s.skipped
            );
        }
        match &s.last_key {
            Some(key) => println!("last key done: {key}"),
            None => println!("last key done: none (no keys)"),
        }
    }
}

/// The bucket's current objects, in key order, a `ListObjectVersions` page at a time.
struct Objects {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    key_marker: Option<String>,
    version_id_marker: Option<String>,
    done: bool,
    page: VecDeque<CurrentObject>,
    /// The last key taken, to check the order the merge relies on.
    last: Option<String>,
}

impl Objects {
    /// Reads pages until one holds a current object or the listing ends. A page may hold only
    /// noncurrent versions and delete markers.
    async fn fill(&mut self) -> Result<(), ReconcileError> {
        while self.page.is_empty() && !self.done {
            let output = self
                .s3
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(self.key_marker.clone())
                .set_version_id_marker(self.version_id_marker.clone())
                .send()
                .await
                .map_err(|e| {
                    s3_error(
                        "ListObjectVersions",
                        "s3:ListBucketVersions",
                        &self.bucket,
                        e,
                    )
                })?;
            // Versions come in key order, newest first within a key; the latest of a key whose
            // latest is a delete marker is in `delete_markers`, so the key has no object here.
            for version in output.versions() {
                let (Some(true), Some(key)) = (version.is_latest(), version.key()) else {
                    continue;
                };
                if let Some(previous) = &self.last
                    && previous.as_bytes() >= key.as_bytes()
                {
                    return Err(ReconcileError::OutOfOrder {
                        previous: previous.clone(),
                        key: key.to_owned(),
                    });
                }
                self.last = Some(key.to_owned());
                self.page.push_back(CurrentObject {
                    key: key.to_owned(),
                    etag: version
                        .e_tag()
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_owned(),
                    version_id: version
                        .version_id()
                        .filter(|v| !v.is_empty() && *v != "null")
                        .map(str::to_owned),
                    size: version
                        .size()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                    last_modified: version
                        .last_modified()
                        .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())),
                });
            }
            let next = output.next_key_marker().map(str::to_owned);
            self.done = output.is_truncated() != Some(true) || next.is_none();
            self.key_marker = next;
            self.version_id_marker = output.next_version_id_marker().map(str::to_owned);
        }
        Ok(())
    }
}

/// The bucket's rows, in the same order, a keyset page at a time.
struct Rows {
    store: DocumentStore,
    bucket: String,
    prefix: String,
    /// The last key read (or `--start-after`): the next page starts after it.
    after: String,
    stale_after: Duration,
    done: bool,
    page: VecDeque<RowFacts>,
}

impl Rows {
    async fn fill(&mut self) -> Result<(), ReconcileError> {
        if !self.page.is_empty() || self.done {
            return Ok(());
        }
        let rows = self
            .store
            .reconcile_page(
                &self.bucket,
                &self.prefix,
                &self.after,
                self.stale_after,
                ROWS_PER_PAGE,
            )
            .await?;
        self.done = rows.len() < ROWS_PER_PAGE as usize;
        if let Some(last) = rows.last() {
            self.after = last.file_key.clone();
        }
        for row in rows {
            // Keys with the prefix are contiguous in byte order: the first without it ends them.
            if !row.file_key.starts_with(&self.prefix) {
                self.done = true;
                break;
            }
            self.page.push_back(row);
        }
        Ok(())
    }
}
