//! Integration tests: the real `docworker` binary against real PostgreSQL and a real moto_server
//! (S3 + SQS). Each test makes its own database, bucket, queue and dead-letter queue, so tests
//! run in parallel without seeing each other. Start the services with
//! `infra/local/stack.sh services` and build the binary first (`scripts/test.sh` does both).

mod config;
mod database;
mod delivery;
mod faults;
mod gate;
mod helpers;
mod iam;
mod in_process;
mod integrity;
mod notify;

mod hostile;
mod infra;
mod operations;
mod pipeline;
mod proxy;
mod ranged;
mod reconcile;
mod versioned;
