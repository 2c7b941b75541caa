//===- InterpTensorTest.cpp - Tensors, random data, whole layers ----------===//
//
// Tensor: construction and rounding, the summary line and its checksum
// (FNV-1a over f32 bits, computed by hand), .npy save/load round trips per
// type, binding a quantised param from f32 data. Random: a function of
// (seed, name, type, shape) only, with the documented ranges. Whole layers:
// every tiny example runs on random data, and each token's output at T = 7
// equals the same token run alone at T = 1 (every op is per token).
//
//===----------------------------------------------------------------------===//
#include "IRTestUtil.h"
#include "InterpTestUtil.h"

#include "runtime/Formats.h"
#include "runtime/Random.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

using namespace moe;
using namespace moe::test;

namespace {

TEST(InterpTensor, FromF32RoundsAndQuantises) {
  Tensor h = F({2}, {1.0f / 3, 70000}, ElemType::F16);
  EXPECT_EQ(h.f, (std::vector<float>{1365.0f / 4096, INFINITY}));
  Tensor q = F({1, 32}, std::vector<float>(32, 127.0f), ElemType::Q8_0);
  ASSERT_EQ(q.raw.size(), 34u);
  std::vector<uint8_t> want(34);
  std::vector<float> twos(32, 127.0f); // scale 1: exact
  quantizeRow(ElemType::Q8_0, twos.data(), want.data(), 32);
  EXPECT_EQ(q.raw, want);
  EXPECT_EQ(q.toF32(), twos);
  EXPECT_TRUE(q.f.empty() && q.i.empty());
  // Shapes that cannot hold blocks are errors, not crashes.
  auto bad = Tensor::fromF32(ElemType::Q4_0, {2, 16}, std::vector<float>(32));
  ASSERT_FALSE(bad);
  EXPECT_NE(llvm::toString(bad.takeError()).find("multiple of 32"), std::string::npos);
  auto count = Tensor::fromF32(ElemType::F32, {2, 2}, {1, 2, 3});
  ASSERT_FALSE(count);
  llvm::consumeError(count.takeError());
}

TEST(InterpTensor, SummaryAndChecksum) {
  Tensor t = F({2, 2}, {1, 2, 3, 4});
  // FNV-1a 64 over the little-endian bytes of 1.0f, 2.0f, 3.0f, 4.0f.
  EXPECT_EQ(t.checksum(), 0x8faa0a18faf0fb98ull);
  EXPECT_EQ(t.summary(),
            "shape=[2, 2] f32 min=1 max=4 mean=2.5 checksum=0x8faa0a18faf0fb98");
  Tensor e = F({0, 3}, {});
  EXPECT_EQ(e.summary(),
            "shape=[0, 3] f32 min=nan max=nan mean=nan checksum=0xcbf29ce484222325");
  Tensor ids = I({3}, {1, 2, 3});
  EXPECT_EQ(ids.summary().substr(0, 42), "shape=[3] i32 min=1 max=3 mean=2 checksum=");
}

class InterpTensorFiles : public ::testing::Test {
protected:
  void SetUp() override {
    llvm::SmallString<128> d;
    ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("moe-tensor-test", d));
    dir = std::string(d);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string path(const char *n) { return dir + "/" + n; }
  std::string dir;
};

TEST_F(InterpTensorFiles, SaveLoadRoundTrips) {
  Tensor f = F({2, 3}, {1, -2.5, 3, 0.1f, 5, 6});
  Tensor h = F({3}, {0.5, -1.0f / 3, 65504}, ElemType::F16);
  Tensor i = I({2, 2}, {1, -7, 100000, 0});
  Tensor b = F({2}, {1.0f / 3, -3}, ElemType::BF16);
  ASSERT_FALSE(f.save(path("f.npy")));
  ASSERT_FALSE(h.save(path("h.npy")));
  ASSERT_FALSE(i.save(path("i.npy")));
  ASSERT_FALSE(b.save(path("b.npy")));
  auto f2 = Tensor::load(path("f.npy"));
  auto h2 = Tensor::load(path("h.npy"));
  auto i2 = Tensor::load(path("i.npy"));
  auto b2 = Tensor::load(path("b.npy"), ElemType::BF16);
  ASSERT_TRUE(f2 && h2 && i2 && b2);
  EXPECT_EQ(f2->elem, ElemType::F32);
  EXPECT_EQ(f2->shape, f.shape);
  EXPECT_EQ(f2->f, f.f);
  EXPECT_EQ(h2->elem, ElemType::F16); // <f2
  EXPECT_EQ(h2->f, h.f);
  EXPECT_EQ(i2->elem, ElemType::I32); // <i4
  EXPECT_EQ(i2->i, i.i);
  EXPECT_EQ(b2->f, b.f); // bf16 travels as <f4, exactly
}

TEST_F(InterpTensorFiles, QuantisedParamBoundFromF32) {
  std::vector<float> v(64);
  for (int k = 0; k < 64; ++k)
    v[k] = 0.01f * k - 0.3f;
  ASSERT_FALSE(F({2, 32}, v).save(path("w.npy")));
  auto q = Tensor::load(path("w.npy"), ElemType::Q4_0);
  ASSERT_TRUE(!!q) << llvm::toString(q.takeError());
  EXPECT_EQ(q->elem, ElemType::Q4_0);
  EXPECT_EQ(q->raw, F({2, 32}, v, ElemType::Q4_0).raw);
  // Integer data does not silently become floats.
  ASSERT_FALSE(I({2}, {1, 2}).save(path("i.npy")));
  auto bad = Tensor::load(path("i.npy"), ElemType::F32);
  ASSERT_FALSE(bad);
  llvm::consumeError(bad.takeError());
}

TEST(InterpRandom, DeterministicAndInRange) {
  auto a = randomTensor(1, "x", ElemType::F32, {4, 16}, false);
  auto b = randomTensor(1, "x", ElemType::F32, {4, 16}, false);
  auto other = randomTensor(1, "y", ElemType::F32, {4, 16}, false);
  auto seed2 = randomTensor(2, "x", ElemType::F32, {4, 16}, false);
  auto p = randomTensor(1, "w", ElemType::F32, {8, 16}, true);
  auto ids = randomTensor(1, "ids", ElemType::I32, {100, 5}, false);
  auto q = randomTensor(1, "wq", ElemType::Q8_0, {2, 64}, true);
  ASSERT_TRUE(a && b && other && seed2 && p && ids && q);
  EXPECT_EQ(a->f, b->f);
  EXPECT_NE(a->f, other->f);
  EXPECT_NE(a->f, seed2->f);
  for (float v : a->f)
    EXPECT_TRUE(v >= -1 && v < 1) << v;
  for (float v : p->f) // params scaled by 1/sqrt(16)
    EXPECT_TRUE(v >= -0.25f && v < 0.25f) << v;
  bool seen[5] = {};
  for (int32_t v : ids->i) {
    ASSERT_TRUE(v >= 0 && v < 5) << v;
    seen[v] = true;
  }
  for (bool s : seen)
    EXPECT_TRUE(s);
  EXPECT_EQ(q->raw.size(), 2u * 2 * 34);
  // A quantised param is the float param's data, quantised.
  auto qf = randomTensor(1, "wq", ElemType::F32, {2, 64}, true);
  ASSERT_TRUE(!!qf);
  EXPECT_EQ(q->raw, F({2, 64}, qf->f, ElemType::Q8_0).raw);
  auto bf = randomTensor(1, "wq", ElemType::BF16, {2, 64}, true);
  ASSERT_TRUE(!!bf);
  EXPECT_EQ(bf->f, F({2, 64}, qf->f, ElemType::BF16).f);
}

/// Random ids cover every id the function can select (every expert of a
/// matmul_id, every entry of a gather axis), not only [0, k) of their
/// innermost dim; an i32 argument used as no ids keeps [0, innermost).
TEST(InterpRandom, IdsCoverEveryExpert) {
  auto m = parseModuleString(R"(
func @f(%x: tensor<64 x 1 x 16 x f32>, %ids: tensor<64 x 2 x i32>,
        %w: tensor<8 x 16 x 16 x f32> {param}, %g_ids: tensor<64 x 2 x i32>,
        %s: tensor<5 x f32> {param}, %v_ids: tensor<64 x 2 x i32>,
        %other: tensor<64 x 3 x i32>) -> tensor<64 x 2 x 16 x f32> {
  %e = matmul_id %x, %w, %ids
  %g = gather %s, %g_ids {axis = 0}
  %r = reshape %v_ids {shape = [128]}
  %h = gather %s, %r {axis = 0}
  return %e
}
)", "ids");
  ASSERT_TRUE(!!m) << llvm::toString(m.takeError());
  const Function &f = *(*m)->functions.front();
  auto args = randomArguments(f, {}, 1);
  ASSERT_TRUE(!!args) << llvm::toString(args.takeError());
  auto range = [](const Tensor &t) {
    std::set<int32_t> s(t.i.begin(), t.i.end());
    return std::make_pair(s.size(), *s.rbegin());
  };
  EXPECT_EQ(range((*args)[1]), std::make_pair(size_t(8), 7));
  EXPECT_EQ(range((*args)[3]), std::make_pair(size_t(5), 4));
  EXPECT_EQ(range((*args)[5]), std::make_pair(size_t(5), 4)); // through the reshape
  EXPECT_EQ(range((*args)[6]), std::make_pair(size_t(3), 2));
}

/// Rows [t, t+1) of axis 0 of a float tensor.
Tensor row(const Tensor &t, int64_t r) {
  Tensor o = t;
  int64_t n = t.numElements() / t.shape[0];
  o.shape[0] = 1;
  o.f.assign(t.f.begin() + r * n, t.f.begin() + (r + 1) * n);
  return o;
}

TEST(InterpExamples, TinyLayersRunAndAreTokenwise) {
  for (const char *name : {"qwen3_tiny.moe", "gptoss_tiny.moe", "gemma4_tiny.moe"}) {
    SCOPED_TRACE(name);
    auto path = examplesDir() / name;
    if (!std::filesystem::exists(path)) {
      ADD_FAILURE() << "missing " << path;
      continue;
    }
    auto m = parseModuleString(readFile(path), name);
    ASSERT_TRUE(!!m) << llvm::toString(m.takeError());
    const Function &f = *(*m)->functions.front();
    ASSERT_EQ(f.symbols().size(), 1u);
    std::string T = f.symbols()[0].name;
    auto args7 = randomArguments(f, {{T, 7}}, 42);
    ASSERT_TRUE(!!args7) << llvm::toString(args7.takeError());
    auto out7 = interpret(f, *args7, {{T, 7}});
    ASSERT_TRUE(!!out7) << llvm::toString(out7.takeError());
    ASSERT_EQ(out7->size(), 1u);
    const Tensor &y7 = (*out7)[0];
    ASSERT_EQ(y7.shape[0], 7);
    for (float v : y7.f)
      ASSERT_TRUE(std::isfinite(v));
    // Token t alone: replace every T-shaped (non-param) argument by its row t.
    for (int64_t t : {0, 3, 6}) {
      std::vector<Tensor> args1 = *args7;
      for (unsigned k = 0; k < f.getNumArguments(); ++k)
        if (!f.getArgument(k)->isParam())
          args1[k] = row((*args7)[k], t);
      auto out1 = interpret(f, args1, {{T, 1}});
      ASSERT_TRUE(!!out1) << llvm::toString(out1.takeError());
      EXPECT_EQ((*out1)[0].f, row(y7, t).f) << "token " << t;
    }
  }
}

} // namespace
