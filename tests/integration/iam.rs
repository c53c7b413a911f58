//! The worker under exactly the CloudFormation WorkerRole's policy, on a moto_server of the test's
//! own that enforces IAM (`INITIAL_NO_AUTH_ACTION_COUNT`): a grant the code needs and the role
//! lacks fails here instead of in production. The shared moto_server does not check credentials
//! at all, which is how a missing grant went unseen.
//!
//! One AWS rule moto does not model: without `s3:ListBucket` on the bucket, a GET or HEAD of a
//! missing key answers 403, not 404. That grant is asserted on the policy itself
//! (`infra::the_worker_role_grants_list_bucket_on_the_bucket_so_a_missing_key_is_404_not_403`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use docworker_shared::fixtures;
use serde_json::Value;

use crate::helpers::{Options, Stack, WAIT, env_or};

const ACCOUNT: &str = "123456789012";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The local stack's tools: from PATH, else from the virtualenv `infra/local/stack.sh` makes.
pub(crate) fn tool(name: &str) -> PathBuf {
    let venv = root().join(".local/venv/bin").join(name);
    if venv.exists() {
        return venv;
    }
    PathBuf::from(name)
}

pub(crate) fn python() -> PathBuf {
    let has_boto3 = |python: &PathBuf| {
        Command::new(python)
            .args(["-c", "import boto3"])
            .status()
            .is_ok_and(|s| s.success())
    };
    [
        PathBuf::from("python3"),
        root().join(".local/venv/bin/python"),
    ]
    .into_iter()
    .find(has_boto3)
    .expect("a Python with boto3 (infra/local/stack.sh services installs one)")
}

/// A moto_server that checks every request after the first three against IAM.
struct EnforcingMoto {
    child: Child,
    endpoint: String,
}

impl EnforcingMoto {
    async fn start() -> EnforcingMoto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("moto-iam-{port}.log")))
            .expect("moto log");
        let child = Command::new(tool("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        let moto = EnforcingMoto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "moto_server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }
}

impl Drop for EnforcingMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replaces the template's intrinsics with what they resolve to for `stack`; any other
/// intrinsic is a failure, so a policy change the test does not understand cannot slip by.
fn resolve(value: &Value, stack: &str) -> Value {
    let queue_arn = |name: &str| format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{stack}-{name}");
    match value {
        Value::Object(map) if map.contains_key("Fn::Sub") => Value::String(
            map["Fn::Sub"]
                .as_str()
                .expect("Fn::Sub string")
                .replace("${AWS::Partition}", "aws")
                .replace("${AWS::StackName}", stack)
                .replace("${AWS::AccountId}", ACCOUNT)
                .replace("${AWS::Region}", "us-east-1"),
        ),
        Value::Object(map) if map.contains_key("Fn::GetAtt") => {
            match map["Fn::GetAtt"].as_array().map(Vec::as_slice) {
                Some([queue, arn]) if queue == "Queue" && arn == "Arn" => {
                    Value::String(queue_arn("docworker-uploads"))
                }
                Some([queue, arn]) if queue == "DeadLetterQueue" && arn == "Arn" => {
                    Value::String(queue_arn("docworker-uploads-dlq"))
                }
                other => panic!("unexpected Fn::GetAtt {other:?}"),
            }
        }
        Value::Object(map) => {
            assert!(
                !map.keys().any(|k| k.starts_with("Fn::") || k == "Ref"),
                "unexpected intrinsic in {map:?}"
            );
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), resolve(v, stack)))
                    .collect(),
            )
        }
        // As deployed with the parameters' defaults, where each condition (an outbox
        // destination) is false: an `Fn::If` item is its else-branch, `AWS::NoValue` none.
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter_map(|item| match item.get("Fn::If") {
                    Some(branches) if branches[2]["Ref"] == "AWS::NoValue" => None,
                    Some(branches) => Some(resolve(&branches[2], stack)),
                    None => Some(resolve(item, stack)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The WorkerRole's inline policy document from infra/aws/docworker.json, for `stack`.
fn worker_role_policy(stack: &str) -> Value {
    role_policy("WorkerRole", stack)
}

/// A role's inline policy document from infra/aws/docworker.json, for `stack`.
fn role_policy(role: &str, stack: &str) -> Value {
    let text = std::fs::read_to_string(root().join("infra/aws/docworker.json")).expect("template");
    let template: Value = serde_json::from_str(&text).expect("template JSON");
    let policies = template["Resources"][role]["Properties"]["Policies"]
        .as_array()
        .unwrap_or_else(|| panic!("{role} policies"));
    assert_eq!(policies.len(), 1, "one inline policy");
    resolve(&policies[0]["PolicyDocument"], stack)
}

/// The policy without one action (a statement left with none is dropped).
fn without(mut policy: Value, action: &str) -> Value {
    let statements = policy["Statement"].as_array_mut().expect("statements");
    for statement in statements.iter_mut() {
        match &mut statement["Action"] {
            Value::Array(actions) => actions.retain(|a| a != action),
            Value::String(a) if a == action => statement["Action"] = Value::Array(vec![]),
            _ => {}
        }
    }
    statements.retain(|s| s["Action"] != Value::Array(vec![]));
    assert!(
        !policy.to_string().contains(&format!("\"{action}\"")),
        "{action} removed"
    );
    policy
}

/// moto authorises SQS batch calls as actions of their own (`sqs:DeleteMessageBatch`); AWS
/// authorises them by the single call's action, and its IAM has no batch actions to grant. So
/// the policy given to moto grants each batch action exactly where the single one is granted.
fn as_moto_reads_it(mut policy: Value) -> Value {
    for statement in policy["Statement"].as_array_mut().expect("statements") {
        let actions: Vec<Value> = match &statement["Action"] {
            Value::String(a) => vec![Value::String(a.clone())],
            Value::Array(actions) => actions.clone(),
            other => panic!("unexpected Action {other}"),
        };
        let mut with_batches = actions.clone();
        for action in &actions {
            let action = action.as_str().expect("action");
            if matches!(
                action,
                "sqs:DeleteMessage" | "sqs:ChangeMessageVisibility" | "sqs:SendMessage"
            ) {
                with_batches.push(Value::String(format!("{action}Batch")));
            }
        }
        statement["Action"] = Value::Array(with_batches);
    }
    policy
}

struct Enforced {
    stack: Stack,
    _moto: EnforcingMoto,
    worker_key: (String, String),
}

/// A stack (its own database) whose AWS side is the enforcing moto, the worker's user holding
/// exactly `policy`.
async fn enforced(name: &str, policy: impl Fn(&str) -> Value) -> Enforced {
    let moto = EnforcingMoto::start().await;
    let mut stack = Stack::with(
        name,
        Options {
            notify: false,
            ..Options::default()
        },
    )
    .await;
    let stack_name = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut setup = Command::new(python())
        .arg(root().join("tests/integration/iam_setup.py"))
        .args([moto.endpoint.as_str(), &stack_name, "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run iam_setup.py");
    {
        use std::io::Write;
        let mut stdin = setup.stdin.take().expect("stdin");
        stdin
            .write_all(as_moto_reads_it(policy(&stack_name)).to_string().as_bytes())
            .expect("policy to iam_setup.py");
    }
    let output = setup.wait_with_output().expect("iam_setup.py");
    assert!(output.status.success(), "iam_setup.py failed");
    let made: Value = serde_json::from_slice(&output.stdout).expect("setup JSON");
    let key = |who: &str| {
        (
            made[who][0].as_str().expect("key id").to_owned(),
            made[who][1].as_str().expect("secret").to_owned(),
        )
    };
    let admin = key("admin");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new(env_or("AWS_REGION", "us-east-1")))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            admin.0, admin.1, None, None, "admin",
        ))
        .load()
        .await;
    stack.s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    stack.sqs = aws_sdk_sqs::Client::new(&config);
    stack.bucket = made["bucket"].as_str().expect("bucket").to_owned();
    stack.queue_url = made["queue_url"].as_str().expect("queue").to_owned();
    stack.dlq_url = made["dlq_url"].as_str().expect("dlq").to_owned();
    Enforced {
        stack,
        worker_key: key("worker"),
        _moto: moto,
    }
}

impl Enforced {
    fn start_worker(&mut self) {
        let endpoint = self._moto.endpoint.clone();
        let (id, secret) = self.worker_key.clone();
        self.stack.start_worker(&[
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ACCESS_KEY_ID", &id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_role_policy_alone_finalizes_and_deletes_on_iam_enforcing_moto() {
    let mut enforced = enforced("iamok", worker_role_policy).await;
    enforced.start_worker();
    let stack = &enforced.stack;
    let key = "medical/under-the-role.pdf";
    stack
        .put(key, fixtures::pdf(), Some("application/pdf"), &[])
        .await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized", "{}", stack.worker_log());
    stack.delete_object(key).await;
    stack.wait_for(key, |d| d.status == "deleted").await;
    stack.wait_queue_empty().await;
    let log = stack.worker_log();
    assert!(!log.contains("AccessDenied"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_get_object_a_403_ends_as_access_denied_in_the_dead_letter_queue_never_gone() {
    let mut enforced = enforced("iamdenied", |stack| {
        without(worker_role_policy(stack), "s3:GetObject")
    })
    .await;
    enforced.start_worker();
    let stack = &enforced.stack;
    let key = "medical/forbidden.pdf";
    stack
        .put(key, fixtures::pdf(), Some("application/pdf"), &[])
        .await;
    // GetObject answers 403 AccessDenied; removing the object then makes the worker's HeadObject
    // answer a 403 with no code at all (HEAD has no body).
    stack.delete_object(key).await;

    let deadline = Instant::now() + WAIT;
    while stack.queue_counts(&stack.dlq_url).await.0 < 2 {
        assert!(
            Instant::now() < deadline,
            "not dead-lettered: {:?}\n{}",
            stack.queue_counts(&stack.dlq_url).await,
            stack.worker_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let trail: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT outcome, reason FROM document_events WHERE bucket = $1 AND file_key = $2 ORDER BY id",
    )
    .bind(&stack.bucket)
    .bind(key)
    .fetch_all(&stack.db)
    .await
    .expect("audit trail");
    assert!(
        trail.len() >= 2
            && trail
                .iter()
                .all(|(outcome, reason)| outcome == "access_denied"
                    && reason
                        .as_deref()
                        .is_some_and(|r| r.contains("(AccessDenied)"))),
        "{trail:?}"
    );
    assert!(
        trail
            .iter()
            .any(|(_, reason)| reason.as_deref().is_some_and(|r| r.contains("GetObject"))),
        "{trail:?}"
    );
    assert!(
        trail
            .iter()
            .any(|(_, reason)| reason.as_deref().is_some_and(|r| r.contains("HeadObject"))),
        "{trail:?}"
    );
    assert!(
        stack.document(key).await.is_none(),
        "never marked gone or deleted"
    );
    assert!(stack.worker_log().contains("access denied: not deleted"));
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_without_list_bucket_versions_is_denied_in_one_line() {
    let enforced = enforced("iamreconcile", |stack| {
        without(role_policy("OperatorRole", stack), "s3:ListBucketVersions")
    })
    .await;
    let stack = &enforced.stack;
    let (id, secret) = enforced.worker_key.clone();
    let output = Command::new(crate::helpers::worker_binary())
        .args(["reconcile", "--bucket", &stack.bucket])
        .envs(stack.worker_env())
        .env("AWS_ENDPOINT_URL", &enforced._moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .output()
        .expect("run docworker reconcile");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("docworker:"))
        .collect();
    assert_eq!(
        errors,
        [format!(
            "docworker: reconcile of s3://{}/ stopped before the first key: access denied to \
             ListObjectVersions on bucket {}: the caller needs s3:ListBucketVersions",
            stack.bucket, stack.bucket
        )],
        "{stderr}"
    );
}
