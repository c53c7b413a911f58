//! The central directory check on arbitrary archives, cut as the pipeline cuts them: the first
//! bytes as the sniffed prefix, the last ones as the kept tail. A first byte picks a shorter tail,
//! so that directories larger than the tail are reached too.
#![no_main]

use docworker_shared::{sniff::SNIFF_LEN, verify::ZIP_TAIL_LEN, zip_directory};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&cut, archive)) = input.split_first() else {
        return;
    };
    let prefix = &archive[..archive.len().min(SNIFF_LEN)];
    let kept = (ZIP_TAIL_LEN >> (cut % 16)).min(archive.len());
    let tail = &archive[archive.len() - kept..];
    let _ = zip_directory::check(prefix, tail, archive.len() as u64);
});
