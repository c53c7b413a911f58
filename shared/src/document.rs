//! The Document: one row per stored object, and the outcomes processing can give it.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::{Category, DicomHeader, Rejection, verify::Integrity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Written by the upload path when it hands out a pre-signed URL.
    Pending,
    Finalized,
    Rejected,
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Finalized => "finalized",
            Status::Rejected => "rejected",
            Status::Deleted => "deleted",
        }
    }
}

/// What is known about an object apart from the verdict: the event's identity and the
/// metadata the uploader attached. Every outcome is written with these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFacts {
    pub bucket: String,
    pub key: String,
    pub category: Category,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
    /// The event time: when S3 stored the object.
    pub uploaded_at: DateTime<Utc>,
    pub declared_content_type: Option<String>,
    pub file_size: Option<u64>,
    /// From `x-amz-meta-*`; a pending row's own values take precedence over these.
    pub upload: UploadMetadata,
}

/// The facts the upload path knows: it writes them on the pending row and as object metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadMetadata {
    pub title: Option<String>,
    pub description: Option<String>,
    pub original_filename: Option<String>,
    pub uploaded_by: Option<String>,
    pub case_id: Option<String>,
}

/// A verified object.
#[derive(Debug, Clone, PartialEq)]
pub struct Finalized {
    pub content_type: &'static str,
    pub sha256: String,
    pub integrity: Integrity,
    pub dicom: Option<DicomHeader>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finalized(Box<Finalized>),
    /// A rejection keeps what was learned before the verdict, so that a reviewer sees what the
    /// upload really was: `content_type` is the type detected from the bytes (not a verified one:
    /// the object was refused), `sha256` is known when the whole body was read and its length and
    /// integrity checked. Both stay `None` when the verdict came first (too large, empty) or the
    /// bytes read were not the object's (length or MD5 mismatch).
    Rejected {
        reason: Rejection,
        content_type: Option<&'static str>,
        sha256: Option<String>,
    },
}

impl Outcome {
    pub fn status(&self) -> Status {
        match self {
            Outcome::Finalized(_) => Status::Finalized,
            Outcome::Rejected { .. } => Status::Rejected,
        }
    }
}

/// A row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Document {
    pub id: Uuid,
    pub bucket: String,
    pub file_key: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: String,
    pub original_filename: Option<String>,
    pub uploaded_by: Option<String>,
    pub case_id: Option<String>,
    pub declared_content_type: Option<String>,
    pub content_type: Option<String>,
    pub file_size: Option<i64>,
    pub sha256: Option<String>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
    pub status: String,
    pub rejection_reason: Option<String>,
    /// The rejection's stable label (`Rejection::label`), which notifications carry.
    pub rejection_label: Option<String>,
    pub study_instance_uid: Option<String>,
    pub series_instance_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub sop_class_uid: Option<String>,
    pub modality: Option<String>,
    pub patient_id: Option<String>,
    pub study_date: Option<NaiveDate>,
    pub transfer_syntax_uid: Option<String>,
    pub dicom: Option<Value>,
    pub integrity: Option<String>,
    /// The malware scan's verdict ([`crate::gate::ScanVerdict::row_value`]).
    pub scan: Option<String>,
    pub uploaded_at: Option<DateTime<Utc>>,
    pub processed_at: Option<DateTime<Utc>>,
    pub processor_version: Option<String>,
}
