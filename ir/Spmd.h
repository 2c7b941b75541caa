//===- Spmd.h - Functions split over ranks ----------------------*- C++ -*-===//
//
// An SPMD function runs on every rank, each on its shard of the params:
//
//   func @f(%up: tensor<8 x 32*F x 64 x f32> {param, shard_axis = 1}, ...)
//       -> ... where T in [1, 512], F in [0, 1]
//       attributes {ranks = 3, F = [1, 1, 0]} { ... all_reduce ... }
//
// `ranks` is the rank count; a symbol with a function attribute of its own
// name is rank-dependent, bound on rank r to the r-th entry (so shards may be
// uneven or empty). A param with `shard_axis = a` holds, on each rank, that
// rank's rows of axis a of the whole param; with `shard_segments = s` the
// whole axis is s equal segments (gate_up: gate rows, then up rows) and a
// rank holds its rows of each segment, concatenated. Params are always given
// whole; each rank takes its shard (see shardRange).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"

#include "llvm/ADT/DenseSet.h"

namespace moe {

/// The rank count (1 for a function that is not split).
int64_t numRanks(const Function &f);

/// Rank-dependent symbols and their value on rank r.
SymbolBindings rankBindings(const Function &f, int64_t rank);

struct ShardSpec {
  int64_t axis = 0, segments = 1;
};
/// The shard spec of a param; nullopt when replicated.
std::optional<ShardSpec> getShardSpec(const Value &arg);

/// The whole param's type: the shard axis summed over all ranks.
TensorType fullParamType(const Function &f, const Value &arg);

/// The rows [begin, end) of each segment of the whole axis that rank r
/// holds, in order (segments of a whole axis of length `full`).
std::vector<std::pair<int64_t, int64_t>> shardRanges(const Function &f, const Value &arg,
                                                      int64_t rank, const SymbolBindings &syms);

/// Values that differ between ranks: sharded params and everything computed
/// from them before an all_reduce.
llvm::DenseSet<const Value *> rankLocalValues(const Function &f);

/// Checks ranks, rank symbols and shard specs; the first problem or nullopt.
std::optional<std::string> checkSpmd(const Function &f);

} // namespace moe
