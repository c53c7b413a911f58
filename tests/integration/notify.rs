//! Telling the upload path: NOTIFY on `docworker_documents` and `docworker_studies`, the outbox
//! and its publishers (EventBridge, SNS: moto serves both), and the studies and series the write
//! keeps.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use docworker_shared::fixtures::{self, SampleDicom};
use serde_json::Value;
use sqlx::postgres::PgListener;

use crate::helpers::{Stack, WAIT};

/// The next notification within `limit`, as JSON, or `None` when none came.
async fn next(listener: &mut PgListener, limit: Duration) -> Option<Value> {
    match tokio::time::timeout(limit, listener.recv()).await {
        Ok(notification) => {
            let notification = notification.expect("listener connection");
            Some(serde_json::from_str(notification.payload()).expect("JSON payload"))
        }
        Err(_) => None,
    }
}

async fn listen(stack: &Stack, channel: &str) -> PgListener {
    let mut listener = PgListener::connect(&stack.database_url)
        .await
        .expect("listener connects");
    listener.listen(channel).await.expect("LISTEN");
    listener
}

fn summary(payload: &Value) -> (String, String, Value) {
    (
        payload["key"].as_str().expect("key").to_owned(),
        payload["status"].as_str().expect("status").to_owned(),
        payload["reason"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_hears_exactly_the_committed_outcomes_and_nothing_rolled_back() {
    let mut stack = Stack::new("listen").await;
    let mut listener = listen(&stack, "docworker_documents").await;
    stack.start_worker(&[]);

    let kept = "images/kept.png";
    stack
        .put(kept, fixtures::png(), Some("image/png"), &[])
        .await;
    let finalized = stack.wait_settled(kept).await;
    let refused = "reports/claims-to-be.pdf";
    stack
        .put(refused, fixtures::png(), Some("application/pdf"), &[])
        .await;
    let rejected = stack.wait_settled(refused).await;
    assert_eq!(rejected.status, "rejected");
    stack.delete_object(kept).await;
    stack.wait_for(kept, |d| d.status == "deleted").await;

    let mut heard = Vec::new();
    while heard.len() < 3 {
        match next(&mut listener, WAIT).await {
            Some(payload) => heard.push(payload),
            None => panic!("heard only {heard:?}\n{}", stack.worker_log()),
        }
    }
    assert_eq!(
        heard.iter().map(summary).collect::<Vec<_>>(),
        [
            (kept.to_owned(), "finalized".to_owned(), Value::Null),
            (
                refused.to_owned(),
                "rejected".to_owned(),
                "declared_mismatch".into()
            ),
            (kept.to_owned(), "deleted".to_owned(), Value::Null),
        ]
    );
    // Exactly these fields: the label, never the reason's text, and no metadata or DICOM value.
    for payload in &heard {
        let fields: BTreeSet<&str> = payload
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            BTreeSet::from(["id", "bucket", "key", "status", "reason"])
        );
        assert_eq!(payload["bucket"], stack.bucket.as_str());
    }
    assert_eq!(heard[0]["id"], finalized.id.to_string());
    assert_eq!(heard[1]["id"], rejected.id.to_string());
    assert_eq!(heard[2]["id"], finalized.id.to_string());

    // A write that rolls back announces nothing; one that changes no outcome (the same row
    // written again) neither. The committed write after them is the next thing heard.
    let mut tx = stack.db.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO documents (bucket, file_key, status) VALUES ($1, 'images/never.png', 'finalized')",
    )
    .bind(&stack.bucket)
    .execute(&mut *tx)
    .await
    .expect("insert in the transaction");
    tx.rollback().await.expect("rollback");
    sqlx::query("UPDATE documents SET processed_at = now() WHERE file_key = $1")
        .bind(refused)
        .execute(&stack.db)
        .await
        .expect("rewrite");
    sqlx::query(
        "INSERT INTO documents (bucket, file_key, status) VALUES ($1, 'images/marker.png', 'deleted')",
    )
    .bind(&stack.bucket)
    .execute(&stack.db)
    .await
    .expect("committed marker");
    let after = next(&mut listener, WAIT)
        .await
        .expect("the marker is heard");
    assert_eq!(after["key"], "images/marker.png", "{after}");
    assert_eq!(next(&mut listener, Duration::from_secs(1)).await, None);

    // The outbox holds the same events, one row per outcome, in order.
    let outbox: Vec<Value> =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE kind = 'document' ORDER BY id")
            .fetch_all(&stack.db)
            .await
            .expect("outbox");
    heard.push(after);
    assert_eq!(outbox, heard);
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0), "{log}");
}

async fn queue_with_arn(stack: &Stack, name: &str) -> (String, String) {
    let url = stack
        .sqs
        .create_queue()
        .queue_name(format!("{}-{name}", stack.bucket))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue URL");
    let arn = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue ARN")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("QueueArn");
    (url, arn)
}

/// Reads messages from `queue_url` until `want` distinct values of `id_of` were seen (duplicates
/// are allowed: publishing is at least once), returning the bodies by id.
async fn read_events(
    stack: &Stack,
    queue_url: &str,
    want: usize,
    id_of: impl Fn(&Value) -> String,
) -> std::collections::BTreeMap<String, Value> {
    let mut seen = std::collections::BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    while seen.len() < want {
        assert!(
            Instant::now() < deadline,
            "read {seen:?}\n{}",
            stack.worker_log()
        );
        let received = stack
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        for message in received.messages() {
            let body: Value = serde_json::from_str(message.body().expect("body")).expect("JSON");
            seen.insert(id_of(&body), body);
        }
    }
    seen
}

async fn outbox_rows(stack: &Stack) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&stack.db)
        .await
        .expect("count outbox")
}

fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn outcomes_wait_in_the_outbox_while_eventbridge_is_unreachable_and_reach_the_bus_after() {
    let mut stack = Stack::new("outbox-eb").await;
    let config = crate::helpers::aws_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let bus = stack.bucket.clone();
    events
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("CreateEventBus");
    let (queue_url, queue_arn) = queue_with_arn(&stack, "events").await;
    events
        .put_rule()
        .name("docworker-to-queue")
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": ["docworker"]}"#)
        .send()
        .await
        .expect("PutRule");
    events
        .put_targets()
        .rule("docworker-to-queue")
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&queue_arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("PutTargets");

    // EventBridge unreachable (nothing listens on the discard port); S3, SQS and PostgreSQL fine.
    stack.start_worker(&[
        ("DOCWORKER_EVENT_BUS", &bus),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://127.0.0.1:9"),
    ]);
    let keys = ["images/one.png", "images/two.png"];
    let mut ids = BTreeSet::new();
    for key in keys {
        stack
            .put(key, fixtures::png(), Some("image/png"), &[])
            .await;
        ids.insert(stack.wait_settled(key).await.id.to_string());
    }
    // Processing went on; the events wait, each tried and rescheduled.
    let deadline = Instant::now() + WAIT;
    loop {
        let tried: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE attempts >= 1 AND last_error = 'unreachable'",
        )
        .fetch_one(&stack.db)
        .await
        .expect("outbox");
        if tried == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", stack.worker_log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, metrics) = stack.http_get("/metrics").await;
    assert!(
        sample(
            &metrics,
            "docworker_outbox_publish_failures_total{kind=\"document\"}"
        ) >= 2.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "docworker_outbox_published_total{kind=\"document\"}"
        ),
        0.0
    );
    assert_eq!(stack.queue_counts(&queue_url).await, (0, 0));
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0), "{log}");

    // Restarted with EventBridge reachable, the worker drains what waited.
    stack.start_worker(&[("DOCWORKER_EVENT_BUS", &bus)]);
    let received = read_events(&stack, &queue_url, 2, |event| {
        event["detail"]["id"]
            .as_str()
            .expect("detail.id")
            .to_owned()
    })
    .await;
    assert_eq!(received.keys().cloned().collect::<BTreeSet<_>>(), ids);
    for event in received.values() {
        assert_eq!(event["source"], "docworker");
        assert_eq!(event["detail-type"], "Document settled");
        assert_eq!(event["detail"]["status"], "finalized");
        assert_eq!(event["detail"]["bucket"], stack.bucket.as_str());
    }
    let deadline = Instant::now() + WAIT;
    while outbox_rows(&stack).await != 0 {
        assert!(Instant::now() < deadline, "{}", stack.worker_log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn outcomes_reach_an_sns_topic_and_its_subscribed_queue() {
    let mut stack = Stack::new("outbox-sns").await;
    let config = crate::helpers::aws_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let topic_arn = sns
        .create_topic()
        .name(&stack.bucket)
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn
        .expect("topic ARN");
    let (queue_url, queue_arn) = queue_with_arn(&stack, "topic").await;
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("Subscribe");
    stack.start_worker(&[("DOCWORKER_SNS_TOPIC_ARN", &topic_arn)]);
    let key = "reports/not-a.pdf";
    stack
        .put(key, fixtures::png(), Some("application/pdf"), &[])
        .await;
    let row = stack.wait_settled(key).await;
    let received = read_events(&stack, &queue_url, 1, |message| {
        message["id"].as_str().expect("id").to_owned()
    })
    .await;
    let message = &received[&row.id.to_string()];
    assert_eq!(message["status"], "rejected");
    assert_eq!(message["reason"], "declared_mismatch");
    assert_eq!(message["key"], key);
    let deadline = Instant::now() + WAIT;
    while outbox_rows(&stack).await != 0 {
        assert!(Instant::now() < deadline, "{}", stack.worker_log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_instances_in_shuffled_order_group_into_one_study_of_two_series_reported_complete_once()
 {
    let mut stack = Stack::new("studies").await;
    let mut listener = listen(&stack, "docworker_studies").await;
    let study = "1.2.826.0.1.3680043.8.498.77";
    let series = [
        "1.2.826.0.1.3680043.8.498.77.1",
        "1.2.826.0.1.3680043.8.498.77.2",
    ];
    // 12 CT instances in the first series, 8 MR in the second, uploaded in a shuffled order.
    for i in (0..20).map(|n| (n * 7) % 20) {
        let (series_uid, modality) = if i < 12 {
            (series[0], "CT")
        } else {
            (series[1], "MR")
        };
        let bytes = SampleDicom {
            study_instance_uid: Some(study.to_owned()),
            series_instance_uid: series_uid.to_owned(),
            sop_instance_uid: Some(format!("{series_uid}.{i}")),
            modality: modality.to_owned(),
            ..SampleDicom::default()
        }
        .to_bytes();
        stack
            .put(
                &format!("medical/case-7/{i:02}.dcm"),
                bytes,
                Some("application/dicom"),
                &[("case-id", "case-7")],
            )
            .await;
    }
    // Long enough that a loaded machine's gaps between two of the 20 do not end the study early.
    stack.start_worker(&[("DOCWORKER_STUDY_QUIET_SECS", "4")]);
    let announced = next(&mut listener, WAIT)
        .await
        .unwrap_or_else(|| panic!("no study reported complete\n{}", stack.worker_log()));

    let (id, series_count, instance_count, modalities, study_date, case_id): (
        uuid::Uuid,
        i32,
        i32,
        Vec<String>,
        Option<chrono::NaiveDate>,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT id, series_count, instance_count, modalities, study_date, case_id
         FROM studies WHERE study_instance_uid = $1",
    )
    .bind(study)
    .fetch_one(&stack.db)
    .await
    .expect("one study");
    assert_eq!((series_count, instance_count), (2, 20));
    let mut modalities = modalities;
    modalities.sort();
    assert_eq!(modalities, ["CT", "MR"]);
    assert_eq!(study_date, chrono::NaiveDate::from_ymd_opt(2026, 1, 15));
    assert_eq!(case_id.as_deref(), Some("case-7"));
    let per_series: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT series_instance_uid, modality, instance_count FROM series
         WHERE study_instance_uid = $1 ORDER BY series_instance_uid",
    )
    .bind(study)
    .fetch_all(&stack.db)
    .await
    .expect("series");
    assert_eq!(
        per_series,
        [
            (series[0].to_owned(), "CT".to_owned(), 12),
            (series[1].to_owned(), "MR".to_owned(), 8)
        ]
    );
    let finalized: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM documents WHERE status = 'finalized' AND series_instance_uid = $1",
    )
    .bind(series[1])
    .fetch_one(&stack.db)
    .await
    .expect("instances");
    assert_eq!(finalized, 8);

    // Named by its id and counts: no UID, no DICOM value.
    assert_eq!(
        announced,
        serde_json::json!({"study_id": id.to_string(), "status": "complete", "series": 2, "instances": 20})
    );
    // Once: nothing more over several quiet periods, and one study event in the outbox.
    assert_eq!(next(&mut listener, Duration::from_secs(10)).await, None);
    let study_events: Vec<Value> =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE kind = 'study'")
            .fetch_all(&stack.db)
            .await
            .expect("outbox");
    assert_eq!(study_events, [announced]);
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_role_counts_instances_completes_studies_and_drains_the_outbox() {
    use crate::database::{as_role, two_role_database};
    let mut stack = Stack::without_schema("notifyroles").await;
    let database = stack
        .database_url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_owned();
    two_role_database(&stack.db, &database).await;
    let migrate = std::process::Command::new(crate::helpers::worker_binary())
        .arg("migrate")
        .env(
            "DATABASE_URL",
            as_role(&stack.database_url, "docworker_owner"),
        )
        .output()
        .expect("docworker migrate");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let config = crate::helpers::aws_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let topic_arn = sns
        .create_topic()
        .name(&stack.bucket)
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn
        .expect("topic ARN");

    stack.database_url = as_role(&stack.database_url, "docworker_app");
    stack.start_worker_with_args(
        &["--no-migrate"],
        &[
            ("DOCWORKER_SNS_TOPIC_ARN", &topic_arn),
            ("DOCWORKER_STUDY_QUIET_SECS", "1"),
        ],
    );
    let key = "medical/roles/one.dcm";
    stack
        .put(
            key,
            SampleDicom::default().to_bytes(),
            Some("application/dicom"),
            &[],
        )
        .await;
    assert_eq!(stack.wait_settled(key).await.status, "finalized");
    // The document's event and then the study's are published and deleted by the runtime role.
    let deadline = Instant::now() + WAIT;
    loop {
        let (completed, waiting): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM studies WHERE completed_at IS NOT NULL AND instance_count = 1),
                    (SELECT count(*) FROM outbox)",
        )
        .fetch_one(&stack.db)
        .await
        .expect("state");
        if (completed, waiting) == (1, 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "completed {completed}, waiting {waiting}\n{}",
            stack.worker_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("permission denied"), "{log}");
}
