//! Allocation amplification of the DICOM header reader, measured with a counting global
//! allocator: the peak of bytes live during `read_header` over the input's size, for the fuzz
//! target's corpus (`fuzz/corpus/dicom_alloc/`) and for the worst inputs built here at full size.
//!
//! The budget charges everything the reader allocates, so the peak stays below the budget plus a
//! fixed overhead (buffers, the inflater, the parser's state) whatever the input. The figures
//! printed by `cargo test -p docworker-shared --features fixtures --test alloc_amplification --
//! --nocapture` are the ones in docs/performance.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use docworker_shared::dicom::read_header;
use docworker_shared::fixtures::{SampleDicom, TRANSFER_SYNTAXES, hostile};

/// Counts live bytes and their peak; everything else is the system allocator's.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Counted as a new block first: a moving realloc holds both for a moment.
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counters are process-wide: each test holds this for all of its run, so that no other
/// test's allocations (building a 16 MiB input) fall inside its measurements.
static MEASURING: Mutex<()> = Mutex::new(());

/// What the reader allocates besides what it charges: the 8 KiB read buffer, the inflater's
/// window and buffer (about 76 KiB), the meta table, the parser's state. Measured at 13 KiB
/// (87 KiB deflated); the fuzz target `dicom_alloc` asserts the same bounds.
const FIXED_OVERHEAD: usize = 128 << 10;

/// The most a byte that is not deflated can cost: a `\` is a 24-byte slot, its byte, and up to
/// five bytes of JSON in a buffer that doubles. Measured at 25.0.
const PER_INPUT_BYTE: usize = 32;

/// Amplification is reported for inputs from this size, where the fixed overhead no longer
/// dominates the ratio.
const RATIO_FROM: usize = 64 << 10;

const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// Peak bytes live above the level before the call, while `read_header` reads `bytes`. The
/// process-wide tables built on first use (the data dictionary, the transfer syntax registry, a
/// third of a MiB) are built first, by reading a sample in each transfer syntax: they are paid
/// once per process, not per object.
fn peak_of(bytes: &[u8], budget: u64) -> usize {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        for (ts, _) in TRANSFER_SYNTAXES {
            let sample = SampleDicom::with_transfer_syntax(ts).to_bytes();
            read_header(sample.as_slice(), 1 << 20).expect("a sample reads");
        }
    });
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let verdict = read_header(bytes, budget);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    drop(verdict);
    peak
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/dicom_alloc");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .map(|path| {
            let name = path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("corpus file"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no seeds", dir.display());
    files
}

/// Asserts both bounds for one input and returns its peak.
fn measured(name: &str, bytes: &[u8], budget: u64) -> usize {
    let peak = peak_of(bytes, budget);
    eprintln!(
        "{name}: {} bytes, peak {peak} bytes, {:.1} per byte",
        bytes.len(),
        peak as f64 / bytes.len() as f64
    );
    assert!(
        peak <= budget as usize + FIXED_OVERHEAD,
        "{name}: peak {peak} bytes for a budget of {budget}"
    );
    let deflated = bytes
        .windows(DEFLATED.len())
        .any(|w| w == DEFLATED.as_bytes());
    assert!(
        deflated || peak <= FIXED_OVERHEAD + PER_INPUT_BYTE * bytes.len(),
        "{name}: peak {peak} bytes for {} input bytes",
        bytes.len()
    );
    peak
}

/// The fuzz target's assertions, on its corpus and with its budget (small enough to exhaust).
#[test]
fn the_alloc_corpus_stays_within_the_budget_and_its_bytes_per_input_byte() {
    let _alone = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    for (name, bytes) in corpus() {
        measured(&name, &bytes, 64 << 10);
    }
}

/// The worst inputs at full size, against the default budget of 16 MiB: every one stays below
/// it, however far it would have expanded.
#[test]
fn hostile_headers_at_full_size_stay_within_the_default_budget() {
    let _alone = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let budget: u64 = 16 << 20;
    let nested = {
        let mut bytes = hostile::file(
            dicom_dictionary_std::uids::EXPLICIT_VR_LITTLE_ENDIAN,
            |_| {},
        );
        for _ in 0..100 {
            bytes.extend_from_slice(&[
                0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ]);
            bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        bytes
    };
    let mut inputs: Vec<(String, Vec<u8>)> = vec![
        (
            "empty values, 16 MiB".into(),
            hostile::empty_values(16 << 20),
        ),
        (
            "empty values, 512 KiB".into(),
            hostile::empty_values(512 << 10),
        ),
        (
            "empty DS values as UN, 16 MiB".into(),
            hostile::empty_values_as_un(16 << 20),
        ),
        (
            "empty DS values as UN, 512 KiB".into(),
            hostile::empty_values_as_un(512 << 10),
        ),
        ("escaped text, 3 MiB".into(), hostile::escaped_text(3 << 20)),
        (
            "escaped text, 512 KiB".into(),
            hostile::escaped_text(512 << 10),
        ),
        ("long UID".into(), hostile::long_study_uid(10_000)),
        ("nested sequences".into(), nested),
        (
            "deflated empty elements, 64 MiB inflated".into(),
            hostile::empty_elements_deflated(8 << 20),
        ),
        (
            "deflated 2 KiB binaries, 64 MiB inflated".into(),
            hostile::deflated(
                &hostile::element(0x0009, 0x1001, b"OB", &[0; 2048]),
                32 << 10,
            ),
        ),
    ];
    for (ts, _) in TRANSFER_SYNTAXES {
        inputs.push((
            format!("sample {ts}"),
            SampleDicom::with_transfer_syntax(ts).to_bytes(),
        ));
    }
    let mut worst = (0.0, String::new());
    for (name, bytes) in &inputs {
        let ratio = measured(name, bytes, budget) as f64 / bytes.len() as f64;
        if bytes.len() >= RATIO_FROM && !name.starts_with("deflated") && ratio > worst.0 {
            worst = (ratio, name.clone());
        }
    }
    eprintln!(
        "worst not deflated, from {RATIO_FROM} bytes: {:.1} bytes per input byte ({})",
        worst.0, worst.1
    );
}
