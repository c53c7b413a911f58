//! Learning a multipart object's part layout from S3: `HeadObject` with `PartNumber` answers that
//! part's length (`Content-Length`) and the object's part count (`x-amz-mp-parts-count`), on AWS
//! and on moto alike. The requests name the version read when the bucket is versioned. They are
//! not made conditional on the object's ETag: moto answers a part's HEAD with the part's own
//! ETag and refuses `If-Match` with the object's (412). A key overwritten between the GetObject
//! and these requests gives a layout that does not fit the bytes read; that object's own event
//! then settles the key.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use docworker_shared::parts::PartLayout;
use futures::{StreamExt, TryStreamExt};

/// Which object, exactly.
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub version_id: Option<&'a str>,
    pub total: u64,
    /// The part count the ETag announces.
    pub parts: u32,
}

/// What one part's `HeadObject` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Part {
    length: u64,
    /// `x-amz-mp-parts-count`: absent for an object that was not uploaded in parts.
    count: Option<u32>,
}

/// How many part lengths are asked for at once when every part must be learnt: enough to hide
/// the round trip, few enough not to crowd the objects being streamed.
const CONCURRENT_HEADS: usize = 8;

pub type HeadError = SdkError<HeadObjectError, HttpResponse>;

/// The layout from the first and the last part, assuming one part size: two requests at once
/// (one for a single-part upload), since the streaming waits for them and each waits for its
/// first byte. `None` when those lengths cannot come from one part size, or S3's part count
/// disagrees with the ETag's: then [`every_part`] decides.
pub async fn assume_uniform(
    s3: &aws_sdk_s3::Client,
    object: Object<'_>,
) -> Result<Option<PartLayout>, HeadError> {
    let (first, last) = if object.parts == 1 {
        let first = head_part(s3, object, 1).await?;
        (first, first)
    } else {
        futures::future::try_join(
            head_part(s3, object, 1),
            head_part(s3, object, object.parts),
        )
        .await?
    };
    if first.count != Some(object.parts) {
        return Ok(None);
    }
    Ok(PartLayout::uniform(
        object.total,
        object.parts,
        first.length,
        last.length,
    ))
}

/// Every part's length, [`CONCURRENT_HEADS`] at a time: one request per part, so only when the
/// uniform assumption failed (uneven parts) or its digest disagreed with S3's. `None` when the
/// lengths do not add up to the object (it changed underneath, which the `If-Match` makes S3
/// refuse first).
pub async fn every_part(
    s3: &aws_sdk_s3::Client,
    object: Object<'_>,
) -> Result<Option<PartLayout>, HeadError> {
    let lengths: Vec<u64> = futures::stream::iter(1..=object.parts)
        .map(|number| head_part(s3, object, number))
        .buffered(CONCURRENT_HEADS)
        .map_ok(|part| part.length)
        .try_collect()
        .await?;
    Ok(PartLayout::listed(object.total, lengths))
}

async fn head_part(
    s3: &aws_sdk_s3::Client,
    object: Object<'_>,
    number: u32,
) -> Result<Part, HeadError> {
    let output = s3
        .head_object()
        .bucket(object.bucket)
        .key(object.key)
        .set_version_id(object.version_id.map(str::to_owned))
        .part_number(i32::try_from(number).unwrap_or(i32::MAX))
        .send()
        .await?;
    Ok(Part {
        length: output
            .content_length()
            .and_then(|length| u64::try_from(length).ok())
            .unwrap_or(0),
        count: output.parts_count().and_then(|n| u32::try_from(n).ok()),
    })
}
