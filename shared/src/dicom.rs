//! The header of a DICOM Part 10 file: read from any `Read` with dicom-object, stopping before the
//! pixels, and turned into promoted columns plus the DICOM JSON model (PS3.18 Annex F).
//!
//! The reader is the object's byte stream itself, so the header costs no second GET and no
//! buffering of the file. Nothing here ever formats a DICOM value into an error or a log line:
//! patient names, birth dates and IDs are protected health information.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

use chrono::NaiveDate;
use dicom_core::Tag;
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_object::FileMetaTable;
use dicom_parser::dataset::DataSetReader;
use dicom_parser::dataset::read::{DataSetReaderOptions, ValueReadStrategy};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::Rejection;

mod json;

/// Binary values larger than this are left out of the JSON: they are bulk data (waveforms,
/// overlays, icons), not metadata, and would bloat every row.
pub const MAX_INLINE_BINARY: usize = 1024;

/// The first tag the reader stops at: group 7FE0 is all pixels (its group length, float and
/// double-float pixel data sort before Pixel Data itself), so the header ends where it begins.
const FIRST_PIXEL_TAG: Tag = Tag(0x7FE0, 0x0000);

/// What the worker keeps of a DICOM header.
#[derive(Clone, PartialEq)]
pub struct DicomHeader {
    pub study_instance_uid: String,
    pub sop_instance_uid: String,
    pub series_instance_uid: Option<String>,
    pub sop_class_uid: Option<String>,
    pub modality: Option<String>,
    pub patient_id: Option<String>,
    pub study_date: Option<NaiveDate>,
    pub transfer_syntax_uid: String,
    /// The data set (without the file meta group, which describes the file rather than the
    /// study) as DICOM JSON text, with Pixel Data and large binary values left out. Kept as text
    /// because it goes to a `jsonb` column as it is; see [`json`] for why it is never a
    /// `serde_json::Value`.
    pub json: String,
}

/// Deliberately opaque: a header holds PHI, and a stray `{:?}` must not put it in a log.
impl fmt::Debug for DicomHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DicomHeader")
            .field("transfer_syntax_uid", &self.transfer_syntax_uid)
            .finish_non_exhaustive()
    }
}

/// Sequences nested deeper than this are refused. Real structured reports nest a few levels;
/// a hostile file can nest thousands, and the header is built without recursion so that depth
/// is an error, never a stack overflow.
pub const MAX_SEQUENCE_DEPTH: usize = 64;

/// Reads the header of a Part 10 file whose first byte is the start of the 128-byte preamble.
///
/// The preamble is read unconditionally: the caller has already seen `DICM` at offset 128, and
/// dicom-object's automatic detection only looks at the first buffer fill, which on a streaming
/// reader may be shorter than 132 bytes.
///
/// The data set is read as dicom-parser's flat token stream and written as JSON as it arrives,
/// with an explicit stack (dicom-object's own builder recurses once per nesting level). At most
/// `limit` bytes are read, and no element may declare more than `limit` bytes, so memory stays
/// bounded whatever the file claims.
pub fn read_header<R: Read>(reader: R, limit: u64) -> Result<DicomHeader, Rejection> {
    let (meta, written) = parse(reader, limit)?;
    header_of(&meta, written)
}

/// Reads the header from an object's first bytes, when they hold all of it. Most headers are a
/// few KiB and end where Pixel Data begins, well inside the prefix the worker keeps to recognise
/// the content, so the header is read there and then instead of streaming the object to a
/// parser on another thread. `whole_object` says the prefix is the entire object.
///
/// `None` when the prefix may end before the header does: the parse failed (perhaps only for
/// want of the bytes after the prefix), or the data set ended with the prefix without reaching
/// the pixels. The caller then reads the header from the stream with [`read_header`].
pub fn read_header_from_prefix(
    prefix: &[u8],
    whole_object: bool,
    limit: u64,
) -> Option<Result<DicomHeader, Rejection>> {
    match parse(prefix, limit) {
        parsed if whole_object => {
            Some(parsed.and_then(|(meta, written)| header_of(&meta, written)))
        }
        Ok((meta, written)) if written.reached_pixels => Some(header_of(&meta, written)),
        _ => None,
    }
}

fn parse<R: Read>(reader: R, limit: u64) -> Result<(FileMetaTable, json::Written), Rejection> {
    let exhausted = Rc::new(Cell::new(false));
    let budget = Budget {
        inner: reader,
        left: limit,
        exhausted: exhausted.clone(),
    };
    let too_large = Rejection::DicomHeaderTooLarge { limit };
    match read_parts(budget, limit) {
        Err(_) if exhausted.get() => Err(too_large),
        Err(Unreadable::TooLarge) => Err(too_large),
        Err(Unreadable::Because(reason)) => Err(Rejection::DicomUnreadable(reason)),
        Ok(parts) => Ok(parts),
    }
}

enum Unreadable {
    TooLarge,
    /// Only top-level messages: an error's sources can quote the offending value.
    Because(String),
}

fn because(context: &str, error: impl fmt::Display) -> Unreadable {
    Unreadable::Because(format!("{context}: {error}"))
}

fn read_parts<R: Read>(
    source: R,
    limit: u64,
) -> Result<(FileMetaTable, json::Written), Unreadable> {
    let mut source = BufReader::new(source);
    let mut preamble = [0u8; 128];
    source
        .read_exact(&mut preamble)
        .map_err(|e| because("file ends inside the preamble", e))?;
    let meta = read_meta(&mut source)?;
    let uid = meta
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_owned();
    let ts = TransferSyntaxRegistry
        .get(&uid)
        .ok_or_else(|| Unreadable::Because(format!("unknown transfer syntax {uid}")))?;
    let source: Box<dyn Read + '_> = match ts.codec() {
        Codec::Dataset(Some(adapter)) => adapter.adapt_reader(Box::new(source)),
        Codec::Dataset(None) => {
            return Err(Unreadable::Because(format!(
                "unsupported transfer syntax {uid}"
            )));
        }
        _ => Box::new(source),
    };
    // Raw values: text is decoded, and numbers put in order, by the writer, which knows the
    // character set and the byte order and does both without intermediate values.
    let options = DataSetReaderOptions::default().value_read(ValueReadStrategy::Raw);
    let tokens = DataSetReader::new_with_ts_options(source, ts, options)
        .map_err(|e| because("Could not create data set parser", e))?;
    Ok((meta, json::write(tokens, ts.endianness(), limit)?))
}

/// A file meta group is a few hundred bytes; one claiming more is not a DICOM file.
const MAX_META_BYTES: usize = 64 * 1024;

/// Reads the file meta group after checking every length in it against the bytes it has: the
/// parser allocates what an element declares before reading it, and a hostile length must not
/// become a multi-gigabyte allocation.
fn read_meta<R: Read>(source: &mut R) -> Result<FileMetaTable, Unreadable> {
    let mut head = [0u8; 16];
    source
        .read_exact(&mut head)
        .map_err(|e| because("file ends inside the meta group", e))?;
    if head[..4] != *b"DICM" {
        return Err(Unreadable::Because(
            "no DICM magic after the preamble".into(),
        ));
    }
    if head[4..10] != [0x02, 0x00, 0x00, 0x00, b'U', b'L'] {
        return Err(Unreadable::Because(
            "Could not parse meta group data set: it does not start with its group length (0002,0000)".into(),
        ));
    }
    let group_len = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as usize;
    if group_len > MAX_META_BYTES {
        return Err(Unreadable::Because(format!(
            "Could not parse meta group data set: it claims {group_len} bytes"
        )));
    }
    let mut whole = head.to_vec();
    whole.resize(16 + group_len, 0);
    source
        .read_exact(&mut whole[16..])
        .map_err(|e| because("file ends inside the meta group", e))?;
    check_meta_lengths(&whole[16..])?;
    FileMetaTable::from_reader(whole.as_slice())
        .map_err(|e| because("Could not parse meta group data set", e))
}

/// Walks the meta group's elements (always explicit VR little endian) and refuses any whose
/// length runs past the group.
fn check_meta_lengths(group: &[u8]) -> Result<(), Unreadable> {
    let mut at = 0;
    while at < group.len() {
        let Some(element) = group.get(at..at + 8) else {
            return Err(Unreadable::Because(
                "meta group ends inside an element header".into(),
            ));
        };
        let long = matches!(
            &element[4..6],
            b"OB"
                | b"OD"
                | b"OF"
                | b"OL"
                | b"OV"
                | b"OW"
                | b"SQ"
                | b"SV"
                | b"UC"
                | b"UN"
                | b"UR"
                | b"UT"
                | b"UV"
        );
        let (header, len) = if long {
            let Some(bytes) = group.get(at + 8..at + 12) else {
                return Err(Unreadable::Because(
                    "meta group ends inside an element header".into(),
                ));
            };
            (
                12,
                u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize,
            )
        } else {
            (8, u16::from_le_bytes([element[6], element[7]]) as usize)
        };
        if len > group.len() - at - header {
            let tag = u16::from_le_bytes([element[2], element[3]]);
            return Err(Unreadable::Because(format!(
                "meta group element (0002,{tag:04X}) runs past the group"
            )));
        }
        at += header + len;
    }
    Ok(())
}

fn header_of(meta: &FileMetaTable, written: json::Written) -> Result<DicomHeader, Rejection> {
    let text = |value: Option<String>| -> Option<String> {
        let value = clean(&value?);
        (!value.is_empty()).then_some(value)
    };
    let promoted = written.promoted;
    let study_instance_uid =
        text(promoted.study_instance_uid).ok_or(Rejection::DicomMissing("Study Instance UID"))?;
    let sop_instance_uid =
        text(promoted.sop_instance_uid).ok_or(Rejection::DicomMissing("SOP Instance UID"))?;
    Ok(DicomHeader {
        study_instance_uid,
        sop_instance_uid,
        series_instance_uid: text(promoted.series_instance_uid),
        sop_class_uid: text(promoted.sop_class_uid)
            .or_else(|| Some(clean(meta.media_storage_sop_class_uid())))
            .filter(|uid| !uid.is_empty()),
        modality: text(promoted.modality),
        patient_id: text(promoted.patient_id),
        study_date: text(promoted.study_date).and_then(|date| parse_da(&date)),
        transfer_syntax_uid: clean(meta.transfer_syntax()),
        json: written.json,
    })
}

/// DICOM pads values with spaces or NULs; PostgreSQL refuses NUL in text and in JSON.
fn clean(value: &str) -> String {
    value
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .replace('\0', "")
}

/// A DA value: `YYYYMMDD`, or the pre-1993 `YYYY.MM.DD`. Anything else is not a date we can
/// promote; the raw value stays in the JSON.
fn parse_da(value: &str) -> Option<NaiveDate> {
    let digits: String = value.chars().filter(|c| *c != '.').collect();
    if digits.len() != 8 {
        return None;
    }
    NaiveDate::parse_from_str(&digits, "%Y%m%d").ok()
}

/// A reader that stops handing out bytes after a budget, and remembers that it had to.
struct Budget<R> {
    inner: R,
    left: u64,
    exhausted: Rc<Cell<bool>>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            self.exhausted.set(true);
            return Err(io::Error::other("DICOM header budget exhausted"));
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use dicom_core::{PrimitiveValue, VR};
    use dicom_dictionary_std::tags;

    use super::*;

    #[test]
    fn da_values_parse_in_both_forms() {
        assert_eq!(parse_da("20240131"), NaiveDate::from_ymd_opt(2024, 1, 31));
        assert_eq!(parse_da("1992.12.01"), NaiveDate::from_ymd_opt(1992, 12, 1));
        assert_eq!(parse_da("20241331"), None);
        assert_eq!(parse_da("2024"), None);
    }

    #[test]
    fn debug_output_carries_no_values() {
        let header = DicomHeader {
            study_instance_uid: "1.2.3".into(),
            sop_instance_uid: "1.2.3.4".into(),
            series_instance_uid: None,
            sop_class_uid: None,
            modality: None,
            patient_id: Some("PAT-SECRET-7".into()),
            study_date: None,
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            json: r#"{"00100010":{"vr":"PN","Value":[{"Alphabetic":"Doe^Jane"}]}}"#.into(),
        };
        let printed = format!("{header:?}");
        assert!(
            !printed.contains("PAT-SECRET-7") && !printed.contains("Doe"),
            "{printed}"
        );
    }

    #[test]
    fn random_bytes_after_the_magic_are_unreadable_not_a_panic() {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
        assert!(matches!(
            read_header(bytes.as_slice(), 1 << 20),
            Err(Rejection::DicomUnreadable(_))
        ));
    }

    use crate::fixtures::{SampleDicom, TRANSFER_SYNTAXES};

    /// Hands out a few bytes per call, as a network stream does.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn reads_every_supported_transfer_syntax_from_a_trickling_stream() {
        for (ts, _) in TRANSFER_SYNTAXES {
            let bytes = SampleDicom::with_transfer_syntax(ts).to_bytes();
            let header = read_header(Trickle(&bytes), 1 << 20)
                .unwrap_or_else(|e| panic!("transfer syntax {ts}: {e}"));
            assert_eq!(header.transfer_syntax_uid, *ts);
            assert_eq!(header.study_instance_uid, "1.2.826.0.1.3680043.8.498.1");
            assert_eq!(header.sop_instance_uid, "1.2.826.0.1.3680043.8.498.1.1.1");
            assert_eq!(
                header.series_instance_uid.as_deref(),
                Some("1.2.826.0.1.3680043.8.498.1.1")
            );
            assert_eq!(
                header.sop_class_uid.as_deref(),
                Some("1.2.840.10008.5.1.4.1.1.2")
            );
            assert_eq!(header.modality.as_deref(), Some("CT"));
            assert_eq!(header.patient_id.as_deref(), Some("PAT-0001"));
            assert_eq!(header.study_date, NaiveDate::from_ymd_opt(2026, 1, 15));
            let json: serde_json::Value = serde_json::from_str(&header.json).expect("JSON");
            assert_eq!(json["0020000D"]["vr"], "UI", "{ts}");
            assert_eq!(
                json["0020000D"]["Value"][0], "1.2.826.0.1.3680043.8.498.1",
                "{ts}"
            );
            assert_eq!(
                json["00100010"]["Value"][0]["Alphabetic"], "Doe^Jane",
                "{ts}"
            );
            assert_eq!(json["00280010"]["Value"][0], 64, "{ts}");
            assert_eq!(
                json["00081140"]["Value"][0]["00081155"]["Value"][0], "1.2.826.0.1.3680043.8.498.9",
                "{ts}: sequences keep their items"
            );
            assert!(json.get("7FE00010").is_none(), "{ts}: no pixel data");
            assert!(
                json.get("00091001").is_none(),
                "{ts}: no binary above 1 KiB"
            );
            assert_eq!(json["00091002"]["InlineBinary"], "AQIDBA==", "{ts}");
            assert!(
                json.get("00020010").is_none(),
                "{ts}: the meta group is not the data set"
            );
        }
    }

    #[test]
    fn standard_attributes_stored_as_un_are_read_with_their_dictionary_vr() {
        let bytes = SampleDicom::default().to_bytes();
        let uid = b"1.2.826.0.1.3680043.8.498.1\0";
        let mut object = dicom_object::OpenFileOptions::new()
            .from_reader(&bytes[128..])
            .expect("sample parses");
        object.put(dicom_core::DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UN,
            PrimitiveValue::from(uid.to_vec()),
        ));
        object.put(dicom_core::DataElement::new(
            tags::ROWS,
            VR::UN,
            PrimitiveValue::from(vec![0x40u8, 0x00]),
        ));
        let mut rewritten = Vec::new();
        object.write_all(&mut rewritten).expect("write");
        let header = read_header(rewritten.as_slice(), 1 << 20).expect("reads");
        assert_eq!(header.study_instance_uid, "1.2.826.0.1.3680043.8.498.1");
        let json: serde_json::Value = serde_json::from_str(&header.json).expect("JSON");
        assert_eq!(json["0020000D"]["vr"], "UI");
        assert_eq!(json["00280010"]["vr"], "US");
        assert_eq!(json["00280010"]["Value"][0], 64);
    }

    #[test]
    fn stops_before_the_pixels() {
        let sample = SampleDicom {
            pixel_bytes: 8 << 20,
            ..SampleDicom::default()
        };
        let bytes = sample.to_bytes();
        assert!(
            read_header(bytes.as_slice(), 256 << 10).is_ok(),
            "an 8 MiB image needs only its header"
        );
    }

    /// Every cut of the file: the prefix read gives the full read's header once the prefix holds
    /// the Pixel Data element's header, and leaves it to the stream before that, including at the
    /// cut just before Pixel Data, where the data set ends cleanly but the file goes on.
    #[test]
    fn a_prefix_gives_the_header_only_when_it_holds_all_of_it() {
        let bytes = SampleDicom::default().to_bytes();
        let full = read_header(bytes.as_slice(), 1 << 20).expect("reads");
        let pixels = bytes
            .windows(4)
            .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00])
            .expect("a Pixel Data tag");
        for cut in 0..bytes.len() {
            let read = read_header_from_prefix(&bytes[..cut], false, 1 << 20);
            // The element header is 12 bytes in explicit VR little endian (OW: 4-byte length).
            if cut >= pixels + 12 {
                assert_eq!(read, Some(Ok(full.clone())), "cut at {cut}");
            } else {
                assert_eq!(read, None, "cut at {cut}");
            }
        }
        assert_eq!(
            read_header_from_prefix(&bytes, true, 1 << 20),
            Some(Ok(full.clone()))
        );
        let no_pixels = &bytes[..pixels];
        assert_eq!(
            read_header_from_prefix(no_pixels, true, 1 << 20),
            Some(Ok(full)),
            "a whole file without pixels is complete at its end"
        );
    }

    #[test]
    fn a_whole_object_in_the_prefix_gets_its_verdict_there() {
        let bytes = SampleDicom::default().to_bytes();
        let cut = &bytes[..400];
        assert!(matches!(
            read_header_from_prefix(cut, true, 1 << 20),
            Some(Err(Rejection::DicomUnreadable(_)))
        ));
        assert_eq!(
            read_header_from_prefix(&bytes, true, 300),
            Some(Err(Rejection::DicomHeaderTooLarge { limit: 300 }))
        );
    }

    #[test]
    fn a_header_past_the_budget_is_rejected_as_too_large() {
        let bytes = SampleDicom::default().to_bytes();
        assert_eq!(
            read_header(bytes.as_slice(), 300),
            Err(Rejection::DicomHeaderTooLarge { limit: 300 })
        );
    }

    #[test]
    fn missing_uids_are_named() {
        let no_study = SampleDicom {
            study_instance_uid: None,
            ..SampleDicom::default()
        };
        assert_eq!(
            read_header(no_study.to_bytes().as_slice(), 1 << 20),
            Err(Rejection::DicomMissing("Study Instance UID"))
        );
        let no_sop = SampleDicom {
            sop_instance_uid: None,
            ..SampleDicom::default()
        };
        assert_eq!(
            read_header(no_sop.to_bytes().as_slice(), 1 << 20),
            Err(Rejection::DicomMissing("SOP Instance UID"))
        );
    }

    #[test]
    fn truncated_files_are_unreadable_without_quoting_values() {
        let sample = SampleDicom {
            patient_name: "Secretname^Patient".into(),
            ..SampleDicom::default()
        };
        let bytes = sample.to_bytes();
        let name_at = bytes
            .windows(10)
            .position(|w| w == b"Secretname")
            .expect("name is in the file");
        for cut in [140, 200, name_at + 4] {
            match read_header(&bytes[..cut], 1 << 20) {
                Err(Rejection::DicomUnreadable(message)) => {
                    assert!(!message.contains("Secret"), "{message}")
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }
}

#[cfg(test)]
mod hostile {
    use super::*;
    use crate::fixtures::SampleDicom;

    /// The meta group of a sample file (Explicit VR Little Endian), up to the data set.
    fn meta_prefix() -> Vec<u8> {
        let bytes = SampleDicom::default().to_bytes();
        let group_length = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
        bytes[..144 + group_length].to_vec()
    }

    #[test]
    fn an_element_claiming_gigabytes_is_rejected_without_allocating_them() {
        let mut bytes = meta_prefix();
        bytes.extend_from_slice(&[0x09, 0x00, 0x10, 0x10, b'U', b'N', 0, 0]);
        bytes.extend_from_slice(&0xF000_0000u32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 64]);
        let result = read_header(bytes.as_slice(), 1 << 20);
        assert!(
            matches!(
                result,
                Err(Rejection::DicomUnreadable(_) | Rejection::DicomHeaderTooLarge { .. })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn a_meta_element_claiming_more_than_the_group_is_refused_before_allocating() {
        let mut bytes = SampleDicom::default().to_bytes();
        // (0002,0001) File Meta Information Version, OB: its 4-byte length follows the VR.
        let at = bytes
            .windows(6)
            .position(|w| w == [0x02, 0x00, 0x01, 0x00, b'O', b'B'])
            .unwrap();
        bytes[at + 8..at + 12].copy_from_slice(&0x8B00_0000u32.to_le_bytes());
        assert_eq!(
            read_header(bytes.as_slice(), 1 << 20),
            Err(Rejection::DicomUnreadable(
                "meta group element (0002,0001) runs past the group".into()
            ))
        );
    }

    #[test]
    fn deeply_nested_sequences_are_rejected_not_a_stack_overflow() {
        let mut bytes = meta_prefix();
        for _ in 0..100_000 {
            // (0040,A730) Content Sequence, SQ, undefined length; then an item of undefined length.
            bytes.extend_from_slice(&[
                0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ]);
            bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let result = read_header(bytes.as_slice(), 64 << 20);
        assert!(result.is_err(), "{result:?}");
    }
}
