//! DICOM header extraction on arbitrary bytes, with a small header budget.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = docworker_shared::dicom::read_header(bytes, 1 << 20);
});
