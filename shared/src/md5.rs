//! MD5 through aws-lc, for the ETag checks. The multipart ETag, an MD5 of every byte, is the
//! slowest check an object can need, and RustCrypto's `md-5` 0.11 has only a portable
//! implementation on x86-64 (its `asm` feature went with 0.10): a 1 GiB multipart object spent
//! most of its time in it. aws-lc, already linked for SHA-256 and TLS, has openssl's x86-64
//! assembly MD5 (docs/performance.md §7 and §8 measure both). aws-lc-rs does not expose MD5, so
//! this calls aws-lc-sys, the crate aws-lc-rs itself links, through its three MD5 functions.

use aws_lc_sys::{MD5_CTX, MD5_Final, MD5_Init, MD5_Update};

/// A running MD5.
pub struct Md5(MD5_CTX);

impl Md5 {
    pub fn new() -> Md5 {
        // SAFETY: MD5_CTX is plain integers and bytes, so all-zero is a valid value; MD5_Init
        // then sets the initial state through the exclusive pointer and always returns 1.
        let mut ctx: MD5_CTX = unsafe { std::mem::zeroed() };
        unsafe { MD5_Init(&mut ctx) };
        Md5(ctx)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        // SAFETY: the context was initialised by MD5_Init and is borrowed exclusively; aws-lc
        // reads exactly `bytes.len()` bytes from `bytes`, which outlives the call. It returns 1.
        unsafe { MD5_Update(&mut self.0, bytes.as_ptr().cast(), bytes.len()) };
    }

    pub fn finalize(mut self) -> [u8; 16] {
        let mut digest = [0u8; 16];
        // SAFETY: MD5_Final writes exactly 16 bytes (MD5_DIGEST_LENGTH) to `digest` and reads
        // the initialised context it is given exclusively. It returns 1.
        unsafe { MD5_Final(digest.as_mut_ptr(), &mut self.0) };
        digest
    }
}

impl Default for Md5 {
    fn default() -> Md5 {
        Md5::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1321's test suite (appendix A.5), and one input cut at every offset across the 64-byte
    /// block boundary, which aws-lc buffers between calls.
    #[test]
    fn gives_rfc_1321s_digests_however_the_input_is_cut() {
        let suite = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in suite {
            let mut md5 = Md5::new();
            md5.update(input.as_bytes());
            assert_eq!(hex::encode(md5.finalize()), expected, "{input:?}");
        }
        let (input, expected) = suite[6];
        for cut in 0..=input.len() {
            let mut md5 = Md5::default();
            md5.update(&input.as_bytes()[..cut]);
            md5.update(&input.as_bytes()[cut..]);
            assert_eq!(hex::encode(md5.finalize()), expected, "cut at {cut}");
        }
    }
}
