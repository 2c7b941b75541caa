//===- ExpertMatch.cpp - Matching expert projections ----------------------===//
#include "passes/ExpertMatch.h"

using namespace moe;

std::optional<ExpertProj> moe::matchExpertProj(Value *v) {
  ExpertProj p;
  Operation *d = v->getDefiningOp();
  if (d && d->is(OpKind::AddId)) {
    p.bias = d;
    p.biasParam = d->getOperand(1);
    d = d->getOperand(0)->getDefiningOp();
  }
  if (!d || !d->is(OpKind::MatmulId))
    return std::nullopt;
  p.matmul = d;
  p.x = d->getOperand(0);
  p.weight = d->getOperand(1);
  p.ids = d->getOperand(2);
  if (!p.weight->isParam() || (p.bias && !p.biasParam->isParam()))
    return std::nullopt;
  if (p.bias && p.bias->getOperand(2) != p.ids)
    return std::nullopt;
  // The matmul's result must feed only its bias, if there is one.
  if (p.bias && !p.matmul->getResult()->hasOneUse())
    return std::nullopt;
  return p;
}

std::optional<ExpertProj> moe::matchDenseProj(Value *v) {
  ExpertProj p;
  Operation *d = v->getDefiningOp();
  if (d && d->is(OpKind::Add) && d->getOperand(1)->isParam() &&
      d->getOperand(1)->getType().rank() == 1) {
    p.bias = d;
    p.biasParam = d->getOperand(1);
    d = d->getOperand(0)->getDefiningOp();
  }
  if (!d || !d->is(OpKind::Matmul) || !d->getOperand(1)->isParam())
    return std::nullopt;
  if (p.bias && !d->getResult()->hasOneUse())
    return std::nullopt;
  p.matmul = d;
  p.x = d->getOperand(0);
  p.weight = d->getOperand(1);
  return p;
}

/// [add_id](mul(matmul_id x, W, ids, f), b, ids) or mul(matmul x, W, f)
/// where f broadcasts with a last dim of 1: a factor constant along the
/// output rows, such as llama.cpp's per-expert scales (gather s[E] by ids,
/// reshaped to [T, k, 1]) or build_ffn's per-tensor scales ([1]).
/// Splitting the rows (n) leaves f as it is.
std::optional<ExpertProj> moe::matchScaledProj(Value *v) {
  Operation *bias = nullptr, *d = v->getDefiningOp();
  if (d && d->is(OpKind::AddId)) {
    bias = d;
    d = d->getOperand(0)->getDefiningOp();
  }
  if (!d || !d->is(OpKind::Mul) || (bias && !d->getResult()->hasOneUse()))
    return std::nullopt;
  for (unsigned i : {0u, 1u}) {
    Value *a = d->getOperand(i), *f = d->getOperand(1 - i);
    const TensorType &ft = f->getType();
    if (ft.rank() > a->getType().rank() || (ft.rank() && !ft.dims.back().isConstant(1)) ||
        !a->hasOneUse())
      continue;
    std::optional<ExpertProj> p = matchExpertProj(a);
    if (!p && !bias)
      p = matchDenseProj(a);
    if (!p || p->bias)
      continue;
    p->scale = d;
    if (bias) {
      p->bias = bias;
      p->biasParam = bias->getOperand(1);
      if (!p->biasParam->isParam() || bias->getOperand(2) != p->ids)
        return std::nullopt;
    }
    return p;
  }
  return std::nullopt;
}

std::optional<ExpertProj> moe::matchProj(Value *v) {
  if (auto p = matchExpertProj(v))
    return p;
  if (auto p = matchScaledProj(v))
    return p;
  return matchDenseProj(v);
}

