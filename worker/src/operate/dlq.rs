//! `docworker dlq`: what operations staff need to watch and drain the dead-letter queue without
//! reading code. The DLQ is the one the processing queue's redrive policy names, unless
//! `DOCWORKER_DLQ_URL` says otherwise.

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use chrono::{DateTime, TimeZone, Utc};
use docworker_shared::{DocumentStore, Notification};
use serde_json::json;

use crate::clients;
use crate::config::{DlqAction, DlqConfig};
use crate::consume::queue;
use crate::error::sdk_error;

/// How many messages `stats` looks at to find the oldest (SQS has no such attribute).
const STATS_SAMPLE: usize = 100;
/// How long a peeked message is hidden before it is released again at once.
const PEEK_HIDE_SECS: i32 = 30;
/// How long a message being moved back is hidden: ample for its send and delete.
const REDRIVE_HIDE_SECS: i32 = 60;

pub async fn execute(action: DlqAction, config: DlqConfig) -> anyhow::Result<()> {
    let aws = clients::aws().await?;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let dlq_url = match (config.dlq_url, config.queue_url.as_deref()) {
        (Some(url), _) => url,
        (None, Some(queue_url)) => find_dlq(&sqs, queue_url).await?,
        (None, None) => anyhow::bail!("set DOCWORKER_QUEUE_URL or DOCWORKER_DLQ_URL"),
    };
    match action {
        DlqAction::Stats { .. } => stats(&sqs, &dlq_url).await,
        DlqAction::Peek { limit, json, .. } => {
            let store = config
                .database
                .map(|database| DocumentStore::new(clients::pool(&database, 2)));
            peek(&sqs, &dlq_url, store.as_ref(), limit, json).await
        }
        DlqAction::Redrive { max, .. } => {
            let queue_url = config
                .queue_url
                .context("redrive needs DOCWORKER_QUEUE_URL")?;
            redrive(&sqs, &dlq_url, &queue_url, max).await
        }
    }
}

async fn find_dlq(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> anyhow::Result<String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))
        .context("reading the queue's redrive policy")?
        .attributes
        .unwrap_or_default();
    attributes
        .get(&QueueAttributeName::RedrivePolicy)
        .and_then(|policy| queue::dlq_url(queue_url, policy))
        .context("the queue has no redrive policy: set DOCWORKER_DLQ_URL")
}

async fn attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    names: &[QueueAttributeName],
) -> anyhow::Result<HashMap<QueueAttributeName, String>> {
    let mut request = sqs.get_queue_attributes().queue_url(url);
    for name in names {
        request = request.attribute_names(name.clone());
    }
    Ok(request
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))
        .with_context(|| format!("reading attributes of {url}"))?
        .attributes
        .unwrap_or_default())
}

/// One receive from the dead-letter queue: up to `max` messages (at most SQS's 10) with their
/// system attributes (receive count, first receive) and message attributes (carried on redrive),
/// hidden for `hide_secs`. Empty once the queue has no more visible messages.
async fn receive_batch(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    max: usize,
    hide_secs: i32,
) -> anyhow::Result<Vec<Message>> {
    Ok(sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max.min(10) as i32)
        .visibility_timeout(hide_secs)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))
        .context("receiving from the dead-letter queue")?
        .messages
        .unwrap_or_default())
}

/// Receives up to `limit` messages, hiding them briefly so each is seen once, then makes them all
/// visible again at once. Receiving counts as a receive: their receive count grows by one.
async fn sample(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    limit: usize,
) -> anyhow::Result<Vec<Message>> {
    let mut seen: Vec<Message> = Vec::new();
    while seen.len() < limit {
        let batch = receive_batch(sqs, url, limit - seen.len(), PEEK_HIDE_SECS).await?;
        if batch.is_empty() {
            break;
        }
        seen.extend(batch);
    }
    for chunk in seen.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        sqs.change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(sdk_error(&e)))
            .context("making peeked messages visible again")?;
    }
    Ok(seen)
}

fn timestamp(message: &Message, name: MessageSystemAttributeName) -> Option<DateTime<Utc>> {
    let millis: i64 = message.attributes()?.get(&name)?.parse().ok()?;
    Utc.timestamp_millis_opt(millis).single()
}

async fn stats(sqs: &aws_sdk_sqs::Client, dlq_url: &str) -> anyhow::Result<()> {
    let attributes = attributes(
        sqs,
        dlq_url,
        &[
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ],
    )
    .await?;
    let get = |name| attributes.get(&name).cloned().unwrap_or_else(|| "0".into());
    let oldest = sample(sqs, dlq_url, STATS_SAMPLE)
        .await?
        .iter()
        .filter_map(|m| timestamp(m, MessageSystemAttributeName::SentTimestamp))
        .min();
    println!("dead-letter queue: {dlq_url}");
    println!(
        "depth (visible): {}",
        get(QueueAttributeName::ApproximateNumberOfMessages)
    );
    println!(
        "in flight: {}",
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    );
    match oldest {
        Some(sent) => {
            let age = Utc::now() - sent;
            println!(
                "oldest message: sent {} ({} s ago; among the first {STATS_SAMPLE} looked at)",
                sent.to_rfc3339(),
                age.num_seconds()
            );
        }
        None => println!("oldest message: none"),
    }
    Ok(())
}

async fn peek(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    store: Option<&DocumentStore>,
    limit: usize,
    as_json: bool,
) -> anyhow::Result<()> {
    let messages = sample(sqs, dlq_url, limit).await?;
    let mut entries = Vec::new();
    for message in &messages {
        let id = message.message_id().unwrap_or("unknown");
        let receive_count = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .cloned();
        let first_received = timestamp(
            message,
            MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
        );
        let (objects, unreadable) = match Notification::parse(message.body().unwrap_or_default()) {
            Ok(Notification::Records(events)) => (
                events
                    .iter()
                    .map(|e| json!({"bucket": e.bucket, "key": e.key, "event": e.name}))
                    .collect::<Vec<_>>(),
                None,
            ),
            Ok(Notification::Test { .. }) => (Vec::new(), Some("s3:TestEvent".to_owned())),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let first = objects.first();
        let last = match store {
            Some(store) => store
                .last_attempt(
                    first.and_then(|o| o["bucket"].as_str()),
                    first.and_then(|o| o["key"].as_str()),
                    id,
                )
                .await
                .unwrap_or(None)
                .map(|(outcome, reason, at)| json!({"outcome": outcome, "reason": reason, "at": at.to_rfc3339()})),
            None => None,
        };
        entries.push(json!({
            "message_id": id,
            "receive_count": receive_count,
            "first_received": first_received.map(|t| t.to_rfc3339()),
            "objects": objects,
            "unreadable": unreadable,
            "last_failure": last,
        }));
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    println!(
        "{} message(s) from {dlq_url} (left in place)",
        entries.len()
    );
    for entry in &entries {
        println!(
            "- message {}",
            entry["message_id"].as_str().unwrap_or_default()
        );
        println!(
            "  receive count: {}",
            entry["receive_count"].as_str().unwrap_or("?")
        );
        println!(
            "  first received: {}",
            entry["first_received"].as_str().unwrap_or("?")
        );
        for object in entry["objects"].as_array().into_iter().flatten() {
            println!(
                "  object: s3://{}/{} ({})",
                object["bucket"].as_str().unwrap_or(""),
                object["key"].as_str().unwrap_or(""),
                object["event"].as_str().unwrap_or("")
            );
        }
        if let Some(reason) = entry["unreadable"].as_str() {
            println!("  unreadable: {reason}");
        }
        if let Some(last) = entry["last_failure"].as_object() {
            println!(
                "  last attempt: {} at {}: {}",
                last["outcome"].as_str().unwrap_or(""),
                last["at"].as_str().unwrap_or(""),
                last["reason"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
    max: Option<usize>,
) -> anyhow::Result<()> {
    if max.is_none() {
        let dlq_arn = attributes(sqs, dlq_url, &[QueueAttributeName::QueueArn])
            .await?
            .remove(&QueueAttributeName::QueueArn)
            .context("the dead-letter queue has no ARN")?;
        match sqs
            .start_message_move_task()
            .source_arn(&dlq_arn)
            .send()
            .await
        {
            Ok(task) => {
                println!(
                    "started SQS message-move task {} from {dlq_url} back to its source queue(s)",
                    task.task_handle().unwrap_or("?")
                );
                return Ok(());
            }
            Err(e) => eprintln!(
                "native message-move task unavailable ({}); moving messages one by one",
                sdk_error(&e)
            ),
        }
    }
    let limit = max.unwrap_or(usize::MAX);
    let mut moved = 0usize;
    while moved < limit {
        let batch = receive_batch(sqs, dlq_url, limit - moved, REDRIVE_HIDE_SECS).await?;
        if batch.is_empty() {
            break;
        }
        for message in batch {
            // Sent and confirmed before the delete: a failure in between duplicates a message
            // (which processing tolerates), never loses one.
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(message.body().unwrap_or_default())
                .set_message_attributes(message.message_attributes().cloned())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!(sdk_error(&e)))
                .context("sending a message back to the processing queue")?;
            if let Some(receipt) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(dlq_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!(sdk_error(&e)))
                    .context("deleting a redriven message from the dead-letter queue")?;
            }
            moved += 1;
        }
    }
    println!("moved {moved} message(s) from {dlq_url} to {queue_url}");
    Ok(())
}
