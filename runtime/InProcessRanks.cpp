//===- InProcessRanks.cpp - SPMD ranks as threads of one process ----------===//
#include "runtime/InProcessRanks.h"
#include "ir/Error.h"
#include "ir/Spmd.h"
#include "runtime/Binder.h"
#include "runtime/Interpreter.h"

#include "fmt/format.h"
#include <algorithm>
#include <thread>

using namespace moe;

llvm::Error InProcessGroup::allReduceSum(int rank, float *data, size_t n) {
  std::unique_lock<std::mutex> lock(m);
  // Wait until the previous reduction has been read by every rank.
  cv.wait(lock, [&] { return failed || departed == 0; });
  if (!failed && finished >= 0) {
    failed = true;
    failure = fmt::format("rank {} returned without joining the all_reduce rank {} entered "
                          "(the ranks disagree on the collectives)",
                          finished, rank);
    cv.notify_all();
  }
  if (failed)
    return err(failure);
  if (arrived == 0)
    count = n;
  else if (n != count) {
    failed = true;
    failure = fmt::format("all_reduce size mismatch: rank {} has {} elements, others {}", rank,
                          n, count);
    cv.notify_all();
    return err(failure);
  }
  contributions[rank] = data;
  uint64_t gen = generation;
  if (++arrived == size) {
    sum.assign(n, 0.0f);
    for (int r = 0; r < size; ++r) // rank order: reproducible
      for (size_t i = 0; i < n; ++i)
        sum[i] += contributions[r][i];
    ++generation;
    departed = size;
    cv.notify_all();
  } else {
    cv.wait(lock, [&] { return failed || generation != gen; });
    if (failed && generation == gen)
      return err(failure);
  }
  std::copy(sum.begin(), sum.end(), data);
  if (--departed == 0) {
    arrived = 0;
    cv.notify_all();
  }
  return llvm::Error::success();
}

void InProcessGroup::abort(int rank, const std::string &why) {
  std::lock_guard<std::mutex> lock(m);
  if (!failed) {
    failed = true;
    failure = size > 1 ? fmt::format("rank {} failed: {}", rank, why) : why;
  }
  cv.notify_all();
}

void InProcessGroup::finish(int rank) {
  std::lock_guard<std::mutex> lock(m);
  if (finished < 0)
    finished = rank;
  // Ranks waiting for the others to arrive wait for this one in vain.
  if (!failed && arrived > 0 && arrived < size) {
    failed = true;
    failure = fmt::format("rank {} returned without joining an all_reduce {} other rank{} "
                          "entered (the ranks disagree on the collectives)",
                          rank, arrived, arrived == 1 ? "" : "s");
    cv.notify_all();
  }
}

llvm::Error moe::runInProcessRanks(int ranks,
                                   const std::function<llvm::Error(int, Communicator &)> &body) {
  InProcessGroup group(ranks);
  std::vector<std::string> errors(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      InProcessCommunicator comm(group, r, ranks);
      if (auto e = body(r, comm)) {
        errors[r] = llvm::toString(std::move(e));
        group.abort(r, errors[r]);
      } else {
        group.finish(r);
      }
    });
  for (auto &t : threads)
    t.join();
  // Report the rank that failed first, not the ones it aborted.
  if (auto first = group.firstFailure())
    return err(*first);
  return llvm::Error::success();
}

llvm::Expected<std::vector<std::vector<Tensor>>> moe::gatherRanks(int ranks,
                                                                  const RankRun &run) {
  std::vector<std::vector<Tensor>> results(ranks);
  if (ranks == 1) {
    auto out = run(0, nullptr);
    if (!out)
      return out.takeError();
    results[0] = std::move(*out);
    return results;
  }
  auto e = runInProcessRanks(ranks, [&](int r, Communicator &comm) -> llvm::Error {
    auto out = run(r, &comm);
    if (!out)
      return out.takeError();
    results[r] = std::move(*out);
    return llvm::Error::success();
  });
  if (e)
    return e;
  return results;
}

llvm::Expected<std::vector<std::vector<Tensor>>> moe::interpretOnRanks(const Function &f,
                                                                       Binder &binder) {
  int ranks = (int)numRanks(f);
  // Bind on this thread (whole params are shared and computed once).
  std::vector<std::vector<Tensor>> args(ranks);
  for (int r = 0; r < ranks; ++r) {
    auto a = binder.argsForRank(r);
    if (!a)
      return a.takeError();
    args[r] = std::move(*a);
  }
  return gatherRanks(ranks, [&](int r, Communicator *comm) {
    InterpOptions o;
    o.comm = comm;
    return interpret(f, args[r], binder.symbolsForRank(r), o);
  });
}
