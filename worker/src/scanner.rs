//! The clamd client: each object's chunks, as they stream from S3, forwarded to clamd's
//! `INSTREAM` through the `clamav-client` crate, so that the scan overlaps the download and the
//! object is still read once (the tee's scan reader, `process::readers::scan`, feeds it). The
//! queue between the download and the clamd connection is bounded ([`QUEUE_CHUNKS`]): a slow
//! scanner holds the download back rather than filling memory. And `PING`, for readiness and for
//! waiting out an outage.
//!
//! A scan that cannot give a verdict is a value ([`NotScanned`]), never a pass: what may happen
//! to an unscanned object is [`gate::decide`]'s call.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clamav_client::tokio::{Socket, Tcp};
use docworker_shared::gate::{self, NotScanned, ScanVerdict};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, warn};

use crate::config::{ClamdAddr, ScanConfig};

/// The scanner's metric names, here rather than in `observe` (which re-exports them in
/// `observe::names`, described and started at zero there), since readiness in `observe` pings
/// the scanner: dependencies stay one way.
pub mod names {
    pub const SCANS: &str = "docworker_scans_total";
    pub const SCAN_SECONDS: &str = "docworker_scan_seconds";
    pub const SCANNER_AVAILABLE: &str = "docworker_scanner_available";
    pub const SCAN_BACKLOG_BYTES: &str = "docworker_scan_backlog_bytes";
}

/// Chunks queued for one object's clamd connection. S3 body chunks are at most a few hundred
/// KiB, so a scanner that falls behind holds at most about a MiB per object before the
/// download waits for it.
pub const QUEUE_CHUNKS: usize = 4;
/// The size of the INSTREAM chunks the crate writes: one S3 chunk is split into pieces of at
/// most this, each one `write` on the socket.
const INSTREAM_CHUNK: usize = 64 << 10;
/// How long a readiness ping waits: clamd answers PING at once when it is up.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// The slowest scan rate the wait for clamd's answer allows for. clamd spools an INSTREAM to a
/// file and scans it only once the stream has ended, so the answer to a large object comes a
/// whole scan after its last byte: about 25 s for 1 GiB with the test signatures on this
/// project's 2-core machine, and more with the full signature set (~20-25 MB/s per clamd
/// thread). At 5 MiB/s, 1 GiB is allowed 205 s on top of the scan timeout, within clamd's own
/// `MaxScanTime` of 300 s in the shipped configurations.
pub const ANSWER_FLOOR_BYTES_PER_SEC: u64 = 5 << 20;

/// A clamd, as configured: one connection per object, opened when its first chunk is fed.
#[derive(Debug, Clone)]
pub struct Scanner {
    config: ScanConfig,
}

impl Scanner {
    pub fn new(config: ScanConfig) -> Scanner {
        Scanner { config }
    }

    pub fn config(&self) -> &ScanConfig {
        &self.config
    }

    /// Whether clamd answers `PING` within two seconds. clamd listens only once its signature
    /// database is loaded, so a PONG also means it can scan.
    pub async fn ping(&self) -> bool {
        let reply = tokio::time::timeout(PING_TIMEOUT, async {
            match &self.config.addr {
                ClamdAddr::Tcp(addr) => {
                    clamav_client::tokio::ping(Tcp {
                        host_address: addr.as_str(),
                    })
                    .await
                }
                ClamdAddr::Unix(path) => {
                    clamav_client::tokio::ping(Socket {
                        socket_path: path.as_path(),
                    })
                    .await
                }
            }
        })
        .await;
        let up = matches!(reply, Ok(Ok(ref pong)) if pong.as_slice() == clamav_client::PONG);
        metrics::gauge!(names::SCANNER_AVAILABLE).set(if up { 1.0 } else { 0.0 });
        up
    }

    /// Begins the scan of one object. `length` is the object's length when S3 said it: above
    /// `DOCWORKER_SCAN_MAX_BYTES` nothing is sent, the verdict is "not scanned: too large".
    pub fn start(&self, length: Option<u64>) -> Scan {
        if length.is_some_and(|l| l > self.config.max_bytes) {
            return Scan::decided(self.config.clone(), NotScanned::TooLarge);
        }
        let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(QUEUE_CHUNKS);
        let taken = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&taken);
        let stream = ReceiverStream::new(receiver).inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        });
        let addr = self.config.addr.clone();
        let task = AbortOnDropHandle::new(tokio::spawn(async move {
            match addr {
                ClamdAddr::Tcp(addr) => {
                    clamav_client::tokio::scan_stream(
                        stream,
                        Tcp {
                            host_address: addr.as_str(),
                        },
                        Some(INSTREAM_CHUNK),
                    )
                    .await
                }
                ClamdAddr::Unix(path) => {
                    clamav_client::tokio::scan_stream(
                        stream,
                        Socket {
                            socket_path: path.as_path(),
                        },
                        Some(INSTREAM_CHUNK),
                    )
                    .await
                }
            }
        }));
        Scan {
            config: self.config.clone(),
            state: State::Streaming { sender, task },
            started: Instant::now(),
            fed: 0,
            taken,
        }
    }
}

/// One object's scan in progress: [`feed`](Scan::feed) each chunk in order, then
/// [`finish`](Scan::finish) for the verdict. Dropping it (the object failed elsewhere) aborts
/// the scan and closes the connection.
#[derive(Debug)]
pub struct Scan {
    config: ScanConfig,
    state: State,
    started: Instant,
    /// Bytes fed so far.
    fed: u64,
    /// Bytes the clamd connection has taken from the queue (written to clamd, or being
    /// written): what is fed and not yet taken is the backlog.
    taken: Arc<AtomicU64>,
}

/// The clamd conversation, aborted (connection closed) when dropped.
type ScanTask = AbortOnDropHandle<io::Result<Vec<u8>>>;

#[derive(Debug)]
enum State {
    Streaming {
        sender: mpsc::Sender<io::Result<Bytes>>,
        task: ScanTask,
    },
    /// The connection ended before the stream did (refused, reset, clamd's own error reply):
    /// the task holds why.
    Ended {
        task: ScanTask,
    },
    Decided(NotScanned),
}

impl Scan {
    /// Whether the verdict is known without more chunks (too large, timeout): the reader may
    /// stop reading. A lost connection is not settled yet: the rest may still show the object
    /// too large to scan at all.
    pub fn settled(&self) -> bool {
        matches!(self.state, State::Decided(_))
    }

    fn decided(config: ScanConfig, reason: NotScanned) -> Scan {
        Scan {
            config,
            state: State::Decided(reason),
            started: Instant::now(),
            fed: 0,
            taken: Arc::default(),
        }
    }

    /// Forwards one chunk (a cheap `Bytes` clone of the one the other readers see). Waits while
    /// clamd is behind, at most the scan timeout; a verdict reached early (too large, timeout,
    /// connection gone) makes the rest of the chunks no-ops.
    pub async fn feed(&mut self, chunk: Bytes) {
        if let State::Decided(_) = self.state {
            return;
        }
        self.fed += chunk.len() as u64;
        if self.fed > self.config.max_bytes {
            // S3 announced less than it sends, or announced nothing: never send clamd more
            // than it takes. Counted after a lost connection too: too large is the permanent
            // answer, and takes precedence over a transient one.
            self.abandon(NotScanned::TooLarge);
            return;
        }
        let State::Streaming { sender, .. } = &mut self.state else {
            return;
        };
        match tokio::time::timeout(self.config.timeout, sender.send(Ok(chunk))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => self.connection_ended(),
            Err(_) => self.abandon(NotScanned::Timeout),
        }
    }

    /// Ends the stream and waits for clamd's verdict, at most [`answer_timeout`] for the bytes
    /// fed.
    pub async fn finish(self) -> ScanVerdict {
        let started = self.started;
        let timeout = answer_timeout(self.config.timeout, self.fed);
        let verdict = match self.state {
            State::Decided(reason) => ScanVerdict::NotScanned(reason),
            State::Streaming { sender, task, .. } => {
                // The download is over: what clamd has not taken yet is all the scan still
                // trails it by, at most the queue (and the chunk being written).
                let backlog = self.fed.saturating_sub(self.taken.load(Ordering::Relaxed));
                metrics::histogram!(names::SCAN_BACKLOG_BYTES).record(backlog as f64);
                debug!(
                    fed = self.fed,
                    backlog,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "stream to clamd ended"
                );
                // Dropping the sender ends the stream: the crate sends the terminating chunk.
                drop(sender);
                await_reply(task, timeout).await
            }
            State::Ended { task } => await_reply(task, timeout).await,
        };
        record(&verdict, started.elapsed());
        verdict
    }

    fn connection_ended(&mut self) {
        let previous = std::mem::replace(&mut self.state, State::Decided(NotScanned::Unavailable));
        self.state = match previous {
            State::Streaming { task, .. } => State::Ended { task },
            other => other,
        };
    }

    /// Settles the verdict without clamd's reply; replacing the state drops, and so aborts, the
    /// connection.
    fn abandon(&mut self, reason: NotScanned) {
        self.state = State::Decided(reason);
    }
}

/// How long clamd may take to answer once `fed` bytes are sent: the scan timeout, plus the
/// whole-file scan clamd only starts at the end of the stream, at [`ANSWER_FLOOR_BYTES_PER_SEC`].
/// A clean 1 GiB object is not a timeout for being large.
pub fn answer_timeout(timeout: Duration, fed: u64) -> Duration {
    timeout + Duration::from_secs_f64(fed as f64 / ANSWER_FLOOR_BYTES_PER_SEC as f64)
}

async fn await_reply(task: ScanTask, timeout: Duration) -> ScanVerdict {
    // On timeout the task is dropped with the `timeout` future, which aborts it.
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(Ok(reply))) => match gate::read_reply(&reply) {
            Ok(verdict) => verdict,
            Err(e) => {
                warn!(error = %e, "clamd gave no verdict");
                ScanVerdict::NotScanned(NotScanned::Unavailable)
            }
        },
        Ok(Ok(Err(e))) => {
            warn!(error = %e, "clamd connection failed");
            ScanVerdict::NotScanned(NotScanned::Unavailable)
        }
        Ok(Err(e)) => {
            warn!(error = %e, "clamd connection task failed");
            ScanVerdict::NotScanned(NotScanned::Unavailable)
        }
        Err(_) => ScanVerdict::NotScanned(NotScanned::Timeout),
    }
}

/// Counts the verdict and, for scans that reached clamd, their duration; clamd's availability
/// follows whether it answered.
fn record(verdict: &ScanVerdict, elapsed: Duration) {
    let Some(label) = verdict.label() else {
        return;
    };
    metrics::counter!(names::SCANS, "verdict" => label).increment(1);
    match verdict {
        ScanVerdict::NotScanned(NotScanned::Unavailable) => {
            metrics::gauge!(names::SCANNER_AVAILABLE).set(0.0);
        }
        ScanVerdict::Clean | ScanVerdict::Infected { .. } => {
            metrics::gauge!(names::SCANNER_AVAILABLE).set(1.0);
            metrics::histogram!(names::SCAN_SECONDS).record(elapsed.as_secs_f64());
        }
        _ => {}
    }
    debug!(
        verdict = label,
        elapsed_ms = elapsed.as_millis() as u64,
        "scan finished"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_for_an_answer_grows_with_the_bytes_clamd_must_scan_after_the_stream() {
        let timeout = Duration::from_secs(60);
        assert_eq!(
            answer_timeout(timeout, 0),
            timeout,
            "nothing sent: the timeout"
        );
        assert_eq!(
            answer_timeout(timeout, ANSWER_FLOOR_BYTES_PER_SEC),
            Duration::from_secs(61)
        );
        let gib = answer_timeout(timeout, 1 << 30);
        assert!(
            gib > Duration::from_secs(260) && gib < Duration::from_secs(300),
            "1 GiB: 60 s + 204.8 s, within clamd's MaxScanTime of 300 s: {gib:?}"
        );
    }
}
