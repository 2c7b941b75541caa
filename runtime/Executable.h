//===- Executable.h - A JIT-compiled function, ready to run -----*- C++ -*-===//
//
// compile() lowers a verified function (codegen/Lower), JIT-compiles the
// kernels (codegen/Jit, with the object cache) and keeps a private copy of
// the function, so the caller's module may go away. run() then:
//
//   1. checks the symbols against their declared ranges, and runs the
//      function's variant instead where one covers them (docs/IR.md; the
//      variants are compiled with the function);
//   2. computes the memory plan for these symbol values (cached per
//      binding): every intermediate and scratch buffer gets an offset in one
//      arena, buffers whose lifetimes (first write .. last read, in step
//      order) do not overlap sharing memory; results are never shared;
//   3. runs the steps in order, each kernel's items split over the worker
//      pool, all_reduce through the Communicator (none: one rank);
//   4. stops at the first kernel that reports a bad index, with the
//      interpreter's wording of the error, naming the op;
//   5. returns the results as Tensors.
//
// Arguments come in their stored layout: f32/i32 as such, f16/bf16 as
// 16-bit patterns, block types as GGUF blocks. The Tensor overload checks
// them like the interpreter (checkArguments) and converts f16/bf16; the raw
// overload uses caller memory as it is, without copying. run() may be called
// from several threads at once (ranks, or the library's concurrent runs):
// each call has its own arena, and a call that finds the pool busy with
// another call's kernel runs its own kernel on its thread alone
// (WorkerPool::parallelFor); repacked weights are shared under a lock.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/Jit.h"
#include "runtime/Binder.h"
#include "runtime/Communicator.h"
#include "runtime/Tensor.h"
#include "runtime/HostBuffer.h"
#include "runtime/Profile.h"
#include "runtime/WorkerPool.h"

#include <map>
#include <mutex>

namespace moe {

struct ExecOptions {
  /// Threads of the Executable's own pool (the caller included); 0: every core.
  unsigned threads = 0;
  codegen::JitOptions jit;
};

struct RunOptions {
  /// The ranks all_reduce sums over; null: one rank.
  Communicator *comm = nullptr;
  /// Null: the Executable's own pool. Concurrent runs (in-process ranks) each
  /// need their own, or `singleThreaded`.
  WorkerPool *pool = nullptr;
  bool singleThreaded = false;
  /// Non-zero: the memory of the arguments passed to runRaw stays unchanged
  /// for every run with this version, so the weights the kernels stream
  /// repacked (codegen's Packed buffers) are repacked on the first such run
  /// and reused after it. Zero: repacked on every run. A fresh value comes
  /// from Executable::newParamsVersion(); use a new one after changing any
  /// argument's memory in place.
  uint64_t paramsVersion = 0;
  /// Non-empty: result k is written to results[k] (caller memory shaped as
  /// the result's type under the run's symbols) and runRaw returns no
  /// Tensors. The kernels write there directly; a result that is an
  /// argument, or a buffer returned twice, is copied in.
  llvm::ArrayRef<void *> results;
  /// Non-null: every step's time and work is added to it, and the run's
  /// (runtime/Profile.h). Null: no clock is read.
  Profile *profile = nullptr;
};

/// Offsets of the planned buffers for one symbol binding.
struct MemoryPlan {
  std::vector<int64_t> offset; ///< per buffer (-1: not in the arena)
  std::vector<int64_t> bytes;  ///< per buffer
  int64_t peakBytes = 0;       ///< the arena
  int64_t totalBytes = 0;      ///< what the buffers would take unshared
};

class Executable {
public:
  static llvm::Expected<std::unique_ptr<Executable>> compile(const Function &f,
                                                             const ExecOptions &opts = {});
  /// Compiles several functions (a module's blocks) together: lowered into
  /// one LLVM module, each distinct kernel defined once
  /// (codegen/ShareKernels.h), one object-cache entry for them all, and on a
  /// miss the kernels compiled in parts on every compile thread. One JIT and
  /// one worker pool serve them all; each Executable keeps its own plan,
  /// arenas and packed weights. In the order of `fs`. `threads`, when
  /// given, overrides opts.threads per function (functions with the same
  /// count share a pool).
  static llvm::Expected<std::vector<std::unique_ptr<Executable>>>
  compileAll(llvm::ArrayRef<const Function *> fs, const ExecOptions &opts = {},
             llvm::ArrayRef<unsigned> threads = {});
  ~Executable();

  const Function &function() const { return *fn; }
  /// The JIT's: shared by the functions compiled together.
  const codegen::JitStats &jitStats() const { return jit->stats(); }
  /// Kernel definitions left out of the compile because an identical one
  /// was kept (over every function compiled together).
  unsigned kernelsShared() const { return shared; }
  unsigned numKernels() const;
  unsigned threads() const { return pool->size(); }

  llvm::Expected<MemoryPlan> plan(const SymbolBindings &syms);
  /// The bytes one rank contributes to all_reduce in one run under `syms`.
  int64_t allReduceBytes(const SymbolBindings &syms) const;
  /// A value for RunOptions::paramsVersion never returned before.
  static uint64_t newParamsVersion();

  /// Per argument: is it read by the kernels only through a repacked copy
  /// (a weight the prepare steps pack, read by no other step, not a
  /// result)? Such an argument's memory may go once packWeights packed it.
  std::vector<bool> packedOnly(const SymbolBindings &syms) const;
  /// Packs the weights now ("at bind time"), for the runs with
  /// `paramsVersion` (non-zero) and these symbols: each weight a few
  /// experts at a time, from args.ptrs or, where null, from its feed
  /// (Binder::storedArgsForRank with packedOnly), calling the feed's
  /// release after each chunk. A packed-only argument's pointer becomes
  /// null: the runs (runRaw with args.ptrs) read the packed copy only.
  /// `pool` null: the Executable's own. `chunkBytes`: the stored bytes
  /// packed between two releases (at least one expert; 0: 16 MiB).
  llvm::Error packWeights(StoredArgs &args, const SymbolBindings &syms, uint64_t paramsVersion,
                          WorkerPool *pool = nullptr, int64_t chunkBytes = 0);

  llvm::Expected<std::vector<Tensor>> run(llvm::ArrayRef<Tensor> args,
                                          const SymbolBindings &syms,
                                          const RunOptions &ro = {});
  /// Checks `args` (checkArguments) and lays them out for runRaw; the
  /// Tensors must outlive the result.
  llvm::Expected<StoredArgs> prepare(llvm::ArrayRef<Tensor> args, const SymbolBindings &syms);
  /// args[k]: argument k's data in its stored layout, shaped as its type
  /// evaluated under `syms` (not checked: the caller's contract).
  llvm::Expected<std::vector<Tensor>> runRaw(llvm::ArrayRef<const void *> args,
                                             const SymbolBindings &syms,
                                             const RunOptions &ro = {});

private:
  Executable() = default;
  std::unique_ptr<Function> fn;
  /// The function's variants (Function::getVariants), compiled alongside:
  /// a run whose symbols a variant covers runs it, on this pool.
  std::vector<std::unique_ptr<Executable>> variants;
  Executable *variantFor(const SymbolBindings &syms) const;
  codegen::Program prog;
  std::shared_ptr<codegen::Jit> jit;
  unsigned shared = 0;
  std::vector<codegen::KernelFn> kernels; ///< per step (null: not a kernel)
  std::shared_ptr<WorkerPool> pool;
  std::mutex planMutex;
  std::map<std::vector<int64_t>, MemoryPlan> plans;
  /// Repacked weights kept for reuse (RunOptions::paramsVersion), at most
  /// kPackedPerBuffer per Packed buffer, oldest dropped first.
  struct PackedWeights {
    unsigned buffer;
    uint64_t version;
    const void *source;
    std::vector<int64_t> syms;
    std::shared_ptr<HostBuffer> data;
  };
  static constexpr size_t kPackedPerBuffer = 8;
  /// Arenas of finished runs, largest first, for the next runs.
  static constexpr size_t kFreeArenas = 4;
  std::mutex arenaMutex;
  std::vector<HostBuffer> freeArenas;
  HostBuffer takeArena(size_t bytes);
  void giveBackArena(HostBuffer b);
  /// The symbol values Packed buffer `b` depends on (its weight's dims).
  std::vector<int64_t> packedKey(unsigned b, const SymbolBindings &syms) const;
  std::mutex packedMutex;
  std::vector<PackedWeights> packed;

  llvm::Error kernelError(const codegen::KernelErrorSlot &slot, const SymbolBindings &syms);
};

/// Runs the Executable of an SPMD function (ir/Spmd.h) on every rank in
/// this process, as interpretOnRanks does; results per rank.
class Binder;
/// `runMs` (optional) receives the wall time of each run, binding excluded;
/// `repeat` runs every rank that many times (for timing).
/// How runOnRanks runs, and what it measured.
struct RankRunOptions {
  unsigned threadsPerRank = 1;
  unsigned repeat = 1;           ///< runs of every rank (arguments bound once)
  std::vector<double> *runMs = nullptr; ///< out: wall time of each run
  /// out: per rank, what its runRaw took in each run (the ranks start each
  /// run together; the slowest one's time is close to the run's).
  std::vector<std::vector<double>> *rankMs = nullptr;
  /// out: every rank's kernel times, summed over the ranks and the runs.
  Profile *profile = nullptr;
  /// out: binding every rank's arguments, summed over ranks.
  BindStats *bind = nullptr;
  /// Pack the weights when binding (Executable::packWeights), letting go
  /// of what only the packed copies are read from; false: on the first run,
  /// keeping the weights' own memory too.
  bool packAtBind = true;
};

llvm::Expected<std::vector<std::vector<Tensor>>> runOnRanks(Executable &exe, Binder &binder,
                                                            const RankRunOptions &o = {});

} // namespace moe
