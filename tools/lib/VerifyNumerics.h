//===- VerifyNumerics.h - Numeric translation validation --------*- C++ -*-===//
//
// Runs the reference interpreter on each function before and after every
// pass, on the same random inputs (a function of the seed and the argument's
// name; params created by a pass are derived from the original ones), at
// several values of each symbol (1, the odd prime 7, the range's ends when
// small), simulating ranks for SPMD functions, and fails with the pass's
// name when an output differs beyond tolerance (the rule and table of
// runtime/Compare.h, with --verify-numerics-rtol as the f32 tolerance) or the
// ranks disagree.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "passes/Pass.h"

namespace moe {

struct NumericsOptions {
  uint64_t seed = 1;
  double rtol = 1e-4; ///< for f32 outputs; the others: runtime/Compare.h's table
};

std::unique_ptr<PassInstrumentation> createVerifyNumerics(NumericsOptions o);

} // namespace moe
