#!/usr/bin/env python3
"""Expected values for the unit tests of shared/src/parts.rs, computed by Python's hashlib and zlib and a
bitwise CRC32C: independent of the Rust code under test. Run: python3 scripts/integrity_vectors.py"""
import hashlib, base64, zlib
def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
assert crc32c(b"123456789") == 0xE3069283
data = bytes(((i * 31 + 7) & 0xFF) for i in range(25))
for layout in ([10, 10, 5], [7, 12, 6], [25]):
    parts, at = [], 0
    for n in layout:
        parts.append(data[at:at+n]); at += n
    N = len(parts)
    print(layout)
    print("  etag", hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{N}")
    print("  crc32", base64.b64encode(zlib.crc32(b"".join(zlib.crc32(p).to_bytes(4,"big") for p in parts)).to_bytes(4,"big")).decode() + f"-{N}")
    print("  crc32c", base64.b64encode(crc32c(b"".join(crc32c(p).to_bytes(4,"big") for p in parts)).to_bytes(4,"big")).decode() + f"-{N}")
    for a in ("sha1", "sha256"):
        h = getattr(hashlib, a)
        print(" ", a, base64.b64encode(h(b"".join(h(p).digest() for p in parts)).digest()).decode() + f"-{N}")
print("sha256", hashlib.sha256(data).hexdigest())
