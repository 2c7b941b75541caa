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
#include "tools/lib/SmithGenImpl.h"
#include "ir/Verifier.h"

using namespace moe;
using namespace moe::smith;

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
  case 2: {
    Value *p = positive(v);
    OpKind k = pick({OpKind::Log, OpKind::Sqrt, OpKind::Rsqrt});
    return mk(k, {p});
  }
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
    double c = coin() ? 1.0 : 0.0;
    OpKind k = pick({OpKind::Mul, OpKind::Add});
    return mk(k, {s, cst(c)});
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

llvm::Expected<SmithProgram> moe::generateProgram(uint64_t seed, const SmithOptions &opts) {
  return Gen(seed, opts).run();
}
