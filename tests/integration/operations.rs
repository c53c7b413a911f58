//! What operators see: metrics that match what happened, health and readiness.

use docworker_shared::fixtures::{self, SampleDicom};

use crate::helpers::Stack;

/// The value of one sample line `name{labels} value` in Prometheus text.
pub(crate) fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_the_worker_did() {
    let mut stack = Stack::new("metrics").await;
    stack.start_worker(&[]);
    let dicom = SampleDicom::default().to_bytes();
    let pdf = fixtures::pdf();
    let png = fixtures::png();
    let total = (dicom.len() + pdf.len() + png.len()) as f64;
    stack.put("medical/a.dcm", dicom, None, &[]).await;
    stack
        .put("reports/b.pdf", pdf, Some("application/pdf"), &[])
        .await;
    stack
        .put("reports/c.pdf", png, Some("application/pdf"), &[])
        .await;
    for key in ["medical/a.dcm", "reports/b.pdf", "reports/c.pdf"] {
        stack.wait_settled(key).await;
    }
    stack.wait_queue_empty().await;
    stack.send("not an event").await;
    stack.wait_log("poison message").await;

    // The poison message's log line comes just before its task ends: scrape once it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (status, metrics) = loop {
        let (status, metrics) = stack.http_get("/metrics").await;
        if sample(&metrics, "docworker_objects_in_flight") == 0.0
            || std::time::Instant::now() > deadline
        {
            break (status, metrics);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200);
    assert_eq!(
        sample(&metrics, "docworker_objects_total{outcome=\"finalized\"}"),
        2.0
    );
    assert_eq!(
        sample(&metrics, "docworker_objects_total{outcome=\"rejected\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "docworker_rejections_total{reason=\"declared_mismatch\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "docworker_poison_messages_total{reason=\"not_json\"}"
        ),
        1.0
    );
    assert_eq!(sample(&metrics, "docworker_bytes_streamed_total"), total);
    // Three object events and S3's TestEvent were deleted; the poison message was not.
    assert_eq!(sample(&metrics, "docworker_messages_deleted_total"), 4.0);
    assert!(sample(&metrics, "docworker_messages_received_total") >= 5.0);
    assert_eq!(
        sample(&metrics, "docworker_objects_in_flight"),
        0.0,
        "every message settled"
    );
    assert!(sample(&metrics, "docworker_processing_seconds_count") >= 4.0);
    assert_eq!(sample(&metrics, "docworker_event_lag_seconds_count"), 2.0);
    assert_eq!(
        sample(&metrics, "docworker_queue_without_redrive_policy"),
        0.0
    );
}

/// The value of a numeric field in a JSON log line.
fn field(line: &str, name: &str) -> u64 {
    let value: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    value[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_object_costs_one_database_statement_and_deletes_are_batched() {
    let mut stack = Stack::new("roundtrips").await;
    let objects = 10;
    // Queued before the worker starts, so they arrive together and settle close together.
    for i in 0..objects {
        let dicom = SampleDicom {
            sop_instance_uid: Some(format!("1.2.826.0.1.3680043.8.498.7.{i}")),
            ..SampleDicom::default()
        };
        stack
            .put(&format!("medical/{i}.dcm"), dicom.to_bytes(), None, &[])
            .await;
    }
    // sqlx logs every statement it sends (target `sqlx::query`) at debug.
    stack.start_worker(&[("RUST_LOG", "info,docworker=debug,sqlx::query=debug")]);
    for i in 0..objects {
        let row = stack.wait_settled(&format!("medical/{i}.dcm")).await;
        assert_eq!(row.status.as_str(), "finalized");
    }
    stack.wait_queue_empty().await;
    stack.wait_log("delete batch sent").await;
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0));

    let (_, consuming) = log
        .split_once("\"consuming\"")
        .expect("worker started consuming");
    // Besides the worker's count of stale pending rows (once at start, then every minute), which
    // is no object's.
    let statements: Vec<&str> = consuming
        .lines()
        .filter(|line| line.contains("\"target\":\"sqlx::query\""))
        .filter(|line| !line.contains("status = 'pending' AND created_at < now()"))
        .collect();
    assert_eq!(
        statements.len(),
        objects,
        "one statement per object: {statements:#?}"
    );
    assert!(
        statements
            .iter()
            .all(|s| s.contains("INSERT INTO documents") && s.contains("document_events")),
        "each is the row write with its audit entry: {statements:#?}"
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM document_events WHERE outcome = 'finalized' AND attempt = 1",
    )
    .fetch_one(&stack.db)
    .await
    .expect("count");
    assert_eq!(audited, objects as i64);

    let batches: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("delete batch sent"))
        .collect();
    let deleted: u64 = batches.iter().map(|line| field(line, "deleted")).sum();
    // The objects' events and S3's TestEvent.
    assert_eq!(deleted, objects as u64 + 1);
    assert!(
        batches.len() < objects,
        "{} delete calls for {} messages",
        batches.len(),
        objects + 1
    );
}

/// A trickle of uploads, each alone in the queue when it arrives: without the linger every
/// receive would carry one message. With it, the messages that arrive while the worker waits
/// share the next request.
#[tokio::test(flavor = "multi_thread")]
async fn a_trickle_of_messages_shares_receive_requests() {
    let mut stack = Stack::new("linger").await;
    // The test environment logs docworker at debug, which includes each receive.
    stack.start_worker(&[("DOCWORKER_RECEIVE_LINGER_MS", "500")]);
    stack.wait_log("s3:TestEvent").await;
    let objects = 12;
    for i in 0..objects {
        let dicom = SampleDicom {
            sop_instance_uid: Some(format!("1.2.826.0.1.3680043.8.498.8.{i}")),
            ..SampleDicom::default()
        };
        stack
            .put(&format!("medical/{i}.dcm"), dicom.to_bytes(), None, &[])
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    for i in 0..objects {
        let row = stack.wait_settled(&format!("medical/{i}.dcm")).await;
        assert_eq!(row.status.as_str(), "finalized");
    }
    let (_, metrics) = stack.http_get("/metrics").await;
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0));

    let (_, after_test_event) = log
        .split_once("s3:TestEvent")
        .expect("the test event was received");
    let receives: Vec<u64> = after_test_event
        .lines()
        .filter(|line| line.contains("\"messages received\""))
        .map(|line| field(line, "messages"))
        .filter(|messages| *messages > 0)
        .collect();
    assert_eq!(receives.iter().sum::<u64>(), objects as u64, "{receives:?}");
    assert!(
        receives.len() <= objects / 2,
        "{} receive requests for {objects} messages: {receives:?}",
        receives.len()
    );
    assert!(
        sample(&metrics, "docworker_receive_requests_total")
            < sample(&metrics, "docworker_messages_received_total"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_readiness_answer() {
    let mut stack = Stack::new("health").await;
    stack.start_worker(&[]);
    let (status, body) = stack.http_get("/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    stack.wait_log("s3:TestEvent").await;
    let (status, body) = stack.http_get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("database: true") && body.contains("queue: true"),
        "{body}"
    );
}

pub(crate) fn docworker(stack: &Stack, args: &[&str]) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(crate::helpers::worker_binary())
        .args(args)
        .envs(stack.worker_env())
        .output()
        .expect("run docworker");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn poisoned_stack(name: &str) -> Stack {
    let mut stack = Stack::with(
        name,
        crate::helpers::Options {
            visibility_timeout_secs: 1,
            max_receive_count: 2,
            notify: true,
        },
    )
    .await;
    stack.start_worker(&[]);
    stack.send("{\"not\": \"an S3 event\"}").await;
    let deadline = std::time::Instant::now() + crate::helpers::WAIT;
    while stack.queue_counts(&stack.dlq_url).await.0 != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "not dead-lettered:\n{}",
            stack.worker_log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    stack
}

#[tokio::test(flavor = "multi_thread")]
async fn dlq_peek_explains_a_poison_message_without_consuming_it() {
    let stack = poisoned_stack("peek").await;
    let (code, stdout, stderr) = docworker(&stack, &["dlq", "peek", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let entries: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let entry = &entries[0];
    assert!(
        entry["message_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert!(
        entry["receive_count"]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 2
    );
    assert!(
        entry["unreadable"]
            .as_str()
            .unwrap()
            .contains("not an S3 event notification")
    );
    assert_eq!(
        entry["last_failure"]["outcome"], "poison",
        "the audit trail explains it"
    );
    assert!(
        entry["last_failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("not an S3 event notification")
    );

    // Still there, and visible again at once.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(stack.queue_counts(&stack.dlq_url).await, (1, 0));
    let (code, stdout, _) = docworker(&stack, &["dlq", "stats"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("depth (visible): 1"), "{stdout}");
    assert!(stdout.contains("oldest message: sent"), "{stdout}");
    let attempts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM document_events WHERE outcome = 'poison'")
            .fetch_one(&stack.db)
            .await
            .expect("count");
    assert!(
        attempts >= 2,
        "every receive of the poison message was recorded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dlq_redrive_moves_messages_back_and_they_are_processed() {
    let stack = Stack::with(
        "redrive",
        crate::helpers::Options {
            notify: false,
            ..Default::default()
        },
    )
    .await;
    let mut stack = stack;
    let key = "medical/redriven.pdf";
    let put = stack.put(key, fixtures::pdf(), None, &[]).await;
    let event = crate::helpers::created_event(
        &stack.bucket,
        key,
        fixtures::pdf().len() as u64,
        put.e_tag().unwrap(),
    );
    // As if it had been dead-lettered during an outage.
    stack
        .sqs
        .send_message()
        .queue_url(&stack.dlq_url)
        .message_body(event.to_string())
        .send()
        .await
        .expect("seed DLQ");
    let (code, stdout, stderr) = docworker(&stack, &["dlq", "redrive", "--max", "5"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("moved 1 message"), "{stdout}");
    assert_eq!(stack.queue_counts(&stack.dlq_url).await, (0, 0));
    stack.start_worker(&[]);
    assert_eq!(stack.wait_settled(key).await.status, "finalized");
    stack.wait_queue_empty().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn require_dlq_refuses_a_queue_without_a_redrive_policy() {
    let mut stack = Stack::new("requiredlq").await;
    let bare = stack
        .sqs
        .create_queue()
        .queue_name(format!("{}-bare", stack.bucket))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    stack.queue_url = bare;
    stack.start_worker(&[("DOCWORKER_REQUIRE_DLQ", "true")]);
    let code = stack.wait_worker_exit(std::time::Duration::from_secs(30));
    assert_eq!(code, Some(1));
    let log = stack.worker_log();
    assert!(log.contains("no redrive policy"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_of_a_prefix_refinalizes_its_rows_and_leaves_their_content() {
    let mut stack = Stack::new("replay").await;
    stack.start_worker(&[]);
    let keys = ["medical/r1.dcm", "medical/r 2.pdf", "medical/r3.png"];
    stack
        .put(keys[0], SampleDicom::default().to_bytes(), None, &[])
        .await;
    stack.put(keys[1], fixtures::pdf(), None, &[]).await;
    stack.put(keys[2], fixtures::png(), None, &[]).await;
    stack
        .put("reports/other.pdf", fixtures::pdf(), None, &[])
        .await;
    let mut before = Vec::new();
    for key in keys {
        before.push(stack.wait_settled(key).await);
    }
    let other = stack.wait_settled("reports/other.pdf").await;
    stack.wait_queue_empty().await;

    let (code, stdout, stderr) = docworker(
        &stack,
        &[
            "replay",
            "--bucket",
            &stack.bucket,
            "--prefix",
            "medical/",
            "--dry-run",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("selected 3, would enqueue 3, skipped 0"),
        "{stdout}"
    );
    assert_eq!(
        stack.queue_counts(&stack.queue_url).await,
        (0, 0),
        "a dry run sends nothing"
    );

    let (code, stdout, stderr) = docworker(
        &stack,
        &[
            "replay",
            "--bucket",
            &stack.bucket,
            "--prefix",
            "medical/",
            "--rate",
            "100",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("selected 3, enqueued 3, skipped 0"),
        "{stdout}"
    );
    for old in &before {
        let new = stack
            .wait_for(&old.file_key, |d| d.processed_at > old.processed_at)
            .await;
        assert_eq!(new.id, old.id);
        assert_eq!(new.status, old.status);
        assert_eq!(new.sha256, old.sha256);
        assert_eq!(new.file_size, old.file_size);
        assert_eq!(new.content_type, old.content_type);
        assert_eq!(new.dicom, old.dicom);
        assert_eq!(new.etag, old.etag);
    }
    stack.wait_queue_empty().await;
    let untouched = stack.document("reports/other.pdf").await.expect("row");
    assert_eq!(
        untouched.processed_at, other.processed_at,
        "outside the prefix"
    );
    assert!(
        stack.worker_log().contains("\"replayed\":true"),
        "marked as replayed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_after_a_row_was_corrupted_restores_it() {
    let mut stack = Stack::new("restore").await;
    stack.start_worker(&[]);
    let key = "medical/restore.dcm";
    stack
        .put(key, SampleDicom::default().to_bytes(), None, &[])
        .await;
    let good = stack.wait_settled(key).await;
    assert_eq!(good.status, "finalized");
    stack.wait_queue_empty().await;
    sqlx::query(
        "UPDATE documents SET status = 'rejected', rejection_reason = 'damaged by hand', sha256 = NULL,
                content_type = NULL, dicom = NULL, study_instance_uid = NULL WHERE bucket = $1 AND file_key = $2",
    )
    .bind(&stack.bucket)
    .bind(key)
    .execute(&stack.db)
    .await
    .expect("corrupt the row");

    let (code, stdout, stderr) = docworker(
        &stack,
        &["replay", "--bucket", &stack.bucket, "--status", "rejected"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("selected 1, enqueued 1, skipped 0"),
        "{stdout}"
    );
    let restored = stack.wait_for(key, |d| d.status == "finalized").await;
    assert_eq!(restored.id, good.id);
    assert_eq!(restored.sha256, good.sha256);
    assert_eq!(restored.dicom, good.dicom);
    assert_eq!(restored.study_instance_uid, good.study_instance_uid);
    assert_eq!(restored.rejection_reason, None);
}

/// The metric names the worker declares (`observe::names`), read from its source.
fn declared_metric_names() -> Vec<String> {
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../worker/src/observe/mod.rs"),
    )
    .expect("observe/mod.rs");
    let names = &source[source.find("pub mod names").expect("names module")..];
    let names = &names[..names.find('}').expect("end of names")];
    names
        .split('"')
        .filter(|part| part.starts_with("docworker_"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_worker_describes_every_metric_and_exports_zeros() {
    let mut stack = Stack::new("freshmetrics").await;
    stack.start_worker(&[]);
    stack.wait_log("consuming").await;
    // The queue depth arrives with the first poll of the queue's attributes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let metrics = loop {
        let (status, metrics) = stack.http_get("/metrics").await;
        assert_eq!(status, 200);
        if metrics.contains("docworker_queue_messages{") {
            break metrics;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let declared = declared_metric_names();
    assert!(declared.len() >= 15, "{declared:?}");
    for name in &declared {
        assert!(
            metrics.contains(&format!("# HELP {name} ")),
            "{name} has no help text:\n{metrics}"
        );
    }
    for series in [
        "docworker_objects_total{outcome=\"finalized\"}",
        "docworker_objects_total{outcome=\"rejected\"}",
        "docworker_objects_total{outcome=\"gone\"}",
        "docworker_rejections_total{reason=\"declared_mismatch\"}",
        "docworker_rejections_total{reason=\"dicom_header_too_large\"}",
        "docworker_retries_total{kind=\"database\"}",
        "docworker_retries_total{kind=\"s3\"}",
        "docworker_poison_messages_total{reason=\"not_json\"}",
        "docworker_messages_requeued_total",
        "docworker_bytes_streamed_total",
        "docworker_objects_in_flight",
    ] {
        assert_eq!(sample(&metrics, series), 0.0, "{series}");
    }
    assert_eq!(
        sample(&metrics, "docworker_ready"),
        1.0,
        "set at the scrape, without a probe of /readyz"
    );

    // promtool (Debian's `prometheus` package) lints the exposition format and the naming
    // conventions. scripts/test.sh installs it; in CI its absence is a failure, not a skip.
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match promtool {
        Ok(child) => child,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "promtool is required in CI: {e}"
            );
            eprintln!("promtool not found ({e}): `promtool check metrics` not run");
            return;
        }
    };
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(metrics.as_bytes())
            .expect("write metrics to promtool");
    }
    let output = child.wait_with_output().expect("promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.trim().is_empty(),
        "promtool check metrics: {:?}\n{report}",
        output.status
    );
}
