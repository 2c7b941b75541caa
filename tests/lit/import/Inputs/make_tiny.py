"""GGUF files for the moe-import tests, written in Python independently of
the C++ writer: two tiny f32 models (the NumPy reference is moe_ref.py) and
the malformed-metadata files of errors.test.

Usage: make_tiny.py DIR        writes the files below into DIR
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
  noexperts.gguf  llama without llama.expert_count (a dense llama)
  dense.gguf      gemma4 whose two blocks have no ffn_gate_inp (dense)
  legacy.gguf     llama with the pre-2024 per-expert tensors blk.0.ffn_up.0.weight
  mixtral.gguf    qwen3moe's tensors under general.architecture = "mixtral" with
                  mixtral.* keys (an alias of llama)
  mixed.gguf      gemma4 with a dense block 0 and a MoE block 1 (zero weights)
  ffarray.gguf    gemma4 whose per-block gemma4.feed_forward_length has 1 value
                  for 2 blocks
"""
import os
import struct
import subprocess
import sys

import numpy as np

GGML_F32 = 0
ALIGN = 32
T_U32, T_I32, T_F32, T_STR, T_ARR = 4, 5, 6, 8, 9
N_EMBD, N_FF, TOPK, N_BLOCKS, EPS = 64, 64, 2, 2, 1e-6


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv_bytes(key, vtype, value):
    out = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == T_STR:
        return out + gguf_string(value)
    if vtype == T_ARR:  # an array of uint32
        return out + struct.pack(f"<IQ{len(value)}I", T_U32, len(value), *value)
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
    write_gguf(p("blocks.gguf"), *q(kv_override=("qwen3moe.block_count", T_U32, 2818049)))
    write_gguf(p("shape.gguf"), *q(tensor_override=(
        "blk.1.ffn_up_exps.weight", np.zeros((8, 32, 64), np.float32))))
    write_gguf(p("notensor.gguf"), *q(drop_tensor="blk.1.ffn_gate_exps.weight"))
    f = lambda *shape: np.zeros(shape, np.float32)
    keys = lambda arch, *extra: [("general.architecture", T_STR, arch),
                                 (f"{arch}.block_count", T_U32, 2),
                                 (f"{arch}.embedding_length", T_U32, 64),
                                 (f"{arch}.expert_used_count", T_U32, 2),
                                 (f"{arch}.attention.layer_norm_rms_epsilon", T_F32, EPS),
                                 *extra]
    write_gguf(p("noexperts.gguf"), keys("llama", ("llama.feed_forward_length", T_U32, 64)), [])
    write_gguf(p("dense.gguf"), keys("gemma4", ("gemma4.expert_count", T_U32, 8)),
               [("blk.0.ffn_norm.weight", f(64)), ("blk.1.ffn_norm.weight", f(64))])
    write_gguf(p("legacy.gguf"), keys("llama", ("llama.expert_count", T_U32, 8),
                                      ("llama.feed_forward_length", T_U32, 64)),
               [("blk.0.ffn_norm.weight", f(64)), ("blk.0.ffn_gate_inp.weight", f(8, 64)),
                *[(f"blk.0.ffn_{w}.{e}.weight", f(64, 64)) for w in ("gate", "down", "up")
                  for e in range(8)]])
    kvs, ts = model("mixtral", 8, np.random.default_rng(1))
    write_gguf(p("mixtral.gguf"),
               [(k.replace("expert_feed_forward", "feed_forward"), t, v) for k, t, v in kvs], ts)
    b1 = lambda n, *shape: (f"blk.1.{n}.weight", f(*shape))
    write_gguf(p("mixed.gguf"), keys("gemma4", ("gemma4.expert_count", T_U32, 8),
                                     ("gemma4.expert_feed_forward_length", T_U32, 64),
                                     ("gemma4.feed_forward_length", T_ARR, [64, 64])),
               [("blk.0.ffn_norm.weight", f(64)), b1("ffn_norm", 64), b1("ffn_gate", 64, 64),
                b1("ffn_up", 64, 64), b1("ffn_down", 64, 64), b1("post_ffw_norm_1", 64),
                b1("pre_ffw_norm_2", 64), ("blk.1.ffn_gate_inp.scale", f(64)),
                b1("ffn_gate_inp", 8, 64), b1("ffn_gate_exps", 8, 64, 64),
                b1("ffn_up_exps", 8, 64, 64), b1("ffn_down_exps", 8, 64, 64),
                b1("post_ffw_norm_2", 64), b1("post_ffw_norm", 64)])
    write_gguf(p("badmerged.gguf"), keys("qwen3moe", ("qwen3moe.expert_count", T_U32, 8),
                                         ("qwen3moe.expert_feed_forward_length", T_U32, 64)),
               [b1("ffn_norm", 64), b1("ffn_gate_inp", 8, 64), b1("ffn_gate_up_exps", 8, 96, 64),
                b1("ffn_down_exps", 8, 64, 64)])
    write_gguf(p("shexpscale.gguf"), keys("qwen35moe", ("qwen35moe.expert_count", T_U32, 8),
                                          ("qwen35moe.expert_feed_forward_length", T_U32, 64),
                                          ("qwen35moe.expert_shared_feed_forward_length",
                                           T_U32, 64)),
               [b1("ffn_gate_inp", 8, 64), ("blk.1.ffn_up_shexp.scale", f(1))])
    write_gguf(p("ffarray.gguf"), keys("gemma4", ("gemma4.expert_count", T_U32, 8),
                                       ("gemma4.expert_feed_forward_length", T_U32, 64),
                                       ("gemma4.feed_forward_length", T_ARR, [64])),
               [("blk.1.ffn_gate_inp.weight", f(8, 64))])


if __name__ == "__main__":
    a = sys.argv
    if len(a) > 2 and a[1] == "exit1":
        r = subprocess.run(a[2:], capture_output=True, text=True)
        sys.stdout.write(r.stderr)
        print(f"exit {r.returncode}")
        sys.exit(0 if r.returncode == 1 else 1)
    elif len(a) == 2:
        main(a[1])
    else:
        sys.exit(__doc__)
