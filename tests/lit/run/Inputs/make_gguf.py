"""Tiny GGUF files for the moe-run --weights tests (tests/lit/run/weights*.test).

Usage: make_gguf.py DIR            writes the files below into DIR
       make_gguf.py compare REF.npy GOT.npy TOL
                                   max |got - ref| / max |ref| <= TOL, else exit 1

The files are for examples/qwen3_tiny.moe (params gate_inp [8, 64], up_exps,
gate_exps, down_exps [8, 64, 64], all f32) and Inputs/qwen3_tiny_q8.moe (the
same with q8_0 experts whose params name their tensors with gguf attributes,
"blk.0.ffn_up_exps.weight" and so on). A GGUF v3 file is written here with
`struct` (header, one metadata key, tensor infos with ggml's ne = the dims
reversed, data aligned to 32), independently of moe's own writer.

  x.npy                   the input, [7, 64] f32
  gate_inp.npy ...        the f32 params as .npy (up_exps.npy, ...)
  f32.gguf                f32 tensors under both names (param names, blk.0.*)
  q8.gguf                 gate_inp f32, experts q8_0, under both names
  up_deq.npy ...          the q8_0 experts' values as f32 (gate_deq, down_deq)
  shape.gguf              gate_inp, and up_exps f32 [4, 64, 64]
  missing.gguf            gate_inp only
  q4k.gguf                gate_inp, and up_exps as q4_K [8, 64, 256]
  garbage.gguf            "GGUF" and a cut-off header

The q8_0 blocks are written from chosen integer codes and f16 scales (each
block has a code of +-127, so ggml's quantiser maps the dequantised values back
to the same blocks): no quantiser is needed and the dequantised values are
exact.
"""
import os
import struct
import sys

import numpy as np

GGML_F32, GGML_Q8_0, GGML_Q4_K = 0, 8, 12
ALIGN = 32


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, tensors):
    """tensors: (name, ggml type id, dims outermost first, data bytes)."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 1))
    out += gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string("qwen3moe")
    offset = 0
    offsets = []
    for name, type_id, dims, data in tensors:
        offsets.append(offset)
        out += gguf_string(name) + struct.pack("<I", len(dims))
        for ne in reversed(dims):
            out += struct.pack("<Q", ne)
        out += struct.pack("<IQ", type_id, offset)
        offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
    out += b"\0" * (-len(out) % ALIGN)
    base = len(out)
    for (name, type_id, dims, data), off in zip(tensors, offsets):
        out += b"\0" * (base + off - len(out))
        out += data
    with open(path, "wb") as f:
        f.write(out)


def f32_tensor(name, a):
    return (name, GGML_F32, list(a.shape), a.astype("<f4").tobytes())


def q8_0_blocks(rng, dims):
    """Random q8_0 data of `dims` (innermost a multiple of 32): bytes, values."""
    nblocks = int(np.prod(dims)) // 32
    codes = rng.integers(-127, 128, size=(nblocks, 32)).astype(np.int8)
    codes[np.arange(nblocks), rng.integers(0, 32, size=nblocks)] = 127 * rng.choice([-1, 1], nblocks)
    d = rng.uniform(0.002, 0.01, size=nblocks).astype(np.float16)
    blocks = np.zeros(nblocks, dtype=[("d", "<f2"), ("qs", "i1", 32)])
    blocks["d"] = d
    blocks["qs"] = codes
    values = codes.astype(np.float32) * d.astype(np.float32)[:, None]
    return blocks.tobytes(), values.reshape(dims)


def compare(ref_path, got_path, tol):
    ref = np.load(ref_path).astype(np.float64)
    got = np.load(got_path).astype(np.float64)
    if ref.shape != got.shape:
        sys.exit(f"shape {list(got.shape)}, expected {list(ref.shape)}")
    if not np.all(np.isfinite(ref)):
        sys.exit("the reference has non-finite values")
    rel = float(np.abs(got - ref).max()) / max(float(np.abs(ref).max()), 1e-30)
    if not rel <= tol:
        sys.exit(f"max rel diff {rel:.3g} > {tol:g}")
    print(f"match (shape {list(ref.shape)}, rel diff <= {tol:g})")


def main(d):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(9)
    p = lambda name: os.path.join(d, name)
    np.save(p("x.npy"), rng.standard_normal((7, 64)).astype(np.float32))
    params = {
        "gate_inp": (rng.standard_normal((8, 64)) * 0.3).astype(np.float32),
        "up_exps": (rng.standard_normal((8, 64, 64)) * 0.1).astype(np.float32),
        "gate_exps": (rng.standard_normal((8, 64, 64)) * 0.1).astype(np.float32),
        "down_exps": (rng.standard_normal((8, 64, 64)) * 0.1).astype(np.float32),
    }
    gguf_name = {"gate_inp": "blk.0.ffn_gate_inp.weight", "up_exps": "blk.0.ffn_up_exps.weight",
                 "gate_exps": "blk.0.ffn_gate_exps.weight",
                 "down_exps": "blk.0.ffn_down_exps.weight"}
    for k, v in params.items():
        np.save(p(k + ".npy"), v)
    write_gguf(p("f32.gguf"), [f32_tensor(k, v) for k, v in params.items()] +
               [f32_tensor(gguf_name[k], v) for k, v in params.items()])

    q8 = [f32_tensor("gate_inp", params["gate_inp"]),
          f32_tensor(gguf_name["gate_inp"], params["gate_inp"])]
    for k in ["up_exps", "gate_exps", "down_exps"]:
        data, values = q8_0_blocks(rng, [8, 64, 64])
        np.save(p(k.split("_")[0] + "_deq.npy"), values)
        q8 += [(k, GGML_Q8_0, [8, 64, 64], data), (gguf_name[k], GGML_Q8_0, [8, 64, 64], data)]
    write_gguf(p("q8.gguf"), q8)

    write_gguf(p("shape.gguf"), [f32_tensor("gate_inp", params["gate_inp"]),
                                 f32_tensor("up_exps", params["up_exps"][:4])])
    write_gguf(p("missing.gguf"), [f32_tensor("gate_inp", params["gate_inp"])])
    write_gguf(p("q4k.gguf"), [f32_tensor("gate_inp", params["gate_inp"]),
                               ("up_exps", GGML_Q4_K, [8, 64, 256], bytes(144 * 64 * 8))])
    with open(p("garbage.gguf"), "wb") as f:
        f.write(b"GGUF\x03\x00\x00")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif len(sys.argv) == 2:
        main(sys.argv[1])
    else:
        sys.exit(__doc__)
