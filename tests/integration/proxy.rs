//! An HTTP/1.1 proxy between the worker and moto that faults the ranged GETs of one object: a
//! status instead of the answer, a body cut midway, or an answer held back until the test lets
//! it go (to change the object between two ranges). A fault is keyed by the `Range` it answers
//! (ranges are asked for concurrently, so their order of arrival is not theirs), or by `GET`
//! for a GetObject of the whole object, and fires once.
//! Every request is forwarded on a connection of its own to moto, which closes each after its
//! answer anyway; every GET of the target is logged with its query, its `Range` and the status
//! the client got.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

pub enum Fault {
    /// Answer this status with an S3 error body, without asking moto.
    Status(u16),
    /// Forward the answer's head and this many bytes of its body, then close the connection.
    Cut(usize),
    /// Forward the answer with one bit of its body's byte at this offset flipped: bytes
    /// corrupted in flight, after S3 computed its checksums.
    Flip(usize),
    /// Signal `held`, wait for `release`, then forward.
    Hold {
        held: Arc<Notify>,
        release: Arc<Notify>,
    },
}

/// One ranged GET of the target, as the proxy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranged {
    /// The query string (`versionId=…`), empty without one.
    pub query: String,
    /// The `Range` header's value.
    pub range: String,
    /// What the client got: moto's status, or the fault's.
    pub status: u16,
}

pub struct Proxy {
    pub url: String,
    log: Arc<Mutex<Vec<Ranged>>>,
    whole_gets: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// A proxy to moto faulting the GETs of the path `/{bucket}/{key}` whose `Range` is the
    /// first of a pair in `faults`, once each.
    pub async fn start(target: String, faults: Vec<(String, Fault)>) -> Proxy {
        let upstream = crate::helpers::endpoint()
            .trim_start_matches("http://")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let whole_gets = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            upstream,
            target,
            faults: Mutex::new(faults.into_iter().collect()),
            log: log.clone(),
            whole_gets: whole_gets.clone(),
        });
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, shared.clone()));
            }
        });
        Proxy {
            url,
            log,
            whole_gets,
        }
    }

    /// The ranged GETs of the target so far, in the order they were seen.
    pub fn ranged(&self) -> Vec<Ranged> {
        self.log.lock().unwrap().clone()
    }

    /// GetObjects of the target without a `Range` (by their query: `versionId=…`, the SDK's
    /// `x-id=GetObject`, or none; sub-resources such as `?tagging` are not the object's bytes).
    pub fn whole_gets(&self) -> Vec<String> {
        self.whole_gets.lock().unwrap().clone()
    }
}

struct Shared {
    upstream: String,
    target: String,
    faults: Mutex<HashMap<String, Fault>>,
    log: Arc<Mutex<Vec<Ranged>>>,
    whole_gets: Arc<Mutex<Vec<String>>>,
}

async fn serve(mut client: TcpStream, shared: Arc<Shared>) {
    while let Some(head) = read_head(&mut client).await {
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut words = text.split_whitespace();
        let (method, uri) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let range = header(&head, "range");
        let mut body =
            vec![0u8; header(&head, "content-length").map_or(0, |v| v.parse().unwrap_or(0))];
        if client.read_exact(&mut body).await.is_err() {
            return;
        }
        let object = query
            .split('&')
            .all(|p| p.is_empty() || p == "x-id=GetObject" || p.starts_with("versionId="));
        let target = method == "GET" && path == shared.target && object;
        let (fault, entry) = match (&range, target) {
            (Some(range), true) => {
                let mut log = shared.log.lock().unwrap();
                log.push(Ranged {
                    query: query.to_owned(),
                    range: range.clone(),
                    status: 0,
                });
                (
                    shared.faults.lock().unwrap().remove(range),
                    Some(log.len() - 1),
                )
            }
            (None, true) => {
                shared.whole_gets.lock().unwrap().push(query.to_owned());
                (shared.faults.lock().unwrap().remove("GET"), None)
            }
            _ => (None, None),
        };
        let record = |status: u16| {
            if let Some(entry) = entry {
                shared.log.lock().unwrap()[entry].status = status;
            }
        };
        let (mut cut, mut flip) = (None, None);
        match fault {
            Some(Fault::Status(status)) => {
                record(status);
                // The code S3 sends with the status: the SDK retries an `InternalError` itself.
                let code = match status {
                    404 => "NoSuchKey",
                    412 => "PreconditionFailed",
                    _ => "InternalError",
                };
                let error = format!(
                    "<Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
                );
                let answer = format!(
                    "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{error}",
                    error.len()
                );
                let _ = client.write_all(answer.as_bytes()).await;
                return;
            }
            Some(Fault::Hold { held, release }) => {
                held.notify_one();
                release.notified().await;
            }
            Some(Fault::Cut(after)) => cut = Some(after),
            Some(Fault::Flip(at)) => flip = Some(at as u64),
            None => {}
        }
        let Ok(mut server) = TcpStream::connect(&shared.upstream).await else {
            return;
        };
        if server.write_all(&head).await.is_err() || server.write_all(&body).await.is_err() {
            return;
        }
        let Some(answer) = read_head(&mut server).await else {
            return;
        };
        let status = String::from_utf8_lossy(&answer)
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        record(status);
        let length: u64 = if method == "HEAD" {
            0
        } else {
            header(&answer, "content-length").map_or(0, |v| v.parse().unwrap_or(0))
        };
        if client.write_all(&answer).await.is_err() {
            return;
        }
        let forward = cut.map_or(length, |after| length.min(after as u64));
        let copied = match flip.filter(|at| *at < forward) {
            Some(at) => copy_flipping(&mut server, &mut client, forward, at).await,
            None => tokio::io::copy(&mut (&mut server).take(forward), &mut client)
                .await
                .map(drop),
        };
        if cut.is_some() || copied.is_err() {
            return;
        }
    }
}

/// Copies `length` bytes with the byte at `at` flipped.
async fn copy_flipping(
    server: &mut TcpStream,
    client: &mut TcpStream,
    length: u64,
    at: u64,
) -> std::io::Result<()> {
    tokio::io::copy(&mut server.take(at), client).await?;
    let mut byte = [0u8; 1];
    server.read_exact(&mut byte).await?;
    client.write_all(&[byte[0] ^ 0x01]).await?;
    tokio::io::copy(&mut server.take(length - at - 1), client).await?;
    Ok(())
}

/// One HTTP message head, through the blank line; `None` when the peer closed.
pub async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// A header's value in a message head, by case-insensitive name.
pub fn header(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head).lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}
