//===- ExpertMatch.h - Matching expert projections --------------*- C++ -*-===//
//
// Shared by merge-up-gate, split-gate-up and tp-split: an expert projection is
// `matmul_id x, W, ids` optionally followed by `add_id _, b, ids`, with W and
// b function params. Matching walks use-def edges only.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"

namespace moe {

struct ExpertProj {
  Operation *matmul = nullptr; ///< matmul_id x, W, ids
  /// mul matmul, f: a factor constant along the output rows (llama.cpp's
  /// per-expert scales), between the matmul and its bias (optional; only
  /// tp-split matches it, see TPSplit.cpp).
  Operation *scale = nullptr;
  Operation *bias = nullptr;   ///< add_id matmul, b, ids (optional)
  Value *x = nullptr, *weight = nullptr, *ids = nullptr, *biasParam = nullptr;
  /// The value the projection yields (the add_id's result if biased).
  Value *result() const { return (bias ? bias : scale ? scale : matmul)->getResult(); }
};

/// Matches the projection that defines `v`; nullopt if `v` is not one, or if
/// its weight or bias is not a param.
inline std::optional<ExpertProj> matchExpertProj(Value *v) {
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

inline bool isGlu(const Operation &op) {
  return op.is(OpKind::Swiglu) || op.is(OpKind::Geglu) || op.is(OpKind::SwigluOai);
}

/// A fresh argument name based on `base` (suffixes _1, _2, ... if taken).
inline std::string freshArgName(const Function &f, const std::string &base) {
  std::string n = base;
  for (int i = 1; f.lookupArgument(n); ++i)
    n = base + "_" + std::to_string(i);
  return n;
}

} // namespace moe
