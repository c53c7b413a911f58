//! Outages of the real dependencies: PostgreSQL stopped (a throwaway cluster of its own, so the
//! shared server keeps serving the other tests) and S3/SQS unreachable (a TCP proxy in front of
//! moto is cut: moto keeps its state in memory, so stopping it would lose the bucket and queue).

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{Stack, endpoint};
use docworker_shared::fixtures;

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A PostgreSQL cluster of this test's own, started and stopped with pg_ctl.
pub(crate) struct TempPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Extra server settings, as `-c name=value` arguments of postgres.
    settings: String,
}

impl TempPostgres {
    pub(crate) fn start() -> TempPostgres {
        TempPostgres::start_with(&[])
    }

    /// A cluster started with these `name=value` settings (e.g. `ssl=on`).
    pub(crate) fn start_with(settings: &[&str]) -> TempPostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb");
        let dir =
            std::env::temp_dir().join(format!("docworker-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let pg = TempPostgres {
            bin,
            dir,
            port: free_port(),
            settings: settings.iter().map(|s| format!(" -c {s}")).collect(),
        };
        if is_root() {
            assert!(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&pg.dir)
                    .status()
                    .expect("chown")
                    .success()
            );
        }
        let initdb = pg
            .as_owner(pg.bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&pg.dir)
            .output()
            .expect("initdb");
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        pg.up();
        pg
    }

    /// initdb and postgres refuse to run as root: run them as the postgres user then.
    fn as_owner(&self, program: PathBuf) -> Command {
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// `pg_ctl -D <dir> <args>` as the cluster's owner.
    fn pg_ctl(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        self.as_owner(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.dir)
            .args(args)
            .output()
    }

    /// Runs `pg_ctl`, failing the test with its stderr if it fails.
    fn pg_ctl_ok(&self, args: &[&str]) {
        let output = self.pg_ctl(args).expect("run pg_ctl");
        assert!(
            output.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1{}",
            self.port,
            self.dir.display(),
            self.settings
        );
        let log = self.dir.join("log");
        let log = log.to_str().expect("UTF-8 temporary path");
        self.pg_ctl_ok(&["-o", &options, "-l", log, "-w", "start"]);
    }

    fn down(&self) {
        self.pg_ctl_ok(&["-m", "fast", "-w", "stop"]);
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        // Best effort: the cluster may already be stopped.
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_stopped_mid_run_loses_nothing_and_everything_finishes_after() {
    let pg = TempPostgres::start();
    let mut stack = Stack::new("pgdown").await;
    stack.database_url = pg.url();
    stack.db = PgPoolOptions::new()
        .max_connections(2)
        .connect(&pg.url())
        .await
        .expect("temp cluster");
    docworker_shared::MIGRATOR
        .run(&stack.db)
        .await
        .expect("migrate");
    stack.start_worker(&[]);
    stack
        .put("medical/before.pdf", fixtures::pdf(), None, &[])
        .await;
    assert_eq!(
        stack.wait_settled("medical/before.pdf").await.status,
        "finalized"
    );
    stack.db.close().await;

    pg.down();
    let keys: Vec<String> = (0..5).map(|i| format!("medical/during-{i}.pdf")).collect();
    for key in &keys {
        stack.put(key, fixtures::pdf(), None, &[]).await;
    }
    stack.wait_log("database unavailable: not receiving").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        stack.worker_alive(),
        "the worker stays up through the outage"
    );

    pg.up();
    stack.db = PgPoolOptions::new()
        .max_connections(2)
        .connect(&pg.url())
        .await
        .expect("temp cluster back");
    for key in &keys {
        assert_eq!(stack.wait_settled(key).await.status, "finalized", "{key}");
    }
    stack.wait_queue_empty().await;
    assert_eq!(
        stack.queue_counts(&stack.dlq_url).await,
        (0, 0),
        "nothing dead-lettered"
    );
    stack.wait_log("database is back: receiving again").await;
}

/// A TCP proxy that can be cut: while cut, it refuses new connections and drops open ones.
struct Proxy {
    port: u16,
    cut: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let (cut, watch) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if *watch.borrow() {
                    continue; // dropped: connection reset
                }
                let upstream = upstream.clone();
                let mut watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watch.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy { port, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_and_sqs_unreachable_for_a_while_the_worker_backs_off_and_recovers() {
    let upstream = endpoint().trim_start_matches("http://").to_owned();
    let proxy = Proxy::start(upstream).await;
    let mut stack = Stack::new("awsdown").await;
    let proxied = format!("http://127.0.0.1:{}", proxy.port);
    stack.start_worker(&[("AWS_ENDPOINT_URL", proxied.as_str())]);
    stack
        .put("medical/before.pdf", fixtures::pdf(), None, &[])
        .await;
    assert_eq!(
        stack.wait_settled("medical/before.pdf").await.status,
        "finalized"
    );

    proxy.set_cut(true);
    let cut_at = Instant::now();
    let outage = Duration::from_secs(10);
    let keys: Vec<String> = (0..3).map(|i| format!("medical/during-{i}.pdf")).collect();
    for key in &keys {
        stack.put(key, fixtures::pdf(), None, &[]).await;
    }
    let failures_before = stack
        .worker_log()
        .matches("receiving from the queue failed")
        .count();
    tokio::time::sleep(outage.saturating_sub(cut_at.elapsed())).await;
    let failures = stack
        .worker_log()
        .matches("receiving from the queue failed")
        .count()
        - failures_before;
    proxy.set_cut(false);

    assert!(failures >= 1, "the outage was noticed");
    assert!(
        failures <= 10,
        "backed off instead of spinning: {failures} failed receives in {outage:?}"
    );
    assert!(stack.worker_alive());
    for key in &keys {
        assert_eq!(stack.wait_settled(key).await.status, "finalized", "{key}");
    }
    stack.wait_queue_empty().await;
}

/// Polls `/readyz` until it answers `want`, failing after `within` (counted from `since`).
async fn wait_readiness(stack: &Stack, want: u16, since: Instant, within: Duration) -> String {
    loop {
        let (status, body) = stack.http_get("/readyz").await;
        if status == want {
            return body;
        }
        assert!(
            since.elapsed() < within,
            "/readyz still {status} after {within:?}:\n{body}\nworker log:\n{}",
            stack.worker_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_queue_from_start_up_through_an_outage() {
    let upstream = endpoint().trim_start_matches("http://").to_owned();
    let proxy = Proxy::start(upstream).await;
    let mut stack = Stack::new("ready").await;
    let proxied = format!("http://127.0.0.1:{}", proxy.port);
    let spawned = Instant::now();
    stack.start_worker(&[("AWS_ENDPOINT_URL", proxied.as_str())]);
    // The queue is empty: the first long poll stays open for 20 s. Start-up's GetQueueAttributes
    // already showed the queue is reachable.
    let body = wait_readiness(&stack, 200, spawned, Duration::from_secs(5)).await;
    println!("ready {:?} after spawning the worker", spawned.elapsed());
    assert!(body.contains("queue: true"), "{body}");

    proxy.set_cut(true);
    let cut = Instant::now();
    let body = wait_readiness(&stack, 503, cut, Duration::from_secs(5)).await;
    println!("unready {:?} after SQS was cut", cut.elapsed());
    assert!(body.contains("queue: false"), "{body}");
    assert!(
        body.contains("database: true"),
        "only the queue is down: {body}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = stack.http_get("/readyz").await;
    assert_eq!(status, 503, "still unready while cut: {body}");

    proxy.set_cut(false);
    let restored = Instant::now();
    // The receive backoff is at most a few seconds this early in an outage.
    wait_readiness(&stack, 200, restored, Duration::from_secs(30)).await;
    println!("ready again {:?} after SQS came back", restored.elapsed());
    assert!(stack.worker_alive());
}
