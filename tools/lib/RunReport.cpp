//===- RunReport.cpp - What moe-run prints for --time and --profile -------===//
//
// See RunReport.h.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/RunReport.h"

#include "fmt/format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstdio>
#include <sys/resource.h>
#include <unistd.h>

using namespace moe;

void moe::printCompileTime(const Executable &exe) {
  auto &st = exe.jitStats();
  llvm::outs() << fmt::format("compile: {:.1f} ms ({} kernels, {} shared, {} compiled, {} from cache)\n",
                              st.compileMs, exe.numKernels(), exe.kernelsShared(),
                              st.modulesCompiled, st.modulesFromCache);
}

/// Median and minimum of `ms`, as "12.345 ms (median of 5 runs, min 12.000 ms".
static std::string medianOf(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  std::string s = fmt::format("{:.3f} ms", ms[ms.size() / 2]);
  if (ms.size() > 1)
    s += fmt::format(" (median of {} runs, min {:.3f} ms)", ms.size(), ms.front());
  return s;
}

/// The threads each rank ran on: in-process ranks each had their own pool
/// of `rankThreads`.
static unsigned threadsPerRank(const Executable &exe, unsigned rankThreads, bool mpi,
                               int64_t ranks) {
  return mpi || ranks == 1 ? exe.threads() : rankThreads;
}

/// This process's resident memory now and at its peak, in MB (0 where
/// the system does not say).
static std::pair<double, double> residentMB() {
  double now = 0;
  if (std::FILE *f = std::fopen("/proc/self/statm", "r")) {
    long size = 0, resident = 0;
    if (std::fscanf(f, "%ld %ld", &size, &resident) == 2)
      now = double(resident) * double(sysconf(_SC_PAGESIZE)) / 1e6;
    std::fclose(f);
  }
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return {now, double(u.ru_maxrss) / 1e3};
}

void moe::printRunTimes(const RunResults &r, Executable *exe, Binder &binder, bool mpi,
                        unsigned rankThreads) {
  if (exe)
    llvm::outs() << fmt::format("bind: {} argument{} in place, {} bytes copied{}, {} weight{} "
                                "repacked ({} bytes), {:.1f} ms\n",
                                r.bound.numInPlace, r.bound.numInPlace == 1 ? "" : "s",
                                r.bound.copiedBytes, mpi ? " (rank 0)" : " (all ranks)",
                                r.bound.numPacked, r.bound.numPacked == 1 ? "" : "s",
                                r.bound.packedBytes, r.bound.ms);
  auto [rss, peak] = residentMB();
  if (exe)
    llvm::outs() << fmt::format("memory: resident {:.0f} MB, peak {:.0f} MB{} (after the runs: "
                                "weights, their repacked copies, arenas)\n",
                                rss, std::max(rss, peak), mpi ? " (rank 0)" : "");
  std::string plan;
  if (exe) {
    if (auto p = exe->plan(binder.symbolsForRank(0)))
      plan = fmt::format(", memory plan peak {} bytes ({} unshared)", p->peakBytes,
                         p->totalBytes);
    else
      llvm::consumeError(p.takeError());
  }
  std::vector<double> sorted = r.runMs;
  std::sort(sorted.begin(), sorted.end());
  std::string reps = sorted.size() > 1 ? fmt::format(", median of {} runs, min {:.3f} ms",
                                                     sorted.size(), sorted.front())
                                       : "";
  int64_t ranks = (int64_t)r.rankMs.size();
  std::string how = "interp, binding included";
  if (exe && ranks <= 1)
    how = fmt::format("jit, {} threads", exe->threads());
  else if (exe)
    how = fmt::format("jit, {} ranks {}, {} thread{} per rank{}", ranks,
                      mpi ? "over MPI" : "in-process",
                      threadsPerRank(*exe, rankThreads, mpi, ranks),
                      threadsPerRank(*exe, rankThreads, mpi, ranks) == 1 ? "" : "s",
                      mpi ? ", runs start at a barrier, the slowest rank's time"
                          : ", wall time of all ranks");
  llvm::outs() << fmt::format("run: {:.3f} ms ({}{}{})\n", sorted[sorted.size() / 2], how, reps,
                              plan);
  if (ranks > 1)
    for (int64_t q = 0; q < ranks; ++q)
      llvm::outs() << fmt::format("run rank {}: {}\n", q, medianOf(r.rankMs[q]));
}

void moe::printProfile(const RunResults &r, const Executable &exe, unsigned runs,
                       unsigned rankThreads, bool mpi) {
  int64_t ranks = std::max<int64_t>(1, (int64_t)r.rankMs.size());
  unsigned threads = threadsPerRank(exe, rankThreads, mpi, ranks);
  std::string title =
      ranks == 1
          ? fmt::format("profile: {} run{}, {} thread{}; totals over the runs", runs,
                        runs == 1 ? "" : "s", threads, threads == 1 ? "" : "s")
          : fmt::format("profile: {} run{} x {} ranks {}, {} thread{} per rank; totals over the "
                        "runs, summed over the ranks (%run: of the ranks' summed run time)",
                        runs, runs == 1 ? "" : "s", ranks, mpi ? "over MPI" : "in-process",
                        threads, threads == 1 ? "" : "s");
  r.profile.print(llvm::outs(), title);
}
