//! Reading objects from S3: metadata only (to reject without downloading) or one streamed
//! GetObject whose body is handed on chunk by chunk.

use std::collections::HashMap;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, ChecksumType, ServerSideEncryption};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use docworker_shared::integrity::{CLIENT_SHA256_METADATA, FullChecksum, Offered};
use docworker_shared::parts::PartCheck;
use docworker_shared::{ObjectEvent, UploadMetadata};

use super::ranged::{Pinned, Ranged, Ranges};
use super::tee::{Body, BodyError};
use crate::error::{ProcessError, Settles, sdk_error};

/// What S3 says about an object, from GetObject's or HeadObject's response headers.
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub content_length: u64,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub upload: UploadMetadata,
    /// What the headers offer to check the bytes against.
    pub offered: Offered,
    /// The full-object checksum `offered.full` names, with S3's value: docworker computes it
    /// itself when the SDK cannot (a ranged read).
    pub full_checksum: Option<(FullChecksum, String)>,
    /// How many tags the version has, from GetObject's `x-amz-tagging-count` (sent only when
    /// there are some, to a reader allowed to see them); `None` from a HeadObject, which does
    /// not say.
    pub tags: Option<u32>,
}

/// The head of a GetObject's or a HeadObject's output: both carry the same headers under the
/// same accessors, but share no type.
macro_rules! head_of {
    ($output:expr, tags: $tags:expr) => {{
        let output = &$output;
        let checksums = Checksums {
            crc64nvme: output.checksum_crc64_nvme(),
            crc32c: output.checksum_crc32_c(),
            crc32: output.checksum_crc32(),
            sha1: output.checksum_sha1(),
            sha256: output.checksum_sha256(),
            composite: output.checksum_type() == Some(&ChecksumType::Composite),
            // Under SSE-KMS, DSSE-KMS and SSE-C the ETag is not the content's MD5.
            etag_is_md5: !matches!(
                output.server_side_encryption(),
                Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
            ) && output.sse_customer_algorithm().is_none(),
        };
        let (offered, full_checksum) = offered(&checksums, output.e_tag(), output.metadata());
        Head {
            content_length: length(output.content_length()),
            content_type: output.content_type().map(str::to_owned),
            etag: output.e_tag().map(str::to_owned),
            version_id: output.version_id().map(str::to_owned),
            upload: upload_metadata(output.metadata()),
            offered,
            full_checksum,
            tags: $tags,
        }
    }};
}

/// An open object: headers read, body not yet.
pub struct Opened {
    pub head: Head,
    pub body: Source,
}

/// Where an object's body is read from: one GetObject's, or ranges of it for a large object.
pub enum Source {
    Whole(ByteStream),
    Ranges(Box<Ranged>),
}

impl Source {
    /// See [`Ranged::release`].
    pub fn release_ranges(&mut self) {
        if let Source::Ranges(ranged) = self {
            ranged.release();
        }
    }
}

impl Body for Source {
    async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        match self {
            Source::Whole(body) => Body::next(body).await,
            Source::Ranges(ranged) => ranged.next().await,
        }
    }
}

/// What S3 answered for the object an event announced. Gone and superseded are answers about the
/// object, not failures: decided here, from the error S3 sent, and returned as values. Each
/// carries that S3 answer, for the log line that explains the outcome.
#[derive(Debug)]
pub enum Fetched<T> {
    Found(T),
    /// 404: the object was deleted before its event was processed.
    Gone(ProcessError),
    /// 412: the key now holds other bytes than the event announced.
    Superseded(ProcessError),
}

impl<T> Fetched<T> {
    /// The object, or the answer in its place (for any `Fetched<U>` the caller returns).
    pub fn found<U>(self) -> Result<T, Fetched<U>> {
        match self {
            Fetched::Found(found) => Ok(found),
            Fetched::Gone(answer) => Err(Fetched::Gone(answer)),
            Fetched::Superseded(answer) => Err(Fetched::Superseded(answer)),
        }
    }

    /// A result, with the answers about the object taken out of its errors.
    pub fn of(result: Result<T, ProcessError>) -> Result<Fetched<T>, ProcessError> {
        match result {
            Ok(found) => Ok(Fetched::Found(found)),
            Err(e) => match e.settles() {
                Some(Settles::Gone) => Ok(Fetched::Gone(e)),
                Some(Settles::Superseded) => Ok(Fetched::Superseded(e)),
                None => Err(e),
            },
        }
    }
}

/// Metadata only: used when the event already says the object is too large to download.
pub async fn head(
    s3: &aws_sdk_s3::Client,
    event: &ObjectEvent,
) -> Result<Fetched<Head>, ProcessError> {
    Fetched::of(head_object(s3, event).await)
}

async fn head_object(s3: &aws_sdk_s3::Client, event: &ObjectEvent) -> Result<Head, ProcessError> {
    let output = s3
        .head_object()
        .bucket(&event.bucket)
        .key(&event.key)
        .set_version_id(event.version_id.clone())
        .set_if_match(announced_etag(event))
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .map_err(|e| s3_error("HeadObject", &event.bucket, &event.key, e))?;
    Ok(head_of!(output, tags: None))
}

/// Reads exactly the object the event announced: its version when the bucket is versioned, else
/// the bytes whose ETag the event carried. If the key was overwritten since, S3 answers 412 and
/// the newer object's own event will follow; the old event must not finalize the new bytes.
fn announced_etag(event: &ObjectEvent) -> Option<String> {
    if event.version_id.is_some() {
        return None;
    }
    event.etag.as_deref().map(quoted)
}

/// An ETag as S3 sends it and `If-Match` takes it: quoted (events carry it bare).
pub(super) fn quoted(etag: &str) -> String {
    format!("\"{}\"", etag.trim_matches('"'))
}

/// Opens the object's body: one GetObject, whose first MiB is read and timed at once when the
/// object is of at least the ranged threshold, and read on by ranges if its connection is slow;
/// or, where every large object is split, with its ranges asked for at the same time. With
/// checksum mode enabled, S3 returns the object's full checksum; the SDK validates it as a whole
/// body streams, failing the stream on a mismatch, and docworker computes it for an object that
/// may be read by ranges (`readers::full`).
pub async fn open(
    s3: &aws_sdk_s3::Client,
    event: &ObjectEvent,
    ranges: &Ranges,
) -> Result<Fetched<Opened>, ProcessError> {
    let pinned = |etag: String, total| Pinned {
        s3: s3.clone(),
        bucket: event.bucket.clone(),
        key: event.key.clone(),
        version_id: event.version_id.clone(),
        etag,
        total,
    };
    let ahead = match (event.size, &event.etag) {
        (Some(size), Some(etag)) if size >= ranges.threshold => {
            Ranged::ahead(pinned(quoted(etag), size), ranges.clone())
        }
        _ => None,
    };
    let (head, body) = match Fetched::of(get_object(s3, event).await)?.found() {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let body = match ahead {
        Some(ahead) => match ahead.attach(head.etag.as_deref(), head.content_length, body) {
            Ok(ranged) => {
                let body = Source::Ranges(Box::new(ranged));
                return Ok(Fetched::Found(Opened { head, body }));
            }
            Err(body) => body,
        },
        None => body,
    };
    let body = match &head.etag {
        Some(etag) if head.content_length >= ranges.threshold => {
            let pinned = pinned(etag.clone(), head.content_length);
            let mut ranged = Ranged::new(pinned, ranges.clone(), body);
            ranged.measure().await;
            Source::Ranges(Box::new(ranged))
        }
        _ => Source::Whole(body),
    };
    Ok(Fetched::Found(Opened { head, body }))
}

async fn get_object(
    s3: &aws_sdk_s3::Client,
    event: &ObjectEvent,
) -> Result<(Head, ByteStream), ProcessError> {
    let output = s3
        .get_object()
        .bucket(&event.bucket)
        .key(&event.key)
        .set_version_id(event.version_id.clone())
        .set_if_match(announced_etag(event))
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .map_err(|e| s3_error("GetObject", &event.bucket, &event.key, e))?;
    let tags = output
        .tag_count()
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let head = head_of!(output, tags: Some(tags));
    Ok((head, output.body))
}

/// What the key holds now: its current version, by a HeadObject without a version id.
#[derive(Debug, Clone)]
pub struct Current {
    /// `None` on an unversioned bucket.
    pub version_id: Option<String>,
    pub etag: Option<String>,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// Asks S3 what the key holds now. `None` when nothing is current: no such key, or a delete
/// marker is the current version (S3 answers 404 to both; with `s3:ListBucket` granted, never
/// 403). Removals and events without a sequencer are decided by this rather than by the order
/// events happen to arrive in.
pub async fn current(
    s3: &aws_sdk_s3::Client,
    event: &ObjectEvent,
) -> Result<Option<Current>, ProcessError> {
    let output = match s3
        .head_object()
        .bucket(&event.bucket)
        .key(&event.key)
        .send()
        .await
    {
        Ok(output) => output,
        Err(e) => {
            let error = s3_error("HeadObject", &event.bucket, &event.key, e);
            return match error.settles() {
                Some(Settles::Gone) => Ok(None),
                _ => Err(error),
            };
        }
    };
    Ok(Some(Current {
        version_id: output
            .version_id()
            .filter(|v| !v.is_empty() && *v != "null")
            .map(str::to_owned),
        etag: output.e_tag().map(|etag| etag.trim_matches('"').to_owned()),
        size: length(output.content_length()),
        last_modified: output
            .last_modified()
            .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())),
    }))
}

fn length(value: Option<i64>) -> u64 {
    value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

/// The checksum headers of a GetObject's or HeadObject's output.
struct Checksums<'a> {
    crc64nvme: Option<&'a str>,
    crc32c: Option<&'a str>,
    crc32: Option<&'a str>,
    sha1: Option<&'a str>,
    sha256: Option<&'a str>,
    /// `x-amz-checksum-type: COMPOSITE`.
    composite: bool,
    etag_is_md5: bool,
}

/// What the headers offer to check the bytes against, and the full-object checksum with its
/// value. A composite (checksum-of-parts) value ends in `-N` on AWS and carries
/// `x-amz-checksum-type: COMPOSITE`; the SDK validates only full-object values, and only those
/// without a `-`, so those are the ones named `full`.
fn offered(
    checksums: &Checksums<'_>,
    etag: Option<&str>,
    metadata: Option<&HashMap<String, String>>,
) -> (Offered, Option<(FullChecksum, String)>) {
    let is_composite = |value: &str| checksums.composite || value.contains('-');
    let full = |checksum, value: Option<&str>| {
        value
            .filter(|v| !is_composite(v))
            .map(|v| (checksum, v.to_owned()))
    };
    let parts = |check, value: Option<&str>| {
        value
            .filter(|v| is_composite(v))
            .map(|v| (check, v.to_owned()))
    };
    let full_checksum = full(FullChecksum::Crc64Nvme, checksums.crc64nvme)
        .or_else(|| full(FullChecksum::Crc32c, checksums.crc32c))
        .or_else(|| full(FullChecksum::Crc32, checksums.crc32))
        .or_else(|| full(FullChecksum::Sha1, checksums.sha1));
    let offered = Offered {
        etag: etag.map(str::to_owned),
        etag_is_md5: checksums.etag_is_md5,
        full: full_checksum.as_ref().map(|(checksum, _)| *checksum),
        checksum_sha256: checksums
            .sha256
            .filter(|v| !is_composite(v))
            .map(str::to_owned),
        composite: parts(PartCheck::Crc32, checksums.crc32)
            .or_else(|| parts(PartCheck::Crc32c, checksums.crc32c))
            .or_else(|| parts(PartCheck::Sha1, checksums.sha1))
            .or_else(|| parts(PartCheck::Sha256, checksums.sha256)),
        client_sha256: metadata
            .and_then(|m| m.get(CLIENT_SHA256_METADATA))
            .map(|v| v.trim().to_owned()),
    };
    (offered, full_checksum)
}

/// The `x-amz-meta-*` values the upload path sets (the SDK strips the prefix).
fn upload_metadata(metadata: Option<&HashMap<String, String>>) -> UploadMetadata {
    let get = |name: &str| {
        metadata
            .and_then(|m| m.get(name))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    UploadMetadata {
        title: get("title"),
        description: get("description"),
        original_filename: get("original-filename"),
        uploaded_by: get("uploaded-by"),
        case_id: get("case-id"),
    }
}

pub(crate) fn s3_error<E>(
    operation: &'static str,
    bucket: &str,
    key: &str,
    error: SdkError<E, HttpResponse>,
) -> ProcessError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    // A HEAD error has no body, so no code: name it after its status, so that the log and the
    // audit trail say `AccessDenied` rather than `Unknown`.
    let code = match &error {
        SdkError::TimeoutError(_) => "Timeout",
        SdkError::DispatchFailure(_) => "DispatchFailure",
        other => other.code().unwrap_or(match status {
            Some(403) => "AccessDenied",
            Some(404) => "NotFound",
            Some(412) => "PreconditionFailed",
            _ => "Unknown",
        }),
    }
    .to_owned();
    ProcessError::S3 {
        operation,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        code,
        status,
        detail: sdk_error(&error),
    }
}
