# Damages every .o file of a cache directory: `garbage` overwrites it,
# `truncate` drops one byte from the middle.
import glob, sys
mode, d = sys.argv[1], sys.argv[2]
for p in glob.glob(d + "/*.o"):
    b = open(p, "rb").read()
    open(p, "wb").write(b"garbage" if mode == "garbage" else b[: len(b) // 2] + b[len(b) // 2 + 1 :])
