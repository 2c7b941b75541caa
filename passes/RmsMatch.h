//===- RmsMatch.h - The RMS-norm pattern rms-fusion looks for ---*- C++ -*-===//
//
// `x * rsqrt(mean(x*x, last axis) + eps) [* w]`, found from a reduction along
// use-def chains, never by body order: the square is `mul x, x`, `pow{2}` or
// `sqr`; the per-row value may pass through any chain of `scale{factor,
// bias}`, `add`/`mul`/`div` by splat constants and reshapes, tracked as
// `a * reduce + b`; the inverse root is `rsqrt`, `pow{-0.5}`, `1 / sqrt` or
// `x / sqrt`; a final `mul` by a param or constant w of shape [N] or
// [1, ..., N] is taken too. The match records what it found, near misses
// included; rms-fusion decides whether it is legal.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"

namespace moe {

/// Everything found on the use-def chains around one reduction. Legality is
/// rms-fusion's to decide (whyNotFuse); the match only records.
struct RmsMatch {
  Operation *reduce = nullptr;
  Value *squaredA = nullptr, *squaredB = nullptr; ///< the square's operand(s)
  Value *x = nullptr;                             ///< what the product normalises
  Value *factor = nullptr;                        ///< the per-row 1/rms x meets
  Value *w = nullptr;
  std::vector<Operation *> ops; ///< the ops the fused op replaces, last one last
  double a = 1, b = 0;          ///< the per-row value is a * reduce + b
  Value *nonConstEps = nullptr;
  Value *sharedValue = nullptr; ///< first intermediate with another user
};

/// The pattern around `reduce` (a reduce_mean or reduce_sum), or nullopt
/// when its chain is not an RMS norm's shape at all.
std::optional<RmsMatch> matchRms(Operation *reduce);

} // namespace moe
