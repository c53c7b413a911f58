//! Deletes settled messages in batches: one `DeleteMessageBatch` call for up to ten messages
//! instead of one call each, which divides the SQS requests (billed per request, and each one a
//! full queue scan on the local emulator) by up to ten under load.

use std::time::Duration;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::error::sdk_error;
use crate::observe::events;

/// SQS's maximum entries per `DeleteMessageBatch`.
const MAX_BATCH: usize = 10;
/// How long the first settled message waits for others to share its call. Short next to any
/// visibility timeout, so a message never reappears for waiting here.
const LINGER: Duration = Duration::from_millis(50);
/// Settled messages waiting for a batch; when full, settling waits (back-pressure on the consumer).
const QUEUED: usize = 256;

/// A settled message to delete. The message id is for the log if its deletion fails.
struct Settled {
    message_id: String,
    receipt: String,
}

/// The sending side, cloned into every message's task.
#[derive(Clone)]
pub struct Deletes {
    tx: mpsc::Sender<Settled>,
}

impl Deletes {
    /// Starts the batching task. It ends once every `Deletes` is dropped and it has sent what it
    /// holds, so awaiting the handle after dropping them flushes pending deletions.
    pub fn spawn(sqs: aws_sdk_sqs::Client, queue_url: String) -> (Deletes, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUED);
        (Deletes { tx }, tokio::spawn(run(sqs, queue_url, rx)))
    }

    /// Queues the message for deletion. Its outcome is already committed, so a deletion that
    /// never happens only means the message is delivered and settled again, with the same result.
    pub async fn delete(&self, message_id: &str, receipt: &str) {
        let settled = Settled {
            message_id: message_id.to_owned(),
            receipt: receipt.to_owned(),
        };
        if self.tx.send(settled).await.is_err() {
            warn!(
                message_id,
                "deletion task has stopped; the message will be redelivered and settled again"
            );
        }
    }
}

async fn run(sqs: aws_sdk_sqs::Client, queue_url: String, mut rx: mpsc::Receiver<Settled>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        while batch.len() < MAX_BATCH {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(settled) => batch.push(settled),
                    None => break,
                },
                _ = &mut linger => break,
            }
        }
        send(&sqs, &queue_url, batch).await;
    }
}

async fn send(sqs: &aws_sdk_sqs::Client, queue_url: &str, batch: Vec<Settled>) {
    let entries = batch
        .iter()
        .enumerate()
        .map(|(i, settled)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(&settled.receipt)
                .build()
        })
        .collect::<Result<Vec<_>, _>>();
    let entries = match entries {
        Ok(entries) => entries,
        Err(e) => {
            warn!(error = %e, "could not build a delete batch; its messages will be redelivered");
            return;
        }
    };
    let result = sqs
        .delete_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await;
    match result {
        Ok(output) => {
            events::DeleteBatchSent {
                deleted: output.successful.len(),
                failed: output.failed.len(),
            }
            .emit();
            for failed in &output.failed {
                let message_id = failed
                    .id
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| batch.get(i))
                    .map_or("unknown", |settled| settled.message_id.as_str());
                warn!(
                    message_id,
                    code = %failed.code,
                    error = failed.message.as_deref().unwrap_or(""),
                    "delete failed; the message will be redelivered and settled again"
                );
            }
        }
        Err(e) => {
            warn!(
                error = %sdk_error(&e),
                messages = batch.len(),
                "delete batch failed; its messages will be redelivered and settled again"
            );
        }
    }
}
