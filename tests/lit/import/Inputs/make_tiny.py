"""Tiny qwen3moe and gpt-oss GGUF models for the moe-import tests.

Usage: make_tiny.py DIR        writes the files below into DIR
       make_tiny.py ref DIR ARCH MODEL.gguf LAYER OUT.npy
                               the NumPy reference of the FFN sub-block of block
                               LAYER, computed from the weights read back from
                               MODEL.gguf (a small GGUF reader below) and DIR/x.npy
       make_tiny.py compare REF.npy GOT.npy TOL
                               sum((got-ref)^2) / sum(ref^2) <= TOL, else exit 1
       make_tiny.py exit1 CMD...
                               runs CMD, prints its stderr and "exit N";
                               exits 1 unless N == 1

Models (GGUF v3 written with `struct`, real llama.cpp tensor names and metadata
keys, every tensor f32, n_embd 64, expert n_ff 64, top-2, two blocks):

  qwen3.gguf      qwen3moe, 8 experts: blk.L.ffn_norm.weight, ffn_gate_inp,
                  ffn_{up,gate,down}_exps.weight
  gptoss.gguf     gpt-oss, 4 experts: blk.L.post_attention_norm.weight, router
                  and expert weights and biases
  x.npy           the input, [7, 64] f32
  unknown.gguf    general.architecture = "llama4"
  nokey.gguf      qwen3moe without qwen3moe.expert_count
  strcount.gguf   qwen3moe with qwen3moe.expert_used_count stored as a string
  toomany.gguf    qwen3moe with expert_used_count 9 > expert_count 8
  shape.gguf      qwen3moe whose blk.1.ffn_up_exps.weight is [8, 32, 64]
  notensor.gguf   qwen3moe without blk.1.ffn_gate_exps.weight
"""
import os
import struct
import subprocess
import sys

import numpy as np

GGML_F32 = 0
ALIGN = 32
T_U32, T_I32, T_F32, T_STR = 4, 5, 6, 8
N_EMBD, N_FF, TOPK, N_BLOCKS, EPS = 64, 64, 2, 2, 1e-6


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv_bytes(key, vtype, value):
    out = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == T_STR:
        return out + gguf_string(value)
    return out + struct.pack({T_U32: "<I", T_I32: "<i", T_F32: "<f"}[vtype], value)


def write_gguf(path, kvs, tensors):
    """kvs: (key, value type, value); tensors: (name, dims outermost first, f32 array)."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for kv in kvs:
        out += kv_bytes(*kv)
    offset, offsets = 0, []
    for name, a in tensors:
        offsets.append(offset)
        out += gguf_string(name) + struct.pack("<I", a.ndim)
        for ne in reversed(a.shape):
            out += struct.pack("<Q", ne)
        out += struct.pack("<IQ", GGML_F32, offset)
        offset += (a.nbytes + ALIGN - 1) // ALIGN * ALIGN
    out += b"\0" * (-len(out) % ALIGN)
    base = len(out)
    for (name, a), off in zip(tensors, offsets):
        out += b"\0" * (base + off - len(out))
        out += a.astype("<f4").tobytes()
    with open(path, "wb") as f:
        f.write(out)


def read_gguf(path):
    """The f32 tensors of a GGUF v3 file written as above: {name: array}."""
    data = open(path, "rb").read()
    pos = 4
    _, n_tensors, n_kv = struct.unpack_from("<IQQ", data, pos)
    pos += 20

    def string():
        nonlocal pos
        (n,) = struct.unpack_from("<Q", data, pos)
        s = data[pos + 8:pos + 8 + n].decode()
        pos += 8 + n
        return s

    for _ in range(n_kv):
        string()
        (vtype,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if vtype == T_STR:
            string()
        else:
            pos += 4
    infos = []
    for _ in range(n_tensors):
        name = string()
        (nd,) = struct.unpack_from("<I", data, pos)
        ne = struct.unpack_from(f"<{nd}Q", data, pos + 4)
        ttype, off = struct.unpack_from("<IQ", data, pos + 4 + 8 * nd)
        assert ttype == GGML_F32
        pos += 4 + 8 * nd + 12
        infos.append((name, list(reversed(ne)), off))
    base = (pos + ALIGN - 1) // ALIGN * ALIGN
    return {name: np.frombuffer(data, "<f4", int(np.prod(dims)), base + off).reshape(dims)
            for name, dims, off in infos}


def model(arch, n_expert, rng, drop_key=None, kv_override=None, tensor_override=None,
          drop_tensor=None):
    kvs = [("general.architecture", T_STR, arch),
           (f"{arch}.block_count", T_U32, N_BLOCKS),
           (f"{arch}.embedding_length", T_U32, N_EMBD),
           (f"{arch}.expert_feed_forward_length", T_U32, N_FF),
           (f"{arch}.expert_count", T_U32, n_expert),
           (f"{arch}.expert_used_count", T_U32, TOPK),
           (f"{arch}.attention.layer_norm_rms_epsilon", T_F32, EPS)]
    kvs = [kv for kv in kvs if kv[0] != drop_key]
    if kv_override:
        kvs = [kv_override if kv[0] == kv_override[0] else kv for kv in kvs]
    E, D, F = n_expert, N_EMBD, N_FF
    gptoss = arch == "gpt-oss"
    tensors = []
    for L in range(N_BLOCKS):
        b = f"blk.{L}."
        norm = "post_attention_norm.weight" if gptoss else "ffn_norm.weight"
        tensors.append((b + norm, (1 + 0.2 * rng.standard_normal(D)).astype(np.float32)))
        tensors.append((b + "ffn_gate_inp.weight", (rng.standard_normal((E, D)) * 0.3).astype(np.float32)))
        if gptoss:
            tensors.append((b + "ffn_gate_inp.bias", (rng.standard_normal(E) * 0.3).astype(np.float32)))
        for w, n, k in [("up", F, D), ("gate", F, D), ("down", D, F)]:
            scale = 0.4 if gptoss else 0.1  # gpt-oss: reach swiglu_oai's limit
            tensors.append((b + f"ffn_{w}_exps.weight", (rng.standard_normal((E, n, k)) * scale).astype(np.float32)))
            if gptoss:
                tensors.append((b + f"ffn_{w}_exps.bias", (rng.standard_normal((E, n)) * 0.5).astype(np.float32)))
    if tensor_override:
        tensors = [tensor_override if t[0] == tensor_override[0] else t for t in tensors]
    tensors = [t for t in tensors if t[0] != drop_tensor]
    return kvs, tensors


def reference(arch, w, L, x):
    """The FFN sub-block of block L (llama.cpp's semantics, DESIGN.md), float64."""
    b = f"blk.{L}."
    g = {k[len(b):]: v.astype(np.float64) for k, v in w.items() if k.startswith(b)}
    x = x.astype(np.float64)
    gptoss = arch == "gpt-oss"
    norm = g["post_attention_norm.weight" if gptoss else "ffn_norm.weight"]
    xn = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS) * norm
    logits = xn @ g["ffn_gate_inp.weight"].T
    if gptoss:
        logits = logits + g["ffn_gate_inp.bias"]
        sel = logits
    else:
        e = np.exp(logits - logits.max(-1, keepdims=True))
        sel = e / e.sum(-1, keepdims=True)
    ids = np.argsort(-sel, axis=-1, kind="stable")[:, :TOPK]
    srt = -np.sort(-sel, axis=-1)
    gap = (srt[:, TOPK - 1] - srt[:, TOPK]).min()
    assert gap > 1e-4, f"top-k selection too close to call: {gap}"
    wk = np.take_along_axis(sel, ids, axis=1)
    if gptoss:
        e = np.exp(wk - wk.max(-1, keepdims=True))
        wk = e / e.sum(-1, keepdims=True)
    else:
        wk = wk / np.maximum(wk.sum(-1, keepdims=True), 6.103515625e-5)
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(TOPK):
            ex = ids[t, j]
            up = g["ffn_up_exps.weight"][ex] @ xn[t]
            gate = g["ffn_gate_exps.weight"][ex] @ xn[t]
            if gptoss:
                up = up + g["ffn_up_exps.bias"][ex]
                gate = gate + g["ffn_gate_exps.bias"][ex]
                gc = np.minimum(gate, 7.0)
                uc = np.clip(up, -7.0, 7.0)
                act = gc / (1 + np.exp(-1.702 * gc)) * (uc + 1)
            else:
                act = gate / (1 + np.exp(-gate)) * up
            down = g["ffn_down_exps.weight"][ex] @ act
            if gptoss:
                down = down + g["ffn_down_exps.bias"][ex]
            out[t] += wk[t, j] * down
    return out


def main(d):
    os.makedirs(d, exist_ok=True)
    p = lambda name: os.path.join(d, name)
    rng = np.random.default_rng(19)
    np.save(p("x.npy"), rng.standard_normal((7, N_EMBD)).astype(np.float32))
    write_gguf(p("qwen3.gguf"), *model("qwen3moe", 8, np.random.default_rng(1)))
    write_gguf(p("gptoss.gguf"), *model("gpt-oss", 4, np.random.default_rng(2)))
    q = lambda **kw: model("qwen3moe", 8, np.random.default_rng(1), **kw)
    write_gguf(p("unknown.gguf"), *model("llama4", 8, np.random.default_rng(1)))
    write_gguf(p("nokey.gguf"), *q(drop_key="qwen3moe.expert_count"))
    write_gguf(p("strcount.gguf"), *q(kv_override=("qwen3moe.expert_used_count", T_STR, "2")))
    write_gguf(p("toomany.gguf"), *q(kv_override=("qwen3moe.expert_used_count", T_U32, 9)))
    write_gguf(p("shape.gguf"), *q(tensor_override=(
        "blk.1.ffn_up_exps.weight", np.zeros((8, 32, 64), np.float32))))
    write_gguf(p("notensor.gguf"), *q(drop_tensor="blk.1.ffn_gate_exps.weight"))


def compare(ref_path, got_path, tol):
    ref = np.load(ref_path).astype(np.float64)
    got = np.load(got_path).astype(np.float64)
    if ref.shape != got.shape:
        sys.exit(f"shape {list(got.shape)}, expected {list(ref.shape)}")
    err = float(((got - ref) ** 2).sum() / (ref ** 2).sum())
    if not err <= tol:
        sys.exit(f"normalised squared error {err:.3g} > {tol:g}")
    print(f"match (shape {list(ref.shape)}, nse <= {tol:g})")


if __name__ == "__main__":
    a = sys.argv
    if len(a) == 7 and a[1] == "ref":
        x = np.load(os.path.join(a[2], "x.npy"))
        np.save(a[6], reference(a[3], read_gguf(a[4]), int(a[5]), x).astype(np.float32))
    elif len(a) == 5 and a[1] == "compare":
        compare(a[2], a[3], float(a[4]))
    elif len(a) > 2 and a[1] == "exit1":
        r = subprocess.run(a[2:], capture_output=True, text=True)
        sys.stdout.write(r.stderr)
        print(f"exit {r.returncode}")
        sys.exit(0 if r.returncode == 1 else 1)
    elif len(a) == 2:
        main(a[1])
    else:
        sys.exit(__doc__)
