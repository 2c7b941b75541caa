//===- ParamDerive.h - Params derived from other params ---------*- C++ -*-===//
//
// A pass that changes a weight's layout (merge-up-gate's [E, 2N, K] gate_up,
// split-gate-up's halves) does not compute it per call: it records how the
// new param derives from the original ones as attributes on the new argument,
// and whoever binds params (the interpreter's binder, later the runtime)
// computes it once from the bound originals:
//
//   %gate_up: tensor<8 x 128 x 64 x q8_0> {param, derive = "concat",
//             from = ["gate_exps", "up_exps"], axis = 1}
//   %gate: tensor<8 x 64 x 64 x q8_0> {param, derive = "slice",
//          from = ["gate_up_exps"], axis = 1, start = 0, size = 64}
//
// Sources are params of the same function, named without '%'. The axis is
// never the innermost one of a block-quantised type, so derivation moves
// whole rows of blocks and never requantises.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"

namespace moe {

struct ParamDerivation {
  enum class Kind { Concat, Slice } kind;
  std::vector<std::string> from;
  int64_t axis = 0;
  int64_t start = 0, size = 0; ///< Slice only
};

/// The derivation recorded on `arg`, if any; an error if it is malformed.
llvm::Expected<std::optional<ParamDerivation>> getDerivation(const Value &arg);

/// Records `d` on `arg` (which must be a {param}).
void setDerivation(Value &arg, const ParamDerivation &d);

/// Checks every derivation of `f`: sources exist and are params, types are
/// compatible, the result type is what the derivation produces, no cycles.
/// Returns the first problem as a message.
std::optional<std::string> checkDerivations(const Function &f);

} // namespace moe
