//! The gate: scanning against a real clamd (the local stack's, started by
//! `infra/local/stack.sh services`, or a private one a test starts on its own port and socket, so
//! that stopping it never touches the shared one) and status tags against moto.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use docworker::config::{ClamdAddr, ScanConfig};
use docworker::process::tag::{self, Target};
use docworker::scanner::Scanner;
use docworker_shared::fixtures::EICAR;
use docworker_shared::gate::{NotScanned, ObjectStatus, SCAN_TAG, STATUS_TAG, ScanVerdict, Tagged};

use crate::helpers::{Stack, env_or};

/// Matched by the custom signature `Docworker.Test.Marker-1` (infra/local/clamav).
pub const MARKER: &[u8] = b"DOCWORKER-TEST-MALWARE-MARKER";

/// The local stack's clamd, over TCP.
pub fn shared_clamd() -> String {
    env_or("DOCWORKER_CLAMD_ADDR", "127.0.0.1:3310")
}

fn signatures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/local/clamav")
}

/// A clamd of the test's own, on a free port and a socket in a temporary directory, loading the
/// project's test signatures; killed when dropped.
pub struct PrivateClamd {
    child: Option<Child>,
    pub port: u16,
    pub socket: PathBuf,
    dir: PathBuf,
    stream_max: String,
}

impl PrivateClamd {
    /// `stream_max` is clamd's `StreamMaxLength` (`1M`, `100M`).
    pub fn start(stream_max: &str) -> PrivateClamd {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("docworker-clamd-{port}"));
        std::fs::create_dir_all(&dir).expect("clamd directory");
        let mut clamd = PrivateClamd {
            child: None,
            port,
            socket: dir.join("clamd.sock"),
            dir,
            stream_max: stream_max.to_owned(),
        };
        clamd.resume();
        clamd
    }

    pub fn tcp(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts clamd (again) on the same port and socket and waits until it answers PING.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "clamd is running");
        let conf = self.dir.join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "DatabaseDirectory {db}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nLocalSocket {socket}\n\
                 FixStaleSocket yes\nForeground yes\nLogFile {log}\nStreamMaxLength {max}\n\
                 MaxFileSize {max}\nMaxScanSize {scan}M\nMaxScanTime 300000\nAlertExceedsMax yes\n",
                db = signatures().display(),
                port = self.port,
                socket = self.socket.display(),
                log = self.dir.join("clamd.log").display(),
                max = self.stream_max,
                // As shipped (infra/local/stack.sh): unpacked content counts, and a 1 GiB scan
                // may outlast clamd's default time limit of 120 s on a loaded machine.
                scan = 2 * self
                    .stream_max
                    .trim_end_matches('M')
                    .parse::<u64>()
                    .expect("StreamMaxLength in M"),
            ),
        )
        .expect("clamd.conf");
        let child = Command::new("/usr/sbin/clamd")
            .arg(format!("--config-file={}", conf.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clamd is installed (infra/local/stack.sh services)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pings(&self.tcp()) {
            assert!(
                Instant::now() < deadline,
                "private clamd did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops clamd: its port and socket refuse connections until [`resume`](Self::resume).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes clamd (SIGSTOP): connections are accepted by the kernel, nothing answers.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().expect("clamd is running").id() as i32;
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) on a child we own and have not reaped.
        unsafe { libc::kill(pid, signal) };
    }
}

impl Drop for PrivateClamd {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen process must run again to die of SIGKILL's reaping promptly.
            // SAFETY: as in `freeze`.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pings(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = Vec::new();
    stream.write_all(b"zPING\0").is_ok()
        && stream.read_to_end(&mut reply).is_ok()
        && reply == b"PONG\0"
}

pub fn scanner(addr: ClamdAddr, max_bytes: u64, timeout: Duration) -> Scanner {
    Scanner::new(ScanConfig {
        addr,
        timeout,
        max_bytes,
        allow_unscanned: false,
    })
}

/// Feeds `bytes` in chunks of `chunk` bytes, as the download would, and returns the verdict.
pub async fn scan(scanner: &Scanner, bytes: &[u8], chunk: usize) -> ScanVerdict {
    let mut scan = scanner.start(Some(bytes.len() as u64));
    for piece in bytes.chunks(chunk) {
        scan.feed(Bytes::copy_from_slice(piece)).await;
    }
    scan.finish().await
}

/// A real DOCX (deflated members, CRCs), whose `word/document.xml` holds `body`: the EICAR string
/// inside it is only found by a scanner that unpacks the archive.
pub fn docx_with(body: &[u8]) -> Vec<u8> {
    use flate2::Compression;
    use flate2::write::DeflateEncoder;
    let members: [(&str, Vec<u8>); 3] = [
        (
            "[Content_Types].xml",
            br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.to_vec(),
        ),
        (
            "_rels/.rels",
            br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#.to_vec(),
        ),
        (
            "word/document.xml",
            [
                &br#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>"#[..],
                body,
                b"</w:t></w:r></w:p></w:body></w:document>",
            ]
            .concat(),
        ),
    ];
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in &members {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).expect("deflate");
        let deflated = encoder.finish().expect("deflate");
        let crc = crc32fast::hash(data);
        let offset = out.len() as u32;
        let header = |signature: &[u8], central: bool| {
            let mut h = signature.to_vec();
            if central {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            h.extend_from_slice(&20u16.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&8u16.to_le_bytes());
            h.extend_from_slice(&[0; 4]);
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(deflated.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                h.extend_from_slice(&[0; 10]);
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(b"PK\x03\x04", false));
        out.extend(&deflated);
        central.extend(header(b"PK\x01\x02", true));
    }
    let directory_offset = out.len() as u32;
    out.extend(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn signature(verdict: &ScanVerdict) -> &str {
    match verdict {
        ScanVerdict::Infected { signature } => signature,
        other => panic!("expected infected, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clamd_finds_eicar_alone_in_a_pdf_and_inside_a_docx_and_passes_clean_files() {
    let scanner = scanner(
        ClamdAddr::Tcp(shared_clamd()),
        100 << 20,
        Duration::from_secs(30),
    );
    let alone = scan(&scanner, EICAR, 7).await;
    assert!(signature(&alone).contains("EICAR"), "{alone:?}");

    let mut pdf = docworker_shared::fixtures::pdf();
    pdf.extend_from_slice(EICAR);
    let in_pdf = scan(&scanner, &pdf, 64 << 10).await;
    assert!(
        signature(&in_pdf).starts_with("Docworker.Test.EICAR_NDB-1"),
        "{in_pdf:?}"
    );

    let docx = docx_with(EICAR);
    assert!(
        !docx.windows(EICAR.len()).any(|w| w == EICAR),
        "the string is deflated: only unpacking finds it"
    );
    let in_docx = scan(&scanner, &docx, 100).await;
    assert!(signature(&in_docx).contains("EICAR"), "{in_docx:?}");

    let marked = [b"notes: ".as_slice(), MARKER, b" end"].concat();
    let custom = scan(&scanner, &marked, 5).await;
    assert!(
        signature(&custom).starts_with("Docworker.Test.Marker-1"),
        "{custom:?}"
    );

    assert_eq!(
        scan(&scanner, &docworker_shared::fixtures::pdf(), 64 << 10).await,
        ScanVerdict::Clean
    );
    assert_eq!(
        scan(&scanner, &docx_with(b"a clean letter"), 64 << 10).await,
        ScanVerdict::Clean
    );
    assert_eq!(scan(&scanner, b"", 1).await, ScanVerdict::Clean);
    assert!(scanner.ping().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scanner_speaks_to_clamd_over_its_unix_socket_too() {
    let clamd = PrivateClamd::start("10M");
    let scanner = scanner(
        ClamdAddr::Unix(clamd.socket.clone()),
        10 << 20,
        Duration::from_secs(30),
    );
    assert!(scanner.ping().await);
    assert!(signature(&scan(&scanner, EICAR, 68).await).contains("EICAR"));
    assert_eq!(scan(&scanner, b"hello", 5).await, ScanVerdict::Clean);
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_above_the_limit_are_not_scanned_too_large_whether_the_worker_or_clamd_says_so() {
    // Announced above the worker's limit: nothing is sent, not even a connection (nobody
    // listens on this port).
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let unused = nobody.local_addr().expect("addr").to_string();
    drop(nobody);
    let limited = scanner(ClamdAddr::Tcp(unused), 1 << 20, Duration::from_secs(5));
    let mut scan_too_large = limited.start(Some(2 << 20));
    scan_too_large.feed(Bytes::from_static(b"ignored")).await;
    assert_eq!(
        scan_too_large.finish().await,
        ScanVerdict::NotScanned(NotScanned::TooLarge)
    );
    // Announced as small but sending more: cut off at the limit, never scanned truncated.
    let mut liar = limited.start(Some(10));
    for _ in 0..3 {
        liar.feed(Bytes::from(vec![b'a'; 512 << 10])).await;
    }
    assert_eq!(
        liar.finish().await,
        ScanVerdict::NotScanned(NotScanned::TooLarge)
    );

    // clamd's own limit below the worker's (a misconfiguration: infra/ checks that the worker's
    // limit is at most clamd's): never a pass. clamd replies `INSTREAM size limit exceeded` and
    // closes the connection; when the reply is read first it is too large, when the next write
    // meets the closed socket first the crate returns only the write's error, and it is
    // unavailable (retried). Which comes first is a race between clamd's close and the client's
    // writes, seen both ways on this machine.
    let clamd = PrivateClamd::start("1M");
    let trusting = scanner(
        ClamdAddr::Tcp(clamd.tcp()),
        8 << 20,
        Duration::from_secs(30),
    );
    let big = vec![b'a'; 3 << 20];
    let verdict = scan(&trusting, &big, 64 << 10).await;
    assert!(
        matches!(
            verdict,
            ScanVerdict::NotScanned(NotScanned::TooLarge | NotScanned::Unavailable)
        ),
        "{verdict:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_clamd_is_unavailable_a_frozen_one_times_out_and_both_recover() {
    let mut clamd = PrivateClamd::start("10M");
    let scanner = scanner(
        ClamdAddr::Tcp(clamd.tcp()),
        10 << 20,
        Duration::from_secs(2),
    );
    assert_eq!(scan(&scanner, b"hello", 5).await, ScanVerdict::Clean);

    clamd.stop();
    assert!(!scanner.ping().await);
    assert_eq!(
        scan(&scanner, EICAR, 68).await,
        ScanVerdict::NotScanned(NotScanned::Unavailable),
        "never a pass"
    );
    clamd.resume();
    assert!(scanner.ping().await);
    assert!(signature(&scan(&scanner, EICAR, 68).await).contains("EICAR"));

    clamd.freeze(true);
    let started = Instant::now();
    let frozen = scan(&scanner, &vec![b'a'; 4 << 20], 64 << 10).await;
    assert_eq!(frozen, ScanVerdict::NotScanned(NotScanned::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the timeout"
    );
    clamd.freeze(false);
    assert_eq!(scan(&scanner, b"hello", 5).await, ScanVerdict::Clean);
}

/// clamd spools an INSTREAM and scans it only once the stream has ended, so a large clean
/// object's answer comes a whole scan after its last byte: the scanner waits for it in proportion
/// to what it sent, not just the scan timeout. CI cost: about 10-15 s (384 MiB, generated as it
/// is fed).
#[tokio::test(flavor = "multi_thread")]
async fn a_large_clean_object_is_not_a_timeout_although_clamd_answers_long_after_its_last_byte() {
    let size: u64 = 384 << 20;
    let clamd = PrivateClamd::start("512M");
    let timeout = Duration::from_secs(1);
    let scanner = scanner(ClamdAddr::Tcp(clamd.tcp()), size, timeout);
    let mut scan = scanner.start(Some(size));
    // Incompressible bytes (xorshift), which clamd cannot skim.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut chunk = vec![0u8; 256 << 10];
    for _ in 0..size / chunk.len() as u64 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        scan.feed(Bytes::copy_from_slice(&chunk)).await;
    }
    let last_byte = Instant::now();
    assert_eq!(scan.finish().await, ScanVerdict::Clean);
    let answered_after = last_byte.elapsed();
    assert!(
        answered_after > timeout,
        "the case this is about: clamd's answer came {answered_after:?} after the last byte, \
         beyond the scan timeout of {timeout:?}"
    );
}

async fn tags_of(stack: &Stack, key: &str, version: Option<&str>) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = stack
        .s3
        .get_object_tagging()
        .bucket(&stack.bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .expect("GetObjectTagging")
        .tag_set
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect();
    tags.sort();
    tags
}

fn pairs(tags: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_merge_with_the_uploaders_on_the_version_read_and_rewriting_them_changes_nothing() {
    let stack = Stack::with(
        "tagmerge",
        crate::helpers::Options {
            notify: false,
            ..Default::default()
        },
    )
    .await;
    stack.enable_versioning().await;
    let key = "reports/letter.pdf";
    let first = stack
        .s3
        .put_object()
        .bucket(&stack.bucket)
        .key(key)
        .body(docworker_shared::fixtures::pdf().into())
        .tagging("project=intake&owner=desk")
        .send()
        .await
        .expect("PutObject")
        .version_id
        .expect("versioned");
    let second = stack
        .put(key, b"newer".to_vec(), None, &[])
        .await
        .version_id;
    let target = Target {
        bucket: &stack.bucket,
        key,
        version_id: Some(&first),
        tags: None,
    };

    let written = tag::tag(
        &stack.s3,
        target,
        ObjectStatus::Finalized,
        Some(&ScanVerdict::Clean),
    )
    .await
    .expect("tag");
    assert_eq!(written, Tagged::Written);
    assert_eq!(
        tags_of(&stack, key, Some(&first)).await,
        pairs(&[
            (STATUS_TAG, "finalized"),
            (SCAN_TAG, "clean"),
            ("project", "intake"),
            ("owner", "desk")
        ])
    );
    assert_eq!(
        tags_of(&stack, key, second.as_deref()).await,
        Vec::new(),
        "only the version read is tagged"
    );

    let again = tag::tag(
        &stack.s3,
        target,
        ObjectStatus::Finalized,
        Some(&ScanVerdict::Clean),
    )
    .await
    .expect("tag again");
    assert_eq!(again, Tagged::Unchanged, "a redelivery rewrites nothing");

    let infected = ScanVerdict::Infected {
        signature: "Docworker.Test.EICAR_NDB-1.UNOFFICIAL".into(),
    };
    tag::tag(&stack.s3, target, ObjectStatus::Infected, Some(&infected))
        .await
        .expect("retag");
    assert_eq!(
        tags_of(&stack, key, Some(&first)).await,
        pairs(&[
            (STATUS_TAG, "infected"),
            (SCAN_TAG, "infected"),
            ("project", "intake"),
            ("owner", "desk")
        ]),
        "docworker's tags replaced, the uploader's kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploader_using_all_ten_tags_loses_the_last_two_and_a_gone_version_is_nothing_to_tag() {
    let stack = Stack::with(
        "tagfull",
        crate::helpers::Options {
            notify: false,
            ..Default::default()
        },
    )
    .await;
    let key = "admin/full.txt";
    let tagging: Vec<String> = (0..10).map(|i| format!("k{i}=v{i}")).collect();
    stack
        .s3
        .put_object()
        .bucket(&stack.bucket)
        .key(key)
        .body(b"plain".to_vec().into())
        .tagging(tagging.join("&"))
        .send()
        .await
        .expect("PutObject with ten tags");
    let target = Target {
        bucket: &stack.bucket,
        key,
        version_id: None,
        tags: None,
    };
    tag::tag(
        &stack.s3,
        target,
        ObjectStatus::Rejected,
        Some(&ScanVerdict::Clean),
    )
    .await
    .expect("tag");
    let tags = tags_of(&stack, key, None).await;
    assert_eq!(tags.len(), 10);
    assert!(tags.contains(&(STATUS_TAG.to_owned(), "rejected".to_owned())));
    assert!(tags.contains(&(SCAN_TAG.to_owned(), "clean".to_owned())));
    let kept = tags.iter().filter(|(k, _)| k.starts_with('k')).count();
    assert_eq!(kept, 8);

    stack.delete_object(key).await;
    assert_eq!(
        tag::tag(
            &stack.s3,
            target,
            ObjectStatus::Rejected,
            Some(&ScanVerdict::Clean)
        )
        .await
        .expect("a gone object is no failure"),
        Tagged::Gone
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_clamd_the_worker_behaves_as_before_and_the_row_says_scan_not_configured() {
    let mut stack = Stack::new("noscan").await;
    stack.start_worker(&[]);
    let key = "reports/unscanned.pdf";
    stack
        .put(
            key,
            docworker_shared::fixtures::pdf(),
            Some("application/pdf"),
            &[],
        )
        .await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(row.scan.as_deref(), Some("not configured"));
    let tags = wait_tags(&stack, key).await;
    assert_eq!(tag(&tags, STATUS_TAG), Some("finalized"));
    assert_eq!(tag(&tags, SCAN_TAG), Some("not-configured"));
    let (_, ready) = stack.http_get("/readyz").await;
    assert!(!ready.contains("scanner"), "{ready}");
}

/// Waits until the object carries a `docworker-status` tag (written right after the row).
pub async fn wait_tags(stack: &Stack, key: &str) -> Vec<(String, String)> {
    let deadline = Instant::now() + crate::helpers::WAIT;
    loop {
        let tags = tags_of(stack, key, None).await;
        if tags.iter().any(|(k, _)| k == STATUS_TAG) {
            return tags;
        }
        assert!(Instant::now() < deadline, "{key} was never tagged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn eicar_as_a_pdf_and_inside_a_docx_is_refused_naming_the_signature_and_tagged_infected() {
    let mut stack = Stack::new("gatepipe").await;
    let clamd = shared_clamd();
    stack.start_worker(&[("DOCWORKER_CLAMD_ADDR", clamd.as_str())]);
    let (pdf, docx, clean) = (
        "reports/invoice.pdf",
        "reports/letter.docx",
        "reports/discharge.pdf",
    );
    stack
        .put(pdf, EICAR.to_vec(), Some("application/pdf"), &[])
        .await;
    stack
        .put(
            docx,
            docx_with(EICAR),
            Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            &[],
        )
        .await;
    stack
        .s3
        .put_object()
        .bucket(&stack.bucket)
        .key(clean)
        .body(docworker_shared::fixtures::pdf().into())
        .content_type("application/pdf")
        .tagging("clinic=north")
        .send()
        .await
        .expect("PutObject with the uploader's tag");

    for key in [pdf, docx] {
        let row = stack.wait_settled(key).await;
        assert_eq!(row.status, "rejected", "{key}");
        let reason = row.rejection_reason.unwrap_or_default();
        assert!(
            reason.starts_with("malware found by the scanner: Docworker.Test.EICAR"),
            "{key}: malware takes precedence over the type mismatch: {reason}"
        );
        assert_eq!(row.scan.as_deref(), Some("infected"));
        let tags = wait_tags(&stack, key).await;
        assert_eq!(tag(&tags, STATUS_TAG), Some("infected"), "{key}");
        assert_eq!(tag(&tags, SCAN_TAG), Some("infected"), "{key}");
    }
    let row = stack.wait_settled(clean).await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(row.scan.as_deref(), Some("clean"));
    let tags = wait_tags(&stack, clean).await;
    assert_eq!(
        tags,
        pairs(&[
            ("clinic", "north"),
            (STATUS_TAG, "finalized"),
            (SCAN_TAG, "clean")
        ]),
        "merged with the uploader's own"
    );
    let log = stack.worker_log();
    assert!(
        log.contains("Docworker.Test.EICAR"),
        "the log names the signature"
    );

    // A redelivered event whose row is settled writes the tags again.
    stack
        .s3
        .delete_object_tagging()
        .bucket(&stack.bucket)
        .key(clean)
        .send()
        .await
        .expect("DeleteObjectTagging");
    let size = docworker_shared::fixtures::pdf().len() as u64;
    let etag = stack
        .s3
        .head_object()
        .bucket(&stack.bucket)
        .key(clean)
        .send()
        .await
        .expect("HeadObject")
        .e_tag
        .expect("ETag");
    stack
        .send(&crate::helpers::created_event(&stack.bucket, clean, size, &etag).to_string())
        .await;
    let tags = wait_tags(&stack, clean).await;
    assert_eq!(tag(&tags, STATUS_TAG), Some("finalized"));

    // So does a replay, for the infected object too.
    stack
        .s3
        .delete_object_tagging()
        .bucket(&stack.bucket)
        .key(pdf)
        .send()
        .await
        .expect("DeleteObjectTagging");
    let (code, stdout, stderr) = crate::operations::docworker(
        &stack,
        &["replay", "--bucket", &stack.bucket, "--prefix", pdf],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let tags = wait_tags(&stack, pdf).await;
    assert_eq!(tag(&tags, STATUS_TAG), Some("infected"));
    let metrics = stack.http_get("/metrics").await.1;
    assert!(
        metrics.contains("docworker_scans_total{verdict=\"infected\"} 3"),
        "{metrics}"
    );
    let (status, ready) = stack.http_get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert!(ready.contains("scanner: true"), "{ready}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_clamd_stopped_nothing_is_finalized_and_objects_finish_once_it_returns() {
    let mut clamd = PrivateClamd::start("10M");
    let mut stack = Stack::new("gatedown").await;
    let addr = clamd.tcp();
    stack.start_worker(&[("DOCWORKER_CLAMD_ADDR", addr.as_str())]);
    stack.wait_log("scanning every object with clamd").await;
    clamd.stop();
    let key = "reports/while-down.pdf";
    stack
        .put(
            key,
            docworker_shared::fixtures::pdf(),
            Some("application/pdf"),
            &[],
        )
        .await;
    stack.wait_log("scanner unavailable: not receiving").await;
    assert!(
        stack.document(key).await.is_none(),
        "never finalized unscanned"
    );
    let (status, ready) = stack.http_get("/readyz").await;
    assert_eq!(status, 503);
    assert!(ready.contains("scanner: false"), "{ready}");
    clamd.resume();
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(row.scan.as_deref(), Some("clean"));
    assert_eq!(
        tag(&wait_tags(&stack, key).await, STATUS_TAG),
        Some("finalized")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_above_the_scan_limit_is_rejected_unless_unscanned_objects_are_allowed() {
    let mut stack = Stack::new("gatebig").await;
    let clamd = shared_clamd();
    let key = "reports/big.txt";
    let body = vec![b'a'; 64 << 10];
    stack.start_worker(&[
        ("DOCWORKER_CLAMD_ADDR", clamd.as_str()),
        ("DOCWORKER_SCAN_MAX_BYTES", "4096"),
    ]);
    stack.put(key, body.clone(), Some("text/plain"), &[]).await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "rejected");
    assert_eq!(
        row.rejection_reason.as_deref(),
        Some("not scanned (too large), and unscanned objects are not finalized")
    );
    assert_eq!(row.scan.as_deref(), Some("not scanned: too large"));
    let tags = wait_tags(&stack, key).await;
    assert_eq!(tag(&tags, STATUS_TAG), Some("rejected"));
    assert_eq!(tag(&tags, SCAN_TAG), Some("not-scanned"));
    stack.stop_worker();

    stack.start_worker(&[
        ("DOCWORKER_CLAMD_ADDR", clamd.as_str()),
        ("DOCWORKER_SCAN_MAX_BYTES", "4096"),
        ("DOCWORKER_SCAN_ALLOW_UNSCANNED", "true"),
    ]);
    let allowed = "reports/big-allowed.txt";
    stack.put(allowed, body, Some("text/plain"), &[]).await;
    let row = stack.wait_settled(allowed).await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(row.scan.as_deref(), Some("not scanned: too large"));
    let tags = wait_tags(&stack, allowed).await;
    assert_eq!(tag(&tags, STATUS_TAG), Some("finalized"));
    assert_eq!(tag(&tags, SCAN_TAG), Some("not-scanned"));
}
