//===- Binder.h - Binding arguments: sources, derivations, shards -*- C++ -*-===//
//
// Params are always given whole, as a model file holds them. The binder turns
// whole values into what one rank of a function sees: it takes each plain
// argument from an ArgSource (files, memory, the seeded generator), computes
// derived params once from their sources (ir/ParamDerive.h), and cuts each
// sharded param to the rank's rows (ir/Spmd.h). Whole values are computed
// once and shared by all ranks.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"
#include "runtime/Tensor.h"

#include "llvm/ADT/StringMap.h"
#include <functional>

namespace moe {

/// Where whole argument values come from: called with the argument, its
/// whole type and its concrete whole shape.
using ArgSource = std::function<llvm::Expected<Tensor>(
    const Value &arg, ElemType elem, llvm::ArrayRef<int64_t> shape)>;

/// The seeded generator of runtime/Random.h as a source.
ArgSource randomSource(uint64_t seed);

class Binder {
public:
  /// `syms` binds the function's non-rank symbols (e.g. T).
  Binder(const Function &f, ArgSource source, SymbolBindings syms);

  /// The symbols rank r runs with: `syms` plus its rank-dependent values.
  SymbolBindings symbolsForRank(int64_t rank) const;
  /// Every argument as rank r sees it, in argument order.
  llvm::Expected<std::vector<Tensor>> argsForRank(int64_t rank);
  /// The whole value of the argument named `name` (derived if it is).
  llvm::Expected<const Tensor *> whole(llvm::StringRef name);

private:
  const Function &f;
  ArgSource source;
  SymbolBindings syms;
  llvm::StringMap<Tensor> cache;
  std::vector<std::string> inProgress; ///< derivation cycle guard
};

/// Rows [begin, end) of `axis`, for every element type (a block-quantised
/// tensor only along a non-innermost axis, or along the innermost axis at
/// multiples of 32).
llvm::Expected<Tensor> sliceAxis(const Tensor &t, int64_t axis, int64_t begin, int64_t end);
/// Tensors of one element type joined along `axis` (same rules).
llvm::Expected<Tensor> concatAxis(llvm::ArrayRef<const Tensor *> ts, int64_t axis);

} // namespace moe
