//! Per-object work of the pipeline, in process, on real-shaped objects held in memory: what the
//! worker does to every chunk (SHA-256, byte count), to the first 32 KiB (sniffing) and, for
//! DICOM, to the header (dicom-rs parse up to the pixels, promoted columns, DICOM JSON).
//!
//! cargo bench -p docworker-shared --features fixtures --bench inspect
//! Results and the machine: docs/performance.md.

use std::hint::black_box;
use std::io::Read;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use docworker_shared::fixtures::{self, SampleDicom};
use docworker_shared::integrity::{FullChecksum, Offered, Plan};
use docworker_shared::verify::Digests;
use docworker_shared::{dicom, sniff};

/// The chunk size the S3 body arrives in, roughly.
const CHUNK: usize = 64 * 1024;

fn objects() -> Vec<(&'static str, Vec<u8>)> {
    let small = SampleDicom {
        pixel_bytes: 100 << 10,
        ..SampleDicom::default()
    }
    .to_bytes();
    let large = SampleDicom {
        pixel_bytes: 50 << 20,
        ..SampleDicom::default()
    }
    .to_bytes();
    let mut pdf = fixtures::pdf();
    pdf.resize(1 << 20, b' ');
    let mut jpeg = fixtures::jpeg();
    jpeg.resize(2 << 20, 0x55);
    vec![
        ("dicom_100KiB", small),
        ("dicom_50MiB", large),
        ("pdf_1MiB", pdf),
        ("jpeg_2MiB", jpeg),
    ]
}

/// What the worker does for one object, minus the network and the database.
fn inspect(bytes: &[u8]) -> usize {
    let mut digests = Digests::new(None);
    for chunk in bytes.chunks(CHUNK) {
        digests.update(chunk);
    }
    let prefix = &bytes[..bytes.len().min(sniff::SNIFF_LEN)];
    let detected = sniff::sniff(prefix);
    let header = sniff::is_dicom(prefix).then(|| dicom::read_header(Chunks(bytes), 64 << 20));
    let digested = digests
        .conclude(bytes.len() as u64, &plan(), None)
        .expect("length matches");
    black_box((detected, header.map(|h| h.is_ok())));
    digested.sha256.len()
}

/// An object S3 holds a full-object CRC64NVME for, as for every new upload: the SDK validates it,
/// so the worker computes no MD5.
fn plan() -> Plan {
    Plan::new(&Offered {
        full: Some(FullChecksum::Crc64Nvme),
        ..Offered::default()
    })
    .expect("no client digest to refuse")
}

/// A reader that hands out one chunk per read, as the streaming bridge does.
struct Chunks<'a>(&'a [u8]);

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(CHUNK);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn per_object(c: &mut Criterion) {
    let mut group = c.benchmark_group("inspect");
    for (name, bytes) in objects() {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| b.iter(|| inspect(black_box(&bytes))));
    }
    group.finish();

    let small = SampleDicom::default().to_bytes();
    let mut header = c.benchmark_group("dicom_header");
    header.bench_function("ct_sample", |b| {
        b.iter(|| dicom::read_header(black_box(small.as_slice()), 64 << 20))
    });
    header.finish();
}

criterion_group!(benches, per_object);
criterion_main!(benches);
