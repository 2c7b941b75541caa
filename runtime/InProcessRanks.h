//===- InProcessRanks.h - SPMD ranks as threads of one process --*- C++ -*-===//
//
// N ranks as N threads sharing memory. all_reduce sums in rank order (rank 0
// first) into one buffer that every rank copies, so results are bit-identical
// on every rank and from run to run. A rank that fails aborts the group: the
// others return an error from their next all_reduce instead of waiting
// forever. So does a rank that returns while others wait in an all_reduce
// it never joins (ranks that disagree on the collectives): the waiting ranks
// get an error naming it, instead of a hang.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Communicator.h"

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace moe {

/// The state the ranks of one group share.
class InProcessGroup {
public:
  explicit InProcessGroup(int size) : size(size), contributions(size) {}
  llvm::Error allReduceSum(int rank, float *data, size_t n);
  /// Marks the group failed; every waiting and later all_reduce errors.
  void abort(int rank, const std::string &why);
  /// Rank `rank` has returned: an all_reduce that waits for it (or is
  /// entered later) can never complete, so the group fails.
  void finish(int rank);
  /// The failure that aborted the group, if any.
  std::optional<std::string> firstFailure() {
    std::lock_guard<std::mutex> lock(m);
    return failed ? std::optional<std::string>(failure) : std::nullopt;
  }

private:
  std::mutex m;
  std::condition_variable cv;
  int size;
  std::vector<float *> contributions;
  std::vector<float> sum;
  int arrived = 0, departed = 0;
  int finished = -1; ///< the first rank that returned (-1: none yet)
  uint64_t generation = 0;
  size_t count = 0;
  bool failed = false;
  std::string failure;
};

class InProcessCommunicator : public Communicator {
public:
  InProcessCommunicator(InProcessGroup &g, int rank, int size) : g(g), r(rank), n(size) {}
  int rank() const override { return r; }
  int size() const override { return n; }
  using Communicator::allReduceSum; // f16/bf16: widened, summed here, rounded
  llvm::Error allReduceSum(float *data, size_t count) override {
    return g.allReduceSum(r, data, count);
  }

private:
  InProcessGroup &g;
  int r, n;
};

/// Runs `body(rank, comm)` on `ranks` threads; returns the first error (by
/// rank order) after all have finished. A failing rank aborts the group.
llvm::Error runInProcessRanks(int ranks,
                              const std::function<llvm::Error(int, Communicator &)> &body);

struct Tensor;
/// One rank's run: its results, given its rank and communicator (null when
/// the function has one rank: it runs alone, on the calling thread).
using RankRun =
    std::function<llvm::Expected<std::vector<Tensor>>(int rank, Communicator *comm)>;
/// Every rank's results of `run`: on this thread for one rank, else on
/// `ranks` threads of one in-process group (runInProcessRanks).
llvm::Expected<std::vector<std::vector<Tensor>>> gatherRanks(int ranks, const RankRun &run);

class Binder;
class Function;
struct Tensor;

/// Interprets `f` on all of its ranks (ir/Spmd.h; one rank if it is not
/// split), each with its own arguments from `binder`; every rank's results.
llvm::Expected<std::vector<std::vector<Tensor>>> interpretOnRanks(const Function &f,
                                                                  Binder &binder);

} // namespace moe
