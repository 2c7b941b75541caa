# What the library API gained in issue 16 (queries, symbols inferred from the
# inputs, results into caller arrays, error kinds from the library,
# diagnostics), through the Python module.
import numpy as np
import pytest

import moe
import reference as ref
from conftest import ROUTE4, compiled, example, rng

T = 7


@pytest.fixture(scope="module")
def qwen3():
    exe = compiled(example("qwen3_tiny.moe"))
    exe.bind_random(4)
    return exe


def x_of(t, seed=1):
    return rng(seed).standard_normal((t, 64)).astype(np.float32)


def test_queries_before_running(qwen3):
    assert qwen3.symbols == {"T": (1, 512)}
    d = qwen3.argument("x", T=5)
    assert (d.dtype, d.shape, d.type) == ("f32", (5, 64), "tensor<T x 64 x f32>")
    d = qwen3.argument("up_exps")
    assert (d.dtype, d.shape) == ("f32", (8, 64, 64))
    [r] = qwen3.results(T=3)
    assert (r.dtype, r.shape, r.type) == ("f32", (3, 64), "tensor<T x 64 x f32>")
    with pytest.raises(moe.ShapeError, match="513"):
        qwen3.results(T=513)
    with pytest.raises(moe.BindError, match="'nope'"):
        qwen3.argument("nope")
    assert len(qwen3.cache_key) > 8


def test_symbols_inferred_from_inputs(qwen3):
    for t in (1, T, 20):
        x = x_of(t)
        assert qwen3.infer_symbols(x=x) == {"T": t}
        np.testing.assert_array_equal(qwen3(x=x), qwen3(x=x, T=t))
    with pytest.raises(moe.ShapeError) as e:
        qwen3(x=x_of(T), T=5)
    assert "5" in str(e.value) and "7" in str(e.value)


def test_results_into_caller_arrays(qwen3):
    x = x_of(T)
    want = qwen3(x=x)
    out = np.full((T, 64), np.nan, np.float32)
    got = qwen3(x=x, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)
    with pytest.raises(moe.ShapeError, match=r"\[6, 64\]"):
        qwen3(x=x, out=np.zeros((6, 64), np.float32))
    with pytest.raises(moe.ShapeError, match="float64"):
        qwen3(x=x, out=np.zeros((T, 64)))
    with pytest.raises(moe.ShapeError, match="C-contiguous"):
        qwen3(x=x, out=np.zeros((64, T), np.float32).T)


def test_error_kinds_come_from_the_library(qwen3):
    with pytest.raises(moe.FileError, match="/nonexistent.moe"):
        moe.parse_file("/nonexistent.moe")
    with pytest.raises(moe.ShapeError, match=r"\[8, 64\]"):
        qwen3(x=x_of(8), T=7)
    with pytest.raises(moe.BindError, match="'x'"):
        qwen3(T=T)


MERGE_REFUSED = """
func @f(%x: tensor<T x 1 x 64 x f32>, %ids: tensor<T x 2 x i32>,
        %up_exps: tensor<4 x 32 x 64 x q8_0> {param},
        %gate_exps: tensor<4 x 32 x 64 x f32> {param}) -> tensor<T x 2 x 32 x f32>
    where T in [1, 64] {
  %up = matmul_id %x, %up_exps, %ids
  %gate = matmul_id %x, %gate_exps, %ids
  %act = swiglu %gate, %up
  return %act
}
"""


def test_diagnostics_reach_the_handler():
    got = []
    moe.set_diagnostic_handler(lambda severity, message: got.append((severity, message)))
    try:
        moe.parse(MERGE_REFUSED).run_pipeline("merge-up-gate")
    finally:
        moe.set_diagnostic_handler(None)
    assert any(s == "remark" and "not merged: weight types differ" in m for s, m in got), got
    with pytest.raises(moe.BindError):
        moe.set_diagnostic_handler(3)


def test_run_time_errors_are_run_errors():
    exe = compiled("""
func @f(%x: tensor<T x 1 x 64 x f32>, %ids: tensor<T x 2 x i32>,
        %w: tensor<4 x 32 x 64 x f32> {param}) -> tensor<T x 2 x 32 x f32> where T in [1, 8] {
  %y = matmul_id %x, %w, %ids
  return %y
}""", "f")
    exe.bind_random(1)
    x = np.ones((3, 1, 64), np.float32)
    assert exe(x=x, ids=np.array([[0, 1], [2, 3], [3, 0]], np.int32)).shape == (3, 2, 32)
    with pytest.raises(moe.RunError) as e:
        exe(x=x, ids=np.array([[0, 1], [2, 7], [3, 0]], np.int32))
    assert e.value.kind == "runtime" and "7" in str(e.value)


def test_every_result_type_into_caller_arrays():
    exe = compiled(ROUTE4, "route")
    x = rng(50).standard_normal((5, 8)).astype(np.float32)
    p, ids, h, b = exe(x=x)
    outs = (np.empty((5, 8), np.float32), np.empty((5, 2), np.int32),
            np.empty((5, 8), np.float16), np.empty((5, 8), np.uint16))
    assert exe(x=x, out=outs) is outs
    np.testing.assert_array_equal(outs[0], p)
    np.testing.assert_array_equal(outs[1], ids)
    np.testing.assert_array_equal(outs[2], h)
    np.testing.assert_array_equal(outs[3], ref.to_bf16_bits(p)[0])
    with pytest.raises(moe.ShapeError):
        exe(x=x, out=outs[:3])
