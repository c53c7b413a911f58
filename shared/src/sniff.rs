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

    #[test]
    fn dicom_needs_the_magic_at_offset_128() {
        let mut shifted = vec![0u8; 127];
        shifted.extend_from_slice(b"DICM");
        assert!(!is_dicom(&shifted));
        assert!(!is_dicom(b"DICM"));
        assert!(is_dicom(&dicom_prefix()));
    }
}
