# Captures each tiny example layer at several token counts (T written as a
# number, as a backend's capture has it), re-symbolises it with dyn-dims under
# --verify-numerics (which runs it at other T against the capture in chunks),
# and checks the result is the example itself, token for token.
#   recapture.py EXAMPLES_DIR TMPDIR
import os, re, subprocess, sys

examples, tmp = sys.argv[1], sys.argv[2]
os.makedirs(tmp, exist_ok=True)
layers = {"qwen3_tiny": "T=x:0", "gptoss_tiny": "T=x:0", "gemma4_tiny": "T=x:0,T=logits:0"}
failed = False
for name, axes in layers.items():
    src = open(os.path.join(examples, name + ".moe")).read()
    want = subprocess.run(["moe-opt", "-"], input=src, capture_output=True, text=True,
                          check=True).stdout
    for t in (1, 2, 8, 64):  # 2 = top-k, 8 = the expert count, 64 = n_embd and n_ff
        captured = re.sub(r"\bT\b", str(t), src.replace(" where T in [1, 512]", ""))
        path = os.path.join(tmp, f"{name}.{t}.moe")
        open(path, "w").write(captured)
        r = subprocess.run(["moe-opt", path, "-p", f"dyn-dims{{{axes},max=512}}",
                            "--verify-numerics"], capture_output=True, text=True)
        ok = r.returncode == 0 and r.stdout == want and "note" not in r.stderr
        print(f"{name} captured at T={t}: {'same as the example' if ok else 'DIFFERS'}")
        if not ok:
            failed = True
            sys.stderr.write(r.stderr)
sys.exit(1 if failed else 0)
