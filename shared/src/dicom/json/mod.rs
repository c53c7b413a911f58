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
//!
//! By level: this module walks the token stream (sequences, items, the pixels it stops at);
//! [`element`] decodes one element's VR and values; [`value`] formats values as JSON;
//! [`charset`] decodes text in the data set's character set; [`writer`] writes and escapes the
//! JSON text under the budget.

mod charset;
mod element;
#[cfg(test)]
mod testing;
mod value;
mod writer;

use std::borrow::Cow;

use dicom_core::{PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::Endianness;
use dicom_parser::dataset::DataToken;

use self::charset::Charset;
use self::element::{Element, Values, first_u16, is_us_or_ss};
use self::writer::Json;
use super::{Budget, FIRST_PIXEL_TAG, MAX_SEQUENCE_DEPTH, Unreadable, because};

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

#[cfg(test)]
mod tests {
    use dicom_core::{Length, Tag, VR};
    use dicom_encoding::Endianness;
    use serde_json::json;

    use super::element::SLOT;
    use crate::dicom::MAX_INLINE_BINARY;
    use crate::dicom::json::testing::*;

    use super::*;

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
