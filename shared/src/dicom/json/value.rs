//! Values as the JSON model writes them (PS3.18 F.2): padding left out, person names by
//! component group, DS and IS as numbers, binary numbers in the file's byte order.

use std::borrow::Cow;

use dicom_core::VR;

use super::writer::Json;

pub(super) fn trim_end(mut value: String) -> String {
    let kept = value.trim_end_matches([' ', '\0']).len();
    value.truncate(kept);
    value
}

/// A value that is only padding is no value: PS3.18 F.2.5 leaves `Value` out.
pub(super) fn is_padding(value: &str) -> bool {
    value.trim_matches(['\0', ' ']).is_empty()
}

/// DICOM pads values with spaces or NULs; PostgreSQL refuses NUL in text and in JSON.
pub(super) fn cleaned(value: &str) -> Cow<'_, str> {
    if value.contains('\0') || value.ends_with(' ') {
        Cow::Owned(crate::dicom::clean(value))
    } else {
        Cow::Borrowed(value)
    }
}

/// PN values as objects of their component groups (PS3.18 F.2.2), leaving empty groups out.
pub(super) fn person_names(values: &[String], out: &mut Json) {
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

pub(super) enum Number {
    Int(i64),
    Float(f64),
}

/// DS and IS hold numbers written as text; the JSON model carries them as numbers (Table
/// F.2.3-1). A value that does not parse stays a string rather than being lost; an empty one is
/// null, and a value that is all nulls is left out.
pub(super) fn decimal_strings(
    values: &[String],
    out: &mut Json,
    parse: impl Fn(&str) -> Option<Number>,
) {
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

pub(super) fn trimmed(value: &str) -> &str {
    value.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// Binary numbers of `vr`, already checked to be a whole number of values.
pub(super) fn numbers(vr: VR, bytes: &[u8], big_endian: bool, out: &mut Json) {
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
pub(super) fn wide<T: Copy + itoa::Integer + TryInto<i32>>(n: T, out: &mut Json) {
    out.comma();
    match n.try_into() {
        Ok(small) => out.raw(itoa::Buffer::new().format::<i32>(small)),
        Err(_) => out.string(itoa::Buffer::new().format(n)),
    }
}

/// JSON has no NaN or infinities; they are written as the strings dicom-json uses.
pub(super) fn float(n: f64, out: &mut Json) {
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

#[cfg(test)]
mod tests {
    use dicom_core::{Tag, VR};
    use dicom_dictionary_std::tags;
    use dicom_encoding::Endianness;
    use serde_json::json;

    use crate::dicom::json::testing::*;

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
}
