//===- Profile.h - Per-kernel times of JIT runs -----------------*- C++ -*-===//
//
// What `moe-run --profile` and the benchmark's --moe_profile print: one line
// per kernel (a step of the lowered program), sorted by time, as a user
// reads `perf report`. Executable::runRaw fills a Profile when
// RunOptions::profile is set: it reads the clock around each step (one check
// per step, none per element; nothing at all without a profile) and adds the
// step's work, computed from the op's shapes under the run's symbols:
//
//   FLOPs         matmul and matmul_id only: 2 x (elements of the result) x
//                 K (2 M N K; 2 T k N K), on the op's own kernel (not on the
//                 helpers that route, quantise or pack for it)
//   weight bytes  the bytes of operand #1 the op reads: the whole weight of a
//                 matmul; for a matmul_id the rows of the distinct experts
//                 its ids select in this run (counted from the ids buffer)
//
// A Profile sums over every run and step it is given: one per concurrent run
// (each in-process rank its own), merged afterwards (merge, or serialize /
// deserialize across MPI processes). Kernels are keyed by their JIT symbol,
// which is the same on every rank of one function.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/Program.h"
#include "ir/IR.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moe {

/// One kernel's totals.
struct KernelTimes {
  std::string label;  ///< `matmul_id %up`, `route(%ids)` (codegen::Step::label)
  std::string symbol; ///< the JIT symbol (what perf shows), empty for all_reduce
  uint64_t calls = 0;
  double ms = 0;
  double flops = 0;       ///< summed over calls
  double weightBytes = 0; ///< summed over calls
};

class Profile {
public:
  /// Adds one call of a step.
  void addStep(const codegen::Step &st, double ms, double flops, double weightBytes);
  /// Adds one run (one rank's runRaw) of `ms` in which this rank
  /// contributed `allReduceBytes` to all_reduce.
  void addRun(double ms, int64_t allReduceBytes);
  /// Adds everything `o` holds (the same kernel, by symbol, summed).
  void merge(const Profile &o);

  /// One line per kernel and run, for sending to another process.
  std::string serialize() const;
  static llvm::Expected<Profile> deserialize(llvm::StringRef text);

  /// The table: `title` first, then kernels by descending time, the time
  /// outside kernels and the total.
  void print(llvm::raw_ostream &os, llvm::StringRef title) const;

  uint64_t runs() const { return numRuns; }
  double runMs() const { return totalRunMs; }
  const std::vector<KernelTimes> &kernels() const { return rows; }

private:
  KernelTimes &row(llvm::StringRef label, llvm::StringRef symbol);
  std::vector<KernelTimes> rows;
  llvm::StringMap<size_t> index; ///< key (symbol, or label) -> rows
  uint64_t numRuns = 0;
  double totalRunMs = 0;
  int64_t reducedBytes = 0; ///< all_reduce bytes, summed over runs
};

/// The FLOPs and weight bytes of one call of `st` (see the file comment);
/// `bufs` are the run's buffer pointers (for a matmul_id's ids).
struct StepWork {
  double flops = 0, weightBytes = 0;
};
StepWork stepWork(const codegen::Program &prog, const codegen::Step &st,
                  const SymbolBindings &syms, void *const *bufs);

/// The bytes one rank contributes to the all_reduce steps of `prog` in one
/// run under `syms` (its buffers' elements in their type's size).
int64_t allReduceBytes(const codegen::Program &prog, const SymbolBindings &syms);

} // namespace moe
