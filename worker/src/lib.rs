//! The docworker runtime: it consumes S3 event notifications from SQS, streams each object once
//! through a set of readers, decides a verdict and records it in PostgreSQL, using the domain in
//! `docworker-shared`.
//!
//! Dependencies point one way, down this map; nothing imports a module above it.
//!
//! - Commands, started by `main.rs`: [`app`] (`run`: builds the worker from its configuration
//!   and clients, runs it until cancelled; `migrate`) and [`operate`] (`replay`, `dlq`,
//!   `reconcile`: operator tooling).
//! - Runtime parts: [`consume`] (receiving, heartbeats, batched deletes, one disposition per
//!   message, queue facts) drives [`process`] (the pipeline of one object: fetching, the
//!   streaming tee and its readers, the verdict); beside them, [`notify`] (the outbox publisher
//!   and the study completion scanner, started by `app`).
//! - Leaves, used by all above: [`clients`] (AWS and database client construction), [`backoff`]
//!   (waiting out an outage), [`config`] (every setting, validated), [`error`] (failure classes,
//!   decided once), [`observe`] (metrics, health, logging set-up), [`scanner`] (the clamd
//!   client: malware scans and pings) and [`shutdown`] (signals).

pub mod app;
pub mod backoff;
pub mod clients;
pub mod config;
pub mod consume;
pub mod error;
pub mod notify;
pub mod observe;
pub mod operate;
pub mod process;
pub mod scanner;
pub mod shutdown;
