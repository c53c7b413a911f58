//! Deciding whether an object may be accepted: its length, its integrity, and whether what it is
//! matches what the uploader declared, what its name says, and what its category allows.

use aws_lc_rs::digest::{Context, SHA256};

use crate::integrity::Plan;
use crate::md5::Md5;
use crate::parts::PartsDigest;
use crate::sniff::{self, Preamble};
use crate::{Category, Rejection, category, zip_directory};

/// Hashes computed while the bytes stream past, so no byte is read twice.
pub struct Digests {
    /// aws-lc's SHA-256 (already linked by the AWS SDK) uses the CPU's SHA extensions: about
    /// 1.8 GB/s on one core here, against ~1.2 GB/s for the portable RustCrypto implementation.
    sha256: Context,
    /// Only when the ETag is a plain MD5 and S3 offers no checksum of its own: MD5 is the slowest
    /// digest here, so it is skipped whenever something better already guards the transfer.
    md5: Option<(Md5, [u8; 16])>,
    bytes: u64,
}

/// What the digests found once the stream has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    /// Lowercase hex, as stored on the row.
    pub sha256: String,
    pub bytes: u64,
    /// Which check vouched for the transfer besides the byte count.
    pub integrity: Integrity,
}

pub use crate::integrity::Integrity;

impl Digests {
    /// `etag_md5` is the expected MD5 when it should be verified (see [`plain_md5_etag`]).
    pub fn new(etag_md5: Option<[u8; 16]>) -> Digests {
        Digests {
            sha256: Context::new(&SHA256),
            md5: etag_md5.map(|expected| (Md5::new(), expected)),
            bytes: 0,
        }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.sha256.update(chunk);
        if let Some((md5, _)) = &mut self.md5 {
            md5.update(chunk);
        }
        self.bytes += chunk.len() as u64;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Ends the stream: checks the byte count against the object's length, then decides the
    /// integrity class by the object's [`Plan`], given the part digest when the plan asked for
    /// one.
    pub fn conclude(
        self,
        expected_len: u64,
        plan: &Plan,
        parts: Option<&PartsDigest>,
    ) -> Result<Digested, Rejection> {
        self.conclude_with(expected_len, |sha256, md5| plan.decide(sha256, md5, parts))
    }

    fn conclude_with(
        self,
        expected_len: u64,
        decide: impl FnOnce(&[u8; 32], Option<[u8; 16]>) -> Result<Integrity, Rejection>,
    ) -> Result<Digested, Rejection> {
        if self.bytes != expected_len {
            return Err(Rejection::SizeMismatch {
                expected: expected_len,
                counted: self.bytes,
            });
        }
        let md5 = self.md5.map(|(md5, _)| md5.finalize());
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(self.sha256.finish().as_ref());
        let integrity = decide(&sha256, md5)?;
        Ok(Digested {
            sha256: hex::encode(sha256),
            bytes: self.bytes,
            integrity,
        })
    }
}

/// The MD5 an ETag stands for, when it stands for one: a single-part upload's ETag is the hex MD5
/// of the content (in quotes), a multipart ETag carries a `-N` part count and is not an MD5.
pub fn plain_md5_etag(etag: &str) -> Option<[u8; 16]> {
    let hex_digits = etag.trim_matches('"');
    let mut md5 = [0u8; 16];
    hex::decode_to_slice(hex_digits, &mut md5).ok()?;
    Some(md5)
}

/// Checks the detected type against the declared `Content-Type`, the key's extension and the
/// category's allow-list, in that order, and returns the verified type to store.
///
/// - A declared `application/octet-stream` (or none) says nothing, so the detected type stands.
/// - Parameters (`; charset=utf-8`) and case are ignored; common aliases (`image/jpg`) are equal.
/// - A key with an extension that names a known type must agree with the content. Unknown or
///   missing extensions are not compared: DICOM files are routinely named by UID (`1.2.840…504`)
///   or not at all.
pub fn check_content(
    category: Category,
    key: &str,
    declared: Option<&str>,
    detected: Option<&'static str>,
) -> Result<&'static str, Rejection> {
    let detected = detected.ok_or(Rejection::Unrecognised)?;
    if let Some(declared) = declared.map(normalise_media_type)
        && !declared.is_empty()
        && !SAYS_NOTHING.contains(&declared.as_str())
        && declared != detected
    {
        return Err(Rejection::DeclaredMismatch {
            declared,
            detected: detected.to_owned(),
        });
    }
    if let Some(extension) = extension(key)
        && let Some(expected) = type_of_extension(&extension)
        && expected != detected
    {
        return Err(Rejection::ExtensionMismatch {
            extension,
            detected: detected.to_owned(),
        });
    }
    if !category.allows(detected) {
        return Err(Rejection::NotAllowed {
            detected: detected.to_owned(),
            category,
        });
    }
    Ok(detected)
}

/// Checks that the content is only what it was detected as. A DICOM file's preamble must carry
/// no other format's signature ([`sniff::preamble`]). A zip-based document is judged twice, as
/// each kind of reader sees it: by its local headers within `prefix` (what streaming readers
/// trust) and by its central directory within `tail`, the object's last bytes (what Office and
/// most libraries trust), which must also agree with each other ([`zip_directory::check`]).
pub fn check_structure(
    content_type: &str,
    prefix: &[u8],
    tail: &[u8],
    object_len: u64,
) -> Result<(), Rejection> {
    match content_type {
        category::DICOM => match sniff::preamble(prefix) {
            Preamble::Foreign(signature) => Err(Rejection::ForeignPreamble { signature }),
            Preamble::Zeros | Preamble::Tiff | Preamble::Unrecognised => Ok(()),
        },
        category::DOCX | category::XLSX | category::PPTX => {
            check_archive(prefix)?;
            zip_directory::check(prefix, tail, object_len)
        }
        _ => Ok(()),
    }
}

/// Whether the stream's last [`ZIP_TAIL_LEN`] bytes must be kept for [`check_structure`].
pub fn needs_tail(detected: Option<&str>) -> bool {
    matches!(
        detected,
        Some(category::DOCX | category::XLSX | category::PPTX)
    )
}

/// How much of a zip-based document's end is kept for its central directory. A directory
/// entry takes 46 bytes plus its name, so 1 MiB holds over ten thousand entries: far more than
/// Office writes (a document with a few hundred images has a few hundred entries). A larger
/// directory is refused ([`Rejection::ArchiveDirectoryTooLarge`]) rather than trusted unread.
pub const ZIP_TAIL_LEN: usize = 1 << 20;

/// Office documents are zip archives that readers will inflate. An entry whose declared size is
/// more than this many times its compressed size, and above [`ZIP_BOMB_MIN_BYTES`], is refused;
/// so is an archive whose entries together expand past both against the object's length.
/// Ordinary documents compress XML perhaps 10–30×.
pub const ZIP_BOMB_RATIO: u64 = 200;
pub const ZIP_BOMB_MIN_BYTES: u64 = 100 << 20;

/// Looks at the zip local file headers within `prefix` (the object is never inflated) and
/// refuses an entry that would expand like a zip bomb. Entries whose sizes are deferred to a
/// data descriptor cannot be judged from here: the central directory's sizes judge them.
pub fn check_archive(prefix: &[u8]) -> Result<(), Rejection> {
    let mut at = 0;
    while let Some(header) = prefix.get(at..at + 30) {
        if header[..4] != *b"PK\x03\x04" {
            break;
        }
        let u16_at = |i: usize| u64::from(u16::from_le_bytes([header[i], header[i + 1]]));
        let u32_at = |i: usize| {
            u64::from(u32::from_le_bytes([
                header[i],
                header[i + 1],
                header[i + 2],
                header[i + 3],
            ]))
        };
        let (compressed, uncompressed) = (u32_at(18), u32_at(22));
        let (name_len, extra_len) = (u16_at(26) as usize, u16_at(28) as usize);
        let name = prefix.get(at + 30..at + 30 + name_len).unwrap_or_default();
        if uncompressed > ZIP_BOMB_MIN_BYTES
            && uncompressed > compressed.saturating_mul(ZIP_BOMB_RATIO)
        {
            return Err(Rejection::ZipBomb {
                entry: zip_directory::entry_name(name),
                ratio: uncompressed / compressed.max(1),
                uncompressed,
            });
        }
        at += 30 + name_len + extra_len + compressed as usize;
    }
    Ok(())
}

/// Declared types that make no claim: browsers send `application/octet-stream` for unknown
/// files, and S3 stores `binary/octet-stream` when the upload named no type at all.
const SAYS_NOTHING: &[&str] = &["application/octet-stream", "binary/octet-stream"];

/// Lowercase, without parameters, with aliases folded into the canonical names.
pub fn normalise_media_type(value: &str) -> String {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "image/jpg" | "image/pjpeg" => category::JPEG.to_owned(),
        "image/x-png" => category::PNG.to_owned(),
        "image/tif" => category::TIFF.to_owned(),
        "application/x-pdf" => category::PDF.to_owned(),
        _ => essence,
    }
}

/// The lowercase extension of the key's last segment, if it has one.
fn extension(key: &str) -> Option<String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let (stem, extension) = name.rsplit_once('.')?;
    (!stem.is_empty() && !extension.is_empty()).then(|| extension.to_ascii_lowercase())
}

fn type_of_extension(extension: &str) -> Option<&'static str> {
    Some(match extension {
        "dcm" | "dicom" => category::DICOM,
        "pdf" => category::PDF,
        "jpg" | "jpeg" | "jpe" | "jfif" => category::JPEG,
        "png" => category::PNG,
        "tif" | "tiff" => category::TIFF,
        "gif" => category::GIF,
        "webp" => category::WEBP,
        "txt" | "text" => category::TEXT,
        "docx" => category::DOCX,
        "xlsx" => category::XLSX,
        "pptx" => category::PPTX,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::{DICOM, JPEG, PDF, PNG, TEXT};

    #[test]
    fn octet_stream_takes_the_detected_type() {
        assert_eq!(
            check_content(
                Category::Medical,
                "medical/x.pdf",
                Some("application/octet-stream"),
                Some(PDF)
            ),
            Ok(PDF)
        );
        assert_eq!(
            check_content(Category::Medical, "medical/IM0001", None, Some(DICOM)),
            Ok(DICOM)
        );
    }

    #[test]
    fn a_declared_type_must_match_the_content() {
        assert_eq!(
            check_content(
                Category::Medical,
                "medical/scan",
                Some("application/pdf"),
                Some(PNG)
            )
            .unwrap_err()
            .to_string(),
            "declared application/pdf but content is image/png"
        );
        assert_eq!(
            check_content(
                Category::Images,
                "images/a.jpg",
                Some("Image/JPG; q=1"),
                Some(JPEG)
            ),
            Ok(JPEG)
        );
        assert_eq!(
            check_content(
                Category::Reports,
                "reports/a.txt",
                Some("text/plain; charset=utf-8"),
                Some(TEXT)
            ),
            Ok(TEXT)
        );
    }

    #[test]
    fn a_known_extension_must_match_the_content() {
        assert_eq!(
            check_content(Category::Medical, "medical/report.PDF", None, Some(PNG))
                .unwrap_err()
                .to_string(),
            "extension .pdf does not match content image/png"
        );
        assert_eq!(
            check_content(
                Category::Medical,
                "medical/1.2.840.113619.2.55.504",
                None,
                Some(DICOM)
            ),
            Ok(DICOM),
            "UID-named DICOM files have no meaningful extension"
        );
        assert_eq!(
            check_content(Category::Medical, "medical/.pdf", None, Some(PNG)),
            Ok(PNG)
        );
    }

    #[test]
    fn the_category_must_allow_the_content() {
        assert_eq!(
            check_content(
                Category::Prescriptions,
                "prescriptions/a.dcm",
                None,
                Some(DICOM)
            )
            .unwrap_err()
            .to_string(),
            "application/dicom is not allowed in category prescriptions"
        );
        assert_eq!(
            check_content(Category::Other, "x/a.zip", None, Some("application/zip")).unwrap_err(),
            Rejection::NotAllowed {
                detected: "application/zip".into(),
                category: Category::Other
            }
        );
        assert_eq!(
            check_content(Category::Other, "x/a", None, None),
            Err(Rejection::Unrecognised)
        );
    }

    #[test]
    fn digests_count_hash_and_check_md5() {
        let etag = |etag: &str| crate::integrity::Offered {
            etag: Some(etag.into()),
            etag_is_md5: true,
            ..Default::default()
        };
        let plan = Plan::new(&etag("\"5d41402abc4b2a76b9719d911017c592\"")).unwrap(); // "hello"
        let mut digests = Digests::new(plan.etag_md5());
        digests.update(b"hel");
        digests.update(b"lo");
        let done = digests.conclude(5, &plan, None).unwrap();
        assert_eq!(
            done.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(done.integrity, Integrity::EtagMd5);

        let mut digests = Digests::new(plan.etag_md5());
        digests.update(b"jello");
        assert!(matches!(
            digests.conclude(5, &plan, None),
            Err(Rejection::Md5Mismatch { .. })
        ));

        let full = Plan::new(&crate::integrity::Offered {
            full: Some(crate::integrity::FullChecksum::Crc64Nvme),
            ..etag("\"5d41402abc4b2a76b9719d911017c592\"")
        })
        .unwrap();
        assert_eq!(full.etag_md5(), None, "no MD5 beside S3's checksum");
        let mut digests = Digests::new(full.etag_md5());
        digests.update(b"jello");
        assert_eq!(
            digests.conclude(5, &full, None).unwrap().integrity,
            Integrity::S3Checksum(crate::integrity::FullChecksum::Crc64Nvme),
            "S3's checksum, validated by the SDK, supersedes the ETag"
        );
    }

    #[test]
    fn digests_conclude_by_the_plan_after_the_length() {
        let offered = crate::integrity::Offered {
            etag: Some("\"5d41402abc4b2a76b9719d911017c592\"".into()),
            etag_is_md5: true,
            ..Default::default()
        };
        let plan = Plan::new(&offered).unwrap();
        let mut digests = Digests::new(plan.etag_md5());
        digests.update(b"hello");
        assert_eq!(
            digests.conclude(5, &plan, None).unwrap().integrity.as_str(),
            "md5-etag:s3"
        );
        let mut digests = Digests::new(plan.etag_md5());
        digests.update(b"hell");
        assert_eq!(
            digests.conclude(5, &plan, None).unwrap_err().label(),
            "size_mismatch",
            "the length is checked first"
        );
    }

    #[test]
    fn zip_entries_that_expand_like_bombs_are_refused() {
        let entry = crate::fixtures::zip_entry;
        let mut normal = entry("[Content_Types].xml", 400, 1_500);
        normal.extend(entry("word/document.xml", 9_000, 90_000));
        assert_eq!(check_archive(&normal), Ok(()));
        let mut bomb = entry("[Content_Types].xml", 400, 1_500);
        bomb.extend(entry("word/document.xml", 4_000, 4_000_000_000));
        assert_eq!(
            check_archive(&bomb).unwrap_err().to_string(),
            "archive entry word/document.xml expands 1000000x to 4000000000 bytes: refused as a possible zip bomb"
        );
        assert_eq!(check_archive(b"not a zip"), Ok(()));
    }

    #[test]
    fn only_single_part_etags_are_md5s() {
        assert!(plain_md5_etag("5d41402abc4b2a76b9719d911017c592").is_some());
        assert!(plain_md5_etag("\"5d41402abc4b2a76b9719d911017c592-3\"").is_none());
        assert!(plain_md5_etag("\"zz41402abc4b2a76b9719d911017c592\"").is_none());
        assert!(plain_md5_etag("").is_none());
    }
}
