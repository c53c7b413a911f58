//! What an object really is, from its first bytes.
//!
//! Binary formats are recognised by `infer`'s signatures; OOXML (docx/xlsx/pptx) needs the zip's
//! first entries, which lie within the first few KiB. Plain text has no signature, so it is
//! recognised by elimination: valid UTF-8 (optionally with a BOM) with no control characters but
//! tab, line feed, form feed and carriage return.

use crate::category::{DICOM, DOCX, GIF, JPEG, PDF, PNG, PPTX, TEXT, TIFF, WEBP, XLSX};

/// How many leading bytes the sniffer needs to see. `infer` scans up to three zip local headers
/// 6000 bytes apart to tell OOXML kinds apart; 32 KiB covers that with room to spare.
pub const SNIFF_LEN: usize = 32 * 1024;

/// The media type of the content, as one of the canonical names in `category`, or whatever `infer`
/// calls a type docworker does not accept (so that a rejection can say what the content was).
/// `None` when nothing is recognised.
///
/// `prefix` holds the first `SNIFF_LEN` bytes, or the whole object when it is shorter.
pub fn sniff(prefix: &[u8]) -> Option<&'static str> {
    if is_dicom(prefix) {
        return Some(DICOM);
    }
    if let Some(kind) = infer::get(prefix) {
        return Some(canonical(kind.mime_type()));
    }
    is_text(prefix, prefix.len() < SNIFF_LEN).then_some(TEXT)
}

/// DICOM Part 10: a 128-byte preamble, then `DICM`.
pub fn is_dicom(prefix: &[u8]) -> bool {
    prefix.get(128..132) == Some(b"DICM")
}

/// Length of the DICOM Part 10 preamble.
pub const PREAMBLE_LEN: usize = 128;

/// What a DICOM file's preamble says to readers of other formats. PS3.10 §7.1 leaves the 128
/// bytes to the application, which is what lets a file be DICOM and an executable, a web page
/// or a PDF at once (CVE-2019-11687): whoever opens it by its other signature runs or renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preamble {
    /// What PS3.10 recommends when the preamble is not used.
    Zeros,
    /// A TIFF header: PS3.10 §7.5 allows a file to be DICOM and TIFF at once, and readers that
    /// take it as TIFF see only an image.
    Tiff,
    /// Something else no reader recognises: vendors write their names, versions or padding
    /// here, so this is accepted (refusing it would refuse ordinary scanners' files).
    Unrecognised,
    /// Another format's signature, named by media type: the file is also that format.
    Foreign(&'static str),
}

/// Markup a browser or script host finds anywhere in the first bytes (older browsers sniffed
/// past leading binary), compared without regard to ASCII case.
const MARKUP: &[(&[u8], &str)] = &[
    (b"<html", "text/html"),
    (b"<head", "text/html"),
    (b"<body", "text/html"),
    (b"<script", "text/html"),
    (b"<iframe", "text/html"),
    (b"<!doctype", "text/html"),
    (b"<svg", "image/svg+xml"),
    (b"<?xml", "text/xml"),
    (b"<?php", "application/x-php"),
];

/// Judges the preamble of a DICOM file: `prefix` starts at the file's first byte.
pub fn preamble(prefix: &[u8]) -> Preamble {
    let Some(preamble) = prefix.get(..PREAMBLE_LEN) else {
        return Preamble::Unrecognised;
    };
    if preamble.iter().all(|&b| b == 0) {
        return Preamble::Zeros;
    }
    if preamble.starts_with(b"II*\0") || preamble.starts_with(b"MM\0*") {
        return Preamble::Tiff;
    }
    // `infer` knows executables (MZ, ELF, Mach-O), archives (zip, rar, 7z, gzip), PDF (anywhere
    // in the first 1024 bytes, as Acrobat looks), scripts (`#!`), markup at the start and
    // images; the markup scan adds what it finds only at the very start.
    if let Some(kind) = infer::get(preamble) {
        return Preamble::Foreign(canonical(kind.mime_type()));
    }
    MARKUP
        .iter()
        .find(|(tag, _)| {
            preamble
                .windows(tag.len())
                .any(|window| window.eq_ignore_ascii_case(tag))
        })
        .map_or(Preamble::Unrecognised, |(_, mime)| Preamble::Foreign(mime))
}

fn canonical(mime: &'static str) -> &'static str {
    match mime {
        "application/pdf" => PDF,
        "image/jpeg" => JPEG,
        "image/png" => PNG,
        "image/tiff" => TIFF,
        "image/gif" => GIF,
        "image/webp" => WEBP,
        "application/dicom" => DICOM,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => DOCX,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => XLSX,
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => PPTX,
        other => other,
    }
}

/// `complete` says the prefix is the whole object; otherwise the prefix may end inside a
/// multi-byte character, which is not a reason to call the content binary.
fn is_text(prefix: &[u8], complete: bool) -> bool {
    let bytes = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    if bytes.is_empty() {
        return false;
    }
    let valid = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) if !complete && e.error_len().is_none() => {
            // Only an incomplete sequence at the very end: the valid part is what we judge.
            // `valid_up_to` marks a char boundary, so this cannot fail.
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && !valid
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0C'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dicom_prefix() -> Vec<u8> {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM\x02\x00\x00\x00UL\x04\x00");
        bytes
    }

    #[test]
    fn recognises_each_supported_signature() {
        let cases: &[(&[u8], &str)] = &[
            (b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj", PDF),
            (b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01", JPEG),
            (b"\x89PNG\r\n\x1A\n\x00\x00\x00\rIHDR", PNG),
            (b"II*\x00\x08\x00\x00\x00\x0E\x00", TIFF),
            (b"MM\x00*\x00\x00\x00\x08\x00\x0E", TIFF),
            (b"GIF89a\x01\x00\x01\x00", GIF),
            (b"RIFF\x24\x00\x00\x00WEBPVP8 ", WEBP),
            (b"Dear colleague,\r\nplease see the attached.\n", TEXT),
            ("Überweisung: Dr. Müller\n".as_bytes(), TEXT),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                sniff(bytes),
                Some(*expected),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(sniff(&dicom_prefix()), Some(DICOM));
    }

    #[test]
    fn tells_office_documents_from_plain_zips() {
        // The entry order Word, Excel and PowerPoint write.
        let office = |dir: &str| {
            zip_with(&[
                "[Content_Types].xml",
                "_rels/.rels",
                &format!("{dir}/document.xml"),
                &format!("{dir}/_rels/x.rels"),
            ])
        };
        assert_eq!(sniff(&office("word")), Some(DOCX));
        assert_eq!(sniff(&office("xl")), Some(XLSX));
        assert_eq!(sniff(&office("ppt")), Some(PPTX));
        assert_eq!(
            sniff(&zip_with(&["notes.txt", "photo.jpg"])),
            Some("application/zip")
        );
    }

    /// A zip whose local headers name these entries, each with a little content.
    fn zip_with(names: &[&str]) -> Vec<u8> {
        names
            .iter()
            .flat_map(|name| crate::fixtures::zip_entry(name, 64, 64))
            .collect()
    }

    #[test]
    fn binary_noise_is_not_text() {
        assert_eq!(sniff(b"\x00\x01\x02\x03binary"), None);
        assert_eq!(
            sniff(b"abc\x1b[31mred"),
            None,
            "escape sequences are control characters"
        );
        assert_eq!(sniff(b"\xFF\xFE\xFD not utf-8"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\xEF\xBB\xBF"), None, "a BOM alone is no text");
    }

    #[test]
    fn text_cut_inside_a_character_is_still_text_unless_it_is_the_end() {
        let mut bytes = format!("a{}", "é".repeat((SNIFF_LEN - 2) / 2)).into_bytes();
        bytes.push(0xC3); // first half of another é: the prefix was cut mid-character
        assert_eq!(bytes.len(), SNIFF_LEN);
        assert_eq!(sniff(&bytes), Some(TEXT));
        assert_eq!(
            sniff(b"ab\xC3"),
            None,
            "a whole object may not end mid-character"
        );
    }

    /// A DICOM file whose preamble starts with `head`, padded with zeros.
    fn dicom_with_preamble(head: &[u8]) -> Vec<u8> {
        let mut bytes = head.to_vec();
        bytes.resize(PREAMBLE_LEN, 0);
        bytes.extend_from_slice(&dicom_prefix()[PREAMBLE_LEN..]);
        bytes
    }

    #[test]
    fn a_preamble_of_zeros_or_tiff_is_dicom_only() {
        assert_eq!(preamble(&dicom_prefix()), Preamble::Zeros);
        assert_eq!(
            preamble(&dicom_with_preamble(b"II*\0\x08\0\0\0")),
            Preamble::Tiff
        );
        assert_eq!(
            preamble(&dicom_with_preamble(b"MM\0*\0\0\0\x08")),
            Preamble::Tiff
        );
    }

    #[test]
    fn vendor_text_in_the_preamble_is_accepted() {
        for vendor in [
            &b"Philips Medical Systems DICOM File"[..],
            b"SIEMENS MED SP 1.0\0\0\x01",
            &[0xFF; PREAMBLE_LEN],
            b"written by a <vendor> tool", // a `<` that opens no markup
        ] {
            assert_eq!(
                preamble(&dicom_with_preamble(vendor)),
                Preamble::Unrecognised,
                "{:?}",
                String::from_utf8_lossy(vendor)
            );
        }
    }

    #[test]
    fn a_preamble_with_another_formats_signature_is_foreign() {
        let mut elf = b"\x7FELF\x02\x01\x01\0".to_vec();
        elf.resize(64, 1);
        let cases: &[(&[u8], &str)] = &[
            (
                b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF",
                "application/vnd.microsoft.portable-executable",
            ),
            (&elf, "application/x-executable"),
            (b"\xCF\xFA\xED\xFE\x07\0\0\x01", "application/x-mach-binary"),
            (b"%PDF-1.7\n1 0 obj", PDF),
            (b"\0\0\0\0%PDF-1.4", PDF),
            (b"PK\x03\x04\x14\0\0\0\x08\0", "application/zip"),
            (b"#!/bin/sh\nrm -rf ~\n", "text/x-shellscript"),
            (b"<!DOCTYPE html><html>", "text/html"),
            (b"\0\0\0\0<ScRiPt>alert(1)</script>", "text/html"),
            (b"\x01\x02<svg onload=alert(1)>", "image/svg+xml"),
            (b"\x89PNG\r\n\x1A\n\0\0\0\rIHDR", PNG),
        ];
        for (head, signature) in cases {
            assert_eq!(
                preamble(&dicom_with_preamble(head)),
                Preamble::Foreign(signature),
                "{:?}",
                String::from_utf8_lossy(head)
            );
            assert_eq!(
                sniff(&dicom_with_preamble(head)),
                Some(DICOM),
                "still DICOM by its magic"
            );
        }
    }

    #[test]
    fn dicom_needs_the_magic_at_offset_128() {
        let mut shifted = vec![0u8; 127];
        shifted.extend_from_slice(b"DICM");
        assert!(!is_dicom(&shifted));
        assert!(!is_dicom(b"DICM"));
        assert!(is_dicom(&dicom_prefix()));
    }
}
