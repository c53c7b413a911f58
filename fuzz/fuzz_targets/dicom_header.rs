//! DICOM header extraction on arbitrary bytes, with a small header budget. A header that is
//! accepted must carry DICOM JSON that PostgreSQL will take: valid JSON, with no NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(header) = docworker_shared::dicom::read_header(bytes, 1 << 20) {
        serde_json::from_str::<serde_json::de::IgnoredAny>(&header.json).expect("valid JSON");
        assert!(!header.json.contains("\\u0000"), "no NUL");
    }
});
