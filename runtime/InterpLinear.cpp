//===- InterpLinear.cpp - matmul, matmul_id, add_id, gather ---------------===//
//
// With the default activation precision (act = f32), weights of any type are
// read as f32 rows (dequantised with Formats.h for the block types); dot
// products multiply in double (exact for f32 inputs) and accumulate in double,
// k = 0 .. K-1 in order, rounding once to f32. act = bf16 rounds each
// activation to bf16 first; act = q8_0 quantises each activation row to q8_0
// blocks with ggml's reference quantiser and takes integer block dot
// products with the weights' codes (docs/IR.md, "Activation precision").
// Ids are checked before anything is computed; the first bad one in row-major
// order is reported.
//
//===----------------------------------------------------------------------===//
#include "runtime/InterpInternal.h"

#include "ir/Scalar.h"
#include "ir/ShapeRules.h"
#include "runtime/Formats.h"

#include <cstring>

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

/// The integer codes w_i and the scale dw of one weight block (q8_0: the
/// int8 qs and the f16 d; q4_0: nibble - 8 and the f16 d; mxfp4: the doubled
/// E2M1 value and e8m0ToF32Half(e)), so that element i is w_i * dw.
float blockCodes(ElemType t, const uint8_t *blk, int32_t w[32]) {
  uint16_t d;
  std::memcpy(&d, blk, 2);
  switch (t) {
  case ElemType::Q8_0:
    for (int i = 0; i < 32; ++i)
      w[i] = (int8_t)blk[2 + i];
    return f16ToF32(d);
  case ElemType::Q4_0:
    for (int i = 0; i < 16; ++i) {
      w[i] = (blk[2 + i] & 0xF) - 8;
      w[i + 16] = (blk[2 + i] >> 4) - 8;
    }
    return f16ToF32(d);
  case ElemType::MXFP4:
    for (int i = 0; i < 16; ++i) {
      w[i] = kMxfp4Values[blk[1 + i] & 0xF];
      w[i + 16] = kMxfp4Values[blk[1 + i] >> 4];
    }
    return e8m0ToF32Half(blk[0]);
  default:
    break;
  }
  llvm_unreachable("act = q8_0 with a weight type the verifier rejects");
}

/// act = q8_0: the dot product of an activation row quantised to q8_0 (xq,
/// rowBytes(Q8_0, K) bytes) with a block-quantised weight row. Per block an
/// exact integer sum and one f32 scale; blocks summed in double, in order.
float dotQ8(const uint8_t *xq, ElemType wt, const uint8_t *wrow, int64_t K) {
  const int64_t wbb = blockBytes(wt), xbb = blockBytes(ElemType::Q8_0);
  double acc = 0;
  int32_t w[32];
  for (int64_t b = 0; b < K / 32; ++b) {
    const uint8_t *xb = xq + b * xbb;
    float dw = blockCodes(wt, wrow + b * wbb, w);
    uint16_t dx;
    std::memcpy(&dx, xb, 2);
    int32_t sumi = 0;
    for (int i = 0; i < 32; ++i)
      sumi += (int8_t)xb[2 + i] * w[i];
    float scale = f16ToF32(dx) * dw;
    acc += (double)scale * (double)(float)sumi;
  }
  return (float)acc;
}

/// The activation rows of x (rows of its innermost axis) in the op's `act`
/// precision: f32 as they are, bf16 rounded, q8_0 quantised to blocks.
struct Activations {
  ElemType act;
  int64_t K;
  const float *f;           ///< f32 / bf16 rows
  std::vector<float> bf16;  ///< act = bf16: the rounded copy `f` points to
  std::vector<uint8_t> q8;  ///< act = q8_0: rowBytes(Q8_0, K) bytes a row

  Activations(const Ctx &c, const Tensor &x)
      : act(activationType(c.op.getInfo(), c.attrs)), K(x.rowLength()), f(x.f.data()) {
    if (act == ElemType::BF16) {
      bf16.resize(x.f.size());
      for (size_t i = 0; i < bf16.size(); ++i)
        bf16[i] = bf16ToF32(f32ToBF16(x.f[i]));
      f = bf16.data();
    } else if (act == ElemType::Q8_0) {
      int64_t rb = rowBytes(ElemType::Q8_0, K);
      q8.resize(x.numRows() * rb);
      for (int64_t r = 0; r < x.numRows(); ++r)
        quantizeRow(ElemType::Q8_0, x.f.data() + r * K, q8.data() + r * rb, K);
    }
  }

  /// Activation row r times row `wrow` of w (its innermost-axis rows): when
  /// act = q8_0 that row's blocks are read from w.raw, else `wf` is the row
  /// as f32.
  float dotRow(int64_t r, const Tensor &w, const float *wf, int64_t wrow) const {
    if (act == ElemType::Q8_0)
      return dotQ8(q8.data() + r * rowBytes(ElemType::Q8_0, K), w.elem,
                   w.raw.data() + wrow * rowBytes(w.elem, K), K);
    return dot(f + r * K, wf, K);
  }
};

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
  Activations xa(c, x);
  std::vector<float> scratch;
  const float *wf = xa.act == ElemType::Q8_0 ? nullptr : rowsF32(w, 0, N, scratch);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n)
      c.out.f[r * N + n] = xa.dotRow(r, w, wf ? wf + n * K : nullptr, n);
  return llvm::Error::success();
}

/// out[t, j, :] = w[ids[t, j]] @ x[t, B == 1 ? 0 : j]. One expert's weights
/// are decoded at a time (read as blocks when act = q8_0), then used by every
/// (t, j) routed to it; the activation rows are converted to `act` once.
llvm::Error interp::interpMatmulId(Ctx &c) {
  const Tensor &x = *c.in[0], &w = *c.in[1], &ids = *c.in[2];
  int64_t T = x.shape[0], B = x.shape[1], K = x.shape[2];
  int64_t E = w.shape[0], N = w.shape[1], k = ids.shape[1];
  if (auto e = checkIds(c, ids, E, "expert"))
    return e;
  std::vector<std::vector<int64_t>> routed(E); // flat (t * k + j) per expert
  for (int64_t tj = 0; tj < T * k; ++tj)
    routed[ids.i[tj]].push_back(tj);
  Activations xa(c, x);
  std::vector<float> scratch;
  for (int64_t e = 0; e < E; ++e) {
    if (routed[e].empty())
      continue;
    const float *we = xa.act == ElemType::Q8_0 ? nullptr : rowsF32(w, e * N, N, scratch);
    for (int64_t tj : routed[e]) {
      int64_t t = tj / k, j = tj % k;
      int64_t xr = t * B + (B == 1 ? 0 : j);
      for (int64_t n = 0; n < N; ++n)
        c.out.f[tj * N + n] = xa.dotRow(xr, w, we ? we + n * K : nullptr, e * N + n);
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
