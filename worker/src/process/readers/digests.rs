//! SHA-256 of every byte, the byte count, and the MD5 when the ETag is to be checked.

use docworker_shared::verify::Digests;

use crate::error::ReaderError;
use crate::process::readers::Known;
use crate::process::tee::{self, Attached, Decide, Queue, Reader, Verdict, Wants};

const READER: &str = "digests";

/// Objects from this size are hashed on a blocking thread while the download reads on: SHA-256
/// is most of the CPU an object costs, and overlapping it with the socket reads streams large
/// objects faster. Below it, handing chunks to a thread costs more than it saves.
const HASH_ON_THREAD_FROM: u64 = 16 << 20;
/// Bytes handed to the hashing thread at a time, and batches waiting for it: bounds the memory a
/// large object holds to about three batches.
const HASH_QUEUE: Queue = Queue {
    batch_bytes: 1 << 20,
    batches: 2,
};

pub fn attach(known: &Known, readers: &mut Vec<Attached>) -> Verdict<Digests> {
    let mut digests = Digests::new(known.etag_md5);
    if known.content_length >= HASH_ON_THREAD_FROM {
        let (reader, verdict) = Attached::on_thread(READER, HASH_QUEUE, move |chunks| {
            chunks.for_each(|chunk| digests.update(&chunk));
            Ok(digests)
        });
        readers.push(reader);
        return verdict;
    }
    let (decide, verdict) = tee::verdict(READER);
    readers.push(Attached::inline(Here { digests, decide }));
    verdict
}

/// Hashing on the download's task, chunk by chunk as it arrives.
struct Here {
    digests: Digests,
    decide: Decide<Digests>,
}

impl Reader for Here {
    fn take(&mut self, chunk: &bytes::Bytes) -> Result<Wants, ReaderError> {
        self.digests.update(chunk);
        Ok(Wants::More)
    }

    fn finish(self: Box<Self>) -> Result<(), ReaderError> {
        self.decide.decide(self.digests);
        Ok(())
    }
}
