//===- Binder.h - Binding arguments: sources, derivations, shards -*- C++ -*-===//
//
// Params are always given whole, as a model file holds them. The binder turns
// whole values into what one rank of a function sees: it takes each plain
// argument from an ArgSource (files, memory, the seeded generator), computes
// derived params once from their sources (ir/ParamDerive.h), and cuts each
// sharded param to the rank's rows (ir/Spmd.h). Whole values are computed
// once and shared by all ranks.
//
// For the JIT, storedArgsForRank gives every argument in its stored layout
// (what Executable::runRaw takes). An argument an InPlaceSource has in memory
// already (a tensor of a memory-mapped GGUF file) is passed by pointer when
// the rank sees it whole, never copied; a shard of one is cut from that
// memory directly, copying only the rank's rows.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"
#include "runtime/HostBuffer.h"
#include "runtime/Tensor.h"

#include "llvm/ADT/StringMap.h"
#include <memory>
#include <functional>

namespace moe {

struct ParamDerivation;

/// Where whole argument values come from: called with the argument, its
/// whole type and its concrete whole shape.
using ArgSource = std::function<llvm::Expected<Tensor>(
    const Value &arg, ElemType elem, llvm::ArrayRef<int64_t> shape)>;

/// The seeded generator of runtime/Random.h as a source.
ArgSource randomSource(uint64_t seed);

/// Where whole arguments may already be in memory in their stored layout:
/// a pointer to the elements of `arg` (type `elem`, whole shape `shape`,
/// checked by the source), null when this source does not hold `arg`, an
/// error when it holds it but it does not fit. The memory outlives the
/// Binder.
using InPlaceSource = std::function<llvm::Expected<const void *>(
    const Value &arg, ElemType elem, llvm::ArrayRef<int64_t> shape)>;

/// `t`'s elements in their stored layout: its own storage for f32, i32 and
/// the block types, else (f16/bf16, held as f32) a conversion appended to
/// `storage`.
const void *storedData(const Tensor &t, std::vector<std::vector<uint8_t>> &storage);

/// Lets go of `n` bytes at `p` of memory an InPlaceSource gave (the pages
/// of a mapped file, read again from the file if touched later).
using ReleaseFn = std::function<void(const void *p, size_t n)>;

/// How bind-time packing (Executable::packWeights) reads an argument that
/// only a repacked copy of is read by the kernels, a few experts at a
/// time, and lets go of what it has read.
struct ArgFeed {
  /// Writes experts [e0, e1) of the argument, in its stored layout, to
  /// `dst`; null: the argument is in memory (StoredArgs::ptrs).
  std::function<llvm::Error(int64_t e0, int64_t e1, uint8_t *dst)> fill;
  /// Experts [e0, e1) are packed and will not be read again: the memory
  /// they came from may go (a mapped file's pages dropped, a shard freed
  /// after its last expert). Null: nothing to let go of.
  std::function<void(int64_t e0, int64_t e1)> release;
};

/// What binding arguments took: how many were passed in place (no copy),
/// the bytes of the others (a value shared by the ranks counted for each),
/// and the wall time.
struct BindStats {
  unsigned numInPlace = 0;
  int64_t copiedBytes = 0;
  /// Weights packed at bind time (Executable::packWeights) and the bytes
  /// of their packed copies.
  unsigned numPacked = 0;
  int64_t packedBytes = 0;
  double ms = 0;
};

/// Arguments in their stored layout for Executable::runRaw: ptrs[k] is
/// argument k, pointing into memory of an InPlaceSource, into the Binder's
/// cache of whole values (so the Binder must outlive the StoredArgs), or
/// into `storage` / `buffers` (heap blocks that stay put when a StoredArgs
/// is moved; copying one is not allowed).
struct StoredArgs {
  StoredArgs() = default;
  StoredArgs(StoredArgs &&) = default;
  StoredArgs &operator=(StoredArgs &&) = default;
  StoredArgs(const StoredArgs &) = delete;
  StoredArgs &operator=(const StoredArgs &) = delete;

  std::vector<const void *> ptrs;
  std::vector<std::vector<uint8_t>> storage; ///< f16/bf16 values widened by Tensor
  std::vector<HostBuffer> buffers; ///< shards (not zero-filled)
  BindStats stats; ///< numInPlace and copiedBytes (ms is the caller's)
  /// Per argument, when storedArgsForRank was told which are packed only:
  /// how to feed and release those (empty for the others).
  std::vector<ArgFeed> feeds;

  /// n bytes that live as long as this; null if they cannot be had.
  uint8_t *allocate(size_t n) { return buffers.emplace_back(HostBuffer::allocate(n)).data(); }
};

class Binder {
public:
  /// `syms` binds the function's non-rank symbols (e.g. T). Params that
  /// are not derived are looked up in `inPlace` first when it is given.
  /// `release`, when given, lets go of memory `inPlace` gave once a packed
  /// copy replaces it (storedArgsForRank's `packedOnly`).
  Binder(const Function &f, ArgSource source, SymbolBindings syms,
         InPlaceSource inPlace = nullptr, ReleaseFn release = nullptr);

  /// The symbols rank r runs with: `syms` plus its rank-dependent values.
  SymbolBindings symbolsForRank(int64_t rank) const;
  /// Every argument as rank r sees it, in argument order.
  llvm::Expected<std::vector<Tensor>> argsForRank(int64_t rank);
  /// The same in stored layout (see the file comment); every argument's
  /// shape checked against its type (checkArguments' errors). The result
  /// points into this Binder's cache: it must not outlive the Binder.
  llvm::Expected<StoredArgs> storedArgsForRank(int64_t rank);
  /// The same, for a JIT that packs the weights at bind time: argument k
  /// with packedOnly[k] (Executable::packedOnly) gets a feed. A derived
  /// param built from in-place sources is then never built whole: its
  /// pointer is null and the feed joins the sources expert by expert. An
  /// in-place argument's feed releases its memory, a shard's frees it.
  llvm::Expected<StoredArgs> storedArgsForRank(int64_t rank, const std::vector<bool> &packedOnly);
  /// One argument of rank r the same way (ptrs holds just it): for a binding
  /// that prepares arguments one at a time (the library's bindParam).
  llvm::Expected<StoredArgs> storedArgForRank(const Value &arg, int64_t rank);
  /// The whole value of the argument named `name` (derived if it is).
  llvm::Expected<const Tensor *> whole(llvm::StringRef name);
  /// A derived param's whole value in stored layout, built straight from
  /// its sources' in-place data (one buffer, computed once, valid while
  /// this Binder lives); null if it is not derived or a source is not in
  /// place (whole() computes it then).
  llvm::Expected<const void *> derivedInPlace(const Value &arg);

private:
  const Function &f;
  ArgSource source;
  SymbolBindings syms;
  InPlaceSource inPlace;
  ReleaseFn release;
  /// Argument `arg` of rank r as a Tensor (whole, derived or cut).
  llvm::Expected<Tensor> rankTensor(const Value &arg, int64_t rank);
  /// Appends argument `arg` of rank r (symbols `rs`) to `out`.
  llvm::Error appendStoredArg(const Value &arg, int64_t rank, const SymbolBindings &rs,
                              StoredArgs &out, bool packedOnly = false);
  /// The in-place data and whole shape of each source of derivation `pd`
  /// of `arg`, in order; empty when one is not in place (or of another
  /// element type).
  llvm::Expected<std::vector<std::pair<const uint8_t *, std::vector<int64_t>>>>
  inPlaceSources(const Value &arg, const ParamDerivation &pd);
  /// The feed of a derived concat of in-place sources (experts joined on
  /// demand), or none (fill null) when `arg` is not one.
  llvm::Expected<ArgFeed> derivedFeed(const Value &arg);
  /// `arg`'s whole stored data from inPlace (null if it has none).
  llvm::Expected<const void *> inPlaceData(const Value &arg);
  llvm::StringMap<HostBuffer> derivedCache; ///< derivedInPlace's values
  llvm::StringMap<Tensor> cache;
  std::vector<std::string> inProgress; ///< derivation cycle guard
};

} // namespace moe
