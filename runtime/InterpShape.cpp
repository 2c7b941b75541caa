//===- InterpShape.cpp - reshape, permute, slice, concat, broadcast, view -===//
//
// Shape ops move elements and compute nothing; they work on every
// non-quantised type (f32, f16, bf16, i32). Each is a strided walk over the
// result: result element i reads the input at a computed element offset.
//
//===----------------------------------------------------------------------===//
#include "runtime/InterpInternal.h"

using namespace moe;
using namespace moe::interp;

namespace {
/// out[idx] = src[base + sum idx[d] * srcStrides[d]] for every index of out.
void gatherStrided(const Tensor &src, std::vector<int64_t> srcStrides, int64_t base,
                   Tensor &out) {
  walk<1>(out.shape, {std::move(srcStrides)}, {base},
          [&](int64_t flat, const std::array<int64_t, 1> &o) {
            copyElem(src, o[0], out, flat);
          });
}
} // namespace

/// Same row-major elements, new shape.
llvm::Error interp::interpReshape(Ctx &c) {
  const Tensor &x = *c.in[0];
  if (x.numElements() != c.out.numElements())
    return c.error("{} elements cannot be reshaped to {}", x.numElements(),
                   c.out.shapeStr());
  c.out.f = x.f;
  c.out.i = x.i;
  return llvm::Error::success();
}

/// Result dim i is input dim perm[i] (numpy transpose).
llvm::Error interp::interpPermute(Ctx &c) {
  const Tensor &x = *c.in[0];
  std::vector<int64_t> perm = c.intsAttr("perm"), in = x.strides(), s;
  for (int64_t p : perm)
    s.push_back(in[p]);
  gatherStrided(x, s, 0, c.out);
  return llvm::Error::success();
}

/// [start, start + size) along `axis`.
llvm::Error interp::interpSlice(Ctx &c) {
  const Tensor &x = *c.in[0];
  auto ax = c.axisAttr(x.rank());
  if (!ax)
    return ax.takeError();
  int64_t start = c.intAttr("start"), size = c.intAttr("size");
  if (start < 0 || size < 0 || start > x.shape[*ax] - size)
    return c.error("slice [{}, {}) exceeds dim {} of size {}", start, start + size, *ax,
                   x.shape[*ax]);
  std::vector<int64_t> s = x.strides();
  gatherStrided(x, s, start * s[*ax], c.out);
  return llvm::Error::success();
}

/// The operands one after another along `axis`.
llvm::Error interp::interpConcat(Ctx &c) {
  auto ax = c.axisAttr(c.out.rank());
  if (!ax)
    return ax.takeError();
  std::vector<int64_t> outStrides = c.out.strides();
  int64_t at = 0;
  for (const Tensor *x : c.in) {
    if (at + x->shape[*ax] > c.out.shape[*ax])
      return c.error("operands exceed the result along axis {}", *ax);
    // Walk the operand; offset 0 is its own flat index, offset 1 the result's.
    walk<2>(x->shape, {x->strides(), outStrides}, {0, at * outStrides[*ax]},
            [&](int64_t, const std::array<int64_t, 2> &o) { copyElem(*x, o[0], c.out, o[1]); });
    at += x->shape[*ax];
  }
  if (at != c.out.shape[*ax])
    return c.error("operands fill {} of {} along axis {}", at, c.out.shape[*ax], *ax);
  return llvm::Error::success();
}

/// numpy broadcast_to.
llvm::Error interp::interpBroadcast(Ctx &c) {
  const Tensor &x = *c.in[0];
  gatherStrided(x, broadcastStrides(x.shape, c.out.shape), 0, c.out);
  return llvm::Error::success();
}

/// result[idx] = input[offset + sum idx[d] * strides[d]] over the input's
/// row-major elements. The verifier proved the bounds symbolically; they are
/// re-checked here on the concrete values (in 128-bit arithmetic).
llvm::Error interp::interpView(Ctx &c) {
  const Tensor &x = *c.in[0];
  std::vector<int64_t> strides = c.intsAttr("strides");
  int64_t offset = c.intAttr("offset", 0);
  if (strides.size() != c.out.shape.size())
    return c.error("strides has {} entries, the shape has {}", strides.size(),
                   c.out.shape.size());
  if (c.out.numElements() == 0)
    return llvm::Error::success();
  __int128 lo = offset, hi = offset;
  for (size_t d = 0; d < strides.size(); ++d) {
    __int128 span = (__int128)(c.out.shape[d] - 1) * strides[d];
    (span < 0 ? lo : hi) += span;
  }
  if (lo < 0 || hi >= x.numElements())
    return c.error("view reads elements [{}, {}] of an input with {} elements",
                   (long long)std::max<__int128>(lo, INT64_MIN),
                   (long long)std::min<__int128>(hi, INT64_MAX), x.numElements());
  gatherStrided(x, strides, offset, c.out);
  return llvm::Error::success();
}
