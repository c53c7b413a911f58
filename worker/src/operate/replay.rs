//! `docworker replay`: reprocessing through the queue. Objects are selected by listing the
//! bucket (or by Document status), and for each one an event shaped exactly like S3's
//! `ObjectCreated:Put` is enqueued, marked with the `docworker-replay` message attribute. The
//! worker processes it like any live event: an unchanged object leaves its row's content as it
//! was; a changed one (new ETag) updates it.
//!
//! Each event pins what a HeadObject read: the version (on a versioned bucket), ETag and size,
//! and as its time the object's `Last-Modified`, so a row the replay creates gets when S3 stored
//! the object. A replayed event has no sequencer; the worker writes it only while its version is
//! still the key's current one, and keeps an existing row's `uploaded_at`.
//!
//! Listing and row selection are streamed page by page: a replay of a whole bucket never holds
//! more than one page of keys.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use chrono::{DateTime, Utc};
use docworker_shared::DocumentStore;
use docworker_shared::event::{self, REPLAY_ATTRIBUTE};
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tracing::warn;

use crate::clients;
use crate::config::{ReplayArgs, ReplayConfig, ReplayStatus};
use crate::error::sdk_error;

/// One object to replay (also what `reconcile --fix` replays).
pub(crate) struct Selected {
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) etag: String,
    pub(crate) version_id: Option<String>,
    pub(crate) modified: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Summary {
    selected: u64,
    enqueued: u64,
    skipped: u64,
}

pub async fn execute(selection: ReplayArgs, config: ReplayConfig) -> anyhow::Result<()> {
    anyhow::ensure!(selection.rate > 0, "--rate must be at least 1");
    let aws = clients::aws().await?;
    let s3 = clients::s3(&aws, config.s3_path_style);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {pos} selected, {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut sender = Sender {
        sqs,
        queue_url: config.queue_url.clone(),
        bucket: selection.bucket.clone(),
        dry_run: selection.dry_run,
        pace: tokio::time::interval(Duration::from_secs_f64(10.0 / f64::from(selection.rate))),
        batch: Vec::new(),
        summary: Summary::default(),
        progress: progress.clone(),
    };
    match selection.status {
        ReplayStatus::Any => {
            let mut pages = s3
                .list_objects_v2()
                .bucket(&selection.bucket)
                .prefix(&selection.prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages
                .try_next()
                .await
                .map_err(|e| anyhow::anyhow!(sdk_error(&e)))
                .context("listing the bucket")?
            {
                for object in page.contents() {
                    let modified = object
                        .last_modified()
                        .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), 0));
                    if selection
                        .since
                        .is_some_and(|since| modified.is_none_or(|m| m < since))
                    {
                        continue;
                    }
                    let Some(key) = object.key() else {
                        continue;
                    };
                    sender.pin(&s3, key.to_owned()).await?;
                }
            }
        }
        status => {
            let database = config
                .database
                .clone()
                .context("--status selects rows: set DATABASE_URL")?;
            let store = DocumentStore::new(clients::pool(&database, 2));
            let mut keys = sqlx::query_scalar::<_, String>(
                "SELECT file_key FROM documents
                 WHERE bucket = $1 AND starts_with(file_key, $2) AND status = $3
                   AND ($4::timestamptz IS NULL OR uploaded_at >= $4)
                 ORDER BY file_key",
            )
            .bind(&selection.bucket)
            .bind(&selection.prefix)
            .bind(status.as_str())
            .bind(selection.since)
            .fetch(store.pool());
            while let Some(key) = keys.try_next().await.context("selecting documents")? {
                sender.pin(&s3, key).await?;
            }
        }
    }
    sender.flush().await?;
    progress.finish_and_clear();
    let Summary {
        selected,
        enqueued,
        skipped,
    } = sender.summary;
    let verb = if selection.dry_run {
        "would enqueue"
    } else {
        "enqueued"
    };
    println!(
        "replay of s3://{}/{}: selected {selected}, {verb} {enqueued}, skipped {skipped}",
        selection.bucket, selection.prefix
    );
    Ok(())
}

struct Sender {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    bucket: String,
    dry_run: bool,
    /// One tick per batch of ten: `rate` messages per second.
    pace: tokio::time::Interval,
    batch: Vec<Selected>,
    summary: Summary,
    progress: ProgressBar,
}

impl Sender {
    /// Selects the key's current object as a HeadObject reads it: the event must carry the
    /// object's current identity, its version included, so that the worker reads exactly it.
    async fn pin(&mut self, s3: &aws_sdk_s3::Client, key: String) -> anyhow::Result<()> {
        match s3.head_object().bucket(&self.bucket).key(&key).send().await {
            Ok(head) => {
                self.push(Selected {
                    size: head
                        .content_length()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                    etag: head
                        .e_tag()
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_owned(),
                    version_id: head
                        .version_id()
                        .filter(|v| !v.is_empty() && *v != "null")
                        .map(str::to_owned),
                    modified: head
                        .last_modified()
                        .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())),
                    key,
                })
                .await
            }
            Err(e) => {
                warn!(key = %key, error = %sdk_error(&e), "skipped: object not readable");
                self.summary.selected += 1;
                self.summary.skipped += 1;
                Ok(())
            }
        }
    }

    async fn push(&mut self, object: Selected) -> anyhow::Result<()> {
        self.summary.selected += 1;
        self.progress.inc(1);
        self.batch.push(object);
        if self.batch.len() == 10 {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        if self.dry_run {
            self.summary.enqueued += batch.len() as u64;
            return Ok(());
        }
        self.pace.tick().await;
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, object)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(event(&self.bucket, object).to_string())
                    .message_attributes(
                        REPLAY_ATTRIBUTE,
                        MessageAttributeValue::builder()
                            .data_type("String")
                            .string_value("true")
                            .build()
                            .context("message attribute")?,
                    )
                    .build()
                    .context("batch entry")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let output = self
            .sqs
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(sdk_error(&e)))
            .context("enqueueing replay events")?;
        for failed in output.failed() {
            warn!(
                id = failed.id(),
                code = failed.code(),
                "replay event not enqueued"
            );
        }
        self.summary.enqueued += output.successful().len() as u64;
        self.summary.skipped += output.failed().len() as u64;
        self.progress
            .set_message(format!("{} enqueued", self.summary.enqueued));
        Ok(())
    }
}

/// An `ObjectCreated:Put` record as S3 writes it, key form-encoded the way S3 encodes it.
pub(crate) fn event(bucket: &str, object: &Selected) -> serde_json::Value {
    let mut record_object = json!({
        "key": event::encode_key(&object.key),
        "size": object.size,
        "eTag": object.etag,
    });
    if let Some(version) = &object.version_id {
        record_object["versionId"] = json!(version);
    }
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "",
        "eventTime": object
            .modified
            .unwrap_or_else(Utc::now)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "docworker-replay"},
        "requestParameters": {"sourceIPAddress": ""},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "docworker-replay",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": record_object,
        },
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;
    use docworker_shared::Notification;

    #[test]
    fn replay_events_parse_back_to_the_same_object() {
        let object = Selected {
            key: "medical/a b+0é.dcm".into(),
            size: 2048,
            etag: "9e107d9d372bb6826bd81d3542a419d6".into(),
            version_id: Some("v-1".into()),
            modified: DateTime::from_timestamp(1_764_000_000, 0),
        };
        let Notification::Records(records) =
            Notification::parse(&event("clinic-docs", &object).to_string()).unwrap()
        else {
            panic!("records expected");
        };
        assert_eq!(records[0].key, "medical/a b+0é.dcm");
        assert_eq!(records[0].size, Some(2048));
        assert_eq!(records[0].version_id.as_deref(), Some("v-1"));
        assert_eq!(records[0].bucket, "clinic-docs");
        assert_eq!(records[0].sequencer, None);
        assert_eq!(
            records[0].time.timestamp(),
            1_764_000_000,
            "the object's Last-Modified, not the time of the replay"
        );
    }
}
