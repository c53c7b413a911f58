//! Telling others what happened: the outbox publisher (EventBridge or SNS) and the study
//! completion scanner. The PostgreSQL side (NOTIFY, the outbox rows, the studies and series) is
//! kept by triggers in `migrations/`, inside the transaction of each write; these tasks only move
//! what was committed onwards. Both run beside the consumer and never hold up processing: they
//! share one connection of their own ([`Clients::background`]) for a statement at a time, and
//! hold none while waiting on AWS.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clients::Clients;

pub mod outbox;
pub mod studies;

/// Starts the publisher (when a destination is configured) and the study scanner; both stop
/// with `shutdown`. Called once the metrics recorder is installed, so that their series register.
pub fn spawn(clients: &Clients, study_quiet: Duration, shutdown: CancellationToken) {
    if let Some(publish) = clients.publish.clone() {
        let publisher = outbox::Publisher::new(publish, clients.background.clone());
        tokio::spawn(publisher.run(shutdown.clone()));
    }
    tokio::spawn(studies::run(
        clients.background.clone(),
        study_quiet,
        shutdown,
    ));
}
