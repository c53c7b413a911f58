//! The pipeline end to end: upload through S3, let S3 notify SQS, run the real worker, read the
//! rows it wrote.

use std::time::Duration;

use docworker_shared::fixtures::{self, SampleDicom, TRANSFER_SYNTAXES};

use crate::helpers::{Options, Stack, created_event, sha256_hex};

fn sample(ts: &str, n: usize) -> SampleDicom {
    SampleDicom {
        sop_instance_uid: Some(format!("1.2.826.0.1.3680043.8.498.7.{n}")),
        study_instance_uid: Some(format!("1.2.826.0.1.3680043.8.498.6.{n}")),
        ..SampleDicom::with_transfer_syntax(ts)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dicom_in_every_transfer_syntax_is_finalized_with_uids_and_json() {
    let mut stack = Stack::new("dicom").await;
    stack.start_worker(&[]);
    let mut keys = Vec::new();
    for (n, (ts, _)) in TRANSFER_SYNTAXES.iter().enumerate() {
        let key = format!("medical/study {n}/ts+{ts}é.dcm");
        let bytes = sample(ts, n).to_bytes();
        stack.put(&key, bytes, Some("application/dicom"), &[]).await;
        keys.push((key, n, *ts));
    }
    for (key, n, ts) in &keys {
        let row = stack.wait_settled(key).await;
        assert_eq!(row.status, "finalized", "{key}: {:?}", row.rejection_reason);
        assert_eq!(row.content_type.as_deref(), Some("application/dicom"));
        assert_eq!(row.category, "medical");
        assert_eq!(row.transfer_syntax_uid.as_deref(), Some(*ts));
        let study = format!("1.2.826.0.1.3680043.8.498.6.{n}");
        let sop = format!("1.2.826.0.1.3680043.8.498.7.{n}");
        assert_eq!(row.study_instance_uid.as_deref(), Some(study.as_str()));
        assert_eq!(row.sop_instance_uid.as_deref(), Some(sop.as_str()));
        assert_eq!(
            row.series_instance_uid.as_deref(),
            Some("1.2.826.0.1.3680043.8.498.1.1")
        );
        assert_eq!(
            row.sop_class_uid.as_deref(),
            Some("1.2.840.10008.5.1.4.1.1.2")
        );
        assert_eq!(row.modality.as_deref(), Some("CT"));
        assert_eq!(row.patient_id.as_deref(), Some("PAT-0001"));
        assert_eq!(row.study_date, chrono::NaiveDate::from_ymd_opt(2026, 1, 15));
        let json = row.dicom.expect("dicom JSON");
        assert_eq!(json["0020000D"]["Value"][0], study.as_str());
        assert_eq!(json["00080018"]["Value"][0], sop.as_str());
        assert!(json.get("7FE00010").is_none(), "no Pixel Data in the JSON");
        assert!(
            json.get("00091001").is_none(),
            "no binary value above 1 KiB"
        );
        let bytes = sample(ts, *n).to_bytes();
        assert_eq!(row.file_size, Some(bytes.len() as i64));
        assert_eq!(row.sha256.as_deref(), Some(sha256_hex(&bytes).as_str()));
        assert!(row.integrity.is_some());
    }
    stack.wait_queue_empty().await;
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0), "clean exit on SIGTERM");
    assert!(log.contains("s3:TestEvent"), "the TestEvent was recognised");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pdf_is_finalized_with_the_upload_metadata() {
    let mut stack = Stack::new("pdf").await;
    stack.start_worker(&[]);
    let key = "reports/2026/discharge letter.pdf";
    stack
        .put(
            key,
            fixtures::pdf(),
            Some("application/pdf"),
            &[
                ("original-filename", "Discharge letter.pdf"),
                ("uploaded-by", "user-42"),
                ("case-id", "case-7"),
                ("title", "Discharge letter"),
                ("description", "After the implant"),
            ],
        )
        .await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(row.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(
        row.declared_content_type.as_deref(),
        Some("application/pdf")
    );
    assert_eq!(row.category, "reports");
    assert_eq!(
        row.original_filename.as_deref(),
        Some("Discharge letter.pdf")
    );
    assert_eq!(row.uploaded_by.as_deref(), Some("user-42"));
    assert_eq!(row.case_id.as_deref(), Some("case-7"));
    assert_eq!(row.title.as_deref(), Some("Discharge letter"));
    assert_eq!(row.description.as_deref(), Some("After the implant"));
    assert_eq!(row.file_size, Some(fixtures::pdf().len() as i64));
    assert!(row.dicom.is_none() && row.study_instance_uid.is_none());
    assert!(row.uploaded_at.is_some() && row.processed_at.is_some());
    assert!(
        row.processor_version
            .as_deref()
            .is_some_and(|v| v.starts_with("docworker "))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejection_gives_the_reason_and_keeps_the_detected_type_size_and_hash() {
    let mut stack = Stack::new("mismatch").await;
    stack.start_worker(&[]);
    stack
        .put(
            "medical/scan.pdf",
            fixtures::png(),
            Some("application/pdf"),
            &[],
        )
        .await;
    stack
        .put(
            "medical/notes",
            b"plain words\n".to_vec(),
            Some("application/dicom"),
            &[],
        )
        .await;
    stack
        .put("admin/ct.dcm", SampleDicom::default().to_bytes(), None, &[])
        .await;
    stack
        .put(
            "medical/empty.pdf",
            Vec::new(),
            Some("application/pdf"),
            &[],
        )
        .await;
    let fake_dicom = {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend_from_slice(&[0xFF; 600]);
        bytes
    };
    stack.put("medical/broken.dcm", fake_dicom, None, &[]).await;
    // The detected type, where the bytes were read before the verdict: none for an empty object.
    let expectations = [
        (
            "medical/scan.pdf",
            "declared application/pdf but content is image/png",
            Some("image/png"),
        ),
        (
            "medical/notes",
            "declared application/dicom but content is text/plain",
            Some("text/plain"),
        ),
        (
            "admin/ct.dcm",
            "application/dicom is not allowed in category admin",
            Some("application/dicom"),
        ),
        ("medical/empty.pdf", "object is empty", None),
        (
            "medical/broken.dcm",
            "DICOM header unreadable",
            Some("application/dicom"),
        ),
    ];
    for (key, reason, detected) in expectations {
        let row = stack.wait_settled(key).await;
        assert_eq!(row.status, "rejected", "{key}");
        let actual = row.rejection_reason.unwrap_or_default();
        assert!(actual.starts_with(reason), "{key}: {actual}");
        assert_eq!(row.content_type.as_deref(), detected, "{key}");
        assert_eq!(row.sha256.is_some(), detected.is_some(), "{key}");
    }
    let png = stack.wait_settled("medical/scan.pdf").await;
    assert_eq!(png.file_size, Some(fixtures::png().len() as i64));
    assert_eq!(
        png.sha256.as_deref(),
        Some(sha256_hex(&fixtures::png()).as_str())
    );
    assert_eq!(
        png.declared_content_type.as_deref(),
        Some("application/pdf")
    );
    stack.wait_queue_empty().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversize_object_is_rejected_without_fetching_its_body() {
    let mut stack = Stack::new("oversize").await;
    stack.start_worker(&[("DOCWORKER_MAX_OBJECT_BYTES", "50000")]);
    let key = "medical/huge.dcm";
    let big = SampleDicom {
        pixel_bytes: 120_000,
        ..SampleDicom::default()
    }
    .to_bytes();
    let size = big.len();
    stack
        .put(
            key,
            big,
            Some("application/dicom"),
            &[("uploaded-by", "user-1")],
        )
        .await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "rejected");
    assert_eq!(
        row.rejection_reason.as_deref(),
        Some(format!("object is {size} bytes, above the maximum of 50000 bytes").as_str())
    );
    assert_eq!(row.file_size, Some(size as i64));
    assert_eq!(
        row.uploaded_by.as_deref(),
        Some("user-1"),
        "metadata came from HeadObject"
    );
    assert!(row.sha256.is_none(), "the body was never hashed");
    stack.wait_queue_empty().await;

    // The emulator's own request log shows what the worker asked for this key: HEAD, never GET.
    let moto_log = std::env::var("DOCWORKER_MOTO_LOG")
        .expect("DOCWORKER_MOTO_LOG names moto_server's request log (infra/local/stack.sh env)");
    let requests = std::fs::read_to_string(&moto_log).expect("read moto log");
    let path = format!("/{}/medical/huge.dcm", stack.bucket);
    assert!(
        requests.contains(&format!("\"HEAD {path}")),
        "the worker asked for the metadata"
    );
    assert!(
        !requests.contains(&format!("\"GET {path} ")),
        "the worker never fetched the body"
    );
    assert!(
        requests.contains(&format!("\"PUT {path}?tagging ")),
        "but tagged the object rejected"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_delivery_leaves_one_row_with_the_same_content() {
    let mut stack = Stack::new("duplicate").await;
    stack.start_worker(&[]);
    let key = "images/2026/x ray+1.png";
    let put = stack
        .put(key, fixtures::png(), Some("image/png"), &[])
        .await;
    let first = stack.wait_settled(key).await;
    assert_eq!(first.status, "finalized");

    // The same event again, twice at once, as SQS's at-least-once delivery may do.
    let event = created_event(
        &stack.bucket,
        key,
        fixtures::png().len() as u64,
        put.e_tag().expect("ETag"),
    )
    .to_string();
    stack.send(&event).await;
    stack.send(&event).await;
    let again = stack
        .wait_for(key, |d| d.processed_at > first.processed_at)
        .await;
    stack.wait_queue_empty().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.count_rows().await, 1);
    let last = stack.document(key).await.expect("row");
    for row in [&again, &last] {
        assert_eq!(row.id, first.id);
        assert_eq!(row.status, first.status);
        assert_eq!(row.sha256, first.sha256);
        assert_eq!(row.file_size, first.file_size);
        assert_eq!(row.etag, first.etag);
        assert_eq!(row.content_type, first.content_type);
        assert_eq!(row.uploaded_by, first.uploaded_by);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_row_is_finalized_in_place() {
    let mut stack = Stack::new("pending").await;
    let key = "referrals/2026/letter.pdf";
    let id: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO documents (bucket, file_key, category, title, uploaded_by, case_id, status)
         VALUES ($1, $2, 'referrals', 'Referral from Dr. A', 'web-user-9', 'case-77', 'pending')
         RETURNING id",
    )
    .bind(&stack.bucket)
    .bind(key)
    .fetch_one(&stack.db)
    .await
    .expect("insert pending row");
    stack.start_worker(&[]);
    stack
        .put(
            key,
            fixtures::pdf(),
            Some("application/pdf"),
            &[
                ("title", "letter"),
                ("uploaded-by", "someone-else"),
                ("original-filename", "Letter.PDF"),
            ],
        )
        .await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.id, id, "the pending row itself was finalized");
    assert_eq!(row.status, "finalized");
    assert_eq!(
        row.title.as_deref(),
        Some("Referral from Dr. A"),
        "the upload path's title is kept"
    );
    assert_eq!(row.uploaded_by.as_deref(), Some("web-user-9"));
    assert_eq!(row.case_id.as_deref(), Some("case-77"));
    assert_eq!(
        row.original_filename.as_deref(),
        Some("Letter.PDF"),
        "what it lacked is filled"
    );
    assert_eq!(stack.count_rows().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_in_an_sns_envelope_is_processed() {
    let mut stack = Stack::with(
        "sns",
        Options {
            notify: false,
            ..Options::default()
        },
    )
    .await;
    stack.start_worker(&[]);
    let key = "medical/wrapped.dcm";
    let bytes = SampleDicom::default().to_bytes();
    let put = stack.put(key, bytes.clone(), None, &[]).await;
    let event = created_event(
        &stack.bucket,
        key,
        bytes.len() as u64,
        put.e_tag().expect("ETag"),
    );
    let envelope = serde_json::json!({
        "Type": "Notification",
        "MessageId": "8f1b6a7e-0000-4000-8000-000000000001",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:uploads",
        "Subject": "Amazon S3 Notification",
        "Message": event.to_string(),
        "Timestamp": "2026-11-24T12:00:00.000Z",
    });
    stack.send(&envelope.to_string()).await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(
        row.sop_instance_uid.as_deref(),
        Some("1.2.826.0.1.3680043.8.498.1.1.1")
    );
    stack.wait_queue_empty().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_messages_go_to_the_dead_letter_queue_and_valid_ones_still_finish() {
    let mut stack = Stack::with(
        "poison",
        Options {
            visibility_timeout_secs: 1,
            max_receive_count: 2,
            notify: true,
        },
    )
    .await;
    stack.start_worker(&[]);
    stack.send("this is not JSON").await;
    stack
        .send(r#"{"hello": "a JSON body of another shape"}"#)
        .await;
    stack
        .put("medical/ok.pdf", fixtures::pdf(), None, &[])
        .await;
    assert_eq!(
        stack.wait_settled("medical/ok.pdf").await.status,
        "finalized"
    );

    let deadline = std::time::Instant::now() + crate::helpers::WAIT;
    loop {
        let (dlq_visible, _) = stack.queue_counts(&stack.dlq_url).await;
        if dlq_visible == 2 && stack.queue_counts(&stack.queue_url).await == (0, 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "poison did not reach the DLQ:\n{}",
            stack.worker_log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let log = stack.worker_log();
    assert!(log.contains("message body is not JSON"), "reason logged");
    assert!(
        log.contains("not an S3 event notification"),
        "reason logged"
    );
    assert!(
        !log.contains("a JSON body of another shape"),
        "bodies are not logged"
    );
}

/// A DICOM file that is also an executable, a web page or a PDF by its preamble is refused;
/// one that is also a TIFF (PS3.10 7.5) or carries vendor text is not.
#[tokio::test(flavor = "multi_thread")]
async fn a_dicom_preamble_with_another_formats_signature_is_rejected() {
    let mut stack = Stack::new("preamble").await;
    stack.start_worker(&[]);
    let with_preamble = |n: usize, head: &[u8]| {
        let mut bytes = sample(uids_explicit(), n).to_bytes();
        bytes[..128].fill(0);
        bytes[..head.len()].copy_from_slice(head);
        bytes
    };
    let cases: [(&str, &[u8], Option<&str>); 5] = [
        (
            "medical/exe.dcm",
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xFF\xFF",
            Some("application/vnd.microsoft.portable-executable"),
        ),
        (
            "medical/html.dcm",
            b"\x00\x00<html><script>alert(1)</script>",
            Some("text/html"),
        ),
        (
            "medical/pdf.dcm",
            b"%PDF-1.7\n1 0 obj",
            Some("application/pdf"),
        ),
        ("medical/tiff.dcm", b"II*\x00\x08\x00\x00\x00", None),
        ("medical/vendor.dcm", b"SCANNER VENDOR 4.2", None),
    ];
    for (n, (key, head, _)) in cases.iter().enumerate() {
        stack.put(key, with_preamble(n, head), None, &[]).await;
    }
    for (key, _, signature) in cases {
        let row = stack.wait_settled(key).await;
        match signature {
            Some(signature) => {
                assert_eq!(row.status, "rejected", "{key}");
                assert_eq!(
                    row.rejection_reason.as_deref(),
                    Some(
                        format!(
                            "DICOM preamble carries a {signature} signature: refused as a file \
                             that is two formats (CVE-2019-11687)"
                        )
                        .as_str()
                    ),
                    "{key}"
                );
                assert_eq!(row.content_type.as_deref(), Some("application/dicom"));
                assert!(row.sha256.is_some(), "{key}");
                assert!(row.study_instance_uid.is_none(), "{key}: no DICOM columns");
            }
            None => assert_eq!(row.status, "finalized", "{key}: {:?}", row.rejection_reason),
        }
    }
    stack.wait_queue_empty().await;
}

fn uids_explicit() -> &'static str {
    TRANSFER_SYNTAXES[1].0
}

/// Office documents judged by their central directory, read from the stream's tail: bombs that
/// the local headers hide (ZIP64 sizes, data descriptors) are refused, a sound document passes.
#[tokio::test(flavor = "multi_thread")]
async fn an_office_zip_bomb_hidden_from_the_local_headers_is_rejected() {
    use docworker_shared::fixtures::{ZipArchive, ZipMember};
    use docworker_shared::{sniff::SNIFF_LEN, verify};

    let mut stack = Stack::new("zipdir").await;
    stack.start_worker(&[]);
    let mut descriptor = ZipArchive::docx();
    descriptor.members[2] = ZipMember {
        data_descriptor: true,
        ..ZipMember::new("word/document.xml", 4_000, 4_000_000_000)
    };
    let mut zip64 = ZipArchive::docx();
    zip64.zip64_end = true;
    zip64.members[2] = ZipMember {
        zip64: true,
        ..ZipMember::new("word/document.xml", 4_000, 1 << 40)
    };
    // A document larger than the sniffed prefix, so that the directory comes from the tail.
    let mut sound = ZipArchive::docx();
    sound
        .members
        .push(ZipMember::new("word/media/image1.png", 200_000, 200_000));
    sound.comment = vec![b'c'; 1_000];
    let cases = [
        (
            "reports/descriptor-bomb.docx",
            descriptor.to_bytes(),
            Some("archive entry word/document.xml expands 1000000x to 4000000000 bytes"),
        ),
        (
            "reports/zip64-bomb.docx",
            zip64.to_bytes(),
            Some("archive entry word/document.xml expands 274877906x to 1099511627776 bytes"),
        ),
        ("reports/sound.docx", sound.to_bytes(), None),
    ];
    for (key, bytes, reason) in &cases {
        if reason.is_some() {
            assert_eq!(
                verify::check_archive(&bytes[..bytes.len().min(SNIFF_LEN)]),
                Ok(()),
                "{key}: the local headers alone pass"
            );
        }
        stack.put(key, bytes.clone(), None, &[]).await;
    }
    for (key, bytes, reason) in &cases {
        let row = stack.wait_settled(key).await;
        match reason {
            Some(reason) => {
                assert_eq!(row.status, "rejected", "{key}");
                let actual = row.rejection_reason.unwrap_or_default();
                assert!(actual.starts_with(reason), "{key}: {actual}");
                assert_eq!(
                    row.content_type.as_deref(),
                    Some(docworker_shared::category::DOCX)
                );
            }
            None => {
                assert_eq!(row.status, "finalized", "{key}: {:?}", row.rejection_reason);
                assert_eq!(row.file_size, Some(bytes.len() as i64));
            }
        }
    }
    stack.wait_queue_empty().await;
}
