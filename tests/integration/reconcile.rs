//! `docworker reconcile`: drift made behind the worker's back (notifications off, rows changed
//! by hand, an object deleted without its event) is found, repaired with `--fix`, and gone on the
//! next run.

use std::collections::BTreeMap;

use docworker_shared::fixtures;
use serde_json::Value;

use crate::helpers::{Options, Stack, created_event};
use crate::operations::docworker;

/// `reconcile --json`'s lines: the findings by key, and the summary.
fn report(stdout: &str) -> (BTreeMap<String, Value>, Value) {
    let mut findings = BTreeMap::new();
    let mut summary = None;
    for line in stdout.lines() {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(s) = value.get("summary") {
            assert!(summary.is_none(), "one summary:\n{stdout}");
            summary = Some(s.clone());
        } else {
            let key = value["key"].as_str().expect("key").to_owned();
            assert!(
                findings.insert(key, value).is_none(),
                "one finding per key:\n{stdout}"
            );
        }
    }
    (findings, summary.expect("a summary line"))
}

fn reconcile(stack: &Stack, extra: &[&str]) -> (BTreeMap<String, Value>, Value) {
    let mut args = vec!["reconcile", "--bucket", stack.bucket.as_str(), "--json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = docworker(stack, &args);
    assert_eq!(code, Some(0), "{stderr}");
    report(&stdout)
}

/// Puts an object and hands the worker its event, as S3 would have, then waits for its row.
async fn put_processed(stack: &Stack, key: &str, bytes: Vec<u8>) {
    let size = bytes.len() as u64;
    let put = stack.put(key, bytes, None, &[]).await;
    let event = created_event(&stack.bucket, key, size, put.e_tag().expect("ETag"));
    stack.send(&event.to_string()).await;
    stack.wait_settled(key).await;
}

/// Inserts the `pending` row the upload path writes, created `age` ago.
async fn pending_row(stack: &Stack, key: &str, age: &str) {
    sqlx::query(
        "INSERT INTO documents (bucket, file_key, category, status, created_at, updated_at)
         VALUES ($1, $2, 'reports', 'pending', now() - $3::interval, now() - $3::interval)",
    )
    .bind(&stack.bucket)
    .bind(key)
    .bind(age)
    .execute(&stack.db)
    .await
    .expect("pending row");
}

fn kinds(findings: &BTreeMap<String, Value>) -> BTreeMap<&str, (&str, &str)> {
    findings
        .iter()
        .map(|(key, f)| {
            (
                key.as_str(),
                (
                    f["finding"].as_str().expect("finding"),
                    f["repair"].as_str().expect("repair"),
                ),
            )
        })
        .collect()
}

/// Gives `documents.file_key` a locale's collation, as on a database created with one (RDS
/// creates `en_US.UTF-8` databases; the local one is `C.UTF-8`, which happens to order as S3
/// does). In a locale's order case, punctuation and accents sort otherwise than bytes do.
async fn locale_collation(stack: &Stack) {
    sqlx::query(r#"ALTER TABLE documents ALTER COLUMN file_key TYPE text COLLATE "en-US-x-icu""#)
        .execute(&stack.db)
        .await
        .expect("a locale's collation");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_finds_each_kind_of_drift_fixes_it_and_then_finds_none() {
    let mut stack = Stack::with(
        "reconcile",
        Options {
            notify: false,
            ..Options::default()
        },
    )
    .await;
    locale_collation(&stack).await;
    stack.enable_versioning().await;
    stack.start_worker(&[]);

    // In step with their rows. Byte order and the table's order disagree on these (case,
    // punctuation, accents): a walk in the table's order would pair them wrongly.
    let in_step = [
        "reports/B.pdf",
        "reports/a-b.pdf",
        "reports/a.pdf",
        "reports/é.pdf",
    ];
    for key in in_step {
        put_processed(&stack, key, fixtures::pdf()).await;
    }
    // Object without a row: put with notifications off.
    stack
        .put("reports/unannounced.pdf", fixtures::pdf(), None, &[])
        .await;
    // Object without a row: the row deleted by hand.
    put_processed(&stack, "reports/row-deleted.pdf", fixtures::pdf()).await;
    sqlx::query("DELETE FROM documents WHERE bucket = $1 AND file_key = $2")
        .bind(&stack.bucket)
        .bind("reports/row-deleted.pdf")
        .execute(&stack.db)
        .await
        .expect("delete the row");
    // Row without an object: deleted without an event (a delete marker is current).
    put_processed(&stack, "reports/vanished.pdf", fixtures::pdf()).await;
    stack.delete_object("reports/vanished.pdf").await;
    // Mismatch: overwritten without an event.
    put_processed(&stack, "reports/overwritten.pdf", fixtures::pdf()).await;
    let before = stack.document("reports/overwritten.pdf").await.unwrap();
    let newer = stack
        .put(
            "reports/overwritten.pdf",
            b"The second version of the report, as plain text.\n".to_vec(),
            None,
            &[],
        )
        .await;
    // Stale pending rows: an upload that never came, and one whose event was lost.
    pending_row(&stack, "reports/abandoned.pdf", "2 hours").await;
    pending_row(&stack, "reports/lost-event.pdf", "2 hours").await;
    stack
        .put("reports/lost-event.pdf", fixtures::pdf(), None, &[])
        .await;
    // Work in progress: a young pending row is not drift.
    pending_row(&stack, "reports/uploading.pdf", "1 minute").await;
    stack.wait_queue_empty().await;

    let (findings, summary) = reconcile(&stack, &[]);
    let expected = BTreeMap::from([
        ("reports/abandoned.pdf", ("stale_pending", "mark_deleted")),
        ("reports/lost-event.pdf", ("stale_pending", "replay")),
        ("reports/overwritten.pdf", ("mismatch", "replay")),
        ("reports/row-deleted.pdf", ("object_without_row", "replay")),
        ("reports/unannounced.pdf", ("object_without_row", "replay")),
        (
            "reports/vanished.pdf",
            ("row_without_object", "mark_deleted"),
        ),
    ]);
    assert_eq!(kinds(&findings), expected, "{findings:#?}");
    let overwritten = &findings["reports/overwritten.pdf"];
    assert_eq!(
        overwritten["differs"],
        serde_json::json!(["etag", "version", "size"])
    );
    assert_eq!(
        overwritten["object"]["etag"].as_str(),
        newer.e_tag().map(|e| e.trim_matches('"'))
    );
    assert_eq!(overwritten["row"]["etag"].as_str(), before.etag.as_deref());
    assert_eq!(
        findings["reports/vanished.pdf"]["object"],
        Value::Null,
        "a delete marker is no object"
    );
    assert_eq!(summary["objects"], 8, "{summary}");
    assert_eq!(summary["rows"], 9, "{summary}");
    assert_eq!(summary["findings"]["object_without_row"], 2);
    assert_eq!(summary["findings"]["row_without_object"], 1);
    assert_eq!(summary["findings"]["mismatch"], 1);
    assert_eq!(summary["findings"]["stale_pending"], 2);
    assert_eq!(
        summary["repaired"],
        Value::Null,
        "nothing repaired without --fix"
    );
    assert_eq!(
        summary["last_key"], "reports/é.pdf",
        "the greatest key, byte-wise"
    );

    // Resuming, and narrowing by prefix or time.
    let (after, summary) = reconcile(&stack, &["--start-after", "reports/overwritten.pdf"]);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        [
            "reports/row-deleted.pdf",
            "reports/unannounced.pdf",
            "reports/vanished.pdf"
        ]
    );
    assert_eq!(summary["last_key"], "reports/é.pdf");
    let (none, summary) = reconcile(&stack, &["--prefix", "reports/a"]);
    assert_eq!(
        kinds(&none),
        BTreeMap::from([("reports/abandoned.pdf", ("stale_pending", "mark_deleted"))])
    );
    assert_eq!(summary["objects"], 2, "reports/a-b.pdf and reports/a.pdf");
    let (future, _) = reconcile(&stack, &["--since", "2100-01-01T00:00:00Z"]);
    assert!(future.is_empty(), "{future:#?}");

    // The repair.
    let (repaired, summary) = reconcile(&stack, &["--fix", "--rate", "100"]);
    assert_eq!(kinds(&repaired), expected);
    for (key, (_, repair)) in &expected {
        let done = if *repair == "replay" {
            "enqueued"
        } else {
            "marked_deleted"
        };
        assert_eq!(repaired[*key]["repaired"], done, "{key}");
    }
    assert_eq!(
        summary["repaired"],
        serde_json::json!({"enqueued": 4, "marked_deleted": 2, "skipped": 0})
    );
    for key in ["reports/vanished.pdf", "reports/abandoned.pdf"] {
        assert_eq!(
            stack.document(key).await.unwrap().status,
            "deleted",
            "{key}"
        );
    }
    let gone: Vec<(String, String)> = sqlx::query_as(
        "SELECT file_key, message_id FROM document_events
         WHERE bucket = $1 AND outcome = 'gone' ORDER BY file_key",
    )
    .bind(&stack.bucket)
    .fetch_all(&stack.db)
    .await
    .expect("audit trail");
    assert_eq!(gone.len(), 2, "{gone:?}");
    assert!(
        gone.iter()
            .all(|(_, id)| id.starts_with("docworker-reconcile-")),
        "{gone:?}"
    );
    for key in [
        "reports/unannounced.pdf",
        "reports/row-deleted.pdf",
        "reports/lost-event.pdf",
    ] {
        assert_eq!(stack.wait_settled(key).await.status, "finalized", "{key}");
    }
    let etag = newer.e_tag().map(|e| e.trim_matches('"').to_owned());
    stack
        .wait_for("reports/overwritten.pdf", |d| d.etag == etag)
        .await;
    stack.wait_queue_empty().await;
    assert!(
        stack.worker_log().contains("\"replayed\":true"),
        "repairs went through the replay path"
    );

    let (after_fix, summary) = reconcile(&stack, &[]);
    assert!(after_fix.is_empty(), "{after_fix:#?}");
    assert_eq!(summary["objects"], 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_of_a_missing_bucket_is_one_line_and_a_failure() {
    let stack = Stack::with(
        "reconcilemissing",
        Options {
            notify: false,
            ..Options::default()
        },
    )
    .await;
    let missing = format!("{}-missing", stack.bucket);
    let (code, stdout, stderr) = docworker(&stack, &["reconcile", "--bucket", &missing]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty(), "no report: {stdout}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("docworker:"))
        .collect();
    assert_eq!(
        errors,
        [format!(
            "docworker: reconcile of s3://{missing}/ stopped before the first key: bucket {missing} does not exist"
        )],
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_walk_reads_rows_through_an_index_in_byte_order() {
    let stack = Stack::with(
        "reconcileplan",
        Options {
            notify: false,
            ..Options::default()
        },
    )
    .await;
    // Then the unique (bucket, file_key) index is in the locale's order and cannot serve the walk.
    locale_collation(&stack).await;
    let mut tx = stack.db.begin().await.expect("transaction");
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .expect("set");
    // The store's statement with literals for its parameters (EXPLAIN takes none).
    let statement = docworker_shared::store::RECONCILE_PAGE
        .replace("$1", "'b'")
        .replace("$2", "'reports/'")
        .replace("$3", "'reports/k'")
        .replace("$4", "3600")
        .replace("$5", "1000");
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {statement}")))
        .fetch_all(&mut *tx)
        .await
        .expect("explain");
    let plan = plan.join("\n");
    assert!(plan.contains("Index"), "{plan}");
    assert!(
        !plan.contains("Sort"),
        "no sort of the bucket's rows:\n{plan}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_counts_stale_pending_rows_into_a_gauge() {
    let mut stack = Stack::with(
        "stalegauge",
        Options {
            notify: false,
            ..Options::default()
        },
    )
    .await;
    pending_row(&stack, "reports/abandoned-1.pdf", "2 hours").await;
    pending_row(&stack, "reports/abandoned-2.pdf", "90 minutes").await;
    pending_row(&stack, "reports/uploading.pdf", "10 minutes").await;
    stack.start_worker(&[("DOCWORKER_PENDING_STALE_SECS", "3600")]);
    // Counted when the worker starts, then every minute. The gauge is exported at 0 from its
    // registration on, before the first count: with two stale rows, only a count makes it other
    // than 0.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let metrics = loop {
        let (_, metrics) = stack.http_get("/metrics").await;
        if metrics.contains("docworker_stale_pending_rows ")
            && crate::operations::sample(&metrics, "docworker_stale_pending_rows") != 0.0
        {
            break metrics;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        crate::operations::sample(&metrics, "docworker_stale_pending_rows"),
        2.0,
        "the young pending row is an upload in progress"
    );
    assert!(
        metrics.contains("# HELP docworker_stale_pending_rows "),
        "{metrics}"
    );
}

/// An unversioned bucket lists every object as S3's `null` version, which rows store as none.
#[tokio::test(flavor = "multi_thread")]
async fn on_an_unversioned_bucket_rows_in_step_are_no_finding_and_a_wrong_size_is_repaired() {
    let mut stack = Stack::new("reconcileplain").await;
    stack.start_worker(&[]);
    let keys = ["medical/a.pdf", "medical/b.pdf", "reports/c.pdf"];
    for key in keys {
        stack.put(key, fixtures::pdf(), None, &[]).await;
        stack.wait_settled(key).await;
    }
    stack.wait_queue_empty().await;
    let (code, stdout, stderr) = docworker(&stack, &["reconcile", "--bucket", &stack.bucket]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(": 3 objects, 3 rows, 0 findings"),
        "{stdout}"
    );
    assert!(stdout.contains("last key done: reports/c.pdf"), "{stdout}");

    sqlx::query("UPDATE documents SET file_size = 1 WHERE bucket = $1 AND file_key = $2")
        .bind(&stack.bucket)
        .bind("medical/b.pdf")
        .execute(&stack.db)
        .await
        .expect("damage the row");
    let (code, stdout, stderr) = docworker(
        &stack,
        &[
            "reconcile",
            "--bucket",
            &stack.bucket,
            "--prefix",
            "medical/",
            "--fix",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("mismatch") && stdout.contains("medical/b.pdf  (size differ)"),
        "{stdout}"
    );
    assert!(stdout.contains("-> enqueued"), "{stdout}");
    assert!(stdout.contains("1 replays enqueued"), "{stdout}");
    stack
        .wait_for("medical/b.pdf", |d| {
            d.file_size == Some(fixtures::pdf().len() as i64)
        })
        .await;
    stack.wait_queue_empty().await;
    let (findings, summary) = reconcile(&stack, &[]);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(summary["objects"], 3);
}
