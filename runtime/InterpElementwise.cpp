//===- InterpElementwise.cpp - Elementwise, GLU, cast, constant, all_reduce ===//
//
// Float elements are computed in f32 by ir/Scalar.h, the one definition of
// each op's scalar semantics (the result is rounded to f16/bf16 by the
// interpreter loop). The binary ops also accept i32 (the shape rule allows
// it): add/sub/mul wrap modulo 2^32, div truncates toward zero (INT_MIN / -1
// wraps to INT_MIN; a zero divisor is an error), max/min are exact.
//
//===----------------------------------------------------------------------===//
#include "runtime/InterpInternal.h"

#include "ir/Scalar.h"
#include "runtime/Formats.h"

#include <cmath>
#include <limits>

using namespace moe;
using namespace moe::interp;

namespace {
int32_t intBinary(OpKind k, int32_t a, int32_t b) {
  uint32_t ua = (uint32_t)a, ub = (uint32_t)b;
  switch (k) {
  case OpKind::Add: return (int32_t)(ua + ub);
  case OpKind::Sub: return (int32_t)(ua - ub);
  case OpKind::Mul: return (int32_t)(ua * ub);
  case OpKind::Div: return b == -1 ? (int32_t)(0u - ua) : a / b;
  case OpKind::Max: return std::max(a, b);
  case OpKind::Min: return std::min(a, b);
  default: return 0;
  }
}

/// A double as i32: truncated toward zero, saturated, NaN -> 0 (the rule of
/// Formats.h's quantizeRow(I32), for values that may not fit a float).
int32_t doubleToI32(double v) {
  if (std::isnan(v))
    return 0;
  if (v <= (double)std::numeric_limits<int32_t>::min())
    return std::numeric_limits<int32_t>::min();
  if (v >= (double)std::numeric_limits<int32_t>::max())
    return std::numeric_limits<int32_t>::max();
  return (int32_t)v;
}
} // namespace

llvm::Error interp::interpBinary(Ctx &c) {
  const Tensor &a = *c.in[0], &b = *c.in[1];
  OpKind k = c.op.getKind();
  auto strides = std::array<std::vector<int64_t>, 2>{broadcastStrides(a.shape, c.out.shape),
                                                     broadcastStrides(b.shape, c.out.shape)};
  if (c.out.elem != ElemType::I32) {
    walk<2>(c.out.shape, strides, {0, 0}, [&](int64_t flat, const std::array<int64_t, 2> &o) {
      c.out.f[flat] = scalar::binary(k, a.f[o[0]], b.f[o[1]]);
    });
    return llvm::Error::success();
  }
  int64_t zeroAt = -1;
  walk<2>(c.out.shape, strides, {0, 0}, [&](int64_t flat, const std::array<int64_t, 2> &o) {
    if (k == OpKind::Div && b.i[o[1]] == 0) {
      if (zeroAt < 0)
        zeroAt = flat;
      return;
    }
    c.out.i[flat] = intBinary(k, a.i[o[0]], b.i[o[1]]);
  });
  if (zeroAt >= 0)
    return c.error("i32 division by zero at result index {}",
                   formatIndex(zeroAt, c.out.shape));
  return llvm::Error::success();
}

llvm::Error interp::interpUnary(Ctx &c) {
  const Tensor &x = *c.in[0];
  scalar::Params p = scalar::readParams(c.op.getInfo(), c.attrs);
  OpKind k = c.op.getKind();
  for (size_t j = 0; j < x.f.size(); ++j)
    c.out.f[j] = scalar::unary(k, p, x.f[j]);
  return llvm::Error::success();
}

llvm::Error interp::interpGlu(Ctx &c) {
  const Tensor &g = *c.in[0], &u = *c.in[1];
  scalar::Params p = scalar::readParams(c.op.getInfo(), c.attrs);
  OpKind k = c.op.getKind();
  for (size_t j = 0; j < g.f.size(); ++j)
    c.out.f[j] = scalar::glu(k, p, g.f[j], u.f[j]);
  return llvm::Error::success();
}

/// float -> float keeps the value (the loop rounds it to f16/bf16); float ->
/// i32 truncates toward zero and saturates, NaN giving 0 (Formats.h's I32
/// rule); i32 -> float is the nearest f32 (then rounded to f16/bf16).
llvm::Error interp::interpCast(Ctx &c) {
  const Tensor &x = *c.in[0];
  int64_t n = x.numElements();
  if (c.out.elem == ElemType::I32) {
    if (x.elem == ElemType::I32)
      c.out.i = x.i;
    else
      quantizeRow(ElemType::I32, x.f.data(), c.out.i.data(), n);
    return llvm::Error::success();
  }
  x.readF32(0, n, c.out.f.data());
  return llvm::Error::success();
}

/// `value` a number (splat over the result type) or a dense row-major list.
llvm::Error interp::interpConstant(Ctx &c) {
  const Attribute *v = c.attr("value");
  if (!v)
    return c.error("requires attribute 'value'");
  int64_t n = c.out.numElements();
  const std::vector<Attribute> *vals = nullptr;
  if (v->isList()) {
    vals = &v->getList();
    if ((int64_t)vals->size() != n)
      return c.error("value list has {} elements, the result has {}", vals->size(), n);
  }
  for (int64_t j = 0; j < n; ++j) {
    const Attribute &e = vals ? (*vals)[j] : *v;
    if (!e.isNumber())
      return c.error("value {} is not a number", e.str());
    if (c.out.elem == ElemType::I32)
      c.out.i[j] = e.isInt() ? (int32_t)std::clamp<int64_t>(
                                   e.getInt(), std::numeric_limits<int32_t>::min(),
                                   std::numeric_limits<int32_t>::max())
                             : doubleToI32(e.getNumber());
    else
      c.out.f[j] = (float)e.getNumber();
  }
  return llvm::Error::success();
}

/// Sums over the ranks of opts.comm; the identity on one rank (no comm).
llvm::Error interp::interpAllReduce(Ctx &c) {
  c.out.f = c.in[0]->f;
  if (!c.opts.comm) // every rank calls, even with nothing to sum: it is a collective
    return llvm::Error::success();
  if (c.out.elem == ElemType::F16 || c.out.elem == ElemType::BF16) {
    // The communicator's 16-bit sum: f32 accumulation, one rounding, and
    // (under MPI) half the traffic; the JIT calls the same.
    std::vector<uint16_t> bits(c.out.f.size());
    for (size_t i = 0; i < bits.size(); ++i)
      bits[i] = narrow16(c.out.elem, c.out.f[i]);
    if (auto e = c.opts.comm->allReduceSum(bits.data(), bits.size(), c.out.elem))
      return c.error("{}", llvm::toString(std::move(e)));
    for (size_t i = 0; i < bits.size(); ++i)
      c.out.f[i] = widen16(c.out.elem, bits[i]);
    return llvm::Error::success();
  }
  if (auto e = c.opts.comm->allReduceSum(c.out.f.data(), c.out.f.size()))
    return c.error("{}", llvm::toString(std::move(e)));
  return llvm::Error::success();
}
