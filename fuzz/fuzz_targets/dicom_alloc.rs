//! Allocation amplification of DICOM header extraction: a counting allocator measures the peak of
//! bytes live while `read_header` reads the input, with a budget small enough for inputs to
//! exhaust. The budget charges everything the reader allocates, so the peak stays within it plus
//! a fixed overhead, and, unless the data set is deflated, within a fixed number of bytes per
//! input byte. Inputs that come close are worth keeping in `fuzz/corpus/dicom_alloc/`, which
//! `shared/tests/alloc_amplification.rs` replays on stable Rust with the same bounds.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;

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
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BUDGET: u64 = 64 << 10;
/// The same bounds as `shared/tests/alloc_amplification.rs`.
const FIXED_OVERHEAD: usize = 128 << 10;
const PER_INPUT_BYTE: usize = 32;

fuzz_target!(
    init: {
        // The process-wide tables built on first use (the data dictionary, the transfer syntax
        // registry) are paid once per process, not per input: built before measuring.
        for (ts, _) in docworker_shared::fixtures::TRANSFER_SYNTAXES {
            let sample =
                docworker_shared::fixtures::SampleDicom::with_transfer_syntax(ts).to_bytes();
            docworker_shared::dicom::read_header(sample.as_slice(), 1 << 20)
                .expect("a sample reads");
        }
    },
    |bytes: &[u8]| {
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let verdict = docworker_shared::dicom::read_header(bytes, BUDGET);
        let peak = PEAK.load(Ordering::Relaxed) - before;
        drop(verdict);
        assert!(
            peak <= BUDGET as usize + FIXED_OVERHEAD,
            "peak {peak} bytes for a budget of {BUDGET}"
        );
        let deflated = bytes.windows(22).any(|w| w == b"1.2.840.10008.1.2.1.99");
        assert!(
            deflated || peak <= FIXED_OVERHEAD + PER_INPUT_BYTE * bytes.len(),
            "peak {peak} bytes for {} input bytes",
            bytes.len()
        );
    }
);
