//===- Kernels.h - One emitter per kind of kernel ---------------*- C++ -*-===//
//
// Private to codegen/. Each function emits the body of one kernel (the
// KernelEmitter has created the function) and returns the parallel extent
// and grain of its step. Items are what the runtime splits among threads:
//
//   store     rows of the value (all dims but the last); the last dim is the
//             inner, vectorisable loop
//   reduce    rows of the result; softmax and sorts: rows with the reduced
//             axis removed; norms: rows of the last axis
//   matmul    (row block, column block) tiles
//   route     1 (counts and lists the tokens of each expert, checking ids)
//   matmul_id (expert, column block) pairs, over the tokens routed there
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/Emitter.h"

namespace moe::codegen {

struct Extent {
  /// items = product of ceil(dim / divisor)
  std::vector<std::pair<DimExpr, int64_t>> factors;
  int64_t grain = 1;
  Extent(DimExpr items, int64_t grain) : factors{{std::move(items), 1}}, grain(grain) {}
  Extent(std::vector<std::pair<DimExpr, int64_t>> f, int64_t grain)
      : factors(std::move(f)), grain(grain) {}
};

/// Fills the buffer of `v` with `source(idx)` at every index.
Extent emitStoreKernel(KernelEmitter &E, const Value *v,
                       const std::function<llvm::Value *(llvm::ArrayRef<llvm::Value *>)> &source);
Extent emitReduceKernel(KernelEmitter &E, const Operation &op);
Extent emitSoftmaxKernel(KernelEmitter &E, const Operation &op);
Extent emitNormKernel(KernelEmitter &E, const Operation &op);
Extent emitSortKernel(KernelEmitter &E, const Operation &op);
Extent emitMatmulKernel(KernelEmitter &E, const Operation &op);
/// The routing tables of `ids` for `E` experts into scratch buffer `route`.
Extent emitRouteKernel(KernelEmitter &E, const Operation &op, unsigned route);
Extent emitMatmulIdKernel(KernelEmitter &E, const Operation &op, unsigned route);

/// Bytes of the routing scratch of matmul_id `op`.
DimExpr routeScratchBytes(const Operation &op);

} // namespace moe::codegen
