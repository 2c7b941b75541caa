"""Self-test of gguf_np.py, the NumPy GGUF reader of the import tests.

Each dequantiser is checked against blocks built byte by byte with
struct.pack, whose expected values are written out literally below (worked
out by hand in the comments). Then GGUF files written here, independently of
gguf_np (a v3 file with general.alignment = 64 and metadata of every value
type, and a v2 file with the default alignment), are read back with
read_gguf and compared, and malformed inputs must raise ValueError naming
the tensor or the problem.

Prints "gguf_np: all N checks passed" and exits 0, or prints each failed
check and exits 1.
"""
import os
import struct
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_np  # noqa: E402

N_CHECKS = 0
FAILURES = []


def check(what, ok, detail=""):
    global N_CHECKS
    N_CHECKS += 1
    if not ok:
        FAILURES.append(f"FAIL: {what}" + (f"\n  {detail}" if detail else ""))


def check_values(what, got, expected):
    """got is float32 with expected's shape and equal values (NaN == NaN;
    -0 == +0, the sign of zero is checked separately where it matters)."""
    expected = np.asarray(expected, dtype=np.float32)
    check(f"{what}: dtype float32", got.dtype == np.float32, f"got {got.dtype}")
    ok = got.shape == expected.shape and np.array_equal(got, expected, equal_nan=True)
    if got.shape == expected.shape and not ok:
        bad = np.flatnonzero(~((got == expected) | (np.isnan(got) & np.isnan(expected))))
        detail = "; ".join(f"[{i}] got {got.flat[i]!r} expected {expected.flat[i]!r}"
                           for i in bad[:8])
    else:
        detail = f"shape {got.shape}, expected {expected.shape}"
    check(f"{what}: values", ok, detail)


def check_raises(what, fn, *needles):
    """fn() raises ValueError whose message contains every needle."""
    try:
        fn()
    except ValueError as e:
        msg = str(e)
        check(what, all(n in msg for n in needles),
              f"message {msg!r} lacks one of {needles!r}")
        return
    except Exception as e:  # noqa: BLE001
        check(what, False, f"raised {type(e).__name__}: {e}")
        return
    check(what, False, "did not raise ValueError")


def block32(values):
    """A 32-element block, zero except {index: value}."""
    out = [0.0] * 32
    for i, v in values.items():
        out[i] = v
    return out


# --- hand-computed blocks -------------------------------------------------

def test_f32():
    # 0x3FC00000 = 1.5, 0xC0200000 = -2.5, 0x80000000 = -0.0,
    # 0x00000001 = 2^-149 (smallest subnormal), 0x7F800000 = +inf.
    buf = struct.pack("<5I", 0x3FC00000, 0xC0200000, 0x80000000, 0x00000001, 0x7F800000)
    got = gguf_np.dequant_f32(buf)
    check_values("f32", got, [1.5, -2.5, -0.0, 2.0 ** -149, np.inf])
    check("f32: 0x80000000 is -0", bool(np.signbit(got[2])))


def test_f16():
    # 0x3C00 = 1.0; 0xC500 = -(1 + 256/1024) * 2^(17-15) = -5.0;
    # 0x0001 = 2^-24 (smallest subnormal); 0x8001 = -2^-24;
    # 0x03FF = 1023 * 2^-24 (largest subnormal) = 6.097555160522461e-05;
    # 0x7BFF = (2 - 2^-10) * 2^15 = 65504; 0x8000 = -0.0; 0xFC00 = -inf.
    buf = struct.pack("<8H", 0x3C00, 0xC500, 0x0001, 0x8001, 0x03FF, 0x7BFF, 0x8000, 0xFC00)
    got = gguf_np.dequant_f16(buf)
    check_values("f16", got, [1.0, -5.0, 5.960464477539063e-08, -5.960464477539063e-08,
                              6.097555160522461e-05, 65504.0, -0.0, -np.inf])
    check("f16: 0x8000 is -0", bool(np.signbit(got[6])))


def test_bf16():
    # 0xC020: sign 1, exponent 0x80 = 128 -> 2^1, mantissa 0b0100000 -> 1.25:
    #         -2.5;
    # 0x3F80 = 1.0; 0x3E20: exponent 0x7C = 124 -> 2^-3, mantissa 1.25: 0.15625;
    # 0x8000 = -0.0; 0x0001 = 2^-133 (smallest bf16 subnormal);
    # 0x7F7F = (2 - 2^-7) * 2^127 = 3.3895313892515355e+38; 0xFF80 = -inf;
    # 0x7FC0 = NaN.
    buf = struct.pack("<8H", 0xC020, 0x3F80, 0x3E20, 0x8000, 0x0001, 0x7F7F, 0xFF80, 0x7FC0)
    got = gguf_np.dequant_bf16(buf)
    check_values("bf16", got, [-2.5, 1.0, 0.15625, -0.0, 2.0 ** -133,
                               3.3895313892515355e+38, -np.inf, np.nan])
    check("bf16: 0x8000 is -0", bool(np.signbit(got[3])))


def test_q8_0():
    # Block 0: d = 0.25 (f16 0x3400: exponent 13 -> 2^-2);
    #   q = 1, -1, 127, -128, 0, 4, -5, 64, then zeros, q[31] = -7
    #   -> 0.25, -0.25, 31.75, -32.0, 0.0, 1.0, -1.25, 16.0, ..., -1.75.
    # Block 1: d = -2.0 (f16 0xC000); q[0] = 3 -> -6.0; q[1] = -128 -> 256.0;
    #   q[31] = -7 -> 14.0.
    q0 = [1, -1, 127, -128, 0, 4, -5, 64] + [0] * 23 + [-7]
    q1 = [3, -128] + [0] * 29 + [-7]
    buf = struct.pack("<H32b", 0x3400, *q0) + struct.pack("<H32b", 0xC000, *q1)
    check("q8_0: block is 34 bytes", len(buf) == 2 * 34)
    got = gguf_np.dequant_q8_0(buf)
    check_values("q8_0", got, block32({0: 0.25, 1: -0.25, 2: 31.75, 3: -32.0, 4: 0.0,
                                       5: 1.0, 6: -1.25, 7: 16.0, 31: -1.75})
                 + block32({0: -6.0, 1: 256.0, 31: 14.0}))


def test_q4_0():
    # Block 0: d = 0.5 (f16 0x3800), other bytes 0x88 -> (8 - 8) * d = 0.
    #   qs[0]  = 0x9F: element 0  = (0xF - 8) * 0.5 =  3.5, element 16 = (0x9 - 8) * 0.5 =  0.5
    #   qs[1]  = 0x08: element 1  = (0x8 - 8) * 0.5 =  0.0, element 17 = (0x0 - 8) * 0.5 = -4.0
    #   qs[2]  = 0x80: element 2  = (0x0 - 8) * 0.5 = -4.0, element 18 = (0x8 - 8) * 0.5 =  0.0
    #   qs[15] = 0x7A: element 15 = (0xA - 8) * 0.5 =  1.0, element 31 = (0x7 - 8) * 0.5 = -0.5
    # Block 1: d = -1.0 (f16 0xBC00), other bytes 0x88.
    #   qs[3]  = 0x1E: element 3  = (0xE - 8) * -1 = -6.0, element 19 = (0x1 - 8) * -1 =  7.0
    #   qs[4]  = 0x00: element 4  = (0 - 8) * -1   =  8.0, element 20 = 8.0
    qs0 = [0x88] * 16
    qs0[0], qs0[1], qs0[2], qs0[15] = 0x9F, 0x08, 0x80, 0x7A
    qs1 = [0x88] * 16
    qs1[3], qs1[4] = 0x1E, 0x00
    buf = struct.pack("<H16B", 0x3800, *qs0) + struct.pack("<H16B", 0xBC00, *qs1)
    check("q4_0: block is 18 bytes", len(buf) == 2 * 18)
    got = gguf_np.dequant_q4_0(buf)
    check_values("q4_0", got,
                 block32({0: 3.5, 16: 0.5, 1: 0.0, 17: -4.0, 2: -4.0, 18: 0.0,
                          15: 1.0, 31: -0.5})
                 + block32({3: -6.0, 19: 7.0, 4: 8.0, 20: 8.0}))


def test_mxfp4():
    # E2M1 codes: 0 0, 1 0.5, 2 1, 3 1.5, 4 2, 5 3, 6 4, 7 6, 8 -0, 9 -0.5,
    # 10 -1, 11 -1.5, 12 -2, 13 -3, 14 -4, 15 -6; x = value * 2^(e - 127).
    #
    # Block 0: e = 127 -> scale 1; all 16 codes (low nibble -> element j,
    # high nibble -> element j + 16), other bytes 0x00 -> 0.
    #   qs[0] = 0x81: el 0 = code 1  =  0.5, el 16 = code 8 (-0) = 0
    #   qs[1] = 0xF7: el 1 = code 7  =  6.0, el 17 = code 15 = -6.0
    #   qs[2] = 0x9A: el 2 = code 10 = -1.0, el 18 = code 9  = -0.5
    #   qs[3] = 0x32: el 3 = code 2  =  1.0, el 19 = code 3  =  1.5
    #   qs[4] = 0x54: el 4 = code 4  =  2.0, el 20 = code 5  =  3.0
    #   qs[5] = 0xC6: el 5 = code 6  =  4.0, el 21 = code 12 = -2.0
    #   qs[6] = 0xDE: el 6 = code 14 = -4.0, el 22 = code 13 = -3.0
    #   qs[7] = 0xB0: el 7 = code 0  =  0.0, el 23 = code 11 = -1.5
    # Block 1: e = 128 -> scale 2.
    #   qs[0]  = 0x71: el 0  = 0.5 * 2  =  1.0, el 16 = 6 * 2  =  12.0
    #   qs[15] = 0xF9: el 15 = -0.5 * 2 = -1.0, el 31 = -6 * 2 = -12.0
    # Block 2: e = 120 -> scale 2^-7 = 0.0078125.
    #   qs[0] = 0x27: el 0 = 6 / 128   = 0.046875,   el 16 = 1 / 128  =  0.0078125
    #   qs[1] = 0xA1: el 1 = 0.5 / 128 = 0.00390625, el 17 = -1 / 128 = -0.0078125
    # Block 3: e = 0 -> scale 2^-127 (float32 subnormal results).
    #   qs[0] = 0x17: el 0 = 6 * 2^-127 = 3.526483052466863e-38,
    #                 el 16 = 0.5 * 2^-127 = 2^-128 = 2.938735877055719e-39
    #   qs[1] = 0x0F: el 1 = -6 * 2^-127 = -3.526483052466863e-38
    # Block 4: e = 254 -> scale 2^127.
    #   qs[0] = 0x03: el 0 = 1.5 * 2^127 = 2.5521177519070385e+38
    qs = [[0x00] * 16 for _ in range(5)]
    qs[0][:8] = [0x81, 0xF7, 0x9A, 0x32, 0x54, 0xC6, 0xDE, 0xB0]
    qs[1][0], qs[1][15] = 0x71, 0xF9
    qs[2][0], qs[2][1] = 0x27, 0xA1
    qs[3][0], qs[3][1] = 0x17, 0x0F
    qs[4][0] = 0x03
    buf = b"".join(struct.pack("<B16B", e, *q) for e, q in zip([127, 128, 120, 0, 254], qs))
    check("mxfp4: block is 17 bytes", len(buf) == 5 * 17)
    got = gguf_np.dequant_mxfp4(buf)
    check_values("mxfp4", got,
                 block32({0: 0.5, 16: 0.0, 1: 6.0, 17: -6.0, 2: -1.0, 18: -0.5,
                          3: 1.0, 19: 1.5, 4: 2.0, 20: 3.0, 5: 4.0, 21: -2.0,
                          6: -4.0, 22: -3.0, 7: 0.0, 23: -1.5})
                 + block32({0: 1.0, 16: 12.0, 15: -1.0, 31: -12.0})
                 + block32({0: 0.046875, 16: 0.0078125, 1: 0.00390625, 17: -0.0078125})
                 + block32({0: 3.526483052466863e-38, 16: 2.938735877055719e-39,
                            1: -3.526483052466863e-38})
                 + block32({0: 2.5521177519070385e+38}))
    check("mxfp4: e = 0 gives nonzero subnormals", got[96 + 16] != 0 and got[96] != 0)


# --- an independent GGUF writer -------------------------------------------

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
        F32: "<f", BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}


def enc_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def enc_value(vtype, value):
    """An array value is (element type, [elements]); nested arrays nest."""
    if vtype == STR:
        return enc_str(value)
    if vtype == ARR:
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(enc_value(etype, v) for v in items)
    return struct.pack(_FMT[vtype], value)


def write_gguf(path, version, kvs, tensors, alignment=32):
    """kvs: [(key, vtype, value)]; tensors: [(name, ne, ggml type, raw bytes)].
    Tensor data is laid out in REVERSE order of the tensor infos, so a reader
    must follow the offsets. Returns the header length (before padding)."""
    header = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, vtype, value in kvs:
        header += enc_str(key) + struct.pack("<I", vtype) + enc_value(vtype, value)
    offsets, data = {}, b""
    for name, _, _, raw in reversed(tensors):
        offsets[name] = len(data)
        data += raw + b"\0" * (-len(raw) % alignment)
    for name, ne, ggml_type, _ in tensors:
        header += enc_str(name) + struct.pack(f"<I{len(ne)}QIQ", len(ne), *ne, ggml_type,
                                              offsets[name])
    with open(path, "wb") as f:
        f.write(header + b"\0" * (-len(header) % alignment) + data)
    return len(header)


def f16_bits(x):
    return int(np.array(x, dtype="<f2").view("<u2"))


def roundtrip_tensors():
    """(name, ne, ggml type, raw bytes, expected array with shape reversed(ne)).
    Every element of a tensor differs, so a wrong shape or order shows."""
    out = []
    # F32 [64, 3, 2] -> shape (2, 3, 64): value = flat index * 0.25 - 10.
    v = np.arange(384, dtype=np.float32) * 0.25 - 10
    out.append(("t.f32", [64, 3, 2], 0, v.astype("<f4").tobytes(), v.reshape(2, 3, 64)))
    # F16 [5, 4] -> (4, 5): flat index * 0.5 - 3 (exact in f16).
    v = np.arange(20, dtype=np.float32) * 0.5 - 3
    out.append(("t.f16", [5, 4], 1, v.astype("<f2").tobytes(), v.reshape(4, 5)))
    # BF16 [3, 2] -> (2, 3): values with at most 8 significant bits, so the
    # top 16 bits of their float32 are exact.
    v = np.array([-2.5, 1.0, 0.15625, -0.0, 384.0, -3.0e-3], dtype=np.float32)
    v[5] = (v[5:6].view("<u4") & 0xFFFF0000).view("<f4")[0]
    out.append(("t.bf16", [3, 2], 30, (v.view("<u4") >> 16).astype("<u2").tobytes(),
                v.reshape(2, 3)))
    # Q8_0 [64, 3] -> (3, 64): 6 blocks; block b: d = (b + 1) * 0.25,
    # q[i] = i - 16 + b; element = d * q.
    raw, exp = b"", []
    for b in range(6):
        d = (b + 1) * 0.25
        q = [i - 16 + b for i in range(32)]
        raw += struct.pack("<H32b", f16_bits(d), *q)
        exp += [d * x for x in q]
    out.append(("t.q8_0", [64, 3], 8, raw, np.array(exp).reshape(3, 64)))
    # Q4_0 [32, 2, 2] -> (2, 2, 32): 4 blocks; block b: d = (b + 1) * 0.5,
    # qs[j] = j | (15 - j) << 4: element j = (j - 8) * d, j + 16 = (7 - j) * d.
    raw, exp = b"", []
    for b in range(4):
        d = (b + 1) * 0.5
        raw += struct.pack("<H16B", f16_bits(d), *[j | (15 - j) << 4 for j in range(16)])
        exp += [(j - 8) * d for j in range(16)] + [(7 - j) * d for j in range(16)]
    out.append(("t.q4_0", [32, 2, 2], 2, raw, np.array(exp).reshape(2, 2, 32)))
    # MXFP4 [64, 2] -> (2, 64): 4 blocks; block b: e = 125 + b (scale
    # 2^(b - 2)), qs[j] = j | (15 - j) << 4: element j = E2M1[j] * scale,
    # j + 16 = E2M1[15 - j] * scale.
    e2m1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]
    raw, exp = b"", []
    for b in range(4):
        raw += struct.pack("<B16B", 125 + b, *[j | (15 - j) << 4 for j in range(16)])
        s = 2.0 ** (b - 2)
        exp += [e2m1[j] * s for j in range(16)] + [e2m1[15 - j] * s for j in range(16)]
    out.append(("t.mxfp4", [64, 2], 39, raw, np.array(exp).reshape(2, 64)))
    return out


METADATA = [
    ("general.architecture", STR, "tiny"),
    ("test.u8", U8, 200), ("test.i8", I8, -100),
    ("test.u16", U16, 60000), ("test.i16", I16, -30000),
    ("test.u32", U32, 4000000000), ("test.i32", I32, -2000000000),
    ("test.f32", F32, -0.375), ("test.true", BOOL, True), ("test.false", BOOL, False),
    ("test.string", STR, "h\u00e9llo \u2713"),
    ("test.u64", U64, 2 ** 63 + 5), ("test.i64", I64, -2 ** 62 - 3), ("test.f64", F64, 0.1),
    ("test.str_array", ARR, (STR, ["a", "bc", ""])),
    ("test.f32_array", ARR, (F32, [1.5, -2.0])),
    ("test.bool_array", ARR, (BOOL, [True, False])),
    ("test.nested", ARR, (ARR, [(I32, [1, -2]), (STR, ["x"]), (U8, [])])),
    ("test.empty", ARR, (U64, [])),
]
EXPECTED_METADATA = {
    "general.architecture": "tiny",
    "test.u8": 200, "test.i8": -100, "test.u16": 60000, "test.i16": -30000,
    "test.u32": 4000000000, "test.i32": -2000000000, "test.f32": -0.375,
    "test.true": True, "test.false": False, "test.string": "h\u00e9llo \u2713",
    "test.u64": 2 ** 63 + 5, "test.i64": -2 ** 62 - 3, "test.f64": 0.1,
    "test.str_array": ["a", "bc", ""], "test.f32_array": [1.5, -2.0],
    "test.bool_array": [True, False], "test.nested": [[1, -2], ["x"], []],
    "test.empty": [],
}


def check_file(label, path, version, alignment, expected_meta, tensors):
    f = gguf_np.read_gguf_raw(path)
    check(f"{label}: version", f.version == version, f"got {f.version}")
    check(f"{label}: alignment", f.alignment == alignment, f"got {f.alignment}")
    check(f"{label}: data offset aligned", f.data_offset % alignment == 0)
    check(f"{label}: tensor order", list(f.tensors) == [t[0] for t in tensors],
          f"got {list(f.tensors)}")
    for name, ne, ggml_type, _, _ in tensors:
        check(f"{label}: {name} raw type", f.tensors[name].ggml_type == ggml_type)
        check(f"{label}: {name} raw ne", f.tensors[name].ne == ne)
    meta, arrays = gguf_np.read_gguf(path)
    for key, value in expected_meta.items():
        got = meta.get(key, "<missing>")
        # bool vs int and int vs float matter: compare types too.
        same = got == value and type(got) is type(value)
        if isinstance(value, list):
            same = same and all(type(a) is type(b) for a, b in zip(got, value))
        check(f"{label}: metadata {key}", same, f"got {got!r}, expected {value!r}")
    check(f"{label}: no extra metadata", set(meta) == set(expected_meta),
          f"extra {sorted(set(meta) - set(expected_meta))}")
    for name, ne, _, _, expected in tensors:
        check(f"{label}: {name} shape is reversed(ne)",
              arrays[name].shape == tuple(reversed(ne)), f"got {arrays[name].shape}")
        check_values(f"{label}: {name}", arrays[name], expected)


def test_roundtrip(tmp):
    tensors = roundtrip_tensors()
    tinfo = [(n, ne, t, raw) for n, ne, t, raw, _ in tensors]

    # v3, general.alignment = 64. Pad the header so that it ends in the first
    # half of a 64-byte line: a reader aligning to the default 32 would then
    # start the data 32 bytes early.
    p3 = os.path.join(tmp, "v3.gguf")
    for pad in range(64):
        kvs = METADATA + [("general.alignment", U32, 64), ("test.pad", STR, "p" * pad)]
        hlen = write_gguf(p3, 3, kvs, tinfo, alignment=64)
        if 0 < hlen % 64 <= 32:
            break
    check("v3: header ends in the first half of a 64-byte line", 0 < hlen % 64 <= 32)
    meta3 = dict(EXPECTED_METADATA, **{"general.alignment": 64, "test.pad": "p" * pad})
    check_file("v3", p3, 3, 64, meta3, tensors)

    # v2, no general.alignment: the default 32 (header not a multiple of 32).
    p2 = os.path.join(tmp, "v2.gguf")
    kvs = [("general.architecture", STR, "tiny"), ("test.nested", ARR,
           (ARR, [(ARR, [(I16, [7])]), (F64, [0.5])]))]
    for pad in range(32):
        hlen = write_gguf(p2, 2, kvs + [("test.pad", STR, "p" * pad)], tinfo[:2] + tinfo[3:5])
        if hlen % 32:
            break
    check("v2: header not a multiple of 32", hlen % 32 != 0)
    check_file("v2", p2, 2, 32, {"general.architecture": "tiny",
                                 "test.nested": [[[7]], [0.5]], "test.pad": "p" * pad},
               tensors[:2] + tensors[3:5])

    # Selecting tensors by name.
    _, some = gguf_np.read_gguf(p3, names=["t.q4_0"])
    check("read_gguf(names=...)", list(some) == ["t.q4_0"], f"got {list(some)}")


# --- malformed input ------------------------------------------------------

def test_errors(tmp):
    def path(name):
        return os.path.join(tmp, name)

    q8 = struct.pack("<H32b", 0x3C00, *range(32))
    # An unknown / unsupported type reads raw but fails to dequantise.
    write_gguf(path("q4k.gguf"), 3, [], [("blk.0.w", [256], 12, b"\0" * 144),
                                         ("ok", [32], 8, q8)])
    check_raises("Q4_K tensor", lambda: gguf_np.read_gguf(path("q4k.gguf")),
                 "'blk.0.w'", "12", "Q4_K")
    _, ok = gguf_np.read_gguf(path("q4k.gguf"), names=["ok"])
    check("other tensors of a file with a Q4_K tensor still read",
          ok["ok"][5] == 5.0, f"got {ok['ok'][5]}")
    write_gguf(path("t99.gguf"), 3, [], [("weird", [4], 99, b"\0" * 16)])
    check_raises("type 99 tensor", lambda: gguf_np.read_gguf(path("t99.gguf")),
                 "'weird'", "99")
    # ne[0] not a multiple of the block size.
    write_gguf(path("ne0.gguf"), 3, [], [("rows", [48, 2], 8, q8 * 3)])
    check_raises("Q8_0 ne[0] = 48", lambda: gguf_np.read_gguf(path("ne0.gguf")),
                 "'rows'", "48")
    # Data past the end of the file.
    write_gguf(path("short.gguf"), 3, [], [("cut", [64], 8, q8)])
    check_raises("truncated tensor data", lambda: gguf_np.read_gguf(path("short.gguf")),
                 "'cut'", "end of the file")
    # Bad magic, version 1, a truncated header.
    with open(path("magic.gguf"), "wb") as f:
        f.write(b"GGML" + struct.pack("<IQQ", 3, 0, 0))
    check_raises("bad magic", lambda: gguf_np.read_gguf(path("magic.gguf")), "magic")
    with open(path("v1.gguf"), "wb") as f:
        f.write(b"GGUF" + struct.pack("<III", 1, 0, 0))
    check_raises("version 1", lambda: gguf_np.read_gguf(path("v1.gguf")), "version 1")
    with open(path("hdr.gguf"), "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + enc_str("general.name")[:6])
    check_raises("truncated header", lambda: gguf_np.read_gguf(path("hdr.gguf")), "truncated")


def main():
    test_f32()
    test_f16()
    test_bf16()
    test_q8_0()
    test_q4_0()
    test_mxfp4()
    with tempfile.TemporaryDirectory() as tmp:
        test_roundtrip(tmp)
        test_errors(tmp)
    if FAILURES:
        print("\n".join(FAILURES))
        print(f"gguf_np: {len(FAILURES)} of {N_CHECKS} checks failed")
        return 1
    print(f"gguf_np: all {N_CHECKS} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
