//! The streaming tee: one download, many readers.
//!
//! An object's bytes are read once. [`stream`] owns the download loop and hands every `Bytes`
//! chunk, in order, to each reader on the list, so a new check (a part digest, a scanner) is a
//! new reader rather than a new branch in the loop. Chunks are shared, never copied: a reader on
//! another thread gets the same reference-counted buffers.
//!
//! The first [`SNIFF_LEN`] bytes (the whole object when shorter) are held before any reader
//! exists: what the object is decides which readers it needs (a DICOM header parser only for
//! DICOM, a tail only for zip-based documents). The list is built from that [`Prefix`], then each
//! reader is given the held chunks and every chunk after them.
//!
//! A reader says where it runs by how it is attached ([`Attached`]): inline, on the download's
//! own task, for work that is cheap per chunk; or behind a bounded queue, on a blocking thread
//! ([`Attached::on_thread`]) for CPU-bound work, or on a task of its own ([`Attached::on_task`])
//! for one that talks to a network service. The bounded queue is the back-pressure: a slow reader
//! holds back the download, never fills memory. Each reader's verdict comes back through its own
//! typed [`Verdict`], so the tee stays ignorant of what its readers decide.

mod queued;

use std::future::Future;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use docworker_shared::sniff::SNIFF_LEN;
use tokio::sync::oneshot;

pub use self::queued::{Chunks, Queue, TaskChunks};
use crate::error::{BoxError, Class, ProcessError, ReaderError};
use crate::observe::names;

/// Where the bytes come from: an S3 body, the ranges of a ranged read, or whatever a test
/// streams.
pub trait Body: Send {
    /// The next chunk; `None` at the end.
    fn next(&mut self) -> impl Future<Output = Result<Option<Bytes>, BodyError>> + Send;
}

/// Why a body stopped before its end.
#[derive(Debug)]
pub enum BodyError {
    /// The bytes stopped coming (a reset connection, a checksum the SDK found wrong): the tee
    /// says where, as [`ProcessError::Body`].
    Read(BoxError),
    /// A body read by several requests got an answer about the object to one of them (412: it
    /// changed; 404: it is gone) or gave up on one: already the error the pipeline decides by.
    Answered(ProcessError),
}

impl Body for ByteStream {
    async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        self.try_next().await.map_err(|e| BodyError::Read(e.into()))
    }
}

/// What the readers are chosen by.
pub struct Prefix<'a> {
    /// The first [`SNIFF_LEN`] bytes, or the whole object when it is shorter.
    pub bytes: &'a [u8],
    /// The object is shorter than a prefix: these bytes are all of it. (One of exactly
    /// [`SNIFF_LEN`] bytes is not known to have ended when its readers are chosen.)
    pub whole_object: bool,
}

/// Whether a reader wants the chunks after this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    More,
    /// It has its verdict: the tee finishes it now and stops handing it chunks.
    Enough,
}

/// A reader that runs inline, on the download's task: it must not block or do much per chunk.
/// Work that does goes behind a queue instead ([`Attached::on_thread`], [`Attached::on_task`]).
pub trait Reader: Send {
    /// Takes the next chunk of the object.
    fn take(&mut self, chunk: &Bytes) -> Result<Wants, ReaderError>;
    /// The object ended (or the reader said [`Wants::Enough`]): deliver the verdict.
    fn finish(self: Box<Self>) -> Result<(), ReaderError>;
}

/// A reader on the tee's list, with where it runs.
pub struct Attached(Place);

enum Place {
    Inline(Box<dyn Reader>),
    Queued(queued::Feed),
}

impl Attached {
    pub fn inline(reader: impl Reader + 'static) -> Attached {
        Attached(Place::Inline(Box::new(reader)))
    }

    async fn take(&mut self, chunk: &Bytes) -> Result<Wants, ProcessError> {
        match &mut self.0 {
            Place::Inline(reader) => Ok(reader.take(chunk)?),
            Place::Queued(feed) => Ok(feed.take(chunk).await),
        }
    }

    async fn finish(self) -> Result<(), ProcessError> {
        match self.0 {
            Place::Inline(reader) => Ok(reader.finish()?),
            Place::Queued(feed) => feed.finish().await,
        }
    }
}

/// The sending half of a reader's verdict, kept by the reader.
pub struct Decide<T>(oneshot::Sender<T>);

impl<T> Decide<T> {
    pub fn decide(self, verdict: T) {
        // The pipeline stopped waiting (it failed elsewhere): nobody needs this verdict.
        let _ = self.0.send(verdict);
    }
}

/// A reader's verdict, for the pipeline to read once [`stream`] returned.
pub struct Verdict<T> {
    reader: &'static str,
    verdict: oneshot::Receiver<T>,
}

/// A verdict to be decided by the reader named `reader` (the name its errors carry).
pub fn verdict<T>(reader: &'static str) -> (Decide<T>, Verdict<T>) {
    let (tx, rx) = oneshot::channel();
    (
        Decide(tx),
        Verdict {
            reader,
            verdict: rx,
        },
    )
}

impl<T> Verdict<T> {
    /// A verdict decided beforehand (from the prefix alone): no reader is attached for it.
    pub fn ready(reader: &'static str, verdict: T) -> Verdict<T> {
        let (decide, pending) = self::verdict(reader);
        decide.decide(verdict);
        pending
    }

    /// The verdict. [`stream`] finishes every reader before it returns, so after a successful
    /// stream a reader without a verdict is a bug in that reader, failed as retryable.
    pub fn get(mut self) -> Result<T, ProcessError> {
        self.verdict.try_recv().map_err(|_| {
            ReaderError::new(self.reader, Class::Retryable, "finished without a verdict").into()
        })
    }
}

/// What the tee itself learned from the download.
pub struct Streamed {
    /// The first [`SNIFF_LEN`] bytes, or the whole object when shorter.
    pub prefix: Vec<u8>,
    pub bytes: u64,
}

/// Reads `body` (of `s3://{bucket}/{key}`, for errors) once, to the end, through the readers
/// `attach` puts on the list once the prefix is known. `attach` returns what the caller needs to
/// collect the verdicts afterwards. Every reader is finished before this returns; a reader's
/// error stops the download.
pub async fn stream<V>(
    bucket: &str,
    key: &str,
    mut body: impl Body,
    attach: impl FnOnce(&Prefix<'_>, &mut Vec<Attached>) -> V,
) -> Result<(V, Streamed), ProcessError> {
    let streamed_bytes = metrics::counter!(names::BYTES_STREAMED);
    let mut prefix: Vec<u8> = Vec::with_capacity(SNIFF_LEN);
    let mut held: Vec<Bytes> = Vec::new();
    let mut bytes = 0u64;
    let mut readers: Vec<Attached> = Vec::new();
    let mut state = State::Holding(attach);
    loop {
        let chunk = match body.next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(BodyError::Answered(e)) => return Err(e),
            Err(BodyError::Read(e)) => {
                return Err(ProcessError::Body {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    bytes,
                    source: e,
                });
            }
        };
        bytes += chunk.len() as u64;
        streamed_bytes.increment(chunk.len() as u64);
        if let State::Reading(_) = state {
            feed(&mut readers, &chunk).await?;
            continue;
        }
        let wanted = SNIFF_LEN - prefix.len();
        prefix.extend_from_slice(&chunk[..chunk.len().min(wanted)]);
        held.push(chunk);
        if prefix.len() == SNIFF_LEN {
            state = state.attach(&prefix, false, &mut readers);
            for chunk in std::mem::take(&mut held) {
                feed(&mut readers, &chunk).await?;
            }
        }
    }
    let verdicts = match state {
        State::Reading(verdicts) => verdicts,
        // The whole object fit in the prefix: its readers start now, with all of it.
        State::Holding(attach) => {
            let prefix = Prefix {
                bytes: &prefix,
                whole_object: true,
            };
            let verdicts = attach(&prefix, &mut readers);
            for chunk in held {
                feed(&mut readers, &chunk).await?;
            }
            verdicts
        }
    };
    for reader in readers {
        reader.finish().await?;
    }
    Ok((verdicts, Streamed { prefix, bytes }))
}

/// Before the prefix is complete the chunks are held and the reader list is still to be built;
/// after, every chunk goes straight to the readers.
enum State<F, V> {
    Holding(F),
    Reading(V),
}

impl<F, V> State<F, V>
where
    F: FnOnce(&Prefix<'_>, &mut Vec<Attached>) -> V,
{
    fn attach(self, prefix: &[u8], whole_object: bool, readers: &mut Vec<Attached>) -> Self {
        match self {
            State::Holding(attach) => State::Reading(attach(
                &Prefix {
                    bytes: prefix,
                    whole_object,
                },
                readers,
            )),
            reading => reading,
        }
    }
}

/// Hands `chunk` to every reader still reading, finishing those that have had enough.
async fn feed(readers: &mut Vec<Attached>, chunk: &Bytes) -> Result<(), ProcessError> {
    let mut i = 0;
    while i < readers.len() {
        match readers[i].take(chunk).await? {
            Wants::More => i += 1,
            Wants::Enough => readers.remove(i).finish().await?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader written for this test alone: it counts the bytes it is handed.
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

    fn count_bytes(readers: &mut Vec<Attached>) -> Verdict<u64> {
        let (decide, verdict) = verdict("count");
        readers.push(Attached::inline(CountBytes { bytes: 0, decide }));
        verdict
    }

    struct Chunked(std::vec::IntoIter<Bytes>);

    impl Body for Chunked {
        async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
            Ok(self.0.next())
        }
    }

    fn chunked(len: usize, chunk: usize) -> (Vec<u8>, Chunked) {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<Bytes> = bytes.chunks(chunk).map(Bytes::copy_from_slice).collect();
        (bytes, Chunked(chunks.into_iter()))
    }

    #[tokio::test]
    async fn every_reader_sees_every_byte_in_order_whatever_the_prefix() {
        for (len, chunk) in [
            (10, 3),
            (SNIFF_LEN, 1000),
            (SNIFF_LEN + 1, 4096),
            (300_000, 7777),
        ] {
            let (bytes, body) = chunked(len, chunk);
            let ((count, copy), streamed) = stream("b", "k", body, |prefix, readers| {
                assert_eq!(prefix.whole_object, len < SNIFF_LEN, "{len}");
                let queue = Queue {
                    batch_bytes: 10_000,
                    batches: 1,
                };
                let (copy, verdict) = Attached::on_thread("copy", queue, |chunks| {
                    Ok(chunks.flat_map(|c| c.to_vec()).collect::<Vec<u8>>())
                });
                readers.push(copy);
                (count_bytes(readers), verdict)
            })
            .await
            .unwrap();
            assert_eq!(count.get().unwrap(), len as u64);
            assert_eq!(copy.get().unwrap(), bytes, "{len}");
            assert_eq!(streamed.bytes, len as u64);
            assert_eq!(streamed.prefix, bytes[..len.min(SNIFF_LEN)]);
        }
    }

    #[tokio::test]
    async fn a_reader_on_a_task_may_stop_early_and_its_error_stops_the_download() {
        let (_, body) = chunked(200_000, 1000);
        let queue = Queue {
            batch_bytes: 0,
            batches: 2,
        };
        let ((first, count), _) = stream("b", "k", body, |_, readers| {
            let (early, verdict) = Attached::on_task("first", queue, |mut chunks| async move {
                Ok(chunks.next().await.map(|c| c.len()))
            });
            readers.push(early);
            (verdict, count_bytes(readers))
        })
        .await
        .unwrap();
        assert_eq!(first.get().unwrap(), Some(1000));
        assert_eq!(count.get().unwrap(), 200_000, "the others read on");

        let (_, body) = chunked(200_000, 1000);
        let failed = stream("b", "k", body, |_, readers| {
            let (failing, _) = Attached::on_task("scanner", queue, |mut chunks| async move {
                chunks.next().await;
                Err::<(), _>(ReaderError::new(
                    "scanner",
                    Class::Retryable,
                    "service unavailable",
                ))
            });
            readers.push(failing);
        })
        .await;
        let Err(e) = failed else {
            panic!("a failed reader fails the stream")
        };
        assert_eq!(e.class(), Class::Retryable);
        assert_eq!(e.to_string(), "scanner reader failed: service unavailable");
    }
}
