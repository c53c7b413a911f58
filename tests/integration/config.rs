//! The binary's configuration contract: a bad or missing setting is one line naming it, exit 2.

use std::process::Command;

use crate::helpers::worker_binary;

fn run_without(remove: &[&str], set: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(worker_binary());
    command.arg("run");
    for name in [
        "DATABASE_URL",
        "DOCWORKER_QUEUE_URL",
        "DOCWORKER_CONCURRENCY",
        "DOCWORKER_MAX_OBJECT_BYTES",
        "DOCWORKER_MAX_DICOM_HEADER_BYTES",
        "DOCWORKER_MEMORY_LIMIT",
    ] {
        command.env_remove(name);
    }
    command
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        )
        .env(
            "DOCWORKER_QUEUE_URL",
            "http://127.0.0.1:4566/123456789012/q",
        );
    for name in remove {
        command.env_remove(name);
    }
    command.envs(set.iter().copied());
    let output = command.output().expect("run docworker");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_one_line_naming(result: (Option<i32>, String), setting: &str) {
    let (code, stderr) = result;
    assert_eq!(code, Some(2), "exit code; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(setting), "names {setting}: {stderr}");
}

#[test]
fn missing_database_url_is_one_line_and_exit_2() {
    assert_one_line_naming(run_without(&["DATABASE_URL"], &[]), "DATABASE_URL");
}

#[test]
fn missing_queue_url_is_one_line_and_exit_2() {
    assert_one_line_naming(
        run_without(&["DOCWORKER_QUEUE_URL"], &[]),
        "DOCWORKER_QUEUE_URL",
    );
}

#[test]
fn unparseable_numbers_are_one_line_and_exit_2() {
    assert_one_line_naming(
        run_without(&[], &[("DOCWORKER_CONCURRENCY", "lots")]),
        "DOCWORKER_CONCURRENCY",
    );
    assert_one_line_naming(
        run_without(&[], &[("DOCWORKER_MAX_OBJECT_BYTES", "-5")]),
        "DOCWORKER_MAX_OBJECT_BYTES",
    );
    assert_one_line_naming(
        run_without(&[], &[("DOCWORKER_CONCURRENCY", "0")]),
        "DOCWORKER_CONCURRENCY",
    );
}

#[test]
fn a_configuration_that_could_exceed_the_memory_limit_is_refused_with_one_line() {
    // 16 × (64 MiB + 8 MiB) + 16 × 1 MiB + 32 MiB + 64 MiB = 1264 MiB against 512 MiB.
    let refused = run_without(
        &[],
        &[
            ("DOCWORKER_CONCURRENCY", "16"),
            ("DOCWORKER_MAX_DICOM_HEADER_BYTES", "67108864"),
            ("DOCWORKER_MEMORY_LIMIT", "512Mi"),
        ],
    );
    let stderr = refused.1.clone();
    assert_one_line_naming(refused, "DOCWORKER_CONCURRENCY");
    assert!(
        stderr.contains("DOCWORKER_MAX_DICOM_HEADER_BYTES")
            && stderr
                .contains("1264 MiB exceeds the memory limit of 512 MiB (DOCWORKER_MEMORY_LIMIT)"),
        "{stderr}"
    );
    assert_one_line_naming(
        run_without(&[], &[("DOCWORKER_MEMORY_LIMIT", "half a gig")]),
        "DOCWORKER_MEMORY_LIMIT",
    );
}

#[test]
fn migrate_with_a_bad_database_url_is_a_configuration_error() {
    let status = Command::new(worker_binary())
        .arg("migrate")
        .env("DATABASE_URL", "not a url")
        .output()
        .expect("run docworker migrate");
    assert_eq!(
        status.status.code(),
        Some(2),
        "a bad URL is a configuration error"
    );
}

#[tokio::test]
async fn migrate_creates_the_documents_table_and_exits_0() {
    let stack = crate::helpers::Stack::without_schema("migrate").await;
    let status = Command::new(worker_binary())
        .arg("migrate")
        .env("DATABASE_URL", &stack.database_url)
        .output()
        .expect("run docworker migrate");
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('documents')::text")
        .fetch_one(&stack.db)
        .await
        .expect("query catalog");
    assert_eq!(table.as_deref(), Some("documents"));
}

#[test]
fn verify_full_without_a_root_certificate_is_one_line_and_exit_2() {
    assert_one_line_naming(
        run_without(
            &["DOCWORKER_DB_SSL_ROOT_CERT", "PGSSLROOTCERT"],
            &[("DOCWORKER_DB_SSL_MODE", "verify-full")],
        ),
        "DOCWORKER_DB_SSL_ROOT_CERT",
    );
    assert_one_line_naming(
        run_without(
            &[],
            &[
                ("DOCWORKER_DB_SSL_MODE", "verify-full"),
                (
                    "DOCWORKER_DB_SSL_ROOT_CERT",
                    "/nonexistent/global-bundle.pem",
                ),
            ],
        ),
        "DOCWORKER_DB_SSL_ROOT_CERT",
    );
    assert_one_line_naming(
        run_without(&[], &[("DOCWORKER_DB_SSL_MODE", "verify-everything")]),
        "DOCWORKER_DB_SSL_MODE",
    );
}

#[test]
fn a_lock_timeout_above_the_statement_timeout_is_one_line_and_exit_2() {
    assert_one_line_naming(
        run_without(
            &[],
            &[
                ("DOCWORKER_DB_STATEMENT_TIMEOUT_MS", "1000"),
                ("DOCWORKER_DB_LOCK_TIMEOUT_MS", "5000"),
            ],
        ),
        "DOCWORKER_DB_LOCK_TIMEOUT_MS",
    );
}

/// `docworker <args>` with the stack's environment minus `remove`: (exit code, stdout, stderr).
fn docworker_without(
    stack: &crate::helpers::Stack,
    args: &[&str],
    remove: &[&str],
) -> (Option<i32>, String, String) {
    let mut command = Command::new(worker_binary());
    command.args(args).envs(stack.worker_env());
    for name in remove {
        command.env_remove(name);
    }
    let output = command.output().expect("run docworker");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn each_operator_command_documents_only_its_own_settings_on_one_screen() {
    let run_only = [
        "DOCWORKER_CONCURRENCY",
        "DOCWORKER_SHUTDOWN_DEADLINE_SECS",
        "DOCWORKER_RECEIVE_LINGER_MS",
        "DOCWORKER_MAX_DICOM_HEADER_BYTES",
        "DOCWORKER_MAX_OBJECT_BYTES",
        "DOCWORKER_METRICS_ADDR",
    ];
    let cases: &[(&[&str], &[&str], bool)] = &[
        (
            &["dlq", "stats"],
            &["DOCWORKER_QUEUE_URL", "DOCWORKER_DLQ_URL"],
            false,
        ),
        (
            &["dlq", "peek"],
            &["DOCWORKER_QUEUE_URL", "DOCWORKER_DLQ_URL"],
            true,
        ),
        (
            &["dlq", "redrive"],
            &["DOCWORKER_QUEUE_URL", "DOCWORKER_DLQ_URL"],
            false,
        ),
        (
            &["replay"],
            &["DOCWORKER_QUEUE_URL", "DOCWORKER_S3_PATH_STYLE"],
            true,
        ),
        (
            &["reconcile"],
            &[
                "DOCWORKER_QUEUE_URL",
                "DOCWORKER_S3_PATH_STYLE",
                "DOCWORKER_PENDING_STALE_SECS",
            ],
            true,
        ),
    ];
    for (command, settings, database) in cases {
        let output = Command::new(worker_binary())
            .args(*command)
            .arg("--help")
            .output()
            .expect("run docworker --help");
        let help = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{command:?}");
        assert!(
            help.lines().count() <= 24,
            "{command:?} --help is longer than a screen:\n{help}"
        );
        for unused in run_only {
            assert!(
                !help.contains(unused),
                "{command:?} --help shows {unused}:\n{help}"
            );
        }
        for used in *settings {
            assert!(
                help.contains(used),
                "{command:?} --help lacks {used}:\n{help}"
            );
        }
        assert_eq!(
            help.contains("DATABASE_URL"),
            *database,
            "{command:?}:\n{help}"
        );
    }
}

#[tokio::test]
async fn dlq_and_replay_work_without_database_credentials() {
    let stack = crate::helpers::Stack::new("nodb").await;
    let without = ["DATABASE_URL"];
    let (code, stdout, stderr) = docworker_without(&stack, &["dlq", "stats"], &without);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("depth (visible): 0"), "{stdout}");
    let (code, stdout, stderr) = docworker_without(&stack, &["dlq", "peek", "--json"], &without);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "[]");
    let (code, stdout, stderr) =
        docworker_without(&stack, &["dlq", "redrive", "--max", "5"], &without);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("moved 0 message(s)"), "{stdout}");
    let replay = ["replay", "--bucket", stack.bucket.as_str(), "--dry-run"];
    let (code, stdout, stderr) = docworker_without(&stack, &replay, &without);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("would enqueue 0"), "{stdout}");

    // Selecting rows is the one use of the database: without it, one line naming it.
    let by_status = [&replay[..], &["--status", "rejected"]].concat();
    let (code, _, stderr) = docworker_without(&stack, &by_status, &without);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[tokio::test]
async fn reconcile_needs_the_queue_only_to_fix() {
    let stack = crate::helpers::Stack::new("reconcilequeue").await;
    let without = ["DOCWORKER_QUEUE_URL"];
    let report = ["reconcile", "--bucket", stack.bucket.as_str(), "--json"];
    let (code, stdout, stderr) = docworker_without(&stack, &report, &without);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\"summary\""), "{stdout}");
    let fix = [&report[..], &["--fix"]].concat();
    let (code, stdout, stderr) = docworker_without(&stack, &fix, &without);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DOCWORKER_QUEUE_URL"), "{stderr}");
    let (code, _, stderr) = docworker_without(&stack, &report, &["DATABASE_URL"]);
    assert_eq!(code, Some(2), "the database is always needed: {stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}
