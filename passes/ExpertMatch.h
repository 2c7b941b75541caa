//===- ExpertMatch.h - Matching expert projections --------------*- C++ -*-===//
//
// Shared by merge-up-gate, split-gate-up and tp-split: an expert projection is
// `matmul_id x, W, ids` optionally followed by `add_id _, b, ids`, with W and
// b function params; tp-split also splits dense projections (`matmul` [+
// `add`]) and projections scaled before their bias. Matching walks use-def
// edges only.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"

namespace moe {

struct ExpertProj {
  Operation *matmul = nullptr; ///< matmul_id x, W, ids
  /// mul matmul, f: a factor constant along the output rows (llama.cpp's
  /// per-expert scales), between the matmul and its bias (optional; only
  /// tp-split matches it, see matchScaledProj).
  Operation *scale = nullptr;
  Operation *bias = nullptr;   ///< add_id matmul, b, ids (optional)
  Value *x = nullptr, *weight = nullptr, *ids = nullptr, *biasParam = nullptr;
  /// The value the projection yields (the add_id's result if biased).
  Value *result() const { return (bias ? bias : scale ? scale : matmul)->getResult(); }
};

/// Matches the expert projection that defines `v`; nullopt if `v` is not
/// one, or if its weight or bias is not a param.
std::optional<ExpertProj> matchExpertProj(Value *v);

/// `matmul x, W[N, K]` (+ `add b[N]`): a dense projection, as ExpertProj.
std::optional<ExpertProj> matchDenseProj(Value *v);

/// An expert or dense projection scaled before its bias by a factor constant
/// along the output rows (see ExpertMatch.cpp).
std::optional<ExpertProj> matchScaledProj(Value *v);

/// Any of the three: the projections tp-split splits.
std::optional<ExpertProj> matchProj(Value *v);

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
