//! Delivery semantics: at-least-once and unordered in, exactly one correct row out; failures
//! classified once; hostile input rejected without harm; clean and forced shutdown.

use std::time::{Duration, Instant};

use docworker_shared::fixtures::{self, SampleDicom};
use serde_json::Value;

use crate::helpers::{Options, Stack, WAIT, created_event, sha256_hex};

fn with_object(mut event: Value, version_id: Option<&str>, sequencer: &str) -> String {
    let object = &mut event["Records"][0]["s3"]["object"];
    object["sequencer"] = sequencer.into();
    if let Some(version) = version_id {
        object["versionId"] = version.into();
    }
    event.to_string()
}

fn quiet(name: &str) -> Options {
    let _ = name;
    Options {
        notify: false,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_event_delivered_last_never_overwrites_the_newer_version() {
    let mut stack = Stack::with("ordering", quiet("ordering")).await;
    stack.enable_versioning().await;
    let key = "reports/versioned.txt";
    let v1 = stack
        .put(key, b"first version\n".to_vec(), Some("text/plain"), &[])
        .await;
    let v2 = stack
        .put(
            key,
            b"second, longer version\n".to_vec(),
            Some("text/plain"),
            &[],
        )
        .await;
    let (v1_id, v2_id) = (v1.version_id().expect("v1"), v2.version_id().expect("v2"));
    stack.start_worker(&[]);

    // Newest first: v2's event has the greater sequencer (and is longer, to exercise padding).
    let newer = with_object(
        created_event(&stack.bucket, key, 23, v2.e_tag().unwrap()),
        Some(v2_id),
        "0055AED6DCD90281E601",
    );
    stack.send(&newer).await;
    let row = stack
        .wait_for(key, |d| d.version_id.as_deref() == Some(v2_id))
        .await;
    assert_eq!(row.file_size, Some(23));

    let older = with_object(
        created_event(&stack.bucket, key, 14, v1.e_tag().unwrap()),
        Some(v1_id),
        "0055AED6DCD90281E5",
    );
    stack.send(&older).await;
    stack.wait_queue_empty().await;
    stack.wait_log("\"outcome\":\"stale\"").await;
    let after = stack.document(key).await.expect("row");
    assert_eq!(
        after.version_id.as_deref(),
        Some(v2_id),
        "the newer version's row stands"
    );
    assert_eq!(after.file_size, Some(23));
    assert_eq!(after.sequencer.as_deref(), Some("0055AED6DCD90281E601"));
    assert_eq!(after.sha256, row.sha256);
    // The audit trail, written by the same statement as each row write, tells both apart.
    let trail: Vec<(String, i32)> = sqlx::query_as(
        "SELECT outcome, attempt FROM document_events WHERE bucket = $1 AND file_key = $2 ORDER BY id",
    )
    .bind(&stack.bucket)
    .bind(key)
    .fetch_all(&stack.db)
    .await
    .expect("audit trail");
    assert_eq!(trail, [("finalized".into(), 1), ("stale".into(), 1)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_overwritten_before_processing_is_superseded_not_finalized_with_other_bytes() {
    let mut stack = Stack::with("superseded", quiet("superseded")).await;
    let key = "medical/overwritten.pdf";
    let first = stack
        .put(key, fixtures::pdf(), Some("application/pdf"), &[])
        .await;
    let mut changed = fixtures::pdf();
    changed.extend_from_slice(b"% appended after the first upload\n");
    let second = stack
        .put(key, changed.clone(), Some("application/pdf"), &[])
        .await;
    stack.start_worker(&[]);

    let stale_event = created_event(
        &stack.bucket,
        key,
        fixtures::pdf().len() as u64,
        first.e_tag().unwrap(),
    );
    stack.send(&stale_event.to_string()).await;
    stack.wait_queue_empty().await;
    stack.wait_log("\"outcome\":\"superseded\"").await;
    assert!(
        stack.document(key).await.is_none(),
        "the old event wrote nothing"
    );

    let fresh_event = created_event(
        &stack.bucket,
        key,
        changed.len() as u64,
        second.e_tag().unwrap(),
    );
    stack.send(&fresh_event.to_string()).await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized");
    assert_eq!(
        row.etag.as_deref(),
        Some(second.e_tag().unwrap().trim_matches('"'))
    );
    assert_eq!(row.file_size, Some(changed.len() as i64));
}

/// An event announcing more than the size limit is decided by a HeadObject, whose errors have no
/// body and so no code: its 412 (If-Match failed) and 404 are told apart by the HTTP status.
#[tokio::test(flavor = "multi_thread")]
async fn a_head_412_settles_as_superseded_and_a_head_404_as_gone_without_error_codes() {
    let mut stack = Stack::with("headcodes", quiet("headcodes")).await;
    let key = "medical/head-overwritten.pdf";
    let first = stack
        .put(key, fixtures::pdf(), Some("application/pdf"), &[])
        .await;
    let mut changed = fixtures::pdf();
    changed.extend_from_slice(b"% appended after the first upload\n");
    stack.put(key, changed, Some("application/pdf"), &[]).await;
    stack.start_worker(&[("DOCWORKER_MAX_OBJECT_BYTES", "100")]);

    let oversize = 1_000_000;
    let stale = created_event(&stack.bucket, key, oversize, first.e_tag().unwrap());
    stack.send(&stale.to_string()).await;
    stack.wait_queue_empty().await;
    stack.wait_log("\"outcome\":\"superseded\"").await;
    assert!(stack.document(key).await.is_none(), "nothing written");
    assert!(
        !stack.worker_log().contains("retrying"),
        "settled, not retried"
    );

    let missing = "medical/head-missing.pdf";
    let gone = created_event(
        &stack.bucket,
        missing,
        oversize,
        "d41d8cd98f00b204e9800998ecf8427e",
    );
    stack.send(&gone.to_string()).await;
    let row = stack.wait_settled(missing).await;
    assert_eq!(row.status, "deleted");
    stack.wait_queue_empty().await;
    assert!(
        !stack.worker_log().contains("retrying"),
        "settled, not retried"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_object_marks_its_row_deleted() {
    let mut stack = Stack::new("removed").await;
    stack.start_worker(&[]);
    let key = "images/to-delete.png";
    stack
        .put(key, fixtures::png(), Some("image/png"), &[])
        .await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized");
    stack.delete_object(key).await;
    let row = stack.wait_for(key, |d| d.status == "deleted").await;
    assert_eq!(
        row.sha256.as_deref().map(str::len),
        Some(64),
        "the record of what it was stays"
    );
    stack.wait_queue_empty().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_gone_before_processing_is_recorded_and_its_message_deleted() {
    let mut stack = Stack::with("gone", quiet("gone")).await;
    stack.start_worker(&[]);
    let key = "medical/never-there.pdf";
    let event = created_event(&stack.bucket, key, 100, "d41d8cd98f00b204e9800998ecf8427e");
    stack.send(&event.to_string()).await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "deleted");
    stack.wait_queue_empty().await;
    let (dlq, _) = stack.queue_counts(&stack.dlq_url).await;
    assert_eq!(dlq, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_for_a_missing_bucket_ends_in_the_dead_letter_queue() {
    let mut stack = Stack::with(
        "nobucket",
        Options {
            visibility_timeout_secs: 1,
            max_receive_count: 2,
            notify: false,
        },
    )
    .await;
    stack.start_worker(&[]);
    let event = created_event(
        "no-such-bucket-docworker",
        "medical/x.pdf",
        10,
        "d41d8cd98f00b204e9800998ecf8427e",
    );
    stack.send(&event.to_string()).await;
    let deadline = Instant::now() + WAIT;
    while stack.queue_counts(&stack.dlq_url).await.0 != 1 {
        assert!(
            Instant::now() < deadline,
            "not dead-lettered:\n{}",
            stack.worker_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stack.worker_log().contains("NoSuchBucket"));
    assert!(stack.worker_log().contains("poison event"));
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_files_are_rejected_with_reasons_and_the_worker_survives() {
    let mut stack = Stack::new("hostile").await;
    stack.start_worker(&[]);
    let dicom = SampleDicom::default().to_bytes();
    let meta_end = 144 + u32::from_le_bytes(dicom[140..144].try_into().unwrap()) as usize;
    let mut huge_length = dicom[..meta_end].to_vec();
    huge_length.extend_from_slice(&[0x09, 0x00, 0x10, 0x10, b'U', b'N', 0, 0]);
    huge_length.extend_from_slice(&0xF000_0000u32.to_le_bytes());
    huge_length.extend_from_slice(&[0u8; 256]);
    let mut nested = dicom[..meta_end].to_vec();
    for _ in 0..20_000 {
        nested.extend_from_slice(&[
            0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        nested.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    }
    let random: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "medical/truncated.dcm",
            dicom[..meta_end + 60].to_vec(),
            "DICOM header unreadable",
        ),
        (
            "medical/huge-length.dcm",
            huge_length,
            "DICOM header runs past",
        ),
        (
            "medical/nested.dcm",
            nested,
            "DICOM header unreadable: sequences nested deeper than 64",
        ),
        (
            "medical/random.dcm",
            random,
            "content type could not be recognised",
        ),
        (
            "reports/bomb.docx",
            zip_bomb_docx(),
            "archive entry word/document.xml expands",
        ),
    ];
    for (key, bytes, _) in &cases {
        stack.put(key, bytes.clone(), None, &[]).await;
    }
    for (key, _, reason) in &cases {
        let row = stack.wait_settled(key).await;
        assert_eq!(row.status, "rejected", "{key}");
        let actual = row.rejection_reason.unwrap_or_default();
        assert!(actual.starts_with(reason), "{key}: {actual}");
    }
    stack.wait_queue_empty().await;
    assert!(stack.worker_peak_rss() < 128 << 20, "memory stayed bounded");
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0), "the worker was alive and stopped cleanly");
    assert!(!log.contains("panicked"), "no panic");
}

/// A docx whose document entry claims to inflate 4000 bytes to 4 GB.
fn zip_bomb_docx() -> Vec<u8> {
    let entry = fixtures::zip_entry;
    let mut bytes = entry("[Content_Types].xml", 300, 1200);
    bytes.extend(entry("_rels/.rels", 200, 600));
    bytes.extend(entry("word/document.xml", 4000, 4_000_000_000));
    bytes.extend(entry("word/_rels/document.xml.rels", 200, 500));
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn no_phi_appears_in_debug_logs() {
    let mut stack = Stack::new("phi").await;
    stack.start_worker(&[("RUST_LOG", "debug")]);
    let sample = SampleDicom {
        patient_name: "Quixotic^Zebulon".into(),
        patient_birth_date: "19450317".into(),
        patient_id: "PHI-ID-99173".into(),
        ..SampleDicom::default()
    };
    stack
        .put(
            "medical/phi.dcm",
            sample.to_bytes(),
            Some("application/dicom"),
            &[],
        )
        .await;
    let mut truncated = sample.to_bytes();
    truncated.truncate(truncated.len() - 20);
    let name_at = truncated
        .windows(9)
        .position(|w| w == b"Quixotic^")
        .unwrap();
    truncated.truncate(name_at + 12);
    stack
        .put("medical/phi-broken.dcm", truncated, None, &[])
        .await;
    assert_eq!(
        stack.wait_settled("medical/phi.dcm").await.status,
        "finalized"
    );
    assert_eq!(
        stack.wait_settled("medical/phi-broken.dcm").await.status,
        "rejected"
    );
    stack.wait_queue_empty().await;
    let (_, log) = stack.stop_worker();
    assert!(
        log.contains("medical/phi.dcm"),
        "the log does cover the object"
    );
    for secret in ["Quixotic", "Zebulon", "19450317", "PHI-ID-99173"] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
}

/// A worker in the middle of one large object when it receives SIGTERM.
async fn signalled_mid_object(name: &str, pixel_bytes: usize) -> Stack {
    let mut stack = Stack::new(name).await;
    let big = SampleDicom {
        pixel_bytes,
        ..SampleDicom::default()
    }
    .to_bytes();
    stack.put("medical/big.dcm", big, None, &[]).await;
    stack.start_worker(&[]);
    stack.wait_log("processing object").await;
    stack.signal_worker(libc::SIGTERM);
    stack
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_objects_finish_then_exits_0() {
    let mut stack = signalled_mid_object("sigterm", 96 << 20).await;
    assert!(
        stack.document("medical/big.dcm").await.is_none(),
        "still in flight at the signal"
    );
    let code = stack.wait_worker_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0));
    let row = stack
        .document("medical/big.dcm")
        .await
        .expect("finished before exiting");
    assert_eq!(row.status, "finalized");
    stack.wait_queue_empty().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_exits_at_once() {
    let mut stack = signalled_mid_object("twosignals", 200 << 20).await;
    stack.wait_log("signal received").await;
    let sent = Instant::now();
    stack.signal_worker(libc::SIGINT);
    let code = stack.wait_worker_exit(Duration::from_secs(5));
    assert_eq!(code, Some(130));
    assert!(sent.elapsed() < Duration::from_secs(2));
    assert!(
        stack.document("medical/big.dcm").await.is_none(),
        "it did not wait for the object"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_flight_another_worker_finishes_every_object_exactly_once() {
    let mut stack = Stack::with(
        "kill9",
        Options {
            visibility_timeout_secs: 3,
            max_receive_count: 10,
            notify: true,
        },
    )
    .await;
    let keys: Vec<String> = (0..24).map(|i| format!("medical/kill/{i}.dcm")).collect();
    for (i, key) in keys.iter().enumerate() {
        let sample = SampleDicom {
            sop_instance_uid: Some(format!("1.2.826.0.1.3680043.8.498.5.{i}")),
            pixel_bytes: 2 << 20,
            ..SampleDicom::default()
        };
        stack.put(key, sample.to_bytes(), None, &[]).await;
    }
    stack.start_worker(&[("DOCWORKER_CONCURRENCY", "4")]);
    stack.wait_log("object settled").await;
    stack.kill_worker();
    let settled_before: i64 = stack.count_rows().await;
    assert!(
        settled_before < keys.len() as i64,
        "killed while work remained"
    );
    stack.start_worker(&[]);
    for key in &keys {
        assert_eq!(stack.wait_settled(key).await.status, "finalized", "{key}");
    }
    stack.wait_queue_empty().await;
    assert_eq!(
        stack.count_rows().await,
        keys.len() as i64,
        "one row per object"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_on_the_same_duplicates_leave_one_row() {
    let mut stack = Stack::with("twoworkers", quiet("twoworkers")).await;
    let key = "images/dup.png";
    let put = stack
        .put(key, fixtures::png(), Some("image/png"), &[])
        .await;
    let event = created_event(
        &stack.bucket,
        key,
        fixtures::png().len() as u64,
        put.e_tag().unwrap(),
    )
    .to_string();
    for _ in 0..10 {
        stack.send(&event).await;
    }
    stack.start_worker(&[]);
    // A second, independent worker process on the same queue and database.
    let mut second = std::process::Command::new(crate::helpers::worker_binary())
        .arg("run")
        .envs(stack.worker_env())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("second worker");
    stack.wait_queue_empty().await;
    second.kill().ok();
    second.wait().ok();
    assert_eq!(stack.count_rows().await, 1);
    assert_eq!(stack.wait_settled(key).await.status, "finalized");
}

/// The size of a large-object test, in MiB: 1024 unless the variable `env` says otherwise.
fn size_mib(env: &str) -> usize {
    std::env::var(env)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// A DICOM object of `size_mib` MiB, header included: at 1024, just under the worker's default
/// maximum of 1 GiB.
pub(crate) fn large_dicom(size_mib: usize) -> Vec<u8> {
    SampleDicom {
        pixel_bytes: (size_mib << 20) - (64 << 10),
        ..SampleDicom::default()
    }
    .to_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_object_streams_in_flat_memory_and_its_heartbeat_keeps_it_single() {
    let size_mib = size_mib("DOCWORKER_TEST_LARGE_MIB");
    let mut stack = Stack::with(
        "large",
        Options {
            visibility_timeout_secs: 2,
            max_receive_count: 5,
            notify: true,
        },
    )
    .await;
    let bytes = large_dicom(size_mib);
    let total = bytes.len();
    let sha256 = sha256_hex(&bytes);
    stack.put("medical/large.dcm", bytes, None, &[]).await;
    // One stream: stock moto reads an object's whole value for every ranged GET, so 1 GiB read
    // by ranges costs moto ~130 s here (not S3); ranged reads' memory is tested in `ranged`.
    stack.start_worker(&[("DOCWORKER_RANGED_THRESHOLD_BYTES", "2147483648")]);
    let row = stack.wait_settled("medical/large.dcm").await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(row.file_size, Some(total as i64));
    assert_eq!(
        row.sha256.as_deref(),
        Some(sha256.as_str()),
        "hashed on a thread while streaming, the same digest"
    );
    let peak = stack.worker_peak_rss();
    stack.wait_queue_empty().await;
    let log = stack.worker_log();
    let settled = log.matches("object settled").count();
    assert_eq!(settled, 1, "processed exactly once:\n{log}");
    assert!(
        log.contains("heartbeat: visibility extended"),
        "outlived its visibility timeout"
    );
    assert!(
        peak < 64 << 20,
        "peak RSS {} MiB for a {size_mib} MiB object",
        peak >> 20
    );
    eprintln!(
        "large object: {size_mib} MiB, worker peak RSS {} MiB",
        peak >> 20
    );
}

/// The whole gate on a 1 GiB object (`DOCWORKER_TEST_SCANNED_MIB` for another size), through a
/// real clamd whose limits take it (a private one: the shared clamd's may be older): read once,
/// hashed and scanned in the same pass, in flat memory. CI cost: the upload to moto, the
/// download, then clamd's scan of the spooled stream, which only starts once the stream has
/// ended: 67 s in all at load ~4 on this 2-core machine (256 MiB: 17 s).
#[tokio::test(flavor = "multi_thread")]
async fn a_large_object_is_read_once_and_scanned_alongside_in_flat_memory() {
    use docworker_shared::gate::{SCAN_TAG, STATUS_TAG};

    use crate::gate::{PrivateClamd, tag, wait_tags};
    use crate::operations::sample;

    let size_mib = size_mib("DOCWORKER_TEST_SCANNED_MIB");
    let clamd = PrivateClamd::start("1024M");
    let mut stack = Stack::new("large-scanned").await;
    let bytes = large_dicom(size_mib);
    let total = bytes.len();
    let sha256 = sha256_hex(&bytes);
    let key = "medical/large.dcm";
    stack.put(key, bytes, None, &[]).await;
    // The default scan limit and timeout: a large study is scanned, and its answer, which
    // comes a whole scan after the last byte, is not a timeout. One stream, as moto's request
    // log is to show (ranges are each read once too: `ranged`).
    stack.start_worker(&[
        ("DOCWORKER_CLAMD_ADDR", clamd.tcp().as_str()),
        ("DOCWORKER_RANGED_THRESHOLD_BYTES", "2147483648"),
    ]);
    // The download, then clamd's scan of the spooled stream: 25 s on an idle 2-core machine,
    // over 75 s when it also builds. Within the worker's own wait for the answer (265 s).
    let row = stack
        .wait_for_within(key, Duration::from_secs(300), |d| d.status != "pending")
        .await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(row.scan.as_deref(), Some("clean"));
    assert_eq!(row.file_size, Some(total as i64));
    assert_eq!(
        row.sha256.as_deref(),
        Some(sha256.as_str()),
        "hashed on a thread while streaming, the same digest"
    );
    let tags = wait_tags(&stack, key).await;
    assert_eq!(tag(&tags, STATUS_TAG), Some("finalized"));
    assert_eq!(tag(&tags, SCAN_TAG), Some("clean"));
    let peak = stack.worker_peak_rss();
    // The scan trailed the download by at most the bounded queues: when the scanner's last
    // chunk arrived, all but this many bytes had already gone to clamd. A scan after the
    // download (or a buffered one) would trail by the whole object.
    let (_, metrics) = stack.http_get("/metrics").await;
    assert_eq!(sample(&metrics, "docworker_scan_backlog_bytes_count"), 1.0);
    let backlog = sample(&metrics, "docworker_scan_backlog_bytes_sum");
    assert!(
        backlog <= f64::from(8 << 20),
        "{backlog} bytes of {total} still queued for clamd when the download ended"
    );
    stack.wait_queue_empty().await;
    let log = stack.worker_log();
    let settled = log.matches("object settled").count();
    assert_eq!(settled, 1, "processed exactly once:\n{log}");
    // moto's own request log: one GetObject of the body for hashing, checks and the scan.
    let moto_log = std::env::var("DOCWORKER_MOTO_LOG")
        .expect("DOCWORKER_MOTO_LOG names moto_server's request log (infra/local/stack.sh env)");
    let requests = std::fs::read_to_string(&moto_log).expect("read moto log");
    // The SDK names the operation in the query (`?x-id=GetObject`); tagging's GET is another.
    let get = format!("\"GET /{}/{key}?x-id=GetObject ", stack.bucket);
    assert_eq!(requests.matches(&get).count(), 1, "read once: {get}");
    assert!(
        peak < 64 << 20,
        "peak RSS {} MiB for a {size_mib} MiB object",
        peak >> 20
    );
    eprintln!(
        "large object: {size_mib} MiB, scanned clean, worker peak RSS {} MiB, {backlog} bytes \
         behind clamd at the download's end",
        peak >> 20
    );
}

/// Receives every message on the stack's queue (none are sent after this starts).
async fn receive_all(stack: &Stack, expected: usize) -> Vec<(String, String)> {
    let mut received = Vec::new();
    let deadline = Instant::now() + WAIT;
    while received.len() < expected && Instant::now() < deadline {
        let output = stack
            .sqs
            .receive_message()
            .queue_url(&stack.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .send()
            .await
            .expect("ReceiveMessage");
        for message in output.messages.unwrap_or_default() {
            received.push((
                message.message_id.expect("message id"),
                message.receipt_handle.expect("receipt handle"),
            ));
        }
    }
    assert_eq!(received.len(), expected, "received every message");
    received
}

/// Hands `settled` (message id, receipt handle) to the worker's batching deleter, then waits for
/// it to send them and end, as it does at shutdown: whatever the outcome of its calls, it must
/// not hang.
async fn delete_through_the_batcher(
    sqs: aws_sdk_sqs::Client,
    queue_url: &str,
    settled: &[(String, String)],
) {
    let (deletes, flushed) = docworker::consume::deletes::Deletes::spawn(sqs, queue_url.to_owned());
    for (message_id, receipt) in settled {
        deletes.delete(message_id, receipt).await;
    }
    drop(deletes);
    tokio::time::timeout(WAIT, flushed)
        .await
        .expect("the deletion task ends once its senders are gone")
        .expect("deletion task");
}

#[tokio::test(flavor = "multi_thread")]
async fn settled_messages_are_deleted_in_batches_and_a_bad_entry_spoils_only_itself() {
    let stack = Stack::with("deletes", quiet("deletes")).await;
    for i in 0..12 {
        stack.send(&format!("message {i}")).await;
    }
    let mut settled = vec![("bogus".to_owned(), "not-a-receipt-handle".to_owned())];
    settled.extend(receive_all(&stack, 12).await);
    delete_through_the_batcher(stack.sqs.clone(), &stack.queue_url, &settled).await;
    assert_eq!(
        stack.queue_counts(&stack.queue_url).await,
        (0, 0),
        "every real message was deleted, including those batched with the bad entry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn when_sqs_cannot_be_reached_settled_messages_stay_on_the_queue_for_redelivery() {
    let stack = Stack::with("deletes-down", quiet("deletes-down")).await;
    stack
        .send("settled, but its deletion will not get through")
        .await;
    let received = receive_all(&stack, 1).await;
    // A client for an SQS endpoint where nothing listens.
    let unreachable = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&crate::helpers::aws_config().await)
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    );
    delete_through_the_batcher(unreachable, &stack.queue_url, &received).await;
    assert_eq!(
        stack.queue_counts(&stack.queue_url).await,
        (0, 1),
        "the message is still on the queue, in flight until its visibility timeout"
    );
}
