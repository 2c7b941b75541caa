//===- CompileModuleTest.cpp - jit::compileModule: a model's blocks at once -===//
//
// compileModule compiles every function of a module together, sharing the
// kernels that are identical (issue #19: whole models compile in a blink).
// Sharing must never change a result: every block's results equal those of
// the same function compiled alone, bit for bit, whether it took a copy of
// another block's program (equal but for its name and tensor names), shares
// some kernels with another (a block that differs in one constant), or
// shares none.
//
//===----------------------------------------------------------------------===//
#include "ApiTestUtil.h"

#include <cstring>

using namespace moe;
using namespace moe::apitest;

namespace {

/// qwen3_tiny.moe's function as block `b` of an imported model: its own
/// name and tensor names, and `clampMin` as the routing weights' floor.
std::string block(int b, const std::string &clampMin = "6.1e-5") {
  std::string t = example("qwen3_tiny.moe");
  t = t.substr(t.find("func @moe_ffn"));
  auto replace = [&](const std::string &from, const std::string &to) {
    for (size_t at = t.find(from); at != std::string::npos; at = t.find(from, at + to.size()))
      t.replace(at, from.size(), to);
  };
  replace("@moe_ffn", "@blk" + std::to_string(b));
  for (const char *w : {"gate_inp", "up_exps", "gate_exps", "down_exps"})
    replace(std::string("%") + w + ": tensor<8 x 64 x 64 x f32> {param}",
            std::string("%") + w + ": tensor<8 x 64 x 64 x f32> {param, gguf = \"blk." +
                std::to_string(b) + ".ffn_" + w + ".weight\"}");
  replace("{min = 6.1e-5}", "{min = " + clampMin + "}");
  return t;
}

std::vector<HostTensor> runOnce(jit::Executable &exe, uint64_t seed, int64_t T) {
  EXPECT_EQ(message(exe.bindRandomParams(seed)), "");
  std::vector<float> x = input(T, 64, (float)seed);
  std::vector<HostTensor> out;
  EXPECT_EQ(message(exe.run({{"x", {DType::F32, {T, 64}, x.data()}}}, out)), "");
  return out;
}

bool sameBits(const std::vector<HostTensor> &a, const std::vector<HostTensor> &b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].shape != b[i].shape || a[i].bytes != b[i].bytes)
      return false;
  return true;
}

} // namespace

TEST(CompileModule, BlocksShareKernelsAndComputeWhatTheyComputeAlone) {
  // blk0 and blk1 are equal but for their names (blk1 takes blk0's program);
  // blk2 floors the routing weights at 10 (one kernel differs); gemma4_tiny
  // shares little or nothing.
  std::string gemma = example("gemma4_tiny.moe");
  std::string text = block(0) + "\n" + block(1) + "\n" + block(2, "10.0") + "\n" +
                     gemma.substr(gemma.find("func @"));
  auto m = parse(text);
  ASSERT_TRUE(!!m) << message(m.takeError());
  ASSERT_EQ(message(runPipeline(*m, "default")), "");
  auto names = m->functionNames();
  ASSERT_EQ(names.size(), 4u);
  jit::Options o;
  o.useCache = false;
  auto all = jit::compileModule(*m, o);
  ASSERT_TRUE(!!all) << message(all.takeError());
  ASSERT_EQ(all->size(), 4u);
  for (int i = 0; i < 3; ++i) {
    for (int64_t T : {1, 7}) {
      auto single = jit::compile(*m, names[i], o);
      ASSERT_TRUE(!!single) << message(single.takeError());
      EXPECT_EQ(single->kernelsShared(), 0u);
      auto want = runOnce(*single, 5, T);
      auto got = runOnce((*all)[i], 5, T);
      EXPECT_TRUE(sameBits(got, want)) << "@" << names[i] << " at T = " << T;
    }
  }
  // blk2's floor changes its results: had it been given blk0's kernels, it
  // would not have matched its own compile above.
  EXPECT_FALSE(sameBits(runOnce((*all)[0], 5, 7), runOnce((*all)[2], 5, 7)));
  // gemma4_tiny (its router logits are an input).
  {
    auto single = jit::compile(*m, names[3], o);
    ASSERT_TRUE(!!single) << message(single.takeError());
    for (jit::Executable *e : {&*single, &(*all)[3]})
      ASSERT_EQ(message(e->bindRandomParams(3)), "");
    std::vector<std::pair<std::string, TensorView>> in;
    std::vector<std::vector<float>> keep;
    for (auto &name : single->inputNames()) {
      auto d = single->argumentDesc(name, {{"T", 5}});
      ASSERT_TRUE(!!d) << message(d.takeError());
      keep.push_back(input(d->shape[0], d->shape[1], (float)keep.size()));
      in.push_back({name, {DType::F32, d->shape, keep.back().data()}});
    }
    std::vector<HostTensor> want, got;
    ASSERT_EQ(message(single->run(in, want)), "");
    ASSERT_EQ(message((*all)[3].run(in, got)), "");
    EXPECT_TRUE(sameBits(got, want));
  }
  // blk1's kernels all shared, and all but blk2's floor: at least 2 per
  // qwen3 block's worth, reported by every Executable of the module.
  unsigned shared = (*all)[0].kernelsShared();
  for (auto &e : *all)
    EXPECT_EQ(e.kernelsShared(), shared);
  EXPECT_GE(shared, 8u);
}

TEST(CompileModule, OneCacheEntryForTheModule) {
  std::string dir = tempDir("module-cache");
  auto m = parse(block(0) + "\n" + block(1) + "\n" + block(2, "10.0"));
  ASSERT_TRUE(!!m) << message(m.takeError());
  jit::Options o;
  o.cacheDir = dir;
  std::vector<std::vector<HostTensor>> first;
  for (int pass = 0; pass < 2; ++pass) {
    auto all = jit::compileModule(*m, o);
    ASSERT_TRUE(!!all) << message(all.takeError());
    for (size_t i = 0; i < all->size(); ++i) {
      EXPECT_EQ((*all)[i].fromCache(), pass == 1);
      auto out = runOnce((*all)[i], 2, 3);
      if (pass == 0)
        first.push_back(out);
      else
        EXPECT_TRUE(sameBits(out, first[i])) << i;
    }
  }
  std::string list = dir + "/list.txt";
  ASSERT_EQ(std::system(("ls '" + dir + "' | grep -c '\\.o$' > '" + list + "'").c_str()), 0);
  EXPECT_EQ(std::stoi(readFile(list)), 1);
}

TEST(CompileModule, EachFunctionsRanksAreChecked) {
  auto m = parse(block(0) + "\n" + block(1));
  ASSERT_TRUE(!!m) << message(m.takeError());
  jit::Options o;
  o.ranks = 2;
  std::string msg;
  EXPECT_EQ(kindOf(jit::compileModule(*m, o), &msg), ErrorKind::Compile);
  EXPECT_EQ(msg, "Options::ranks = 2: @blk0 is not split over ranks (run tp-split{ranks=2} first)");
}
