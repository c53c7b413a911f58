//! The full-object checksum of a ranged read, which the SDK validates only on a whole-object
//! GET: computed here over the ranges in order, on a thread of its own beside the SHA-256, and
//! compared with S3's value. A mismatch fails the read as the SDK's validation would (retryable:
//! the bytes read are not the bytes S3 holds), rather than rejecting the file.

use docworker_shared::integrity::FullDigest;

use crate::error::{Class, ReaderError};
use crate::process::readers::Known;
use crate::process::tee::{Attached, Queue};

const READER: &str = "full-checksum";
const QUEUE: Queue = Queue {
    batch_bytes: 1 << 20,
    batches: 2,
};

/// Nothing to attach unless the read is ranged and S3 holds a full-object checksum.
pub fn attach(known: &Known<'_>, readers: &mut Vec<Attached>) {
    let Some((checksum, expected)) = known.full_checksum.clone() else {
        return;
    };
    let mut digest = FullDigest::new(checksum);
    // The reader's error is its verdict: the tee fails the stream with it.
    let (reader, _) = Attached::on_thread(READER, QUEUE, move |chunks| {
        chunks.for_each(|chunk| digest.update(&chunk));
        let computed = digest.finish();
        if computed == expected {
            return Ok(());
        }
        Err(ReaderError::new(
            READER,
            Class::Retryable,
            format!(
                "the {} of the bytes read does not match S3's full-object checksum",
                checksum.name()
            ),
        ))
    });
    readers.push(reader);
}
