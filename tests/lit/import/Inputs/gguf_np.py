"""A small GGUF reader with NumPy dequantisers, for the moe-import tests.

The tests compare what the project computes from a GGUF file against a NumPy
reference computed from the same file; this module is the NumPy side. It is
written from the GGUF format description and ggml's block layouts alone and
shares no code with the project's C++ reader (io/), so that a misreading in
one is not silently repeated in the other. Standard library and NumPy only.

    read_gguf(path)      -> (metadata, {name: float32 ndarray})
    read_gguf_raw(path)  -> GGUFFile(version, alignment, data_offset,
                                     metadata, {name: RawTensor})
    dequantize(raw)      -> float32 ndarray of a RawTensor

Format (GGUF v2 and v3, little-endian):

    header      b"GGUF", u32 version, u64 tensor count, u64 metadata kv count
    kv          string key, u32 value type, value
    tensor info string name, u32 n_dims, n_dims x u64 ne, u32 ggml type,
                u64 offset (relative to the data section)
    data        starts at the end of the tensor infos rounded up to
                general.alignment (32 if absent)

A string is a u64 byte length and UTF-8 bytes. ne is in ggml order, innermost
first; the arrays returned have shape reversed(ne) (outermost first,
row-major), so ne = [64, 3, 2] gives shape (2, 3, 64). Quantised types are
blocks of 32 consecutive elements along ne[0].

Supported tensor types: F32 (0), F16 (1), Q4_0 (2), Q8_0 (8), BF16 (30) and
MXFP4 (39); any other type raises ValueError naming the tensor.
"""
import collections
import os
import struct

import numpy as np

__all__ = [
    "GGUFFile", "RawTensor", "read_gguf", "read_gguf_raw", "dequantize",
    "dequant_f32", "dequant_f16", "dequant_bf16", "dequant_q4_0",
    "dequant_q8_0", "dequant_mxfp4", "GGML_TYPES", "GGUF_VALUE_TYPES",
]

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS

# --- metadata value types -------------------------------------------------

(GGUF_U8, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL,
 GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64) = range(13)

GGUF_VALUE_TYPES = {
    GGUF_U8: "u8", GGUF_I8: "i8", GGUF_U16: "u16", GGUF_I16: "i16",
    GGUF_U32: "u32", GGUF_I32: "i32", GGUF_F32: "f32", GGUF_BOOL: "bool",
    GGUF_STRING: "string", GGUF_ARRAY: "array", GGUF_U64: "u64",
    GGUF_I64: "i64", GGUF_F64: "f64",
}

# Fixed-size value types: little-endian NumPy dtype of one value.
_SCALAR_DTYPES = {
    GGUF_U8: np.dtype("<u1"), GGUF_I8: np.dtype("<i1"),
    GGUF_U16: np.dtype("<u2"), GGUF_I16: np.dtype("<i2"),
    GGUF_U32: np.dtype("<u4"), GGUF_I32: np.dtype("<i4"),
    GGUF_F32: np.dtype("<f4"), GGUF_BOOL: np.dtype("<u1"),
    GGUF_U64: np.dtype("<u8"), GGUF_I64: np.dtype("<i8"),
    GGUF_F64: np.dtype("<f8"),
}

# --- ggml tensor types ----------------------------------------------------

GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_BF16, GGML_MXFP4 = 0, 1, 2, 8, 30, 39

# Names of the ggml types, for error messages (ids 4, 5, 31-33 and 36-38
# belong to types ggml has since removed).
GGML_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0",
    9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K",
    15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
    20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16",
    26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0",
    35: "TQ2_0", 39: "MXFP4",
}

QK = 32  # elements per block of Q4_0, Q8_0 and MXFP4

# Block structures (NumPy structured dtypes are packed: no padding).
_Q8_0 = np.dtype([("d", "<f2"), ("qs", "i1", (QK,))])           # 34 bytes
_Q4_0 = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])      # 18 bytes
_MXFP4 = np.dtype([("e", "u1"), ("qs", "u1", (QK // 2,))])      # 17 bytes

# FP4 E2M1 values by 4-bit code: sign bit 3, exponent bits 2-1, mantissa bit
# 0. Code 8 is -0. (ggml keeps this table doubled, as int8 {0, 1, 2, 3, 4, 6,
# 8, 12, 0, -1, ...}, and halves the E8M0 scale instead; the products are the
# same, except that ggml's code 8 is +0.)
_E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                  -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], dtype=np.float64)


def _nibbles(qs):
    """(n, 16) bytes -> (n, 32) codes: low nibbles of bytes 0..15 are elements
    0..15 of the block, high nibbles are elements 16..31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def dequant_f32(buf):
    """IEEE binary32, little-endian."""
    return np.frombuffer(buf, dtype="<f4").astype(np.float32)


def dequant_f16(buf):
    """IEEE binary16, little-endian (every half is exact in float32)."""
    return np.frombuffer(buf, dtype="<f2").astype(np.float32)


def dequant_bf16(buf):
    """bfloat16: the upper 16 bits of a float32."""
    bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
    return bits.view(np.float32)


def dequant_q8_0(buf):
    """Q8_0 blocks: f16 d, 32 x int8 q; x[i] = d * q[i]."""
    b = np.frombuffer(buf, dtype=_Q8_0)
    return (b["d"].astype(np.float32)[:, None] * b["qs"]).astype(np.float32).reshape(-1)


def dequant_q4_0(buf):
    """Q4_0 blocks: f16 d, 16 bytes qs; x = (nibble - 8) * d, low nibble of
    qs[j] -> element j, high nibble -> element j + 16."""
    b = np.frombuffer(buf, dtype=_Q4_0)
    q = _nibbles(b["qs"]).astype(np.int8) - np.int8(8)
    return (b["d"].astype(np.float32)[:, None] * q).astype(np.float32).reshape(-1)


def dequant_mxfp4(buf):
    """MXFP4 blocks: u8 E8M0 exponent e, 16 bytes of FP4 E2M1 codes (nibble
    order as Q4_0); x = E2M1[code] * 2^(e - 127).

    Computed in float64 and rounded once to float32: small e give float32
    subnormals (exact: 0.5 * 2^-127 = 2^-128 is still representable), and
    e = 255 overflows to +-inf for |value| >= 1, as in ggml (the OCP NaN
    encoding e = 255 is not special-cased)."""
    b = np.frombuffer(buf, dtype=_MXFP4)
    scale = np.ldexp(1.0, b["e"].astype(np.int32) - 127)   # float64, exact
    with np.errstate(over="ignore"):
        return (_E2M1[_nibbles(b["qs"])] * scale[:, None]).astype(np.float32).reshape(-1)


# ggml type -> (elements per block, bytes per block, dequantiser)
DEQUANT = {
    GGML_F32: (1, 4, dequant_f32),
    GGML_F16: (1, 2, dequant_f16),
    GGML_BF16: (1, 2, dequant_bf16),
    GGML_Q8_0: (QK, _Q8_0.itemsize, dequant_q8_0),
    GGML_Q4_0: (QK, _Q4_0.itemsize, dequant_q4_0),
    GGML_MXFP4: (QK, _MXFP4.itemsize, dequant_mxfp4),
}


def type_name(ggml_type):
    return GGML_TYPES.get(ggml_type, "unknown")


# --- file reading ---------------------------------------------------------

GGUFFile = collections.namedtuple(
    "GGUFFile", "version alignment data_offset metadata tensors")
GGUFFile.__doc__ = """A parsed GGUF file: metadata is {key: value} (arrays as
lists, nested arrays as nested lists), tensors is {name: RawTensor} in file
order; data_offset is the absolute offset of the data section."""

RawTensor = collections.namedtuple("RawTensor", "name ne ggml_type offset data")
RawTensor.__doc__ = """One tensor as stored: ne in ggml order (innermost
first), ggml_type the type id, offset relative to the data section, data its
bytes (a uint8 view of the memory-mapped file), or None when the type is not
one this module knows the size of."""


class _Reader:
    """A cursor over the file's bytes; every read is bounds-checked."""

    def __init__(self, buf, path):
        self.buf, self.path, self.pos = buf, path, 0

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError(f"{self.path}: truncated GGUF header while reading {what} "
                             f"(offset {self.pos}, need {n} bytes, file has {len(self.buf)})")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def scalar(self, vtype, what):
        dt = _SCALAR_DTYPES[vtype]
        return np.frombuffer(self.take(dt.itemsize, what), dtype=dt)[0].item()

    def u32(self, what):
        return self.scalar(GGUF_U32, what)

    def u64(self, what):
        return self.scalar(GGUF_U64, what)

    def string(self, what):
        n = self.u64(what + " length")
        return bytes(self.take(n, what)).decode("utf-8")

    def value(self, vtype, what):
        if vtype == GGUF_STRING:
            return self.string(what)
        if vtype == GGUF_BOOL:
            return bool(self.scalar(vtype, what))
        if vtype in _SCALAR_DTYPES:
            return self.scalar(vtype, what)
        if vtype == GGUF_ARRAY:
            etype = self.u32(what + " element type")
            n = self.u64(what + " element count")
            if etype in _SCALAR_DTYPES:   # fixed-size elements: one frombuffer
                dt = _SCALAR_DTYPES[etype]
                items = np.frombuffer(self.take(n * dt.itemsize, what), dtype=dt).tolist()
                return [bool(v) for v in items] if etype == GGUF_BOOL else items
            return [self.value(etype, f"{what}[{i}]") for i in range(n)]
        raise ValueError(f"{self.path}: {what} has unknown GGUF value type {vtype}")


def read_gguf_raw(path):
    """Parse a GGUF v2/v3 file into a GGUFFile without dequantising."""
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: empty file, not GGUF")
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    r = _Reader(mm, path)

    magic = bytes(r.take(4, "magic"))
    if magic != MAGIC:
        raise ValueError(f"{path}: bad magic {magic!r}, expected {MAGIC!r}")
    version = r.u32("version")
    if version not in (2, 3):
        raise ValueError(f"{path}: unsupported GGUF version {version} "
                         f"(this reader handles little-endian v2 and v3)")
    n_tensors = r.u64("tensor count")
    n_kv = r.u64("metadata kv count")

    metadata = {}
    for i in range(n_kv):
        key = r.string(f"key of metadata kv {i}")
        vtype = r.u32(f"value type of '{key}'")
        if key in metadata:
            raise ValueError(f"{path}: duplicate metadata key '{key}'")
        metadata[key] = r.value(vtype, f"value of '{key}'")

    infos = []
    for i in range(n_tensors):
        name = r.string(f"name of tensor {i}")
        n_dims = r.u32(f"n_dims of tensor '{name}'")
        if not 1 <= n_dims <= MAX_DIMS:
            raise ValueError(f"{path}: tensor '{name}' has {n_dims} dimensions "
                             f"(expected 1 to {MAX_DIMS})")
        ne = [r.u64(f"ne[{d}] of tensor '{name}'") for d in range(n_dims)]
        ggml_type = r.u32(f"type of tensor '{name}'")
        offset = r.u64(f"offset of tensor '{name}'")
        infos.append((name, ne, ggml_type, offset))

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0:
        raise ValueError(f"{path}: general.alignment must be a positive integer, "
                         f"got {alignment!r}")
    data_offset = -(-r.pos // alignment) * alignment

    tensors = {}
    for name, ne, ggml_type, offset in infos:
        if name in tensors:
            raise ValueError(f"{path}: duplicate tensor '{name}'")
        if offset % alignment:
            raise ValueError(f"{path}: tensor '{name}': offset {offset} is not a "
                             f"multiple of general.alignment = {alignment}")
        data = None
        if ggml_type in DEQUANT:
            blck, size, _ = DEQUANT[ggml_type]
            if ne[0] % blck:
                raise ValueError(f"{path}: tensor '{name}': ne[0] = {ne[0]} is not a "
                                 f"multiple of the {type_name(ggml_type)} block size {blck}")
            nbytes = int(np.prod(ne, dtype=np.int64)) // blck * size
            start = data_offset + offset
            if start + nbytes > len(mm):
                raise ValueError(f"{path}: tensor '{name}': data [{start}, {start + nbytes}) "
                                 f"runs past the end of the file ({len(mm)} bytes)")
            data = mm[start:start + nbytes]
        tensors[name] = RawTensor(name, ne, ggml_type, offset, data)

    return GGUFFile(version, alignment, data_offset, metadata, tensors)


def dequantize(raw):
    """A RawTensor as a float32 array of shape reversed(ne)."""
    if raw.ggml_type not in DEQUANT:
        supported = ", ".join(f"{type_name(t)} ({t})" for t in sorted(DEQUANT))
        raise ValueError(f"tensor '{raw.name}': ggml type {raw.ggml_type} "
                         f"({type_name(raw.ggml_type)}) is not supported; "
                         f"supported: {supported}")
    _, _, fn = DEQUANT[raw.ggml_type]
    return fn(raw.data).reshape(tuple(reversed(raw.ne)))


def read_gguf(path, names=None):
    """(metadata, {name: float32 ndarray}) of a GGUF file; with names, only
    those tensors are dequantised (KeyError names a missing one)."""
    f = read_gguf_raw(path)
    if names is None:
        names = list(f.tensors)
    for n in names:
        if n not in f.tensors:
            raise KeyError(f"{path}: no tensor '{n}'")
    return f.metadata, {n: dequantize(f.tensors[n]) for n in names}
