//===- SmithGenMoe.cpp - moe-smith: routers, experts, dense MLPs ----------===//
//
// The MoE part of a generated function: a router (softmax or sigmoid,
// top-k, optional normalisation), routed experts with merged or separate
// gate/up weights of random types, biases and per-expert scales, a GLU,
// linear chains between the down product and the expert sum, and a shared
// expert or dense MLP; in SPMD functions, sharded weights and all_reduces.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/SmithGenImpl.h"

using namespace moe;
using namespace moe::smith;

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
