"""Benchmark-only patch for a private moto_server that bench/ranged.py starts (never the stack's).

moto answers every GetObject, ranged or not, by reading the object's whole stored value under the
key's lock and slicing it: an 8 MiB range of a 1 GiB object costs it about 1 s of one core, so N
ranged GETs of one object cost N whole reads, one at a time. S3's cost per range is the range's.
This keeps each object's value as it was written (or once read), so a range costs moto a slice: the
local source then answers ranged GETs the way S3 does, and the benchmark measures the reader, not
moto's storage (and the first GET of a fresh object does not wait for a whole read either).
Python imports this module at start-up when its directory is on PYTHONPATH.
"""

from moto.s3 import models

_stored = models.FakeKey.value


def _value(self):
    cached = self.__dict__.get("_bench_value")
    if cached is None:
        cached = _stored.fget(self)
        self.__dict__["_bench_value"] = cached
    return cached


def _set_value(self, new_value):
    self.__dict__.pop("_bench_value", None)
    _stored.fset(self, new_value)
    if isinstance(new_value, bytes):
        self.__dict__["_bench_value"] = new_value


models.FakeKey.value = property(_value, _set_value)
