//! What each integrity check costs per byte, on one core: the SHA-256 every object gets, the
//! single-part ETag's MD5 (aws-lc's, and RustCrypto's `md-5` it replaced), the part digests for a multipart ETag or a composite checksum (8 MiB
//! parts, the AWS CLI's default), and a full-object CRC64NVME as the SDK's validation computes
//! it (crc-fast), to decide between keeping that validation and computing the CRC here.
//!
//! cargo bench -p docworker-shared --bench integrity
//! Results and the machine: docs/performance.md.

use std::hint::black_box;

use aws_lc_rs::digest::{Context, SHA256};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use docworker_shared::md5::Md5;
use docworker_shared::parts::{PartCheck, PartDigester, PartLayout};
use md5::Digest as _;

/// The chunk size the S3 body arrives in, roughly.
const CHUNK: usize = 64 * 1024;
const OBJECT: usize = 64 << 20;
const PART: u64 = 8 << 20;

fn checks(c: &mut Criterion) {
    let bytes: Vec<u8> = (0..OBJECT).map(|i| (i * 31 + i / 4099) as u8).collect();
    let mut group = c.benchmark_group("integrity_64MiB");
    group.throughput(Throughput::Bytes(OBJECT as u64));
    group.sample_size(10);
    group.bench_function("sha256_whole", |b| {
        b.iter(|| {
            let mut sha256 = Context::new(&SHA256);
            bytes.chunks(CHUNK).for_each(|c| sha256.update(c));
            black_box(sha256.finish());
        })
    });
    group.bench_function("md5_whole", |b| {
        b.iter(|| {
            let mut md5 = Md5::new();
            bytes.chunks(CHUNK).for_each(|c| md5.update(c));
            black_box(md5.finalize());
        })
    });
    group.bench_function("md5_whole_rustcrypto", |b| {
        b.iter(|| {
            let mut md5 = md5::Md5::new();
            bytes.chunks(CHUNK).for_each(|c| md5.update(c));
            black_box(md5.finalize());
        })
    });
    group.bench_function("crc64nvme_whole", |b| {
        b.iter(|| {
            let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
            bytes.chunks(CHUNK).for_each(|c| crc.update(c));
            black_box(crc.finalize());
        })
    });
    let count = (OBJECT as u64).div_ceil(PART) as u32;
    let layout = PartLayout::uniform(OBJECT as u64, count, PART, PART).expect("8 MiB parts");
    for check in [
        PartCheck::Md5,
        PartCheck::Crc32,
        PartCheck::Crc32c,
        PartCheck::Sha1,
        PartCheck::Sha256,
    ] {
        group.bench_function(format!("parts_{}", check.name()), |b| {
            b.iter(|| {
                let mut digester = PartDigester::new(layout.clone(), check);
                bytes.chunks(CHUNK).for_each(|c| digester.update(c));
                black_box(digester.finish());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, checks);
criterion_main!(benches);
