//! What the worker needs to know about its queue before it starts consuming.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::backoff;
use crate::error::sdk_error;
use crate::observe::names;

/// What start-up learns about the queue.
pub struct QueueFacts {
    pub visibility_timeout: Duration,
    /// From the redrive policy: SQS requires the DLQ in the same account and region, so its URL
    /// is the main queue's with the last segment replaced.
    pub dlq_url: Option<String>,
}

/// Reads the queue's visibility timeout and redrive policy, retrying with backoff while the queue
/// is unreachable (the worker has nothing to do without it). Warns loudly (log and metric) when
/// the queue has no redrive policy: then poison messages circulate forever instead of reaching a
/// dead-letter queue. `None` when shutdown began first.
pub async fn inspect(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    shutdown: &CancellationToken,
) -> Option<QueueFacts> {
    let mut delays = backoff::outage(Duration::from_secs(30));
    loop {
        let result = sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await;
        match result {
            Ok(output) => {
                let attributes = output.attributes.unwrap_or_default();
                let visibility = attributes
                    .get(&QueueAttributeName::VisibilityTimeout)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(30);
                let policy = attributes.get(&QueueAttributeName::RedrivePolicy);
                let dlq_url = policy.and_then(|p| dlq_url(queue_url, p));
                metrics::gauge!(names::NO_REDRIVE_POLICY).set(if policy.is_some() {
                    0.0
                } else {
                    1.0
                });
                match policy {
                    Some(policy) => {
                        info!(visibility_timeout_secs = visibility, redrive_policy = %policy, "queue inspected")
                    }
                    None => error!(
                        visibility_timeout_secs = visibility,
                        "the queue has NO redrive policy: poison messages will circulate forever instead of reaching a dead-letter queue"
                    ),
                }
                return Some(QueueFacts {
                    visibility_timeout: Duration::from_secs(visibility),
                    dlq_url,
                });
            }
            Err(e) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                warn!(error = %sdk_error(&e), retry_in_ms = delay.as_millis() as u64, "cannot read the queue's attributes");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// The DLQ's URL from the main queue's URL and its redrive policy's `deadLetterTargetArn`.
pub fn dlq_url(queue_url: &str, redrive_policy: &str) -> Option<String> {
    let policy: serde_json::Value = serde_json::from_str(redrive_policy).ok()?;
    let arn = policy.get("deadLetterTargetArn")?.as_str()?;
    let name = arn.rsplit(':').next()?;
    let (base, _) = queue_url.rsplit_once('/')?;
    Some(format!("{base}/{name}"))
}

/// Polls both queues' depth into gauges until shutdown, so dashboards and alerts see the backlog
/// and the dead-letter queue from the worker's own metrics too.
pub async fn watch_depth(
    sqs: aws_sdk_sqs::Client,
    queues: Vec<(&'static str, String)>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        for (queue, url) in &queues {
            let result = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await;
            let Ok(output) = result else { continue };
            let attributes = output.attributes.unwrap_or_default();
            for (state, name) in [
                ("visible", QueueAttributeName::ApproximateNumberOfMessages),
                (
                    "in_flight",
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                ),
            ] {
                let value: f64 = attributes
                    .get(&name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                metrics::gauge!(names::QUEUE_MESSAGES, "queue" => *queue, "state" => state)
                    .set(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dlq_url_sits_beside_the_queue() {
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:eu-central-1:123456789012:uploads-dlq","maxReceiveCount":"5"}"#;
        assert_eq!(
            dlq_url(
                "https://sqs.eu-central-1.amazonaws.com/123456789012/uploads",
                policy
            )
            .as_deref(),
            Some("https://sqs.eu-central-1.amazonaws.com/123456789012/uploads-dlq")
        );
        assert_eq!(dlq_url("https://sqs.x/1/q", "not json"), None);
    }
}
