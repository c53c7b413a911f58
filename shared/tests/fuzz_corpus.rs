//! Replays the fuzzers' corpora (`fuzz/corpus/<target>/`) through the same entry points as the
//! fuzz targets, so every input a fuzzer ever kept (including past crashes, once fixed) is
//! re-checked by `cargo test` on stable Rust, without a fuzzing run.

use std::path::PathBuf;

use docworker_shared::{Notification, Rejection, dicom, sniff, verify, zip_directory};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = std::fs::read(&path).expect("corpus file");
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no seeds", dir.display());
    files
}

#[test]
fn event_corpus_parses_or_errs() {
    let mut parsed = 0;
    for (_, bytes) in corpus("event") {
        if let Ok(body) = std::str::from_utf8(&bytes) {
            parsed += usize::from(Notification::parse(body).is_ok());
        }
    }
    assert!(parsed > 0, "the seeds include valid events");
}

#[test]
fn sniff_corpus_classifies_or_not() {
    let mut recognised = 0;
    for (_, bytes) in corpus("sniff") {
        recognised += usize::from(sniff::sniff(&bytes).is_some());
        let _ = sniff::preamble(&bytes);
        let _ = verify::check_archive(&bytes);
    }
    assert!(recognised > 0, "the seeds include known types");
}

#[test]
fn preamble_seeds_are_refused_as_two_formats() {
    let foreign = corpus("sniff")
        .into_iter()
        .filter(|(name, _)| name.to_string_lossy().contains("preamble-"))
        .inspect(|(name, bytes)| {
            assert!(
                matches!(sniff::preamble(bytes), sniff::Preamble::Foreign(_)),
                "{}",
                name.display()
            );
        })
        .count();
    assert!(foreign > 0, "the seeds include hostile preambles");
}

/// The seeds written by Python's zipfile (`docx-*`) pass, the bombs built from them (`bomb-*`)
/// are refused, and a tail kept too short (`tail-short`) is refused as such.
#[test]
fn zip_directory_corpus_passes_or_rejects() {
    let mut passed = 0;
    for (name, input) in corpus("zip_directory") {
        let Some((&cut, archive)) = input.split_first() else {
            continue;
        };
        let prefix = &archive[..archive.len().min(sniff::SNIFF_LEN)];
        let kept = (verify::ZIP_TAIL_LEN >> (cut % 16)).min(archive.len());
        let tail = &archive[archive.len() - kept..];
        let verdict = zip_directory::check(prefix, tail, archive.len() as u64);
        let name = name.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("docx-") {
            assert_eq!(verdict, Ok(()), "{name}");
        } else if name.starts_with("bomb-") {
            assert!(
                matches!(verdict, Err(Rejection::ZipBomb { .. })),
                "{name}: {verdict:?}"
            );
        } else if name.starts_with("tail-short") {
            assert!(
                matches!(verdict, Err(Rejection::ArchiveDirectoryTooLarge { .. })),
                "{name}: {verdict:?}"
            );
        }
        passed += usize::from(verdict.is_ok());
    }
    assert!(passed > 0, "the seeds include sound archives");
}

#[test]
fn dicom_header_corpus_reads_or_rejects() {
    let mut read = 0;
    for (name, bytes) in corpus("dicom_header") {
        if let Ok(header) = dicom::read_header(bytes.as_slice(), 1 << 20) {
            read += 1;
            serde_json::from_str::<serde_json::Value>(&header.json).unwrap_or_else(|e| {
                panic!("{}: the DICOM JSON does not parse: {e}", name.display())
            });
            assert!(
                !header.json.contains("\\u0000"),
                "{}: a NUL reached the JSON",
                name.display()
            );
        }
    }
    assert!(read > 0, "the seeds include valid headers");
}
