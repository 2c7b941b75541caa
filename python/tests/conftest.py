# Shared fixtures of the Python module's tests (python/tests, run by ctest as
# `python`). ctest puts the built module on PYTHONPATH and names the source
# and tools directories; run by hand from the build tree:
#   PYTHONPATH=build/python MOE_TOOLS_DIR=build/tools /usr/bin/python3 -m pytest python/tests
import os
import pathlib

import numpy as np
import pytest

import moe

SOURCE_DIR = pathlib.Path(os.environ.get("MOE_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
EXAMPLES = SOURCE_DIR / "examples"


@pytest.fixture(scope="session")
def tools_dir():
    d = os.environ.get("MOE_TOOLS_DIR")
    if not d:
        pytest.skip("MOE_TOOLS_DIR is not set (ctest sets it)")
    return pathlib.Path(d)


def example(name):
    return moe.parse_file(str(EXAMPLES / name))


def compiled(text_or_module, fn="moe_ffn", pipeline=None, threads=2):
    m = moe.parse(text_or_module) if isinstance(text_or_module, str) else text_or_module
    if pipeline:
        m.run_pipeline(pipeline)
    return moe.compile(m, fn, threads=threads)


# A function with a result of each type a layer returns: f32, i32 ids, f16
# and bf16.
ROUTE4 = """
func @route(%x: tensor<T x 8 x f32>) -> tensor<T x 8 x f32>, tensor<T x 2 x i32>,
                                         tensor<T x 8 x f16>, tensor<T x 8 x bf16>
    where T in [1, 64] {
  %p = softmax %x {axis = -1}
  %ids = topk %p {k = 2}
  %h = cast %p {to = f16}
  %b = cast %p {to = bf16}
  return %p, %ids, %h, %b
}"""


def rng(seed):
    return np.random.default_rng(seed)
