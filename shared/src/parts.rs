//! Multipart uploads: the part layout, per-part digests computed while the object streams, and
//! the two values S3 derives from the parts that can be checked against them — the multipart
//! ETag (`md5(concat(part MD5s))-N`) and a `COMPOSITE` checksum
//! (`base64(checksum(concat(part checksums)))-N`).
//!
//! S3 keeps neither the part boundaries nor the part digests of a finished upload where a reader
//! of the object can see them, except one part's length at a time (`HeadObject` with
//! `PartNumber`). So the digester is given a layout, learnt from the first and the last part when
//! the uploader used one part size, and cuts the stream into parts as the chunks go past: a
//! chunk may end a part and begin the next one. Each finished part's digest is folded into the
//! outer digest at once, so memory stays flat whatever the part count (up to 10 000).

use aws_lc_rs::digest::{self, Context};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::md5::Md5;

/// S3's limit on the parts of one upload.
pub const MAX_PARTS: u32 = 10_000;

/// How an object's bytes were cut into parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLayout {
    lengths: Lengths,
    total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Lengths {
    /// Every part but the last has `size` bytes: what every common uploader does (the AWS CLI
    /// and SDKs use 8 MiB by default, Uppy and browser uploaders a fixed chunk size).
    Uniform { size: u64, count: u32 },
    /// Each part's length, learnt one `HeadObject` at a time.
    Listed(Vec<u64>),
}

impl PartLayout {
    /// The layout a uniform part size gives, from the lengths of the first and the last part;
    /// `None` when those cannot come from one part size (the parts are uneven, and every part's
    /// length must be learnt).
    pub fn uniform(total: u64, count: u32, first: u64, last: u64) -> Option<PartLayout> {
        if count == 0 || count > MAX_PARTS || first == 0 || last == 0 || last > first {
            return None;
        }
        let before_last = first.checked_mul(u64::from(count - 1))?;
        (before_last.checked_add(last)? == total && (count > 1 || first == last)).then_some(
            PartLayout {
                lengths: Lengths::Uniform { size: first, count },
                total,
            },
        )
    }

    /// The layout of parts whose every length is known, in part order; `None` when they cannot
    /// be an upload of `total` bytes.
    pub fn listed(total: u64, lengths: Vec<u64>) -> Option<PartLayout> {
        let count_ok = !lengths.is_empty() && lengths.len() <= MAX_PARTS as usize;
        let sum = lengths
            .iter()
            .try_fold(0u64, |sum, &length| sum.checked_add(length));
        (count_ok && !lengths.contains(&0) && sum == Some(total)).then_some(PartLayout {
            lengths: Lengths::Listed(lengths),
            total,
        })
    }

    pub fn count(&self) -> u32 {
        match &self.lengths {
            Lengths::Uniform { count, .. } => *count,
            Lengths::Listed(lengths) => lengths.len() as u32,
        }
    }

    /// The length of part `index` (from 0); 0 past the last part.
    fn part_len(&self, index: u32) -> u64 {
        match &self.lengths {
            Lengths::Uniform { size, count } if index + 1 < *count => *size,
            Lengths::Uniform { size, count } if index + 1 == *count => {
                self.total - size * u64::from(count - 1)
            }
            Lengths::Uniform { .. } => 0,
            Lengths::Listed(lengths) => lengths.get(index as usize).copied().unwrap_or(0),
        }
    }

    /// Whether both describe the same cut, however each was learnt: when the layout learnt part
    /// by part is the one assumed from the first and last parts, the bytes already read were cut
    /// correctly and a mismatch stands without a second read.
    pub fn same_cut(&self, other: &PartLayout) -> bool {
        self.total == other.total
            && self.count() == other.count()
            && (0..self.count()).all(|i| self.part_len(i) == other.part_len(i))
    }
}

/// What is computed over each part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartCheck {
    /// For the multipart ETag.
    Md5,
    /// For a `COMPOSITE` checksum of that algorithm.
    Crc32,
    Crc32c,
    Sha1,
    Sha256,
}

impl PartCheck {
    /// The name used in integrity classes and logs.
    pub fn name(self) -> &'static str {
        match self {
            PartCheck::Md5 => "md5",
            PartCheck::Crc32 => "crc32",
            PartCheck::Crc32c => "crc32c",
            PartCheck::Sha1 => "sha1",
            PartCheck::Sha256 => "sha256",
        }
    }
}

/// One running digest of the chosen algorithm (also the whole-object checksums of
/// [`crate::integrity::FullDigest`]).
pub(crate) enum Hasher {
    Md5(Md5),
    /// CRC32 (ISO-HDLC) and CRC32C (iSCSI) by crc-fast, the implementation the SDK's own
    /// checksum validation uses (SIMD carry-less multiplication).
    Crc(crc_fast::Digest),
    /// CRC64NVME, by the same crate: only ever a full-object checksum.
    Crc64(crc_fast::Digest),
    /// aws-lc's SHA-1 and SHA-256, as for the whole-object digest (SHA extensions).
    Sha(Context),
}

impl Hasher {
    pub(crate) fn new(check: PartCheck) -> Hasher {
        match check {
            PartCheck::Md5 => Hasher::Md5(Md5::new()),
            PartCheck::Crc32 => {
                Hasher::Crc(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc))
            }
            PartCheck::Crc32c => {
                Hasher::Crc(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi))
            }
            PartCheck::Sha1 => Hasher::Sha(Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY)),
            PartCheck::Sha256 => Hasher::Sha(Context::new(&digest::SHA256)),
        }
    }

    pub(crate) fn crc64nvme() -> Hasher {
        Hasher::Crc64(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme))
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Md5(md5) => md5.update(bytes),
            Hasher::Crc(crc) | Hasher::Crc64(crc) => crc.update(bytes),
            Hasher::Sha(sha) => sha.update(bytes),
        }
    }

    /// The raw digest as S3 concatenates (and base64-encodes) it: a CRC32 as its four big-endian
    /// bytes, a CRC64 as its eight.
    pub(crate) fn finish(self, out: &mut Vec<u8>) {
        out.clear();
        match self {
            Hasher::Md5(md5) => out.extend_from_slice(&md5.finalize()),
            Hasher::Crc(crc) => out.extend_from_slice(&(crc.finalize() as u32).to_be_bytes()),
            Hasher::Crc64(crc) => out.extend_from_slice(&crc.finalize().to_be_bytes()),
            Hasher::Sha(sha) => out.extend_from_slice(sha.finish().as_ref()),
        }
    }
}

/// Cuts the stream into the layout's parts and digests each, folding every part's digest into
/// the outer one as soon as the part ends.
pub struct PartDigester {
    layout: PartLayout,
    check: PartCheck,
    /// The part being read (from 0) and the bytes it still lacks.
    part: u32,
    left: u64,
    current: Hasher,
    outer: Hasher,
    /// Bytes beyond the layout's end: the stream is not the object the layout describes.
    overrun: bool,
    scratch: Vec<u8>,
}

impl PartDigester {
    pub fn new(layout: PartLayout, check: PartCheck) -> PartDigester {
        let left = layout.part_len(0);
        PartDigester {
            layout,
            check,
            part: 0,
            left,
            current: Hasher::new(check),
            outer: Hasher::new(check),
            overrun: false,
            scratch: Vec::with_capacity(32),
        }
    }

    pub fn update(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            if self.left == 0 {
                self.overrun = true;
                return;
            }
            let take = chunk
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            let (this_part, rest) = chunk.split_at(take);
            self.current.update(this_part);
            self.left -= take as u64;
            chunk = rest;
            if self.left == 0 {
                self.end_part();
            }
        }
    }

    fn end_part(&mut self) {
        let finished = std::mem::replace(&mut self.current, Hasher::new(self.check));
        finished.finish(&mut self.scratch);
        self.outer.update(&self.scratch);
        self.part += 1;
        self.left = self.layout.part_len(self.part);
    }

    /// The value S3 would hold for these bytes cut this way, in S3's notation (`<hex>-N` for an
    /// ETag, `<base64>-N` for a composite checksum); `None` when the stream did not fill the
    /// layout exactly (the length check then rejects the object anyway).
    pub fn finish(self) -> PartsDigest {
        let complete = !self.overrun && self.part == self.layout.count();
        let mut outer = Vec::with_capacity(32);
        self.outer.finish(&mut outer);
        let count = self.layout.count();
        let value = complete.then(|| match self.check {
            PartCheck::Md5 => format!("{}-{count}", hex::encode(&outer)),
            _ => format!("{}-{count}", STANDARD.encode(&outer)),
        });
        PartsDigest {
            check: self.check,
            value,
        }
    }
}

/// What the part digester computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartsDigest {
    pub check: PartCheck,
    /// In S3's notation, with the `-N` part count.
    pub value: Option<String>,
}

impl PartsDigest {
    /// Whether S3's value matches. An ETag is compared without its quotes and case; a composite
    /// checksum exactly, with its `-N` suffix optional (S3 writes it, some emulators do not) but
    /// equal to the part count when present.
    pub fn matches(&self, s3_value: &str) -> bool {
        let Some(computed) = &self.value else {
            return false;
        };
        let s3_value = s3_value.trim().trim_matches('"');
        match self.check {
            PartCheck::Md5 => computed.eq_ignore_ascii_case(s3_value),
            _ => {
                let (digest, _) = computed.rsplit_once('-').unwrap_or((computed.as_str(), ""));
                s3_value == computed || s3_value == digest
            }
        }
    }
}

/// The part count a multipart ETag (`"<32 hex>-N"`) announces; `None` for any other ETag.
pub fn multipart_etag_parts(etag: &str) -> Option<u32> {
    let (md5, count) = etag.trim_matches('"').rsplit_once('-')?;
    let count: u32 = count.parse().ok()?;
    let hex_ok = md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_ok && (1..=MAX_PARTS).contains(&count)).then_some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from `scripts/integrity_vectors.py` (Python's hashlib, zlib and a bitwise
    /// CRC32C), not from this code. The same formulas give moto's multipart ETag and composite
    /// CRC32, SHA-1 and SHA-256 for a three-part upload of 5 MiB parts.
    fn data() -> Vec<u8> {
        (0..25u32).map(|i| ((i * 31 + 7) & 0xff) as u8).collect()
    }

    const EVEN: [(PartCheck, &str); 5] = [
        (PartCheck::Md5, "da5f75f65eb4b956e58048b2428e0185-3"),
        (PartCheck::Crc32, "8ziTJw==-3"),
        (PartCheck::Crc32c, "bM5yNQ==-3"),
        (PartCheck::Sha1, "JR3VBzDO+eFySq6nAYe8HbCcozA=-3"),
        (
            PartCheck::Sha256,
            "tW6zgKjLUlH8oKQFHvxKBGvp6nDGWSvwYk+eRRkXgxI=-3",
        ),
    ];

    const UNEVEN: [(PartCheck, &str); 5] = [
        (PartCheck::Md5, "a00ddf35619a9484342b3a8f953db3f4-3"),
        (PartCheck::Crc32, "JBtQMQ==-3"),
        (PartCheck::Crc32c, "rAhrGQ==-3"),
        (PartCheck::Sha1, "Zf2IRrVvtckE9+P79xhc8nCzjTg=-3"),
        (
            PartCheck::Sha256,
            "A3CVoOM8PisIhomUEb0Mhay/LB+J2JA6h3Oaj51m6qQ=-3",
        ),
    ];

    fn digest_in_chunks(layout: &PartLayout, check: PartCheck, chunk: usize) -> PartsDigest {
        let mut digester = PartDigester::new(layout.clone(), check);
        data().chunks(chunk).for_each(|c| digester.update(c));
        digester.finish()
    }

    #[test]
    fn uniform_parts_give_s3s_etag_and_composite_checksums_whatever_the_chunking() {
        let layout = PartLayout::uniform(25, 3, 10, 5).expect("10 + 10 + 5");
        for (check, expected) in EVEN {
            for chunk in [1, 3, 7, 10, 11, 25, 64] {
                let digest = digest_in_chunks(&layout, check, chunk);
                assert_eq!(
                    digest.value.as_deref(),
                    Some(expected),
                    "{check:?}, chunks of {chunk}"
                );
                assert!(digest.matches(expected));
            }
        }
    }

    #[test]
    fn listed_parts_give_the_values_of_an_uneven_upload() {
        let layout = PartLayout::listed(25, vec![7, 12, 6]).expect("7 + 12 + 6");
        for (check, expected) in UNEVEN {
            for chunk in [2, 7, 8, 25] {
                assert_eq!(
                    digest_in_chunks(&layout, check, chunk).value.as_deref(),
                    Some(expected),
                    "{check:?}, chunks of {chunk}"
                );
            }
        }
    }

    #[test]
    fn a_single_part_upload_has_a_one_part_etag() {
        let layout = PartLayout::uniform(25, 1, 25, 25).expect("one part");
        let digest = digest_in_chunks(&layout, PartCheck::Md5, 4);
        assert_eq!(
            digest.value.as_deref(),
            Some("831ab3b972f7e3aeb758b6840a15a856-1")
        );
        assert_eq!(
            digest_in_chunks(&layout, PartCheck::Crc32c, 4)
                .value
                .as_deref(),
            Some("3kZ/FQ==-1")
        );
    }

    #[test]
    fn a_wrong_cut_or_wrong_bytes_do_not_match() {
        let assumed = PartLayout::uniform(25, 3, 10, 5).unwrap();
        let digest = digest_in_chunks(&assumed, PartCheck::Md5, 5);
        assert!(
            !digest.matches(UNEVEN[0].1),
            "the uneven upload's ETag under the uniform assumption"
        );
        let mut corrupted = data();
        corrupted[12] ^= 1;
        let mut digester = PartDigester::new(assumed.clone(), PartCheck::Sha256);
        digester.update(&corrupted);
        assert!(!digester.finish().matches(EVEN[4].1));
    }

    #[test]
    fn etags_compare_without_quotes_or_case_and_checksums_with_an_optional_count() {
        let layout = PartLayout::uniform(25, 3, 10, 5).unwrap();
        let etag = digest_in_chunks(&layout, PartCheck::Md5, 25);
        assert!(etag.matches("\"DA5F75F65EB4B956E58048B2428E0185-3\""));
        assert!(!etag.matches("da5f75f65eb4b956e58048b2428e0185-4"));
        assert!(!etag.matches("da5f75f65eb4b956e58048b2428e0185"));
        let crc = digest_in_chunks(&layout, PartCheck::Crc32, 25);
        assert!(crc.matches("8ziTJw=="), "moto writes no -N");
        assert!(crc.matches("8ziTJw==-3"));
        assert!(!crc.matches("8ziTJw==-2"));
        assert!(!crc.matches("8ZITJW==-3"), "base64 is case-sensitive");
    }

    #[test]
    fn a_stream_that_does_not_fill_the_layout_has_no_value() {
        let layout = PartLayout::uniform(25, 3, 10, 5).unwrap();
        let mut short = PartDigester::new(layout.clone(), PartCheck::Md5);
        short.update(&data()[..24]);
        assert_eq!(short.finish().value, None);
        let mut long = PartDigester::new(layout, PartCheck::Md5);
        long.update(&data());
        long.update(b"x");
        let long = long.finish();
        assert_eq!(long.value, None);
        assert!(!long.matches(EVEN[0].1));
    }

    #[test]
    fn uniform_layouts_come_only_from_lengths_one_part_size_explains() {
        assert!(PartLayout::uniform(25, 3, 10, 5).is_some());
        assert!(PartLayout::uniform(30, 3, 10, 10).is_some());
        assert_eq!(
            PartLayout::uniform(26, 3, 10, 5),
            None,
            "a middle part differs"
        );
        assert_eq!(PartLayout::uniform(25, 3, 5, 15), None, "last above first");
        assert_eq!(PartLayout::uniform(0, 0, 0, 0), None);
        assert_eq!(PartLayout::uniform(10, 1, 10, 9), None);
        assert_eq!(PartLayout::uniform(u64::MAX, 3, u64::MAX / 2, 5), None);
        assert_eq!(PartLayout::uniform(10, MAX_PARTS + 1, 1, 1), None);
        assert_eq!(PartLayout::listed(25, vec![7, 12, 5]), None, "sum");
        assert_eq!(PartLayout::listed(25, vec![25, 0]), None, "empty part");
        assert_eq!(PartLayout::listed(0, vec![]), None);
    }

    #[test]
    fn the_same_cut_is_recognised_however_it_was_learnt() {
        let uniform = PartLayout::uniform(25, 3, 10, 5).unwrap();
        assert!(uniform.same_cut(&PartLayout::listed(25, vec![10, 10, 5]).unwrap()));
        assert!(!uniform.same_cut(&PartLayout::listed(25, vec![10, 9, 6]).unwrap()));
        assert_eq!(uniform.count(), 3);
    }

    #[test]
    fn only_multipart_etags_announce_parts() {
        assert_eq!(
            multipart_etag_parts("\"a345e6ea942bdd9bd40dbab8201d4aa4-3\""),
            Some(3)
        );
        assert_eq!(
            multipart_etag_parts("a345e6ea942bdd9bd40dbab8201d4aa4"),
            None
        );
        assert_eq!(
            multipart_etag_parts("a345e6ea942bdd9bd40dbab8201d4aa4-0"),
            None
        );
        assert_eq!(
            multipart_etag_parts("a345e6ea942bdd9bd40dbab8201d4aa4-10001"),
            None
        );
        assert_eq!(multipart_etag_parts("zz-3"), None);
    }
}
