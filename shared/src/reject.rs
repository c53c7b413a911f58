//! Why an object was rejected. Each reason is a permanent property of the object's bytes or
//! metadata: processing it again gives the same answer, so the worker records it on the Document
//! row and deletes the message. The texts are stored and logged, so they never carry DICOM values.

use thiserror::Error;

use crate::Category;
use crate::gate::NotScanned;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("object is empty")]
    Empty,
    #[error("object is {size} bytes, above the maximum of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("read {counted} bytes but the object's length is {expected} bytes")]
    SizeMismatch { expected: u64, counted: u64 },
    #[error("content MD5 {computed} does not match the ETag {etag}")]
    Md5Mismatch { computed: String, etag: String },
    /// The uploader's own digest of the content (the header names which) differs from the
    /// SHA-256 of the bytes S3 holds: what was sent is not what was stored. Never quotes the
    /// value, which is the uploader's metadata.
    #[error("the content's SHA-256 does not match the uploader's {header}")]
    ClientDigestMismatch { header: &'static str },
    /// The uploader supplied a digest that is not a SHA-256 in the header's encoding.
    #[error("{header} is not a well-formed SHA-256")]
    ClientDigestMalformed { header: &'static str },
    /// The checksum of the part digests over the object's part layout differs from the
    /// multipart ETag or composite checksum S3 derived from the parts it received.
    #[error("the {check} of the object's {parts} parts does not match S3's {reference}")]
    PartsMismatch {
        check: &'static str,
        parts: u32,
        reference: &'static str,
    },
    #[error("content type could not be recognised")]
    Unrecognised,
    #[error("declared {declared} but content is {detected}")]
    DeclaredMismatch { declared: String, detected: String },
    #[error("extension .{extension} does not match content {detected}")]
    ExtensionMismatch { extension: String, detected: String },
    #[error("{detected} is not allowed in category {category}")]
    NotAllowed {
        detected: String,
        category: Category,
    },
    #[error(
        "archive entry {entry} expands {ratio}x to {uncompressed} bytes: refused as a possible zip bomb"
    )]
    ZipBomb {
        entry: String,
        ratio: u64,
        uncompressed: u64,
    },
    #[error(
        "archive expands {ratio}x to {uncompressed} bytes over {entries} entries: refused as a possible zip bomb"
    )]
    ArchiveExpands {
        entries: u64,
        ratio: u64,
        uncompressed: u64,
    },
    #[error("archive's central directory is {size} bytes, above the {limit} bytes kept of its end")]
    ArchiveDirectoryTooLarge { size: u64, limit: u64 },
    #[error("archive structure refused: {0}")]
    ArchiveInvalid(&'static str),
    #[error(
        "DICOM preamble carries a {signature} signature: refused as a file that is two formats (CVE-2019-11687)"
    )]
    ForeignPreamble { signature: &'static str },
    #[error("DICOM header unreadable: {0}")]
    DicomUnreadable(String),
    #[error("DICOM header has no {0}")]
    DicomMissing(&'static str),
    #[error("DICOM header runs past {limit} bytes before Pixel Data")]
    DicomHeaderTooLarge { limit: u64 },
    /// The database refused a value of the row (too long for an index, outside a CHECK, not
    /// storable as text): the same bytes give the same refusal. Names the condition and, when
    /// PostgreSQL reports it, the constraint or column: never the value, which may be PHI.
    #[error(
        "the database refused the record: {condition} (SQLSTATE {sqlstate}){}",
        .object.as_ref().map(|o| format!(" on {o}")).unwrap_or_default()
    )]
    DatabaseRefused {
        sqlstate: String,
        condition: &'static str,
        object: Option<String>,
    },
    /// The element and its VR, never the value: a value is PHI, and an over-long one is whatever
    /// the uploader chose to put there.
    #[error(
        "DICOM element {element} has a {vr} value longer than the {max} characters its VR allows"
    )]
    DicomValueTooLong {
        element: String,
        vr: &'static str,
        max: usize,
    },
    #[error("DICOM JSON of the header runs past {limit} bytes")]
    DicomJsonTooLarge { limit: u64 },
    /// The scanner found malware. Takes precedence over every other reason the same file may be
    /// refused for: whoever reviews the row must know first that it is dangerous. The signature
    /// names clamd's pattern, not the file's content.
    #[error("malware found by the scanner: {signature}")]
    Infected { signature: String },
    /// The object could not be scanned and `DOCWORKER_SCAN_ALLOW_UNSCANNED` is off. Only a
    /// permanent reason (too large) is recorded as a rejection: a transient one is retried.
    #[error("not scanned ({reason}), and unscanned objects are not finalized")]
    NotScanned { reason: NotScanned },
    /// A promoted attribute whose value cannot be its column; the reason names the rule it breaks,
    /// never the value.
    #[error("DICOM {attribute} {reason}")]
    DicomInvalid {
        attribute: &'static str,
        reason: &'static str,
    },
}

impl Rejection {
    /// Every [`label`](Self::label), so that metrics start at 0 for each reason instead of
    /// appearing at the first rejection. Keep in step with `label`.
    pub const LABELS: &'static [&'static str] = &[
        "empty",
        "too_large",
        "size_mismatch",
        "md5_mismatch",
        "client_digest_mismatch",
        "client_digest_malformed",
        "parts_mismatch",
        "unrecognised",
        "declared_mismatch",
        "extension_mismatch",
        "not_allowed",
        "zip_bomb",
        "zip_bomb_total",
        "archive_directory_too_large",
        "archive_invalid",
        "dicom_preamble_foreign",
        "dicom_unreadable",
        "dicom_missing_uid",
        "dicom_header_too_large",
        "dicom_value_too_long",
        "dicom_json_too_large",
        "dicom_invalid_value",
        "database_refused",
        "infected",
        "not_scanned",
    ];

    /// A short, stable label for metrics and log fields (the Display text is for people).
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::Empty => "empty",
            Rejection::TooLarge { .. } => "too_large",
            Rejection::SizeMismatch { .. } => "size_mismatch",
            Rejection::Md5Mismatch { .. } => "md5_mismatch",
            Rejection::ClientDigestMismatch { .. } => "client_digest_mismatch",
            Rejection::ClientDigestMalformed { .. } => "client_digest_malformed",
            Rejection::PartsMismatch { .. } => "parts_mismatch",
            Rejection::Unrecognised => "unrecognised",
            Rejection::DeclaredMismatch { .. } => "declared_mismatch",
            Rejection::ExtensionMismatch { .. } => "extension_mismatch",
            Rejection::NotAllowed { .. } => "not_allowed",
            Rejection::ZipBomb { .. } => "zip_bomb",
            Rejection::ArchiveExpands { .. } => "zip_bomb_total",
            Rejection::ArchiveDirectoryTooLarge { .. } => "archive_directory_too_large",
            Rejection::ArchiveInvalid(_) => "archive_invalid",
            Rejection::ForeignPreamble { .. } => "dicom_preamble_foreign",
            Rejection::DicomUnreadable(_) => "dicom_unreadable",
            Rejection::DicomMissing(_) => "dicom_missing_uid",
            Rejection::DicomHeaderTooLarge { .. } => "dicom_header_too_large",
            Rejection::DicomValueTooLong { .. } => "dicom_value_too_long",
            Rejection::DicomJsonTooLarge { .. } => "dicom_json_too_large",
            Rejection::DicomInvalid { .. } => "dicom_invalid_value",
            Rejection::DatabaseRefused { .. } => "database_refused",
            Rejection::Infected { .. } => "infected",
            Rejection::NotScanned { .. } => "not_scanned",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_lists_every_label_once() {
        let text = || String::new();
        let every = [
            Rejection::Empty,
            Rejection::TooLarge { size: 2, max: 1 },
            Rejection::SizeMismatch {
                expected: 2,
                counted: 1,
            },
            Rejection::Md5Mismatch {
                computed: text(),
                etag: text(),
            },
            Rejection::ClientDigestMismatch { header: "test" },
            Rejection::ClientDigestMalformed { header: "test" },
            Rejection::PartsMismatch {
                check: "md5",
                parts: 2,
                reference: "multipart ETag",
            },
            Rejection::Unrecognised,
            Rejection::DeclaredMismatch {
                declared: text(),
                detected: text(),
            },
            Rejection::ExtensionMismatch {
                extension: text(),
                detected: text(),
            },
            Rejection::NotAllowed {
                detected: text(),
                category: Category::Admin,
            },
            Rejection::ZipBomb {
                entry: text(),
                ratio: 1000,
                uncompressed: 1,
            },
            Rejection::ArchiveExpands {
                entries: 1,
                ratio: 1000,
                uncompressed: 1,
            },
            Rejection::ArchiveDirectoryTooLarge { size: 2, limit: 1 },
            Rejection::ArchiveInvalid("test"),
            Rejection::ForeignPreamble { signature: "test" },
            Rejection::DicomUnreadable(text()),
            Rejection::DicomMissing("Study Instance UID"),
            Rejection::DicomHeaderTooLarge { limit: 1 },
            Rejection::DicomValueTooLong {
                element: text(),
                vr: "UI",
                max: 64,
            },
            Rejection::DicomJsonTooLarge { limit: 1 },
            Rejection::DicomInvalid {
                attribute: "Modality",
                reason: "test",
            },
            Rejection::DatabaseRefused {
                sqlstate: "23514".into(),
                condition: "check_violation",
                object: None,
            },
            Rejection::Infected { signature: text() },
            Rejection::NotScanned {
                reason: NotScanned::TooLarge,
            },
        ];
        let labels: Vec<_> = every.iter().map(Rejection::label).collect();
        assert_eq!(labels, Rejection::LABELS);
    }
}
