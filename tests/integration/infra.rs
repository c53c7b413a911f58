//! The deployable infrastructure agrees with the code and with the local stack.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn json(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The worker's sources, split: the operator commands `dlq.rs`, `replay.rs` and `reconcile.rs`
/// (under the operator role) and the rest (`docworker run`, under the worker role).
fn rust_sources(dir: &Path, run: &mut Vec<String>, dlq: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_sources(&path, run, dlq);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            if path
                .file_name()
                .is_some_and(|n| n == "dlq.rs" || n == "replay.rs" || n == "reconcile.rs")
            {
                dlq.push(text);
            } else {
                run.push(text);
            }
        }
    }
}

/// The actions a set of sources needs, derived from the SDK calls in it.
fn needed_actions(sources: &[String], services: &[&str]) -> BTreeSet<String> {
    let reads_versions = sources.iter().any(|s| s.contains(".set_version_id("));
    let mut needed = BTreeSet::new();
    for service in services {
        let calls = operations(sources, service);
        assert!(
            !calls.is_empty(),
            "found no {service} calls: the scan is broken"
        );
        for call in calls {
            needed.extend(iam_actions(service, &call, reads_versions));
        }
    }
    needed
}

/// Every action any statement of a role's inline policy allows.
fn granted_actions(template: &Value, role: &str) -> BTreeSet<String> {
    let statements =
        template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap_or_else(|| panic!("{role} policy statements"));
    let mut granted = BTreeSet::new();
    for statement in statements {
        // A statement granted only when a parameter is set (`Fn::If`: condition, statement,
        // `AWS::NoValue`), such as publishing the outbox: the statement it grants then.
        let statement = statement
            .get("Fn::If")
            .map_or(statement, |branches| &branches[1]);
        assert_eq!(statement["Effect"], "Allow");
        match &statement["Action"] {
            Value::String(action) => {
                granted.insert(action.clone());
            }
            Value::Array(actions) => {
                granted.extend(actions.iter().filter_map(|a| a.as_str().map(str::to_owned)))
            }
            other => panic!("unexpected Action {other}"),
        }
        assert!(
            !statement["Resource"].to_string().contains("\"*\""),
            "no wildcard resources"
        );
    }
    granted
}

/// Client methods that are not service operations.
const NOT_OPERATIONS: &[&str] = &["clone", "config"];

/// The SDK operations the worker calls on a client named `client` (`s3` or `sqs`), read from its
/// source: `client.operation()` or `self.client\n    .operation()`.
fn operations(sources: &[String], client: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for source in sources {
        let mut rest = source.as_str();
        while let Some(at) = rest.find(client) {
            let before = rest[..at].chars().last();
            rest = &rest[at + client.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let after = rest.trim_start();
            let Some(call) = after.strip_prefix('.') else {
                continue;
            };
            let name: String = call
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty()
                && call[name.len()..].starts_with("()")
                && !NOT_OPERATIONS.contains(&name.as_str())
            {
                found.insert(name);
            }
        }
    }
    found
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The IAM actions an operation needs. HeadObject is authorised by s3:GetObject; reading a
/// specific version needs s3:GetObjectVersion as well. Reading objects also needs s3:ListBucket
/// on the bucket: without it AWS answers a missing key with 403 instead of 404, and the code
/// cannot tell an object that is gone from one it may not read.
fn iam_actions(service: &str, operation: &str, reads_versions: bool) -> Vec<String> {
    match (service, operation) {
        ("s3", "head_object" | "get_object") if reads_versions => vec![
            "s3:GetObject".into(),
            "s3:GetObjectVersion".into(),
            "s3:ListBucket".into(),
        ],
        ("s3", "head_object" | "get_object") => {
            vec!["s3:GetObject".into(), "s3:ListBucket".into()]
        }
        ("s3", "list_objects_v2") => vec!["s3:ListBucket".into()],
        // Tagging a specific version needs the Version action as well.
        ("s3", "get_object_tagging" | "put_object_tagging") if reads_versions => {
            let plain = pascal(operation);
            let (verb, rest) = plain.split_at(3);
            vec![
                format!("s3:{plain}"),
                format!("s3:{verb}{}", rest.replacen("Object", "ObjectVersion", 1)),
            ]
        }
        ("s3", "list_object_versions") => vec!["s3:ListBucketVersions".into()],
        // EventBridge's IAM prefix is its old name.
        ("eventbridge", _) => vec![format!("events:{}", pascal(operation))],
        // Batch calls are authorised by the single call's action.
        _ => vec![format!(
            "{service}:{}",
            pascal(operation.trim_end_matches("_batch"))
        )],
    }
}

#[test]
fn the_worker_role_grants_exactly_the_actions_the_code_calls() {
    let (mut run, mut dlq) = (Vec::new(), Vec::new());
    rust_sources(&root().join("worker/src"), &mut run, &mut dlq);
    let needed = needed_actions(&run, &["s3", "sqs", "eventbridge", "sns"]);
    assert!(
        needed.contains("sqs:ReceiveMessage") && needed.contains("s3:GetObject"),
        "{needed:?}"
    );
    let template = json("infra/aws/docworker.json");
    assert_eq!(
        granted_actions(&template, "WorkerRole"),
        needed,
        "the worker role must grant exactly what `run` calls"
    );
}

/// AWS answers a GET or HEAD of a missing key with 403 AccessDenied, not 404, to a caller that
/// lacks s3:ListBucket on the bucket; then the "object gone" path never runs and every deleted
/// object's event ends in the dead-letter queue. moto does not model that rule, so it is
/// asserted on the policy: ListBucket on the bucket itself (not `bucket/*`, where it grants
/// nothing), beside GetObject on its objects.
#[test]
fn the_worker_role_grants_list_bucket_on_the_bucket_so_a_missing_key_is_404_not_403() {
    let template = json("infra/aws/docworker.json");
    let statements = template["Resources"]["WorkerRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array()
        .expect("WorkerRole statements");
    let grants = |action: &str| -> Vec<String> {
        statements
            .iter()
            .filter(|s| {
                s["Action"] == action
                    || s["Action"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|a| a == action))
            })
            .map(|s| {
                s["Resource"]["Fn::Sub"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    let bucket = "arn:${AWS::Partition}:s3:::${AWS::StackName}-documents-${AWS::AccountId}";
    assert_eq!(grants("s3:ListBucket"), [bucket]);
    assert_eq!(grants("s3:GetObject"), [format!("{bucket}/*")]);
    assert_eq!(
        template["Resources"]["Bucket"]["Properties"]["BucketName"]["Fn::Sub"],
        bucket.trim_start_matches("arn:${AWS::Partition}:s3:::")
    );
}

#[test]
fn the_operator_role_grants_exactly_the_actions_the_dlq_commands_call() {
    let (mut run, mut dlq) = (Vec::new(), Vec::new());
    rust_sources(&root().join("worker/src"), &mut run, &mut dlq);
    let needed = needed_actions(&dlq, &["s3", "sqs"]);
    assert!(needed.contains("sqs:StartMessageMoveTask"), "{needed:?}");
    let template = json("infra/aws/docworker.json");
    assert_eq!(
        granted_actions(&template, "OperatorRole"),
        needed,
        "the operator role must grant exactly what `dlq`, `replay` and `reconcile` call"
    );
}

#[test]
fn queue_settings_agree_between_aws_and_the_local_stack() {
    let wiring = json("infra/local/wiring.json");
    let template = json("infra/aws/docworker.json");
    let resources = &template["Resources"];
    let parameters = &template["Parameters"];
    let queue = &resources["Queue"]["Properties"];
    let dlq = &resources["DeadLetterQueue"]["Properties"];

    assert_eq!(
        parameters["VisibilityTimeoutSeconds"]["Default"],
        wiring["queue_visibility_timeout"]
    );
    assert_eq!(
        queue["VisibilityTimeout"]["Ref"],
        "VisibilityTimeoutSeconds"
    );
    assert_eq!(
        parameters["MaxReceiveCount"]["Default"],
        wiring["max_receive_count"]
    );
    assert_eq!(
        queue["RedrivePolicy"]["maxReceiveCount"]["Ref"],
        "MaxReceiveCount"
    );
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0],
        "DeadLetterQueue"
    );
    assert_eq!(
        queue["MessageRetentionPeriod"],
        wiring["queue_message_retention"]
    );
    assert_eq!(
        dlq["MessageRetentionPeriod"],
        wiring["dead_letter_message_retention"]
    );
    assert_eq!(queue["MaximumMessageSize"], wiring["maximum_message_size"]);
    assert!(wiring["maximum_message_size"].as_u64() >= Some(64 * 1024));
    assert_eq!(
        dlq["MessageRetentionPeriod"].as_u64(),
        Some(14 * 24 * 3600),
        "14-day DLQ retention"
    );
    assert!(
        dlq["MessageRetentionPeriod"].as_u64() > queue["MessageRetentionPeriod"].as_u64(),
        "a dead-lettered message keeps its enqueue time: the DLQ must keep messages longer"
    );
    assert!(
        queue["QueueName"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .ends_with(wiring["queue"].as_str().unwrap())
    );
    assert!(
        dlq["QueueName"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .ends_with(wiring["dead_letter_queue"].as_str().unwrap())
    );

    // `EventDelivery` chooses between S3 notifications and EventBridge: never both, or every
    // event would arrive twice.
    let delivery = &resources["Bucket"]["Properties"]["NotificationConfiguration"]["Fn::If"];
    assert_eq!(delivery[0], "DeliverThroughEventBridge");
    assert_eq!(
        delivery[1],
        serde_json::json!({"EventBridgeConfiguration": {"EventBridgeEnabled": true}})
    );
    let notifications = delivery[2]["QueueConfigurations"]
        .as_array()
        .expect("queue notifications");
    let pairs: BTreeSet<(String, String)> = notifications
        .iter()
        .map(|n| {
            (
                n["Event"].as_str().unwrap().to_owned(),
                n["Filter"]["S3Key"]["Rules"][0]["Value"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    let mut expected = BTreeSet::new();
    for event in wiring["notification_events"].as_array().unwrap() {
        for prefix in wiring["category_prefixes"].as_array().unwrap() {
            expected.insert((
                event.as_str().unwrap().to_owned(),
                prefix.as_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(pairs, expected);

    // The EventBridge rule selects the same events under the same prefixes, of this bucket only,
    // and only the rule may send to the queue on EventBridge's behalf.
    let rule = &resources["UploadEventsRule"];
    assert_eq!(rule["Condition"], "DeliverThroughEventBridge");
    let pattern = &rule["Properties"]["EventPattern"];
    assert_eq!(
        pattern["detail-type"],
        serde_json::json!(["Object Created", "Object Deleted"]),
        "the EventBridge names of {:?}",
        wiring["notification_events"]
    );
    assert_eq!(
        pattern["detail"]["bucket"]["name"][0],
        resources["Bucket"]["Properties"]["BucketName"]
    );
    let prefixes: Vec<_> = pattern["detail"]["object"]["key"]
        .as_array()
        .expect("key prefixes")
        .iter()
        .map(|p| p["prefix"].clone())
        .collect();
    assert_eq!(
        &serde_json::Value::from(prefixes),
        &wiring["category_prefixes"]
    );
    assert_eq!(
        rule["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0],
        "Queue"
    );
    let from_events = resources["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .expect("queue policy")
        .iter()
        .find_map(|s| s["Fn::If"].as_array())
        .expect("the EventBridge statement");
    assert_eq!(from_events[0], "DeliverThroughEventBridge");
    assert_eq!(
        from_events[1]["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0],
        "UploadEventsRule"
    );

    let container = &resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0];
    let stop_timeout = container["StopTimeout"].as_u64().expect("StopTimeout");
    let deadline: u64 = container["Environment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["Name"] == "DOCWORKER_SHUTDOWN_DEADLINE_SECS")
        .and_then(|e| e["Value"].as_str()?.parse().ok())
        .expect("shutdown deadline");
    assert!(
        stop_timeout > deadline,
        "ECS must wait longer than the worker's shutdown deadline"
    );
}

#[test]
fn the_operation_scan_reads_both_call_styles() {
    let sources = vec![
        "let a = s3\n    .get_object()\n; self.sqs.receive_message(); xs3.nope(); sqs.fields;"
            .to_owned(),
    ];
    assert_eq!(
        operations(&sources, "s3"),
        BTreeSet::from(["get_object".to_owned()])
    );
    assert_eq!(
        operations(&sources, "sqs"),
        BTreeSet::from(["receive_message".to_owned()])
    );
}

#[test]
fn dashboards_and_alerts_use_only_metrics_the_worker_exports() {
    // Metric names live beside what records them (`observe`, the scanner, the tagger).
    let (mut run, mut operate) = (Vec::new(), Vec::new());
    rust_sources(&root().join("worker/src"), &mut run, &mut operate);
    let exported = run.join("\n");
    for file in [
        "infra/monitoring/alerts.yaml",
        "infra/monitoring/grafana-dashboard.json",
    ] {
        let text = std::fs::read_to_string(root().join(file)).expect(file);
        let mut used = BTreeSet::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("docworker_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name)
                .to_owned();
            used.insert(base);
        }
        assert!(used.len() >= 5, "{file}: found only {used:?}");
        for name in used {
            assert!(
                exported.contains(&format!("\"{name}\"")),
                "{file} uses {name}, which the worker does not export"
            );
        }
    }
}

/// The gate holds outside the database only if the bucket policy reads the tag the worker
/// writes, with the value it writes for a finalized object: checked against the code's own
/// constants. Every other value (rejected, infected) and no tag at all are denied, since
/// `StringNotEquals` matches a missing key.
#[test]
fn the_bucket_policy_denies_the_download_role_every_object_not_tagged_finalized() {
    use docworker_shared::gate::{ObjectStatus, STATUS_TAG};

    let template = json("infra/aws/docworker.json");
    let statements =
        template["Resources"]["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
            .as_array()
            .expect("bucket policy statements");
    let deny = statements
        .iter()
        .find(|s| s["Sid"] == "DownloadOnlyFinalized")
        .expect("the read-deny statement");
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Principal"], "*");
    let actions: BTreeSet<&str> = deny["Action"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from(["s3:GetObject", "s3:GetObjectVersion"])
    );
    assert_eq!(
        deny["Resource"]["Fn::Sub"],
        "arn:${AWS::Partition}:s3:::${AWS::StackName}-documents-${AWS::AccountId}/*"
    );
    let condition = deny["Condition"].as_object().expect("conditions");
    assert_eq!(
        condition
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(["ArnLike", "ArnNotEquals", "StringNotEquals"]),
        "nothing else may narrow the deny"
    );
    assert_eq!(
        condition["StringNotEquals"],
        serde_json::json!({ format!("s3:ExistingObjectTag/{STATUS_TAG}"): ObjectStatus::Finalized.as_str() })
    );
    let readable: Vec<ObjectStatus> = ObjectStatus::ALL
        .into_iter()
        .filter(|status| {
            condition["StringNotEquals"][format!("s3:ExistingObjectTag/{STATUS_TAG}")]
                == status.as_str()
        })
        .collect();
    assert_eq!(
        readable,
        [ObjectStatus::Finalized],
        "of the statuses the worker writes, only finalized is readable"
    );
    assert_eq!(
        condition["ArnLike"]["aws:PrincipalArn"]["Ref"],
        "DownloadRoleArn"
    );
    let parameter = &template["Parameters"]["DownloadRoleArn"];
    assert!(
        parameter.is_object() && parameter.get("Default").is_none(),
        "the download role must be named at deploy time"
    );
    let excepted: BTreeSet<&str> = condition["ArnNotEquals"]["aws:PrincipalArn"]
        .as_array()
        .expect("excepted roles")
        .iter()
        .map(|arn| {
            assert_eq!(arn["Fn::GetAtt"][1], "Arn");
            arn["Fn::GetAtt"][0].as_str().expect("role")
        })
        .collect();
    assert_eq!(excepted, BTreeSet::from(["OperatorRole", "WorkerRole"]));
}

/// The ECS task runs clamd beside the worker, reached over the task's loopback, and starts the
/// worker only once clamd answers (its signature database loaded); the two containers' memory
/// fits the task's.
#[test]
fn the_task_runs_clamd_beside_the_worker_and_starts_the_worker_once_clamd_answers() {
    let template = json("infra/aws/docworker.json");
    let task = &template["Resources"]["TaskDefinition"]["Properties"];
    let containers = task["ContainerDefinitions"].as_array().expect("containers");
    let named = |name: &str| {
        containers
            .iter()
            .find(|c| c["Name"] == name)
            .unwrap_or_else(|| panic!("container {name}"))
    };
    let (worker, clamav) = (named("docworker"), named("clamav"));
    assert_eq!(
        worker["DependsOn"],
        serde_json::json!([{ "ContainerName": "clamav", "Condition": "HEALTHY" }])
    );
    assert!(
        clamav["HealthCheck"]["Command"]
            .to_string()
            .contains("clamdcheck")
    );
    let env = |container: &Value, name: &str| {
        container["Environment"]
            .as_array()
            .expect("environment")
            .iter()
            .find(|e| e["Name"] == name)
            .map(|e| e["Value"].clone())
    };
    assert_eq!(
        env(worker, "DOCWORKER_CLAMD_ADDR"),
        Some(Value::from("127.0.0.1:3310"))
    );
    assert_eq!(
        env(clamav, "CLAMD_CONF_TCPAddr"),
        Some(Value::from("127.0.0.1"))
    );
    let scan_max: u64 = env(worker, "DOCWORKER_SCAN_MAX_BYTES")
        .and_then(|v| v.as_str().and_then(|v| v.parse().ok()))
        .expect("DOCWORKER_SCAN_MAX_BYTES");
    let mib = |name: &str| -> u64 {
        env(clamav, name)
            .and_then(|v| v.as_str().and_then(|v| v.strip_suffix('M')?.parse().ok()))
            .unwrap_or_else(|| panic!("{name} in M"))
    };
    let stream_max = mib("CLAMD_CONF_StreamMaxLength");
    assert!(
        stream_max << 20 >= scan_max,
        "clamd must take what the worker sends"
    );
    assert!(
        scan_max >= 1 << 30,
        "every object up to the worker's default maximum (1 GiB) is scanned"
    );
    assert!(
        mib("CLAMD_CONF_MaxFileSize") >= stream_max
            && mib("CLAMD_CONF_MaxScanSize") >= mib("CLAMD_CONF_MaxFileSize"),
        "a whole stream is one file, and its unpacked members count towards MaxScanSize"
    );
    let max_scan_ms: u64 = env(clamav, "CLAMD_CONF_MaxScanTime")
        .and_then(|v| v.as_str().and_then(|v| v.parse().ok()))
        .expect("MaxScanTime in ms");
    let answer = docworker::scanner::answer_timeout(Duration::from_secs(60), scan_max);
    assert!(
        Duration::from_millis(max_scan_ms) > answer,
        "clamd scans the stream once it has ended: its MaxScanTime must outlast the worker's \
         wait for the answer to the largest object ({answer:?})"
    );
    // clamd spools every INSTREAM to /tmp, in the task's ephemeral storage: one stream per
    // object in flight, and room for unpacked archive members, images and signatures.
    let concurrency = template["Parameters"]["Concurrency"]["Default"]
        .as_u64()
        .expect("Concurrency default");
    let storage_gib = task["EphemeralStorage"]["SizeInGiB"]
        .as_u64()
        .expect("EphemeralStorage");
    assert!(
        storage_gib << 10 >= concurrency * stream_max + (4 << 10),
        "{storage_gib} GiB for {concurrency} streams of {stream_max} MiB and 4 GiB more"
    );
    let reserved: u64 = containers
        .iter()
        .map(|c| c["MemoryReservation"].as_u64().expect("MemoryReservation"))
        .sum();
    let task_memory: u64 = template["Parameters"]["TaskMemory"]["Default"]
        .as_str()
        .and_then(|m| m.parse().ok())
        .expect("TaskMemory default");
    assert!(
        clamav["MemoryReservation"].as_u64() >= Some(1024) && reserved <= task_memory,
        "clamd needs 1–1.5 GiB, and both containers must fit the task: {reserved} of {task_memory} MiB"
    );
}

/// An uploader must not pre-empt the verdict: a `docworker-status=finalized` tag set with the
/// upload (`x-amz-tagging`) or after it would open the object to the download role before the
/// worker read it. Only the worker's role may set tags under docworker's prefix.
#[test]
fn only_the_worker_may_set_tags_under_docworkers_prefix() {
    use docworker_shared::gate::{SCAN_TAG, STATUS_TAG};

    let template = json("infra/aws/docworker.json");
    let statements =
        template["Resources"]["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
            .as_array()
            .expect("bucket policy statements");
    let deny = statements
        .iter()
        .find(|s| s["Sid"] == "OnlyTheWorkerSetsDocworkerTags")
        .expect("the tag-guard statement");
    assert_eq!(deny["Effect"], "Deny");
    let actions = deny["Action"].to_string();
    for action in [
        "s3:PutObject\"",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
    ] {
        assert!(actions.contains(action), "{action} in {actions}");
    }
    let pattern = deny["Condition"]["ForAnyValue:StringLike"]["s3:RequestObjectTagKeys"]
        .as_str()
        .expect("a tag-key pattern");
    let prefix = pattern.strip_suffix('*').expect("a prefix pattern");
    assert!(STATUS_TAG.starts_with(prefix) && SCAN_TAG.starts_with(prefix));
    assert_eq!(
        deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::GetAtt"],
        serde_json::json!(["WorkerRole", "Arn"])
    );
}
