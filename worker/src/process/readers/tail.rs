//! The last bytes of the object, where a zip-based document keeps its central directory.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::error::ReaderError;
use crate::process::tee::{self, Attached, Decide, Reader, Verdict, Wants};

/// Keeps the last `capacity` bytes.
pub fn attach(capacity: usize, readers: &mut Vec<Attached>) -> Verdict<Vec<u8>> {
    let (decide, verdict) = tee::verdict("tail");
    readers.push(Attached::inline(TailReader {
        tail: Tail::new(capacity),
        decide,
    }));
    verdict
}

struct TailReader {
    tail: Tail,
    decide: Decide<Vec<u8>>,
}

impl Reader for TailReader {
    fn take(&mut self, chunk: &Bytes) -> Result<Wants, ReaderError> {
        self.tail.push(chunk.clone());
        Ok(Wants::More)
    }

    fn finish(self: Box<Self>) -> Result<(), ReaderError> {
        self.decide.decide(self.tail.into_bytes());
        Ok(())
    }
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
    fn new(capacity: usize) -> Tail {
        Tail {
            chunks: VecDeque::new(),
            held: 0,
            capacity,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_and_at_most_one_chunk_more() {
        let stream: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for chunk_len in [1, 7, 100, 999, 4096, 20_000] {
            let mut tail = Tail::new(1000);
            for chunk in stream.chunks(chunk_len).map(Bytes::copy_from_slice) {
                tail.push(chunk);
                assert!(
                    tail.held < 1000 + chunk_len,
                    "chunk {chunk_len}: {}",
                    tail.held
                );
            }
            assert_eq!(tail.into_bytes(), stream[9000..], "chunk {chunk_len}");
        }
        let mut short = Tail::new(1000);
        short.push(Bytes::from_static(b"short"));
        assert_eq!(short.into_bytes(), b"short");
    }
}
