//! The database's answers: a value it refuses is a rejection of the file, a lock or a slow
//! statement is a retry, and the runtime role of a two-role set-up can do nothing but record.

use std::time::{Duration, Instant};

use docworker::error::database::{self, Fault};
use docworker_shared::fixtures::{self, SampleDicom};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};

use crate::faults::TempPostgres;
use crate::helpers::{Options, Stack, WAIT, sha256_hex, worker_binary};

/// The SQLSTATE and classification of the error `sql` (with `bind`) gets from PostgreSQL.
async fn refusal_of(db: &PgPool, sql: &str, bind: &str) -> (String, Fault, String) {
    let error = sqlx::query(AssertSqlSafe(sql))
        .bind(bind)
        .execute(db)
        .await
        .expect_err(sql);
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
        .unwrap_or_default();
    (code, database::classify(&error), database::describe(&error))
}

fn refused(condition: &'static str, sqlstate: &str, object: Option<&str>) -> Fault {
    Fault::Refused(docworker_shared::Rejection::DatabaseRefused {
        sqlstate: sqlstate.to_owned(),
        condition,
        object: object.map(str::to_owned),
    })
}

/// A value no compression shrinks below the B-tree's 2704-byte row maximum.
fn incompressible(len: usize) -> String {
    std::iter::repeat_with(|| uuid::Uuid::new_v4().simple().to_string())
        .flat_map(|s| s.into_bytes())
        .take(len)
        .map(char::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_postgres_errors_are_classified_by_sqlstate_and_described_without_values() {
    let stack = Stack::new("classify").await;
    let db = &stack.db;
    sqlx::raw_sql(
        "CREATE TABLE t (short varchar(4), n int CONSTRAINT t_n_positive CHECK (n > 0),
                         nn text NOT NULL DEFAULT 'x', big text, j jsonb);
         CREATE INDEX t_big ON t (big)",
    )
    .execute(db)
    .await
    .expect("test table");
    let secret = "SECRETVALUE";
    let cases: Vec<(&str, String, Fault)> = vec![
        (
            "INSERT INTO t (short) VALUES ($1)",
            secret.into(),
            refused("string_data_right_truncation", "22001", None),
        ),
        (
            "INSERT INTO t (n) VALUES ($1::text::int)",
            secret.into(),
            refused("invalid_text_representation", "22P02", None),
        ),
        (
            "INSERT INTO t (big) VALUES ($1)",
            format!("{secret}\0"),
            refused("character_not_in_repertoire", "22021", None),
        ),
        (
            "INSERT INTO t (j) VALUES ($1::jsonb)",
            format!(r#"{{"a": "{secret}\u0000"}}"#),
            refused("untranslatable_character", "22P05", None),
        ),
        (
            "INSERT INTO t (n) VALUES (length($1) * -1)",
            secret.into(),
            refused("check_violation", "23514", Some("t_n_positive")),
        ),
        (
            "INSERT INTO t (nn) VALUES (NULLIF($1, $1))",
            secret.into(),
            refused("not_null_violation", "23502", Some("t.nn")),
        ),
        (
            "INSERT INTO t (big) VALUES ($1)",
            format!("{secret}{}", incompressible(4_000)),
            refused("program_limit_exceeded", "54000", Some("t_big")),
        ),
        (
            "SELECT $1::text FROM no_such_table",
            secret.into(),
            Fault::Outage,
        ),
    ];
    for (sql, bind, expected) in cases {
        let (code, fault, described) = refusal_of(db, sql, &bind).await;
        assert_eq!(fault, expected, "{sql}: SQLSTATE {code}");
        assert!(!described.contains(secret), "{sql}: {described}");
    }

    // Contention: a row lock held past lock_timeout, a statement past statement_timeout.
    sqlx::query("INSERT INTO t (n) VALUES (1)")
        .execute(db)
        .await
        .unwrap();
    let mut holder = db.begin().await.unwrap();
    sqlx::query("SELECT * FROM t FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let mut waiter = db.acquire().await.unwrap();
    sqlx::query("SET lock_timeout = 100")
        .execute(&mut *waiter)
        .await
        .unwrap();
    let locked = sqlx::query("UPDATE t SET n = 2")
        .execute(&mut *waiter)
        .await
        .unwrap_err();
    assert_eq!(database::classify(&locked), Fault::Contention, "{locked}");
    assert!(database::describe(&locked).contains("55P03"));
    holder.rollback().await.unwrap();
    sqlx::query("SET statement_timeout = 100")
        .execute(&mut *waiter)
        .await
        .unwrap();
    let slow = sqlx::query("SELECT pg_sleep(5)")
        .execute(&mut *waiter)
        .await
        .unwrap_err();
    assert_eq!(database::classify(&slow), Fault::Contention, "{slow}");
    assert!(database::describe(&slow).contains("57014"));
    drop(waiter);

    // Unreachable, and no such database: outages.
    for url in [
        "postgres://postgres@127.0.0.1:1/postgres".to_owned(),
        format!("{}_missing", stack.database_url),
    ] {
        let error = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
            .expect_err("cannot connect");
        assert_eq!(database::classify(&error), Fault::Outage, "{error}");
    }
}

/// How many times the worker fetched the object's body, from moto's request log.
fn downloads(stack: &Stack, key: &str) -> usize {
    let moto_log = std::env::var("DOCWORKER_MOTO_LOG")
        .expect("DOCWORKER_MOTO_LOG names moto_server's request log (infra/local/stack.sh env)");
    let requests = std::fs::read_to_string(&moto_log).expect("read moto log");
    requests
        .matches(&format!("\"GET /{}/{key}", stack.bucket))
        .count()
}

async fn outcomes(stack: &Stack, key: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT outcome FROM document_events WHERE bucket = $1 AND file_key = $2 ORDER BY id",
    )
    .bind(&stack.bucket)
    .bind(key)
    .fetch_all(&stack.db)
    .await
    .expect("audit trail")
}

/// Asserts what a refusal must leave: a `rejected` row with the reason and the digest but none of
/// the DICOM values, one attempt, one download, the message deleted (not in the DLQ), and
/// receiving never paused.
async fn assert_refused(stack: &Stack, key: &str, bytes: &[u8], reason: &str) {
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "rejected", "{row:?}");
    assert_eq!(row.rejection_reason.as_deref(), Some(reason));
    assert_eq!(row.sha256.as_deref(), Some(sha256_hex(bytes).as_str()));
    assert!(row.dicom.is_none() && row.study_instance_uid.is_none() && row.modality.is_none());
    stack.wait_queue_empty().await;
    assert_eq!(stack.queue_counts(&stack.dlq_url).await, (0, 0), "DLQ");
    assert_eq!(outcomes(stack, key).await, ["rejected"]);
    assert_eq!(downloads(stack, key), 1, "downloaded once");
    let log = stack.worker_log();
    assert!(!log.contains("not receiving"), "receiving paused:\n{log}");
    assert!(!log.contains("\"retrying\""), "retried:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_the_database_refuses_rejects_the_file_once_and_receiving_goes_on() {
    let mut stack = Stack::new("refused").await;
    // A constraint of this test's database only: the worker's own checks know nothing of it,
    // so only PostgreSQL can refuse the row.
    sqlx::query(
        "ALTER TABLE documents ADD CONSTRAINT test_no_ct CHECK (modality IS DISTINCT FROM 'CT')",
    )
    .execute(&stack.db)
    .await
    .expect("test constraint");
    stack.start_worker(&[]);
    let ct = SampleDicom::default().to_bytes();
    stack
        .put(
            "medical/refused.dcm",
            ct.clone(),
            Some("application/dicom"),
            &[],
        )
        .await;
    assert_refused(
        &stack,
        "medical/refused.dcm",
        &ct,
        "the database refused the record: check_violation (SQLSTATE 23514) on test_no_ct",
    )
    .await;

    let mr = SampleDicom {
        modality: "MR".into(),
        ..SampleDicom::default()
    };
    stack
        .put(
            "medical/fine.dcm",
            mr.to_bytes(),
            Some("application/dicom"),
            &[],
        )
        .await;
    let fine = stack.wait_settled("medical/fine.dcm").await;
    assert_eq!(fine.status, "finalized", "{fine:?}");
    assert_eq!(fine.modality.as_deref(), Some("MR"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_refused_even_as_a_rejection_ends_in_the_dead_letter_queue_with_the_reason() {
    let mut stack = Stack::with(
        "unstorable",
        Options {
            visibility_timeout_secs: 1,
            max_receive_count: 2,
            notify: true,
        },
    )
    .await;
    // Refuses every row of this key, the rejection's too: nothing can be recorded for it.
    sqlx::query(
        "ALTER TABLE documents ADD CONSTRAINT test_unstorable CHECK (file_key NOT LIKE '%unstorable%')",
    )
    .execute(&stack.db)
    .await
    .expect("test constraint");
    stack.start_worker(&[]);
    let key = "images/unstorable.png";
    stack
        .put(key, fixtures::png(), Some("image/png"), &[])
        .await;
    let deadline = Instant::now() + WAIT;
    while stack.queue_counts(&stack.dlq_url).await.0 != 1 {
        assert!(
            Instant::now() < deadline,
            "not dead-lettered:\n{}",
            stack.worker_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stack.document(key).await.is_none());
    let reasons: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT outcome, reason FROM document_events WHERE file_key = $1 ORDER BY id",
    )
    .bind(key)
    .fetch_all(&stack.db)
    .await
    .unwrap();
    assert!(!reasons.is_empty());
    for (outcome, reason) in reasons {
        assert_eq!(outcome, "poison");
        assert_eq!(
            reason.as_deref(),
            Some(
                "database: the database refused the record: check_violation (SQLSTATE 23514) on test_unstorable"
            )
        );
    }
    assert!(!stack.worker_log().contains("not receiving"));
}

/// Inserts the `pending` row the upload path writes, so that another session can lock it.
async fn pending_row(stack: &Stack, key: &str) {
    sqlx::query(
        "INSERT INTO documents (bucket, file_key, category, status) VALUES ($1, $2, 'images', 'pending')",
    )
    .bind(&stack.bucket)
    .bind(key)
    .execute(&stack.db)
    .await
    .expect("pending row");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_lock_held_elsewhere_fails_the_write_as_retryable_until_released() {
    let mut stack = Stack::new("locked").await;
    let key = "images/locked.png";
    pending_row(&stack, key).await;
    let mut holder = stack.db.begin().await.unwrap();
    sqlx::query("SELECT * FROM documents WHERE file_key = $1 FOR UPDATE")
        .bind(key)
        .execute(&mut *holder)
        .await
        .unwrap();
    stack.start_worker(&[("DOCWORKER_DB_LOCK_TIMEOUT_MS", "200")]);
    stack
        .put(key, fixtures::png(), Some("image/png"), &[])
        .await;
    stack
        .wait_log("canceling statement due to lock timeout")
        .await;
    assert_eq!(stack.document(key).await.unwrap().status, "pending");
    holder.rollback().await.unwrap();
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized", "{row:?}");
    stack.wait_queue_empty().await;
    let log = stack.worker_log();
    assert!(log.contains("\"retrying\""), "{log}");
    assert!(
        !log.contains("not receiving"),
        "a lock is not an outage:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statement_past_the_statement_timeout_is_cancelled_and_retried() {
    let mut stack = Stack::new("slowdb").await;
    sqlx::raw_sql(
        "CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep(10); RETURN NEW; END $$;
         CREATE TRIGGER test_slow BEFORE INSERT OR UPDATE ON documents
             FOR EACH ROW EXECUTE FUNCTION test_slow();",
    )
    .execute(&stack.db)
    .await
    .expect("slow trigger");
    stack.start_worker(&[
        ("DOCWORKER_DB_STATEMENT_TIMEOUT_MS", "300"),
        ("DOCWORKER_DB_LOCK_TIMEOUT_MS", "100"),
    ]);
    let key = "images/slow.png";
    stack
        .put(key, fixtures::png(), Some("image/png"), &[])
        .await;
    stack
        .wait_log("canceling statement due to statement timeout")
        .await;
    assert!(stack.document(key).await.is_none());
    sqlx::query("DROP TRIGGER test_slow ON documents")
        .execute(&stack.db)
        .await
        .unwrap();
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized", "{row:?}");
    assert!(!stack.worker_log().contains("not receiving"));
}

/// The statements docs/deploy.md gives for a database of the two-role set-up, for `database`.
pub async fn two_role_database(admin: &PgPool, database: &str) {
    sqlx::raw_sql(include_str!("../../infra/local/roles.sql"))
        .execute(admin)
        .await
        .expect("roles");
    for statement in [
        format!("ALTER DATABASE {database} OWNER TO docworker_owner"),
        format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC"),
        format!("GRANT CONNECT ON DATABASE {database} TO docworker_app"),
    ] {
        sqlx::query(AssertSqlSafe(statement))
            .execute(admin)
            .await
            .expect("database set-up");
    }
}

pub fn as_role(url: &str, role: &str) -> String {
    let (_, rest) = url.split_once("://").expect("URL");
    let (_, host) = rest.split_once('@').expect("URL with a user");
    format!("postgres://{role}:{role}@{host}")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_role_records_documents_and_can_do_nothing_else() {
    let mut stack = Stack::without_schema("roles").await;
    let database = stack
        .database_url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_owned();
    two_role_database(&stack.db, &database).await;
    let owner_url = as_role(&stack.database_url, "docworker_owner");
    let app_url = as_role(&stack.database_url, "docworker_app");
    let migrate = std::process::Command::new(worker_binary())
        .arg("migrate")
        .env("DATABASE_URL", &owner_url)
        .output()
        .expect("docworker migrate");
    assert!(
        migrate.status.success(),
        "migrate as the owner: {}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    stack.database_url = app_url.clone();
    stack.start_worker_with_args(&["--no-migrate"], &[]);
    let key = "images/two-roles.png";
    stack
        .put(key, fixtures::png(), Some("image/png"), &[])
        .await;
    assert_eq!(stack.wait_settled(key).await.status, "finalized");
    stack.delete_object(key).await;
    stack.wait_for(key, |d| d.status == "deleted").await;
    assert_eq!(outcomes(&stack, key).await, ["finalized", "deleted"]);

    let app = PgPoolOptions::new()
        .max_connections(1)
        .connect(&app_url)
        .await
        .expect("connect as docworker_app");
    for sql in [
        "UPDATE document_events SET reason = 'x'",
        "DELETE FROM document_events",
        "DELETE FROM documents",
        "TRUNCATE documents",
        "TRUNCATE document_events",
        "DROP TABLE documents",
        "ALTER TABLE documents DROP CONSTRAINT documents_rejection_has_reason",
        "CREATE TABLE smuggled (x int)",
        "CREATE TEMPORARY TABLE smuggled (x int)",
        "DELETE FROM _sqlx_migrations",
    ] {
        let error = sqlx::query(sql).execute(&app).await.expect_err(sql);
        let code = error.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {error}");
    }

    // The owner can, but the audit trail's triggers refuse it too.
    let owner = PgPoolOptions::new()
        .max_connections(1)
        .connect(&owner_url)
        .await
        .expect("connect as docworker_owner");
    for sql in [
        "TRUNCATE document_events",
        "DELETE FROM document_events",
        "UPDATE document_events SET reason = 'x'",
    ] {
        let error = sqlx::query(sql).execute(&owner).await.expect_err(sql);
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
    let (code, log) = stack.stop_worker();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_on_a_cluster_without_the_roles_and_truncate_is_refused() {
    let pg = TempPostgres::start();
    let db = PgPoolOptions::new()
        .max_connections(1)
        .connect(&pg.url())
        .await
        .expect("temporary cluster");
    let roles: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'docworker%'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(roles, 0, "a cluster of its own, without docworker's roles");
    docworker_shared::MIGRATOR.run(&db).await.expect("migrate");
    let error = sqlx::query("TRUNCATE document_events")
        .execute(&db)
        .await
        .expect_err("TRUNCATE");
    assert!(error.to_string().contains("append-only"), "{error}");
}

/// A certificate authority and a server certificate for `localhost` signed by it, made with the
/// openssl command line in a directory the server's user can read.
struct Certificates {
    dir: std::path::PathBuf,
}

impl Certificates {
    fn make() -> Certificates {
        let dir = std::env::temp_dir().join(format!("docworker-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("certificate dir");
        std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
        let openssl = |args: &[&str]| {
            let output = std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=docworker test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ]);
        }
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ]);
        if crate::faults::is_root() {
            for path in [
                dir.as_path(),
                &dir.join("server.key"),
                &dir.join("server.crt"),
            ] {
                let status = std::process::Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(path)
                    .status()
                    .expect("chown");
                assert!(status.success());
            }
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        Certificates { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("UTF-8 path").to_owned()
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_connects_only_to_the_server_the_root_certificate_vouches_for() {
    let certs = Certificates::make();
    let cert = format!("ssl_cert_file={}", certs.path("server.crt"));
    let key = format!("ssl_key_file={}", certs.path("server.key"));
    let pg = TempPostgres::start_with(&["ssl=on", &cert, &key]);
    let migrate = |host: &str, ca: &str| {
        let output = std::process::Command::new(worker_binary())
            .arg("migrate")
            .env(
                "DATABASE_URL",
                format!("postgres://postgres@{host}:{}/postgres", pg.port()),
            )
            .env("DOCWORKER_DB_SSL_MODE", "verify-full")
            .env("DOCWORKER_DB_SSL_ROOT_CERT", certs.path(ca))
            .output()
            .expect("docworker migrate");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = migrate("localhost", "ca.pem");
    assert_eq!(code, Some(0), "the certificate's name and CA: {stderr}");
    let (code, stderr) = migrate("127.0.0.1", "ca.pem");
    assert_eq!(
        code,
        Some(1),
        "127.0.0.1 is not a name of the certificate: {stderr}"
    );
    let (code, stderr) = migrate("localhost", "other-ca.pem");
    assert_eq!(code, Some(1), "another CA: {stderr}");
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
}
