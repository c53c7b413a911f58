//! Queue message bodies: any string must parse to a notification or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &str| {
    let _ = docworker_shared::Notification::parse(body);
});
