//===- InterpReduce.cpp - Reductions, softmax, sorting, norms -------------===//
//
// Every reduction runs sequentially along its axis, index 0 first, and sums
// in double, rounding to f32 once: reproducible bit for bit. Maxima propagate
// NaN. Sorting (argsort, topk) orders NaN above every number (numpy's
// ascending sort puts NaN last), and ties -- equal values, +0 and -0, two
// NaNs -- go to the lower index, in both directions.
//
//===----------------------------------------------------------------------===//
#include "runtime/InterpInternal.h"

#include "ir/Scalar.h"

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace moe;
using namespace moe::interp;

namespace {
enum class Red { Sum, Mean, Max };

float maxNaN(float a, float b) { return std::isnan(a) || a > b ? a : b; }

llvm::Error reduce(Ctx &c, Red kind) {
  const Tensor &x = *c.in[0];
  auto ax = c.axisAttr(x.rank());
  if (!ax)
    return ax.takeError();
  AxisSplit s = splitAt(x.shape, *ax);
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t in = 0; in < s.inner; ++in) {
      // An index, not a pointer: with an empty axis x.f is empty and
      // data() + offset would be arithmetic on null.
      const int64_t base = o * s.len * s.inner + in;
      auto p = [&](int64_t i) { return x.f[base + i]; };
      float r;
      if (kind == Red::Max) {
        r = -INFINITY;
        for (int64_t l = 0; l < s.len; ++l)
          r = maxNaN(r, p(l * s.inner));
      } else {
        double acc = 0;
        for (int64_t l = 0; l < s.len; ++l)
          acc += p(l * s.inner);
        r = (float)(kind == Red::Mean ? acc / (double)s.len : acc);
      }
      c.out.f[o * s.inner + in] = r;
    }
  return llvm::Error::success();
}

/// Strict weak order "a before b" for an ascending sort with NaN largest.
bool lessNaNLast(float a, float b) { return !std::isnan(a) && (std::isnan(b) || a < b); }

/// Indices 0..n-1 of row `v` stably sorted (ties keep index order).
std::vector<int32_t> sortedIndices(const float *v, int64_t n, bool desc) {
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) {
    return desc ? lessNaNLast(v[b], v[a]) : lessNaNLast(v[a], v[b]);
  });
  return idx;
}
} // namespace

llvm::Error interp::interpReduceSum(Ctx &c) { return reduce(c, Red::Sum); }
llvm::Error interp::interpReduceMean(Ctx &c) { return reduce(c, Red::Mean); }
llvm::Error interp::interpReduceMax(Ctx &c) { return reduce(c, Red::Max); }

/// exp(x - max) / sum, along `axis`: the exponentials in f32 (Scalar.h's
/// exp), their sum in double.
llvm::Error interp::interpSoftmax(Ctx &c) {
  const Tensor &x = *c.in[0];
  auto ax = c.axisAttr(x.rank());
  if (!ax)
    return ax.takeError();
  AxisSplit s = splitAt(x.shape, *ax);
  scalar::Params none;
  std::vector<float> e(s.len);
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t in = 0; in < s.inner; ++in) {
      int64_t base = o * s.len * s.inner + in;
      float m = -INFINITY;
      for (int64_t l = 0; l < s.len; ++l)
        m = maxNaN(m, x.f[base + l * s.inner]);
      double sum = 0;
      for (int64_t l = 0; l < s.len; ++l) {
        e[l] = scalar::unary(OpKind::Exp, none, x.f[base + l * s.inner] - m);
        sum += e[l];
      }
      for (int64_t l = 0; l < s.len; ++l)
        c.out.f[base + l * s.inner] = (float)((double)e[l] / sum);
    }
  return llvm::Error::success();
}

/// Indices sorting each row of the last axis, stable; descending with `desc`.
llvm::Error interp::interpArgsort(Ctx &c) {
  const Tensor &x = *c.in[0];
  int64_t n = x.rowLength();
  if (n > INT32_MAX)
    return c.error("rows of {} elements do not fit i32 indices", n);
  for (int64_t r = 0; r < x.numRows(); ++r) {
    auto idx = sortedIndices(x.f.data() + r * n, n, c.flag("desc"));
    std::copy(idx.begin(), idx.end(), c.out.i.begin() + r * n);
  }
  return llvm::Error::success();
}

/// The first k of a stable descending argsort of each row of the last axis.
llvm::Error interp::interpTopk(Ctx &c) {
  const Tensor &x = *c.in[0];
  int64_t n = x.rowLength(), k = c.intAttr("k");
  if (k < 0 || k > n) // the verifier proved this; re-checked, never trusted
    return c.error("k = {} is out of range for rows of {} elements", k, n);
  if (n > INT32_MAX)
    return c.error("rows of {} elements do not fit i32 indices", n);
  for (int64_t r = 0; r < x.numRows(); ++r) {
    auto idx = sortedIndices(x.f.data() + r * n, n, /*desc=*/true);
    std::copy(idx.begin(), idx.begin() + k, c.out.i.begin() + r * k);
  }
  return llvm::Error::success();
}

/// x / sqrt(mean(x^2) + eps) [* w] over the last axis, in double, rounded once.
llvm::Error interp::interpRmsNorm(Ctx &c) {
  const Tensor &x = *c.in[0];
  double eps = c.numAttr("eps", 0);
  std::vector<float> w;
  if (c.in.size() > 1)
    w = broadcastValues(*c.in[1], x.shape);
  int64_t n = x.rowLength();
  for (int64_t r = 0; r < x.numRows(); ++r) {
    const float *p = x.f.data() + r * n;
    double ss = 0;
    for (int64_t j = 0; j < n; ++j)
      ss += (double)p[j] * p[j];
    double inv = 1.0 / std::sqrt(ss / (double)n + eps);
    for (int64_t j = 0; j < n; ++j) {
      double y = p[j] * inv;
      if (!w.empty())
        y *= w[r * n + j];
      c.out.f[r * n + j] = (float)y;
    }
  }
  return llvm::Error::success();
}

/// (x - mean) / sqrt(var + eps) [* w] [+ b] over the last axis, with the
/// biased variance, in double, rounded once.
llvm::Error interp::interpLayerNorm(Ctx &c) {
  const Tensor &x = *c.in[0];
  double eps = c.numAttr("eps", 0);
  std::vector<float> w, b;
  if (c.in.size() > 1)
    w = broadcastValues(*c.in[1], x.shape);
  if (c.in.size() > 2)
    b = broadcastValues(*c.in[2], x.shape);
  int64_t n = x.rowLength();
  for (int64_t r = 0; r < x.numRows(); ++r) {
    const float *p = x.f.data() + r * n;
    double sum = 0;
    for (int64_t j = 0; j < n; ++j)
      sum += p[j];
    double mean = sum / (double)n, var = 0;
    for (int64_t j = 0; j < n; ++j)
      var += (p[j] - mean) * (p[j] - mean);
    double inv = 1.0 / std::sqrt(var / (double)n + eps);
    for (int64_t j = 0; j < n; ++j) {
      double y = (p[j] - mean) * inv;
      if (!w.empty())
        y *= w[r * n + j];
      if (!b.empty())
        y += b[r * n + j];
      c.out.f[r * n + j] = (float)y;
    }
  }
  return llvm::Error::success();
}
