//! `docworker-pace`: a TCP proxy that gives a local S3 emulator S3's per-connection shape.
//!
//! moto serves one GET connection at over 1 GB/s; S3 serves one at roughly 85–200 MB/s with
//! 100–200 ms to the first byte, which is why docworker's parallel range reads exist. This kernel
//! has no `fq` qdisc (no `maxrate`) and Debian ships no toxiproxy, so the benchmarks put this proxy
//! between the worker and moto: every accepted connection gets its own upstream connection, its
//! downstream bytes (upstream → client) are paced by a [`pacer::Pacer`] of its own, and each
//! response's first byte waits until the configured delay after its request was seen. The upstream
//! direction (requests) is forwarded as it comes. Pacing by not reading keeps TCP's own flow
//! control in play: the upstream is held back by a full socket, as a distant server is.
//!
//! One JSON line per connection goes to stdout when it closes, and all of them (open ones too) on
//! SIGUSR1; SIGINT or SIGTERM prints them and exits. Usage:
//! `docworker-pace --listen 127.0.0.1:4567 --upstream 127.0.0.1:4566 --rate-mb-s 100 --first-byte-ms 150`

mod pacer;

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use pacer::{Pacer, first_byte_wait};

#[derive(Debug, Parser)]
#[command(
    about = "Paces each proxied TCP connection's downstream bytes, for benchmarks against S3 emulators"
)]
struct Args {
    /// Address to listen on; port 0 picks one (the chosen address is printed on start).
    #[arg(long, default_value = "127.0.0.1:4567")]
    listen: SocketAddr,
    /// Upstream to forward each connection to (moto in the local stack).
    #[arg(long, default_value = "127.0.0.1:4566")]
    upstream: SocketAddr,
    /// Cap on each connection's downstream rate, in MB/s (10^6 bytes): AWS plans on 85–90 MB/s
    /// per S3 GET connection.
    #[arg(long, default_value_t = 100.0, value_parser = positive)]
    rate_mb_s: f64,
    /// Bytes a connection may run ahead of its schedule, in KiB: a TCP burst; it must exceed what
    /// the timer's late wake-ups (about 1 ms, 100 KB at 100 MB/s) would otherwise cost.
    #[arg(long, default_value_t = 256)]
    burst_kib: u64,
    /// Time from a request to its response's first byte, in ms (S3: 100–200 ms for GETs).
    #[arg(long, default_value_t = 150)]
    first_byte_ms: u64,
    /// Size of each read from the upstream, in KiB.
    #[arg(long, default_value_t = 64)]
    chunk_kib: usize,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value * 1e6 >= 1.0 => Ok(value),
        Ok(_) => Err("must be at least one byte per second".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

/// What the proxy knows about one connection, shared by its two directions and the reporter.
#[derive(Debug)]
struct Connection {
    id: u64,
    peer: SocketAddr,
    opened: Instant,
    /// When it was opened, as seconds since the UNIX epoch: for timelines across connections.
    opened_at: f64,
    /// Upstream → client bytes, after pacing.
    down: AtomicU64,
    /// Client → upstream bytes.
    up: AtomicU64,
    /// Requests seen (client bytes after a response had started, or the first ones).
    requests: AtomicU64,
    /// Nanoseconds since `opened` of the first and the latest downstream write, plus one (0: none
    /// yet): the downstream rate is taken over this span, not over the keep-alive idle time.
    first_down: AtomicU64,
    last_down: AtomicU64,
    /// Nanoseconds since `opened`, plus one, of the request whose response has not started (0: none).
    pending_request: AtomicU64,
    closed: AtomicU64,
}

impl Connection {
    fn since_open(&self) -> Duration {
        self.opened.elapsed()
    }

    fn nanos_now(&self) -> u64 {
        u64::try_from(self.since_open().as_nanos()).unwrap_or(u64::MAX)
    }

    /// One JSON line (numbers and an address only, nothing to escape).
    fn report(&self) -> String {
        let down = self.down.load(Ordering::Relaxed);
        let first = self.first_down.load(Ordering::Relaxed);
        let last = self.last_down.load(Ordering::Relaxed);
        let span = if first == 0 {
            0.0
        } else {
            (last - first) as f64 / 1e9
        };
        let rate = if span > 0.0 {
            down as f64 / span / 1e6
        } else {
            0.0
        };
        format!(
            concat!(
                "{{\"conn\":{},\"peer\":\"{}\",\"closed\":{},\"requests\":{},\"down_bytes\":{},",
                "\"up_bytes\":{},\"open_secs\":{:.3},\"down_secs\":{:.3},\"down_mb_s\":{:.1},",
                "\"opened_at\":{:.6},\"first_down_secs\":{:.6},\"last_down_secs\":{:.6}}}"
            ),
            self.id,
            self.peer,
            self.closed.load(Ordering::Relaxed) != 0,
            self.requests.load(Ordering::Relaxed),
            down,
            self.up.load(Ordering::Relaxed),
            self.since_open().as_secs_f64(),
            span,
            rate,
            self.opened_at,
            first.saturating_sub(1) as f64 / 1e9,
            last.saturating_sub(1) as f64 / 1e9,
        )
    }
}

type Registry = Arc<Mutex<Vec<Arc<Connection>>>>;

fn print_all(registry: &Registry) {
    // A poisoned lock only means a reporter panicked mid-print; the list itself is still whole.
    let connections = registry.lock().unwrap_or_else(PoisonError::into_inner);
    for connection in connections.iter() {
        println!("{}", connection.report());
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let registry: Registry = Arc::default();
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // Rounded to whole bytes per second; `positive` made it at least one.
    let rate = NonZeroU64::new((args.rate_mb_s * 1e6).round() as u64).unwrap_or(NonZeroU64::MIN);
    let settings = Arc::new(Settings {
        upstream: args.upstream,
        rate,
        burst: args.burst_kib * 1024,
        first_byte: Duration::from_millis(args.first_byte_ms),
        chunk: args.chunk_kib.max(1) * 1024,
    });
    let mut next_id = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (client, peer) = accepted?;
                next_id += 1;
                let connection = Arc::new(Connection {
                    id: next_id,
                    peer,
                    opened: Instant::now(),
                    opened_at: SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |since| since.as_secs_f64()),
                    down: AtomicU64::new(0),
                    up: AtomicU64::new(0),
                    requests: AtomicU64::new(0),
                    first_down: AtomicU64::new(0),
                    last_down: AtomicU64::new(0),
                    pending_request: AtomicU64::new(0),
                    closed: AtomicU64::new(0),
                });
                registry.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(&connection));
                tokio::spawn(proxy(client, connection, Arc::clone(&settings)));
            }
            _ = usr1.recv() => print_all(&registry),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    print_all(&registry);
    Ok(())
}

#[derive(Debug)]
struct Settings {
    upstream: SocketAddr,
    rate: NonZeroU64,
    burst: u64,
    first_byte: Duration,
    chunk: usize,
}

async fn proxy(client: TcpStream, connection: Arc<Connection>, settings: Arc<Settings>) {
    match TcpStream::connect(settings.upstream).await {
        Ok(upstream) => {
            // Small requests and paced responses: send each segment as soon as it is written.
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (upstream_read, upstream_write) = upstream.into_split();
            let (down, up) = tokio::join!(
                downstream(upstream_read, client_write, &connection, &settings),
                upstream_direction(client_read, upstream_write, &connection),
            );
            for (direction, result) in [("down", down), ("up", up)] {
                if let Err(error) = result {
                    eprintln!("conn {} {direction}: {error}", connection.id);
                }
            }
        }
        Err(error) => eprintln!(
            "conn {}: upstream {}: {error}",
            connection.id, settings.upstream
        ),
    }
    connection.closed.store(1, Ordering::Relaxed);
    println!("{}", connection.report());
}

/// Upstream → client, paced, each response's first byte delayed.
async fn downstream(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    connection: &Connection,
    settings: &Settings,
) -> std::io::Result<()> {
    let mut pacer = Pacer::new(settings.rate, settings.burst);
    let mut buffer = vec![0; settings.chunk];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return to.shutdown().await;
        }
        let pending = connection.pending_request.swap(0, Ordering::AcqRel);
        if pending != 0 {
            let seen = Duration::from_nanos(pending - 1);
            tokio::time::sleep(first_byte_wait(
                seen,
                settings.first_byte,
                connection.since_open(),
            ))
            .await;
        }
        let wait = pacer.reserve(read as u64, connection.since_open());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        to.write_all(&buffer[..read]).await?;
        let now = connection.nanos_now() + 1;
        let _ =
            connection
                .first_down
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        connection.last_down.store(now, Ordering::Relaxed);
        connection.down.fetch_add(read as u64, Ordering::Relaxed);
    }
}

/// Client → upstream, unpaced; marks when each request was first seen, for the first-byte delay.
async fn upstream_direction(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    connection: &Connection,
) -> std::io::Result<()> {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return to.shutdown().await;
        }
        let seen = connection.nanos_now() + 1;
        if connection
            .pending_request
            .compare_exchange(0, seen, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            connection.requests.fetch_add(1, Ordering::Relaxed);
        }
        to.write_all(&buffer[..read]).await?;
        connection.up.fetch_add(read as u64, Ordering::Relaxed);
    }
}
