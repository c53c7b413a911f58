//! The in-process tier: the pipeline called directly, as a library, against the real moto and
//! PostgreSQL, without the binary or a queue. Faster to write and to read than a worker run, and
//! it reaches what only a caller of the pipeline sees: the [`Processed`] value itself.

use std::time::Instant;

use bytes::Bytes;
use docworker::config::RangeConfig;
use docworker::error::ReaderError;
use docworker::process::ranged::Ranges;
use docworker::process::tee::{self, Attached, Decide, Reader, Verdict, Wants};
use docworker::process::{Pipeline, Processed, fetch};
use docworker_shared::{DocumentStore, EventKind, ObjectEvent, Trail, fixtures};

use crate::helpers::Options;
use crate::helpers::Stack;

async fn stack(name: &str) -> Stack {
    let options = Options {
        notify: false,
        ..Options::default()
    };
    Stack::with(name, options).await
}

fn pipeline(stack: &Stack) -> Pipeline {
    Pipeline {
        s3: stack.s3.clone(),
        store: DocumentStore::new(stack.db.clone()),
        max_object_bytes: 1 << 30,
        max_dicom_header_bytes: 1 << 20,
        processor_version: "docworker in-process test",
        scanner: None,
        ranges: Ranges::new(&RangeConfig::DEFAULT),
    }
}

fn created(stack: &Stack, key: &str, size: u64, etag: Option<&str>) -> ObjectEvent {
    ObjectEvent {
        kind: EventKind::Created,
        name: "ObjectCreated:Put".into(),
        bucket: stack.bucket.clone(),
        key: key.into(),
        size: Some(size),
        etag: etag.map(str::to_owned),
        version_id: None,
        sequencer: Some("0A".into()),
        time: chrono::Utc::now(),
    }
}

fn trail() -> Trail<'static> {
    Trail {
        message_id: "in-process",
        attempt: 1,
        started: Instant::now(),
        replayed: false,
        seen: None,
    }
}

#[tokio::test]
async fn in_process_a_pdf_is_finalized_by_the_pipeline_called_directly() {
    let stack = stack("inproc-pdf").await;
    let pdf = fixtures::pdf();
    let put = stack
        .put("reports/a.pdf", pdf.clone(), Some("application/pdf"), &[])
        .await;
    let event = created(&stack, "reports/a.pdf", pdf.len() as u64, put.e_tag());
    let processed = pipeline(&stack).process(&event, trail()).await.unwrap();
    let Processed::Finalized { content_type, .. } = processed else {
        panic!("{processed:?}")
    };
    assert_eq!(content_type, "application/pdf");
    let row = stack.document("reports/a.pdf").await.expect("a row");
    assert_eq!(row.status, "finalized");
    assert_eq!(row.file_size, Some(pdf.len() as i64));
}

#[tokio::test]
async fn in_process_an_object_deleted_before_its_event_is_gone_as_a_value() {
    let stack = stack("inproc-gone").await;
    let event = created(&stack, "reports/never.pdf", 10, Some("0123"));
    let processed = pipeline(&stack).process(&event, trail()).await.unwrap();
    assert_eq!(processed, Processed::Gone);
    let row = stack.document("reports/never.pdf").await.expect("a row");
    assert_eq!(row.status, "deleted");
}

/// A reader written for this test: it counts the bytes of an object streamed from moto.
struct CountBytes {
    bytes: u64,
    decide: Decide<u64>,
}

impl Reader for CountBytes {
    fn take(&mut self, chunk: &Bytes) -> Result<Wants, ReaderError> {
        self.bytes += chunk.len() as u64;
        Ok(Wants::More)
    }

    fn finish(self: Box<Self>) -> Result<(), ReaderError> {
        self.decide.decide(self.bytes);
        Ok(())
    }
}

/// Reads `event`'s object through the tee with one reader that copies every byte, as `ranges`
/// says (one GetObject, or ranges).
async fn read_through_the_tee(
    s3: &aws_sdk_s3::Client,
    event: &ObjectEvent,
    ranges: &Ranges,
) -> (Vec<u8>, u64) {
    let fetch::Fetched::Found(opened) = fetch::open(s3, event, ranges).await.unwrap() else {
        panic!("the object is there")
    };
    let (copy, streamed) = tee::stream(&event.bucket, &event.key, opened.body, |_, readers| {
        let queue = tee::Queue {
            batch_bytes: 64 << 10,
            batches: 2,
        };
        let (reader, copy) = Attached::on_thread("copy", queue, |chunks| {
            Ok(chunks.flat_map(|c| c.to_vec()).collect::<Vec<u8>>())
        });
        readers.push(reader);
        let (decide, count): (_, Verdict<u64>) = tee::verdict("count");
        readers.push(Attached::inline(CountBytes { bytes: 0, decide }));
        (copy, count)
    })
    .await
    .unwrap();
    let (copy, count) = copy;
    assert_eq!(count.get().unwrap(), streamed.bytes);
    (copy.get().unwrap(), streamed.bytes)
}

#[tokio::test]
async fn in_process_a_reader_added_in_a_test_reads_the_whole_s3_body_whole_or_by_ranges() {
    let stack = stack("inproc-reader").await;
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let put = stack.put("other/big.bin", bytes.clone(), None, &[]).await;
    let event = created(&stack, "other/big.bin", bytes.len() as u64, None);
    let whole = Ranges::new(&RangeConfig::DEFAULT);
    assert_eq!(
        read_through_the_tee(&stack.s3, &event, &whole).await,
        (bytes.clone(), bytes.len() as u64)
    );
    // The GetObject hands over after its first ranges, then up to 43 ranges of 64 KiB (the last
    // short), 5 in flight, 2 of them ahead of their turn at most: handed on in order whatever
    // order they arrive in.
    let ranged = Ranges::new(&RangeConfig {
        threshold: 1,
        split_below: u64::MAX,
        range_bytes: 64 << 10,
        window: 5,
        buffer_bytes: 128 << 10,
    });
    assert_eq!(
        read_through_the_tee(&stack.s3, &event, &ranged).await,
        (bytes.clone(), bytes.len() as u64)
    );
    // With the event's ETag, the ranges are asked for with the GetObject.
    let announced = created(&stack, "other/big.bin", bytes.len() as u64, put.e_tag());
    assert_eq!(
        read_through_the_tee(&stack.s3, &announced, &ranged).await,
        (bytes.clone(), bytes.len() as u64)
    );
}
