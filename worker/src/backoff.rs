//! Waiting out an outage (the queue, the network or the database down): one schedule for every
//! place that waits, so they all recover alike.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Delays for waiting out an outage: from 0.5 s, doubling with jitter, up to `max_delay`, forever.
pub fn outage(max_delay: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(max_delay)
        .without_max_times()
        .with_jitter()
        .build()
}

/// Delays for retrying one request that failed transiently (a tag write, a range of a ranged
/// read): from 0.1 s, doubling with jitter, up to 2 s, for `attempts` attempts in all.
pub fn bounded(attempts: usize) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .with_max_times(attempts.saturating_sub(1))
        .with_jitter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outage_backoff_never_ends_and_stays_bounded() {
        let delays: Vec<_> = outage(Duration::from_secs(30)).take(50).collect();
        assert_eq!(delays.len(), 50);
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(60)),
            "{delays:?}"
        );
    }

    #[test]
    fn a_bounded_backoff_ends_after_its_attempts() {
        let delays: Vec<_> = bounded(4).build().collect();
        assert_eq!(delays.len(), 3, "three waits between four attempts");
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(4)),
            "{delays:?}"
        );
    }
}
