//! Ranged reads: a large object read over several connections at once, as fixed-size byte
//! ranges handed to the tee strictly in order.
//!
//! S3 serves one GET connection at roughly 85–200 MB/s, a small share of one core's SHA-256: a
//! 1 GB study read over one connection leaves the worker idle most of the time. A local source
//! (moto, MinIO on the same host) serves one connection faster than the worker hashes, and moto
//! reads an object's whole value for every ranged GET, so ranges there only cost. So an object
//! of at least `DOCWORKER_RANGED_THRESHOLD_BYTES` starts as the one GetObject every object gets,
//! and its connection is measured on its first MiB, read at once ([`Ranged::measure`]): when that
//! came slower than `DOCWORKER_RANGED_BELOW_BYTES_PER_SEC`, the rest of the object is read as
//! ranges of `DOCWORKER_RANGE_BYTES`, up to `DOCWORKER_RANGE_WINDOW` of them in flight across the
//! worker, while the GetObject goes on to the second range boundary (so the hash is busy while
//! the ranges wait for their first byte). The readers (SHA-256 and every other digest, which are
//! sequential) still see one ordered stream. Starting from the GetObject costs no HeadObject and
//! no request's first-byte wait before the first byte is hashed (on S3 each request waits
//! 100–200 ms for its first byte). Where every source connection is known to be slow (S3:
//! `always`), nothing is measured and the ranges from the first boundary on are asked for with
//! the GetObject ([`Ranged::ahead`]), so their first-byte wait overlaps the GetObject's.
//!
//! Fixed-size byte ranges, not upload parts (`GetObject` with `PartNumber`): a part may be up to
//! 5 GiB and parts may be uneven, so a part-sized request bounds neither memory nor the cost of
//! retrying it; the part digests cut the stream by the layout whatever the chunking.
//!
//! Every range is pinned twice: to the announced version id when the bucket is versioned, and by
//! `If-Match` to the ETag the GetObject returned (ranges asked for with it: the event's, which
//! the GetObject's must equal, or they are dropped unread). Either alone leaves a gap (an unversioned key
//! has no version id; a version id alone says nothing when versioning is suspended), and a range
//! of other bytes must never be mixed into the digests: a 412 on any range settles the object as
//! superseded, a 404 as gone, exactly as the single GET's answer would.
//!
//! Memory is bounded by construction, in bytes. The GetObject and then the range at the head of
//! the order are read straight from their socket as the tee asks for more, so the readers'
//! back-pressure reaches the connection as with a single GET. Every other range in flight keeps
//! what arrives before its turn, and each such chunk is charged to one worker-wide budget
//! (`DOCWORKER_RANGE_BUFFER_BYTES`) before it is kept: when the budget is spent, those ranges stop
//! reading and TCP holds the rest back. The head range is never charged, so it cannot wait for
//! bytes that only it would free. The bound `config::memory_bound` counts is the budget plus, per
//! range in flight, one chunk read and not yet charged and the HTTP client's buffer (the
//! GetObject is the object's own stream, counted per object as for every object).
//!
//! A range that fails (a 5xx the SDK's own retries did not get past, a connection cut midway, a
//! `Content-Range` or length other than asked for) is asked for again from the byte it reached,
//! alone, with jittered backoff, up to [`RANGE_ATTEMPTS`] times; then the object fails as
//! retryable and its message is retried whole. So is the GetObject's connection, once the object
//! is read by ranges: the rest of its bytes are asked for as a range.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use backon::{BackoffBuilder, ExponentialBackoff};
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::fetch::{quoted, s3_error};
use super::tee::{Body, BodyError};
use crate::config::RangeConfig;
use crate::error::{Class, ProcessError, sdk_error};
use crate::observe::names;

/// Attempts per range, the first included, before the object fails as retryable.
pub const RANGE_ATTEMPTS: usize = 4;

/// See [`Ranges::probe_bytes`].
const PROBE_BYTES: u64 = 1 << 20;

/// The worker's ranged-read settings and the two limits every ranged read shares.
#[derive(Debug, Clone)]
pub struct Ranges {
    /// Objects of at least this many bytes may be read by ranges.
    pub threshold: u64,
    pub range_bytes: u64,
    /// Below this many bytes per second over its first MiB, the GetObject's connection is too
    /// slow for the hash alone, and the rest of the object is read by ranges.
    split_below: u64,
    /// Ranges requested and not yet read to their end, across the worker.
    window: Arc<Semaphore>,
    /// Bytes read ahead of their turn and not yet handed to the tee, across the worker.
    buffer: Arc<Semaphore>,
}

impl Ranges {
    pub fn new(config: &RangeConfig) -> Ranges {
        let buffer_bytes = usize::try_from(config.buffer_bytes)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Ranges {
            threshold: config.threshold,
            range_bytes: config.range_bytes,
            split_below: config.split_below,
            window: Arc::new(Semaphore::new(config.window)),
            buffer: Arc::new(Semaphore::new(buffer_bytes)),
        }
    }

    /// The GetObject's bytes its rate is measured over, read as soon as its headers are in:
    /// 10 ms at S3's 100 MB/s, so that ranges are asked for soon after the first byte; a range
    /// at most.
    fn probe_bytes(&self) -> u64 {
        self.range_bytes.min(PROBE_BYTES)
    }

    /// Whether `bytes` read in `took` (the time spent in the reads) came too slowly for the hash
    /// alone: slower than `split_below`. `0` never splits; `u64::MAX` splits every object.
    fn slow(&self, bytes: u64, took: Duration) -> bool {
        match self.split_below {
            0 => false,
            u64::MAX => true,
            // bytes / took < below, in integers.
            below => u128::from(bytes) * 1_000_000_000 < u128::from(below) * took.as_nanos(),
        }
    }

    /// Where the GetObject stops and ranges take over, when it has delivered `offset` bytes: at
    /// the second range boundary past them, so that it has bytes to read while the first ranges
    /// wait for their first byte (at 100 MB/s, 8 MiB take 84 ms; S3's first byte 100–200 ms).
    /// `None` when the object ends before.
    fn cut(&self, offset: u64, total: u64) -> Option<u64> {
        let cut = (offset / self.range_bytes + 2).saturating_mul(self.range_bytes);
        (cut < total).then_some(cut)
    }

    /// Where the GetObject stops when the ranges are asked for with it: at the first range
    /// boundary, so that it ends with the first ranges asked for beside it. Any longer and the
    /// consumer reads it alone while those ranges, ended, wait for their turn holding their
    /// places in the window (through the pacing proxy, interleaved: 1 GiB to row in 2.25 and
    /// 2.36 s with this cut, 2.45 and 2.59 s with the cut at the second boundary). `None` when
    /// the object ends before.
    fn cut_ahead(&self, total: u64) -> Option<u64> {
        (self.range_bytes < total).then_some(self.range_bytes)
    }
}

/// Which bytes of which object: every range asks for exactly this object.
#[derive(Debug)]
pub struct Pinned {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub key: String,
    /// The version read, when the bucket is versioned.
    pub version_id: Option<String>,
    /// The ETag the GetObject returned (quoted, as S3 sends it), sent as `If-Match`.
    pub etag: String,
    pub total: u64,
}

/// An object's body, read by ranges: a [`Body`] for the tee.
pub struct Ranged {
    pinned: Arc<Pinned>,
    ranges: Ranges,
    /// The first byte not yet asked for.
    next_start: u64,
    /// The ranges asked for, in order; the first is the one being read.
    queued: VecDeque<Queued>,
    /// The index of the range at the head of the order, which reads without the budget.
    head: watch::Sender<u64>,
    /// How the head range is read now.
    turn: Option<Turn>,
    /// The GetObject's first bytes, read to measure it, in order, before anything else.
    measured: VecDeque<Bytes>,
    /// How that read failed, for after its bytes.
    failed: Option<ProcessError>,
}

struct Queued {
    index: u64,
    len: u64,
    pieces: mpsc::UnboundedReceiver<Piece>,
    task: JoinHandle<()>,
}

enum Turn {
    /// Its task is still reading it: chunks come through the channel, `got` of `len` so far.
    Buffered { queued: Queued, got: u64 },
    /// Handed over by its task: read straight from its connection.
    Direct(Box<RangeReader>),
}

/// What a range's task hands on, in order.
enum Piece {
    /// A chunk, charged to the buffer budget unless it was read as the head range.
    Chunk(Bytes, Option<OwnedSemaphorePermit>),
    /// The range became the head: the rest of it is read by the consumer itself.
    Rest(Box<RangeReader>),
    Failed(ProcessError),
}

impl Ranged {
    /// Reads `pinned` from the GetObject's `body`, whole unless [`Ranged::measure`] finds its
    /// connection slow.
    pub fn new(pinned: Pinned, ranges: Ranges, body: ByteStream) -> Ranged {
        let total = pinned.total;
        // Nothing is asked for by ranges unless the measure says so.
        let mut ranged = Ranged::unstarted(pinned, ranges, total);
        ranged.turn = Some(Turn::Direct(Box::new(RangeReader::get_object(
            ranged.pinned.clone(),
            body,
            total,
        ))));
        ranged
    }

    /// Nothing read, nothing asked for; ranges from `next_start` on when asked.
    fn unstarted(pinned: Pinned, ranges: Ranges, next_start: u64) -> Ranged {
        Ranged {
            pinned: Arc::new(pinned),
            ranges,
            next_start,
            queued: VecDeque::new(),
            head: watch::Sender::new(0),
            turn: None,
            measured: VecDeque::new(),
            failed: None,
        }
    }

    /// Ranges asked for before the GetObject has answered, when every large object is split
    /// (`DOCWORKER_RANGED_BELOW_BYTES_PER_SEC=always`, for S3, whose connections are all slower
    /// than the hash): so the first ranges wait for their first byte alongside the GetObject
    /// rather than after it and its measure (on S3, 100–200 ms, once per object). `pinned` is
    /// what the event announced: its version id, its ETag and its size. `None` when the object
    /// ends before the GetObject's cut, or unless every object is split.
    pub fn ahead(pinned: Pinned, ranges: Ranges) -> Option<Ranged> {
        if ranges.split_below != u64::MAX {
            return None;
        }
        let cut = ranges.cut_ahead(pinned.total)?;
        let mut ranged = Ranged::unstarted(pinned, ranges, cut);
        ranged.ask_while_free();
        Some(ranged)
    }

    /// Puts the GetObject's `body` at the head of ranges asked [`Ranged::ahead`], cut where they
    /// start; when the GetObject answered for other bytes than the event announced (another ETag
    /// or length), gives the body back and drops the ranges, unread: they were pinned to what the
    /// event said, and must never be mixed with the GetObject's bytes.
    pub fn attach(
        mut self,
        etag: Option<&str>,
        total: u64,
        body: ByteStream,
    ) -> Result<Ranged, ByteStream> {
        if etag.map(quoted).as_ref() != Some(&self.pinned.etag) || total != self.pinned.total {
            return Err(body);
        }
        let cut = self.ranges.cut_ahead(total).unwrap_or(total);
        self.turn = Some(Turn::Direct(Box::new(RangeReader::get_object(
            self.pinned.clone(),
            body,
            cut,
        ))));
        metrics::counter!(names::S3_RANGED_OBJECTS).increment(1);
        tracing::debug!(
            cut,
            asked = self.queued.len(),
            "ranges asked for with the GetObject"
        );
        Ok(self)
    }

    /// Gives back the places in the window (and the read-ahead budget) of the ranges queued
    /// behind the head, when the stream cannot go on soon; they are asked for again as the
    /// stream reaches them. None of them has handed the stream a byte (the head is the turn,
    /// not queued), so none is lost or read twice into the digests.
    pub fn release(&mut self) {
        let Some(first) = self.queued.front() else {
            return;
        };
        self.next_start = first.index * self.ranges.range_bytes;
        tracing::debug!(
            released = self.queued.len(),
            "ranges asked for ahead released until the stream reaches them"
        );
        for queued in self.queued.drain(..) {
            queued.task.abort();
        }
    }

    /// Reads the GetObject's first MiB at once, timing the reads, and decides from their rate
    /// whether ranges take over. At once: the body must not sit unread first (during the part
    /// layout's HeadObjects, say), or what the socket gathers meanwhile is read in no time and a
    /// slow source looks fast (measured: through the pacing proxy a probe taken after the part
    /// layout read 100 MB/s as 500–900 MB/s). No reader is attached yet, so none can slow the
    /// measure either. The bytes are kept for the tee: the probe's MiB and one chunk at most,
    /// before the tee holds anything of this object.
    pub async fn measure(&mut self) {
        let Some(Turn::Direct(reader)) = &mut self.turn else {
            return;
        };
        let probe = self.ranges.probe_bytes();
        let mut took = Duration::ZERO;
        while reader.offset < probe {
            let asked = Instant::now();
            match reader.next().await {
                Ok(Some(chunk)) => {
                    took += asked.elapsed();
                    self.measured.push_back(chunk);
                }
                Ok(None) => return,
                Err(e) => {
                    self.failed = Some(e);
                    return;
                }
            }
        }
        let slow = self.ranges.slow(reader.offset, took);
        tracing::debug!(
            bytes = reader.offset,
            took_us = took.as_micros() as u64,
            slow,
            "the GetObject's connection measured"
        );
        let cut = self.ranges.cut(reader.offset, self.pinned.total);
        if let Some(cut) = cut.filter(|_| slow) {
            reader.end = cut;
            reader.cut = true;
            self.next_start = cut;
            metrics::counter!(names::S3_RANGED_OBJECTS).increment(1);
        }
    }

    /// Asks for more ranges while the window has room; for the next range at least, when none
    /// is in flight, waits for room.
    async fn ask(&mut self) {
        if self.next_start < self.pinned.total && self.queued.is_empty() && self.turn.is_none() {
            match self.ranges.window.clone().acquire_owned().await {
                Ok(slot) => self.launch(slot),
                Err(_) => return,
            }
        }
        self.ask_while_free();
    }

    /// Asks for more ranges while the window has room, without waiting for any.
    fn ask_while_free(&mut self) {
        while self.next_start < self.pinned.total {
            match self.ranges.window.clone().try_acquire_owned() {
                Ok(slot) => self.launch(slot),
                Err(_) => return,
            }
        }
    }

    /// Asks for the next range, in its own task, in the window's `slot`.
    fn launch(&mut self, slot: OwnedSemaphorePermit) {
        let start = self.next_start;
        let end = start
            .saturating_add(self.ranges.range_bytes)
            .min(self.pinned.total);
        self.next_start = end;
        let index = start / self.ranges.range_bytes;
        let reader = RangeReader::new(self.pinned.clone(), start, end, Some(slot));
        let (tx, pieces) = mpsc::unbounded_channel();
        let task = tokio::spawn(
            read_ahead(
                reader,
                index,
                self.head.subscribe(),
                self.ranges.buffer.clone(),
                tx,
            )
            .instrument(tracing::Span::current()),
        );
        self.queued.push_back(Queued {
            index,
            len: end - start,
            pieces,
            task,
        });
    }
}

impl Body for Ranged {
    async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        if let Some(chunk) = self.measured.pop_front() {
            return Ok(Some(chunk));
        }
        if let Some(e) = self.failed.take() {
            return Err(BodyError::Answered(e));
        }
        loop {
            self.ask().await;
            let turn = match &mut self.turn {
                Some(turn) => turn,
                None => match self.queued.pop_front() {
                    Some(queued) => {
                        self.head.send_replace(queued.index);
                        self.turn.insert(Turn::Buffered { queued, got: 0 })
                    }
                    None => return Ok(None),
                },
            };
            match turn {
                Turn::Direct(reader) => match reader.next().await {
                    Ok(Some(chunk)) => return Ok(Some(chunk)),
                    Ok(None) => self.turn = None,
                    Err(e) => return Err(BodyError::Answered(e)),
                },
                Turn::Buffered { queued, got } => match queued.pieces.recv().await {
                    // The permit goes with this return: the chunk is the tee's from here, and
                    // its queues are what bound it now.
                    Some(Piece::Chunk(chunk, _charged)) => {
                        *got += chunk.len() as u64;
                        return Ok(Some(chunk));
                    }
                    Some(Piece::Rest(reader)) => self.turn = Some(Turn::Direct(reader)),
                    Some(Piece::Failed(e)) => return Err(BodyError::Answered(e)),
                    None if *got == queued.len => self.turn = None,
                    // The task ended without its range's bytes or an error: it panicked.
                    None => {
                        return Err(BodyError::Answered(gave_up(
                            &self.pinned,
                            queued.index * self.ranges.range_bytes + *got,
                            0,
                            "the range's reader stopped before its end".into(),
                        )));
                    }
                },
            }
        }
    }
}

impl Drop for Ranged {
    /// An object that fails or is refused midway stops its ranges: their connections close and
    /// their budget returns.
    fn drop(&mut self) {
        for queued in &self.queued {
            queued.task.abort();
        }
        if let Some(Turn::Buffered { queued, .. }) = &self.turn {
            queued.task.abort();
        }
    }
}

/// A range's task: reads it ahead of its turn, charging every chunk to the budget, until it is
/// the head range; then hands the reader over, so that the head is read under the tee's
/// back-pressure and never waits on the budget.
async fn read_ahead(
    mut reader: RangeReader,
    index: u64,
    mut head: watch::Receiver<u64>,
    budget: Arc<Semaphore>,
    pieces: mpsc::UnboundedSender<Piece>,
) {
    loop {
        if *head.borrow() == index {
            let _ = pieces.send(Piece::Rest(Box::new(reader)));
            return;
        }
        let chunk = match reader.next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return,
            Err(e) => {
                let _ = pieces.send(Piece::Failed(e));
                return;
            }
        };
        // A chunk is a slice of the HTTP client's read buffer and keeps all of that buffer
        // alive: kept ahead of its turn, it is copied into an allocation of its own size, so
        // that the budget charges what is actually held (measured: without the copy, a 1 GiB
        // read peaked ~30 MiB above what was charged).
        let chunk = Bytes::copy_from_slice(&chunk);
        let charge = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        let charged = tokio::select! {
            permit = budget.clone().acquire_many_owned(charge) => permit.ok(),
            _ = head.wait_for(|head| *head == index) => None,
        };
        if pieces.send(Piece::Chunk(chunk, charged)).is_err() {
            return;
        }
    }
}

/// One range's bytes, from `offset` to `end`, asked for again from where it stopped when its
/// connection fails. Cancel-safe: its position moves only once a chunk is returned.
struct RangeReader {
    pinned: Arc<Pinned>,
    offset: u64,
    end: u64,
    /// Its body runs past `end` (the GetObject, once ranges take over): cut there.
    cut: bool,
    body: Option<ByteStream>,
    backoff: ExponentialBackoff,
    attempts: usize,
    /// The range's place in the window, given back when the range is read to its end.
    _slot: Option<OwnedSemaphorePermit>,
}

impl RangeReader {
    fn new(
        pinned: Arc<Pinned>,
        start: u64,
        end: u64,
        slot: Option<OwnedSemaphorePermit>,
    ) -> RangeReader {
        RangeReader {
            pinned,
            offset: start,
            end,
            cut: false,
            body: None,
            backoff: crate::backoff::bounded(RANGE_ATTEMPTS).build(),
            attempts: 0,
            _slot: slot,
        }
    }

    /// The GetObject's own body, read up to `end`: cut there when that is before the object's
    /// end.
    fn get_object(pinned: Arc<Pinned>, body: ByteStream, end: u64) -> RangeReader {
        RangeReader {
            body: Some(body),
            cut: end < pinned.total,
            ..RangeReader::new(pinned, 0, end, None)
        }
    }

    async fn next(&mut self) -> Result<Option<Bytes>, ProcessError> {
        loop {
            if self.offset == self.end {
                // The GetObject read whole is read to its body's end, where the SDK's checksum
                // body reports a mismatch of the object's full checksum; a cut one's bytes past
                // the cut are the ranges', and are dropped unread.
                if let Some(mut body) = self.body.take().filter(|_| !self.cut)
                    && let Err(e) = body.try_next().await
                {
                    return Err(gave_up(
                        &self.pinned,
                        self.offset,
                        self.attempts + 1,
                        sdk_error(&e),
                    ));
                }
                self._slot = None;
                return Ok(None);
            }
            let body = match &mut self.body {
                Some(body) => body,
                None => match self.open().await {
                    Ok(body) => self.body.insert(body),
                    Err(Failed::Answer(answer)) => return Err(answer),
                    Err(Failed::Retry(why)) => {
                        self.wait_to_retry(why).await?;
                        continue;
                    }
                },
            };
            let left = self.end - self.offset;
            let why = match body.try_next().await {
                Ok(Some(chunk)) if chunk.len() as u64 <= left => {
                    self.offset += chunk.len() as u64;
                    return Ok(Some(chunk));
                }
                Ok(Some(chunk)) if self.cut => {
                    // The bytes past the cut are the ranges': closing the connection drops them.
                    self.body = None;
                    self.offset = self.end;
                    return Ok(Some(chunk.slice(..left as usize)));
                }
                Ok(Some(_)) => "more bytes than the range asked for".to_owned(),
                Ok(None) => format!(
                    "the body ended {} bytes short of the range",
                    self.end - self.offset
                ),
                Err(e) => sdk_error(&e),
            };
            self.body = None;
            self.wait_to_retry(why).await?;
        }
    }

    async fn open(&mut self) -> Result<ByteStream, Failed> {
        let pinned = &*self.pinned;
        let last = self.end - 1;
        metrics::counter!(names::S3_RANGE_REQUESTS).increment(1);
        let output = pinned
            .s3
            .get_object()
            .bucket(&pinned.bucket)
            .key(&pinned.key)
            .set_version_id(pinned.version_id.clone())
            .if_match(&pinned.etag)
            .range(format!("bytes={}-{last}", self.offset))
            .send()
            .await
            .map_err(|e| {
                let error = s3_error("GetObject", &pinned.bucket, &pinned.key, e);
                match (error.settles(), error.class()) {
                    (None, Class::Retryable) => Failed::Retry(error.to_string()),
                    _ => Failed::Answer(error),
                }
            })?;
        let expected = format!("bytes {}-{last}/{}", self.offset, pinned.total);
        if output.content_range() != Some(expected.as_str()) {
            return Err(Failed::Retry(format!(
                "Content-Range {:?} where {expected:?} was asked for",
                output.content_range().unwrap_or("")
            )));
        }
        let length = output.content_length().unwrap_or(-1);
        if u64::try_from(length).ok() != Some(self.end - self.offset) {
            return Err(Failed::Retry(format!(
                "Content-Length {length} for a range of {} bytes",
                self.end - self.offset
            )));
        }
        Ok(output.body)
    }

    async fn wait_to_retry(&mut self, why: String) -> Result<(), ProcessError> {
        self.attempts += 1;
        let Some(delay) = self.backoff.next() else {
            return Err(gave_up(&self.pinned, self.offset, self.attempts, why));
        };
        metrics::counter!(names::S3_RANGE_RETRIES).increment(1);
        tracing::debug!(offset = self.offset, attempt = self.attempts, error = %why, "retrying a range");
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

fn gave_up(pinned: &Pinned, offset: u64, attempts: usize, detail: String) -> ProcessError {
    ProcessError::Range {
        bucket: pinned.bucket.clone(),
        key: pinned.key.clone(),
        offset,
        attempts,
        detail,
    }
}

/// Why a range request failed: an answer about the object (412, 404, 403, a missing bucket),
/// decided by the pipeline like the single GET's; or a failure worth asking again for.
enum Failed {
    Answer(ProcessError),
    Retry(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(split_below: u64) -> Ranges {
        Ranges::new(&RangeConfig {
            split_below,
            range_bytes: 8 << 20,
            ..RangeConfig::DEFAULT
        })
    }

    const MS: Duration = Duration::from_millis(1);
    const US: Duration = Duration::from_micros(1);

    #[test]
    fn a_connection_slower_than_the_setting_hands_over_two_range_boundaries_on() {
        let ranges = ranges(500_000_000);
        let mib = 1u64 << 20;
        assert_eq!(ranges.probe_bytes(), mib);
        // 1 MiB in 10.5 ms: S3's 100 MB/s.
        assert!(ranges.slow(mib, 10_500 * US));
        assert_eq!(ranges.cut(mib, 1 << 30), Some(16 * mib));
        // The chunk that crossed the probe's end ran past it: still two boundaries on.
        assert_eq!(ranges.cut(mib + 300_000, 1 << 30), Some(16 * mib));
        assert_eq!(ranges.cut(8 * mib, 1 << 30), Some(24 * mib));
        // Just below and just above the rate: 1 MiB in 2.098 ms is 499.8 MB/s.
        assert!(ranges.slow(mib, 2_098 * US));
        assert!(!ranges.slow(mib, 2_096 * US));
        // moto's 2.9 GB/s.
        assert!(!ranges.slow(mib, 360 * US));
    }

    #[test]
    fn the_settings_ends_never_and_always_split() {
        let mib = 1u64 << 20;
        assert!(!ranges(0).slow(mib, 10_000 * MS));
        assert!(ranges(u64::MAX).slow(mib, Duration::ZERO));
    }

    #[test]
    fn ranges_asked_for_with_the_getobject_start_at_the_first_boundary() {
        let mib = 1u64 << 20;
        let ranges = ranges(u64::MAX);
        assert_eq!(ranges.cut_ahead(1 << 30), Some(8 * mib));
        assert_eq!(ranges.cut_ahead(8 * mib + 1), Some(8 * mib));
        assert_eq!(ranges.cut_ahead(8 * mib), None);
    }

    #[test]
    fn an_object_ending_before_the_cut_is_read_whole() {
        let mib = 1u64 << 20;
        assert_eq!(ranges(500_000_000).cut(mib, 16 * mib), None);
        assert_eq!(ranges(500_000_000).cut(mib, 16 * mib + 1), Some(16 * mib));
    }

    #[test]
    fn the_probe_is_a_range_at_most() {
        let small = Ranges::new(&RangeConfig {
            range_bytes: 256 << 10,
            ..RangeConfig::DEFAULT
        });
        assert_eq!(small.probe_bytes(), 256 << 10);
    }
}
