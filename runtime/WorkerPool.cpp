//===- WorkerPool.cpp - A persistent fork-join thread pool ----------------===//
#include "runtime/WorkerPool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MOE_PAUSE() _mm_pause()
#else
#define MOE_PAUSE() ((void)0)
#endif

using namespace moe;

namespace {
/// How long an idle thread spins before it sleeps: longer than the gap
/// between two kernels of a run, short enough that threads of other pools
/// (in-process ranks share the cores) are not starved.
constexpr auto kSpin = std::chrono::microseconds(100);

/// Spins until `ready()` or kSpin has passed; true when ready. After the
/// first thousand pauses it yields, so a thread whose work needs this core
/// gets it.
template <typename Ready> bool spinUntil(Ready ready) {
  auto until = std::chrono::steady_clock::now() + kSpin;
  for (unsigned i = 0;; ++i) {
    if (ready())
      return true;
    if (i < 1000) {
      MOE_PAUSE();
      continue;
    }
    if ((i & 63) == 0 && std::chrono::steady_clock::now() > until)
      return ready();
    std::this_thread::yield();
  }
}
} // namespace

WorkerPool::WorkerPool(unsigned threads) {
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 1; i < threads; ++i)
    workers.emplace_back([this] { workerLoop(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(m);
    stopping = true;
  }
  wake.notify_all();
  for (auto &t : workers)
    t.join();
}

void WorkerPool::drain() {
  for (;;) {
    int64_t b = next.fetch_add(jobGrain, std::memory_order_relaxed);
    if (b >= jobN)
      return;
    job(b, std::min(jobN, b + jobGrain));
  }
}

// Sleeping and waking pair up as in Dekker's algorithm (every access below
// is sequentially consistent): a worker counts itself in `sleeping` before
// it checks `generation` under the lock, the caller bumps `generation`
// before it reads `sleeping`, so either the worker sees the new job or the
// caller sees the sleeper and wakes it (taking the lock, so the sleeper is
// already waiting). `callerWaiting` and `finished` pair up the same way.
void WorkerPool::workerLoop() {
  uint64_t seen = 0;
  for (;;) {
    auto ready = [&] { return stopping.load() || generation.load() != seen; };
    if (!spinUntil(ready)) {
      std::unique_lock<std::mutex> lock(m);
      ++sleeping;
      wake.wait(lock, ready);
      --sleeping;
    }
    if (stopping)
      return;
    seen = generation;
    drain();
    if (++finished == workers.size() && callerWaiting) {
      std::lock_guard<std::mutex> lock(m);
      done.notify_one();
    }
  }
}

void WorkerPool::parallelFor(int64_t n, int64_t grain,
                             llvm::function_ref<void(int64_t, int64_t)> fn) {
  if (n <= 0)
    return;
  grain = std::max<int64_t>(grain, 1);
  if (workers.empty() || n <= grain) {
    fn(0, n);
    return;
  }
  // Chunks small enough that every thread gets some.
  grain = std::max<int64_t>(1, std::min(grain, n / (int64_t)size()));
  std::unique_lock<std::mutex> owner(busy, std::try_to_lock);
  if (!owner) {
    // Another caller's job has the workers: run this one alone, in the same
    // chunks the workers would take, so its results are the same bits.
    for (int64_t b = 0; b < n; b += grain)
      fn(b, std::min(n, b + grain));
    return;
  }
  // The job is published by the generation's increment; every worker has
  // finished the previous one (below), so none reads these meanwhile.
  job = fn;
  jobN = n;
  jobGrain = grain;
  next.store(0, std::memory_order_relaxed);
  finished = 0;
  ++generation;
  if (sleeping) {
    std::lock_guard<std::mutex> lock(m);
    wake.notify_all();
  }
  drain();
  // Every worker takes part in every generation (if only to find the counter
  // exhausted), so none can still be reading this job when the next starts.
  auto allDone = [&] { return finished.load() == workers.size(); };
  if (!spinUntil(allDone)) {
    std::unique_lock<std::mutex> lock(m);
    callerWaiting = true;
    done.wait(lock, allDone);
    callerWaiting = false;
  }
}
