//===- WorkerPool.h - A persistent fork-join thread pool --------*- C++ -*-===//
//
// The threads an Executable splits each kernel's items among. Workers are
// created once; between kernels a worker spins for a while (kSpin) before it
// sleeps, and so does the caller waiting for the workers, so a run's
// kernels (decode: a dozen within a millisecond or two) hand out work and
// finish without a system call: a sleeping thread is woken (a futex call)
// only when it is sleeping. parallelFor hands out chunks of
// `grain` items from an atomic counter (so experts with many tokens and
// experts with none balance out), runs chunks on the calling thread too, and
// returns when every item is done. One parallelFor at a time uses the
// workers: a parallelFor called while another holds the pool (concurrent
// runs of one Executable) runs its items on its calling thread alone, in
// the chunks the workers would have taken (so the results are the same
// bits), rather than waiting: no deadlock, no mixing of two jobs.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/ADT/STLFunctionalExtras.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace moe {

class WorkerPool {
public:
  /// `threads` in total, the caller included; 0 means every core.
  explicit WorkerPool(unsigned threads = 0);
  ~WorkerPool();
  WorkerPool(const WorkerPool &) = delete;
  WorkerPool &operator=(const WorkerPool &) = delete;

  unsigned size() const { return (unsigned)workers.size() + 1; }

  /// Calls fn(begin, end) on disjoint chunks covering [0, n).
  void parallelFor(int64_t n, int64_t grain, llvm::function_ref<void(int64_t, int64_t)> fn);

private:
  std::vector<std::thread> workers;
  std::mutex busy; ///< held by the parallelFor that has the workers
  std::mutex m; ///< guards sleeping and waking, nothing on the spinning path
  std::condition_variable wake, done;
  std::atomic<uint64_t> generation{0};
  std::atomic<bool> stopping{false};
  std::atomic<size_t> finished{0}; ///< workers done with the current generation
  std::atomic<unsigned> sleeping{0}; ///< workers asleep on `wake`
  std::atomic<bool> callerWaiting{false}; ///< the caller asleep on `done`
  // The current job.
  llvm::function_ref<void(int64_t, int64_t)> job;
  int64_t jobN = 0, jobGrain = 1;
  std::atomic<int64_t> next{0};

  void drain();
  void workerLoop();
};

} // namespace moe
