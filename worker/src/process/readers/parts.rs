//! Each part's digest on the object's part layout, for a multipart ETag (MD5) or a composite
//! checksum (CRC32, CRC32C, SHA-1, SHA-256): only for objects whose plan checks parts.

use docworker_shared::parts::{PartDigester, PartsDigest};

use crate::error::ReaderError;
use crate::process::readers::Known;
use crate::process::tee::{self, Attached, Decide, Queue, Reader, Verdict, Wants};

const READER: &str = "parts";

/// As for the whole-object digests: from this size the part digests run on a blocking thread
/// beside the download (a per-part MD5 costs more than the SHA-256), below it inline.
const ON_THREAD_FROM: u64 = 16 << 20;
const QUEUE: Queue = Queue {
    batch_bytes: 1 << 20,
    batches: 2,
};

pub fn attach(known: &Known, readers: &mut Vec<Attached>) -> Option<Verdict<PartsDigest>> {
    let parts = known.parts.as_ref()?;
    let mut digester = PartDigester::new(parts.layout.clone(), parts.check);
    if known.content_length >= ON_THREAD_FROM {
        let (reader, verdict) = Attached::on_thread(READER, QUEUE, move |chunks| {
            chunks.for_each(|chunk| digester.update(&chunk));
            Ok(digester.finish())
        });
        readers.push(reader);
        return Some(verdict);
    }
    let (decide, verdict) = tee::verdict(READER);
    readers.push(Attached::inline(Here { digester, decide }));
    Some(verdict)
}

/// Digesting on the download's task, chunk by chunk as it arrives.
struct Here {
    digester: PartDigester,
    decide: Decide<PartsDigest>,
}

impl Reader for Here {
    fn take(&mut self, chunk: &bytes::Bytes) -> Result<Wants, ReaderError> {
        self.digester.update(chunk);
        Ok(Wants::More)
    }

    fn finish(self: Box<Self>) -> Result<(), ReaderError> {
        self.decide.decide(self.digester.finish());
        Ok(())
    }
}
