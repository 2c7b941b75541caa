//===- SmithGen.cpp - Random MoE-shaped programs (moe-smith) --------------===//
//
// The generator builds one function top-down: input, random op chains,
// pre-norm, router, routed experts, shared expert / dense MLP, tail chains,
// outputs. Every op goes through Builder (shape rules); a rejected op is a
// generator bug, reported as an error. Numerics are kept well conditioned so
// that a difference beyond tolerance is a bug, not rounding: log, sqrt,
// rsqrt, pow and div only see values bounded away from 0, exp sees clamped
// values, norms see rows that vary.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/SmithGen.h"
#include "ir/Builder.h"
#include "ir/Error.h"
#include "ir/Verifier.h"

#include "llvm/ADT/DenseSet.h"
#include <random>

using namespace moe;

namespace {

AttrDict attrs(std::initializer_list<std::pair<const char *, Attribute>> l) {
  AttrDict d;
  for (auto &[k, v] : l)
    d.set(k, v);
  return d;
}
Attribute I(int64_t v) { return Attribute::getInt(v); }
Attribute Fl(double v) { return Attribute::getFloat(v); }
Attribute Dims(const Shape &s) { return Attribute::getDims(s); }
Attribute Flag() { return Attribute::getBool(true); }

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

/// One random op (or a small group) taking a [T, D] f32 value to [T, D].
Value *Gen::noiseOp(Value *v) {
  Shape td{T, dim(D)};
  switch (uni(0, 21)) {
  case 0:
    return unary(v);
  case 1: {
    AttrDict a;
    a.set("max", Fl(pick({3.0, 2.5})));
    if (coin())
      a.set("min", Fl(-3.0));
    return mk(OpKind::Exp, {mk(OpKind::Clamp, {v}, std::move(a))});
  }
  case 2:
    return mk(pick({OpKind::Log, OpKind::Sqrt, OpKind::Rsqrt}), {positive(v)});
  case 3: {
    double e = pick({0.5, 2.0, 3.0, -0.5, 1.5});
    Value *base = (e == 2.0 || e == 3.0) && coin() ? v : positive(v);
    return mk(OpKind::Pow, {base}, attrs({{"exponent", Fl(e)}}));
  }
  case 4: {
    AttrDict a;
    a.set("factor", Fl(pick({0.5, 2.0, -1.25, 1.0})));
    if (coin(0.3))
      a.set("bias", Fl(pick({0.25, -1.0})));
    return mk(OpKind::Scale, {v}, std::move(a));
  }
  case 5: {
    Value *u = coin() ? x : unary(v);
    OpKind k = pick({OpKind::Add, OpKind::Sub, OpKind::Mul, OpKind::Max, OpKind::Min});
    return coin() ? mk(k, {v, u}) : mk(k, {u, v});
  }
  case 6: {
    Value *p = param("vec", {dim(D)}, ElemType::F32);
    return mk(pick({OpKind::Add, OpKind::Mul, OpKind::Sub}), {v, p});
  }
  case 7:
    return mk(OpKind::Div, {v, positive(coin() ? x : v)});
  case 8: {
    OpKind r = pick({OpKind::ReduceSum, OpKind::ReduceMean, OpKind::ReduceMax});
    bool keep = coin();
    Value *s = mk(r, {v}, keep ? attrs({{"axis", I(pick({-1, 1}))}, {"keepdim", Flag()}})
                               : attrs({{"axis", I(1)}}));
    if (!keep)
      s = reshape(s, {T, dim(1)});
    if (r == OpKind::ReduceSum)
      s = mk(OpKind::Scale, {s}, attrs({{"factor", Fl(1.0 / D)}}));
    return mk(pick({OpKind::Sub, OpKind::Add, OpKind::Mul}), {v, s});
  }
  case 9: {
    Value *s = mk(OpKind::Softmax, {v}, coin() ? attrs({{"axis", I(-1)}}) : AttrDict());
    return mk(OpKind::Scale, {s}, attrs({{"factor", Fl((double)D)}}));
  }
  case 10: {
    // Norms see a row that varies (v plus the input).
    Value *in = mk(OpKind::Add, {v, x});
    if (coin()) {
      std::vector<Value *> ops{in};
      if (coin())
        ops.push_back(param("norm_w", {dim(D)}, ElemType::F32));
      return mk(OpKind::RmsNorm, ops, attrs({{"eps", Fl(1e-6)}}));
    }
    std::vector<Value *> ops{in};
    int n = (int)uni(0, 2);
    for (int i = 0; i < n; ++i)
      ops.push_back(param(i ? "ln_b" : "ln_w", {dim(D)}, ElemType::F32));
    return mk(OpKind::LayerNorm, ops, attrs({{"eps", Fl(1e-5)}}));
  }
  case 11: {
    Value *p = mk(OpKind::Permute, {v}, attrs({{"perm", Attribute::getInts({1, 0})}}));
    p = coin() ? unary(p) : mk(OpKind::Scale, {p}, attrs({{"factor", Fl(0.5)}}));
    return mk(OpKind::Permute, {p}, attrs({{"perm", Attribute::getInts({1, 0})}}));
  }
  case 12: {
    // Views and reshapes: to pairs and back, flat (symbolic D*T), identity.
    switch (uni(0, 3)) {
    case 0: {
      Value *r = reshape(v, {T, dim(D / 2), dim(2)});
      Value *s = mk(pick({OpKind::ReduceSum, OpKind::ReduceMax}), {r}, attrs({{"axis", I(2)}}));
      return mk(OpKind::Concat, {s, mk(OpKind::Neg, {s})}, attrs({{"axis", I(1)}}));
    }
    case 1: {
      Value *flat = reshape(v, {T * dim(D)});
      return reshape(unary(flat), td);
    }
    case 2:
      return reshape(v, td); // already that shape (view-reuse drops it)
    default: {
      Value *r = reshape(v, {T, dim(2), dim(D / 2)});
      Value *p = mk(OpKind::Permute, {r}, attrs({{"perm", Attribute::getInts({0, 2, 1})}}));
      return reshape(p, td);
    }
    }
  }
  case 13: {
    // Strided views: the two halves of each row swapped, or a transpose.
    if (coin()) {
      Value *lo = mk(OpKind::View, {v},
                     attrs({{"shape", Dims({T, dim(D / 2)})}, {"strides", Dims({dim(D), dim(1)})}}));
      Value *hi = mk(OpKind::View, {v},
                     attrs({{"shape", Dims({T, dim(D / 2)})},
                            {"strides", Dims({dim(D), dim(1)})},
                            {"offset", Attribute::getDim(dim(D / 2))}}));
      return mk(OpKind::Concat, {hi, unary(lo)}, attrs({{"axis", I(-1)}}));
    }
    Value *t = mk(OpKind::View, {v},
                  attrs({{"shape", Dims({dim(D), T})}, {"strides", Dims({dim(1), dim(D)})}}));
    return mk(OpKind::Permute, {unary(t)}, attrs({{"perm", Attribute::getInts({1, 0})}}));
  }
  case 14: {
    Value *a = mk(OpKind::Slice, {v}, attrs({{"axis", I(1)}, {"start", I(0)}, {"size", I(D / 2)}}));
    Value *c = mk(OpKind::Slice, {v},
                  attrs({{"axis", I(-1)}, {"start", I(D / 2)}, {"size", I(D / 2)}}));
    return mk(OpKind::Concat, {mk(OpKind::Mul, {a, c}), a}, attrs({{"axis", I(1)}}));
  }
  case 15: {
    Value *m = mk(OpKind::ReduceMax, {v}, attrs({{"axis", I(1)}, {"keepdim", Flag()}}));
    Value *bm = mk(OpKind::Broadcast, {m}, attrs({{"shape", Dims(td)}}));
    return mk(OpKind::Sub, {v, bm});
  }
  case 16: {
    Attribute to = Attribute::getIdent(coin() ? "bf16" : "f16");
    Value *c = mk(OpKind::Cast, {v}, attrs({{"to", to}}));
    c = coin() ? mk(pick({OpKind::Tanh, OpKind::Sqr, OpKind::Neg}), {c})
               : mk(OpKind::Mul, {c, mk(OpKind::Cast, {x}, attrs({{"to", to}}))});
    return mk(OpKind::Cast, {c}, attrs({{"to", Attribute::getIdent("f32")}}));
  }
  case 17: {
    Value *w = param("dense", {dim(D), dim(D)}, weightType());
    return mk(OpKind::Matmul, {v, w});
  }
  case 18: {
    if (!ids)
      return unary(v);
    Value *tab = param("embd", {dim(E), dim(D)}, weightType());
    Value *g = mk(OpKind::Gather, {tab, ids}, attrs({{"axis", I(0)}}));
    if (g->getType().elem != ElemType::F32) // an f16/bf16 table gathers its own type
      g = mk(OpKind::Cast, {g}, attrs({{"to", Attribute::getIdent("f32")}}));
    return mk(OpKind::Add, {v, mk(OpKind::ReduceSum, {g}, attrs({{"axis", I(1)}}))});
  }
  case 19: {
    Value *c = b->constant(pick({0.5, -2.0, 1.0}), TensorType({dim(D)}, ElemType::F32),
                           fresh("splat"));
    return mk(pick({OpKind::Mul, OpKind::Add}), {v, c});
  }
  case 20: {
    // Identities and duplicates for canonicalize, cse and dce.
    Value *a = unary(v);
    if (a == v)
      return v;
    Value *d = mk(a->getDefiningOp()->getKind(), {v});
    mk(OpKind::Exp, {mk(OpKind::Clamp, {v}, attrs({{"max", Fl(1.0)}}))}); // dead
    Value *s = mk(OpKind::Add, {a, d});
    return mk(pick({OpKind::Mul, OpKind::Add}), {s, cst(coin() ? 1.0 : 0.0)});
  }
  default: {
    // Non-token-wise: a per-column statistic over the tokens.
    if (staticCapture)
      return unary(v);
    Value *p = mk(OpKind::Permute, {v}, attrs({{"perm", Attribute::getInts({1, 0})}}));
    Value *m = mk(OpKind::ReduceMean, {p}, attrs({{"axis", I(1)}, {"keepdim", Flag()}}));
    Value *row = mk(OpKind::Permute, {m}, attrs({{"perm", Attribute::getInts({1, 0})}}));
    return mk(OpKind::Sub, {v, row});
  }
  }
}

/// A pre-norm: a fused op, or written out (legal and illegal variants).
Value *Gen::prenorm(Value *h) {
  switch (uni(0, 4)) {
  case 0:
    return h;
  case 1: {
    std::vector<Value *> ops{h};
    if (coin())
      ops.push_back(param("attn_norm", {dim(D)}, ElemType::F32));
    return mk(OpKind::RmsNorm, ops, attrs({{"eps", Fl(1e-6)}}));
  }
  case 2:
    return mk(OpKind::LayerNorm, {h, param("ln_w", {dim(D)}, ElemType::F32)},
              attrs({{"eps", Fl(1e-5)}}));
  default:
    break;
  }
  Value *sq = pick({0, 1, 2}) == 0   ? mk(OpKind::Mul, {h, h})
              : coin()               ? mk(OpKind::Sqr, {h})
                                     : mk(OpKind::Pow, {h}, attrs({{"exponent", Fl(2.0)}}));
  AttrDict ax = attrs({{"axis", I(coin() ? -1 : 1)}, {"keepdim", Flag()}});
  Value *ms;
  switch (uni(0, 4)) {
  case 0:
  case 1:
    ms = mk(OpKind::ReduceMean, {sq}, ax);
    break;
  case 2:
    ms = mk(OpKind::Scale, {mk(OpKind::ReduceSum, {sq}, ax)}, attrs({{"factor", Fl(1.0 / D)}}));
    break;
  case 3: // a scaled mean: not an RMS norm (rms-fusion must refuse it)
    ms = mk(OpKind::Scale, {mk(OpKind::ReduceMean, {sq}, ax)},
            attrs({{"factor", Fl(pick({0.5, 2.0, 0.25}))}}));
    break;
  default: // a sum divided by half the length
    ms = mk(OpKind::Scale, {mk(OpKind::ReduceSum, {sq}, ax)},
            attrs({{"factor", Fl(2.0 / D)}}));
    break;
  }
  Value *me = mk(OpKind::Add, {ms, cst(1e-6)});
  Value *r;
  switch (uni(0, 2)) {
  case 0:
    r = mk(OpKind::Rsqrt, {me});
    break;
  case 1:
    r = mk(OpKind::Div, {cst(1.0), mk(OpKind::Sqrt, {me})});
    break;
  default:
    r = mk(OpKind::Pow, {me}, attrs({{"exponent", Fl(-0.5)}}));
    break;
  }
  Value *y = mk(OpKind::Mul, {h, r});
  if (coin())
    y = mk(OpKind::Mul, {y, param("ffn_norm", {dim(D)}, ElemType::F32)});
  return y;
}

/// Router: ids [T, K] and routing weights w [T, K].
std::pair<Value *, Value *> Gen::router(Value *h) {
  Value *gi = param("gate_inp", {dim(E), dim(D)}, ElemType::F32);
  Value *logits = mk(OpKind::Matmul, {h, gi}, {}, "logits");
  if (coin(0.25))
    logits = mk(OpKind::Add, {logits, param("gate_inp_b", {dim(E)}, ElemType::F32)});
  Value *id, *w;
  auto normalise = [&](Value *w) {
    Value *s = mk(OpKind::ReduceSum, {w}, attrs({{"axis", I(1)}, {"keepdim", Flag()}}));
    if (coin())
      s = mk(OpKind::Clamp, {s}, attrs({{"min", Fl(6.1e-5)}}));
    return mk(OpKind::Div, {w, s}, {}, "wn");
  };
  switch (uni(0, 3)) {
  case 0: { // qwen3
    Value *probs = mk(OpKind::Softmax, {logits}, attrs({{"axis", I(-1)}}), "probs");
    id = mk(OpKind::Topk, {probs}, attrs({{"k", I(K)}}), "ids");
    w = mk(OpKind::Gather, {probs, id}, attrs({{"axis", I(1)}}), "w");
    if (coin())
      w = normalise(w);
    break;
  }
  case 1: { // gpt-oss
    id = mk(OpKind::Topk, {logits}, attrs({{"k", I(K)}}), "ids");
    Value *g = mk(OpKind::Gather, {logits, id}, attrs({{"axis", I(1)}}));
    w = mk(OpKind::Softmax, {g}, attrs({{"axis", I(1)}}), "w");
    break;
  }
  case 2: { // sigmoid gating, normalised and scaled
    Value *probs = mk(OpKind::Sigmoid, {logits}, {}, "probs");
    id = mk(OpKind::Topk, {probs}, attrs({{"k", I(K)}}), "ids");
    w = normalise(mk(OpKind::Gather, {probs, id}, attrs({{"axis", I(1)}})));
    w = mk(OpKind::Scale, {w}, attrs({{"factor", Fl(2.5)}}));
    break;
  }
  default: { // argsort + slice
    Value *probs = mk(OpKind::Softmax, {logits}, {}, "probs");
    Value *order = mk(OpKind::Argsort, {probs}, attrs({{"desc", Flag()}}), "order");
    id = mk(OpKind::Slice, {order}, attrs({{"axis", I(1)}, {"start", I(0)}, {"size", I(K)}}), "ids");
    w = mk(OpKind::Gather, {probs, id}, attrs({{"axis", I(1)}}), "w");
    break;
  }
  }
  return {id, w};
}

Value *Gen::glu(Value *gate, Value *up) {
  switch (uni(0, 5)) {
  case 0:
    return mk(OpKind::Swiglu, {gate, up}, {}, "act");
  case 1:
    return mk(OpKind::Geglu, {gate, up}, {}, "act");
  case 2:
    return mk(OpKind::SwigluOai, {gate, up}, attrs({{"alpha", Fl(1.702)}, {"limit", Fl(7.0)}}),
              "act");
  case 3:
    return mk(OpKind::Mul, {mk(OpKind::Silu, {gate}), up}, {}, "act");
  case 4:
    return mk(OpKind::Mul, {mk(OpKind::GeluErf, {gate}), up}, {}, "act");
  default:
    return mk(OpKind::Mul, {mk(OpKind::Relu, {gate}), up}, {}, "act");
  }
}

/// The routed experts of `h` weighted by `w`: [T, D].
Value *Gen::experts(Value *h, Value *w) {
  Value *x3 = reshape(h, {T, dim(1), dim(D)});
  int64_t shard = spmd ? 1 : -1;
  Value *gate, *up;
  if (coin(0.35)) {
    Value *gu = param("gate_up_exps", {dim(E), FF * dim(2), dim(D)}, weightType(), shard, 2);
    Value *m = mk(OpKind::MatmulId, {x3, gu, ids}, {}, "gate_up");
    gate = mk(OpKind::Slice, {m}, attrs({{"axis", I(2)}, {"start", I(0)}, {"size", Attribute::getDim(FF)}}), "gate");
    up = mk(OpKind::Slice, {m}, attrs({{"axis", I(2)}, {"start", Attribute::getDim(FF)}, {"size", Attribute::getDim(FF)}}), "up");
  } else {
    ElemType t = weightType();
    up = mk(OpKind::MatmulId, {x3, param("up_exps", {dim(E), FF, dim(D)}, t, shard), ids}, {}, "up");
    gate = mk(OpKind::MatmulId,
              {x3, param("gate_exps", {dim(E), FF, dim(D)}, coin(0.7) ? t : weightType(), shard),
               ids},
              {}, "gate");
    if (coin(0.25)) {
      up = mk(OpKind::AddId, {up, param("up_b", {dim(E), FF}, ElemType::F32, shard), ids});
      gate = mk(OpKind::AddId, {gate, param("gate_b", {dim(E), FF}, ElemType::F32, shard), ids});
    }
  }
  act = glu(gate, up);
  Value *down = mk(OpKind::MatmulId,
                   {act, param("down_exps", {dim(E), dim(D), FF}, weightType(), spmd ? 2 : -1), ids},
                   {}, "down");
  return expertChain(down, w);
}

/// After the down projection: biases, per-expert scales, routing weights in
/// random order, the sum over experts; all_reduces at random points of an
/// SPMD function, and rank-local operands after them.
Value *Gen::expertChain(Value *down, Value *w) {
  Value *v = down;
  Shape tk1{T, dim(K), dim(1)};
  std::vector<int> steps{0, 1, 2, 3, 4};
  std::shuffle(steps.begin(), steps.end(), rng);
  for (int s : steps) {
    v = maybeReduce(v, 0.3);
    switch (s) {
    case 0:
      if (coin(0.3))
        v = mk(OpKind::AddId, {v, param("down_b", {dim(E), dim(D)}, ElemType::F32), ids}, {}, "biased");
      break;
    case 1:
      if (coin(0.4)) {
        Value *sc = param("down_exps_s", {dim(E)}, ElemType::F32);
        Value *g = reshape(mk(OpKind::Gather, {sc, ids}, attrs({{"axis", I(0)}}), "s"), tk1);
        if (coin())
          g = mk(OpKind::Broadcast, {g}, attrs({{"shape", Dims({T, dim(K), dim(D)})}}));
        v = coin() ? mk(OpKind::Mul, {v, g}, {}, "scaled") : mk(OpKind::Mul, {g, v}, {}, "scaled");
      }
      break;
    case 2:
      if (coin(0.3)) {
        AttrDict a = attrs({{"factor", Fl(pick({0.5, 1.5}))}});
        if (coin(0.3))
          a.set("bias", Fl(0.125));
        v = mk(OpKind::Scale, {v}, std::move(a));
      }
      break;
    case 3:
      if (spmd && opts.rankLocalOperands && act && coin(0.35) && !local.count(v)) {
        // A rank-local factor (from this rank's shard of the FFN) after a
        // reduction: the all_reduce cannot move past it.
        Value *loc = mk(OpKind::ReduceSum, {act}, attrs({{"axis", I(2)}, {"keepdim", Flag()}}), "loc");
        v = mk(OpKind::Mul, {v, mk(OpKind::Tanh, {loc})}, {}, "locmul");
      }
      break;
    default: {
      Value *w3 = reshape(w, tk1);
      v = coin() ? mk(OpKind::Mul, {v, w3}, {}, "wd") : mk(OpKind::Mul, {w3, v}, {}, "wd");
      break;
    }
    }
  }
  v = maybeReduce(v, 0.3);
  switch (uni(0, 3)) {
  case 0: {
    Value *p = mk(OpKind::Permute, {v}, attrs({{"perm", Attribute::getInts({1, 0, 2})}}));
    return mk(OpKind::ReduceSum, {p}, attrs({{"axis", I(0)}}), "moe_out");
  }
  case 1:
    return mk(OpKind::Scale, {mk(OpKind::ReduceMean, {v}, attrs({{"axis", I(1)}}))},
              attrs({{"factor", Fl((double)K)}}), "moe_out");
  default:
    return mk(OpKind::ReduceSum, {v}, attrs({{"axis", I(1)}}), "moe_out");
  }
}

/// A shared expert (GLU, optionally gated by sigmoid(x . g)) or a dense MLP.
Value *Gen::dense(Value *h, bool shared) {
  int64_t s0 = spmd ? 0 : -1, s1 = spmd ? 1 : -1;
  const char *p = shared ? "shexp" : "mlp";
  Value *up = mk(OpKind::Matmul, {h, param(std::string(p) + "_up", {FF, dim(D)}, weightType(), s0)});
  Value *gate =
      mk(OpKind::Matmul, {h, param(std::string(p) + "_gate", {FF, dim(D)}, weightType(), s0)});
  Value *a = glu(gate, up);
  Value *down =
      mk(OpKind::Matmul, {a, param(std::string(p) + "_down", {dim(D), FF}, weightType(), s1)});
  if (shared && coin()) {
    Value *g = mk(OpKind::Matmul, {h, param("shexp_gate_inp", {dim(1), dim(D)}, ElemType::F32)});
    down = mk(OpKind::Mul, {down, mk(OpKind::Sigmoid, {g})});
  }
  return maybeReduce(down, 0.5);
}

llvm::Expected<SmithProgram> Gen::run() {
  fn = std::make_unique<Function>("smith");
  b = std::make_unique<Builder>(*fn);
  D = pick<int64_t>({32, 64});
  E = pick<int64_t>({2, 4, 8});
  K = uni(1, std::min<int64_t>(E, 4));
  FFwhole = pick<int64_t>({32, 64});
  staticCapture = opts.staticCaptures && coin(0.15);
  spmd = !staticCapture && opts.spmd && coin(0.3);
  if (staticCapture) {
    int64_t t = pick<int64_t>({2, 3, 5, 7});
    if (opts.captureCoincidences && coin(0.3))
      t = coin() ? K : E;
    T = dim(t);
  } else {
    T = DimExpr::symbol("T");
    int64_t lo = pick<int64_t>({1, 1, 1, 2, 3});
    fn->symbols().push_back({"T", lo, pick<int64_t>({8, 16, 64, 256}), {}});
  }
  if (spmd) {
    int64_t ranks = uni(2, 3), units = FFwhole / 32;
    std::vector<int64_t> share(ranks, 0);
    for (int64_t u = 0; u < units; ++u)
      ++share[coin(0.7) ? u % ranks : uni(0, ranks - 1)];
    fn->attrs().set("ranks", I(ranks));
    fn->attrs().set("F", Attribute::getInts(share));
    fn->symbols().push_back({"F", 0, *std::max_element(share.begin(), share.end()), {}});
    FF = dim(32) * DimExpr::symbol("F");
  } else {
    FF = dim(FFwhole);
  }

  x = fn->addArgument(TensorType({T, dim(D)}, ElemType::F32), "x");
  Value *h = chain(x, 2);
  h = prenorm(h);
  auto [id, w] = router(h);
  ids = id;
  Value *out = experts(h, w);
  if (coin(0.35))
    out = mk(OpKind::Add, {out, dense(h, /*shared=*/true)}, {}, "with_shared");
  if (coin(0.15))
    out = mk(OpKind::Add, {out, dense(h, /*shared=*/false)}, {}, "with_mlp");
  out = maybeReduce(out, 0.5);
  out = chain(out, 3);
  if (coin(0.4))
    out = mk(OpKind::Add, {out, x}, {}, "residual");
  std::vector<Value *> results{out};
  if (coin(0.15))
    results.push_back(pick({w, ids}));
  for (auto &r : results)
    if (local.count(r))
      r = mk(OpKind::AllReduce, {r}, attrs({{"sum", Flag()}}), "ar");
  if (!error.empty())
    return err("moe-smith: generator bug at seed " + std::to_string(seed) + ": " + error);
  for (auto *r : results)
    fn->resultTypes().push_back(r->getType());
  b->createWithType(OpKind::Return, results, {}, TensorType());

  std::string diags;
  DiagEngine diag;
  diag.setHandler([&](const Diagnostic &d) { diags += d.message + "\n"; });
  if (!verifyFunction(*fn, diag))
    return err("moe-smith: generator bug at seed " + std::to_string(seed) +
               ": the function does not verify:\n" + diags);
  SmithProgram p;
  p.module = std::make_unique<Module>();
  p.module->functions.push_back(std::move(fn));
  p.staticCapture = staticCapture;
  p.spmd = spmd;
  return p;
}

} // namespace

llvm::Expected<SmithProgram> moe::generateProgram(uint64_t seed, const SmithOptions &opts) {
  return Gen(seed, opts).run();
}
