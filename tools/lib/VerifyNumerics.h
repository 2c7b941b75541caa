//===- VerifyNumerics.h - Numeric translation validation --------*- C++ -*-===//
//
// Runs the reference interpreter on each function before and after every
// pass, on the same random inputs (a function of the seed and the argument's
// name; params created by a pass are derived from the original ones), at
// several values of each symbol (1, the odd prime 7, the range's ends when
// small), simulating ranks for SPMD functions, and fails with the pass's
// name when an output differs beyond tolerance or the ranks disagree.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "passes/Pass.h"

namespace moe {

struct NumericsOptions {
  uint64_t seed = 1;
  double rtol = 1e-4; ///< for f32 outputs; f16/bf16 use 1e-2; i32 exact
};

std::unique_ptr<PassInstrumentation> createVerifyNumerics(NumericsOptions o);

/// Max |a - b| / max(max |b|, 1e-30) over the elements, or an error for a
/// shape/type mismatch; i32 tensors must be equal (0 or 1).
llvm::Expected<double> relativeError(const struct Tensor &a, const struct Tensor &b);

} // namespace moe
