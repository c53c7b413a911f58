//! What vouched for an object's bytes, and who computed the value it was compared with.
//!
//! Every class is `<check>:<origin>`: the check docworker made while the bytes streamed, and
//! who computed the reference value. `client` is a digest the uploader computed before the bytes
//! left it (the `x-amz-meta-sha256` contract, or a full-object SHA-256 checksum, which S3 holds
//! only when the uploader sent one); `s3` is a value S3 computed, or derived from part values, as
//! the bytes arrived. Only a `client` class proves that what was sent is what was stored; an
//! `s3` class proves the bytes docworker read are the bytes S3 received. `length-only` is left
//! for objects S3 holds nothing else for.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Rejection;
use crate::parts::PartCheck;

/// The upload-path contract: the hex SHA-256 of the content, computed by the uploader, as
/// user metadata. The name the SDK hands back (it strips `x-amz-meta-`) is
/// [`CLIENT_SHA256_METADATA`].
pub const CLIENT_SHA256_HEADER: &str = "x-amz-meta-sha256";
pub const CLIENT_SHA256_METADATA: &str = "sha256";
/// S3's own full-object SHA-256 checksum header (base64), set only when the uploader sent one.
pub const CHECKSUM_SHA256_HEADER: &str = "x-amz-checksum-sha256";

/// A full-object checksum S3 returned and the SDK validated while the body streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullChecksum {
    Crc64Nvme,
    Crc32c,
    Crc32,
    Sha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// docworker's SHA-256 equals the digest the uploader supplied.
    ClientSha256,
    /// S3's full-object checksum, validated by the SDK while streaming. A CRC64NVME may be the
    /// uploader's or the one S3 adds to every object uploaded without one: S3 does not say
    /// which, so the origin is S3.
    S3Checksum(FullChecksum),
    /// The checksum of the part checksums, recomputed over the part layout.
    Composite(PartCheck),
    /// The MD5 of the part MD5s equals the multipart ETag.
    MultipartEtag,
    /// The MD5 of the content equals the single-part ETag.
    EtagMd5,
    /// S3 holds nothing else that can be checked (an SSE-KMS or SSE-C multipart upload without
    /// checksums): only the length was checked.
    LengthOnly,
}

impl Integrity {
    /// Every [`as_str`](Self::as_str), so that the per-class metric starts at 0 for each. Keep
    /// in step with `as_str`.
    pub const LABELS: &'static [&'static str] = &[
        "sha256:client",
        "crc64nvme:s3",
        "crc32c:s3",
        "crc32:s3",
        "sha1:s3",
        "crc32-composite:s3",
        "crc32c-composite:s3",
        "sha1-composite:s3",
        "sha256-composite:s3",
        "md5-multipart-etag:s3",
        "md5-etag:s3",
        "length-only",
    ];

    /// As stored in the row's `integrity` and used as the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Integrity::ClientSha256 => "sha256:client",
            Integrity::S3Checksum(FullChecksum::Crc64Nvme) => "crc64nvme:s3",
            Integrity::S3Checksum(FullChecksum::Crc32c) => "crc32c:s3",
            Integrity::S3Checksum(FullChecksum::Crc32) => "crc32:s3",
            Integrity::S3Checksum(FullChecksum::Sha1) => "sha1:s3",
            Integrity::Composite(PartCheck::Crc32) => "crc32-composite:s3",
            Integrity::Composite(PartCheck::Crc32c) => "crc32c-composite:s3",
            Integrity::Composite(PartCheck::Sha1) => "sha1-composite:s3",
            Integrity::Composite(PartCheck::Sha256) => "sha256-composite:s3",
            Integrity::Composite(PartCheck::Md5) | Integrity::MultipartEtag => {
                "md5-multipart-etag:s3"
            }
            Integrity::EtagMd5 => "md5-etag:s3",
            Integrity::LengthOnly => "length-only",
        }
    }
}

/// The digest the uploader supplied, decoded; `Ok(None)` when it supplied none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientDigest {
    sha256: [u8; 32],
    /// Which header carried it, for the rejection's reason.
    header: &'static str,
}

impl ClientDigest {
    /// From the `x-amz-meta-sha256` value: 64 hex digits, either case, surrounding blanks
    /// ignored. Anything else is refused rather than ignored: an upload path that means to prove
    /// its bytes and gets the encoding wrong must hear about it.
    pub fn from_metadata(value: Option<&str>) -> Result<Option<ClientDigest>, Rejection> {
        let Some(value) = value.map(str::trim) else {
            return Ok(None);
        };
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(value, &mut sha256).map_err(|_| Rejection::ClientDigestMalformed {
            header: CLIENT_SHA256_HEADER,
        })?;
        Ok(Some(ClientDigest {
            sha256,
            header: CLIENT_SHA256_HEADER,
        }))
    }

    /// From S3's full-object `x-amz-checksum-sha256` (base64 of the 32 bytes). A composite value
    /// (`…-N`, or a `COMPOSITE` checksum type) is a checksum of part checksums, not the
    /// content's SHA-256: the caller passes only full-object values.
    pub fn from_checksum_sha256(value: Option<&str>) -> Result<Option<ClientDigest>, Rejection> {
        let Some(value) = value.map(str::trim) else {
            return Ok(None);
        };
        let malformed = || Rejection::ClientDigestMalformed {
            header: CHECKSUM_SHA256_HEADER,
        };
        let decoded = STANDARD.decode(value).map_err(|_| malformed())?;
        let sha256 = <[u8; 32]>::try_from(decoded.as_slice()).map_err(|_| malformed())?;
        Ok(Some(ClientDigest {
            sha256,
            header: CHECKSUM_SHA256_HEADER,
        }))
    }

    /// Compares with docworker's own SHA-256 of the bytes it read.
    pub fn check(&self, computed: &[u8; 32]) -> Result<Integrity, Rejection> {
        if &self.sha256 == computed {
            Ok(Integrity::ClientSha256)
        } else {
            Err(Rejection::ClientDigestMismatch {
                header: self.header,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 of `hello`.
    const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn hello() -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(HELLO, &mut out).unwrap();
        out
    }

    #[test]
    fn labels_lists_every_class_once() {
        let mut every = vec![
            Integrity::ClientSha256,
            Integrity::S3Checksum(FullChecksum::Crc64Nvme),
            Integrity::S3Checksum(FullChecksum::Crc32c),
            Integrity::S3Checksum(FullChecksum::Crc32),
            Integrity::S3Checksum(FullChecksum::Sha1),
        ];
        every.extend(
            [
                PartCheck::Crc32,
                PartCheck::Crc32c,
                PartCheck::Sha1,
                PartCheck::Sha256,
            ]
            .map(Integrity::Composite),
        );
        every.extend([
            Integrity::MultipartEtag,
            Integrity::EtagMd5,
            Integrity::LengthOnly,
        ]);
        let labels: Vec<_> = every.iter().map(|i| i.as_str()).collect();
        assert_eq!(labels, Integrity::LABELS);
        assert_eq!(
            Integrity::Composite(PartCheck::Md5).as_str(),
            Integrity::MultipartEtag.as_str()
        );
    }

    #[test]
    fn a_matching_client_digest_is_end_to_end() {
        let upper = HELLO.to_ascii_uppercase();
        for value in [HELLO, upper.as_str(), &format!(" {HELLO}\t")] {
            let digest = ClientDigest::from_metadata(Some(value)).unwrap().unwrap();
            assert_eq!(digest.check(&hello()), Ok(Integrity::ClientSha256));
        }
        // The same digest as S3's full-object checksum (Python: base64 of hashlib's digest).
        let checksum = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";
        let digest = ClientDigest::from_checksum_sha256(Some(checksum))
            .unwrap()
            .unwrap();
        assert_eq!(digest.check(&hello()), Ok(Integrity::ClientSha256));
        assert_eq!(ClientDigest::from_metadata(None), Ok(None));
    }

    #[test]
    fn a_different_client_digest_is_a_mismatch_naming_only_the_header() {
        let other = HELLO.replace("2cf2", "2cf3");
        let rejection = ClientDigest::from_metadata(Some(&other))
            .unwrap()
            .unwrap()
            .check(&hello())
            .unwrap_err();
        assert_eq!(rejection.label(), "client_digest_mismatch");
        assert_eq!(
            rejection.to_string(),
            "the content's SHA-256 does not match the uploader's x-amz-meta-sha256"
        );
        assert!(!rejection.to_string().contains("2cf3"));
        let checksum = ClientDigest::from_checksum_sha256(Some(
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            checksum.check(&hello()),
            Err(Rejection::ClientDigestMismatch {
                header: CHECKSUM_SHA256_HEADER
            })
        );
    }

    #[test]
    fn a_malformed_client_digest_is_its_own_reason() {
        let long = format!("{HELLO}00");
        for value in ["", "not hex", &HELLO[..63], &long, &HELLO.replace('2', "g")] {
            let rejection = ClientDigest::from_metadata(Some(value)).unwrap_err();
            assert_eq!(rejection.label(), "client_digest_malformed", "{value:?}");
            assert_eq!(
                rejection.to_string(),
                "x-amz-meta-sha256 is not a well-formed SHA-256"
            );
        }
        for value in ["LPJNul+wow4m", "%%%", HELLO] {
            assert_eq!(
                ClientDigest::from_checksum_sha256(Some(value)),
                Err(Rejection::ClientDigestMalformed {
                    header: CHECKSUM_SHA256_HEADER
                }),
                "{value:?}"
            );
        }
    }
}
