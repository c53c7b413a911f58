//! Hostile DICOM headers uploaded through S3 to a real worker: each is rejected with its reason in
//! the row, and the worker's peak RSS stays under the bound its settings promise
//! (`DOCWORKER_CONCURRENCY × (DOCWORKER_MAX_DICOM_HEADER_BYTES + per-object streaming) + base`).

use docworker::config::{RangeConfig, memory_bound};
use docworker_shared::fixtures::{SampleDicom, hostile};

use crate::helpers::Stack;

const MIB: u64 = 1 << 20;

/// Four at once with the default 16 MiB budget: a bound of 4 × (16 + 8) + 64 = 160 MiB, and the
/// default ranged reads' 64 MiB (none of these objects is large enough to be read by ranges). Each
/// input would, read without the budget, cost more than that alone (the figures before the
/// budget are in docs/performance.md).
#[tokio::test(flavor = "multi_thread")]
async fn hostile_dicom_headers_are_rejected_with_their_reason_and_peak_rss_within_the_memory_bound()
{
    let concurrency = 4;
    let budget = 16 * MIB;
    let bound = memory_bound(concurrency, budget, &RangeConfig::DEFAULT);
    let mut stack = Stack::new("hostile-dicom").await;
    stack.start_worker(&[
        ("DOCWORKER_CONCURRENCY", &concurrency.to_string()),
        ("DOCWORKER_MAX_DICOM_HEADER_BYTES", &budget.to_string()),
        ("DOCWORKER_MEMORY_LIMIT", &bound.to_string()),
    ]);
    let bad_uid = SampleDicom {
        study_instance_uid: Some("1.2.SECRET.4".into()),
        ..SampleDicom::default()
    }
    .to_bytes();
    let too_large = "DICOM header runs past 16777216 bytes before Pixel Data";
    let json_too_large = "DICOM JSON of the header runs past 4194304 bytes";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // 12 Mi empty values: 288 MiB of `String`s and 36 MiB of JSON for 12 MiB of bytes.
        (
            "medical/empty-values.dcm",
            hostile::empty_values(12 << 20),
            too_large,
        ),
        (
            "medical/empty-values-as-un.dcm",
            hostile::empty_values_as_un(12 << 20),
            too_large,
        ),
        // 64 MiB of empty elements deflated to a few hundred KiB: 192 MiB of JSON.
        (
            "medical/deflate-bomb.dcm",
            hostile::empty_elements_deflated(8 << 20),
            json_too_large,
        ),
        // 64 MiB of 2 KiB binaries deflated: bytes that only exist after inflation.
        (
            "medical/deflated-binaries.dcm",
            hostile::deflated(
                &hostile::element(0x0009, 0x1001, b"OB", &[0; 2048]),
                32 << 10,
            ),
            too_large,
        ),
        // 3 MiB of control characters: 18 MiB of `\u0001` escapes.
        (
            "medical/escapes.dcm",
            hostile::escaped_text(3 << 20),
            json_too_large,
        ),
        (
            "medical/long-uid.dcm",
            hostile::long_study_uid(10_000),
            "DICOM element (0020,000D) has a UI value longer than the 64 characters its VR allows",
        ),
        (
            "medical/bad-uid.dcm",
            bad_uid,
            "DICOM Study Instance UID is not a valid UID",
        ),
    ];
    for (key, bytes, _) in &cases {
        stack.put(key, bytes.clone(), None, &[]).await;
    }
    let mut rows = Vec::new();
    for (key, _, _) in &cases {
        rows.push(stack.wait_settled(key).await);
    }
    stack.wait_queue_empty().await;
    let peak = stack.worker_peak_rss();
    eprintln!(
        "hostile DICOM: worker peak RSS {} MiB, bound {} MiB",
        peak >> 20,
        bound >> 20
    );
    for ((key, _, reason), row) in cases.iter().zip(&rows) {
        assert_eq!(row.status, "rejected", "{key}");
        let actual = row.rejection_reason.as_deref().unwrap_or_default();
        assert!(actual.starts_with(reason), "{key}: {actual}");
        assert!(
            !actual.contains("SECRET") && !actual.contains("111"),
            "{key}: {actual}"
        );
    }
    assert!(
        peak < bound,
        "peak RSS {} MiB above the bound of {} MiB",
        peak >> 20,
        bound >> 20
    );
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0), "the worker stayed up and stopped cleanly");
    assert!(!log.contains("panicked"), "no panic");
    assert!(!log.contains("SECRET"), "no value in the log");
}
