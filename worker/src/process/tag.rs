//! Writing the gate's verdict back to S3 as object tags, after the row commits: the bucket policy
//! denies the download role every object whose `docworker-status` tag is not `finalized`, so the
//! tag is what makes a refusal hold outside the database. The exact version read is tagged,
//! merged with the tags the uploader set (within S3's limit of ten; see
//! [`gate::merge_tags`]). The row is the source of truth and tagging is idempotent: a redelivered
//! message or a replay writes the same tags again, and a failure is retried in process, then
//! leaves the message for redelivery.

use aws_sdk_s3::types::{Tag, Tagging};
use backon::Retryable;
use docworker_shared::gate::{self, ObjectStatus, ScanVerdict, Tagged};
use tracing::warn;

use super::fetch::s3_error;
use crate::error::{Class, ProcessError, Settles};
use crate::observe::names;

/// Attempts at tagging in process, before the failure is the message's.
const ATTEMPTS: usize = 4;

/// The object version to tag: the one whose bytes were read.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// `None` on an unversioned bucket.
    pub version_id: Option<&'a str>,
    /// How many tags the version has, when GetObject said (`x-amz-tagging-count`, sent only
    /// when there are some): with none, there is nothing to merge and GetObjectTagging is
    /// skipped.
    pub tags: Option<u32>,
}

/// Tags the object with its status and scan verdict (`None`: refused before any byte was read,
/// so not scanned), merged with its existing tags; retried in process with backoff and jitter
/// when S3 fails transiently.
pub async fn tag(
    s3: &aws_sdk_s3::Client,
    target: Target<'_>,
    status: ObjectStatus,
    scan: Option<&ScanVerdict>,
) -> Result<Tagged, ProcessError> {
    let backoff = crate::backoff::bounded(ATTEMPTS);
    let result = (|| tag_once(s3, target, status, scan))
        .retry(backoff)
        .when(|e| e.class() == Class::Retryable)
        .notify(|e, delay| {
            warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "retrying tagging");
        })
        .await;
    let label = match &result {
        Ok(tagged) => tagged.label(),
        Err(_) => "failed",
    };
    metrics::counter!(names::TAG_WRITES, "outcome" => label).increment(1);
    result
}

async fn tag_once(
    s3: &aws_sdk_s3::Client,
    target: Target<'_>,
    status: ObjectStatus,
    scan: Option<&ScanVerdict>,
) -> Result<Tagged, ProcessError> {
    let existing = if target.tags == Some(0) {
        Vec::new()
    } else {
        match s3
            .get_object_tagging()
            .bucket(target.bucket)
            .key(target.key)
            .set_version_id(target.version_id.map(str::to_owned))
            .send()
            .await
        {
            Ok(output) => output
                .tag_set
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect::<Vec<_>>(),
            Err(e) => return gone_or(s3_error("GetObjectTagging", target.bucket, target.key, e)),
        }
    };
    let merged = gate::merge_tags(&existing, &gate::docworker_tags(status, scan));
    if !merged.changed {
        return Ok(Tagged::Unchanged);
    }
    if merged.dropped > 0 {
        // The number only: tag keys and values are the uploader's and may say anything.
        warn!(
            dropped = merged.dropped,
            "the uploader's tags left no room for docworker's: dropped the last of theirs"
        );
        metrics::counter!(names::TAGS_DROPPED).increment(merged.dropped as u64);
    }
    let tag_set = merged
        .tags
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect::<Result<Vec<_>, _>>()
        .expect("key and value are set");
    let tagging = Tagging::builder()
        .set_tag_set(Some(tag_set))
        .build()
        .expect("the tag set is set");
    match s3
        .put_object_tagging()
        .bucket(target.bucket)
        .key(target.key)
        .set_version_id(target.version_id.map(str::to_owned))
        .tagging(tagging)
        .send()
        .await
    {
        Ok(_) => Ok(Tagged::Written),
        Err(e) => gone_or(s3_error("PutObjectTagging", target.bucket, target.key, e)),
    }
}

/// A missing key or version is nothing to tag any more, not a failure: its removal has its own
/// event, which settles the row.
fn gone_or(error: ProcessError) -> Result<Tagged, ProcessError> {
    match error.settles() {
        Some(Settles::Gone) => Ok(Tagged::Gone),
        _ => Err(error),
    }
}
