//! Text in the data set's character set, with fast paths for ASCII, Latin-1 and UTF-8: the
//! `encoding` crate behind dicom-encoding decodes a character at a time.

use dicom_encoding::text::{SpecificCharacterSet, TextCodec};

use super::element::{Element, Values};
use crate::dicom::{Budget, Unreadable, because};

/// The data set's character set, as set by Specific Character Set (0008,0005).
pub(super) struct Charset {
    codec: SpecificCharacterSet,
    fast: Fast,
}

/// How text in a character set can be decoded without its codec.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Fast {
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
    pub(super) fn named(element: &Element) -> Option<Charset> {
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
    pub(super) fn decode(&self, bytes: &[u8], budget: &Budget) -> Result<String, Unreadable> {
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

#[cfg(test)]
mod tests {
    use dicom_core::{Tag, VR};
    use dicom_dictionary_std::tags;
    use dicom_parser::dataset::DataToken;

    use crate::dicom::json::raw;
    use crate::dicom::json::testing::*;

    use super::*;

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
}
