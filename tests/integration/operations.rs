//! What operators see: metrics that match what happened, health and readiness.

use docworker_shared::fixtures::{self, SampleDicom};

use crate::helpers::Stack;

/// The value of one sample line `name{labels} value` in Prometheus text.
fn sample(metrics: &str, series: &str) -> f64 {
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

    let (status, metrics) = stack.http_get("/metrics").await;
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
