# One rank of test_ranks.py's mpirun test: compiles the split layer for this
# process's rank, binds the seeded weights whole (the library cuts the
# shard), runs on DIR/x.npy; rank 0 writes DIR/mpi.npy.
# Usage: mpirun -np 2 python3 mpi_rank.py LAYER.moe PIPELINE SEED DIR
import sys

import numpy as np

import moe

layer, pipeline, seed, d = sys.argv[1:5]
world = moe.MpiWorld()
m = moe.parse_file(layer)
m.run_pipeline(pipeline)
exe = moe.compile(m, m.functions[0], threads=1, comm=world)
assert exe.ranks == world.size == 2
exe.bind_random(int(seed))
try:
    y = exe(x=np.load(f"{d}/x.npy"))
except moe.Error as e:
    print(f"rank {world.rank}: {e}", file=sys.stderr)
    world.abort(1)
if world.rank == 0:
    np.save(f"{d}/mpi.npy", y)
