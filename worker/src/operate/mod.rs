//! Operator commands beside the worker: they share its clients and configuration, never its
//! runtime loop.

pub mod dlq;
pub mod reconcile;
pub mod replay;
