//===- InProcessRanksTest.cpp - A failing rank ends its group -------------===//
//
// In-process ranks (runtime/InProcessRanks.h) run as threads that meet in
// all_reduce. A rank that fails before, inside or between collectives, or
// returns while the others wait in one, must end the whole group with an
// error naming it; no rank may be left waiting. Each case runs under a
// watchdog so a hang fails the test instead of stalling the suite.
//
//===----------------------------------------------------------------------===//
#include "ir/Error.h"
#include "runtime/InProcessRanks.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

using namespace moe;

namespace {

using Body = std::function<llvm::Error(int, Communicator &)>;

/// runInProcessRanks' error text ("" on success), or "hang" after 20 s.
std::string runGroup(int ranks, Body body) {
  auto result = std::make_shared<std::promise<std::string>>();
  auto f = result->get_future();
  std::thread([ranks, body, result] {
    llvm::Error e = runInProcessRanks(ranks, body);
    result->set_value(e ? llvm::toString(std::move(e)) : std::string());
  }).detach();
  if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready)
    return "hang";
  return f.get();
}

/// One all_reduce of 4 floats on `comm`.
llvm::Error reduceOnce(Communicator &comm) {
  float v[4] = {1, 2, 3, (float)comm.rank()};
  return comm.allReduceSum(v, 4);
}

} // namespace

/// Check that a healthy group sums, as a baseline for the failing ones.
TEST(InProcessRanks, AllReduceSums) {
  std::vector<float> got(3);
  auto e = runGroup(3, [&](int r, Communicator &c) -> llvm::Error {
    float v[4] = {1, 2, 3, (float)r};
    if (auto x = c.allReduceSum(v, 4))
      return x;
    got[r] = v[3];
    return v[0] == 3 ? llvm::Error::success() : err("wrong sum");
  });
  EXPECT_EQ(e, "");
  EXPECT_EQ(got, (std::vector<float>{3, 3, 3}));
}

/// Check that a rank failing before any collective ends the others' wait.
TEST(InProcessRanks, RankFailsBeforeTheCollective) {
  auto e = runGroup(3, [](int r, Communicator &c) -> llvm::Error {
    if (r == 1)
      return err("bad ids");
    return reduceOnce(c);
  });
  EXPECT_EQ(e, "rank 1 failed: bad ids");
}

/// Check that ranks disagreeing inside a collective (its size) all fail.
TEST(InProcessRanks, RankFailsInsideTheCollective) {
  auto e = runGroup(3, [](int r, Communicator &c) -> llvm::Error {
    float v[4] = {};
    return c.allReduceSum(v, r == 2 ? 3 : 4);
  });
  EXPECT_NE(e.find("all_reduce size mismatch"), std::string::npos) << e;
}

/// Check that a rank failing between two collectives ends the others' wait
/// in the second.
TEST(InProcessRanks, RankFailsBetweenCollectives) {
  auto e = runGroup(2, [](int r, Communicator &c) -> llvm::Error {
    if (auto x = reduceOnce(c))
      return x;
    if (r == 0)
      return err("kernel failed");
    return reduceOnce(c);
  });
  EXPECT_EQ(e, "rank 0 failed: kernel failed");
}

/// Check that a rank returning without joining a collective the others
/// wait in (or enter later) is an error, not a hang.
TEST(InProcessRanks, RankReturnsWithoutTheCollective) {
  for (int late : {0, 1}) {
    auto e = runGroup(3, [late](int r, Communicator &c) -> llvm::Error {
      if (r == 1)
        return llvm::Error::success();
      if (late) // enter after rank 1 has surely returned
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return reduceOnce(c);
    });
    EXPECT_NE(e.find("rank 1 returned without joining"), std::string::npos) << late << ": " << e;
  }
}
