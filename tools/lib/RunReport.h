//===- RunReport.h - What moe-run prints for --time and --profile -*- C++ -*-===//
//
// moe-run's results of running a function on its ranks, and the lines
// --time and --profile print from them (docs/SPMD.md, docs/JIT.md: their
// formats are what tests and scripts read).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Binder.h"
#include "runtime/Executable.h"
#include "runtime/Profile.h"
#include "runtime/Tensor.h"

#include <vector>

namespace moe {

/// What running the function on its ranks gave.
struct RunResults {
  std::vector<Tensor> out;   ///< rank 0's results
  std::vector<double> runMs; ///< per run (--repeat): see the file comment
  /// Per rank, per run: what the rank's run took (JIT only).
  std::vector<std::vector<double>> rankMs;
  BindStats bound;
  Profile profile; ///< --profile: every kernel, summed over runs and ranks
};

/// --time: what compiling took.
void printCompileTime(const Executable &exe);
/// --time: what binding and running took, each rank's run, the memory
/// plan's peak and the process's resident memory. `rankThreads`: the pool
/// of each in-process rank.
void printRunTimes(const RunResults &r, Executable *exe, Binder &binder, bool mpi,
                   unsigned rankThreads);
/// --profile: the per-kernel table (runtime/Profile.h) of `runs` runs.
void printProfile(const RunResults &r, const Executable &exe, unsigned runs,
                  unsigned rankThreads, bool mpi);

} // namespace moe
