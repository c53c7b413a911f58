//! The header of a DICOM Part 10 file: read from any `Read` with dicom-object, stopping before the
//! pixels, and turned into promoted columns plus the DICOM JSON model (PS3.18 Annex F).
//!
//! The reader is the object's byte stream itself, so the header costs no second GET and no
//! buffering of the file. Nothing here ever formats a DICOM value into an error or a log line:
//! patient names, birth dates and IDs are protected health information.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufReader, Read};

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

/// The share of the budget the DICOM JSON may take. Writing the row holds the JSON three times
/// (the header's text, sqlx's argument buffer and the connection's write buffer), so a quarter
/// keeps the write inside the same per-object budget as the parse. Past it the file is rejected
/// with [`Rejection::DicomJsonTooLarge`], whatever budget is left.
pub const fn max_json_bytes(limit: u64) -> u64 {
    limit / 4
}

/// Reads the header of a Part 10 file whose first byte is the start of the 128-byte preamble.
///
/// The preamble is read unconditionally: the caller has already seen `DICM` at offset 128, and
/// dicom-object's automatic detection only looks at the first buffer fill, which on a streaming
/// reader may be shorter than 132 bytes.
///
/// The data set is read as dicom-parser's flat token stream and written as JSON as it arrives,
/// with an explicit stack (dicom-object's own builder recurses once per nesting level).
///
/// `limit` is one budget for everything the read allocates: the meta group, every byte of the
/// data set as the parser sees it (after inflation, for the deflated transfer syntax), each text
/// value decoded and the slot it takes in its element's list, and the JSON's capacity. Each is
/// charged before or as it is allocated and never refunded, so the sum of everything alive at
/// once stays below `limit` whatever the file claims; past it the file is rejected as
/// [`Rejection::DicomHeaderTooLarge`]. Values longer than their VR allows are refused on the way.
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
    let budget = Budget::new(limit);
    let too_large = Rejection::DicomHeaderTooLarge { limit };
    match read_parts(reader, &budget) {
        Err(_) if budget.exhausted.get() => Err(too_large),
        Err(Unreadable::TooLarge) => Err(too_large),
        Err(Unreadable::Because(reason)) => Err(Rejection::DicomUnreadable(reason)),
        Err(Unreadable::Refused(rejection)) => Err(rejection),
        Ok(parts) => Ok(parts),
    }
}

enum Unreadable {
    TooLarge,
    /// Only top-level messages: an error's sources can quote the offending value.
    Because(String),
    /// A rejection of its own kind (a value too long for its VR, JSON past its cap).
    Refused(Rejection),
}

fn because(context: &str, error: impl fmt::Display) -> Unreadable {
    Unreadable::Because(format!("{context}: {error}"))
}

fn read_parts<R: Read>(
    source: R,
    budget: &Budget,
) -> Result<(FileMetaTable, json::Written), Unreadable> {
    let mut source = BufReader::new(source);
    let mut preamble = [0u8; 128];
    source
        .read_exact(&mut preamble)
        .map_err(|e| because("file ends inside the preamble", e))?;
    let meta = read_meta(&mut source, budget)?;
    let uid = meta
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_owned();
    // Quoted below when unknown, so checked first: a UID is digits and dots, never PHI, but the
    // field could hold anything.
    if !is_uid(&uid) {
        return Err(Unreadable::Refused(not_a_uid("Transfer Syntax UID")));
    }
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
    // After the adapter: a deflated data set is charged as it inflates, not as it arrives.
    let source = Metered {
        inner: source,
        budget,
    };
    // Raw values: text is decoded, and numbers put in order, by the writer, which knows the
    // character set and the byte order and does both without intermediate values.
    let options = DataSetReaderOptions::default().value_read(ValueReadStrategy::Raw);
    let tokens = DataSetReader::new_with_ts_options(source, ts, options)
        .map_err(|e| because("Could not create data set parser", e))?;
    Ok((meta, json::write(tokens, ts.endianness(), budget)?))
}

/// A file meta group is a few hundred bytes; one claiming more is not a DICOM file.
const MAX_META_BYTES: usize = 64 * 1024;

/// Reads the file meta group after checking every length in it against the bytes it has: the
/// parser allocates what an element declares before reading it, and a hostile length must not
/// become a multi-gigabyte allocation.
fn read_meta<R: Read>(source: &mut R, budget: &Budget) -> Result<FileMetaTable, Unreadable> {
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
    budget.charge(16 + group_len as u64)?;
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

/// The promoted columns, each checked before it reaches the row: every value in the file already
/// fits its VR's length (see `json`), a UID must be one, and a single-valued attribute must hold
/// one value. A file breaking either rule is rejected with the attribute's name, never its value:
/// an index keyed on a malformed UID or a patient ID made of several is worse than no row.
fn header_of(meta: &FileMetaTable, written: json::Written) -> Result<DicomHeader, Rejection> {
    let text = |value: Option<String>| -> Option<String> {
        let value = clean(&value?);
        (!value.is_empty()).then_some(value)
    };
    let uid = |value: Option<String>, attribute| match text(value) {
        Some(value) if !is_uid(&value) => Err(not_a_uid(attribute)),
        value => Ok(value),
    };
    let single = |value: Option<String>, attribute| match text(value) {
        Some(value) if value.contains('\\') => Err(Rejection::DicomInvalid {
            attribute,
            reason: "holds several values where its column holds one",
        }),
        value => Ok(value),
    };
    let promoted = written.promoted;
    let study_instance_uid = uid(promoted.study_instance_uid, "Study Instance UID")?
        .ok_or(Rejection::DicomMissing("Study Instance UID"))?;
    let sop_instance_uid = uid(promoted.sop_instance_uid, "SOP Instance UID")?
        .ok_or(Rejection::DicomMissing("SOP Instance UID"))?;
    let sop_class_uid = match uid(promoted.sop_class_uid, "SOP Class UID")? {
        Some(class) => Some(class),
        None => uid(
            Some(meta.media_storage_sop_class_uid().to_owned()),
            "Media Storage SOP Class UID",
        )?,
    };
    Ok(DicomHeader {
        study_instance_uid,
        sop_instance_uid,
        series_instance_uid: uid(promoted.series_instance_uid, "Series Instance UID")?,
        sop_class_uid,
        modality: single(promoted.modality, "Modality")?,
        patient_id: single(promoted.patient_id, "Patient ID")?,
        study_date: text(promoted.study_date).and_then(|date| parse_da(&date)),
        transfer_syntax_uid: clean(meta.transfer_syntax()),
        json: written.json,
    })
}

/// The longest UID PS3.5 9.1 allows.
pub const MAX_UID_CHARS: usize = 64;

/// A UID as PS3.5 9.1 defines it: at most 64 characters of digits and dots, with no empty
/// component. (Leading zeros in a component are also forbidden there, but real archives carry
/// them, and they harm no index.)
pub fn is_uid(value: &str) -> bool {
    value.len() <= MAX_UID_CHARS
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.split('.').all(|component| !component.is_empty())
}

fn not_a_uid(attribute: &'static str) -> Rejection {
    Rejection::DicomInvalid {
        attribute,
        reason: "is not a valid UID (at most 64 digits and dots, no empty component)",
    }
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

/// One object's allocation budget, shared by the reader that meters the data set and the writer
/// that decodes values and writes the JSON. Charges are never refunded: what was ever allocated
/// bounds what is alive at once, with no bookkeeping of frees to get wrong.
struct Budget {
    limit: u64,
    left: Cell<u64>,
    /// A charge was refused: whatever error the parser then reports, the verdict is "too large".
    exhausted: Cell<bool>,
}

impl Budget {
    fn new(limit: u64) -> Budget {
        Budget {
            limit,
            left: Cell::new(limit),
            exhausted: Cell::new(false),
        }
    }

    /// Whether `bytes` more would still fit, without charging them: for allocations a reader makes
    /// before the bytes it then charges arrive.
    fn affords(&self, bytes: u64) -> Result<(), Unreadable> {
        if bytes > self.left.get() {
            self.exhausted.set(true);
            return Err(Unreadable::TooLarge);
        }
        Ok(())
    }

    fn charge(&self, bytes: u64) -> Result<(), Unreadable> {
        self.affords(bytes)?;
        self.left.set(self.left.get() - bytes);
        Ok(())
    }
}

/// A reader that charges every byte it hands out, and stops when the budget is spent.
struct Metered<'b, R> {
    inner: R,
    budget: &'b Budget,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.budget.left.get();
        if left == 0 {
            self.budget.exhausted.set(true);
            return Err(io::Error::other("DICOM header budget exhausted"));
        }
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.budget.left.set(left - n as u64);
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

    use crate::fixtures::hostile;

    const MIB: u64 = 1 << 20;

    #[test]
    fn empty_values_are_charged_per_value_so_a_header_of_backslashes_is_too_large() {
        // 16 MiB of `\`: 16 Mi values of 24 bytes each, far past a 64 MiB budget that the bytes
        // alone (16 MiB) would fit.
        for bytes in [
            hostile::empty_values(16 << 20),
            hostile::empty_values_as_un(16 << 20),
        ] {
            assert_eq!(
                read_header(bytes.as_slice(), 64 * MIB),
                Err(Rejection::DicomHeaderTooLarge { limit: 64 * MIB })
            );
        }
        // A few empty values are an ordinary header.
        let few = hostile::empty_values(100);
        let header = read_header(few.as_slice(), MIB).expect("accepted");
        let json: serde_json::Value = serde_json::from_str(&header.json).expect("JSON");
        assert_eq!(json["00091010"]["vr"], "UC");
    }

    #[test]
    fn a_deflated_data_set_is_charged_as_it_inflates() {
        // 64 MiB of 2 KiB binaries (left out of the JSON) inflate from a few hundred KiB: the
        // bytes read after inflation spend the budget.
        let binaries = hostile::deflated(
            &hostile::element(0x0009, 0x1001, b"OB", &[0; 2048]),
            32 << 10,
        );
        assert!(
            binaries.len() < 512 << 10,
            "{} bytes deflated",
            binaries.len()
        );
        assert_eq!(
            read_header(binaries.as_slice(), 16 * MIB),
            Err(Rejection::DicomHeaderTooLarge { limit: 16 * MIB })
        );
        // 64 MiB of empty elements would be 192 MiB of JSON: the JSON's cap stops it first.
        let empties = hostile::empty_elements_deflated(8 << 20);
        assert!(
            empties.len() < 512 << 10,
            "{} bytes deflated",
            empties.len()
        );
        assert_eq!(
            read_header(empties.as_slice(), 16 * MIB),
            Err(Rejection::DicomJsonTooLarge { limit: 4 * MIB })
        );
        let small = hostile::empty_elements_deflated(4096);
        assert!(read_header(small.as_slice(), 16 * MIB).is_ok());
    }

    #[test]
    fn json_past_a_quarter_of_the_budget_is_refused_as_too_large_json() {
        // 3 MiB of control characters: 18 MiB of `\u0001` escapes, past the 16 MiB cap of a
        // 64 MiB budget, which the parse itself would fit.
        let bytes = hostile::escaped_text(3 << 20);
        let refused = read_header(bytes.as_slice(), 64 * MIB);
        assert_eq!(
            refused,
            Err(Rejection::DicomJsonTooLarge { limit: 16 * MIB })
        );
        assert_eq!(refused.unwrap_err().label(), "dicom_json_too_large");
        let fits = hostile::escaped_text(1 << 20);
        let header = read_header(fits.as_slice(), 64 * MIB).expect("6 MiB of JSON fits");
        assert!(header.json.capacity() as u64 <= 16 * MIB);
    }

    #[test]
    fn a_uid_longer_than_64_characters_is_refused_naming_only_the_element() {
        let rejection = read_header(hostile::long_study_uid(10_000).as_slice(), MIB).unwrap_err();
        assert_eq!(
            rejection,
            Rejection::DicomValueTooLong {
                element: "(0020,000D)".into(),
                vr: "UI",
                max: 64
            }
        );
        assert!(!rejection.to_string().contains("111"), "{rejection}");
        let longest = read_header(hostile::long_study_uid(64).as_slice(), MIB).expect("64 fits");
        assert_eq!(longest.study_instance_uid.len(), 64);
    }

    fn with_study_uid(uid: &str) -> Vec<u8> {
        SampleDicom {
            study_instance_uid: Some(uid.into()),
            ..SampleDicom::default()
        }
        .to_bytes()
    }

    #[test]
    fn a_study_uid_that_is_not_a_uid_is_rejected_without_quoting_it() {
        for bad in ["1.2.SECRET", "1..2", "1.2.", "1.2\\3.4", "-1.2"] {
            let rejection = read_header(with_study_uid(bad).as_slice(), MIB).unwrap_err();
            assert_eq!(
                rejection,
                Rejection::DicomInvalid {
                    attribute: "Study Instance UID",
                    reason: "is not a valid UID (at most 64 digits and dots, no empty component)",
                },
                "{bad}"
            );
            assert_eq!(rejection.label(), "dicom_invalid_value");
            assert!(!rejection.to_string().contains(bad), "{rejection}");
        }
    }

    #[test]
    fn every_promoted_uid_is_validated() {
        let bad_series = SampleDicom {
            series_instance_uid: "1.2.x".into(),
            ..SampleDicom::default()
        };
        assert!(matches!(
            read_header(bad_series.to_bytes().as_slice(), MIB),
            Err(Rejection::DicomInvalid {
                attribute: "Series Instance UID",
                ..
            })
        ));
        let bad_sop = SampleDicom {
            sop_instance_uid: Some("1.2.3.".into()),
            ..SampleDicom::default()
        };
        assert!(matches!(
            read_header(bad_sop.to_bytes().as_slice(), MIB),
            Err(Rejection::DicomInvalid {
                attribute: "SOP Instance UID",
                ..
            })
        ));
        let mut bad_ts = SampleDicom::default().to_bytes();
        let ts = bad_ts
            .windows(20)
            .position(|w| w == b"1.2.840.10008.1.2.1\0")
            .expect("the transfer syntax in the meta group");
        // An empty component: the meta parser takes any digits and dots, this reader does not.
        bad_ts[ts + 14] = b'.';
        let rejection = read_header(bad_ts.as_slice(), MIB).unwrap_err();
        assert!(
            matches!(
                rejection,
                Rejection::DicomInvalid {
                    attribute: "Transfer Syntax UID",
                    ..
                }
            ),
            "{rejection:?}"
        );
        assert!(is_uid("1.2.840.10008.1.2.1"));
        assert!(!is_uid(&"1.".repeat(33)));
        assert!(!is_uid(""));
    }

    #[test]
    fn a_single_valued_column_with_several_values_is_rejected() {
        let two_ids = SampleDicom {
            patient_id: "PAT-1\\PAT-2".into(),
            ..SampleDicom::default()
        };
        let rejection = read_header(two_ids.to_bytes().as_slice(), MIB).unwrap_err();
        assert_eq!(
            rejection,
            Rejection::DicomInvalid {
                attribute: "Patient ID",
                reason: "holds several values where its column holds one"
            }
        );
        assert!(!rejection.to_string().contains("PAT-"), "{rejection}");
        let two_modalities = SampleDicom {
            modality: "MR\\OT".into(),
            ..SampleDicom::default()
        };
        assert!(matches!(
            read_header(two_modalities.to_bytes().as_slice(), MIB),
            Err(Rejection::DicomInvalid {
                attribute: "Modality",
                ..
            })
        ));
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
