//! Times header extraction (parse to Pixel Data, promoted columns, DICOM JSON) per file, from
//! memory, for the peer comparison in `bench/peers.py`. Prints one JSON line per file with the
//! mean microseconds over the iterations.
//!
//! cargo run --release -p docworker-shared --features fixtures --example header_bench -- ITERATIONS FILE...

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u32 = args
        .next()
        .and_then(|n| n.parse().ok())
        .expect("ITERATIONS FILE...");
    for path in args {
        let bytes = std::fs::read(&path).expect("read file");
        let ok = docworker_shared::dicom::read_header(bytes.as_slice(), 64 << 20).is_ok();
        let started = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(
                docworker_shared::dicom::read_header(
                    std::hint::black_box(bytes.as_slice()),
                    64 << 20,
                )
                .is_ok(),
            );
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        println!(
            "{}",
            serde_json::json!({"file": path, "ok": ok, "micros": micros, "bytes": bytes.len()})
        );
    }
}
