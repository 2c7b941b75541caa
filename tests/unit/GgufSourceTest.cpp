//===- GgufSourceTest.cpp - Binding params from GGUF files ----------------===//
//
// runtime/GgufSource.h: the ggml <-> moe element type mapping; params bound
// from an in-memory GGUF file (io/GgufWriter) by their own name or their gguf
// attribute, f32 copied, f16/bf16 converted exactly, q8_0 blocks byte for
// byte; and the binding errors (type, shape, missing tensor, unsupported
// type, a gguf attribute that is not a string), also through the Binder.
//
//===----------------------------------------------------------------------===//
#include "runtime/GgufSource.h"

#include "io/GgufWriter.h"
#include "ir/Parser.h"
#include "runtime/Formats.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace moe;
using gguf::GgmlType;

namespace {

const char *kModule = R"(
func @f(%x: tensor<2 x 32 x f32>,
        %a: tensor<2 x 32 x f32> {param},
        %h: tensor<2 x 32 x f16> {param, gguf = "blk.0.h"},
        %b: tensor<2 x 32 x bf16> {param, gguf = "blk.0.b"},
        %q: tensor<2 x 32 x q8_0> {param, gguf = "blk.0.q"})
    -> tensor<2 x 32 x f32> {
  return %x
}
)";

template <typename T> std::vector<uint8_t> bytesOf(const std::vector<T> &v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

struct GgufSourceTest : ::testing::Test {
  std::unique_ptr<Module> module;
  const Function *f = nullptr;
  std::string bytes; // the file, kept alive for the GgufFile
  std::unique_ptr<gguf::GgufFile> file;
  std::vector<float> af;
  std::vector<uint16_t> hf, bf;
  std::vector<uint8_t> qb;

  void SetUp() override {
    auto m = parseModuleString(kModule);
    ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
    module = std::move(*m);
    f = module->functions.front().get();
    for (int k = 0; k < 64; ++k) {
      af.push_back(0.25f * (k - 30));
      hf.push_back(f32ToF16(0.1f * k - 3));
      bf.push_back(f32ToBF16(-0.3f * k + 1));
    }
    for (int blk = 0; blk < 2; ++blk) { // q8_0: f16 d, 32 int8 codes
      uint16_t d = f32ToF16(0.5f + blk);
      qb.push_back(d & 0xff);
      qb.push_back(d >> 8);
      for (int j = 0; j < 32; ++j)
        qb.push_back(uint8_t(int8_t(j - 16 + blk)));
    }
  }

  void write(const std::function<void(gguf::GgufWriter &)> &more = {}) {
    gguf::GgufWriter w;
    ASSERT_FALSE(bool(w.addTensor("a", GgmlType::F32, {32, 2}, bytesOf(af))));
    ASSERT_FALSE(bool(w.addTensor("blk.0.h", GgmlType::F16, {32, 2}, bytesOf(hf))));
    ASSERT_FALSE(bool(w.addTensor("blk.0.b", GgmlType::BF16, {32, 2}, bytesOf(bf))));
    ASSERT_FALSE(bool(w.addTensor("blk.0.q", GgmlType::Q8_0, {32, 2}, qb)));
    if (more)
      more(w);
    bytes = w.bytes();
    auto g = gguf::GgufFile::parse(
        llvm::ArrayRef<uint8_t>((const uint8_t *)bytes.data(), bytes.size()), "m.gguf");
    ASSERT_TRUE(bool(g)) << llvm::toString(g.takeError());
    file = std::move(*g);
  }

  llvm::Expected<Tensor> load(llvm::StringRef param, ElemType elem,
                              std::vector<int64_t> shape = {2, 32}) {
    return loadGgufParam(*file, *f->lookupArgument(param), elem, shape);
  }

  std::string loadError(llvm::StringRef param, ElemType elem,
                        std::vector<int64_t> shape = {2, 32}) {
    auto t = load(param, elem, shape);
    if (t)
      return "(no error)";
    return llvm::toString(t.takeError());
  }
};

TEST(GgufSourceTypes, Mapping) {
  for (ElemType e : {ElemType::F32, ElemType::F16, ElemType::BF16, ElemType::Q8_0,
                     ElemType::Q4_0, ElemType::MXFP4}) {
    auto g = ggmlTypeFromElem(e);
    ASSERT_TRUE(g.has_value()) << elemTypeName(e).str();
    EXPECT_EQ(gguf::ggmlTypeName(*g), elemTypeName(e));
    EXPECT_EQ(elemTypeFromGgml(*g), e);
    // Same block geometry on both sides.
    EXPECT_EQ(gguf::ggmlTypeTraits(*g).blockElems, blockElems(e));
    EXPECT_EQ(gguf::ggmlTypeTraits(*g).blockBytes, blockBytes(e));
  }
  EXPECT_EQ(ggmlTypeFromElem(ElemType::I32), std::nullopt);
  EXPECT_EQ(elemTypeFromGgml(GgmlType::F32), ElemType::F32);
  EXPECT_EQ(elemTypeFromGgml(GgmlType::MXFP4), ElemType::MXFP4);
  // Every known ggml type maps exactly when moe uses it as stored.
#define X(E, ID, N, BE, BB, S)                                                 \
  EXPECT_EQ(elemTypeFromGgml(GgmlType::E).has_value(), S) << N;
  MOE_GGML_TYPES(X)
#undef X
}

TEST_F(GgufSourceTest, BindsEachType) {
  write();
  auto a = load("a", ElemType::F32);
  ASSERT_TRUE(bool(a)) << llvm::toString(a.takeError());
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(a->f, af);

  auto h = load("h", ElemType::F16);
  ASSERT_TRUE(bool(h)) << llvm::toString(h.takeError());
  ASSERT_EQ(h->f.size(), 64u);
  for (int k = 0; k < 64; ++k)
    EXPECT_EQ(h->f[k], f16ToF32(hf[k])) << k;

  auto b = load("b", ElemType::BF16);
  ASSERT_TRUE(bool(b)) << llvm::toString(b.takeError());
  for (int k = 0; k < 64; ++k)
    EXPECT_EQ(b->f[k], bf16ToF32(bf[k])) << k;

  auto q = load("q", ElemType::Q8_0);
  ASSERT_TRUE(bool(q)) << llvm::toString(q.takeError());
  EXPECT_EQ(q->raw, qb); // byte for byte
  EXPECT_TRUE(q->f.empty());
  std::vector<float> v = q->toF32();
  EXPECT_EQ(v[0], -16 * 0.5f);
  EXPECT_EQ(v[32 + 31], (31 - 16 + 1) * 1.5f);
  EXPECT_FALSE(bool(q->validate()));
}

TEST_F(GgufSourceTest, TypeAndShapeMismatch) {
  write();
  EXPECT_EQ(loadError("a", ElemType::F16),
            "m.gguf: tensor 'a' is f32 [2, 32], param %a needs f16 [2, 32]");
  EXPECT_EQ(loadError("q", ElemType::F32),
            "m.gguf: tensor 'blk.0.q' is q8_0 [2, 32], param %q needs f32 [2, 32]");
  EXPECT_EQ(loadError("a", ElemType::F32, {32, 2}),
            "m.gguf: tensor 'a' is f32 [2, 32], param %a needs f32 [32, 2]");
  EXPECT_EQ(loadError("a", ElemType::F32, {1, 2, 32}),
            "m.gguf: tensor 'a' is f32 [2, 32], param %a needs f32 [1, 2, 32]");
}

TEST_F(GgufSourceTest, MissingAndUnsupported) {
  gguf::GgufWriter w;
  ASSERT_FALSE(bool(w.addTensor("blk.0.h", GgmlType::Q4_K, {256, 2},
                                std::vector<uint8_t>(2 * 144))));
  bytes = w.bytes();
  auto g = gguf::GgufFile::parse(
      llvm::ArrayRef<uint8_t>((const uint8_t *)bytes.data(), bytes.size()), "u.gguf");
  ASSERT_TRUE(bool(g)) << llvm::toString(g.takeError());
  file = std::move(*g);
  EXPECT_EQ(loadError("a", ElemType::F32), "u.gguf: no tensor named 'a' for param %a");
  EXPECT_EQ(loadError("b", ElemType::BF16),
            "u.gguf: no tensor named 'blk.0.b' for param %b (named by its gguf attribute)");
  EXPECT_NE(loadError("h", ElemType::F16)
                .find("u.gguf: unsupported tensor type q4_K in tensor 'blk.0.h'"),
            std::string::npos)
      << loadError("h", ElemType::F16);
}

TEST_F(GgufSourceTest, GgufAttributeMustBeAString) {
  auto m = parseModuleString(R"(
func @g(%w: tensor<2 x 32 x f32> {param, gguf = 3}) -> tensor<2 x 32 x f32> {
  return %w
}
)");
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  const Value &w = *(*m)->functions.front()->lookupArgument("w");
  auto n = ggufTensorName(w);
  ASSERT_FALSE(bool(n));
  EXPECT_EQ(llvm::toString(n.takeError()),
            "param %w: the gguf attribute must be a string (the tensor's name in the file)");
}

TEST_F(GgufSourceTest, SourceThroughTheBinder) {
  write();
  std::shared_ptr<const gguf::GgufFile> shared(std::move(file));
  int inputs = 0;
  ArgSource fallback = [&](const Value &arg, ElemType elem,
                           llvm::ArrayRef<int64_t> shape) -> llvm::Expected<Tensor> {
    ++inputs;
    EXPECT_EQ(arg.getName(), "x");
    return Tensor::zeros(elem, shape);
  };
  Binder binder(*f, ggufSource(shared, fallback), {});
  auto args = binder.argsForRank(0);
  ASSERT_TRUE(bool(args)) << llvm::toString(args.takeError());
  EXPECT_EQ(inputs, 1);
  ASSERT_EQ(args->size(), 5u);
  EXPECT_EQ((*args)[1].f, af);
  EXPECT_EQ((*args)[4].raw, qb);

  // A param whose type disagrees with the file: the Binder passes the error on.
  auto m = parseModuleString(R"(
func @g(%a: tensor<2 x 32 x bf16> {param}) -> tensor<2 x 32 x bf16> {
  return %a
}
)");
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  Binder bad(*(*m)->functions.front(), ggufSource(shared, fallback), {});
  auto r = bad.argsForRank(0);
  ASSERT_FALSE(bool(r));
  EXPECT_EQ(llvm::toString(r.takeError()),
            "m.gguf: tensor 'a' is f32 [2, 32], param %a needs bf16 [2, 32]");
}

} // namespace
