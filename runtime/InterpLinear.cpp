//===- InterpLinear.cpp - matmul, matmul_id, add_id, gather ---------------===//
//
// Weights of any type are read as f32 rows (dequantised with Formats.h for
// the block types). Dot products multiply in double (exact for f32 inputs)
// and accumulate in double, k = 0 .. K-1 in order, rounding once to f32.
// Ids are checked before anything is computed; the first bad one in row-major
// order is reported.
//
//===----------------------------------------------------------------------===//
#include "runtime/InterpInternal.h"

#include "ir/Scalar.h"

using namespace moe;
using namespace moe::interp;

namespace {
/// Rows [first, first + count) of `w` as f32: a pointer into `w.f` for float
/// tensors, else decoded into `scratch`.
const float *rowsF32(const Tensor &w, int64_t first, int64_t count,
                     std::vector<float> &scratch) {
  int64_t len = w.rowLength();
  if (w.elem == ElemType::F32 || w.elem == ElemType::F16 || w.elem == ElemType::BF16)
    return w.f.data() + first * len;
  scratch.resize(count * len);
  w.dequantizeRows(first, count, scratch.data());
  return scratch.data();
}

float dot(const float *a, const float *b, int64_t k) {
  double acc = 0;
  for (int64_t j = 0; j < k; ++j)
    acc += (double)a[j] * (double)b[j];
  return (float)acc;
}

/// Checks every id of ids[T, k] is in [0, n); names token and slot otherwise.
llvm::Error checkIds(const Ctx &c, const Tensor &ids, int64_t n, llvm::StringRef what) {
  int64_t k = ids.shape[1];
  for (int64_t t = 0; t < ids.shape[0]; ++t)
    for (int64_t j = 0; j < k; ++j) {
      int32_t id = ids.i[t * k + j];
      if (id < 0 || id >= n)
        return c.error("token {}, slot {}: {} id {} is out of range [0, {})", t, j,
                       what.str(), id, n);
    }
  return llvm::Error::success();
}
} // namespace

/// x[..., M, K] times w[N, K]^T.
llvm::Error interp::interpMatmul(Ctx &c) {
  const Tensor &x = *c.in[0], &w = *c.in[1];
  int64_t K = x.shape.back(), N = w.shape[0];
  int64_t rows = product(llvm::ArrayRef<int64_t>(x.shape).drop_back());
  std::vector<float> scratch;
  const float *wf = rowsF32(w, 0, N, scratch);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n)
      c.out.f[r * N + n] = dot(x.f.data() + r * K, wf + n * K, K);
  return llvm::Error::success();
}

/// out[t, j, :] = w[ids[t, j]] @ x[t, B == 1 ? 0 : j]. One expert's weights
/// are decoded at a time, then used by every (t, j) routed to it.
llvm::Error interp::interpMatmulId(Ctx &c) {
  const Tensor &x = *c.in[0], &w = *c.in[1], &ids = *c.in[2];
  int64_t T = x.shape[0], B = x.shape[1], K = x.shape[2];
  int64_t E = w.shape[0], N = w.shape[1], k = ids.shape[1];
  if (auto e = checkIds(c, ids, E, "expert"))
    return e;
  std::vector<std::vector<int64_t>> routed(E); // flat (t * k + j) per expert
  for (int64_t tj = 0; tj < T * k; ++tj)
    routed[ids.i[tj]].push_back(tj);
  std::vector<float> scratch;
  for (int64_t e = 0; e < E; ++e) {
    if (routed[e].empty())
      continue;
    const float *we = rowsF32(w, e * N, N, scratch);
    for (int64_t tj : routed[e]) {
      int64_t t = tj / k, j = tj % k;
      const float *xr = x.f.data() + (t * B + (B == 1 ? 0 : j)) * K;
      for (int64_t n = 0; n < N; ++n)
        c.out.f[tj * N + n] = dot(xr, we + n * K, K);
    }
  }
  return llvm::Error::success();
}

/// out[t, j, :] = x[t, j, :] + b[ids[t, j], :].
llvm::Error interp::interpAddId(Ctx &c) {
  const Tensor &x = *c.in[0], &b = *c.in[1], &ids = *c.in[2];
  int64_t T = x.shape[0], k = x.shape[1], N = x.shape[2], E = b.shape[0];
  if (auto e = checkIds(c, ids, E, "bias"))
    return e;
  for (int64_t tj = 0; tj < T * k; ++tj) {
    const float *br = b.f.data() + (int64_t)ids.i[tj] * N;
    for (int64_t n = 0; n < N; ++n)
      c.out.f[tj * N + n] = scalar::binary(OpKind::Add, x.f[tj * N + n], br[n]);
  }
  return llvm::Error::success();
}

/// src[B..., S, R...], idx[B..., M...] -> out[B..., M..., R...] with
/// out[b, m, r] = src[b, idx[b, m], r] (the dims before `axis` are batch
/// dims; NumPy's take_along_axis for rank-equal operands, take for axis 0).
llvm::Error interp::interpGather(Ctx &c) {
  const Tensor &src = *c.in[0], &idx = *c.in[1];
  auto ax = c.axisAttr(src.rank());
  if (!ax)
    return ax.takeError();
  AxisSplit s = splitAt(src.shape, *ax); // outer = batch, len = S, inner = R
  int64_t M = product(llvm::ArrayRef<int64_t>(idx.shape).drop_front(*ax));
  for (int64_t p = 0; p < s.outer * M; ++p) {
    int32_t id = idx.i[p];
    if (id < 0 || id >= s.len) {
      std::string token;
      if (idx.rank() > 0)
        token = fmt::format(" (token {})",
                            p / product(llvm::ArrayRef<int64_t>(idx.shape).drop_front()));
      return c.error("index {} at indices{}{} is out of range [0, {}) for axis {} of {}",
                     id, formatIndex(p, idx.shape), token, s.len, *ax, src.shapeStr());
    }
  }
  for (int64_t p = 0; p < s.outer * M; ++p) {
    int64_t b = p / std::max<int64_t>(M, 1);
    int64_t from = (b * s.len + idx.i[p]) * s.inner;
    if (src.elem == ElemType::I32 || !isQuantized(src.elem))
      for (int64_t r = 0; r < s.inner; ++r)
        copyElem(src, from + r, c.out, p * s.inner + r);
    else
      src.readF32(from, s.inner, c.out.f.data() + p * s.inner);
  }
  return llvm::Error::success();
}
