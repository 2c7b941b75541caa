# Derived params and split functions through the module: the caller binds
# the params a model file holds, whole; the library builds merged and
# sharded ones (issue 16, items 2 and 5).
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import moe
import reference as ref
from conftest import EXAMPLES, compiled, example, rng

T = 7
SPLIT = "default,tp-split{ranks=2},delay-allreduce"


def weights(seed):
    r = rng(seed)
    return {"gate_inp": (r.standard_normal((8, 64)) * 0.125).astype(np.float32),
            **{p: (r.standard_normal((8, 64, 64)) * 0.125).astype(np.float32)
               for p in ("up_exps", "gate_exps", "down_exps")}}


def tokens(seed, t=T):
    return rng(seed).standard_normal((t, 64)).astype(np.float32)


@pytest.mark.parametrize("pipeline,ranks", [("default", 1), (SPLIT, 2)])
def test_sources_bound_by_hand_equal_numpy(pipeline, ranks):
    exe = compiled(example("qwen3_tiny.moe"), pipeline=pipeline)
    assert exe.ranks == ranks
    assert exe.params == ["gate_inp", "up_exps", "gate_exps", "down_exps"]
    assert exe.derived_params == {"gate_up_exps": ["gate_exps", "up_exps"]}
    w = weights(40)
    for name, a in w.items():
        exe.bind(name, a)
    x = tokens(41)
    want, probs = ref.qwen3(x, **w)
    assert ref.topk_gap(probs, 2) > 1e-4
    assert ref.rel_err(exe(x=x), want) < 1e-5
    with pytest.raises(moe.BindError, match="derived from .gate_exps., .up_exps."):
        exe.bind("gate_up_exps", np.zeros((8, 128, 64), np.float32))


@pytest.mark.parametrize("pipeline,ranks", [("default", 1), (SPLIT, 2)])
def test_bind_random_equals_moe_run_seed(tools_dir, tmp_path, pipeline, ranks):
    x = tokens(42)
    np.save(tmp_path / "x.npy", x)
    subprocess.run([str(tools_dir / "moe-run"), str(EXAMPLES / "qwen3_tiny.moe"), "-p", pipeline,
                    "--ranks", str(ranks), "--seed", "5", "--sym", f"T={T}",
                    "--input", f"x={tmp_path / 'x.npy'}", "--output", str(tmp_path / "out")],
                   check=True, stdout=subprocess.DEVNULL)
    exe = compiled(example("qwen3_tiny.moe"), pipeline=pipeline)
    exe.bind_random(5)
    np.testing.assert_array_equal(exe(x=x, T=T), np.load(tmp_path / "out" / "result0.npy"))


def test_rank_count_must_be_the_functions():
    m = example("qwen3_tiny.moe")
    m.run_pipeline(SPLIT)
    assert moe.compile(m, "moe_ffn", ranks=2).ranks == 2
    with pytest.raises(moe.CompileError, match="split for 2 ranks"):
        moe.compile(m, "moe_ffn", ranks=3)


def test_split_function_under_mpirun(tmp_path):
    """Two processes under mpirun, each running its rank with
    comm=moe.MpiWorld(): rank 0's result equals the in-process ranks'."""
    mpirun = shutil.which("mpirun")
    if os.environ.get("MOE_HAVE_MPI", "OFF").upper() not in ("ON", "1", "TRUE") or not mpirun:
        pytest.skip("moe was built without MPI, or mpirun is missing")
    exe = compiled(example("qwen3_tiny.moe"), pipeline=SPLIT)
    exe.bind_random(6)
    x = tokens(43)
    np.save(tmp_path / "x.npy", x)
    script = pathlib.Path(__file__).with_name("mpi_rank.py")
    subprocess.run([mpirun, "--allow-run-as-root", "--mca", "btl", "self,vader", "--oversubscribe",
                    "-np", "2", sys.executable, str(script), str(EXAMPLES / "qwen3_tiny.moe"), SPLIT,
                    "6", str(tmp_path)], check=True, timeout=120)
    np.testing.assert_array_equal(np.load(tmp_path / "mpi.npy"), exe(x=x))
