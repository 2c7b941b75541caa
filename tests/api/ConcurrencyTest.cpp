//===- ConcurrencyTest.cpp - run from several threads on one Executable ---===//
//
// Issue #16: two threads running one Executable hung in the worker pool or
// returned another call's results. Here four threads run one Executable
// (with a worker pool of its own, so the calls compete for it) at different
// token counts, many times each, and every result must equal, bit for bit,
// the result of the same run made alone. Then the params are bound anew
// (between the concurrent phases, as the header requires) and the same
// holds for the new weights.
//
//===----------------------------------------------------------------------===//
#include "ApiTestUtil.h"

#include <atomic>
#include <map>
#include <thread>

using namespace moe;
using namespace moe::apitest;

namespace {

constexpr int64_t kWidth = 64;
const int64_t kTokens[] = {1, 2, 3, 5, 8, 13, 32, 64, 100};

struct Layer {
  jit::Executable exe;
};

jit::Executable compileLayer(const std::string &file, const std::string &pipeline) {
  auto m = parse(readFile(std::string(MOE_SOURCE_DIR) + "/" + file), file);
  EXPECT_TRUE(!!m) << message(m.takeError());
  EXPECT_EQ(message(runPipeline(*m, pipeline)), "");
  jit::Options o;
  o.threads = 4; // a pool with workers even on a small machine
  auto exe = jit::compile(*m, "moe_ffn", o);
  if (!exe) {
    ADD_FAILURE() << message(exe.takeError());
    std::abort();
  }
  return std::move(*exe);
}

/// Each T's result bytes from runs made one at a time.
std::map<int64_t, std::vector<uint8_t>> alone(jit::Executable &exe, float salt) {
  std::map<int64_t, std::vector<uint8_t>> ref;
  for (int64_t T : kTokens) {
    std::vector<float> x = input(T, kWidth, salt);
    std::vector<HostTensor> out;
    EXPECT_EQ(message(exe.run({{"x", {DType::F32, {T, kWidth}, x.data()}}}, out,
                              {{"T", T}})),
              "");
    EXPECT_EQ(out.size(), 1u);
    ref[T] = out.empty() ? std::vector<uint8_t>() : out[0].bytes;
  }
  return ref;
}

/// Four threads, `iters` runs each over the token counts (each thread in
/// its own order, half of them into output views); the number of results
/// that differ from `ref`, and the errors.
int hammer(jit::Executable &exe, const std::map<int64_t, std::vector<uint8_t>> &ref,
           float salt, int iters, std::atomic<int> &errors) {
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < iters; ++i) {
        int64_t T = kTokens[(t * 5 + i * (t + 1)) % std::size(kTokens)];
        std::vector<float> x = input(T, kWidth, salt);
        std::vector<uint8_t> got;
        llvm::Error e = llvm::Error::success();
        if ((i + t) % 2) {
          std::vector<HostTensor> out;
          e = exe.run({{"x", {DType::F32, {T, kWidth}, x.data()}}}, out); // T inferred
          if (!e && out.size() == 1)
            got = out[0].bytes;
        } else {
          std::vector<float> y(T * kWidth);
          e = exe.run({{"x", {DType::F32, {T, kWidth}, x.data()}}},
                      {MutableTensorView{DType::F32, {T, kWidth}, y.data()}}, {{"T", T}});
          got.assign((const uint8_t *)y.data(), (const uint8_t *)(y.data() + y.size()));
        }
        if (e) {
          llvm::consumeError(std::move(e));
          ++errors;
        } else if (got != ref.at(T)) {
          ++mismatches;
        }
      }
    });
  for (auto &th : threads)
    th.join();
  return mismatches;
}

} // namespace

TEST(ApiConcurrency, FourThreadsOneExecutableEqualRunsAlone) {
  // f32 weights, with and without the default pipeline; q8_0 weights, which
  // the kernels stream repacked (shared by the concurrent runs).
  for (auto [file, pipeline] : {std::pair{"examples/qwen3_tiny.moe", ""},
                                {"examples/qwen3_tiny.moe", "default"},
                                {"tests/lit/run/Inputs/qwen3_tiny_q8.moe", "default"}}) {
    SCOPED_TRACE(std::string(file) + " pipeline '" + pipeline + "'");
    jit::Executable exe = compileLayer(file, pipeline);
    ASSERT_EQ(message(exe.bindRandomParams(3)), "");
    auto ref = alone(exe, 0.f);
    std::atomic<int> errors{0};
    EXPECT_EQ(hammer(exe, ref, 0.f, 24, errors), 0);
    EXPECT_EQ(errors.load(), 0);
  }
}

TEST(ApiConcurrency, RebindingBetweenConcurrentPhases) {
  jit::Executable exe = compileLayer("examples/qwen3_tiny.moe", "default");
  std::vector<float> router(8 * kWidth);
  for (size_t i = 0; i < router.size(); ++i)
    router[i] = std::sin(0.3f * (float)i);
  ASSERT_EQ(message(exe.bindParam("gate_inp", {DType::F32, {8, kWidth}, router.data()})), "");
  ASSERT_EQ(message(exe.bindRandomParams(5)), "");
  auto ref1 = alone(exe, 0.5f);
  std::atomic<int> errors{0};
  EXPECT_EQ(hammer(exe, ref1, 0.5f, 12, errors), 0);

  // New router values in other memory, bound while no run is going on.
  std::vector<float> router2(router.size());
  for (size_t i = 0; i < router2.size(); ++i)
    router2[i] = std::cos(0.7f * (float)i);
  ASSERT_EQ(message(exe.bindParam("gate_inp", {DType::F32, {8, kWidth}, router2.data()})), "");
  auto ref2 = alone(exe, 0.5f);
  EXPECT_NE(ref1.at(32), ref2.at(32)); // the new binding is used
  EXPECT_EQ(hammer(exe, ref2, 0.5f, 12, errors), 0);
  EXPECT_EQ(errors.load(), 0);
}
