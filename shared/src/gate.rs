//! The gate: what the malware scan decided, and the status docworker writes back to S3 as object
//! tags. The tags are what makes a verdict enforceable outside the database: the bucket policy
//! (`infra/aws/docworker.json`) denies the application's download role every object whose
//! [`STATUS_TAG`] is not [`ObjectStatus::Finalized`]. Pure: the clamd conversation and the S3 calls
//! live in the worker; the names here are the contract both they and the template's test use.

use std::fmt;

use crate::{Rejection, Status};

/// The tag the bucket policy reads (`s3:ExistingObjectTag/docworker-status`).
pub const STATUS_TAG: &str = "docworker-status";
/// The scan verdict, for people and tools looking at the object (the policy does not read it).
pub const SCAN_TAG: &str = "docworker-scan";
/// S3's limit of tags per object.
pub const MAX_TAGS: usize = 10;
/// Longest signature name kept: clamd's names are short (`Win.Test.EICAR_HDB-1`), so anything
/// longer is not a name.
const MAX_SIGNATURE_CHARS: usize = 128;

/// The value of [`STATUS_TAG`]. The row says `rejected` for an infected file too (its reason
/// names the signature); the tag tells it apart so that a bucket inventory or a lifecycle rule
/// can find malware without the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectStatus {
    Finalized,
    Rejected,
    Infected,
}

impl ObjectStatus {
    pub const ALL: [ObjectStatus; 3] = [
        ObjectStatus::Finalized,
        ObjectStatus::Rejected,
        ObjectStatus::Infected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectStatus::Finalized => "finalized",
            ObjectStatus::Rejected => "rejected",
            ObjectStatus::Infected => "infected",
        }
    }

    /// The tag for a settled row (`scan` is `None` when no byte was read): `None` for rows that
    /// describe no object to tag (pending, deleted).
    pub fn of(status: Status, scan: Option<&ScanVerdict>) -> Option<ObjectStatus> {
        match (status, scan) {
            (Status::Rejected, Some(ScanVerdict::Infected { .. })) => Some(ObjectStatus::Infected),
            (Status::Rejected, _) => Some(ObjectStatus::Rejected),
            (Status::Finalized, _) => Some(ObjectStatus::Finalized),
            (Status::Pending | Status::Deleted, _) => None,
        }
    }
}

/// Why an object went unscanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotScanned {
    /// clamd did not answer, refused the connection, or answered with an error: retryable.
    Unavailable,
    /// The object is above the scanner's stream limit (the worker's `DOCWORKER_SCAN_MAX_BYTES`,
    /// or clamd's `StreamMaxLength`/`MaxFileSize`/`MaxScanSize` when it reports exceeding one):
    /// scanning it again gives the same answer.
    TooLarge,
    /// clamd accepted the stream but gave no verdict in time: retryable.
    Timeout,
}

impl NotScanned {
    pub fn as_str(self) -> &'static str {
        match self {
            NotScanned::Unavailable => "unavailable",
            NotScanned::TooLarge => "too large",
            NotScanned::Timeout => "timeout",
        }
    }

    /// Whether scanning again later may give a verdict.
    pub fn is_transient(self) -> bool {
        !matches!(self, NotScanned::TooLarge)
    }
}

impl fmt::Display for NotScanned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the scan of one object decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    /// `DOCWORKER_CLAMD_ADDR` is unset: the worker behaves as before the gate.
    NotConfigured,
    Clean,
    /// `signature` is clamd's name for what it found, through [`signature_name`]: not PHI, it
    /// names a pattern, never the file's content.
    Infected {
        signature: String,
    },
    NotScanned(NotScanned),
}

impl ScanVerdict {
    /// Every [`label`](Self::label), so that the scan counter starts at 0 for each verdict.
    /// Keep in step with `label`.
    pub const LABELS: &'static [&'static str] =
        &["clean", "infected", "unavailable", "too_large", "timeout"];

    /// The metric label of a scan that ran (`None` when scanning is not configured).
    pub fn label(&self) -> Option<&'static str> {
        match self {
            ScanVerdict::NotConfigured => None,
            ScanVerdict::Clean => Some("clean"),
            ScanVerdict::Infected { .. } => Some("infected"),
            ScanVerdict::NotScanned(NotScanned::Unavailable) => Some("unavailable"),
            ScanVerdict::NotScanned(NotScanned::TooLarge) => Some("too_large"),
            ScanVerdict::NotScanned(NotScanned::Timeout) => Some("timeout"),
        }
    }

    /// The value of [`SCAN_TAG`].
    pub fn tag_value(&self) -> &'static str {
        match self {
            ScanVerdict::NotConfigured => "not-configured",
            ScanVerdict::Clean => "clean",
            ScanVerdict::Infected { .. } => "infected",
            ScanVerdict::NotScanned(_) => "not-scanned",
        }
    }

    /// The row's `scan` column (a CHECK in the migration keeps it to these).
    pub fn row_value(&self) -> &'static str {
        match self {
            ScanVerdict::NotConfigured => "not configured",
            ScanVerdict::Clean => "clean",
            ScanVerdict::Infected { .. } => "infected",
            ScanVerdict::NotScanned(NotScanned::Unavailable) => "not scanned: unavailable",
            ScanVerdict::NotScanned(NotScanned::TooLarge) => "not scanned: too large",
            ScanVerdict::NotScanned(NotScanned::Timeout) => "not scanned: timeout",
        }
    }
}

/// What the gate makes of a scan verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Record the outcome the other checks reached (finalized, or their rejection).
    Proceed,
    /// Record this rejection instead of the other checks' outcome.
    Reject(Rejection),
    /// Record nothing and leave the message for redelivery: the scanner may answer later.
    Retry(NotScanned),
}

/// The policy. Malware rejects the object whatever else was found: it takes precedence over
/// every other reason, so that whoever reviews the row learns first that the file is dangerous.
/// An object that could not be scanned is finalized only when `allow_unscanned`
/// (`DOCWORKER_SCAN_ALLOW_UNSCANNED`); otherwise a transient reason (unavailable, timeout) is
/// retried, like an unavailable database, and a permanent one (too large) rejects it. An object
/// the other checks already `rejected` keeps that rejection when it could not be scanned: it is
/// refused either way, and its tag (`rejected`) already denies reads.
pub fn decide(scan: &ScanVerdict, rejected: bool, allow_unscanned: bool) -> Gate {
    match scan {
        ScanVerdict::Infected { signature } => Gate::Reject(Rejection::Infected {
            signature: signature.clone(),
        }),
        ScanVerdict::NotConfigured | ScanVerdict::Clean => Gate::Proceed,
        ScanVerdict::NotScanned(_) if allow_unscanned || rejected => Gate::Proceed,
        ScanVerdict::NotScanned(reason) if reason.is_transient() => Gate::Retry(*reason),
        ScanVerdict::NotScanned(reason) => Gate::Reject(Rejection::NotScanned { reason: *reason }),
    }
}

/// A clamd reply that is no verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// clamd answered `… ERROR` for a reason other than a size limit (out of memory, a
    /// temporary-file failure, a reload in progress): the scanner is unavailable, not the file
    /// bad.
    #[error("clamd answered an error: {0}")]
    Refused(String),
    #[error("clamd's reply is not a verdict ({0} bytes)")]
    Unrecognised(usize),
}

/// Reads clamd's reply to `INSTREAM`: `stream: OK`, `stream: <name> FOUND`, or `<text> ERROR`
/// (`INSTREAM size limit exceeded. ERROR` above `StreamMaxLength`). A `Heuristics.Limits.Exceeded`
/// "signature" (reported with `AlertExceedsMax`) means clamd stopped reading at a size limit, so
/// it is "not scanned: too large", not malware; `…MaxScanTime`, its time limit, is a timeout.
pub fn read_reply(reply: &[u8]) -> Result<ScanVerdict, ReplyError> {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim_end_matches(['\0', '\n', ' ']);
    let body = text.strip_prefix("stream: ").unwrap_or(text);
    if body == "OK" {
        return Ok(ScanVerdict::Clean);
    }
    if let Some(name) = body.strip_suffix(" FOUND") {
        if name.starts_with("Heuristics.Limits.Exceeded.MaxScanTime") {
            // clamd's own clock ran out, which a calmer retry may beat: not a size.
            return Ok(ScanVerdict::NotScanned(NotScanned::Timeout));
        }
        if name.starts_with("Heuristics.Limits.Exceeded") {
            return Ok(ScanVerdict::NotScanned(NotScanned::TooLarge));
        }
        return Ok(ScanVerdict::Infected {
            signature: signature_name(name),
        });
    }
    if let Some(error) = body.strip_suffix(" ERROR") {
        if error.contains("size limit exceeded") {
            return Ok(ScanVerdict::NotScanned(NotScanned::TooLarge));
        }
        return Err(ReplyError::Refused(signature_name(error)));
    }
    Err(ReplyError::Unrecognised(reply.len()))
}

/// A signature name as the row, the log and the tag may carry it: the characters clamd's names
/// use, at most 128 of them; anything else becomes `_`.
pub fn signature_name(raw: &str) -> String {
    raw.chars()
        .take(MAX_SIGNATURE_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '+' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// How a tagging ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    /// PutObjectTagging wrote the merged set.
    Written,
    /// The object already carried these tags (a redelivery or replay): nothing written.
    Unchanged,
    /// The version is gone (deleted since it was read): nothing left to tag.
    Gone,
}

impl Tagged {
    /// Every label of the tag-writes counter, `failed` included. Keep in step with `label`.
    pub const LABELS: &'static [&'static str] = &["written", "unchanged", "gone", "failed"];

    pub fn label(self) -> &'static str {
        match self {
            Tagged::Written => "written",
            Tagged::Unchanged => "unchanged",
            Tagged::Gone => "gone",
        }
    }
}

/// The object's tag set after docworker writes its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedTags {
    pub tags: Vec<(String, String)>,
    /// How many of the uploader's tags gave way to docworker's (S3 holds at most ten).
    pub dropped: usize,
    /// Whether the set differs from what the object has: an unchanged set need not be written.
    pub changed: bool,
}

/// Merges docworker's tags into the object's. docworker's come first and replace any earlier
/// values of the same keys; the uploader's others follow in the order S3 returned them, as many
/// as fit in [`MAX_TAGS`]. So when the uploader used all ten, the last of theirs are dropped:
/// the status tag must be written, since the bucket policy denies reads of an object without it,
/// and a finalized file nobody can download is worse than a lost label. The upload path should
/// keep to eight tags (`docs/deploy.md`).
pub fn merge_tags(existing: &[(String, String)], ours: &[(&str, &str)]) -> MergedTags {
    let mut tags: Vec<(String, String)> = ours
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let theirs = existing
        .iter()
        .filter(|(key, _)| !ours.iter().any(|(k, _)| k == key));
    let mut dropped = 0;
    for tag in theirs {
        if tags.len() < MAX_TAGS {
            tags.push(tag.clone());
        } else {
            dropped += 1;
        }
    }
    let changed = tags.len() != existing.len() || tags.iter().any(|t| !existing.contains(t));
    MergedTags {
        tags,
        dropped,
        changed,
    }
}

/// docworker's two tags for a settled object; `scan` is `None` for an object refused before any
/// of its bytes were read (too large, empty), which is `not-scanned`.
pub fn docworker_tags(
    status: ObjectStatus,
    scan: Option<&ScanVerdict>,
) -> [(&'static str, &'static str); 2] {
    let scanned = scan.map_or("not-scanned", ScanVerdict::tag_value);
    [(STATUS_TAG, status.as_str()), (SCAN_TAG, scanned)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(tags: &[(&str, &str)]) -> Vec<(String, String)> {
        tags.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn clamd_replies_become_verdicts() {
        assert_eq!(read_reply(b"stream: OK\0"), Ok(ScanVerdict::Clean));
        assert_eq!(
            read_reply(b"stream: Docworker.Test.EICAR_NDB-1.UNOFFICIAL FOUND\0"),
            Ok(ScanVerdict::Infected {
                signature: "Docworker.Test.EICAR_NDB-1.UNOFFICIAL".into()
            })
        );
        assert_eq!(
            read_reply(b"INSTREAM size limit exceeded. ERROR\0"),
            Ok(ScanVerdict::NotScanned(NotScanned::TooLarge))
        );
        assert_eq!(
            read_reply(b"stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\0"),
            Ok(ScanVerdict::NotScanned(NotScanned::TooLarge)),
            "a size limit inside clamd is not malware"
        );
        assert_eq!(
            read_reply(b"stream: Heuristics.Limits.Exceeded.MaxScanTime FOUND\0"),
            Ok(ScanVerdict::NotScanned(NotScanned::Timeout)),
            "clamd's time limit is a timeout, retried, not a size"
        );
        assert_eq!(
            read_reply(b"stream: Can't allocate memory ERROR\0"),
            Err(ReplyError::Refused("Can_t allocate memory".into()))
        );
        assert_eq!(read_reply(b""), Err(ReplyError::Unrecognised(0)));
        assert_eq!(read_reply(b"PONG\0"), Err(ReplyError::Unrecognised(5)));
    }

    #[test]
    fn the_policy_puts_malware_first_and_never_passes_an_unscanned_object_silently() {
        let infected = ScanVerdict::Infected {
            signature: "Win.Test.EICAR_HDB-1".into(),
        };
        let expected = Gate::Reject(Rejection::Infected {
            signature: "Win.Test.EICAR_HDB-1".into(),
        });
        assert_eq!(decide(&infected, false, false), expected);
        assert_eq!(
            decide(&infected, true, true),
            expected,
            "precedence over any other reason"
        );
        assert_eq!(decide(&ScanVerdict::Clean, false, false), Gate::Proceed);
        assert_eq!(
            decide(&ScanVerdict::NotConfigured, false, false),
            Gate::Proceed
        );

        let unavailable = ScanVerdict::NotScanned(NotScanned::Unavailable);
        let timeout = ScanVerdict::NotScanned(NotScanned::Timeout);
        let too_large = ScanVerdict::NotScanned(NotScanned::TooLarge);
        assert_eq!(
            decide(&unavailable, false, false),
            Gate::Retry(NotScanned::Unavailable)
        );
        assert_eq!(
            decide(&timeout, false, false),
            Gate::Retry(NotScanned::Timeout)
        );
        assert_eq!(
            decide(&too_large, false, false),
            Gate::Reject(Rejection::NotScanned {
                reason: NotScanned::TooLarge
            })
        );
        for unscanned in [&unavailable, &timeout, &too_large] {
            assert_eq!(
                decide(unscanned, false, true),
                Gate::Proceed,
                "allowed by the setting"
            );
            assert_eq!(
                decide(unscanned, true, false),
                Gate::Proceed,
                "refused anyway"
            );
        }
    }

    #[test]
    fn signature_names_keep_only_name_characters() {
        assert_eq!(
            signature_name("Win.Test.EICAR_HDB-1"),
            "Win.Test.EICAR_HDB-1"
        );
        assert_eq!(signature_name("a\nb\u{1b}[31m"), "a_b__31m");
        assert_eq!(signature_name(&"x".repeat(1000)).len(), MAX_SIGNATURE_CHARS);
    }

    #[test]
    fn status_tags_follow_the_row_and_infected_is_its_own_value() {
        let infected = ScanVerdict::Infected {
            signature: "X".into(),
        };
        assert_eq!(
            ObjectStatus::of(Status::Rejected, Some(&infected)),
            Some(ObjectStatus::Infected)
        );
        assert_eq!(
            ObjectStatus::of(Status::Rejected, None),
            Some(ObjectStatus::Rejected)
        );
        assert_eq!(
            ObjectStatus::of(Status::Finalized, Some(&ScanVerdict::NotConfigured)),
            Some(ObjectStatus::Finalized)
        );
        assert_eq!(
            ObjectStatus::of(Status::Deleted, Some(&ScanVerdict::Clean)),
            None
        );
        assert_eq!(ObjectStatus::of(Status::Pending, None), None);
    }

    #[test]
    fn row_values_are_the_ones_the_migration_allows() {
        let migration = include_str!("../../migrations/20261202000015_scan.sql");
        let verdicts = [
            ScanVerdict::NotConfigured,
            ScanVerdict::Clean,
            ScanVerdict::Infected {
                signature: "X".into(),
            },
            ScanVerdict::NotScanned(NotScanned::Unavailable),
            ScanVerdict::NotScanned(NotScanned::TooLarge),
            ScanVerdict::NotScanned(NotScanned::Timeout),
        ];
        let values: std::collections::BTreeSet<_> =
            verdicts.iter().map(ScanVerdict::row_value).collect();
        assert_eq!(values.len(), verdicts.len(), "one value per verdict");
        for value in values {
            assert!(
                migration.contains(&format!("'{value}'")),
                "{value} is not in the CHECK"
            );
        }
    }

    #[test]
    fn labels_cover_every_scanned_verdict() {
        for verdict in [
            ScanVerdict::Clean,
            ScanVerdict::Infected {
                signature: "X".into(),
            },
            ScanVerdict::NotScanned(NotScanned::Unavailable),
            ScanVerdict::NotScanned(NotScanned::TooLarge),
            ScanVerdict::NotScanned(NotScanned::Timeout),
        ] {
            let label = verdict.label().expect("a scan that ran has a label");
            assert!(ScanVerdict::LABELS.contains(&label), "{label}");
        }
        assert_eq!(ScanVerdict::NotConfigured.label(), None);
    }

    #[test]
    fn tags_merge_with_the_uploaders_and_replace_docworkers_own() {
        let ours = docworker_tags(ObjectStatus::Finalized, Some(&ScanVerdict::Clean));
        let merged = merge_tags(&pairs(&[("project", "x"), (STATUS_TAG, "rejected")]), &ours);
        assert_eq!(
            merged.tags,
            pairs(&[
                (STATUS_TAG, "finalized"),
                (SCAN_TAG, "clean"),
                ("project", "x")
            ])
        );
        assert_eq!(merged.dropped, 0);
        assert!(merged.changed);

        let again = merge_tags(&merged.tags, &ours);
        assert!(
            !again.changed,
            "a redelivery writing the same tags changes nothing"
        );
        assert_eq!(again.tags, merged.tags);
    }

    #[test]
    fn with_ten_uploader_tags_the_last_give_way() {
        let theirs: Vec<(String, String)> = (0..10)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        let merged = merge_tags(&theirs, &docworker_tags(ObjectStatus::Infected, None));
        assert_eq!(merged.tags.len(), MAX_TAGS);
        assert_eq!(merged.dropped, 2);
        assert_eq!(
            merged.tags[0],
            (STATUS_TAG.to_owned(), "infected".to_owned())
        );
        assert_eq!(merged.tags[9], ("k7".to_owned(), "v7".to_owned()));
    }
}
