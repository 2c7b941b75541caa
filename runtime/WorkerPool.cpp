//===- WorkerPool.cpp - A persistent fork-join thread pool ----------------===//
#include "runtime/WorkerPool.h"

using namespace moe;

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

void WorkerPool::workerLoop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(m);
      wake.wait(lock, [&] { return stopping || generation != seen; });
      if (stopping)
        return;
      seen = generation;
    }
    drain();
    {
      std::lock_guard<std::mutex> lock(m);
      if (++finished == workers.size())
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
  {
    std::lock_guard<std::mutex> lock(m);
    job = fn;
    jobN = n;
    jobGrain = grain;
    next.store(0, std::memory_order_relaxed);
    finished = 0;
    ++generation;
  }
  wake.notify_all();
  drain();
  std::unique_lock<std::mutex> lock(m);
  // Every worker takes part in every generation (if only to find the counter
  // exhausted), so none can still be reading this job when the next starts.
  done.wait(lock, [&] { return finished == workers.size(); });
}
