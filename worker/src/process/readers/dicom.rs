//! The DICOM header: read from the prefix when it holds all of it, else by a parser on a blocking
//! thread that the chunks (from the first) flow to.

use docworker_shared::dicom::{self, DicomHeader};
use docworker_shared::{Rejection, sniff};

use crate::process::readers::Known;
use crate::process::tee::{Attached, Prefix, Queue, Verdict};

const READER: &str = "dicom";

/// Chunks buffered between the download and the parser: enough to keep both busy, small enough
/// that a slow parser holds back the download rather than memory filling up.
const PARSER_QUEUE: Queue = Queue {
    batch_bytes: 0,
    batches: 4,
};

/// `None` when the content is not DICOM. Most headers are a few KiB before the pixels and are
/// read from the prefix here, on the runtime thread, since at most `SNIFF_LEN` bytes are
/// parsed; a longer one is read from the stream, on a blocking thread.
pub fn attach(
    known: &Known,
    prefix: &Prefix<'_>,
    readers: &mut Vec<Attached>,
) -> Option<Verdict<Result<DicomHeader, Rejection>>> {
    if !sniff::is_dicom(prefix.bytes) {
        return None;
    }
    let limit = known.max_dicom_header_bytes;
    if let Some(read) = dicom::read_header_from_prefix(prefix.bytes, prefix.whole_object, limit) {
        return Some(Verdict::ready(READER, read));
    }
    let (reader, verdict) = Attached::on_thread(READER, PARSER_QUEUE, move |chunks| {
        Ok(dicom::read_header(chunks, limit))
    });
    readers.push(reader);
    Some(verdict)
}
