//! One element: its VR (the dictionary's for a standard attribute stored as UN, SS for pixel
//! values once the pixels are signed) and its values, decoded as dicom-parser would, with the
//! length each VR allows.

use std::borrow::Cow;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use super::charset::Charset;
use super::value::{Number, cleaned, decimal_strings, is_padding, numbers, person_names, trim_end};
use super::writer::Json;
use crate::Rejection;
use crate::dicom::{Budget, MAX_INLINE_BINARY, Unreadable};

/// An element's VR and values, decoded as dicom-parser would decode them.
pub(super) struct Element<'a> {
    pub(super) vr: VR,
    pub(super) values: Values<'a>,
}

pub(super) enum Values<'a> {
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
    pub(super) fn decode(
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
    pub(super) fn check_lengths(&self, tag: Tag) -> Result<(), Unreadable> {
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
    pub(super) fn from_un(
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
    pub(super) fn write(&self, tag: Tag, out: &mut Json) -> Result<(), Unreadable> {
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
pub(super) fn is_us_or_ss(tag: Tag) -> bool {
    StandardDataDictionary
        .by_tag(tag)
        .is_some_and(|entry| entry.vr() == VirtualVr::Xs)
}

pub(super) fn first_u16(bytes: &[u8], big_endian: bool) -> Option<u16> {
    let (first, _) = bytes.split_first_chunk::<2>()?;
    Some(if big_endian {
        u16::from_be_bytes(*first)
    } else {
        u16::from_le_bytes(*first)
    })
}

/// The dictionary VR of a standard attribute read as UN, if it has exactly one.
pub(super) fn dictionary_vr(tag: Tag, vr: VR) -> Option<VR> {
    if vr != VR::UN || !tag.group().is_multiple_of(2) {
        return None;
    }
    match StandardDataDictionary.by_tag(tag)?.vr() {
        VirtualVr::Exact(known) => Some(known),
        _ => None,
    }
}

pub(super) fn width(vr: VR) -> usize {
    match vr {
        VR::SS | VR::US | VR::OW => 2,
        VR::FD | VR::SV | VR::UV | VR::OD | VR::OV => 8,
        _ => 4,
    }
}

/// What one text value costs besides its bytes: its `String` in the element's list. An empty
/// value has no bytes, so without this a header of backslashes would cost nothing per value.
pub(super) const SLOT: u64 = std::mem::size_of::<String>() as u64;

pub(super) fn count_values(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\\').count() + 1
}

/// Multi-valued text: values split on `\` in the encoded bytes (no character set in DICOM uses
/// that byte inside a character), each decoded and stripped of its trailing padding. The list is
/// charged for all its slots before it is made, and made at that size.
pub(super) fn split(
    bytes: &[u8],
    text: &Charset,
    budget: &Budget,
) -> Result<Vec<String>, Unreadable> {
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
pub(super) fn max_chars(vr: VR) -> Option<usize> {
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

#[cfg(test)]
mod tests {
    use dicom_core::{Tag, VR};
    use dicom_dictionary_std::tags;
    use dicom_encoding::Endianness;
    use serde_json::json;

    use crate::dicom::json::testing::*;

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
}
