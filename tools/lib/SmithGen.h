//===- SmithGen.h - Random MoE-shaped programs (moe-smith) ------*- C++ -*-===//
//
// moe-smith's generator: a pure function of a seed (std::mt19937_64) giving
// one valid function in the shape of an MoE layer, built through ir/Builder.h
// so every type comes from the op table's shape rules, and verified before
// it is returned. A program is a pre-norm (a fused op, or written out in one
// of the forms rms-fusion matches or must refuse), a router (softmax, sigmoid
// or gpt-oss's softmax over the top k; topk or argsort + slice), routed
// experts on matmul_id (separate or pre-merged gate_up, biases, every GLU,
// per-expert scales), optionally a shared expert and a dense MLP, and chains
// of random ops drawn to cover the whole op table (views, permutes,
// reshapes, casts, norms, reductions, concat, broadcast, constants).
//
// Shapes: token count T symbolic (`where T in [1, hi]`) or, for a static
// capture, a concrete value (the input dyn-dims re-symbolises). Params get
// every weight type (f32, f16, bf16, q8_0, q4_0, mxfp4) where the op table
// allows a block-quantised operand. An SPMD program is written as tp-split
// would leave it (sharded params, `ranks`, a rank-dependent n_ff symbol) with
// all_reduces at random points of linear and non-linear chains; the returned
// values are always replicated.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"

#include <cstdint>

namespace moe {

struct SmithOptions {
  /// Generate rank-local operands after an all_reduce (delay-allreduce must
  /// refuse to move the reduction past them). On by default.
  bool rankLocalOperands = true;
  /// Generate static captures (no symbols; dyn-dims gets the dynamic input).
  bool staticCaptures = true;
  /// Generate SPMD functions (sharded params, all_reduce).
  bool spmd = true;
  /// Generate captures whose token count equals another dim of the graph (k,
  /// E): the ambiguity of issue #15's dyn-dims coincidence bug. On by default.
  bool captureCoincidences = true;
  /// Generate all_reduces of f16/bf16 partial sums (cast before, back after,
  /// as allreduce-precision does). On by default.
  bool narrowAllReduce = true;
};

/// What a generated program is, for the checks that depend on it.
struct SmithProgram {
  std::unique_ptr<Module> module;
  bool staticCapture = false; ///< dyn-dims needs `T=x:0`
  bool spmd = false;
};

/// The program of `seed`; an error only on a generator bug (a built op the
/// shape rules reject, or a function the verifier rejects).
llvm::Expected<SmithProgram> generateProgram(uint64_t seed, const SmithOptions &opts = {});

} // namespace moe
