//! The docworker runtime: configuration, telemetry, the SQS poller, S3 streaming and the
//! pipeline that ties them to the domain in `docworker-shared`.

pub mod app;
pub mod config;
pub mod deletes;
pub mod dlq;
pub mod error;
pub mod fetch;
pub mod notify;
pub mod observe;
pub mod pipeline;
pub mod poller;
pub mod queue;
pub mod replay;
pub mod shutdown;
pub mod telemetry;
