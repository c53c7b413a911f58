//! Content sniffing, the preamble judgement and the archive check on arbitrary prefixes.
#![no_main]

use docworker_shared::{sniff, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|prefix: &[u8]| {
    let _ = sniff::sniff(prefix);
    let _ = sniff::preamble(prefix);
    let _ = verify::check_archive(prefix);
});
