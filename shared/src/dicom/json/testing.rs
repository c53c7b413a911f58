//! Token streams for the tests of each level: what dicom-parser would hand the writer.

use dicom_core::header::DataElementHeader;
use dicom_core::{Length, PrimitiveValue, Tag, VR};
use dicom_encoding::Endianness;
use dicom_parser::dataset::DataToken;
use dicom_parser::dataset::read::Error;
use serde_json::Value;

use super::{Promoted, write};
use crate::dicom::{Budget, Unreadable};

pub(super) type Token = Result<DataToken, Error>;

pub(super) fn element(tag: Tag, vr: VR, bytes: &[u8]) -> Vec<Token> {
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
pub(super) fn sequence(tag: Tag, inside: Vec<Token>) -> Vec<Token> {
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

pub(super) fn written_in(
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

pub(super) fn written(parts: impl IntoIterator<Item = Vec<Token>>) -> Value {
    written_in(Endianness::Little, parts).0
}

pub(super) fn refused(parts: impl IntoIterator<Item = Vec<Token>>) -> String {
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

/// A DS attribute (Pixel Bandwidth).
pub(super) const DS: Tag = Tag(0x0018, 0x0080);
