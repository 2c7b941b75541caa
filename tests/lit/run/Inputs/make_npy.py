# Writes small .npy files for the error tests: make_npy.py DIR
import sys, os
import numpy as np
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
np.save(os.path.join(d, "ids_ok.npy"), np.array([[0, 3], [1, 2], [3, 3]], dtype=np.int32))
np.save(os.path.join(d, "ids_bad.npy"), np.array([[0, 3], [1, 4], [3, 3]], dtype=np.int32))
np.save(os.path.join(d, "ids_neg.npy"), np.array([[0, -1], [1, 2], [3, 3]], dtype=np.int32))
np.save(os.path.join(d, "x3.npy"), np.ones((3, 1, 32), dtype=np.float32))
np.save(os.path.join(d, "x_wrong.npy"), np.ones((3, 1, 31), dtype=np.float32))
np.save(os.path.join(d, "w_f64.npy"), np.full((4, 8, 32), 0.5, dtype=np.float64))
with open(os.path.join(d, "garbage.npy"), "wb") as f:
    f.write(b"not an npy file")
