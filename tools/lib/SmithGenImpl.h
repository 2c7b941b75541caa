//===- SmithGenImpl.h - moe-smith's generator, shared by its files -*- C++ -*-===//
//
// The generator's state and small builders (SmithGen.cpp: op chains, norms,
// the function's frame; SmithGenMoe.cpp: router, experts, dense MLPs).
// Internal to tools/lib.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tools/lib/SmithGen.h"
#include "ir/Builder.h"
#include "ir/Error.h"

#include "llvm/ADT/DenseSet.h"
#include <random>

namespace moe::smith {

inline AttrDict attrs(std::initializer_list<std::pair<const char *, Attribute>> l) {
  AttrDict d;
  for (auto &[k, v] : l)
    d.set(k, v);
  return d;
}
inline Attribute I(int64_t v) { return Attribute::getInt(v); }
inline Attribute Fl(double v) { return Attribute::getFloat(v); }
inline Attribute Dims(const Shape &s) { return Attribute::getDims(s); }
inline Attribute Flag() { return Attribute::getBool(true); }

/// The random choices are made in program order (one per statement, never
/// two as arguments of one call, whose order C++ leaves to the compiler), so
/// a seed gives the same program whichever compiler built moe-smith.
class Gen {
public:
  Gen(uint64_t seed, const SmithOptions &o) : rng(seed), opts(o), seed(seed) {}
  llvm::Expected<SmithProgram> run();

private:
  std::mt19937_64 rng;
  SmithOptions opts;
  uint64_t seed;
  std::unique_ptr<Function> fn;
  std::unique_ptr<Builder> b;
  std::string error;
  unsigned counter = 0;
  // Dims: tokens, embedding, n_ff (whole, or 32*F per rank), experts, top-k.
  DimExpr T;
  int64_t D = 64, E = 4, K = 2, FFwhole = 64;
  DimExpr FF;
  bool spmd = false, staticCapture = false;
  llvm::DenseSet<Value *> local; ///< rank-local values (SPMD)
  Value *x = nullptr, *ids = nullptr, *act = nullptr;

  int64_t uni(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  }
  bool coin(double p = 0.5) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }
  template <class V> V pick(std::initializer_list<V> l) {
    return *(l.begin() + uni(0, (int64_t)l.size() - 1));
  }
  std::string fresh(const std::string &p) { return p + std::to_string(counter++); }
  DimExpr dim(int64_t v) { return DimExpr(v); }

  /// Builds one op; on a shape-rule error records it (generator bug) and
  /// returns the first operand so generation can finish.
  Value *mk(OpKind k, std::vector<Value *> ops, AttrDict a = {}, const std::string &hint = "v") {
    if (!error.empty())
      return ops[0];
    auto v = b->createValue(k, ops, std::move(a), fresh(hint));
    if (!v) {
      error = getOpInfo(k).name.str() + ": " + llvm::toString(v.takeError());
      return ops[0];
    }
    bool loc = false;
    for (auto *o : ops)
      loc |= local.count(o) > 0;
    if (loc && k != OpKind::AllReduce)
      local.insert(*v);
    return *v;
  }
  Value *cst(double v) { return b->constant(v, TensorType({}, ElemType::F32), fresh("c")); }
  Value *param(const std::string &name, Shape dims, ElemType e, int64_t shardAxis = -1,
               int64_t segments = 1) {
    AttrDict a;
    a.set("param", Flag());
    if (shardAxis >= 0) {
      a.set("shard_axis", I(shardAxis));
      if (segments > 1)
        a.set("shard_segments", I(segments));
    }
    Value *v = fn->addArgument(TensorType(std::move(dims), e), fresh(name), std::move(a));
    if (shardAxis >= 0)
      local.insert(v);
    return v;
  }
  ElemType weightType() {
    return pick({ElemType::F32, ElemType::F32, ElemType::F16, ElemType::BF16, ElemType::Q8_0,
                 ElemType::Q4_0, ElemType::MXFP4});
  }
  Value *reshape(Value *v, Shape s) { return mk(OpKind::Reshape, {v}, attrs({{"shape", Dims(s)}}), "r"); }
  Value *unary(Value *v) {
    OpKind k = pick({OpKind::Neg, OpKind::Tanh, OpKind::Sigmoid, OpKind::Softplus, OpKind::Relu,
                     OpKind::Silu, OpKind::Gelu, OpKind::GeluErf, OpKind::Abs, OpKind::Sqr});
    return mk(k, {v}, {}, "u");
  }
  /// A value >= 1 made from v (for log, sqrt, rsqrt, pow, div).
  Value *positive(Value *v) {
    Value *s = coin() ? mk(OpKind::Sqr, {v}) : mk(OpKind::Abs, {v});
    return mk(OpKind::Add, {s, cst(1.0)}, {}, "pos");
  }
  /// Wraps local values of an SPMD function in an all_reduce, at random
  /// (always when `force`).
  Value *maybeReduce(Value *v, double p) {
    if (!spmd || !local.count(v) || !coin(p))
      return v;
    if (opts.narrowAllReduce && coin(0.2)) {
      Attribute to = Attribute::getIdent(coin() ? "bf16" : "f16");
      Value *n = mk(OpKind::Cast, {v}, attrs({{"to", to}}), "narrow");
      Value *r = mk(OpKind::AllReduce, {n}, attrs({{"sum", Flag()}}), "ar");
      return mk(OpKind::Cast, {r}, attrs({{"to", Attribute::getIdent("f32")}}), "wide");
    }
    return mk(OpKind::AllReduce, {v}, attrs({{"sum", Flag()}}), "ar");
  }

  Value *noiseOp(Value *v);
  Value *chain(Value *v, int maxOps) {
    int n = (int)uni(0, maxOps);
    for (int i = 0; i < n; ++i)
      v = noiseOp(v);
    return v;
  }
  Value *prenorm(Value *h);
  std::pair<Value *, Value *> router(Value *h);
  Value *glu(Value *gate, Value *up);
  Value *experts(Value *h, Value *w);
  Value *expertChain(Value *down, Value *w);
  Value *dense(Value *h, bool shared);
};

} // namespace moe::smith
