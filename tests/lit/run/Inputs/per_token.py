# The captured-at-7 qwen3 layer, made dynamic by dyn-dims, gives every token
# the same result whatever the token count: run it at T = 64, 7 and 1 on the
# first rows of one input and compare row by row.
#   per_token.py MOE_FILE TMPDIR
import os, subprocess, sys
import numpy as np

moe, tmp = sys.argv[1], sys.argv[2]
os.makedirs(tmp, exist_ok=True)
rng = np.random.default_rng(3)
x = rng.uniform(-1, 1, size=(64, 64)).astype(np.float32)
outs = {}
for t in (64, 7, 1):
    np.save(os.path.join(tmp, f"x{t}.npy"), x[:t])
    d = os.path.join(tmp, f"out{t}")
    subprocess.run(["moe-run", moe, "-p", "dyn-dims{T=x:0},default", "--sym", f"T={t}",
                    "--seed", "5", "--input", f"x={os.path.join(tmp, f'x{t}.npy')}",
                    "--output", d], check=True, stdout=subprocess.DEVNULL)
    outs[t] = np.load(os.path.join(d, "result0.npy"))
for t in (7, 1):
    err = np.abs(outs[t] - outs[64][:t]).max() / max(np.abs(outs[64][:t]).max(), 1e-30)
    print(f"T={t}: max rel diff to the first {t} rows of T=64: {err:.3g}")
    if err > 1e-6:
        sys.exit(f"per-token results differ at T={t}")
print("per-token results agree")
