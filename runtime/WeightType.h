//===- WeightType.h - Retyping a module's weights ---------------*- C++ -*-===//
//
// Runs any example in any weight type: the params used as weights (operand #1
// of matmul / matmul_id) take another element type before the pipeline runs,
// so the seeded generator (runtime/Random.h) makes them in that type, as a
// model's file would hold them. `moe-run --weight-type` retypes every weight;
// the benchmark (bench/) only the experts', keeping the router f32 as the
// models do.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"

#include "llvm/Support/Error.h"

namespace moe {

/// Which weights retypeWeights changes.
enum class WeightSet {
  Matmul,  ///< the weights of matmul and matmul_id
  Experts, ///< the weights of matmul_id only (the experts)
};

/// The params of every function of `m` used as a weight of `which` become
/// `type`; an error naming the param when a block-quantised `type` does not
/// fit its rows (not a multiple of 32 elements).
llvm::Error retypeWeights(Module &m, ElemType type, WeightSet which);

} // namespace moe
