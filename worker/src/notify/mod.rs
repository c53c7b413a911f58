//! Telling others what happened: the outbox publisher (EventBridge or SNS) and the study
//! completion scanner. The PostgreSQL side (NOTIFY, the outbox rows, the studies and series) is
//! kept by triggers in `migrations/`, inside the transaction of each write; these tasks only move
//! what was committed onwards. Both run beside the poller and never hold up processing: they use
//! one pooled connection for a statement at a time and none while waiting on AWS.

use std::time::Duration;

use clap::Args;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;

pub mod outbox;
pub mod studies;

pub use outbox::Destination;

/// `run`'s notification settings.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// EventBridge bus (name or ARN) that receives one event per settled outcome and per
    /// completed study, published from the outbox. Unset (and no SNS topic): the outbox is kept,
    /// not published.
    #[arg(long, env = "DOCWORKER_EVENT_BUS")]
    pub event_bus: Option<String>,
    /// SNS topic ARN that receives them instead (one of the two at most).
    #[arg(long, env = "DOCWORKER_SNS_TOPIC_ARN")]
    pub sns_topic_arn: Option<String>,
    /// A study that has received no new instance for this long is reported complete, once.
    #[arg(long, env = "DOCWORKER_STUDY_QUIET_SECS", default_value_t = 120)]
    pub study_quiet_secs: u64,
}

/// The notification settings after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub destination: Option<Destination>,
    pub study_quiet: Duration,
}

impl NotifyArgs {
    pub fn validate(&self) -> Result<NotifyConfig, ConfigError> {
        let set = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        let destination = match (set(&self.event_bus), set(&self.sns_topic_arn)) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "DOCWORKER_EVENT_BUS",
                    "set DOCWORKER_EVENT_BUS or DOCWORKER_SNS_TOPIC_ARN, not both".into(),
                ));
            }
            (Some(bus), None) => Some(Destination::EventBridge { bus }),
            (None, Some(topic_arn)) => {
                if !topic_arn.starts_with("arn:") {
                    return Err(ConfigError::Invalid(
                        "DOCWORKER_SNS_TOPIC_ARN",
                        format!("expected an arn:…:sns:… topic ARN, got {topic_arn:?}"),
                    ));
                }
                Some(Destination::Sns { topic_arn })
            }
            (None, None) => None,
        };
        if self.study_quiet_secs == 0 {
            return Err(ConfigError::Invalid(
                "DOCWORKER_STUDY_QUIET_SECS",
                "must be at least 1".into(),
            ));
        }
        Ok(NotifyConfig {
            destination,
            study_quiet: Duration::from_secs(self.study_quiet_secs),
        })
    }
}

/// Starts the publisher (when a destination is configured) and the study scanner; both stop
/// with `shutdown`.
pub fn spawn(
    config: &NotifyConfig,
    pool: PgPool,
    aws: &aws_config::SdkConfig,
    shutdown: CancellationToken,
) {
    if let Some(destination) = &config.destination {
        let publisher = outbox::Publisher::new(destination.clone(), aws, pool.clone());
        tokio::spawn(publisher.run(shutdown.clone()));
    }
    tokio::spawn(studies::run(pool, config.study_quiet, shutdown));
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        notify: NotifyArgs,
    }

    fn validate(args: &[&str]) -> Result<NotifyConfig, ConfigError> {
        let mut argv = vec!["test"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses").notify.validate()
    }

    #[test]
    fn without_a_destination_nothing_is_published_and_studies_settle_after_two_minutes() {
        let config = validate(&[]).expect("valid");
        assert_eq!(config.destination, None);
        assert_eq!(config.study_quiet, Duration::from_secs(120));
        assert_eq!(validate(&["--event-bus", " "]).unwrap().destination, None);
    }

    #[test]
    fn one_destination_at_most_and_each_bad_setting_is_named() {
        assert_eq!(
            validate(&["--event-bus", "clinic"]).unwrap().destination,
            Some(Destination::EventBridge {
                bus: "clinic".into()
            })
        );
        let topic = "arn:aws:sns:eu-west-1:123456789012:docworker";
        assert_eq!(
            validate(&["--sns-topic-arn", topic]).unwrap().destination,
            Some(Destination::Sns {
                topic_arn: topic.into()
            })
        );
        let both = validate(&["--event-bus", "b", "--sns-topic-arn", topic]).unwrap_err();
        assert!(both.to_string().contains("not both"), "{both}");
        let bad = validate(&["--sns-topic-arn", "docworker"]).unwrap_err();
        assert!(
            bad.to_string().starts_with("DOCWORKER_SNS_TOPIC_ARN"),
            "{bad}"
        );
        let zero = validate(&["--study-quiet-secs", "0"]).unwrap_err();
        assert!(
            zero.to_string().starts_with("DOCWORKER_STUDY_QUIET_SECS"),
            "{zero}"
        );
    }
}
