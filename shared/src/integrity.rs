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
use crate::parts::{self, PartCheck, PartsDigest};

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

impl FullChecksum {
    /// The name used in logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            FullChecksum::Crc64Nvme => "crc64nvme",
            FullChecksum::Crc32c => "crc32c",
            FullChecksum::Crc32 => "crc32",
            FullChecksum::Sha1 => "sha1",
        }
    }
}

/// A full-object checksum computed by docworker, for reads the SDK cannot validate: it checks
/// only a whole-object GET's checksum, never the ranges of a ranged read.
pub struct FullDigest {
    checksum: FullChecksum,
    hasher: parts::Hasher,
}

impl FullDigest {
    pub fn new(checksum: FullChecksum) -> FullDigest {
        let hasher = match checksum {
            FullChecksum::Crc64Nvme => parts::Hasher::crc64nvme(),
            FullChecksum::Crc32c => parts::Hasher::new(PartCheck::Crc32c),
            FullChecksum::Crc32 => parts::Hasher::new(PartCheck::Crc32),
            FullChecksum::Sha1 => parts::Hasher::new(PartCheck::Sha1),
        };
        FullDigest { checksum, hasher }
    }

    pub fn checksum(&self) -> FullChecksum {
        self.checksum
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
    }

    /// The value in S3's notation (base64 of the big-endian digest), to compare with S3's
    /// `x-amz-checksum-*` header exactly.
    pub fn finish(self) -> String {
        let mut raw = Vec::with_capacity(20);
        self.hasher.finish(&mut raw);
        STANDARD.encode(raw)
    }
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

/// What S3 returned with the object that can vouch for its bytes (GetObject's headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offered {
    pub etag: Option<String>,
    /// False under SSE-KMS, DSSE-KMS and SSE-C, where the ETag is not an MD5 of anything.
    pub etag_is_md5: bool,
    /// The full-object checksum the SDK validates while the body streams (a SHA-256 one is in
    /// `checksum_sha256` instead: docworker compares that one itself).
    pub full: Option<FullChecksum>,
    /// `x-amz-checksum-sha256` when it is a full-object value (base64).
    pub checksum_sha256: Option<String>,
    /// A `COMPOSITE` checksum (a checksum of the part checksums): algorithm and value.
    pub composite: Option<(PartCheck, String)>,
    /// The uploader's `x-amz-meta-sha256`.
    pub client_sha256: Option<String>,
}

/// The value computed while streaming, besides the SHA-256 and the byte count that every object
/// gets, and what it is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// Nothing more: a client digest or the SDK's validation already vouches.
    Nothing,
    /// A single-part ETag: the MD5 of the content.
    EtagMd5([u8; 16]),
    /// A multipart ETag (`check` is MD5) or a composite checksum, over `parts` parts.
    Parts {
        check: PartCheck,
        value: String,
        parts: u32,
    },
}

/// Which checks an object gets, decided from its headers before its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    clients: Vec<ClientDigest>,
    full: Option<FullChecksum>,
    pub reference: Reference,
}

impl Plan {
    /// The strongest check S3's headers allow, and the cheapest way to it: a client digest
    /// needs nothing beyond the SHA-256 every object gets; a full-object checksum is the SDK's;
    /// a composite checksum (CRC32/CRC32C at SIMD speed) comes before the multipart ETag (MD5,
    /// the slowest digest here); the single-part ETag's MD5 last. A malformed client digest is
    /// refused here, before any byte is read.
    pub fn new(offered: &Offered) -> Result<Plan, Rejection> {
        let clients: Vec<ClientDigest> = [
            ClientDigest::from_metadata(offered.client_sha256.as_deref())?,
            ClientDigest::from_checksum_sha256(offered.checksum_sha256.as_deref())?,
        ]
        .into_iter()
        .flatten()
        .collect();
        let etag = offered.etag.as_deref().filter(|_| offered.etag_is_md5);
        let etag_parts = etag.and_then(parts::multipart_etag_parts);
        let reference = if !clients.is_empty() || offered.full.is_some() {
            Reference::Nothing
        } else if let Some((check, value)) = &offered.composite
            && let Some(count) = composite_parts(value).or(offered
                .etag
                .as_deref()
                .and_then(parts::multipart_etag_parts))
        {
            Reference::Parts {
                check: *check,
                value: value.clone(),
                parts: count,
            }
        } else if let (Some(etag), Some(count)) = (etag, etag_parts) {
            Reference::Parts {
                check: PartCheck::Md5,
                value: etag.trim_matches('"').to_owned(),
                parts: count,
            }
        } else if let Some(md5) = etag.and_then(crate::verify::plain_md5_etag) {
            Reference::EtagMd5(md5)
        } else {
            Reference::Nothing
        };
        Ok(Plan {
            clients,
            full: offered.full,
            reference,
        })
    }

    /// The MD5 expected of the whole content, when the plan checks a single-part ETag.
    pub fn etag_md5(&self) -> Option<[u8; 16]> {
        match self.reference {
            Reference::EtagMd5(md5) => Some(md5),
            _ => None,
        }
    }

    /// What to digest per part and over how many parts, when the plan checks parts.
    pub fn part_check(&self) -> Option<(PartCheck, u32)> {
        match self.reference {
            Reference::Parts { check, parts, .. } => Some((check, parts)),
            _ => None,
        }
    }

    /// Whether a part digest matches the value the plan checks it against.
    pub fn parts_match(&self, digest: &PartsDigest) -> bool {
        match &self.reference {
            Reference::Parts { value, .. } => digest.matches(value),
            _ => false,
        }
    }

    /// The class once the body has streamed (its length already checked): `md5` is the
    /// content's MD5 when the plan asked for it, `parts` the part digest when it asked for one.
    pub fn decide(
        &self,
        sha256: &[u8; 32],
        md5: Option<[u8; 16]>,
        parts: Option<&PartsDigest>,
    ) -> Result<Integrity, Rejection> {
        if !self.clients.is_empty() {
            for client in &self.clients {
                client.check(sha256)?;
            }
            return Ok(Integrity::ClientSha256);
        }
        if let Some(full) = self.full {
            return Ok(Integrity::S3Checksum(full));
        }
        match &self.reference {
            Reference::Nothing => Ok(Integrity::LengthOnly),
            Reference::EtagMd5(expected) => match md5 {
                Some(computed) if computed == *expected => Ok(Integrity::EtagMd5),
                computed => Err(Rejection::Md5Mismatch {
                    computed: computed.map(hex::encode).unwrap_or_default(),
                    etag: hex::encode(expected),
                }),
            },
            Reference::Parts {
                check,
                value,
                parts: count,
            } => match parts_digest_matches(parts, value) {
                true if *check == PartCheck::Md5 => Ok(Integrity::MultipartEtag),
                true => Ok(Integrity::Composite(*check)),
                false => Err(Rejection::PartsMismatch {
                    check: check.name(),
                    parts: *count,
                    reference: if *check == PartCheck::Md5 {
                        "multipart ETag"
                    } else {
                        "composite checksum"
                    },
                }),
            },
        }
    }
}

fn parts_digest_matches(digest: Option<&PartsDigest>, value: &str) -> bool {
    digest.is_some_and(|digest| digest.matches(value))
}

/// The `-N` part count of a composite checksum value, when it carries one.
fn composite_parts(value: &str) -> Option<u32> {
    let (_, count) = value.rsplit_once('-')?;
    count
        .parse()
        .ok()
        .filter(|n| (1..=parts::MAX_PARTS).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard check values of each algorithm for `123456789` (CRC64NVME 0xAE8B14860A799888,
    /// CRC32 0xCBF43926, CRC32C 0xE3069283, as the CRC catalogue lists them) and FIPS 180's SHA-1
    /// of `abc`, in S3's base64 of the big-endian bytes: values from outside this code.
    #[test]
    fn full_digests_give_the_catalogue_values_whatever_the_chunking() {
        let vectors: [(FullChecksum, &[u8], &[u8]); 4] = [
            (
                FullChecksum::Crc64Nvme,
                b"123456789",
                &[0xAE, 0x8B, 0x14, 0x86, 0x0A, 0x79, 0x98, 0x88],
            ),
            (FullChecksum::Crc32, b"123456789", &[0xCB, 0xF4, 0x39, 0x26]),
            (
                FullChecksum::Crc32c,
                b"123456789",
                &[0xE3, 0x06, 0x92, 0x83],
            ),
            (
                FullChecksum::Sha1,
                b"abc",
                &hex_literal("a9993e364706816aba3e25717850c26c9cd0d89d"),
            ),
        ];
        for (checksum, input, raw) in vectors {
            for chunk in [1, 2, 5, 64] {
                let mut digest = FullDigest::new(checksum);
                input.chunks(chunk).for_each(|c| digest.update(c));
                assert_eq!(
                    digest.finish(),
                    STANDARD.encode(raw),
                    "{checksum:?} in chunks of {chunk}"
                );
            }
        }
    }

    fn hex_literal(hex_digits: &str) -> Vec<u8> {
        hex::decode(hex_digits).unwrap()
    }

    /// SHA-256 of `hello`.
    const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn hello() -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(HELLO, &mut out).unwrap();
        out
    }

    fn offered() -> Offered {
        Offered {
            etag: Some("\"5d41402abc4b2a76b9719d911017c592\"".into()),
            etag_is_md5: true,
            ..Offered::default()
        }
    }

    #[test]
    fn the_plan_takes_the_strongest_check_by_the_cheapest_way() {
        let multipart = "a345e6ea942bdd9bd40dbab8201d4aa4-3";
        let plain = offered();
        assert!(matches!(
            Plan::new(&plain).unwrap().reference,
            Reference::EtagMd5(_)
        ));
        let kms = Offered {
            etag_is_md5: false,
            ..plain.clone()
        };
        assert_eq!(Plan::new(&kms).unwrap().reference, Reference::Nothing);
        let parts = Offered {
            etag: Some(format!("\"{multipart}\"")),
            ..plain.clone()
        };
        assert_eq!(
            Plan::new(&parts).unwrap().reference,
            Reference::Parts {
                check: PartCheck::Md5,
                value: multipart.into(),
                parts: 3
            }
        );
        let composite = Offered {
            composite: Some((PartCheck::Crc32, "GcnAew==".into())),
            ..parts.clone()
        };
        assert_eq!(
            Plan::new(&composite).unwrap().reference,
            Reference::Parts {
                check: PartCheck::Crc32,
                value: "GcnAew==".into(),
                parts: 3
            },
            "the composite CRC before the ETag's MD5, its count from the ETag without -N"
        );
        let composite_kms = Offered {
            etag: Some("\"not-an-md5\"".into()),
            etag_is_md5: false,
            composite: Some((PartCheck::Sha256, "39CYSMdHk=-4".into())),
            ..Offered::default()
        };
        assert!(matches!(
            Plan::new(&composite_kms).unwrap().reference,
            Reference::Parts { parts: 4, .. }
        ));
        let full = Offered {
            full: Some(FullChecksum::Crc64Nvme),
            ..parts.clone()
        };
        assert_eq!(Plan::new(&full).unwrap().reference, Reference::Nothing);
        let client = Offered {
            client_sha256: Some(HELLO.into()),
            ..composite
        };
        assert_eq!(Plan::new(&client).unwrap().reference, Reference::Nothing);
        let malformed = Offered {
            client_sha256: Some("nope".into()),
            ..plain
        };
        assert_eq!(
            Plan::new(&malformed).unwrap_err().label(),
            "client_digest_malformed"
        );
    }

    #[test]
    fn the_verdict_names_what_vouched_or_why_not() {
        let sha256 = hello();
        let md5: [u8; 16] = hex::decode("5d41402abc4b2a76b9719d911017c592")
            .unwrap()
            .try_into()
            .unwrap();
        let plain = Plan::new(&offered()).unwrap();
        assert_eq!(
            plain.decide(&sha256, Some(md5), None),
            Ok(Integrity::EtagMd5)
        );
        assert_eq!(
            plain
                .decide(&sha256, Some([0; 16]), None)
                .unwrap_err()
                .label(),
            "md5_mismatch"
        );
        let nothing = Plan::new(&Offered::default()).unwrap();
        assert_eq!(
            nothing.decide(&sha256, None, None),
            Ok(Integrity::LengthOnly)
        );
        let full = Plan::new(&Offered {
            full: Some(FullChecksum::Crc32),
            ..offered()
        })
        .unwrap();
        assert_eq!(
            full.decide(&sha256, None, None),
            Ok(Integrity::S3Checksum(FullChecksum::Crc32))
        );
        let both = Plan::new(&Offered {
            client_sha256: Some(HELLO.into()),
            checksum_sha256: Some("LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=".into()),
            full: Some(FullChecksum::Crc64Nvme),
            ..offered()
        })
        .unwrap();
        assert_eq!(
            both.decide(&sha256, None, None),
            Ok(Integrity::ClientSha256)
        );
        assert_eq!(
            both.decide(&[0; 32], None, None),
            Err(Rejection::ClientDigestMismatch {
                header: CLIENT_SHA256_HEADER
            })
        );

        let layout = crate::parts::PartLayout::uniform(25, 3, 10, 5).unwrap();
        let data: Vec<u8> = (0..25u32).map(|i| ((i * 31 + 7) & 0xff) as u8).collect();
        for (check, value, class) in [
            (
                PartCheck::Md5,
                "da5f75f65eb4b956e58048b2428e0185-3",
                "md5-multipart-etag:s3",
            ),
            (PartCheck::Crc32c, "bM5yNQ==-3", "crc32c-composite:s3"),
        ] {
            let plan = Plan {
                clients: Vec::new(),
                full: None,
                reference: Reference::Parts {
                    check,
                    value: value.into(),
                    parts: 3,
                },
            };
            let mut digester = crate::parts::PartDigester::new(layout.clone(), check);
            digester.update(&data);
            let digest = digester.finish();
            assert_eq!(
                plan.decide(&sha256, None, Some(&digest))
                    .map(Integrity::as_str),
                Ok(class)
            );
            let mut digester = crate::parts::PartDigester::new(layout.clone(), check);
            digester.update(&data[..24]);
            digester.update(b"x");
            let rejection = plan
                .decide(&sha256, None, Some(&digester.finish()))
                .unwrap_err();
            assert_eq!(rejection.label(), "parts_mismatch");
            assert!(rejection.to_string().contains("3 parts"), "{rejection}");
        }
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
