//! The data set as DICOM JSON (PS3.18 Annex F), written straight from dicom-parser's token stream.
//!
//! Building an in-memory object first and serializing it through `serde_json::Value` cost more
//! than parsing the file: every attribute became a map of maps, and dicom-json forces
//! `serde_json`'s ordered maps (hashed keys) on the whole program. Here each value is read as raw
//! bytes and written once into one string. Text is decoded with the file's character set, with
//! fast paths for ASCII, Latin-1 and UTF-8: the `encoding` crate behind dicom-encoding decodes a
//! character at a time, and a 33 KB Latin-1 report spent most of its header time there.
//!
//! The output is what pydicom's `to_json_dict` gives for the same file (checked on pydicom's own
//! test files by `tests/pydicom/compare.py`): DS and IS as numbers, values that are only padding
//! left out, PN split into its component groups, binary values above [`MAX_INLINE_BINARY`] left
//! out. Attributes are written in file order; a file that repeats a tag writes it twice, and
//! PostgreSQL's `jsonb` keeps the last, as a DICOM reader would.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{PrimitiveValue, Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_dictionary_std::tags;
use dicom_encoding::Endianness;
use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
use dicom_parser::dataset::DataToken;

use super::{
    Budget, FIRST_PIXEL_TAG, MAX_INLINE_BINARY, MAX_SEQUENCE_DEPTH, Unreadable, because,
    max_json_bytes,
};
use crate::Rejection;

/// The data set as DICOM JSON text, and the top-level values the worker promotes to columns.
pub(super) struct Written {
    pub json: String,
    pub promoted: Promoted,
    /// The tokens reached the pixels: nothing of the header can follow. Otherwise they simply
    /// ended, which is the end of the header only if it was the end of the file.
    pub reached_pixels: bool,
}

/// Top-level values of the attributes the `Document` row has columns for, each as its values
/// joined by `\`, like dicom-core's `to_str`.
#[derive(Default)]
pub(super) struct Promoted {
    pub study_instance_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub series_instance_uid: Option<String>,
    pub sop_class_uid: Option<String>,
    pub modality: Option<String>,
    pub patient_id: Option<String>,
    pub study_date: Option<String>,
}

impl Promoted {
    fn slot(&mut self, tag: Tag) -> Option<&mut Option<String>> {
        Some(match tag {
            tags::STUDY_INSTANCE_UID => &mut self.study_instance_uid,
            tags::SOP_INSTANCE_UID => &mut self.sop_instance_uid,
            tags::SERIES_INSTANCE_UID => &mut self.series_instance_uid,
            tags::SOP_CLASS_UID => &mut self.sop_class_uid,
            tags::MODALITY => &mut self.modality,
            tags::PATIENT_ID => &mut self.patient_id,
            tags::STUDY_DATE => &mut self.study_date,
            _ => return None,
        })
    }
}

/// One open level of the document being written.
enum Level {
    Sequence,
    Item,
    /// An encapsulated pixel sequence inside an item (an icon image): consumed, not written.
    Pixels,
}

/// Reads tokens up to the pixels and writes the data set, charging `budget` for what it
/// allocates. The parser's own reads are charged by the reader beneath it; what it allocates
/// before reading (a value of the length its header declares) is checked here, first.
pub(super) fn write<I>(
    tokens: I,
    endianness: Endianness,
    budget: &Budget,
) -> Result<Written, Unreadable>
where
    I: Iterator<Item = Result<DataToken, dicom_parser::dataset::read::Error>>,
{
    let mut out = Json::new(budget);
    let mut promoted = Promoted::default();
    let mut text = Charset::default();
    let big_endian = endianness == Endianness::Big;
    let mut signed_pixels = false;
    let mut stack: Vec<Level> = Vec::new();
    let mut header = None;
    let mut depth = 0;
    let mut reached_pixels = false;
    out.open('{');
    for token in tokens {
        out.check()?;
        let token = token.map_err(|e| because("Could not read data set token", e))?;
        match token {
            DataToken::ElementHeader(h) => {
                if stack.is_empty() && h.tag >= FIRST_PIXEL_TAG {
                    reached_pixels = true;
                    break;
                }
                // Refuse before the parser allocates what the header claims.
                budget.affords(u64::from(h.len.get().unwrap_or(0)))?;
                header = Some(h);
            }
            DataToken::PrimitiveValue(value) => {
                let Some(h) = header.take() else {
                    return Err(Unreadable::Because(
                        "value without an element header".into(),
                    ));
                };
                match stack.last() {
                    Some(Level::Pixels) => continue,
                    Some(Level::Sequence) => return Err(out_of_place("an element")),
                    Some(Level::Item) | None => {}
                }
                let bytes = raw(&value);
                if let Cow::Owned(copy) = &bytes {
                    budget.charge(copy.len() as u64)?;
                }
                let vr = if signed_pixels && is_us_or_ss(h.tag) {
                    VR::SS
                } else {
                    h.vr
                };
                if h.tag == tags::PIXEL_REPRESENTATION && matches!(vr, VR::US | VR::OW) {
                    signed_pixels = first_u16(&bytes, big_endian).is_some_and(|rep| rep != 0);
                }
                let element = Element::decode(h.tag, vr, bytes, &text, big_endian, budget)?;
                element.check_lengths(h.tag)?;
                if h.tag == tags::SPECIFIC_CHARACTER_SET
                    && let Some(named) = Charset::named(&element)
                {
                    // As in dicom-parser: the switch happens at any depth and lasts, and a name
                    // it does not know leaves the character set as it was.
                    text = named;
                }
                if stack.is_empty()
                    && let Some(slot) = promoted.slot(h.tag)
                {
                    *slot = match &element.values {
                        Values::Texts(values) => {
                            let joined = values.join("\\");
                            budget.charge(joined.capacity() as u64)?;
                            Some(joined)
                        }
                        _ => None,
                    };
                }
                element.write(h.tag, &mut out)?;
            }
            DataToken::SequenceStart { tag, .. } => {
                if stack.is_empty() && tag >= FIRST_PIXEL_TAG {
                    reached_pixels = true;
                    break;
                }
                if matches!(stack.last(), Some(Level::Sequence | Level::Pixels)) {
                    return Err(out_of_place("a sequence"));
                }
                depth += 1;
                if depth > MAX_SEQUENCE_DEPTH {
                    return Err(Unreadable::Because(format!(
                        "sequences nested deeper than {MAX_SEQUENCE_DEPTH} levels"
                    )));
                }
                out.key(tag);
                out.open('{');
                out.raw(r#""vr":"SQ","Value":"#);
                out.open('[');
                stack.push(Level::Sequence);
            }
            DataToken::PixelSequenceStart => {
                if stack.is_empty() {
                    reached_pixels = true;
                    break;
                }
                stack.push(Level::Pixels);
            }
            DataToken::ItemStart { len } => match stack.last() {
                Some(Level::Pixels) => {
                    // A fragment: the parser allocates its declared length, then reads it.
                    budget.affords(u64::from(len.get().unwrap_or(0)))?;
                }
                Some(Level::Sequence) => {
                    out.comma();
                    out.open('{');
                    stack.push(Level::Item);
                }
                Some(Level::Item) | None => return Err(out_of_place("an item")),
            },
            DataToken::ItemEnd => {
                if let Some(Level::Item) = stack.last() {
                    stack.pop();
                    out.close('}');
                }
            }
            DataToken::SequenceEnd => match stack.pop() {
                Some(Level::Sequence) => {
                    depth -= 1;
                    out.close(']');
                    out.close('}');
                }
                Some(Level::Pixels) => {}
                Some(Level::Item) | None => return Err(out_of_place("a sequence delimiter")),
            },
            DataToken::OffsetTable(_) | DataToken::ItemValue(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(Unreadable::Because("file ends inside a sequence".into()));
    }
    out.close('}');
    out.check()?;
    Ok(Written {
        json: out.text,
        promoted,
        reached_pixels,
    })
}

fn out_of_place(what: &str) -> Unreadable {
    Unreadable::Because(format!("{what} out of place in the data set"))
}

/// The bytes of a value read with [`ValueReadStrategy::Raw`], which hands out every value as
/// bytes in the file's byte order, or nothing when its length is zero.
///
/// [`ValueReadStrategy::Raw`]: dicom_parser::dataset::read::ValueReadStrategy::Raw
fn raw(value: &PrimitiveValue) -> Cow<'_, [u8]> {
    match value {
        PrimitiveValue::Empty => Cow::Borrowed(&[]),
        PrimitiveValue::U8(bytes) => Cow::Borrowed(bytes),
        other => other.to_bytes(),
    }
}

/// An element's VR and values, decoded as dicom-parser would decode them.
struct Element<'a> {
    vr: VR,
    values: Values<'a>,
}

enum Values<'a> {
    Empty,
    /// Text values, each without its trailing padding.
    Texts(Vec<String>),
    /// Fixed-size binary numbers in the file's byte order.
    Numbers {
        bytes: Cow<'a, [u8]>,
        big_endian: bool,
    },
    /// Bytes for `InlineBinary`, little endian.
    Binary(Cow<'a, [u8]>),
}

impl<'a> Element<'a> {
    fn decode(
        tag: Tag,
        vr: VR,
        bytes: Cow<'a, [u8]>,
        text: &Charset,
        big_endian: bool,
        budget: &Budget,
    ) -> Result<Self, Unreadable> {
        if bytes.is_empty() {
            let vr = match (vr, dictionary_vr(tag, vr)) {
                (VR::UN, Some(known)) => known,
                _ => vr,
            };
            return Ok(Element {
                vr,
                values: Values::Empty,
            });
        }
        if let Some(known) = dictionary_vr(tag, vr)
            && let Some(element) = Self::from_un(known, &bytes, budget)?
        {
            return Ok(element);
        }
        let values = match vr {
            // As in dicom-parser, these are always in the default repertoire.
            VR::AE | VR::AS | VR::CS => Values::Texts(split(&bytes, &Charset::default(), budget)?),
            VR::LT | VR::ST | VR::UR | VR::UT => {
                budget.charge(SLOT)?;
                Values::Texts(vec![trim_end(text.decode(&bytes, budget)?)])
            }
            VR::AT | VR::FD | VR::FL | VR::SL | VR::SS | VR::SV | VR::UL | VR::US | VR::UV => {
                let width = width(vr);
                if !bytes.len().is_multiple_of(width) {
                    return Err(Unreadable::Because(format!(
                        "({:04X},{:04X}) {vr} value of {} bytes is not a whole number of {width}-byte values",
                        tag.group(),
                        tag.element(),
                        bytes.len(),
                    )));
                }
                Values::Numbers { bytes, big_endian }
            }
            VR::OD | VR::OF | VR::OL | VR::OV | VR::OW if big_endian => {
                let width = width(vr);
                budget.charge(bytes.len() as u64)?;
                let mut swapped = bytes.into_owned();
                swapped
                    .chunks_exact_mut(width)
                    .for_each(|word| word.reverse());
                Values::Binary(Cow::Owned(swapped))
            }
            VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN => Values::Binary(bytes),
            VR::SQ => {
                return Err(Unreadable::Because(format!(
                    "({:04X},{:04X}) is a sequence with a primitive value",
                    tag.group(),
                    tag.element()
                )));
            }
            // DA DS DT IS LO PN SH TM UC UI: several values separated by `\`.
            _ => Values::Texts(split(&bytes, text, budget)?),
        };
        Ok(Element { vr, values })
    }

    /// Refuses a text value longer than its VR allows, naming the element, never the value.
    fn check_lengths(&self, tag: Tag) -> Result<(), Unreadable> {
        let (Values::Texts(values), Some(max)) = (&self.values, max_chars(self.vr)) else {
            return Ok(());
        };
        // Bytes bound characters from above, so only a value with more bytes is counted.
        let too_long = |value: &str| value.len() > max && value.chars().count() > max;
        let refused = values.iter().any(|value| match self.vr {
            VR::PN => value.split('=').any(too_long),
            _ => too_long(value),
        });
        if refused {
            return Err(Unreadable::Refused(Rejection::DicomValueTooLong {
                element: format!("({:04X},{:04X})", tag.group(), tag.element()),
                vr: self.vr.to_string(),
                max,
            }));
        }
        Ok(())
    }

    /// A standard attribute stored as UN (explicit VR files written by converters that did not
    /// know the attribute) is read as its dictionary VR, as pydicom and DICOMweb servers do:
    /// otherwise a UID would come out as base64. UN values are encoded as in implicit VR little
    /// endian (PS3.5 6.2.2), so text splits on `\` and numbers are little-endian. Sequences and
    /// values that do not fit their VR stay UN.
    fn from_un(
        known: VR,
        bytes: &[u8],
        budget: &Budget,
    ) -> Result<Option<Element<'static>>, Unreadable> {
        // Each text value is charged for its slot and its bytes; the lossy decoding of invalid
        // UTF-8 makes at most three bytes of each byte, checked before it is made.
        let text = || -> Result<Cow<'_, str>, Unreadable> {
            budget.affords(3 * bytes.len() as u64)?;
            let decoded = String::from_utf8_lossy(bytes);
            if let Cow::Owned(copy) = &decoded {
                budget.charge(copy.capacity() as u64)?;
            }
            Ok(decoded)
        };
        let owned = |value: &str| -> Result<String, Unreadable> {
            budget.charge(value.len() as u64)?;
            Ok(value.to_owned())
        };
        let values = match known {
            VR::AE
            | VR::AS
            | VR::CS
            | VR::DA
            | VR::DS
            | VR::DT
            | VR::IS
            | VR::LO
            | VR::PN
            | VR::SH
            | VR::TM
            | VR::UC
            | VR::UI => {
                let text = text()?;
                let text = text.trim_end_matches(['\0', ' ']);
                let count = count_values(text.as_bytes());
                budget.charge(count as u64 * SLOT)?;
                let mut values = Vec::with_capacity(count);
                for part in text.split('\\') {
                    values.push(owned(part.trim_matches(['\0', ' ']))?);
                }
                Values::Texts(values)
            }
            VR::LT | VR::ST | VR::UT | VR::UR => {
                budget.charge(SLOT)?;
                Values::Texts(vec![owned(text()?.trim_end_matches(['\0', ' ']))?])
            }
            VR::AT | VR::FD | VR::FL | VR::SL | VR::SS | VR::UL | VR::US
                if bytes.len().is_multiple_of(width(known)) =>
            {
                budget.charge(bytes.len() as u64)?;
                Values::Numbers {
                    bytes: Cow::Owned(bytes.to_vec()),
                    big_endian: false,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(Element { vr: known, values }))
    }

    /// Writes `"GGGGEEEE": {...}`, or nothing for a binary value too large to inline.
    fn write(&self, tag: Tag, out: &mut Json) -> Result<(), Unreadable> {
        if let Values::Binary(bytes) = &self.values
            && bytes.len() > MAX_INLINE_BINARY
        {
            return Ok(());
        }
        out.key(tag);
        out.open('{');
        out.raw(r#""vr":""#);
        out.raw(self.vr.to_string());
        out.raw("\"");
        match &self.values {
            Values::Empty => {}
            Values::Texts(values) => match self.vr {
                VR::PN => person_names(values, out),
                VR::DS => decimal_strings(values, out, |t| {
                    t.parse::<f64>()
                        .ok()
                        .filter(|n| n.is_finite())
                        .map(Number::Float)
                }),
                VR::IS => decimal_strings(values, out, |t| t.parse::<i64>().ok().map(Number::Int)),
                _ if values.iter().all(|v| is_padding(v)) => {}
                _ => {
                    out.raw(r#","Value":"#);
                    out.open('[');
                    for value in values {
                        out.comma();
                        out.string(&cleaned(value));
                    }
                    out.close(']');
                }
            },
            Values::Numbers { bytes, big_endian } => {
                out.raw(r#","Value":"#);
                out.open('[');
                numbers(self.vr, bytes, *big_endian, out);
                out.close(']');
            }
            Values::Binary(bytes) => {
                out.raw(r#","InlineBinary":""#);
                out.base64(bytes);
                out.raw("\"");
            }
        }
        out.close('}');
        Ok(())
    }
}

/// Attributes whose VR follows Pixel Representation (smallest and largest pixel values, pixel
/// padding). Like dicom-parser, once a Pixel Representation says the pixels are signed, they are
/// read as SS whatever their header says.
fn is_us_or_ss(tag: Tag) -> bool {
    StandardDataDictionary
        .by_tag(tag)
        .is_some_and(|entry| entry.vr() == VirtualVr::Xs)
}

fn first_u16(bytes: &[u8], big_endian: bool) -> Option<u16> {
    let (first, _) = bytes.split_first_chunk::<2>()?;
    Some(if big_endian {
        u16::from_be_bytes(*first)
    } else {
        u16::from_le_bytes(*first)
    })
}

/// The dictionary VR of a standard attribute read as UN, if it has exactly one.
fn dictionary_vr(tag: Tag, vr: VR) -> Option<VR> {
    if vr != VR::UN || !tag.group().is_multiple_of(2) {
        return None;
    }
    match StandardDataDictionary.by_tag(tag)?.vr() {
        VirtualVr::Exact(known) => Some(known),
        _ => None,
    }
}

fn width(vr: VR) -> usize {
    match vr {
        VR::SS | VR::US | VR::OW => 2,
        VR::FD | VR::SV | VR::UV | VR::OD | VR::OV => 8,
        _ => 4,
    }
}

/// What one text value costs besides its bytes: its `String` in the element's list. An empty
/// value has no bytes, so without this a header of backslashes would cost nothing per value.
const SLOT: u64 = std::mem::size_of::<String>() as u64;

fn count_values(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\\').count() + 1
}

/// Multi-valued text: values split on `\` in the encoded bytes (no character set in DICOM uses
/// that byte inside a character), each decoded and stripped of its trailing padding. The list is
/// charged for all its slots before it is made, and made at that size.
fn split(bytes: &[u8], text: &Charset, budget: &Budget) -> Result<Vec<String>, Unreadable> {
    let count = count_values(bytes);
    budget.charge(count as u64 * SLOT)?;
    let mut values = Vec::with_capacity(count);
    for value in bytes.split(|b| *b == b'\\') {
        values.push(trim_end(text.decode(value, budget)?));
    }
    Ok(values)
}

/// The longest value each text VR allows, in characters (PS3.5 Table 6.2-1); `None` where only
/// the budget bounds it (UC, UR, UT). Two allow the ACR-NEMA forms the readers here still accept:
/// DA `YYYY.MM.DD` (10) and TM `HH:MM:SS.FFFFFF` (16, the pre-2017 maximum). PN's is per component
/// group.
fn max_chars(vr: VR) -> Option<usize> {
    Some(match vr {
        VR::AS => 4,
        VR::DA => 10,
        VR::IS => 12,
        VR::AE | VR::CS | VR::DS | VR::SH | VR::TM => 16,
        VR::DT => 26,
        VR::LO | VR::PN | VR::UI => 64,
        VR::ST => 1024,
        VR::LT => 10240,
        _ => return None,
    })
}

fn trim_end(mut value: String) -> String {
    let kept = value.trim_end_matches([' ', '\0']).len();
    value.truncate(kept);
    value
}

/// A value that is only padding is no value: PS3.18 F.2.5 leaves `Value` out.
fn is_padding(value: &str) -> bool {
    value.trim_matches(['\0', ' ']).is_empty()
}

/// DICOM pads values with spaces or NULs; PostgreSQL refuses NUL in text and in JSON.
fn cleaned(value: &str) -> Cow<'_, str> {
    if value.contains('\0') || value.ends_with(' ') {
        Cow::Owned(super::clean(value))
    } else {
        Cow::Borrowed(value)
    }
}

/// PN values as objects of their component groups (PS3.18 F.2.2), leaving empty groups out.
fn person_names(values: &[String], out: &mut Json) {
    out.raw(r#","Value":"#);
    out.open('[');
    for value in values {
        out.comma();
        out.open('{');
        let mut groups = value.split('=');
        for name in ["Alphabetic", "Ideographic", "Phonetic"] {
            let group = groups.next().unwrap_or_default();
            if !group.is_empty() {
                out.comma();
                out.raw("\"");
                out.raw(name);
                out.raw("\":");
                out.string(&cleaned(group));
            }
        }
        out.close('}');
    }
    out.close(']');
}

enum Number {
    Int(i64),
    Float(f64),
}

/// DS and IS hold numbers written as text; the JSON model carries them as numbers (Table
/// F.2.3-1). A value that does not parse stays a string rather than being lost; an empty one is
/// null, and a value that is all nulls is left out.
fn decimal_strings(values: &[String], out: &mut Json, parse: impl Fn(&str) -> Option<Number>) {
    if values.iter().all(|value| trimmed(value).is_empty()) {
        return;
    }
    out.raw(r#","Value":"#);
    out.open('[');
    for value in values {
        out.comma();
        let number = trimmed(value);
        match parse(number) {
            Some(Number::Int(n)) => out.raw(itoa::Buffer::new().format(n)),
            Some(Number::Float(n)) => out.raw(ryu::Buffer::new().format_finite(n)),
            None if number.is_empty() => out.raw("null"),
            None => out.string(&cleaned(value)),
        }
    }
    out.close(']');
}

fn trimmed(value: &str) -> &str {
    value.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// Binary numbers of `vr`, already checked to be a whole number of values.
fn numbers(vr: VR, bytes: &[u8], big_endian: bool, out: &mut Json) {
    fn each<const N: usize>(bytes: &[u8], big_endian: bool, mut write: impl FnMut([u8; N])) {
        let (values, _) = bytes.as_chunks::<N>();
        for value in values {
            let mut value = *value;
            if big_endian {
                value.reverse();
            }
            write(value);
        }
    }
    fn int(n: i64, out: &mut Json) {
        out.comma();
        out.raw(itoa::Buffer::new().format(n));
    }
    match vr {
        VR::US => each(bytes, big_endian, |v| {
            int(u16::from_le_bytes(v).into(), out)
        }),
        VR::SS => each(bytes, big_endian, |v| {
            int(i16::from_le_bytes(v).into(), out)
        }),
        VR::UL => each(bytes, big_endian, |v| {
            int(u32::from_le_bytes(v).into(), out)
        }),
        VR::SL => each(bytes, big_endian, |v| {
            int(i32::from_le_bytes(v).into(), out)
        }),
        VR::SV => each(bytes, big_endian, |v| wide(i64::from_le_bytes(v), out)),
        VR::UV => each(bytes, big_endian, |v| wide(u64::from_le_bytes(v), out)),
        VR::FL => each(bytes, big_endian, |v| {
            float(f32::from_le_bytes(v).into(), out)
        }),
        VR::FD => each(bytes, big_endian, |v| float(f64::from_le_bytes(v), out)),
        _ => {
            // AT: a group and an element, each a 16-bit number in the file's byte order.
            let (tags, _) = bytes.as_chunks::<4>();
            for [g0, g1, e0, e1] in tags {
                let (group, element) = if big_endian {
                    (
                        u16::from_be_bytes([*g0, *g1]),
                        u16::from_be_bytes([*e0, *e1]),
                    )
                } else {
                    (
                        u16::from_le_bytes([*g0, *g1]),
                        u16::from_le_bytes([*e0, *e1]),
                    )
                };
                out.comma();
                out.string(&format!("{group:04X}{element:04X}"));
            }
        }
    }
}

/// 64-bit integers beyond the 32-bit range are written as strings, as dicom-json and pydicom do:
/// JavaScript numbers cannot hold them exactly.
fn wide<T: Copy + itoa::Integer + TryInto<i32>>(n: T, out: &mut Json) {
    out.comma();
    match n.try_into() {
        Ok(small) => out.raw(itoa::Buffer::new().format::<i32>(small)),
        Err(_) => out.string(itoa::Buffer::new().format(n)),
    }
}

/// JSON has no NaN or infinities; they are written as the strings dicom-json uses.
fn float(n: f64, out: &mut Json) {
    out.comma();
    if n.is_finite() {
        out.raw(ryu::Buffer::new().format_finite(n));
    } else if n.is_nan() {
        out.string("NaN");
    } else if n > 0.0 {
        out.string("inf");
    } else {
        out.string("-inf");
    }
}

/// The data set's character set, as set by Specific Character Set (0008,0005).
struct Charset {
    codec: SpecificCharacterSet,
    fast: Fast,
}

/// How text in a character set can be decoded without its codec.
#[derive(Clone, Copy, PartialEq)]
enum Fast {
    /// ISO 8859-1, which is also what dicom-encoding uses for the default repertoire: every byte
    /// is the code point of the same number.
    Latin1,
    /// UTF-8, taken as is when valid.
    Utf8,
    /// A single-byte set whose lower half is ASCII: ASCII text is taken as is.
    Ascii,
    None,
}

impl Default for Charset {
    fn default() -> Self {
        Charset {
            codec: SpecificCharacterSet::ISO_IR_6,
            fast: Fast::Latin1,
        }
    }
}

impl Charset {
    /// The character set named by the first value of a Specific Character Set element.
    fn named(element: &Element) -> Option<Charset> {
        let Values::Texts(values) = &element.values else {
            return None;
        };
        let codec = SpecificCharacterSet::from_code(values.first()?)?;
        let fast = match codec.name().as_ref() {
            "ISO_IR 6" | "ISO_IR 100" => Fast::Latin1,
            "ISO_IR 192" => Fast::Utf8,
            "ISO_IR 101" | "ISO_IR 109" | "ISO_IR 110" | "ISO_IR 126" | "ISO_IR 127"
            | "ISO_IR 138" | "ISO_IR 144" | "ISO_IR 166" => Fast::Ascii,
            _ => Fast::None,
        };
        Some(Charset { codec, fast })
    }

    /// Decodes one value, charging its text. The fast paths allocate exactly the text; a codec
    /// is checked for the most UTF-8 any character set makes of a byte before it runs.
    fn decode(&self, bytes: &[u8], budget: &Budget) -> Result<String, Unreadable> {
        let decoded = match (self.fast, std::str::from_utf8(bytes)) {
            (Fast::Utf8, Ok(text)) => text.to_owned(),
            (Fast::Latin1 | Fast::Ascii, Ok(text)) if text.is_ascii() => text.to_owned(),
            (Fast::Latin1, _) => {
                let high = bytes.iter().filter(|b| **b >= 0x80).count();
                let mut text = String::with_capacity(bytes.len() + high);
                text.extend(bytes.iter().map(|&b| char::from(b)));
                text
            }
            _ => {
                budget.affords(3 * bytes.len() as u64)?;
                self.codec
                    .decode(bytes)
                    .map_err(|e| because("Could not decode text", e))?
            }
        };
        budget.charge(decoded.capacity() as u64)?;
        Ok(decoded)
    }
}

/// The JSON text being written, and whether the next member or element needs a comma first.
///
/// Every byte goes through [`Json::grow`], which charges the text's capacity to the budget and
/// holds it under the JSON's cap, so an element that expands (an empty value becomes `null,`, a
/// control character `\u0001`) can never outgrow either. Past one, writing stops and the next
/// [`Json::check`] reports it; the writers in between stay infallible.
struct Json<'b> {
    text: String,
    after_value: bool,
    budget: &'b Budget,
    cap: usize,
    over: Option<Over>,
}

#[derive(Clone, Copy)]
enum Over {
    Budget,
    Cap,
}

impl<'b> Json<'b> {
    fn new(budget: &'b Budget) -> Json<'b> {
        Json {
            text: String::new(),
            after_value: false,
            budget,
            cap: usize::try_from(max_json_bytes(budget.limit)).unwrap_or(usize::MAX),
            over: None,
        }
    }

    /// Makes room for `additional` bytes: doubling, as `String` would, but never past the cap,
    /// and only with the budget's leave. False once the JSON is over either.
    fn grow(&mut self, additional: usize) -> bool {
        if self.over.is_some() {
            return false;
        }
        let needed = self.text.len() + additional;
        let capacity = self.text.capacity();
        if needed <= capacity {
            return true;
        }
        if needed > self.cap {
            self.over = Some(Over::Cap);
            return false;
        }
        let target = needed.max(capacity * 2).min(self.cap);
        if self.budget.charge((target - capacity) as u64).is_err() {
            self.over = Some(Over::Budget);
            return false;
        }
        self.text.reserve_exact(target - self.text.len());
        true
    }

    fn check(&self) -> Result<(), Unreadable> {
        match self.over {
            None => Ok(()),
            Some(Over::Budget) => Err(Unreadable::TooLarge),
            Some(Over::Cap) => Err(Unreadable::Refused(Rejection::DicomJsonTooLarge {
                limit: self.cap as u64,
            })),
        }
    }

    fn push(&mut self, c: char) {
        if self.grow(c.len_utf8()) {
            self.text.push(c);
        }
    }

    fn push_str(&mut self, text: &str) {
        if self.grow(text.len()) {
            self.text.push_str(text);
        }
    }

    fn raw(&mut self, text: impl AsRef<str>) {
        self.push_str(text.as_ref());
    }

    fn base64(&mut self, bytes: &[u8]) {
        if self.grow(bytes.len().div_ceil(3) * 4) {
            STANDARD.encode_string(bytes, &mut self.text);
        }
    }

    fn comma(&mut self) {
        if self.after_value {
            self.push(',');
        }
        self.after_value = true;
    }

    fn open(&mut self, bracket: char) {
        self.push(bracket);
        self.after_value = false;
    }

    fn close(&mut self, bracket: char) {
        self.push(bracket);
        self.after_value = true;
    }

    fn key(&mut self, tag: Tag) {
        self.comma();
        self.push('"');
        for half in [tag.group(), tag.element()] {
            for shift in [12, 8, 4, 0] {
                self.push(char::from(
                    b"0123456789ABCDEF"[usize::from(half >> shift & 0xF)],
                ));
            }
        }
        self.push_str("\":");
        self.after_value = false;
    }

    /// A JSON string, escaped as RFC 8259 requires. Reports and embedded XML run to tens of
    /// kilobytes, so runs of eight bytes with nothing to escape are skipped a word at a time.
    fn string(&mut self, value: &str) {
        if !self.grow(value.len() + 2) {
            return;
        }
        self.push('"');
        let bytes = value.as_bytes();
        let (mut start, mut at) = (0, 0);
        while at < bytes.len() {
            if let Some(word) = bytes[at..].first_chunk::<8>()
                && !any_to_escape(u64::from_le_bytes(*word))
            {
                at += 8;
                continue;
            }
            let byte = bytes[at];
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x00..=0x1F => "",
                _ => {
                    at += 1;
                    continue;
                }
            };
            self.push_str(&value[start..at]);
            if escape.is_empty() {
                self.push_str(&format!("\\u{byte:04x}"));
            } else {
                self.push_str(escape);
            }
            at += 1;
            start = at;
        }
        self.push_str(&value[start..]);
        self.push('"');
    }
}

/// Whether any of eight bytes is a control character, `"` or `\`: the classic bit tricks for
/// "has a byte below n" and "has a zero byte", which never miss one (a hit is checked byte by
/// byte).
const fn any_to_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const fn below(word: u64, n: u8) -> u64 {
        word.wrapping_sub(ONES * n as u64) & !word & HIGH
    }
    const fn zero(word: u64) -> u64 {
        below(word, 1)
    }
    below(word, 0x20) | zero(word ^ (ONES * b'"' as u64)) | zero(word ^ (ONES * b'\\' as u64)) != 0
}

#[cfg(test)]
mod tests {
    use dicom_core::Length;
    use dicom_core::header::DataElementHeader;
    use dicom_parser::dataset::read::Error;
    use serde_json::{Value, json};

    use super::*;

    type Token = Result<DataToken, Error>;

    fn element(tag: Tag, vr: VR, bytes: &[u8]) -> Vec<Token> {
        let length = Length(u32::try_from(bytes.len()).unwrap());
        let value = if bytes.is_empty() {
            PrimitiveValue::Empty
        } else {
            PrimitiveValue::U8(bytes.into())
        };
        vec![
            Ok(DataToken::ElementHeader(DataElementHeader::new(
                tag, vr, length,
            ))),
            Ok(DataToken::PrimitiveValue(value)),
        ]
    }

    /// A sequence holding one item with `inside`.
    fn sequence(tag: Tag, inside: Vec<Token>) -> Vec<Token> {
        let mut tokens = vec![
            Ok(DataToken::SequenceStart {
                tag,
                len: Length::UNDEFINED,
            }),
            Ok(DataToken::ItemStart {
                len: Length::UNDEFINED,
            }),
        ];
        tokens.extend(inside);
        tokens.extend([Ok(DataToken::ItemEnd), Ok(DataToken::SequenceEnd)]);
        tokens
    }

    fn written_in(
        endianness: Endianness,
        parts: impl IntoIterator<Item = Vec<Token>>,
    ) -> (Value, Promoted) {
        let written = write(
            parts.into_iter().flatten(),
            endianness,
            &Budget::new(1 << 20),
        )
        .unwrap_or_else(|_| panic!("the tokens are written"));
        let json =
            serde_json::from_str(&written.json).unwrap_or_else(|e| panic!("{e}: {}", written.json));
        (json, written.promoted)
    }

    fn written(parts: impl IntoIterator<Item = Vec<Token>>) -> Value {
        written_in(Endianness::Little, parts).0
    }

    fn refused(parts: impl IntoIterator<Item = Vec<Token>>) -> String {
        match write(
            parts.into_iter().flatten(),
            Endianness::Little,
            &Budget::new(1 << 20),
        ) {
            Err(Unreadable::Because(reason)) => reason,
            Err(Unreadable::TooLarge) => "too large".into(),
            Err(Unreadable::Refused(rejection)) => rejection.to_string(),
            Ok(written) => panic!("written: {}", written.json),
        }
    }

    const DS: Tag = Tag(0x0018, 0x0080);

    #[test]
    fn decimal_and_integer_strings_become_numbers() {
        let json = written([
            element(DS, VR::DS, b"4000.0000 "),
            element(Tag(0x0018, 0x1030), VR::DS, b"n/a "),
            element(Tag(0x0020, 0x0032), VR::DS, b"-83.9063\\ -91.2\\6.6406"),
            element(Tag(0x0020, 0x0037), VR::DS, b"1\\"),
            element(Tag(0x0020, 0x1041), VR::DS, b"  "),
            element(Tag(0x0028, 0x0008), VR::IS, b"1 "),
            element(Tag(0x0028, 0x0009), VR::IS, b"inf "),
            sequence(
                Tag(0x0040, 0x0275),
                element(Tag(0x0020, 0x0013), VR::IS, b"7 "),
            ),
        ]);
        assert_eq!(json["00180080"], json!({"vr": "DS", "Value": [4000.0]}));
        assert_eq!(json["00181030"]["Value"], json!(["n/a"]), "kept, not lost");
        assert_eq!(json["00200032"]["Value"], json!([-83.9063, -91.2, 6.6406]));
        assert_eq!(json["00200037"]["Value"], json!([1.0, null]));
        assert_eq!(json["00201041"], json!({"vr": "DS"}), "padding only");
        assert_eq!(json["00280008"]["Value"], json!([1]));
        assert_eq!(
            json["00280009"]["Value"],
            json!(["inf"]),
            "not a JSON number"
        );
        assert_eq!(
            json["00400275"]["Value"][0]["00200013"]["Value"],
            json!([7])
        );
    }

    #[test]
    fn padding_only_values_have_no_value_and_strings_lose_their_padding() {
        let json = written([
            element(Tag(0x0008, 0x0008), VR::CS, b"\\X "),
            element(Tag(0x0010, 0x0020), VR::LO, b"ID\0 "),
            element(Tag(0x0010, 0x1000), VR::LO, b"A\0B"),
            element(Tag(0x0010, 0x2160), VR::SH, b"  "),
            element(
                Tag(0x0020, 0x4000),
                VR::LT,
                b"  keeps its leading spaces \0",
            ),
            element(Tag(0x0032, 0x1060), VR::LO, b""),
        ]);
        assert_eq!(json["00080008"]["Value"], json!(["", "X"]));
        assert_eq!(json["00100020"]["Value"], json!(["ID"]));
        assert_eq!(
            json["00101000"]["Value"],
            json!(["AB"]),
            "no NUL reaches PostgreSQL"
        );
        assert_eq!(json["00102160"], json!({"vr": "SH"}));
        assert_eq!(
            json["00204000"]["Value"],
            json!(["  keeps its leading spaces"])
        );
        assert_eq!(json["00321060"], json!({"vr": "LO"}));
    }

    #[test]
    fn large_binaries_are_left_out_at_any_depth() {
        let json = written([
            element(Tag(0x0009, 0x1001), VR::OB, &[7; MAX_INLINE_BINARY + 2]),
            element(Tag(0x0009, 0x1002), VR::OB, &[1, 2, 3, 4]),
            sequence(
                Tag(0x0008, 0x1140),
                element(Tag(0x0009, 0x1003), VR::OW, &[0; MAX_INLINE_BINARY + 2]),
            ),
        ]);
        assert!(json.get("00091001").is_none());
        assert_eq!(
            json["00091002"],
            json!({"vr": "OB", "InlineBinary": "AQIDBA=="})
        );
        assert_eq!(json["00081140"], json!({"vr": "SQ", "Value": [{}]}));
    }

    #[test]
    fn binary_numbers_are_read_in_the_file_byte_order() {
        let tokens = |big: bool| {
            let order = |mut bytes: Vec<u8>, width: usize| {
                if big {
                    bytes.chunks_mut(width).for_each(<[u8]>::reverse);
                }
                bytes
            };
            let le = |values: &[&[u8]]| values.concat();
            [
                element(
                    Tag(0x0018, 0x1310),
                    VR::US,
                    &order(le(&[&1u16.to_le_bytes(), &513u16.to_le_bytes()]), 2),
                ),
                element(
                    Tag(0x0018, 0x6020),
                    VR::SL,
                    &order((-5i32).to_le_bytes().to_vec(), 4),
                ),
                element(
                    Tag(0x0018, 0x9089),
                    VR::FD,
                    &order(le(&[&0.5f64.to_le_bytes(), &f64::NAN.to_le_bytes()]), 8),
                ),
                element(
                    Tag(0x0018, 0x9219),
                    VR::FL,
                    &order(0.1f32.to_le_bytes().to_vec(), 4),
                ),
                element(
                    Tag(0x0020, 0x9165),
                    VR::AT,
                    &order(le(&[&0x0010u16.to_le_bytes(), &0x0020u16.to_le_bytes()]), 2),
                ),
                element(
                    Tag(0x0040, 0xA165),
                    VR::UV,
                    &order((1u64 << 40).to_le_bytes().to_vec(), 8),
                ),
                element(
                    Tag(0x0028, 0x3006),
                    VR::OW,
                    &order(0x0102u16.to_le_bytes().to_vec(), 2),
                ),
            ]
        };
        let little = written_in(Endianness::Little, tokens(false)).0;
        let big = written_in(Endianness::Big, tokens(true)).0;
        assert_eq!(little, big);
        assert_eq!(little["00181310"]["Value"], json!([1, 513]));
        assert_eq!(little["00186020"]["Value"], json!([-5]));
        assert_eq!(little["00189089"]["Value"], json!([0.5, "NaN"]));
        assert_eq!(
            little["00189219"]["Value"],
            json!([f64::from(0.1f32)]),
            "the float's own value, as pydicom gives it"
        );
        assert_eq!(little["00209165"]["Value"], json!(["00100020"]));
        assert_eq!(
            little["0040A165"]["Value"],
            json!(["1099511627776"]),
            "beyond JSON's safe integers"
        );
        assert_eq!(
            little["00283006"]["InlineBinary"],
            json!("AgE="),
            "little endian"
        );
    }

    #[test]
    fn a_number_cut_short_is_refused_naming_the_element() {
        let reason = refused([element(Tag(0x0028, 0x0010), VR::US, &[1, 2, 3])]);
        assert_eq!(
            reason,
            "(0028,0010) US value of 3 bytes is not a whole number of 2-byte values"
        );
    }

    #[test]
    fn values_longer_than_their_vr_allows_are_refused_naming_the_element() {
        let cases: &[(VR, &[u8], usize)] = &[
            (VR::UI, &[b'1'; 65], 64),
            (VR::DA, b"20240131000", 10),
            (VR::CS, b"ORIGINAL\\ABCDEFGHIJKLMNOPQ", 16),
            (VR::DS, b"0.12345678901234567", 16),
            (VR::IS, b"1234567890123", 12),
            (VR::AS, b"045YY", 4),
            (VR::SH, &[b'x'; 17], 16),
            (VR::LO, &[b'x'; 65], 64),
            (VR::TM, b"235959.12345678901", 16),
            (VR::DT, b"20240131235959.123456+01001", 26),
            (VR::ST, &[b'x'; 1025], 1024),
            (VR::LT, &[b'x'; 10241], 10240),
        ];
        for (vr, bytes, max) in cases {
            assert_eq!(
                refused([element(Tag(0x0009, 0x1010), *vr, bytes)]),
                format!(
                    "DICOM element (0009,1010) has a {vr} value longer than the {max} characters its VR allows"
                ),
            );
        }
        let mut name = vec![b'x'; 64];
        name.extend_from_slice(b"=");
        name.extend_from_slice(&[b'y'; 65]);
        assert!(refused([element(Tag(0x0010, 0x0010), VR::PN, &name)]).contains("PN value"));
        // As UN, a standard attribute is held to its dictionary VR.
        assert!(refused([element(tags::MODALITY, VR::UN, &[b'M'; 17])]).contains("CS value"));
    }

    #[test]
    fn values_at_their_vr_maximum_are_kept_and_unlimited_vrs_are_left_to_the_budget() {
        let utf8 = "é".repeat(64);
        let json = written([
            element(tags::SPECIFIC_CHARACTER_SET, VR::CS, b"ISO_IR 192"),
            element(Tag(0x0009, 0x1010), VR::DS, b"-1.234567890e+10\\1 "),
            element(Tag(0x0009, 0x1011), VR::LO, utf8.as_bytes()),
            element(Tag(0x0009, 0x1012), VR::UT, &[b'x'; 100_000]),
            element(Tag(0x0009, 0x1013), VR::UC, &[b'x'; 100_000]),
            element(Tag(0x0009, 0x1014), VR::TM, b"23:59:59.123456 "),
        ]);
        assert_eq!(json["00091011"]["Value"][0], utf8.as_str(), "64 characters");
        assert_eq!(
            json["00091012"]["Value"][0].as_str().map(str::len),
            Some(100_000)
        );
        assert_eq!(
            json["00091013"]["Value"][0].as_str().map(str::len),
            Some(100_000)
        );
        assert_eq!(json["00091014"]["Value"][0], "23:59:59.123456");
    }

    #[test]
    fn everything_the_writer_allocates_is_charged_to_the_budget() {
        let tokens = || {
            [
                element(Tag(0x0009, 0x1010), VR::UC, &[b'\\'; 1000]),
                element(Tag(0x0009, 0x1011), VR::LT, &[b'x'; 1000]),
            ]
            .into_iter()
            .flatten()
        };
        let budget = Budget::new(1 << 20);
        let written = write(tokens(), Endianness::Little, &budget).unwrap_or_else(|_| panic!());
        let spent = (1 << 20) - budget.left.get();
        // Slots of 1001 values, the LT's text, and the JSON's capacity at the least.
        let least = 1001 * SLOT + 1000 + written.json.len() as u64;
        assert!(spent >= least, "spent {spent}, at least {least}");
        assert!(written.json.capacity() as u64 <= spent);
        // The same tokens with a budget just below what they cost.
        let short = Budget::new(spent - 1);
        assert!(matches!(
            write(tokens(), Endianness::Little, &short),
            Err(Unreadable::TooLarge)
        ));
        assert!(short.exhausted.get());
    }

    #[test]
    fn person_names_keep_their_component_groups() {
        let name = "Yamada^Tarou=山田^太郎=やまだ^たろう";
        let json = written([
            element(tags::SPECIFIC_CHARACTER_SET, VR::CS, b"ISO_IR 192"),
            element(Tag(0x0008, 0x0090), VR::PN, b"Doe^John\\Roe^Jane "),
            element(Tag(0x0010, 0x0010), VR::PN, name.as_bytes()),
            element(Tag(0x0010, 0x1001), VR::PN, b"  "),
        ]);
        assert_eq!(
            json["00080090"]["Value"],
            json!([{"Alphabetic": "Doe^John"}, {"Alphabetic": "Roe^Jane"}])
        );
        assert_eq!(
            json["00100010"]["Value"],
            json!([{"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}])
        );
        assert_eq!(
            json["00101001"]["Value"],
            json!([{}]),
            "as pydicom writes it"
        );
    }

    #[test]
    fn text_follows_the_specific_character_set_and_an_unknown_one_changes_nothing() {
        let latin1 = b"M\xfcller^J\xf6rg";
        let json = written([
            element(Tag(0x0008, 0x0005), VR::CS, b"ISO_IR 100"),
            element(Tag(0x0010, 0x0010), VR::PN, latin1),
            sequence(
                Tag(0x0040, 0x0275),
                element(Tag(0x0008, 0x0005), VR::CS, b"NOT A CHARSET"),
            ),
            element(Tag(0x0010, 0x4000), VR::LT, latin1),
        ]);
        assert_eq!(json["00100010"]["Value"][0]["Alphabetic"], "Müller^Jörg");
        assert_eq!(json["00104000"]["Value"][0], "Müller^Jörg");
    }

    #[test]
    fn the_fast_paths_decode_as_the_codecs_do() {
        let every_byte: Vec<u8> = (0..=255).collect();
        let ascii: Vec<u8> = (0..128).collect();
        for name in [
            "ISO_IR 6",
            "ISO_IR 100",
            "ISO_IR 101",
            "ISO_IR 109",
            "ISO_IR 110",
            "ISO_IR 126",
            "ISO_IR 127",
            "ISO_IR 138",
            "ISO_IR 144",
            "ISO_IR 166",
            "ISO_IR 192",
            "ISO 2022 IR 87",
            "GB18030",
        ] {
            let named = element(tags::SPECIFIC_CHARACTER_SET, VR::CS, name.as_bytes());
            let Ok(DataToken::PrimitiveValue(value)) = &named[1] else {
                unreachable!()
            };
            let cs = Element::decode(
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                raw(value),
                &Charset::default(),
                false,
                &Budget::new(1 << 20),
            )
            .unwrap_or_else(|_| panic!("{name}"));
            let charset = Charset::named(&cs).unwrap_or_else(|| panic!("{name} is known"));
            for bytes in [&ascii, &every_byte, &"Grüße, 山田".as_bytes().to_vec()] {
                let fast = charset.decode(bytes, &Budget::new(1 << 20)).ok();
                let codec = charset.codec.decode(bytes).ok();
                assert_eq!(fast, codec, "{name}");
            }
        }
    }

    #[test]
    fn strings_are_escaped() {
        let text = "a \"quote\", a\ttab,\r\na line and \u{1} a control";
        let json = written([element(Tag(0x0020, 0x4000), VR::LT, text.as_bytes())]);
        assert_eq!(json["00204000"]["Value"][0], text);
        for special in ['"', '\\', '\n', '\u{1f}', '\u{7f}', 'é'] {
            for at in 0..20 {
                let mut text: String = "0123456789abcdefghij".into();
                text.insert(at, special);
                let budget = Budget::new(1 << 20);
                let mut out = Json::new(&budget);
                out.string(&text);
                let back: String = serde_json::from_str(&out.text).expect("JSON string");
                assert_eq!(back, text, "{special:?} at {at}");
            }
        }
    }

    #[test]
    fn the_word_test_finds_every_byte_to_escape() {
        for byte in 0..=255u8 {
            for at in 0..8 {
                let mut word = *b"abcdefgh";
                word[at] = byte;
                let expected = byte < 0x20 || byte == b'"' || byte == b'\\';
                assert_eq!(
                    any_to_escape(u64::from_le_bytes(word)),
                    expected,
                    "{byte} at {at}"
                );
            }
        }
    }

    #[test]
    fn standard_attributes_stored_as_un_take_their_dictionary_vr() {
        let (json, promoted) = written_in(
            Endianness::Little,
            [
                element(tags::STUDY_INSTANCE_UID, VR::UN, b"1.2.3\0"),
                element(Tag(0x0028, 0x0010), VR::UN, &[0x40, 0x00]),
                element(Tag(0x0028, 0x0011), VR::UN, &[0x40]),
                element(Tag(0x0028, 0x0030), VR::UN, b"0.5\\0.25"),
                element(Tag(0x0009, 0x0010), VR::UN, b"PRIVATE "),
                element(Tag(0x0018, 0x0010), VR::UN, &[]),
            ],
        );
        assert_eq!(json["0020000D"], json!({"vr": "UI", "Value": ["1.2.3"]}));
        assert_eq!(json["00280010"], json!({"vr": "US", "Value": [64]}));
        assert_eq!(
            json["00280011"],
            json!({"vr": "UN", "InlineBinary": "QA=="}),
            "does not fit US"
        );
        assert_eq!(json["00280030"]["Value"], json!([0.5, 0.25]));
        assert_eq!(json["00090010"]["vr"], "UN", "private: no dictionary VR");
        assert_eq!(json["00180010"], json!({"vr": "LO"}));
        assert_eq!(promoted.study_instance_uid.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn only_top_level_values_are_promoted() {
        let (_, promoted) = written_in(
            Endianness::Little,
            [
                element(tags::STUDY_INSTANCE_UID, VR::UI, b"1.2.3\0"),
                element(tags::MODALITY, VR::CS, b"MR\\OT "),
                sequence(
                    Tag(0x0008, 0x1200),
                    element(tags::STUDY_INSTANCE_UID, VR::UI, b"9.9.9\0"),
                ),
            ],
        );
        assert_eq!(promoted.study_instance_uid.as_deref(), Some("1.2.3"));
        assert_eq!(promoted.modality.as_deref(), Some("MR\\OT"));
        assert_eq!(promoted.patient_id, None);
    }

    #[test]
    fn tokens_out_of_place_are_refused_rather_than_written_as_broken_json() {
        let start = |tag| {
            Ok(DataToken::SequenceStart {
                tag,
                len: Length::UNDEFINED,
            })
        };
        let item = || {
            Ok(DataToken::ItemStart {
                len: Length::UNDEFINED,
            })
        };
        let in_sequence = [vec![start(Tag(0x0008, 0x1140))], element(DS, VR::DS, b"1")];
        assert_eq!(
            refused(in_sequence),
            "an element out of place in the data set"
        );
        assert_eq!(
            refused([vec![item()]]),
            "an item out of place in the data set"
        );
        let nested = vec![start(Tag(0x0008, 0x1140)), start(Tag(0x0008, 0x1150))];
        assert_eq!(refused([nested]), "a sequence out of place in the data set");
        assert_eq!(
            refused([vec![Ok(DataToken::SequenceEnd)]]),
            "a sequence delimiter out of place in the data set"
        );
        assert_eq!(
            refused([vec![start(Tag(0x0008, 0x1140)), item()]]),
            "file ends inside a sequence"
        );
        assert_eq!(
            refused([vec![Ok(DataToken::PrimitiveValue(PrimitiveValue::Empty))]]),
            "value without an element header"
        );
        assert_eq!(
            refused([element(Tag(0x0008, 0x1140), VR::SQ, b"xx")]),
            "(0008,1140) is a sequence with a primitive value"
        );
    }
}
