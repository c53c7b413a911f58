//! The reader list: what reads each object's bytes as they stream, and the verdicts the
//! pipeline decides from. A new reader is a file here, a line in [`attach`] and a field in
//! [`Verdicts`]; the tee and the pipeline's loop do not change.

pub mod dicom;
pub mod digests;
pub mod full;
pub mod parts;
pub mod scan;
pub mod tail;

use docworker_shared::dicom::DicomHeader;
use docworker_shared::gate::ScanVerdict;
use docworker_shared::integrity::FullChecksum;
use docworker_shared::parts::{PartCheck, PartLayout, PartsDigest};
use docworker_shared::verify::Digests;
use docworker_shared::{Rejection, sniff, verify};

use super::tee::{Attached, Prefix, Verdict};
use crate::scanner::Scanner;

/// What the readers need to know about the object before its bytes.
#[derive(Debug, Clone)]
pub struct Known<'a> {
    pub content_length: u64,
    /// The MD5 the ETag stands for, when it is to be verified.
    pub etag_md5: Option<[u8; 16]>,
    /// The part layout and what to digest per part, when the plan checks parts.
    pub parts: Option<KnownParts>,
    /// The full-object checksum to compute and S3's value, when the SDK cannot validate it
    /// (a ranged read).
    pub full_checksum: Option<(FullChecksum, String)>,
    pub max_dicom_header_bytes: u64,
    /// The clamd every object is scanned with, when `DOCWORKER_CLAMD_ADDR` names one.
    pub scanner: Option<&'a Scanner>,
}

#[derive(Debug, Clone)]
pub struct KnownParts {
    pub layout: PartLayout,
    pub check: PartCheck,
    /// Assumed from the first and the last part rather than learnt part by part.
    pub assumed: bool,
}

/// Every reader's verdict, to be read once the stream has ended.
pub struct Verdicts {
    pub digests: Verdict<Digests>,
    /// The part digests, when the plan checks parts.
    pub parts: Option<Verdict<PartsDigest>>,
    /// The type the prefix shows: the prefix is the tee's, so this needs no reader.
    pub detected: Option<&'static str>,
    /// The last bytes, for a zip-based document's central directory.
    pub tail: Option<Verdict<Vec<u8>>>,
    /// The DICOM header, for DICOM content.
    pub dicom: Option<Verdict<Result<DicomHeader, Rejection>>>,
    /// The malware scan's verdict (`NotConfigured` without a scanner).
    pub scan: Verdict<ScanVerdict>,
}

/// Puts on `readers` what this object needs read, as its prefix shows.
pub fn attach(known: &Known<'_>, prefix: &Prefix<'_>, readers: &mut Vec<Attached>) -> Verdicts {
    let detected = sniff::sniff(prefix.bytes);
    let tail = verify::needs_tail(detected).then(|| tail::attach(verify::ZIP_TAIL_LEN, readers));
    full::attach(known, readers);
    Verdicts {
        digests: digests::attach(known, readers),
        parts: parts::attach(known, readers),
        detected,
        tail,
        dicom: dicom::attach(known, prefix, readers),
        scan: scan::attach(known, readers),
    }
}
