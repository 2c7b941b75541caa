#!/usr/bin/env python3
"""Writes the GGUF test corpus: tests/gguf/good/*.gguf and tests/gguf/bad/*.gguf.

    python3 tests/gguf/make_corpus.py [OUTDIR]     (default: this directory)

Deterministic (no randomness, no timestamps), so the committed files are
exactly what this script writes; tests/lit/gguf/corpus.test checks that.
The bytes are put together here with struct alone, independently of moe's
C++ writer, so the reader is checked against a second implementation of the
format.

Each bad file breaks one thing, in one of these classes:
  - a truncation point: the file ends inside that field (header fields,
    a key's length or bytes, a value type, a scalar, a string's length or
    bytes, an array's element type, count or elements, each tensor-info
    field, the padding before the data section, the data itself);
  - a bad field: magic, version, a count or length larger than the file
    could hold, value and element type ids out of range, a bool that is not
    0 or 1, arrays nested too deep, duplicate keys and tensor names,
    general.alignment that is not a power of two (or not an integer), more
    than 4 dims, a zero, negative or overflowing ne, an unknown ggml type, a
    row that is not whole blocks, an offset that is misaligned or out of the
    file, overlapping tensor data.
Truncations inside metadata or tensor infos cut the last key or tensor of
their section, so the counts before them stay plausible and the error is
the truncated field's own. tests/lit/gguf/bad-files.test holds the message
each file must give.
"""
import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_Q4_K = 0, 1, 2, 8, 12
GGML_I32, GGML_BF16, GGML_MXFP4 = 26, 30, 39


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def gstr(b):
    if isinstance(b, str):
        b = b.encode()
    return u64(len(b)) + b


def kv(key, vtype, payload):
    return gstr(key) + u32(vtype) + payload


def arr(etype, elems):
    return u32(etype) + u64(len(elems)) + b"".join(elems)


def tinfo(name, ne, ttype, offset):
    return gstr(name) + u32(len(ne)) + b"".join(u64(n) for n in ne) + u32(ttype) + u64(offset)


def align(n, a):
    return (n + a - 1) // a * a


def gguf(kvs, tinfos, data=b"", version=3, alignment=32, magic=b"GGUF",
         n_tensors=None, n_kv=None):
    """A file; with `data`, padding to the data section is added."""
    out = magic + u32(version)
    out += u64(len(tinfos) if n_tensors is None else n_tensors)
    out += u64(len(kvs) if n_kv is None else n_kv)
    out += b"".join(kvs) + b"".join(tinfos)
    if data:
        out += b"\0" * (align(len(out), alignment) - len(out)) + data
    return out


def f32s(values):
    return b"".join(struct.pack("<f", v) for v in values)


# Two plausible keys and one tensor to put before the thing under test.
FILLER_KVS = [kv("general.architecture", STRING, gstr("llama")),
              kv("general.name", STRING, gstr("moe gguf corpus"))]
FILLER_TENSOR = tinfo("blk.0.ffn_up.weight", [8], GGML_F32, 0)
FILLER_DATA = f32s(range(8))  # 32 bytes


def with_kv(last_kv):
    return gguf(FILLER_KVS + [last_kv], [])


def with_tensor(last_tensor, data=FILLER_DATA + bytes(32)):
    return gguf(FILLER_KVS, [FILLER_TENSOR, last_tensor], data)


def cut_inside_last(whole, last, keep):
    """`whole` ends with `last`; keep only `keep` bytes of it."""
    assert whole.endswith(last)
    return whole[: len(whole) - len(last) + keep]


def bad_files():
    files = {}
    base = with_tensor(tinfo("blk.0.ffn_down.weight", [4, 2], GGML_F32, 32))

    # Header.
    files["empty"] = b""
    files["short-magic"] = b"GG"
    files["bad-magic"] = b"GGML" + base[4:]
    files["version-1"] = base[:4] + u32(1) + base[8:]
    files["version-4"] = base[:4] + u32(4) + base[8:]
    files["big-endian"] = base[:4] + struct.pack(">I", 3) + base[8:]
    files["trunc-version"] = base[:6]
    files["trunc-tensor-count"] = base[:12]
    files["trunc-kv-count"] = base[:20]
    files["huge-kv-count"] = gguf(FILLER_KVS, [], n_kv=1 << 40)
    files["huge-tensor-count"] = gguf(FILLER_KVS, [FILLER_TENSOR], FILLER_DATA,
                                      n_tensors=1 << 40)

    # Metadata: each truncation cuts the last key-value pair.
    key = "test.count"
    count_kv = kv(key, U32, u32(7))
    files["trunc-key-length"] = cut_inside_last(with_kv(count_kv), count_kv, 3)
    files["trunc-key"] = cut_inside_last(with_kv(count_kv), count_kv, 8 + 4)
    files["huge-key-length"] = with_kv(u64(1 << 63) + b"test.count" + u32(U32) + u32(7))
    files["trunc-value-type"] = cut_inside_last(with_kv(count_kv), count_kv, 8 + len(key) + 2)
    files["bad-value-type"] = with_kv(kv(key, 13, u32(7)))
    files["trunc-value"] = cut_inside_last(with_kv(count_kv), count_kv, 8 + len(key) + 4 + 3)
    str_kv = kv("test.text", STRING, gstr("hello, gguf"))
    files["trunc-string-length"] = cut_inside_last(with_kv(str_kv), str_kv, 8 + 9 + 4 + 5)
    files["trunc-string"] = cut_inside_last(with_kv(str_kv), str_kv, 8 + 9 + 4 + 8 + 5)
    files["bad-bool"] = with_kv(kv("test.flag", BOOL, b"\x02"))
    list_kv = kv("test.list", ARRAY, arr(I32, [struct.pack("<i", v) for v in (1, -2, 3, -4)]))
    head = 8 + 9 + 4  # key length, key, value type
    files["trunc-array-type"] = cut_inside_last(with_kv(list_kv), list_kv, head + 2)
    files["bad-array-type"] = with_kv(kv("test.list", ARRAY, u32(13) + u64(1) + u32(0)))
    files["trunc-array-count"] = cut_inside_last(with_kv(list_kv), list_kv, head + 4 + 6)
    files["trunc-array-data"] = cut_inside_last(with_kv(list_kv), list_kv, head + 12 + 10)
    files["huge-array-count"] = with_kv(kv("test.list", ARRAY, u32(U32) + u64(1 << 61) + u32(1)))
    tok_kv = kv("tokenizer.ggml.tokens", ARRAY, arr(STRING, [gstr("<s>"), gstr("hello"), gstr("world")]))
    files["trunc-string-array"] = cut_inside_last(with_kv(tok_kv), tok_kv,
                                                  8 + 21 + 4 + 12 + 11 + 13 + 8 + 2)
    nested = arr(U8, [b"\x01"])
    for _ in range(8):  # 9 levels of arrays
        nested = arr(ARRAY, [nested])
    files["deep-array"] = with_kv(kv("test.nested", ARRAY, nested))
    files["duplicate-key"] = gguf(FILLER_KVS + [kv("general.name", STRING, gstr("again"))], [])
    files["alignment-48"] = gguf(FILLER_KVS + [kv("general.alignment", U32, u32(48))], [])
    files["alignment-0"] = gguf(FILLER_KVS + [kv("general.alignment", U32, u32(0))], [])
    files["alignment-string"] = gguf(
        FILLER_KVS + [kv("general.alignment", STRING, gstr("32"))], [])

    # Tensor infos: each truncation cuts the last tensor info.
    name = "blk.0.ffn_down.weight"
    last = tinfo(name, [4, 2], GGML_F32, 32)
    whole = gguf(FILLER_KVS, [FILLER_TENSOR, last])  # no padding, no data
    n = 8 + len(name)
    files["trunc-tensor-name"] = cut_inside_last(whole, last, 8 + 7)
    files["trunc-n-dims"] = cut_inside_last(whole, last, n + 1)
    files["trunc-ne"] = cut_inside_last(whole, last, n + 4 + 8 + 3)
    files["trunc-tensor-type"] = cut_inside_last(whole, last, n + 4 + 16 + 2)
    files["trunc-offset"] = cut_inside_last(whole, last, n + 4 + 16 + 4 + 7)
    files["too-many-dims"] = with_tensor(tinfo(name, [1, 1, 1, 1, 8], GGML_F32, 32))
    files["zero-dim"] = with_tensor(tinfo(name, [4, 0], GGML_F32, 32))
    files["negative-dim"] = with_tensor(tinfo(name, [4, (1 << 64) - 2], GGML_F32, 32))
    files["overflow-elements"] = with_tensor(tinfo(name, [1 << 32, 1 << 32], GGML_F32, 32))
    files["huge-elements"] = with_tensor(tinfo(name, [1 << 21, 1 << 20], GGML_F32, 32))
    files["overflow-bytes"] = with_tensor(tinfo(name, [1 << 62], 28, 32))  # f64
    files["unknown-type"] = with_tensor(tinfo(name, [4, 2], 4, 32))  # q4_2, removed
    files["block-size"] = with_tensor(tinfo(name, [33], GGML_Q8_0, 32))
    files["misaligned-offset"] = with_tensor(tinfo(name, [4, 2], GGML_F32, 16))
    files["duplicate-tensor"] = with_tensor(tinfo("blk.0.ffn_up.weight", [4, 2], GGML_F32, 32))
    files["offset-out-of-bounds"] = with_tensor(tinfo(name, [4, 2], GGML_F32, (1 << 64) - 32))
    files["overlap"] = with_tensor(tinfo(name, [4, 2], GGML_F32, 0))
    files["data-past-end"] = with_tensor(tinfo(name, [8, 2], GGML_F32, 32))
    # The data section: padding and data cut short.
    infos_end = len(whole)
    assert infos_end % 32 != 0
    files["trunc-padding"] = base[: infos_end + 1]
    files["trunc-data"] = base[: len(base) - 5]
    return files


def good_files():
    files = {}
    up = f32s(v / 8 for v in range(16))  # 64 bytes
    tiny_kvs = [kv("general.architecture", STRING, gstr("llama")),
                kv("llama.expert_count", U32, u32(4)),
                kv("llama.rms_eps", F32, struct.pack("<f", 1e-6))]
    tiny_tensors = [tinfo("blk.0.ffn_up.weight", [4, 4], GGML_F32, 0),
                    tinfo("blk.0.ffn_norm.weight", [4], GGML_F32, 64)]
    data = up + bytes(64 - len(up)) + f32s([1, 1, 1, 1]) + bytes(16)
    files["tiny-v2"] = gguf(tiny_kvs, tiny_tensors, data, version=2)
    files["tiny-v3"] = gguf(tiny_kvs, tiny_tensors, data, version=3)
    files["no-tensors"] = gguf(tiny_kvs, [])

    # Every metadata type, alignment 64, tensors of supported and other types.
    kvs = [
        kv("general.alignment", U32, u32(64)),
        kv("t.u8", U8, b"\xff"), kv("t.i8", I8, struct.pack("<b", -128)),
        kv("t.u16", U16, struct.pack("<H", 65535)), kv("t.i16", I16, struct.pack("<h", -32768)),
        kv("t.u32", U32, u32(4294967295)), kv("t.i32", I32, struct.pack("<i", -2147483648)),
        kv("t.f32", F32, struct.pack("<f", 0.5)), kv("t.bool", BOOL, b"\x01"),
        kv("t.string", STRING, gstr("line\n\"quoted\" caf\u00e9")),
        kv("t.u64", U64, u64((1 << 64) - 1)), kv("t.i64", I64, struct.pack("<q", -(1 << 63))),
        kv("t.f64", F64, struct.pack("<d", 1e-300)),
        kv("t.empty", ARRAY, arr(F32, [])),
        kv("t.ints", ARRAY, arr(I16, [struct.pack("<h", v) for v in range(-5, 5)])),
        kv("t.strings", ARRAY, arr(STRING, [gstr(s) for s in ("a", "", "c")])),
        kv("t.nested", ARRAY, arr(ARRAY, [arr(U8, [b"\x01", b"\x02"]), arr(STRING, [gstr("x")])])),
        kv("t.bools", ARRAY, arr(BOOL, [b"\x01", b"\x00"])),
    ]
    specs = [  # name, ne, type, bytes
        ("w.f32", [32, 2], GGML_F32, 256), ("w.f16", [32, 2], GGML_F16, 128),
        ("w.bf16", [32, 2], GGML_BF16, 128), ("w.q8_0", [64, 2], GGML_Q8_0, 136),
        ("w.q4_0", [32, 3], GGML_Q4_0, 54), ("w.mxfp4", [32, 2, 2], GGML_MXFP4, 68),
        ("w.q4_K", [256], GGML_Q4_K, 144), ("w.i32", [3], GGML_I32, 12),
    ]
    tinfos, data, offset = [], b"", 0
    for i, (name, ne, ttype, nbytes) in enumerate(specs):
        tinfos.append(tinfo(name, ne, ttype, offset))
        blob = bytes((i * 37 + k) % 251 for k in range(nbytes))
        data += blob + bytes(align(nbytes, 64) - nbytes)
        offset += align(nbytes, 64)
    files["all-types"] = gguf(kvs, tinfos, data, alignment=64)
    return files


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for sub, files in (("bad", bad_files()), ("good", good_files())):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
        for name, data in sorted(files.items()):
            with open(os.path.join(out, sub, name + ".gguf"), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
