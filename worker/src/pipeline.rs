//! Processing one S3 event, top to bottom: fetch, stream and verify, decide, record.

use std::collections::VecDeque;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use docworker_shared::dicom::{self, DicomHeader};
use docworker_shared::sniff::{self, SNIFF_LEN};
use docworker_shared::verify::{self, Digested, Digests, Integrity};
use docworker_shared::{
    Applied, Category, DocumentStore, EventKind, Finalized, ObjectEvent, ObjectFacts, Outcome,
    Rejection, Seen, Trail, category,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::io::{StreamReader, SyncIoBridge};
use tracing::{Instrument, Span, debug, info, warn};

use crate::error::{ProcessError, Settles};
use crate::fetch::{self, Head};
use crate::observe::names;

/// What became of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed {
    Finalized {
        content_type: &'static str,
        integrity: Integrity,
    },
    Rejected(Rejection),
    Deleted,
    /// A newer event for the same key was already applied; this one changed nothing.
    Stale,
    /// The event does not change the object's bytes (restore, tagging, ACL…).
    Ignored,
    /// The key holds another version than this event is about (overwritten since, or a removal
    /// of a version that is not current); the row was left alone.
    Superseded,
    /// The object was deleted before its event was processed, and nothing else is current
    /// under its key: the row is marked `deleted`.
    Gone,
}

impl Processed {
    /// Every [`label`](Self::label), so that metrics start at 0 for each outcome. Keep in step
    /// with `label`.
    pub const LABELS: &'static [&'static str] = &[
        "finalized",
        "rejected",
        "deleted",
        "stale",
        "ignored",
        "superseded",
        "gone",
    ];

    pub fn label(&self) -> &'static str {
        match self {
            Processed::Finalized { .. } => "finalized",
            Processed::Rejected(_) => "rejected",
            Processed::Deleted => "deleted",
            Processed::Stale => "stale",
            Processed::Ignored => "ignored",
            Processed::Superseded => "superseded",
            Processed::Gone => "gone",
        }
    }

    /// Whether the store already appended this outcome to the audit trail with its write.
    pub fn audited(&self) -> bool {
        !matches!(self, Processed::Ignored | Processed::Superseded)
    }
}

/// Everything processing needs, shared by all in-flight objects.
#[derive(Clone)]
pub struct Pipeline {
    pub s3: aws_sdk_s3::Client,
    pub store: DocumentStore,
    pub max_object_bytes: u64,
    pub max_dicom_header_bytes: u64,
    pub processor_version: &'static str,
}

/// Chunks buffered between the download and the DICOM parser: enough to keep both busy, small
/// enough that a slow parser holds back the download rather than memory filling up.
const PARSER_QUEUE_CHUNKS: usize = 4;

impl Pipeline {
    /// Processes one event. Outcomes that write a row also append `trail` to the audit trail in
    /// the same statement ([`Processed::audited`]).
    pub async fn process(
        &self,
        event: &ObjectEvent,
        trail: Trail<'_>,
    ) -> Result<Processed, ProcessError> {
        match self.process_object(event, trail).await {
            Err(e) if e.settles() == Some(Settles::Superseded) => {
                info!(error = %e, "superseded: the key holds newer bytes than this event announced");
                Ok(Processed::Superseded)
            }
            Err(e) if e.settles() == Some(Settles::Gone) => {
                info!(error = %e, "gone: the object was deleted before its event was processed");
                self.removed(event, trail, Processed::Gone).await
            }
            other => other,
        }
    }

    async fn process_object(
        &self,
        event: &ObjectEvent,
        trail: Trail<'_>,
    ) -> Result<Processed, ProcessError> {
        match event.kind {
            EventKind::Other => return Ok(Processed::Ignored),
            EventKind::Removed => return self.removed(event, trail, Processed::Deleted).await,
            EventKind::Created => {}
        }
        // Without a sequencer (a replay, an emulator) nothing orders this event against the
        // row's: on a versioned bucket only the key's current version may be written, so an old
        // version read again never replaces a newer row. The current version's own event (or
        // its replay) settles the row instead.
        if event.sequencer.is_none()
            && let Some(version) = &event.version_id
        {
            let row = self.store.row_state(&event.bucket, &event.key).await?;
            let current = fetch::current(&self.s3, event).await?;
            if current.as_ref().and_then(|c| c.version_id.as_ref()) != Some(version) {
                info!(
                    "superseded: the event's version is not the key's current one, and the event has no sequencer to order it by"
                );
                return Ok(Processed::Superseded);
            }
            return self.created(event, seen(trail, row.as_ref())).await;
        }
        self.created(event, trail).await
    }

    /// Settles a removal, or an object found gone, by what the key holds now rather than by the
    /// event alone. On a versioned bucket a removal may be of a non-current version (`DELETE
    /// ?versionId=`), a delete marker may already be covered by a newer upload, and removing the
    /// current version or a delete marker makes an older version current again without any
    /// `ObjectCreated` event. So: nothing current (no key, or a delete marker on top) marks the
    /// row `deleted`; a current version the row already describes leaves it alone; another
    /// current version is processed in place of the removed one. On an unversioned bucket a
    /// live key means it was written again after the removal, and that upload's event follows.
    async fn removed(
        &self,
        event: &ObjectEvent,
        trail: Trail<'_>,
        removal: Processed,
    ) -> Result<Processed, ProcessError> {
        let row = self.store.row_state(&event.bucket, &event.key).await?;
        let trail = seen(trail, row.as_ref());
        let Some(current) = fetch::current(&self.s3, event).await? else {
            let facts = facts(event, &Head::default());
            let applied = self
                .store
                .mark_deleted(&facts, self.processor_version, trail, removal.label())
                .await?;
            return Ok(settled(applied, removal));
        };
        let Some(version) = current.version_id else {
            info!("superseded: the key was written again after this removal");
            return Ok(Processed::Superseded);
        };
        if row.is_some_and(|row| {
            row.version_id.as_ref() == Some(&version)
                && matches!(row.status.as_str(), "finalized" | "rejected")
        }) {
            info!("superseded: the removal left the key's current version, which the row holds");
            return Ok(Processed::Superseded);
        }
        info!(
            "the key's current version is not the row's: processing it in place of the removed one"
        );
        let now_current = ObjectEvent {
            kind: EventKind::Created,
            name: event.name.clone(),
            bucket: event.bucket.clone(),
            key: event.key.clone(),
            size: Some(current.size),
            etag: current.etag,
            version_id: Some(version),
            // The row then reflects the key as of this removal: older events stay stale.
            sequencer: event.sequencer.clone(),
            time: current.last_modified.unwrap_or(event.time),
        };
        match self.created(&now_current, trail).await {
            Err(e) if e.settles().is_some() => {
                info!(error = %e, "superseded: the key changed again while its current version was read");
                Ok(Processed::Superseded)
            }
            other => other,
        }
    }

    /// Processes the object an `ObjectCreated` event announced.
    async fn created(
        &self,
        event: &ObjectEvent,
        trail: Trail<'_>,
    ) -> Result<Processed, ProcessError> {
        // 1. Too large by the event's own account: decide from metadata, never download.
        if let Some(size) = event.size.filter(|size| *size > self.max_object_bytes) {
            let head = fetch::head(&self.s3, event).await?;
            let size = head.content_length.max(size);
            Span::current().record("size", size);
            let rejection = Rejection::TooLarge {
                size,
                max: self.max_object_bytes,
            };
            return self
                .reject(&facts(event, &head), rejection, None, None, trail)
                .await;
        }

        // 2. Open the one GetObject and check what its headers already tell.
        let asked = Instant::now();
        let opened = fetch::open(&self.s3, event).await?;
        let head = opened.head;
        let facts = facts(event, &head);
        let fetch_ms = asked.elapsed().as_millis() as u64;
        Span::current().record("size", head.content_length);
        if head.content_length > self.max_object_bytes {
            // Dropping the body closes the connection before the bytes are read.
            let rejection = Rejection::TooLarge {
                size: head.content_length,
                max: self.max_object_bytes,
            };
            return self.reject(&facts, rejection, None, None, trail).await;
        }
        if head.content_length == 0 {
            return self
                .reject(&facts, Rejection::Empty, None, None, trail)
                .await;
        }

        // 3. Stream: hash and count every byte, sniff the first ones, parse a DICOM header.
        let etag_md5 = match (head.checksum, head.etag_is_md5_capable, &head.etag) {
            (None, true, Some(etag)) => verify::plain_md5_etag(etag),
            _ => None,
        };
        let reading = Instant::now();
        let digests = Digests::new(etag_md5);
        let hashing = if head.content_length >= HASH_ON_THREAD_FROM {
            Hashing::on_thread(digests)
        } else {
            Hashing::Here(digests)
        };
        let streamed = self.stream(event, opened.body, hashing).await?;
        // Time to S3's answer apart from time reading the body: a slow source and a slow worker
        // look alike in the object's total.
        debug!(
            fetch_ms,
            stream_ms = reading.elapsed().as_millis() as u64,
            "body read"
        );

        // 4. Decide: integrity, then type, then the DICOM header.
        let empty_etag = String::new();
        let digested = match streamed.digests.finish(
            head.content_length,
            head.checksum,
            head.etag.as_ref().unwrap_or(&empty_etag),
        ) {
            Ok(digested) => digested,
            Err(rejection) => return self.reject(&facts, rejection, None, None, trail).await,
        };
        let Digested {
            sha256, integrity, ..
        } = digested;
        let detected = streamed.detected;
        let content_type = match verify::check_content(
            facts.category,
            &facts.key,
            head.content_type.as_deref(),
            detected,
        ) {
            Ok(content_type) => content_type,
            Err(rejection) => {
                return self
                    .reject(&facts, rejection, detected, Some(sha256), trail)
                    .await;
            }
        };
        if let Err(rejection) = verify::check_structure(
            content_type,
            &streamed.prefix,
            &streamed.tail,
            head.content_length,
        ) {
            return self
                .reject(&facts, rejection, detected, Some(sha256), trail)
                .await;
        }
        let dicom = match (content_type, streamed.dicom) {
            (category::DICOM, Some(Ok(header))) => Some(header),
            (category::DICOM, Some(Err(rejection))) => {
                return self
                    .reject(&facts, rejection, detected, Some(sha256), trail)
                    .await;
            }
            _ => None,
        };

        // 5. Record. A value PostgreSQL refuses (too long for its index, outside a CHECK, not
        // storable as text) is a verdict on the file: recorded as a rejection, which writes none
        // of the extracted values.
        let digest = sha256.clone();
        let outcome = Outcome::Finalized(Box::new(Finalized {
            content_type,
            sha256,
            integrity,
            dicom,
        }));
        let applied = match self
            .store
            .record(&facts, &outcome, self.processor_version, trail)
            .await
            .map_err(ProcessError::from)
        {
            Ok(applied) => applied,
            Err(e) => {
                let Some(rejection) = e.refusal() else {
                    return Err(e);
                };
                return self
                    .reject(&facts, rejection, Some(content_type), Some(digest), trail)
                    .await;
            }
        };
        let lag = (chrono::Utc::now() - event.time)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!(names::LAG_SECONDS).record(lag.as_secs_f64());
        Ok(settled(
            applied,
            Processed::Finalized {
                content_type,
                integrity,
            },
        ))
    }

    async fn reject(
        &self,
        facts: &ObjectFacts,
        rejection: Rejection,
        content_type: Option<&'static str>,
        sha256: Option<String>,
        trail: Trail<'_>,
    ) -> Result<Processed, ProcessError> {
        warn!(reason = %rejection, reason_label = rejection.label(), "rejected");
        metrics::counter!(names::REJECTIONS, "reason" => rejection.label()).increment(1);
        let outcome = Outcome::Rejected {
            reason: rejection.clone(),
            content_type,
            sha256,
        };
        let applied = self
            .store
            .record(facts, &outcome, self.processor_version, trail)
            .await?;
        Ok(settled(applied, Processed::Rejected(rejection)))
    }

    /// Reads the body once. Every chunk feeds the digests; the first `SNIFF_LEN` bytes are kept to
    /// recognise the content and, when it is DICOM, to read the header if it ends there; a longer
    /// header is read by a parser on a blocking thread that the chunks (from the first) flow to.
    /// When the content is a zip-based document, the last [`verify::ZIP_TAIL_LEN`] bytes are kept
    /// too, for its central directory (see [`Tail`]). Memory is bounded by the sniff prefix, the
    /// tail, the parser's and the hashing thread's queues and the header itself, whatever the
    /// object's size.
    async fn stream(
        &self,
        event: &ObjectEvent,
        mut body: ByteStream,
        mut hashing: Hashing,
    ) -> Result<Streamed, ProcessError> {
        let streamed_bytes = metrics::counter!(names::BYTES_STREAMED);
        let mut prefix: Vec<u8> = Vec::with_capacity(SNIFF_LEN);
        let mut held: Vec<Bytes> = Vec::new();
        let mut detected = None;
        let mut header = Header::None;
        let mut tail: Option<Tail> = None;
        loop {
            let chunk = match body.try_next().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    return Err(ProcessError::Body {
                        bucket: event.bucket.clone(),
                        key: event.key.clone(),
                        bytes: hashing.bytes(),
                        source: e.into(),
                    });
                }
            };
            streamed_bytes.increment(chunk.len() as u64);
            hashing.update(&chunk).await;
            if detected.is_some() {
                if let Some(tail) = &mut tail {
                    tail.push(chunk.clone());
                }
                if let Header::Parsing(parser) = &mut header {
                    parser.feed(chunk).await;
                }
                continue;
            }
            let wanted = SNIFF_LEN - prefix.len();
            prefix.extend_from_slice(&chunk[..chunk.len().min(wanted)]);
            held.push(chunk);
            if prefix.len() == SNIFF_LEN {
                detected = Some(sniff::sniff(&prefix));
                if verify::needs_tail(detected.flatten()) {
                    tail = Some(Tail::new(verify::ZIP_TAIL_LEN, &held));
                }
                header = self
                    .start_header(&prefix, std::mem::take(&mut held), false)
                    .await;
            }
        }
        if detected.is_none() {
            // The whole object fit in the prefix.
            detected = Some(sniff::sniff(&prefix));
            if verify::needs_tail(detected.flatten()) {
                tail = Some(Tail::new(verify::ZIP_TAIL_LEN, &held));
            }
            header = self.start_header(&prefix, held, true).await;
        }
        let dicom = match header {
            Header::None => None,
            Header::Read(read) => Some(read),
            Header::Parsing(parser) => Some(parser.finish().await?),
        };
        Ok(Streamed {
            digests: hashing.finish().await?,
            prefix,
            tail: tail.map(Tail::into_bytes).unwrap_or_default(),
            detected: detected.flatten(),
            dicom,
        })
    }

    /// Reads the header from the prefix when it holds all of it (most do: a few KiB before the
    /// pixels), here on the runtime thread, since at most `SNIFF_LEN` bytes are parsed. Otherwise
    /// starts the parser on a blocking thread, replaying the chunks seen so far.
    async fn start_header(&self, prefix: &[u8], held: Vec<Bytes>, whole_object: bool) -> Header {
        if !sniff::is_dicom(prefix) {
            return Header::None;
        }
        let limit = self.max_dicom_header_bytes;
        if let Some(read) = dicom::read_header_from_prefix(prefix, whole_object, limit) {
            return Header::Read(read);
        }
        let mut parser = Parser::spawn(limit);
        for chunk in held {
            parser.feed(chunk).await;
        }
        Header::Parsing(parser)
    }
}

/// Objects from this size are hashed on a blocking thread while the I/O task reads on: SHA-256
/// is most of the CPU an object costs, and overlapping it with the socket reads streams large
/// objects faster. Below it, handing chunks to a thread costs more than it saves.
const HASH_ON_THREAD_FROM: u64 = 16 << 20;
/// Bytes handed to the hashing thread at a time, and batches waiting for it: bounds the memory a
/// large object holds to about three batches.
const HASH_BATCH_BYTES: usize = 1 << 20;
const HASH_QUEUE_BATCHES: usize = 2;

/// Where an object's digests are computed.
enum Hashing {
    Here(Digests),
    Thread {
        batch: Vec<Bytes>,
        batched: usize,
        bytes: u64,
        batches: mpsc::Sender<Vec<Bytes>>,
        task: tokio::task::JoinHandle<Digests>,
    },
}

impl Hashing {
    fn on_thread(mut digests: Digests) -> Hashing {
        let (batches, mut rx) = mpsc::channel::<Vec<Bytes>>(HASH_QUEUE_BATCHES);
        let task = tokio::task::spawn_blocking(move || {
            while let Some(batch) = rx.blocking_recv() {
                batch.iter().for_each(|chunk| digests.update(chunk));
            }
            digests
        });
        Hashing::Thread {
            batch: Vec::new(),
            batched: 0,
            bytes: 0,
            batches,
            task,
        }
    }

    async fn update(&mut self, chunk: &Bytes) {
        match self {
            Hashing::Here(digests) => digests.update(chunk),
            Hashing::Thread {
                batch,
                batched,
                bytes,
                batches,
                ..
            } => {
                *bytes += chunk.len() as u64;
                *batched += chunk.len();
                batch.push(chunk.clone());
                if *batched >= HASH_BATCH_BYTES {
                    *batched = 0;
                    // The thread only stops when this side is dropped.
                    let _ = batches.send(std::mem::take(batch)).await;
                }
            }
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            Hashing::Here(digests) => digests.bytes(),
            Hashing::Thread { bytes, .. } => *bytes,
        }
    }

    async fn finish(self) -> Result<Digests, ProcessError> {
        match self {
            Hashing::Here(digests) => Ok(digests),
            Hashing::Thread {
                batch,
                batches,
                task,
                ..
            } => {
                let _ = batches.send(batch).await;
                drop(batches);
                Ok(task.await?)
            }
        }
    }
}

/// Where a DICOM header comes from, once the prefix has been seen.
enum Header {
    /// Not DICOM.
    None,
    /// Read from the prefix.
    Read(Result<DicomHeader, Rejection>),
    /// Being read from the stream, on a blocking thread.
    Parsing(Parser),
}

struct Streamed {
    digests: Digests,
    /// The first `SNIFF_LEN` bytes (or the whole object when shorter).
    prefix: Vec<u8>,
    /// The last bytes of a zip-based document (empty for other content).
    tail: Vec<u8>,
    detected: Option<&'static str>,
    dicom: Option<Result<DicomHeader, Rejection>>,
}

/// The last `capacity` bytes of a stream, kept as the chunks that hold them: a chunk is let go
/// once the ones after it cover the capacity, so the bytes are not copied while streaming and at
/// most `capacity` plus one chunk is held.
struct Tail {
    chunks: VecDeque<Bytes>,
    held: usize,
    capacity: usize,
}

impl Tail {
    /// Starts with the chunks read so far.
    fn new(capacity: usize, seen: &[Bytes]) -> Tail {
        let mut tail = Tail {
            chunks: VecDeque::new(),
            held: 0,
            capacity,
        };
        for chunk in seen {
            tail.push(chunk.clone());
        }
        tail
    }

    fn push(&mut self, chunk: Bytes) {
        self.held += chunk.len();
        self.chunks.push_back(chunk);
        while let Some(front) = self.chunks.front()
            && self.held - front.len() >= self.capacity
        {
            self.held -= front.len();
            self.chunks.pop_front();
        }
    }

    /// The last `capacity` bytes (all of them when the stream was shorter), in one buffer.
    fn into_bytes(self) -> Vec<u8> {
        let skip = self.held.saturating_sub(self.capacity);
        let mut bytes = Vec::with_capacity(self.held - skip);
        for chunk in &self.chunks {
            bytes.extend_from_slice(chunk);
        }
        bytes.drain(..skip);
        bytes
    }
}

/// The DICOM header parser on a blocking thread, reading the chunks the download sends it.
struct Parser {
    /// `None` once the parser stopped reading (it has the header, or gave up).
    chunks: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    task: tokio::task::JoinHandle<Result<DicomHeader, Rejection>>,
}

impl Parser {
    fn spawn(limit: u64) -> Parser {
        let (tx, rx) = mpsc::channel(PARSER_QUEUE_CHUNKS);
        // Created here, on the runtime, because the bridge needs the runtime's handle.
        let reader = SyncIoBridge::new(StreamReader::new(ReceiverStream::new(rx)));
        let span = Span::current();
        let task = tokio::task::spawn_blocking(move || {
            span.in_scope(|| dicom::read_header(reader, limit))
        });
        Parser {
            chunks: Some(tx),
            task,
        }
    }

    async fn feed(&mut self, chunk: Bytes) {
        if let Some(tx) = &self.chunks
            && tx.send(Ok(chunk)).await.is_err()
        {
            self.chunks = None;
        }
    }

    /// Ends the input (end of object) and waits for the verdict.
    async fn finish(mut self) -> Result<Result<DicomHeader, Rejection>, ProcessError> {
        self.chunks = None;
        Ok(self.task.instrument(Span::current()).await?)
    }
}

/// The row's facts: the event's identity, refined by what S3 returned for the object.
fn facts(event: &ObjectEvent, head: &Head) -> ObjectFacts {
    ObjectFacts {
        bucket: event.bucket.clone(),
        key: event.key.clone(),
        category: Category::of_key(&event.key),
        etag: head
            .etag
            .as_deref()
            .or(event.etag.as_deref())
            .map(|etag| etag.trim_matches('"').to_owned()),
        version_id: head.version_id.clone().or_else(|| event.version_id.clone()),
        sequencer: event.sequencer.clone(),
        uploaded_at: event.time,
        declared_content_type: head.content_type.clone(),
        file_size: (head.content_length > 0)
            .then_some(head.content_length)
            .or(event.size),
        upload: head.upload.clone(),
    }
}

/// The trail of a write decided from S3's answer about the key, read after `row` was: the store
/// applies it only if the row has not changed since.
fn seen<'a>(trail: Trail<'a>, row: Option<&docworker_shared::RowState>) -> Trail<'a> {
    Trail {
        seen: Some(Seen {
            updated_at: row.map(|row| row.updated_at),
        }),
        ..trail
    }
}

fn settled(applied: Applied, processed: Processed) -> Processed {
    match applied {
        Applied::Written => processed,
        Applied::Stale => Processed::Stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_and_at_most_one_chunk_more() {
        let stream: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for chunk_len in [1, 7, 100, 999, 4096, 20_000] {
            let chunks: Vec<Bytes> = stream
                .chunks(chunk_len)
                .map(Bytes::copy_from_slice)
                .collect();
            let (seen, rest) = chunks.split_at(chunks.len().min(3));
            let mut tail = Tail::new(1000, seen);
            for chunk in rest {
                tail.push(chunk.clone());
                assert!(
                    tail.held < 1000 + chunk_len,
                    "chunk {chunk_len}: {}",
                    tail.held
                );
            }
            assert_eq!(tail.into_bytes(), stream[9000..], "chunk {chunk_len}");
        }
        let short = Tail::new(1000, &[Bytes::from_static(b"short")]);
        assert_eq!(short.into_bytes(), b"short");
    }
}
