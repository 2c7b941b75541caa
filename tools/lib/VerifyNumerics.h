//===- VerifyNumerics.h - Numeric translation validation --------*- C++ -*-===//
//
// Runs the reference interpreter on each function before and after every
// pass, on the same random inputs (a function of the seed and the argument's
// name; params created by a pass are derived from the original ones), at
// several values of each symbol (1, the odd prime 7, the range's ends when
// small), simulating ranks for SPMD functions, and fails with the pass's
// name when an output differs beyond tolerance (the rule and table of
// runtime/Compare.h, with --verify-numerics-rtol as the f32 tolerance) or the
// ranks disagree. When a pass gives a symbol to dims that were static
// (dyn-dims), the function after it is also run at T = 1, 5, 13 and 2c+3
// (c the captured value) and compared with the function before it run on the
// same tokens in chunks of c, the last padded with the first tokens; first,
// each result's token axis is found by permuting the tokens, and a function
// that is not token-wise (permuting or changing one token says so) is named
// in a note and checked only at c.
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

/// Every combination of one value per symbol that `f` binds per run (those
/// bound per rank are left out), each symbol's values from `valuesOf`, in
/// order (the first symbol slowest); at most the first `limit` of them.
std::vector<SymbolBindings>
symbolCombinations(const Function &f,
                   llvm::function_ref<std::vector<int64_t>(const SymbolDecl &)> valuesOf,
                   size_t limit = SIZE_MAX);

} // namespace moe
