//! Ranged reads of large objects, by the real worker against moto through a proxy that faults
//! single ranges (`proxy.rs`). The threshold and the range size are lowered so that objects of a
//! few MiB are read as a dozen ranges, and the rate below which the GetObject hands over to ranges
//! is raised so that it always does: moto serves one connection faster than any S3 connection,
//! and reads an object's whole value for every ranged GET (docs/performance.md §10), which makes
//! ranges of large objects slow here, not on S3. The GetObject reads at least its first range
//! and the next one before ranges take over (three or four ranges of 256 KiB, as its chunks
//! fall), so the faults are set on ranges from the seventh on. With `always` (the setting for
//! S3) nothing is measured: ranges from the second on are asked for with the GetObject.

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use tokio::sync::Notify;

use crate::helpers::{Options, Stack, created_event, sha256_hex};
use crate::integrity::{MIB, big_pdf, finalized_as, multipart, s3_without_checksums};
use crate::proxy::{Fault, Proxy};

const RANGE: usize = 256 << 10;

/// Objects from 1 MiB read in 256 KiB ranges, four in flight, two ranges' worth read ahead,
/// however fast the GetObject's connection: it is measured, and no connection reaches 1 PB/s.
fn ranged(proxy: &Proxy) -> Vec<(&'static str, String)> {
    with_rate(proxy, "1000000000000000")
}

/// As [`ranged`], but `always`: not measured, the ranges asked for with the GetObject.
fn always(proxy: &Proxy) -> Vec<(&'static str, String)> {
    with_rate(proxy, "always")
}

fn with_rate(proxy: &Proxy, rate: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_S3", proxy.url.clone()),
        ("DOCWORKER_RANGED_THRESHOLD_BYTES", MIB.to_string()),
        ("DOCWORKER_RANGED_BELOW_BYTES_PER_SEC", rate.into()),
        ("DOCWORKER_RANGE_BYTES", RANGE.to_string()),
        ("DOCWORKER_RANGE_WINDOW", "4".into()),
        ("DOCWORKER_RANGE_BUFFER_BYTES", (2 * RANGE).to_string()),
    ]
}

/// As [`ranged`], but with a rate of 0 below which to hand over: never split.
fn never_split(proxy: &Proxy) -> Vec<(&'static str, String)> {
    with_rate(proxy, "0")
}

fn start(stack: &mut Stack, env: &[(&'static str, String)]) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    stack.start_worker(&env);
}

fn target(stack: &Stack, key: &str) -> String {
    format!("/{}/{key}", stack.bucket)
}

fn start_of(range: &str) -> u64 {
    range
        .trim_start_matches("bytes=")
        .split('-')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("bytes=a-b")
}

/// The ranges asked for by the `Range` they asked for, with the statuses they got, in order.
fn statuses(proxy: &Proxy, range: &str) -> Vec<u16> {
    proxy
        .ranged()
        .iter()
        .filter(|r| r.range == range)
        .map(|r| r.status)
        .collect()
}

/// The index of the first range answered from a range boundary: where the GetObject handed over
/// (a range resumed from a cut connection starts elsewhere; ranges refused or dropped unread
/// were not read).
fn handed_over_at(proxy: &Proxy) -> usize {
    let cut = proxy
        .ranged()
        .iter()
        .filter(|r| r.status == 206)
        .map(|r| start_of(&r.range))
        .filter(|start| start % RANGE as u64 == 0)
        .min()
        .expect("ranges were asked for");
    let at = cut as usize / RANGE;
    assert!(
        (3..=4).contains(&at),
        "the GetObject read its probe and one range more: handed over at range {at}"
    );
    at
}

/// Every range of `len` bytes, in order, as `Range` headers.
fn ranges_of(len: usize) -> Vec<String> {
    (0..len.div_ceil(RANGE))
        .map(|i| {
            let start = i * RANGE;
            format!("bytes={start}-{}", (start + RANGE).min(len) - 1)
        })
        .collect()
}

/// The same uploads read whole by one worker and by ranges by another: each finalizes with the
/// same SHA-256 and the same integrity class — the full-object CRC32 the SDK validates on a whole
/// GET is computed by docworker over the ranges, and the multipart ETag's part MD5s are cut from
/// ranges that do not fall on part boundaries.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_read_by_ranges_finalizes_with_the_same_sha256_and_integrity_as_one_read_whole() {
    let key_single = "reports/full-crc32.pdf";
    let key_multi = "reports/multipart.pdf";
    let single = big_pdf(3 * MIB + 12_345);
    let multi = big_pdf(11 * MIB + 7);
    let mut rows = Vec::new();
    for by_ranges in [false, true] {
        let mut stack = Stack::new(if by_ranges { "ranged" } else { "whole" }).await;
        let proxy = Proxy::start(target(&stack, key_multi), vec![]).await;
        let mut env = ranged(&proxy);
        if !by_ranges {
            env.retain(|(name, _)| *name == "AWS_ENDPOINT_URL_S3");
        }
        start(&mut stack, &env);
        stack
            .put(key_single, single.clone(), Some("application/pdf"), &[])
            .await;
        finalized_as(&stack, key_single, &single, "crc32:s3").await;
        let s3 = s3_without_checksums().await;
        multipart(
            &s3,
            &stack.bucket,
            key_multi,
            &multi,
            &[5 * MIB, 5 * MIB, MIB + 7],
        )
        .await;
        finalized_as(&stack, key_multi, &multi, "md5-multipart-etag:s3").await;
        // moto sends two events for one multipart upload (`Put` and `CompleteMultipartUpload`;
        // S3 sends the latter alone): each is read.
        let count = |message: &str| {
            let quoted = format!("\"{message}\"");
            stack
                .worker_log()
                .lines()
                .filter(|l| l.contains(&quoted) && l.contains(key_multi))
                .count()
        };
        let reads = count("processing object");
        let deadline = std::time::Instant::now() + crate::helpers::WAIT;
        while count("object settled") < reads {
            assert!(
                std::time::Instant::now() < deadline,
                "{reads} reads never settled"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(proxy.whole_gets().len(), reads, "{:?}", proxy.whole_gets());
        if by_ranges {
            // Each read hands over where its own GetObject's chunks fell, at range 3 or 4.
            let every = ranges_of(multi.len());
            let seen = proxy.ranged();
            assert!(
                seen.iter()
                    .all(|r| every.contains(&r.range) && r.status == 206)
            );
            for (i, range) in every.iter().enumerate() {
                let asked = statuses(&proxy, range).len();
                let expected = match i {
                    0..3 => 0..=0,
                    3 => 0..=reads,
                    _ => reads..=reads,
                };
                assert!(
                    expected.contains(&asked),
                    "{range}: asked for {asked} times"
                );
            }
        } else {
            assert!(proxy.ranged().is_empty());
        }
        for key in [key_single, key_multi] {
            let row = stack.document(key).await.expect("row");
            rows.push((key, row.sha256, row.integrity));
        }
    }
    assert_eq!(rows[..2], rows[2..], "whole and ranged reads agree");
}

/// The GetObject's connection is cut before ranges take over, one range's connection is cut
/// midway and another answers 500: each is asked for again on its own, from the byte it reached
/// (the GetObject's rest as a range, pinned like the others), and the object finalizes with its
/// own digest.
#[tokio::test(flavor = "multi_thread")]
async fn a_range_that_fails_midway_is_retried_alone() {
    let mut stack = Stack::new("range-retry").await;
    let key = "reports/retried.pdf";
    let bytes = big_pdf(3 * MIB + 100);
    let every = ranges_of(bytes.len());
    let (cut, failed) = (every[6].clone(), every[8].clone());
    let faults = vec![
        ("GET".to_owned(), Fault::Cut(1000)),
        (cut.clone(), Fault::Cut(1000)),
        (failed.clone(), Fault::Status(500)),
    ];
    let proxy = Proxy::start(target(&stack, key), faults).await;
    start(&mut stack, &ranged(&proxy));
    let s3 = s3_without_checksums().await;
    s3.put_object()
        .bucket(&stack.bucket)
        .key(key)
        .content_type("application/pdf")
        .body(ByteStream::from(bytes.clone()))
        .send()
        .await
        .expect("PutObject");
    finalized_as(&stack, key, &bytes, "md5-etag:s3").await;

    assert_eq!(proxy.whole_gets().len(), 1, "one GetObject");
    let rest = format!("bytes=1000-{}", bytes.len() - 1);
    assert_eq!(
        statuses(&proxy, &rest),
        [206],
        "the GetObject, cut, resumed from its 1000th byte"
    );
    let resumed = format!("bytes={}-{}", 6 * RANGE + 1000, 7 * RANGE - 1);
    assert_eq!(
        statuses(&proxy, &cut),
        [206],
        "the cut range was answered, then cut"
    );
    assert_eq!(
        statuses(&proxy, &resumed),
        [206],
        "and resumed from its 1000th byte"
    );
    assert_eq!(
        statuses(&proxy, &failed),
        [500, 206],
        "the range answered 500, asked again"
    );
    let at = handed_over_at(&proxy);
    for (i, range) in every.iter().enumerate() {
        if *range != cut && *range != failed {
            let once: &[u16] = if i < at { &[] } else { &[206] };
            assert_eq!(statuses(&proxy, range), once, "{range}");
        }
    }
    let seen = proxy.ranged();
    assert_eq!(
        seen.len(),
        every.len() - at + 3,
        "no other request: {seen:?}"
    );
}

/// A large object whose GetObject keeps up (here: a rate of 0 below which to hand over) is read
/// over that one connection, measured and never split.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_object_whose_connection_keeps_up_is_read_over_its_one_get() {
    let mut stack = Stack::new("range-keeps-up").await;
    let key = "reports/fast.pdf";
    let bytes = big_pdf(3 * MIB + 1);
    let proxy = Proxy::start(target(&stack, key), vec![]).await;
    start(&mut stack, &never_split(&proxy));
    stack
        .put(key, bytes.clone(), Some("application/pdf"), &[])
        .await;
    // CRC32 is checked twice here: by the SDK over the whole body, and by docworker, which
    // cannot know at the start that no range will be needed.
    finalized_as(&stack, key, &bytes, "crc32:s3").await;
    assert_eq!(proxy.whole_gets().len(), 1);
    assert_eq!(proxy.ranged(), Vec::new(), "no range asked for");
    let (_, metrics) = stack.http_get("/metrics").await;
    assert!(
        metrics.contains("docworker_s3_ranged_objects_total 0"),
        "not counted as ranged: {metrics}"
    );
}

fn hold() -> (Arc<Notify>, Arc<Notify>, Fault) {
    let (held, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let fault = Fault::Hold {
        held: held.clone(),
        release: release.clone(),
    };
    (held, release, fault)
}

async fn notified(notify: &Notify, what: &str) {
    tokio::time::timeout(std::time::Duration::from_secs(60), notify.notified())
        .await
        .unwrap_or_else(|_| panic!("{what} was never asked for"));
}

/// A 256 MiB DICOM object read in 16 MiB ranges, eight in flight, with a read-ahead budget of
/// 32 MiB: the worker's peak RSS stays within what the single stream is allowed (64 MiB, as in
/// `delivery`) plus the budget and the ranges' own buffers — the terms the start-up memory bound
/// adds for ranged reads — and the object is read once, each range once.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_object_read_by_ranges_stays_within_the_read_ahead_budget() {
    use docworker::config::PER_RANGE_BYTES;
    let mut stack = Stack::new("range-memory").await;
    let key = "medical/ranged.dcm";
    let bytes = crate::delivery::large_dicom(256);
    let proxy = Proxy::start(target(&stack, key), vec![]).await;
    let (range, window, budget) = (16u64 << 20, 8u64, 32u64 << 20);
    start(
        &mut stack,
        &[
            ("AWS_ENDPOINT_URL_S3", proxy.url.clone()),
            ("DOCWORKER_RANGED_BELOW_BYTES_PER_SEC", "always".into()),
            ("DOCWORKER_RANGE_BYTES", range.to_string()),
            ("DOCWORKER_RANGE_WINDOW", window.to_string()),
            ("DOCWORKER_RANGE_BUFFER_BYTES", budget.to_string()),
        ],
    );
    let sha256 = sha256_hex(&bytes);
    let len = bytes.len() as u64;
    stack.put(key, bytes, None, &[]).await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(row.sha256.as_deref(), Some(sha256.as_str()));
    // The GetObject reads to the first range boundary, where the ranges asked for with it
    // start.
    assert_eq!(proxy.whole_gets().len(), 1);
    assert_eq!(proxy.ranged().len() as u64, len.div_ceil(range) - 1);
    let peak = stack.worker_peak_rss();
    let allowed = (64 << 20) + budget + window * PER_RANGE_BYTES;
    assert!(
        peak < allowed,
        "peak RSS {} MiB, allowed {} MiB",
        peak >> 20,
        allowed >> 20
    );
    eprintln!("ranged 256 MiB: worker peak RSS {} MiB", peak >> 20);
}

/// The SDK validates S3's full-object checksum only on a whole GET: on a ranged read docworker
/// computes it over the ranges itself. A range corrupted in flight fails that check (retryable,
/// as the SDK's own would be), and the retry, reading clean bytes, finalizes the object with
/// S3's CRC32.
#[tokio::test(flavor = "multi_thread")]
async fn a_range_corrupted_in_flight_fails_the_full_object_checksum_and_is_read_again() {
    let mut stack = Stack::new("range-flip").await;
    let key = "reports/flipped.pdf";
    let bytes = big_pdf(3 * MIB + 5);
    let flipped = ranges_of(bytes.len())[6].clone();
    let proxy = Proxy::start(
        target(&stack, key),
        vec![(flipped.clone(), Fault::Flip(777))],
    )
    .await;
    start(&mut stack, &ranged(&proxy));
    stack
        .put(key, bytes.clone(), Some("application/pdf"), &[])
        .await;
    finalized_as(&stack, key, &bytes, "crc32:s3").await;
    assert!(
        stack
            .worker_log()
            .contains("the crc32 of the bytes read does not match S3's full-object checksum"),
        "the corrupted read was caught"
    );
    let reads_of_flipped = proxy.ranged().iter().filter(|r| r.range == flipped).count();
    assert_eq!(reads_of_flipped, 2, "read again, clean, by the retry");
}

/// A large object read whole over its one GetObject (never split here) is read to its body's
/// end, where the SDK checks S3's full-object CRC32: bytes corrupted in flight fail the read as
/// retryable, and the message's next delivery finalizes the object from clean bytes.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_object_read_whole_and_corrupted_in_flight_fails_the_sdks_check_and_is_read_again()
{
    let mut stack = Stack::new("range-whole-flip").await;
    let key = "reports/whole-flipped.pdf";
    let bytes = big_pdf(3 * MIB + 5);
    let proxy = Proxy::start(
        target(&stack, key),
        vec![("GET".to_owned(), Fault::Flip(2 * MIB))],
    )
    .await;
    start(&mut stack, &never_split(&proxy));
    stack
        .put(key, bytes.clone(), Some("application/pdf"), &[])
        .await;
    finalized_as(&stack, key, &bytes, "crc32:s3").await;
    assert_eq!(proxy.whole_gets().len(), 2, "read again whole, clean");
    assert_eq!(proxy.ranged(), Vec::new(), "never split");
    let failed = format!("failed at byte {} after 1 attempts", bytes.len());
    assert!(
        stack.worker_log().contains(&failed),
        "the first read failed at its end, retryable"
    );
}

/// A worker reading `reports/changed.pdf` by ranges, with the seventh range's answer held back
/// until the test has changed the object: `first` is uploaded, `second` is what overwrites it.
struct Overwrite {
    stack: Stack,
    key: &'static str,
    proxy: Proxy,
    held: Arc<Notify>,
    release: Arc<Notify>,
    first: Vec<u8>,
    second: Vec<u8>,
}

impl Overwrite {
    /// Events are the test's to send (`notify: false`), so that it says which upload each is of.
    async fn start(name: &str, versioned: bool) -> Overwrite {
        let options = Options {
            notify: false,
            ..Options::default()
        };
        let mut stack = Stack::with(name, options).await;
        if versioned {
            stack.enable_versioning().await;
        }
        let key = "reports/changed.pdf";
        let (held, release, hold) = hold();
        let seventh = ranges_of(3 * MIB)[6].clone();
        let proxy = Proxy::start(target(&stack, key), vec![(seventh, hold)]).await;
        start(&mut stack, &ranged(&proxy));
        let first = big_pdf(3 * MIB);
        let mut second = first.clone();
        second[2 * MIB] ^= 0x20;
        Overwrite {
            stack,
            key,
            proxy,
            held,
            release,
            first,
            second,
        }
    }

    /// Uploads `first` and sends its event (with its version id when there is one), overwrites
    /// it with `second` while the seventh range is held, then lets the range go. Returns the
    /// uploads' ETags and version ids.
    async fn overwrite_while_read(&self) -> [(String, Option<String>); 2] {
        let put = |bytes: &[u8]| {
            let bytes = bytes.to_vec();
            async move {
                let put = self
                    .stack
                    .put(self.key, bytes, Some("application/pdf"), &[])
                    .await;
                (
                    put.e_tag().unwrap().to_owned(),
                    put.version_id().map(str::to_owned),
                )
            }
        };
        let first = put(&self.first).await;
        let mut event = created_event(&self.stack.bucket, self.key, 3 * MIB as u64, &first.0);
        if let Some(version) = &first.1 {
            event["Records"][0]["s3"]["object"]["versionId"] = version.clone().into();
        }
        self.stack.send(&event.to_string()).await;
        notified(&self.held, "the seventh range").await;
        let second = put(&self.second).await;
        self.release.notify_one();
        [first, second]
    }
}

/// On an unversioned bucket only the ETag pins the bytes: the key overwritten between two ranges
/// makes the next range's `If-Match` fail (412, as on AWS), and the object is settled as
/// superseded — never finalized from a mix of the two uploads. The new upload's event then
/// finalizes it from its own bytes.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_overwritten_between_ranges_is_superseded_never_finalized_from_mixed_bytes() {
    let test = Overwrite::start("range-overwrite", false).await;
    let [_, (etag, _)] = test.overwrite_while_read().await;
    let stack = &test.stack;
    stack.wait_log("superseded").await;
    assert!(
        stack.document(test.key).await.is_none(),
        "nothing was written for the overwritten upload"
    );
    assert!(
        test.proxy.ranged().iter().any(|r| r.status == 412),
        "a range was refused by If-Match: {:?}",
        test.proxy.ranged()
    );
    let event = created_event(&stack.bucket, test.key, 3 * MIB as u64, &etag);
    stack.send(&event.to_string()).await;
    let row = stack.wait_settled(test.key).await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(
        row.sha256.as_deref(),
        Some(sha256_hex(&test.second).as_str())
    );
}

/// On a versioned bucket every range is pinned to the announced version as well: a new version
/// written between two ranges changes nothing that is read, and the row is the announced
/// version's, with its digest.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_versioned_bucket_every_range_reads_the_announced_version() {
    let test = Overwrite::start("range-version", true).await;
    let [(_, version), _] = test.overwrite_while_read().await;
    let version = version.expect("a version id");
    let row = test.stack.wait_settled(test.key).await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(row.version_id.as_deref(), Some(version.as_str()));
    assert_eq!(
        row.sha256.as_deref(),
        Some(sha256_hex(&test.first).as_str())
    );
    let seen = test.proxy.ranged();
    let at = handed_over_at(&test.proxy);
    assert_eq!(seen.len(), ranges_of(3 * MIB).len() - at, "{seen:?}");
    let pinned = format!("versionId={version}");
    assert!(
        seen.iter()
            .all(|r| r.status == 206 && r.query.contains(&pinned)),
        "every range pinned to the announced version: {seen:?}"
    );
    let whole = test.proxy.whole_gets();
    assert!(
        whole.len() == 1 && whole[0].contains(&pinned),
        "so is the GetObject: {whole:?}"
    );
}

/// With `always`, the ranges are asked for while the GetObject waits for its answer (held here
/// by the proxy): from the second range on, pinned to the event's ETag, so their first bytes are
/// not waited for after the GetObject's. The object finalizes with its own digest and S3's CRC32,
/// each range read once.
#[tokio::test(flavor = "multi_thread")]
async fn with_always_the_ranges_are_asked_for_with_the_getobject() {
    let mut stack = Stack::new("range-ahead").await;
    let key = "reports/ahead.pdf";
    let bytes = big_pdf(3 * MIB + 9);
    let (held, release, hold) = hold();
    let proxy = Proxy::start(target(&stack, key), vec![("GET".to_owned(), hold)]).await;
    start(&mut stack, &always(&proxy));
    stack
        .put(key, bytes.clone(), Some("application/pdf"), &[])
        .await;
    notified(&held, "the GetObject").await;
    let deadline = std::time::Instant::now() + crate::helpers::WAIT;
    while proxy.ranged().len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "ranges asked for while the GetObject was held: {:?}",
            proxy.ranged()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let every = ranges_of(bytes.len());
    let mut asked: Vec<u64> = proxy.ranged().iter().map(|r| start_of(&r.range)).collect();
    asked.sort_unstable();
    let second_on: Vec<u64> = (1..5).map(|i| (i * RANGE) as u64).collect();
    assert_eq!(asked, second_on, "the window's four, from the second range");
    release.notify_one();
    finalized_as(&stack, key, &bytes, "crc32:s3").await;
    assert_eq!(proxy.whole_gets().len(), 1);
    for range in &every[1..] {
        assert_eq!(statuses(&proxy, range), [206], "{range}");
    }
    assert_eq!(proxy.ranged().len(), every.len() - 1, "no other request");
    let (_, metrics) = stack.http_get("/metrics").await;
    assert!(
        metrics.contains("docworker_s3_ranged_objects_total 1"),
        "counted as ranged: {metrics}"
    );
}

/// Ranges asked for with the GetObject are pinned to the event's ETag. When the GetObject (pinned
/// to the event's version) answers with another (an event replayed with a stale ETag, say), they
/// are dropped unread, never mixed with its bytes: the object is read by ranges pinned to what
/// the GetObject returned, and finalizes as the announced version.
#[tokio::test(flavor = "multi_thread")]
async fn ranges_asked_for_an_etag_the_getobject_does_not_return_are_dropped() {
    let options = Options {
        notify: false,
        ..Options::default()
    };
    let mut stack = Stack::with("range-ahead-etag", options).await;
    stack.enable_versioning().await;
    let key = "reports/stale-etag.pdf";
    let bytes = big_pdf(3 * MIB + 3);
    let proxy = Proxy::start(target(&stack, key), vec![]).await;
    start(&mut stack, &always(&proxy));
    let put = stack
        .put(key, bytes.clone(), Some("application/pdf"), &[])
        .await;
    let version = put.version_id().expect("a version id").to_owned();
    let mut event = created_event(
        &stack.bucket,
        key,
        bytes.len() as u64,
        "0123456789abcdef0123456789abcdef",
    );
    event["Records"][0]["s3"]["object"]["versionId"] = version.clone().into();
    stack.send(&event.to_string()).await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(row.version_id.as_deref(), Some(version.as_str()));
    assert_eq!(row.sha256.as_deref(), Some(sha256_hex(&bytes).as_str()));
    assert_eq!(proxy.whole_gets().len(), 1, "one GetObject");
    let every = ranges_of(bytes.len());
    let mut served: Vec<u64> = proxy
        .ranged()
        .iter()
        .filter(|r| r.status == 206)
        .map(|r| start_of(&r.range))
        .collect();
    served.sort_unstable();
    let at = handed_over_at(&proxy);
    let expected: Vec<u64> = (at..every.len()).map(|i| (i * RANGE) as u64).collect();
    assert_eq!(served, expected, "each range read once, by the second pin");
    assert!(
        proxy
            .ranged()
            .iter()
            .all(|r| r.status == 206 || r.status == 412 || r.status == 0),
        "the first ranges failed If-Match or were dropped: {:?}",
        proxy.ranged()
    );
}

/// The GetObject's connection cut while its first MiB is measured, and its rest then refused
/// with a 412 (on AWS: the key overwritten since, failing the range's `If-Match`): the bytes
/// measured are never finalized on their own; the event is settled as superseded and no row is
/// written.
#[tokio::test(flavor = "multi_thread")]
async fn a_getobject_that_fails_while_measured_settles_the_object_by_its_answer() {
    let mut stack = Stack::new("range-measure-fails").await;
    let key = "reports/measure-fails.pdf";
    let bytes = big_pdf(3 * MIB + 11);
    let rest = format!("bytes=1000-{}", bytes.len() - 1);
    let faults = vec![
        ("GET".to_owned(), Fault::Cut(1000)),
        (rest.clone(), Fault::Status(412)),
    ];
    let proxy = Proxy::start(target(&stack, key), faults).await;
    start(&mut stack, &ranged(&proxy));
    stack
        .put(key, bytes.clone(), Some("application/pdf"), &[])
        .await;
    stack.wait_log("\"outcome\":\"superseded\"").await;
    assert_eq!(statuses(&proxy, &rest), [412], "the rest, refused");
    assert_eq!(proxy.ranged().len(), 1, "nothing else asked for");
    assert!(stack.document(key).await.is_none(), "no row written");
}

/// Parts of uneven sizes make the worker learn the layout part by part before the stream starts
/// (a HeadObject per part, up to 10,000): the ranges asked for with the GetObject give their
/// places in the window back meanwhile, so that one upload cannot hold them from every other
/// large object; they are asked for again, and the object finalizes by its multipart ETag.
#[tokio::test(flavor = "multi_thread")]
async fn ranges_asked_ahead_are_released_while_an_uneven_part_layout_is_learnt() {
    let mut stack = Stack::new("range-ahead-uneven").await;
    let key = "reports/uneven.pdf";
    let bytes = big_pdf(12 * MIB);
    let proxy = Proxy::start(target(&stack, key), vec![]).await;
    start(&mut stack, &always(&proxy));
    let s3 = s3_without_checksums().await;
    multipart(&s3, &stack.bucket, key, &bytes, &[5 * MIB, 6 * MIB, MIB]).await;
    finalized_as(&stack, key, &bytes, "md5-multipart-etag:s3").await;
    stack
        .wait_log("ranges asked for ahead released until the stream reaches them")
        .await;
    // The digest above shows they were read after all; each was answered in full at least once.
    for range in &ranges_of(bytes.len())[1..5] {
        assert!(statuses(&proxy, range).contains(&206), "{range}");
    }
}
