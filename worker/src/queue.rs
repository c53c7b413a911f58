//! What the worker needs to know about its queue before it starts consuming.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use backon::{BackoffBuilder, ExponentialBuilder};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Reads the queue's visibility timeout, retrying with backoff while the queue is unreachable
/// (the worker has nothing to do without it). Warns when the queue has no redrive policy: then
/// poison messages circulate forever instead of reaching a dead-letter queue.
/// `None` when shutdown began first.
pub async fn inspect(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    shutdown: &CancellationToken,
) -> Option<Duration> {
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .without_max_times()
        .with_jitter()
        .build();
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
                match attributes.get(&QueueAttributeName::RedrivePolicy) {
                    Some(policy) => {
                        info!(visibility_timeout_secs = visibility, redrive_policy = %policy, "queue inspected")
                    }
                    None => error!(
                        visibility_timeout_secs = visibility,
                        "the queue has NO redrive policy: poison messages will circulate forever instead of reaching a dead-letter queue"
                    ),
                }
                return Some(Duration::from_secs(visibility));
            }
            Err(e) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), retry_in_ms = delay.as_millis() as u64, "cannot read the queue's attributes");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}
