//! The malware scan: the object's chunks forwarded to clamd as they stream, on a task of the
//! reader's own (the scan waits on the network, not on the CPU). The verdict, whatever it is, is
//! a value: the pipeline's `decide` applies the policy to it.

use docworker_shared::gate::ScanVerdict;

use crate::process::readers::Known;
use crate::process::tee::{Attached, Queue, Verdict};

const READER: &str = "scan";
/// One chunk waiting for the reader's task: the scanner's own bounded queue
/// ([`crate::scanner::QUEUE_CHUNKS`]) is what lets clamd fall a little behind.
const SCAN_QUEUE: Queue = Queue {
    batch_bytes: 0,
    batches: 1,
};

pub fn attach(known: &Known<'_>, readers: &mut Vec<Attached>) -> Verdict<ScanVerdict> {
    let Some(scanner) = known.scanner else {
        return Verdict::ready(READER, ScanVerdict::NotConfigured);
    };
    let mut scan = scanner.start(Some(known.content_length));
    let (reader, verdict) = Attached::on_task(READER, SCAN_QUEUE, move |mut chunks| async move {
        // A verdict known early (too large, a timeout) stops the reading: the tee then stops
        // feeding this reader, and the download goes on for the others.
        while !scan.settled()
            && let Some(chunk) = chunks.next().await
        {
            scan.feed(chunk).await;
        }
        Ok(scan.finish().await)
    });
    readers.push(reader);
    verdict
}
