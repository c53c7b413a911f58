//! How many object outcomes PostgreSQL takes per second through the worker's own write (the
//! audited upsert of `DocumentStore::record`, one statement per object), with a finalized DICOM
//! row like the worker's for a ~100 KiB CT image (header JSON ~1.5 KB). Feeds docs/scaling.md.
//!
//! ```sh
//! cargo run --release -p docworker-shared --features fixtures --example store_bench -- \
//!     postgres://postgres@127.0.0.1:5432/docworker_bench 16 10
//! ```
//! Arguments: database URL (migrated, e.g. by `docworker migrate`), connections, seconds.

use std::time::{Duration, Instant};

use chrono::Utc;
use docworker_shared::dicom::read_header;
use docworker_shared::fixtures::SampleDicom;
use docworker_shared::integrity::{FullChecksum, Integrity};
use docworker_shared::{
    Category, DocumentStore, Finalized, ObjectFacts, Outcome, Trail, UploadMetadata,
};
use sqlx::postgres::PgPoolOptions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: store_bench DATABASE_URL [CONNECTIONS] [SECONDS]")?;
    let connections: usize = args.next().map_or(Ok(16), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(10), |a| a.parse())?;

    let pool = PgPoolOptions::new()
        .max_connections(connections as u32)
        .connect(&url)
        .await?;
    let store = DocumentStore::new(pool);
    let bytes = SampleDicom::default().to_bytes();
    let header = read_header(&bytes[..], 1 << 20).map_err(|e| e.to_string())?;
    let bucket = format!("store-bench-{}", std::process::id());
    let deadline = Instant::now() + Duration::from_secs(seconds);

    let mut tasks = Vec::new();
    for task in 0..connections {
        let (store, header, bucket) = (store.clone(), header.clone(), bucket.clone());
        tasks.push(tokio::spawn(async move {
            let mut written = 0u64;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let facts = ObjectFacts {
                    bucket: bucket.clone(),
                    key: format!("medical/{task}/{written}.dcm"),
                    category: Category::Medical,
                    etag: Some("9b2cf535f27731c974343645a3985328".to_owned()),
                    version_id: None,
                    sequencer: Some(format!("{:020X}", written)),
                    uploaded_at: Utc::now(),
                    declared_content_type: Some("application/dicom".to_owned()),
                    file_size: Some(103_424),
                    upload: UploadMetadata::default(),
                };
                let outcome = Outcome::Finalized(Box::new(Finalized {
                    content_type: "application/dicom",
                    sha256: "0".repeat(64),
                    integrity: Integrity::S3Checksum(FullChecksum::Crc32),
                    dicom: Some(header.clone()),
                }));
                let started = Instant::now();
                let trail = Trail {
                    message_id: "store-bench",
                    attempt: 1,
                    started,
                    replayed: false,
                    seen: None,
                };
                store.record(&facts, &outcome, "bench", trail).await?;
                latencies.push(started.elapsed());
                written += 1;
            }
            Ok::<_, sqlx::Error>((written, latencies))
        }));
    }
    let mut written = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let (n, mut l) = task.await??;
        written += n;
        latencies.append(&mut l);
    }
    latencies.sort();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "{connections} connections, {seconds} s: {written} objects recorded, {:.0} per second; \
         statement latency p50 {:.2} ms, p99 {:.2} ms",
        written as f64 / seconds as f64,
        at(50).as_secs_f64() * 1000.0,
        at(99).as_secs_f64() * 1000.0,
    );
    sqlx::query("DELETE FROM documents WHERE bucket = $1")
        .bind(&bucket)
        .execute(store.pool())
        .await?;
    Ok(())
}
