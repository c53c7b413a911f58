//! Readers behind a bounded queue: on a blocking thread, or on a task of their own. One helper
//! for both, so every such reader gets the same batching, back-pressure and tracing span.

use std::future::Future;
use std::io::Read;

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, Span};

use super::{Attached, Place, Verdict, Wants};
use crate::error::{ProcessError, ReaderError};

/// How chunks travel to a queued reader.
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    /// Chunks are sent in batches of at least this many bytes (0: each chunk alone). Batching
    /// pays where the hand-off costs more than the work on a chunk.
    pub batch_bytes: usize,
    /// Batches waiting for the reader before the download waits for it: with `batch_bytes`,
    /// what bounds the memory this reader holds.
    pub batches: usize,
}

/// The download's side of a queued reader.
pub(super) struct Feed {
    batch: Vec<Bytes>,
    batched: usize,
    batch_bytes: usize,
    /// `None` once the reader stopped reading (it has its verdict, or failed).
    batches: Option<mpsc::Sender<Vec<Bytes>>>,
    task: JoinHandle<Result<(), ReaderError>>,
}

impl Feed {
    pub(super) async fn take(&mut self, chunk: &Bytes) -> Wants {
        let Some(batches) = &self.batches else {
            return Wants::Enough;
        };
        self.batched += chunk.len();
        self.batch.push(chunk.clone());
        if self.batched < self.batch_bytes {
            return Wants::More;
        }
        self.batched = 0;
        if batches.send(std::mem::take(&mut self.batch)).await.is_err() {
            self.batches = None;
            return Wants::Enough;
        }
        Wants::More
    }

    /// Sends what is left, ends the input, and waits for the reader to finish.
    pub(super) async fn finish(mut self) -> Result<(), ProcessError> {
        if let Some(batches) = self.batches.take()
            && !self.batch.is_empty()
        {
            let _ = batches.send(self.batch).await;
        }
        Ok(self.task.instrument(Span::current()).await??)
    }
}

fn feed(queue: Queue) -> (mpsc::Sender<Vec<Bytes>>, mpsc::Receiver<Vec<Bytes>>) {
    mpsc::channel(queue.batches.max(1))
}

impl Attached {
    /// Runs `read` on a blocking thread, in the current tracing span, over the object's chunks.
    /// It may return before the end of the object: the download then stops feeding it. Its
    /// error stops the download.
    pub fn on_thread<T, R>(reader: &'static str, queue: Queue, read: R) -> (Attached, Verdict<T>)
    where
        T: Send + 'static,
        R: FnOnce(&mut Chunks) -> Result<T, ReaderError> + Send + 'static,
    {
        let (tx, rx) = feed(queue);
        let (decide, verdict) = super::verdict(reader);
        let span = Span::current();
        let task = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let mut chunks = Chunks {
                    batches: rx,
                    batch: Vec::new().into_iter(),
                    current: Bytes::new(),
                };
                decide.decide(read(&mut chunks)?);
                Ok(())
            })
        });
        (Attached::queued(queue, tx, task), verdict)
    }

    /// Runs `read` as a task of its own on the runtime, in the current tracing span: for a
    /// reader that waits on the network (forwarding chunks to a service) rather than on the CPU.
    pub fn on_task<T, R, F>(reader: &'static str, queue: Queue, read: R) -> (Attached, Verdict<T>)
    where
        T: Send + 'static,
        R: FnOnce(TaskChunks) -> F,
        F: Future<Output = Result<T, ReaderError>> + Send + 'static,
    {
        let (tx, rx) = feed(queue);
        let (decide, verdict) = super::verdict(reader);
        let reading = read(TaskChunks {
            batches: rx,
            batch: Vec::new().into_iter(),
        });
        let task = tokio::spawn(
            async move {
                decide.decide(reading.await?);
                Ok(())
            }
            .instrument(Span::current()),
        );
        (Attached::queued(queue, tx, task), verdict)
    }

    fn queued(
        queue: Queue,
        batches: mpsc::Sender<Vec<Bytes>>,
        task: JoinHandle<Result<(), ReaderError>>,
    ) -> Attached {
        Attached(Place::Queued(Feed {
            batch: Vec::new(),
            batched: 0,
            batch_bytes: queue.batch_bytes,
            batches: Some(batches),
            task,
        }))
    }
}

/// The object's chunks, on a blocking thread: an iterator of chunks, or a [`Read`] of bytes.
pub struct Chunks {
    batches: mpsc::Receiver<Vec<Bytes>>,
    batch: std::vec::IntoIter<Bytes>,
    /// What a `read` left of a chunk.
    current: Bytes,
}

impl Iterator for Chunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if !self.current.is_empty() {
            return Some(std::mem::take(&mut self.current));
        }
        loop {
            if let Some(chunk) = self.batch.next() {
                return Some(chunk);
            }
            self.batch = self.batches.blocking_recv()?.into_iter();
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // An empty chunk is not the end of the object.
        while self.current.is_empty() {
            match self.next() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// The object's chunks, on a task.
pub struct TaskChunks {
    batches: mpsc::Receiver<Vec<Bytes>>,
    batch: std::vec::IntoIter<Bytes>,
}

impl TaskChunks {
    /// The next chunk; `None` at the end of the object.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.batch.next() {
                return Some(chunk);
            }
            self.batch = self.batches.recv().await?.into_iter();
        }
    }
}
