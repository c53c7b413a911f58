//! Versioned buckets (the deployed bucket is one): a removal changes the row only when it
//! removes what the key held; an old version read again never replaces a newer row; replays keep
//! when the object was uploaded. moto sends no events for delete markers or for deleting one
//! version among several, and none carry a `versionId`, so these tests make the real S3 changes
//! through the API and send the events real S3 sends for them.

use aws_sdk_sqs::types::MessageAttributeValue;
use docworker_shared::event::REPLAY_ATTRIBUTE;
use docworker_shared::fixtures;
use serde_json::Value;

use crate::helpers::{Options, Stack, created_event};
use crate::operations::docworker;

/// An S3 event record for `key` as real S3 shapes it: removal records carry no size or ETag.
fn event(
    stack: &Stack,
    name: &str,
    key: &str,
    version_id: &str,
    sequencer: Option<&str>,
    etag_and_size: Option<(&str, u64)>,
) -> String {
    let (etag, size) = etag_and_size.unwrap_or(("", 0));
    let mut event: Value = created_event(&stack.bucket, key, size, etag);
    event["Records"][0]["eventName"] = name.into();
    let object = &mut event["Records"][0]["s3"]["object"];
    object["versionId"] = version_id.into();
    if let Some(sequencer) = sequencer {
        object["sequencer"] = sequencer.into();
    }
    if etag_and_size.is_none() {
        let object = object.as_object_mut().expect("object");
        object.remove("size");
        object.remove("eTag");
    }
    event.to_string()
}

async fn versioned_stack(name: &str) -> Stack {
    let stack = Stack::with(
        name,
        Options {
            notify: false,
            ..Options::default()
        },
    )
    .await;
    stack.enable_versioning().await;
    stack
}

/// Puts a PDF (each call a different one) and returns (version id, ETag, size).
async fn put_version(stack: &Stack, key: &str, n: u8) -> (String, String, u64) {
    let mut bytes = fixtures::pdf();
    bytes.extend_from_slice(format!("% version {n}\n").as_bytes());
    let size = bytes.len() as u64;
    let put = stack.put(key, bytes, Some("application/pdf"), &[]).await;
    (
        put.version_id().expect("versioned").to_owned(),
        put.e_tag().expect("etag").trim_matches('"').to_owned(),
        size,
    )
}

async fn delete_version(stack: &Stack, key: &str, version_id: &str) {
    stack
        .s3
        .delete_object()
        .bucket(&stack.bucket)
        .key(key)
        .version_id(version_id)
        .send()
        .await
        .expect("DeleteObject ?versionId");
}

/// Deletes the key without a version: S3 puts a delete marker on top and returns its id.
async fn delete_marker(stack: &Stack, key: &str) -> String {
    let deleted = stack
        .s3
        .delete_object()
        .bucket(&stack.bucket)
        .key(key)
        .send()
        .await
        .expect("DeleteObject");
    assert_eq!(deleted.delete_marker(), Some(true));
    deleted.version_id().expect("marker id").to_owned()
}

async fn trail(stack: &Stack, key: &str) -> Vec<(String, bool)> {
    sqlx::query_as(
        "SELECT outcome, replayed FROM document_events WHERE bucket = $1 AND file_key = $2 ORDER BY id",
    )
    .bind(&stack.bucket)
    .bind(key)
    .fetch_all(&stack.db)
    .await
    .expect("audit trail")
}

/// Waits until the key's audit trail has `n` entries (each event settles with one).
async fn wait_trail(stack: &Stack, key: &str, n: usize) -> Vec<(String, bool)> {
    let deadline = std::time::Instant::now() + crate::helpers::WAIT;
    loop {
        let trail = trail(stack, key).await;
        if trail.len() >= n {
            return trail;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{key}: trail {trail:?}\n{}",
            stack.worker_log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_an_old_version_leaves_the_live_document() {
    let mut stack = versioned_stack("oldversion").await;
    let key = "medical/versions.pdf";
    let (v1, _, _) = put_version(&stack, key, 1).await;
    let (v2, etag2, size2) = put_version(&stack, key, 2).await;
    stack.start_worker(&[]);
    let created = event(
        &stack,
        "ObjectCreated:Put",
        key,
        &v2,
        Some("0055AED6DCD90281E6"),
        Some((&etag2, size2)),
    );
    stack.send(&created).await;
    let live = stack.wait_settled(key).await;
    assert_eq!(live.status, "finalized");

    // `DELETE ?versionId=V1`: S3 sends ObjectRemoved:Delete for V1, with a newer sequencer
    // than V2's upload. The sequencer alone would mark the live document deleted.
    delete_version(&stack, key, &v1).await;
    let removed = event(
        &stack,
        "ObjectRemoved:Delete",
        key,
        &v1,
        Some("0055AED6DCD90281E7"),
        None,
    );
    stack.send(&removed).await;
    stack.wait_queue_empty().await;
    let trail = wait_trail(&stack, key, 2).await;
    assert_eq!(trail[1].0, "superseded", "{trail:?}");
    let after = stack.document(key).await.expect("row");
    assert_eq!(after.status, "finalized");
    assert_eq!(after.version_id.as_deref(), Some(v2.as_str()));
    assert_eq!(after.sha256, live.sha256);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_marker_on_the_current_version_marks_the_row_deleted() {
    let mut stack = versioned_stack("marker").await;
    let key = "medical/marked.pdf";
    let (v1, etag1, size1) = put_version(&stack, key, 1).await;
    stack.start_worker(&[]);
    stack
        .send(&event(
            &stack,
            "ObjectCreated:Put",
            key,
            &v1,
            Some("0055AED6DCD90281E5"),
            Some((&etag1, size1)),
        ))
        .await;
    let live = stack.wait_settled(key).await;
    assert_eq!(live.status, "finalized");

    // The marker's event carries the marker's own version id, not the row's.
    let marker = delete_marker(&stack, key).await;
    assert_ne!(marker, v1);
    stack
        .send(&event(
            &stack,
            "ObjectRemoved:DeleteMarkerCreated",
            key,
            &marker,
            Some("0055AED6DCD90281E6"),
            None,
        ))
        .await;
    let row = stack.wait_for(key, |d| d.status == "deleted").await;
    assert_eq!(row.sha256, live.sha256, "the record of what it was stays");
    assert_eq!(row.version_id.as_deref(), Some(v1.as_str()));
    stack.wait_queue_empty().await;

    // Deleting the marker makes V1 current again, with no ObjectCreated event: the removal of
    // the marker brings the document back.
    delete_version(&stack, key, &marker).await;
    stack
        .send(&event(
            &stack,
            "ObjectRemoved:Delete",
            key,
            &marker,
            Some("0055AED6DCD90281E7"),
            None,
        ))
        .await;
    let back = stack.wait_for(key, |d| d.status == "finalized").await;
    assert_eq!(back.version_id.as_deref(), Some(v1.as_str()));
    assert_eq!(back.sha256, live.sha256);
    assert_eq!(
        back.sequencer.as_deref(),
        Some("0055AED6DCD90281E7"),
        "as of the removal: older events stay stale"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_marker_under_a_newer_upload_leaves_the_live_document() {
    let mut stack = versioned_stack("undermarker").await;
    let key = "medical/reuploaded.pdf";
    put_version(&stack, key, 1).await;
    let marker = delete_marker(&stack, key).await;
    let (v2, etag2, size2) = put_version(&stack, key, 2).await;
    stack.start_worker(&[]);
    stack
        .send(&event(
            &stack,
            "ObjectCreated:Put",
            key,
            &v2,
            None,
            Some((&etag2, size2)),
        ))
        .await;
    let live = stack.wait_settled(key).await;
    assert_eq!(live.status, "finalized");

    // The marker's event arrives last and, as from moto or a redrive of an old message, without
    // a sequencer: what the key holds now decides, and it holds V2.
    stack
        .send(&event(
            &stack,
            "ObjectRemoved:DeleteMarkerCreated",
            key,
            &marker,
            None,
            None,
        ))
        .await;
    stack.wait_queue_empty().await;
    let trail = wait_trail(&stack, key, 2).await;
    assert_eq!(trail[1].0, "superseded", "{trail:?}");
    let after = stack.document(key).await.expect("row");
    assert_eq!(after.status, "finalized");
    assert_eq!(after.version_id.as_deref(), Some(v2.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_of_an_old_version_does_not_overwrite_the_newer_row() {
    let mut stack = versioned_stack("replayold").await;
    let key = "medical/replayed.pdf";
    let (v1, etag1, size1) = put_version(&stack, key, 1).await;
    let (v2, etag2, size2) = put_version(&stack, key, 2).await;
    stack.start_worker(&[]);
    stack
        .send(&event(
            &stack,
            "ObjectCreated:Put",
            key,
            &v2,
            Some("0055AED6DCD90281E6"),
            Some((&etag2, size2)),
        ))
        .await;
    let live = stack.wait_settled(key).await;
    assert_eq!(live.version_id.as_deref(), Some(v2.as_str()));

    // A replayed event pinned to V1 (read before V2 was uploaded): no sequencer to order it.
    stack
        .sqs
        .send_message()
        .queue_url(&stack.queue_url)
        .message_body(event(
            &stack,
            "ObjectCreated:Put",
            key,
            &v1,
            None,
            Some((&etag1, size1)),
        ))
        .message_attributes(
            REPLAY_ATTRIBUTE,
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("true")
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect("SendMessage");
    stack.wait_queue_empty().await;
    let trail = wait_trail(&stack, key, 2).await;
    assert_eq!(trail[1], ("superseded".into(), true), "{trail:?}");
    let after = stack.document(key).await.expect("row");
    assert_eq!(after.version_id.as_deref(), Some(v2.as_str()));
    assert_eq!(after.file_size, Some(size2 as i64));
    assert_eq!(after.sha256, live.sha256);

    // `docworker replay` pins the version it reads: the current one, which is written again.
    let (code, stdout, stderr) = docworker(
        &stack,
        &["replay", "--bucket", &stack.bucket, "--rate", "100"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("enqueued 1"), "{stdout}");
    let replayed = stack
        .wait_for(key, |d| d.processed_at > after.processed_at)
        .await;
    assert_eq!(replayed.version_id.as_deref(), Some(v2.as_str()));
    assert_eq!(replayed.sha256, live.sha256);
    assert_eq!(
        wait_trail(&stack, key, 3).await[2],
        ("finalized".into(), true)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_keeps_uploaded_at_and_records_the_replay_in_the_audit_trail() {
    let mut stack = Stack::new("replaytime").await;
    stack.enable_versioning().await;
    stack.start_worker(&[]);
    let key = "medical/kept.pdf";
    stack
        .put(key, fixtures::pdf(), Some("application/pdf"), &[])
        .await;
    let first = stack.wait_settled(key).await;
    assert_eq!(first.status, "finalized");
    stack.wait_queue_empty().await;
    // Replays happen long after uploads; a second is enough to tell the two times apart.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let (code, stdout, stderr) = docworker(
        &stack,
        &["replay", "--bucket", &stack.bucket, "--rate", "100"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("enqueued 1"), "{stdout}");
    let replayed = stack
        .wait_for(key, |d| d.processed_at > first.processed_at)
        .await;
    assert_eq!(replayed.uploaded_at, first.uploaded_at, "upload time kept");
    let (at, replayed_flag): (chrono::DateTime<chrono::Utc>, bool) = sqlx::query_as(
        "SELECT at, replayed FROM document_events WHERE bucket = $1 AND file_key = $2
         ORDER BY id DESC LIMIT 1",
    )
    .bind(&stack.bucket)
    .bind(key)
    .fetch_one(&stack.db)
    .await
    .expect("audit row");
    assert!(replayed_flag, "the audit trail says it was a replay");
    assert!(
        at > first.uploaded_at.expect("uploaded_at") + chrono::Duration::seconds(1),
        "and when it happened"
    );

    // `--since` selects on the upload time, which the replay left alone.
    let since =
        (first.uploaded_at.expect("uploaded_at") + chrono::Duration::seconds(1)).to_rfc3339();
    let (code, stdout, stderr) = docworker(
        &stack,
        &[
            "replay",
            "--bucket",
            &stack.bucket,
            "--status",
            "finalized",
            "--since",
            &since,
            "--dry-run",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("selected 0"), "{stdout}");
}

/// The race the current-version check leaves: between reading the row, asking S3 and writing, a
/// newer version's own event may be applied. The store refuses a write decided before that.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_decided_from_an_older_look_at_the_row_is_refused() {
    use docworker_shared::{
        Applied, Category, DocumentStore, ObjectFacts, Outcome, Rejection, Seen, Trail,
        UploadMetadata,
    };
    let stack = versioned_stack("seen").await;
    let store = DocumentStore::new(stack.db.clone());
    let key = "medical/raced.pdf";
    let facts = |version: &str, sequencer: Option<&str>| ObjectFacts {
        bucket: stack.bucket.clone(),
        key: key.to_owned(),
        category: Category::Medical,
        etag: None,
        version_id: Some(version.to_owned()),
        sequencer: sequencer.map(str::to_owned),
        uploaded_at: chrono::Utc::now(),
        declared_content_type: None,
        file_size: Some(0),
        upload: UploadMetadata::default(),
    };
    let outcome = Outcome::Rejected {
        reason: Rejection::Empty,
        content_type: None,
        sha256: None,
    };
    let trail = |seen| Trail {
        message_id: "m",
        attempt: 1,
        started: std::time::Instant::now(),
        replayed: true,
        seen,
    };
    let write = |version: &'static str, sequencer, seen| {
        let (store, facts, outcome) = (store.clone(), facts(version, sequencer), outcome.clone());
        async move {
            store
                .record(&facts, &outcome, "test", trail(seen))
                .await
                .expect("write")
        }
    };

    // A replay of V1 read "no row" and asked S3; meanwhile V2's live event was applied.
    let no_row = Some(Seen { updated_at: None });
    assert_eq!(
        write("v2", Some("0055AED6DCD90281E6"), None).await,
        Applied::Written
    );
    assert_eq!(write("v1", None, no_row).await, Applied::Stale);
    let row = store
        .row_state(&stack.bucket, key)
        .await
        .expect("row")
        .expect("row");
    assert_eq!(row.version_id.as_deref(), Some("v2"));

    // Decided from the row as it is now, the write applies; so does one of the row's own
    // version, however old the look.
    let now = Some(Seen {
        updated_at: Some(row.updated_at),
    });
    assert_eq!(write("v3", None, now).await, Applied::Written);
    assert_eq!(write("v3", None, no_row).await, Applied::Written);
    assert_eq!(
        write("v2", None, now).await,
        Applied::Stale,
        "v3 was written since"
    );
    let trail: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM document_events WHERE bucket = $1 AND file_key = $2 ORDER BY id",
    )
    .bind(&stack.bucket)
    .bind(key)
    .fetch_all(&stack.db)
    .await
    .expect("audit trail");
    assert_eq!(
        trail,
        ["rejected", "stale", "rejected", "rejected", "stale"]
    );
}
