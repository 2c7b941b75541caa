//===- SplitAndDerivedTest.cpp - Derived params and split functions -------===//
//
// The library API (include/moe/Moe.h) as an outside program sees it: this
// binary links libmoe alone. Derived params (merge-up-gate's gate_up) are
// built from their sources however those were bound (by hand, from GGUF,
// at random); split functions (tp-split) run all their ranks. Every result
// is compared bit for bit with moe-run's on the same pipeline, params and
// input (moe-run --param/--weights/--seed, --input, --output .npy).
//
//===----------------------------------------------------------------------===//
#include "tests/api/ApiTestUtil.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

const std::string kTools = MOE_TOOLS_DIR;
const std::string kExamples = std::string(MOE_SOURCE_DIR) + "/examples";
/// This test's own directory (SplitAndDerived::SetUp).
std::string kWork;

/// A float32 .npy file of `shape` (what moe-run --param/--input read).
void writeNpy(const std::string &path, const std::vector<int64_t> &shape,
              const std::vector<float> &v) {
  std::string dims;
  for (int64_t d : shape)
    dims += std::to_string(d) + ",";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64)
    header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = (uint16_t)header.size();
  f.write(reinterpret_cast<const char *>(&len), 2);
  f << header;
  f.write(reinterpret_cast<const char *>(v.data()), (std::streamsize)(v.size() * 4));
}

/// The data bytes of a version-1 .npy file (moe-run --output writes them).
std::vector<uint8_t> readNpyData(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (s.size() < 10)
    return {};
  uint16_t len;
  std::memcpy(&len, s.data() + 8, 2);
  return std::vector<uint8_t>(s.begin() + 10 + len, s.end());
}

int64_t count(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

void run(const std::string &cmd) {
  ASSERT_EQ(std::system((cmd + " > " + kWork + "/cmd.log 2>&1").c_str()), 0)
      << cmd << "\n" << moe::apitest::readFile(kWork + "/cmd.log");
}

/// Deterministic values for a tensor of n elements (scaled like weights).
std::vector<float> values(int64_t n, float phase) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i)
    v[i] = 0.1f * std::sin(phase + 0.731f * (float)i);
  return v;
}

struct Layer {
  moe::ModuleHandle module;
  moe::jit::Executable exe;
};

Layer compile(const std::string &path, const std::string &pipeline, unsigned ranks = 0) {
  auto m = moe::parseFile(path);
  EXPECT_TRUE(bool(m)) << llvm::toString(m.takeError());
  if (!pipeline.empty())
    if (auto e = moe::runPipeline(*m, pipeline))
      ADD_FAILURE() << llvm::toString(std::move(e));
  moe::jit::Options o;
  o.ranks = ranks;
  auto exe = moe::jit::compile(*m, m->functionNames().at(0), o);
  EXPECT_TRUE(bool(exe)) << llvm::toString(exe.takeError());
  return Layer{std::move(*m), std::move(*exe)};
}

/// Runs `exe` on inputs NAME = values(n, 3 + k) for its k-th input (also
/// written to NAME.npy for moe-run) and returns result 0's bytes.
std::vector<uint8_t> runOn(moe::jit::Executable &exe, int64_t T) {
  std::vector<std::vector<float>> data;
  std::vector<std::pair<std::string, moe::TensorView>> inputs;
  data.reserve(8);
  for (auto &name : exe.inputNames()) {
    auto shape = exe.argumentShape(name, {{"T", T}});
    if (!shape) {
      ADD_FAILURE() << llvm::toString(shape.takeError());
      return {};
    }
    data.push_back(values(count(*shape), 3.0f + (float)data.size()));
    writeNpy(kWork + "/" + name + ".npy", *shape, data.back());
    inputs.push_back({name, {moe::DType::F32, *shape, data.back().data()}});
  }
  std::vector<moe::HostTensor> out;
  if (auto e = exe.run(inputs, out, {{"T", T}})) {
    ADD_FAILURE() << llvm::toString(std::move(e));
    return {};
  }
  return out.at(0).bytes;
}

/// moe-run's result 0 on x.npy with `flags`.
std::vector<uint8_t> moeRun(const std::string &file, const std::string &pipeline,
                            const std::string &flags, int64_t T) {
  std::string dir = kWork + "/moe-run-out";
  std::string p = pipeline.empty() ? "" : " -p '" + pipeline + "'";
  std::string inputs;
  auto m = moe::parseFile(file);
  if (!m) {
    ADD_FAILURE() << llvm::toString(m.takeError());
    return {};
  }
  auto exe = moe::jit::compile(*m, m->functionNames().at(0));
  if (!exe) {
    ADD_FAILURE() << llvm::toString(exe.takeError());
    return {};
  }
  for (auto &name : exe->inputNames())
    inputs += " --input " + name + "=" + kWork + "/" + name + ".npy";
  run(kTools + "/moe-run " + file + p + " --sym T=" + std::to_string(T) + inputs +
      " --output " + dir + " " + flags);
  return readNpyData(dir + "/result0.npy");
}

const char *kSplit2 = "default,tp-split{ranks=2},delay-allreduce";

class SplitAndDerived : public ::testing::Test {
protected:
  void SetUp() override {
    kWork = moe::apitest::tempDir(
        std::string("spmd-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
};

/// Check that after `default` the caller binds the sources, not gate_up.
TEST_F(SplitAndDerived, ParamNamesListTheSources) {
  Layer l = compile(kExamples + "/qwen3_tiny.moe", "default");
  auto names = l.exe.paramNames();
  EXPECT_EQ(std::count(names.begin(), names.end(), "gate_up_exps"), 0);
  EXPECT_EQ(std::count(names.begin(), names.end(), "up_exps"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "gate_exps"), 1);
  auto derived = l.exe.derivedParams();
  ASSERT_EQ(derived.size(), 1u);
  EXPECT_EQ(derived[0].from.size(), 2u);
  EXPECT_NE(derived[0].name, "up_exps");
  std::vector<float> w(8 * 128 * 64);
  std::string msg;
  EXPECT_EQ(moe::apitest::kindOf(
                l.exe.bindParam(derived[0].name, {moe::DType::F32, {8, 128, 64}, w.data()}),
                &msg),
            moe::ErrorKind::Bind);
  EXPECT_NE(msg.find("is derived from 'gate_exps', 'up_exps'"), std::string::npos) << msg;
}

/// Check that bindRandomParams equals moe-run --seed bit for bit, whatever
/// the pipeline (derived params from the generated sources), on 1 and 2 ranks.
TEST_F(SplitAndDerived, RandomParamsEqualMoeRunSeed) {
  for (std::string example : {"qwen3_tiny", "gemma4_tiny", "gptoss_tiny"})
    for (std::string pipeline : {"", "default", kSplit2}) {
      SCOPED_TRACE(example + " -p '" + pipeline + "'");
      std::string file = kExamples + "/" + example + ".moe";
      Layer l = compile(file, pipeline);
      ASSERT_FALSE(bool(l.exe.bindRandomParams(7)));
      auto got = runOn(l.exe, 5);
      auto want = moeRun(file, pipeline, "--seed 7", 5);
      ASSERT_FALSE(want.empty());
      EXPECT_TRUE(got == want);
    }
}

/// The qwen3_tiny params bound by hand (each also written to NAME.npy for
/// moe-run --param); one is bound again with other values afterwards.
void bindByHand(moe::jit::Executable &exe, std::vector<std::vector<float>> &keep,
                float phase) {
  for (auto &name : exe.paramNames()) {
    auto shape = exe.argumentShape(name, {});
    ASSERT_TRUE(bool(shape)) << llvm::toString(shape.takeError());
    keep.push_back(values(count(*shape), phase + (float)keep.size()));
    writeNpy(kWork + "/" + name + ".npy", *shape, keep.back());
    ASSERT_FALSE(bool(exe.bindParam(name, {moe::DType::F32, *shape, keep.back().data()})));
  }
}

std::string paramFlags(moe::jit::Executable &exe) {
  std::string flags;
  for (auto &name : exe.paramNames())
    flags += " --param " + name + "=" + kWork + "/" + name + ".npy";
  return flags;
}

/// Check that params bound by hand feed the derived gate_up and the shards:
/// equal to moe-run --param with the same pipeline, before and after one
/// source is bound again with new values (the derived value is rebuilt).
TEST_F(SplitAndDerived, ParamsByHand) {
  std::string file = kExamples + "/qwen3_tiny.moe";
  for (std::string pipeline : {"", "default", kSplit2}) {
    SCOPED_TRACE("-p '" + pipeline + "'");
    Layer l = compile(file, pipeline);
    std::vector<std::vector<float>> keep;
    keep.reserve(64);
    bindByHand(l.exe, keep, 0.5f);
    auto got = runOn(l.exe, 6);
    EXPECT_TRUE(got == moeRun(file, pipeline, paramFlags(l.exe), 6));
    // up_exps again, other values: gate_up and the shards follow.
    auto shape = *l.exe.argumentShape("up_exps", {});
    keep.push_back(values(count(shape), 11.0f));
    writeNpy(kWork + "/up_exps.npy", shape, keep.back());
    ASSERT_FALSE(bool(l.exe.bindParam("up_exps", {moe::DType::F32, shape, keep.back().data()})));
    auto again = runOn(l.exe, 6);
    EXPECT_FALSE(again == got);
    EXPECT_TRUE(again == moeRun(file, pipeline, paramFlags(l.exe), 6));
  }
}

/// Check the case: one source bound by hand, the rest at random;
/// the derived gate_up takes the caller's up_exps (moe-run --param --seed).
TEST_F(SplitAndDerived, OneSourceByHandTheRestRandom) {
  std::string file = kExamples + "/qwen3_tiny.moe";
  for (std::string pipeline : {"default", kSplit2}) {
    SCOPED_TRACE("-p '" + pipeline + "'");
    Layer l = compile(file, pipeline);
    auto shape = *l.exe.argumentShape("up_exps", {});
    std::vector<float> up = values(count(shape), 2.0f);
    writeNpy(kWork + "/up_exps.npy", shape, up);
    ASSERT_FALSE(bool(l.exe.bindParam("up_exps", {moe::DType::F32, shape, up.data()})));
    ASSERT_FALSE(bool(l.exe.bindRandomParams(5)));
    auto got = runOn(l.exe, 4);
    EXPECT_TRUE(got == moeRun(file, pipeline, "--seed 5 --param up_exps=" + kWork +
                                                  "/up_exps.npy", 4));
    EXPECT_FALSE(got == moeRun(file, pipeline, "--seed 5", 4));
  }
}

/// Check that a source left unbound is named, with the derived param it feeds.
TEST_F(SplitAndDerived, UnboundSourceIsNamed) {
  Layer l = compile(kExamples + "/qwen3_tiny.moe", "default");
  std::vector<std::vector<float>> keep;
  for (auto &name : l.exe.paramNames()) {
    if (name == "up_exps")
      continue;
    auto shape = *l.exe.argumentShape(name, {});
    keep.push_back(values(count(shape), 1.0f));
    ASSERT_FALSE(bool(l.exe.bindParam(name, {moe::DType::F32, shape, keep.back().data()})));
  }
  std::vector<float> x(64);
  std::vector<moe::HostTensor> out;
  std::string msg;
  EXPECT_EQ(moe::apitest::kindOf(
                l.exe.run({{"x", {moe::DType::F32, {1, 64}, x.data()}}}, out, {{"T", 1}}), &msg),
            moe::ErrorKind::Bind);
  EXPECT_NE(msg.find("param 'up_exps' of @moe_ffn is not bound"), std::string::npos) << msg;
  EXPECT_NE(msg.find("derived param '"), std::string::npos) << msg;
}

/// Check that params from a GGUF model (pre-merged gate_up in the file, and
/// separate up/gate) equal moe-run --weights on 1 and 2 ranks.
TEST_F(SplitAndDerived, GgufParams) {
  for (std::string merged : {"", "--merged-gate-up"}) {
    std::string gguf = kWork + "/q.gguf", layer = kWork + "/q.moe";
    run(kTools + "/moe-gguf tiny qwen3moe " + merged + " -o " + gguf);
    run(kTools + "/moe-import " + gguf + " --layer 1 -o " + layer);
    for (std::string pipeline : {"", "default", kSplit2}) {
      SCOPED_TRACE(merged + " -p '" + pipeline + "'");
      Layer l = compile(layer, pipeline);
      ASSERT_FALSE(bool(l.exe.bindGgufParams(gguf)));
      auto got = runOn(l.exe, 7);
      EXPECT_TRUE(got == moeRun(layer, pipeline, "--weights " + gguf, 7));
    }
  }
}

/// A Communicator of the caller's own, over threads of this process (as a
/// program with its own transport would write one): sums in rank order.
class ThreadComm : public moe::jit::Communicator {
public:
  struct Shared {
    std::mutex m;
    std::condition_variable cv;
    std::vector<float *> parts = std::vector<float *>(2);
    std::vector<float> sum;
    int arrived = 0, departed = 0;
    uint64_t generation = 0;
  };
  ThreadComm(Shared &s, int rank) : s(s), r(rank) {}
  int rank() const override { return r; }
  int size() const override { return 2; }
  llvm::Error allReduceSum(float *data, size_t n) override {
    std::unique_lock<std::mutex> lock(s.m);
    s.cv.wait(lock, [&] { return s.departed == 0; });
    s.parts[r] = data;
    uint64_t gen = s.generation;
    if (++s.arrived == 2) {
      s.sum.assign(n, 0.0f);
      for (int k = 0; k < 2; ++k) // rank order, as the library's own ranks
        for (size_t i = 0; i < n; ++i)
          s.sum[i] += s.parts[k][i];
      ++s.generation;
      s.departed = 2;
      s.cv.notify_all();
    } else {
      s.cv.wait(lock, [&] { return s.generation != gen; });
    }
    std::copy(s.sum.begin(), s.sum.begin() + (long)n, data);
    if (--s.departed == 0) {
      s.arrived = 0;
      s.cv.notify_all();
    }
    return llvm::Error::success();
  }

private:
  Shared &s;
  int r;
};

/// Check that a split function runs one rank per Executable through a
/// caller's Communicator (Options::comm), equal to the in-process ranks, and
/// that output views of a split run equal its owned results.
TEST_F(SplitAndDerived, CallersCommunicatorAndOutputViews) {
  std::string file = kExamples + "/gemma4_tiny.moe";
  Layer all = compile(file, kSplit2);
  ASSERT_FALSE(bool(all.exe.bindRandomParams(9)));
  auto want = runOn(all.exe, 3);
  ASSERT_FALSE(want.empty());
  // Output views: rank 0 writes the caller's memory.
  // runOn's inputs: x, then logits.
  std::vector<float> x = values(3 * 64, 3.0f), logits = values(3 * 8, 4.0f);
  std::vector<float> viewed(3 * 64, -1.0f);
  std::vector<moe::MutableTensorView> views{{moe::DType::F32, {3, 64}, viewed.data()}};
  ASSERT_FALSE(bool(all.exe.run({{"x", {moe::DType::F32, {3, 64}, x.data()}},
                                 {"logits", {moe::DType::F32, {3, 8}, logits.data()}}},
                                views, {{"T", 3}})));
  EXPECT_EQ(std::memcmp(viewed.data(), want.data(), want.size()), 0);
  // One Executable per rank, each on its own thread, the caller's transport.
  ThreadComm::Shared shared;
  std::vector<std::vector<uint8_t>> got(2);
  std::vector<std::string> errors(2);
  auto m = moe::parseFile(file);
  ASSERT_TRUE(bool(m));
  ASSERT_FALSE(bool(moe::runPipeline(*m, kSplit2)));
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      ThreadComm comm(shared, r);
      moe::jit::Options o;
      o.comm = &comm;
      auto exe = moe::jit::compile(*m, "moe_ffn", o);
      if (!exe) {
        errors[r] = llvm::toString(exe.takeError());
        return;
      }
      if (auto e = exe->bindRandomParams(9)) {
        errors[r] = llvm::toString(std::move(e));
        return;
      }
      std::vector<moe::HostTensor> out;
      if (auto e = exe->run({{"x", {moe::DType::F32, {3, 64}, x.data()}},
                             {"logits", {moe::DType::F32, {3, 8}, logits.data()}}},
                            out, {{"T", 3}}))
        errors[r] = llvm::toString(std::move(e));
      else
        got[r] = out.at(0).bytes;
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(errors, (std::vector<std::string>{"", ""}));
  EXPECT_TRUE(got[0] == want);
  EXPECT_TRUE(got[1] == want);
}

/// Check that the rank count is the function's: another is an error.
TEST_F(SplitAndDerived, RankCountMustMatch) {
  auto m = moe::parseFile(kExamples + "/qwen3_tiny.moe");
  ASSERT_TRUE(bool(m));
  moe::jit::Options o;
  o.ranks = 2;
  std::string msg;
  EXPECT_EQ(moe::apitest::kindOf(moe::jit::compile(*m, "moe_ffn", o), &msg),
            moe::ErrorKind::Compile);
  EXPECT_EQ(msg,
            "Options::ranks = 2: @moe_ffn is not split over ranks (run tp-split{ranks=2} first)");
  ASSERT_FALSE(bool(moe::runPipeline(*m, kSplit2)));
  o.ranks = 3;
  auto e3 = moe::jit::compile(*m, "moe_ffn", o);
  ASSERT_FALSE(bool(e3));
  EXPECT_EQ(llvm::toString(e3.takeError()), "Options::ranks = 3: @moe_ffn was split for 2 ranks");
  o.ranks = 2;
  auto ok = moe::jit::compile(*m, "moe_ffn", o);
  ASSERT_TRUE(bool(ok)) << llvm::toString(ok.takeError());
  EXPECT_EQ(ok->ranks(), 2u);
  // The rank-dependent symbol is the library's: not listed, not given.
  for (auto &s : ok->symbols())
    EXPECT_EQ(s.name, "T");
  ASSERT_FALSE(bool(ok->bindRandomParams(1)));
  std::vector<float> x(64);
  std::vector<moe::HostTensor> out;
  EXPECT_EQ(moe::apitest::kindOf(ok->run({{"x", {moe::DType::F32, {1, 64}, x.data()}}}, out,
                                          {{"T", 1}, {"F", 1}}),
                                  &msg),
            moe::ErrorKind::Bind);
  EXPECT_NE(msg.find("symbol F of @moe_ffn is rank-dependent"), std::string::npos) << msg;
}

} // namespace
