//! Sample objects built in code, so tests and the demo need no binary files in the repository:
//! DICOM Part 10 files in every transfer syntax the worker reads, and minimal PDF, PNG and JPEG.

use dicom_core::value::{DataSetSequence, PixelFragmentSequence};
use dicom_core::{DataElement, DicomValue, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// Every transfer syntax the pipeline promises to read, with whether its pixels are encapsulated.
pub const TRANSFER_SYNTAXES: &[(&str, bool)] = &[
    (uids::IMPLICIT_VR_LITTLE_ENDIAN, false),
    (uids::EXPLICIT_VR_LITTLE_ENDIAN, false),
    ("1.2.840.10008.1.2.2", false), // Explicit VR Big Endian: retired, still in archives
    (uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, false),
    (uids::JPEG_BASELINE8_BIT, true),
    (uids::JPEG_LOSSLESS_SV1, true),
    (uids::JPEG2000_LOSSLESS, true),
    (uids::JPEG2000, true),
    (uids::RLE_LOSSLESS, true),
];

/// A small CT-like image. Field values are chosen by the test; the defaults are fake identities.
#[derive(Debug, Clone)]
pub struct SampleDicom {
    pub transfer_syntax: String,
    pub study_instance_uid: Option<String>,
    pub series_instance_uid: String,
    pub sop_instance_uid: Option<String>,
    pub patient_name: String,
    pub patient_id: String,
    pub patient_birth_date: String,
    pub study_date: String,
    pub modality: String,
    /// Bytes of pixel data (native) or of the single fragment (encapsulated).
    pub pixel_bytes: usize,
}

impl Default for SampleDicom {
    fn default() -> Self {
        SampleDicom {
            transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.to_owned(),
            study_instance_uid: Some("1.2.826.0.1.3680043.8.498.1".to_owned()),
            series_instance_uid: "1.2.826.0.1.3680043.8.498.1.1".to_owned(),
            sop_instance_uid: Some("1.2.826.0.1.3680043.8.498.1.1.1".to_owned()),
            patient_name: "Doe^Jane".to_owned(),
            patient_id: "PAT-0001".to_owned(),
            patient_birth_date: "19700101".to_owned(),
            study_date: "20260115".to_owned(),
            modality: "CT".to_owned(),
            pixel_bytes: 64 * 64 * 2,
        }
    }
}

/// Size of the private binary value that must be left out of the JSON (above 1 KiB).
pub const LARGE_PRIVATE_BINARY: usize = 2000;

impl SampleDicom {
    pub fn with_transfer_syntax(transfer_syntax: &str) -> SampleDicom {
        SampleDicom {
            transfer_syntax: transfer_syntax.to_owned(),
            ..SampleDicom::default()
        }
    }

    /// The complete Part 10 file: preamble, `DICM`, meta group, data set.
    pub fn to_bytes(&self) -> Vec<u8> {
        let encapsulated = TRANSFER_SYNTAXES
            .iter()
            .any(|(ts, encapsulated)| *ts == self.transfer_syntax && *encapsulated);
        let mut object = InMemDicomObject::new_empty();
        let mut put = |tag, vr, value: &str| {
            object.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
        };
        put(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        put(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE);
        if let Some(uid) = &self.sop_instance_uid {
            put(tags::SOP_INSTANCE_UID, VR::UI, uid);
        }
        put(tags::STUDY_DATE, VR::DA, &self.study_date);
        put(tags::MODALITY, VR::CS, &self.modality);
        put(tags::PATIENT_NAME, VR::PN, &self.patient_name);
        put(tags::PATIENT_ID, VR::LO, &self.patient_id);
        put(tags::PATIENT_BIRTH_DATE, VR::DA, &self.patient_birth_date);
        if let Some(uid) = &self.study_instance_uid {
            put(tags::STUDY_INSTANCE_UID, VR::UI, uid);
        }
        put(tags::SERIES_INSTANCE_UID, VR::UI, &self.series_instance_uid);
        put(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
        object.put(DataElement::new(
            tags::REFERENCED_IMAGE_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![InMemDicomObject::from_element_iter([
                DataElement::new(
                    tags::REFERENCED_SOP_CLASS_UID,
                    VR::UI,
                    PrimitiveValue::from(uids::CT_IMAGE_STORAGE),
                ),
                DataElement::new(
                    tags::REFERENCED_SOP_INSTANCE_UID,
                    VR::UI,
                    PrimitiveValue::from("1.2.826.0.1.3680043.8.498.9"),
                ),
            ])]),
        ));
        object.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(64_u16),
        ));
        object.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            PrimitiveValue::from(64_u16),
        ));
        object.put(DataElement::new(
            tags::BITS_ALLOCATED,
            VR::US,
            PrimitiveValue::from(16_u16),
        ));
        object.put(DataElement::new(
            dicom_core::Tag(0x0009, 0x0010),
            VR::LO,
            PrimitiveValue::from("DOCWORKER TEST"),
        ));
        object.put(DataElement::new(
            dicom_core::Tag(0x0009, 0x1001),
            VR::OB,
            PrimitiveValue::from(vec![0xAB_u8; LARGE_PRIVATE_BINARY]),
        ));
        object.put(DataElement::new(
            dicom_core::Tag(0x0009, 0x1002),
            VR::OB,
            PrimitiveValue::from(vec![1_u8, 2, 3, 4]),
        ));
        let pixels: Vec<u8> = (0..self.pixel_bytes).map(|i| (i % 251) as u8).collect();
        if encapsulated {
            object.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                DicomValue::PixelSequence(PixelFragmentSequence::new_fragments(vec![pixels])),
            ));
        } else {
            object.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::from(pixels),
            ));
        }
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(self.transfer_syntax.as_str())
            .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
            .media_storage_sop_instance_uid(
                self.sop_instance_uid
                    .as_deref()
                    .unwrap_or("1.2.826.0.1.3680043.8.498.0"),
            );
        let file = object.with_meta(meta).expect("complete file meta group");
        let mut bytes = Vec::new();
        file.write_all(&mut bytes).expect("writing to memory");
        bytes
    }
}

/// The EICAR test file: harmless, and detected by every antivirus as if it were malware (the
/// local clamd's signatures in `infra/local/clamav/` match it alone and embedded).
pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// A minimal, well-formed one-page PDF.
pub fn pdf() -> Vec<u8> {
    let body = "%PDF-1.4\n%\u{e2}\u{e3}\u{cf}\u{d3}\n\
        1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
        2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
        3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj\n\
        trailer << /Root 1 0 R >>\n%%EOF\n";
    body.as_bytes().to_vec()
}

/// A 1×1 PNG.
pub fn png() -> Vec<u8> {
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    PNG.to_vec()
}

/// The start of a JFIF JPEG: enough for any signature check, with an end-of-image marker.
pub fn jpeg() -> Vec<u8> {
    let mut bytes = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00,
    ];
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

/// One zip local file entry (deflate method) followed by `compressed` filler bytes: enough for
/// signature checks and for the zip-bomb check, which read only local headers.
pub fn zip_entry(name: &str, compressed: u32, uncompressed: u32) -> Vec<u8> {
    let mut out = b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
    out.extend_from_slice(&compressed.to_le_bytes());
    out.extend_from_slice(&uncompressed.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend(std::iter::repeat_n(b'x', compressed as usize));
    out
}

/// Hostile DICOM files, each the worst of its kind for the header's memory budget: built as raw
/// bytes, since no well-behaved writer makes them.
pub mod hostile {
    use std::io::Write;

    use dicom_dictionary_std::uids;
    use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
    use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

    use super::SampleDicom;

    /// One explicit VR little endian element, with the 4-byte length where the VR has one.
    pub fn element(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + value.len());
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(vr);
        let long = matches!(
            vr,
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
        if long {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(value);
        out
    }

    /// The UIDs a header needs to be accepted, so that only the hostile part can refuse it.
    pub fn identity() -> Vec<u8> {
        let mut out = element(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0");
        out.extend(element(
            0x0008,
            0x0018,
            b"UI",
            b"1.2.826.0.1.3680043.8.498.2",
        ));
        out.extend(element(
            0x0020,
            0x000D,
            b"UI",
            b"1.2.826.0.1.3680043.8.498.3",
        ));
        out
    }

    /// A Part 10 file in `transfer_syntax` (explicit VR, little endian or deflated) whose data set
    /// is `identity()` followed by what `rest` writes. `rest` streams, so a bomb is never held
    /// inflated.
    pub fn file(transfer_syntax: &str, rest: impl FnOnce(&mut dyn Write)) -> Vec<u8> {
        let sample = SampleDicom::with_transfer_syntax(transfer_syntax).to_bytes();
        let group = u32::from_le_bytes(sample[140..144].try_into().expect("4 bytes")) as usize;
        let mut bytes = sample[..144 + group].to_vec();
        let ts = TransferSyntaxRegistry
            .get(transfer_syntax)
            .expect("a known transfer syntax");
        match ts.codec() {
            Codec::Dataset(Some(adapter)) => {
                let mut writer = adapter.adapt_writer(Box::new(&mut bytes));
                writer.write_all(&identity()).expect("to memory");
                rest(&mut writer);
                writer.flush().expect("to memory");
            }
            _ => {
                bytes.extend(identity());
                rest(&mut bytes);
            }
        }
        bytes
    }

    /// The case: one multi-valued element (UC, whose length has 4 bytes) made only of
    /// `\`, `bytes` of them: as many empty values, each a `String` and a JSON `""` to a reader
    /// that charges only the bytes.
    pub fn empty_values(bytes: usize) -> Vec<u8> {
        file(uids::EXPLICIT_VR_LITTLE_ENDIAN, |out| {
            out.write_all(&element(0x0009, 0x1010, b"UC", &vec![b'\\'; bytes]))
                .expect("to memory");
        })
    }

    /// The same, as a standard DS attribute stored as UN: read with its dictionary VR, each empty
    /// value becomes `null` in the JSON. Contour Data (3006,0050) is DS with any number of values.
    pub fn empty_values_as_un(bytes: usize) -> Vec<u8> {
        file(uids::EXPLICIT_VR_LITTLE_ENDIAN, |out| {
            out.write_all(&element(0x3006, 0x0050, b"UN", &vec![b'\\'; bytes]))
                .expect("to memory");
        })
    }

    /// A deflated file whose data set repeats `one` (an element's bytes) `count` times: a few
    /// hundred times smaller than inflated.
    pub fn deflated(one: &[u8], count: usize) -> Vec<u8> {
        file(uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, |out| {
            let per_block = (64 << 10) / one.len().max(1) + 1;
            let block = one.repeat(per_block.min(count));
            let mut left = count;
            while left >= per_block {
                out.write_all(&block).expect("to memory");
                left -= per_block;
            }
            out.write_all(&one.repeat(left)).expect("to memory");
        })
    }

    /// A deflate bomb: `count` empty private LO elements, 8 bytes each and about 24 of JSON.
    pub fn empty_elements_deflated(count: usize) -> Vec<u8> {
        deflated(&element(0x0009, 0x1010, b"LO", b""), count)
    }

    /// A UT value of `bytes` control characters: each becomes `\u0001` (six bytes) in the JSON.
    pub fn escaped_text(bytes: usize) -> Vec<u8> {
        file(uids::EXPLICIT_VR_LITTLE_ENDIAN, |out| {
            out.write_all(&element(0x0040, 0xA160, b"UT", &vec![1u8; bytes]))
                .expect("to memory");
        })
    }

    /// A file whose Study Instance UID is `len` digits: past the 64 a UI value may have.
    pub fn long_study_uid(len: usize) -> Vec<u8> {
        let mut uid = vec![b'1'; len];
        if len % 2 == 1 {
            uid.push(0);
        }
        let mut bytes = SampleDicom::default().to_bytes();
        let group = u32::from_le_bytes(bytes[140..144].try_into().expect("4 bytes")) as usize;
        bytes.truncate(144 + group);
        bytes.extend(element(
            0x0008,
            0x0018,
            b"UI",
            b"1.2.826.0.1.3680043.8.498.2",
        ));
        bytes.extend(element(0x0020, 0x000D, b"UI", &uid));
        bytes
    }
}

/// One entry of a [`ZipArchive`]: `stored` filler bytes stand for its compressed data.
#[derive(Debug, Clone)]
pub struct ZipMember {
    pub name: String,
    pub stored: u32,
    /// The uncompressed size both headers declare (the central directory only, with a data
    /// descriptor).
    pub uncompressed: u64,
    /// Sizes deferred to a data descriptor after the data: the local header's are zero.
    pub data_descriptor: bool,
    /// Sizes and offset in ZIP64 extra fields, with the 32-bit fields set to 0xFFFFFFFF.
    pub zip64: bool,
}

impl ZipMember {
    pub fn new(name: &str, stored: u32, uncompressed: u64) -> ZipMember {
        ZipMember {
            name: name.to_owned(),
            stored,
            uncompressed,
            data_descriptor: false,
            zip64: false,
        }
    }
}

/// A complete zip archive (local headers, data, central directory, end records) whose declared
/// sizes are chosen by the test: nothing in it is really compressed.
#[derive(Debug, Clone, Default)]
pub struct ZipArchive {
    pub members: Vec<ZipMember>,
    /// Written after the end of central directory record.
    pub comment: Vec<u8>,
    /// Writes the ZIP64 end record and locator, with sentinels in the classic record.
    pub zip64_end: bool,
}

impl ZipArchive {
    /// The members an Office document starts with, word-processing kind.
    pub fn docx() -> ZipArchive {
        ZipArchive {
            members: vec![
                ZipMember::new("[Content_Types].xml", 400, 1_500),
                ZipMember::new("_rels/.rels", 200, 600),
                ZipMember::new("word/document.xml", 3_000, 30_000),
                ZipMember::new("word/_rels/document.xml.rels", 200, 800),
            ],
            ..ZipArchive::default()
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let max32 = u32::MAX.to_le_bytes();
        let mut out = Vec::new();
        let mut central = Vec::new();
        for member in &self.members {
            let offset = out.len() as u64;
            let version: u16 = if member.zip64 { 45 } else { 20 };
            let flags: u16 = if member.data_descriptor { 8 } else { 0 };
            let name = member.name.as_bytes();
            let sizes32 = |value: u64| -> [u8; 4] {
                if member.zip64 {
                    max32
                } else {
                    (value as u32).to_le_bytes()
                }
            };
            // Local header.
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&version.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&8u16.to_le_bytes());
            out.extend_from_slice(&[0; 8]); // time, date, CRC-32
            let local_zip64 = member.zip64 && !member.data_descriptor;
            if member.data_descriptor {
                out.extend_from_slice(&[0; 8]);
            } else {
                out.extend_from_slice(&sizes32(u64::from(member.stored)));
                out.extend_from_slice(&sizes32(member.uncompressed));
            }
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&(if local_zip64 { 20u16 } else { 0 }).to_le_bytes());
            out.extend_from_slice(name);
            if local_zip64 {
                out.extend_from_slice(&1u16.to_le_bytes());
                out.extend_from_slice(&16u16.to_le_bytes());
                out.extend_from_slice(&member.uncompressed.to_le_bytes());
                out.extend_from_slice(&u64::from(member.stored).to_le_bytes());
            }
            out.extend(std::iter::repeat_n(b'x', member.stored as usize));
            if member.data_descriptor {
                out.extend_from_slice(b"PK\x07\x08\0\0\0\0");
                if member.zip64 {
                    out.extend_from_slice(&u64::from(member.stored).to_le_bytes());
                    out.extend_from_slice(&member.uncompressed.to_le_bytes());
                } else {
                    out.extend_from_slice(&member.stored.to_le_bytes());
                    out.extend_from_slice(&(member.uncompressed as u32).to_le_bytes());
                }
            }
            // Central directory entry.
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&version.to_le_bytes());
            central.extend_from_slice(&version.to_le_bytes());
            central.extend_from_slice(&flags.to_le_bytes());
            central.extend_from_slice(&8u16.to_le_bytes());
            central.extend_from_slice(&[0; 8]);
            central.extend_from_slice(&sizes32(u64::from(member.stored)));
            central.extend_from_slice(&sizes32(member.uncompressed));
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&(if member.zip64 { 28u16 } else { 0 }).to_le_bytes());
            central.extend_from_slice(&[0; 10]); // comment length, disk, attributes
            central.extend_from_slice(&sizes32(offset));
            central.extend_from_slice(name);
            if member.zip64 {
                central.extend_from_slice(&1u16.to_le_bytes());
                central.extend_from_slice(&24u16.to_le_bytes());
                central.extend_from_slice(&member.uncompressed.to_le_bytes());
                central.extend_from_slice(&u64::from(member.stored).to_le_bytes());
                central.extend_from_slice(&offset.to_le_bytes());
            }
        }
        let directory_offset = out.len() as u64;
        let directory_size = central.len() as u64;
        let entries = self.members.len() as u64;
        out.extend(central);
        if self.zip64_end {
            let record = out.len() as u64;
            out.extend_from_slice(b"PK\x06\x06");
            out.extend_from_slice(&44u64.to_le_bytes());
            out.extend_from_slice(&45u16.to_le_bytes());
            out.extend_from_slice(&45u16.to_le_bytes());
            out.extend_from_slice(&[0; 8]); // disk numbers
            out.extend_from_slice(&entries.to_le_bytes());
            out.extend_from_slice(&entries.to_le_bytes());
            out.extend_from_slice(&directory_size.to_le_bytes());
            out.extend_from_slice(&directory_offset.to_le_bytes());
            out.extend_from_slice(b"PK\x06\x07\0\0\0\0");
            out.extend_from_slice(&record.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        if self.zip64_end {
            out.extend_from_slice(&[0xFF; 4]);
            out.extend_from_slice(&max32);
            out.extend_from_slice(&max32);
        } else {
            out.extend_from_slice(&(entries as u16).to_le_bytes());
            out.extend_from_slice(&(entries as u16).to_le_bytes());
            out.extend_from_slice(&(directory_size as u32).to_le_bytes());
            out.extend_from_slice(&(directory_offset as u32).to_le_bytes());
        }
        out.extend_from_slice(&(self.comment.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.comment);
        out
    }
}
