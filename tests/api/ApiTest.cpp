//===- ApiTest.cpp - The library API (moe/Moe.h) as a caller sees it ------===//
//
// Queries before running, symbols inferred from the inputs, results into
// caller memory, the kind of every error, the diagnostic handler, the GGUF
// architecture check and the one cache key shared with moe-run (issue #16).
//
//===----------------------------------------------------------------------===//
#include "ApiTestUtil.h"

#include <cstring>

using namespace moe;
using namespace moe::apitest;

namespace {

/// Two inputs sharing T (one as 2*T), two results.
const char *kTwo = R"(
func @two(%a: tensor<T x 4 x f32>, %b: tensor<2*T x 2 x f32>, %w: tensor<4 x f32> {param})
    -> tensor<T x 4 x f32>, tensor<T x 3 x f32> where T in [1, 64] {
  %b2 = reshape %b {shape = [T, 4]}
  %s = add %a, %b2
  %r = mul %s, %w
  %t = slice %r {axis = 1, start = 0, size = 3}
  %u = scale %t {factor = 2.0}
  return %r, %u
}
)";

jit::Executable compileText(const char *text, const char *fn, const jit::Options &o = {}) {
  auto m = parse(text);
  if (!m) {
    ADD_FAILURE() << message(m.takeError());
    std::abort();
  }
  auto exe = jit::compile(*m, fn, o);
  if (!exe) {
    ADD_FAILURE() << message(exe.takeError());
    std::abort();
  }
  return std::move(*exe);
}

struct TwoFixture : ::testing::Test {
  jit::Executable exe = compileText(kTwo, "two");
  std::vector<float> w = {1.f, -2.f, 0.5f, 3.f};
  void SetUp() override { ASSERT_EQ(message(exe.bindParam("w", {DType::F32, {4}, w.data()})), ""); }
};

} // namespace

//===----------------------------------------------------------------------===//
// Queries
//===----------------------------------------------------------------------===//

TEST_F(TwoFixture, SymbolsWithTheirRanges) {
  auto s = exe.symbols();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].name, "T");
  EXPECT_EQ(s[0].lo, 1);
  EXPECT_EQ(s[0].hi, 64);
}

TEST_F(TwoFixture, ArgumentAndResultTypesForGivenSymbols) {
  auto b = exe.argumentDesc("b", {{"T", 5}});
  ASSERT_TRUE(!!b) << message(b.takeError());
  EXPECT_EQ(b->dtype, DType::F32);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{10, 2}));
  EXPECT_EQ(b->type, "tensor<2*T x 2 x f32>");
  auto w = exe.argumentDesc("w", {});
  ASSERT_TRUE(!!w) << message(w.takeError());
  EXPECT_EQ(w->shape, (std::vector<int64_t>{4}));
  ASSERT_EQ(exe.numResults(), 2u);
  auto r1 = exe.resultDesc(1, {{"T", 7}});
  ASSERT_TRUE(!!r1) << message(r1.takeError());
  EXPECT_EQ(r1->dtype, DType::F32);
  EXPECT_EQ(r1->shape, (std::vector<int64_t>{7, 3}));
  EXPECT_EQ(r1->type, "tensor<T x 3 x f32>");
}

TEST_F(TwoFixture, QueriesCheckTheirSymbols) {
  std::string msg;
  auto out = exe.argumentShape("a", {{"T", 65}});
  EXPECT_EQ(kindOf(out, &msg), ErrorKind::Shape);
  EXPECT_EQ(msg, "symbol T = 65 is outside its range [1, 64]");
  auto missing = exe.argumentShape("a", {});
  EXPECT_EQ(kindOf(missing, &msg), ErrorKind::Bind);
  EXPECT_EQ(msg, "%a (tensor<T x 4 x f32>): symbol T is not given");
  auto twice = exe.resultDesc(0, {{"T", 2}, {"T", 3}});
  EXPECT_EQ(kindOf(twice, &msg), ErrorKind::Bind);
  EXPECT_EQ(msg, "symbol T is given twice");
  auto unknown = exe.argumentDesc("a", {{"N", 2}});
  EXPECT_EQ(kindOf(unknown, &msg), ErrorKind::Bind);
  EXPECT_EQ(msg, "symbol N is given but @two declares no such symbol");
  auto noArg = exe.argumentDesc("c", {{"T", 2}});
  EXPECT_EQ(kindOf(noArg, &msg), ErrorKind::Bind);
  auto noResult = exe.resultDesc(2, {{"T", 2}});
  EXPECT_EQ(kindOf(noResult, &msg), ErrorKind::Bind);
  EXPECT_EQ(msg, "@two has 2 results, not a result 2");
}

//===----------------------------------------------------------------------===//
// Symbols inferred from the inputs
//===----------------------------------------------------------------------===//

TEST_F(TwoFixture, SymbolsInferredFromInputs) {
  std::vector<float> a = input(3, 4), b = input(3 * 2, 2, 1.f);
  auto syms = exe.inferSymbols({{"a", {DType::F32, {3, 4}, a.data()}},
                                {"b", {DType::F32, {6, 2}, b.data()}}});
  ASSERT_TRUE(!!syms) << message(syms.takeError());
  EXPECT_EQ(*syms, (SymbolValues{{"T", 3}}));
  // Inferred from 2*T alone too.
  auto fromB = exe.inferSymbols({{"b", {DType::F32, {6, 2}, b.data()}}});
  ASSERT_TRUE(!!fromB) << message(fromB.takeError());
  EXPECT_EQ(*fromB, (SymbolValues{{"T", 3}}));

  // A run with T inferred equals one with T given.
  std::vector<HostTensor> inferred, given;
  std::vector<std::pair<std::string, TensorView>> in = {{"a", {DType::F32, {3, 4}, a.data()}},
                                                         {"b", {DType::F32, {6, 2}, b.data()}}};
  ASSERT_EQ(message(exe.run(in, inferred)), "");
  ASSERT_EQ(message(exe.run(in, given, {{"T", 3}})), "");
  ASSERT_EQ(inferred.size(), 2u);
  EXPECT_EQ(inferred[0].bytes, given[0].bytes);
  EXPECT_EQ(inferred[1].shape, (std::vector<int64_t>{3, 3}));
  // (a + b) * w, then twice its first three columns.
  std::vector<float> r0 = inferred[0].toFloat(), r1 = inferred[1].toFloat();
  for (int t = 0; t < 3; ++t)
    for (int j = 0; j < 4; ++j) {
      float want = (a[t * 4 + j] + b[t * 4 + j]) * w[j];
      EXPECT_EQ(r0[t * 4 + j], want);
      if (j < 3)
        EXPECT_EQ(r1[t * 3 + j], 2.f * want);
    }
}

TEST_F(TwoFixture, InferenceConflictsAreShapeErrors) {
  std::vector<float> a = input(5, 4), b = input(16, 2);
  std::vector<HostTensor> out(1); // a stale result the failed run must clear
  std::string msg;
  // Two inputs that disagree: the second says what the first implies.
  EXPECT_EQ(kindOf(exe.run({{"a", {DType::F32, {3, 4}, a.data()}},
                            {"b", {DType::F32, {8, 2}, b.data()}}},
                           out),
                   &msg),
            ErrorKind::Shape);
  EXPECT_EQ(msg, "%b: expected [6, 2] (2*T x 2 with T = 3 from %a), got [8, 2]");
  EXPECT_TRUE(out.empty());
  // An input against a given value: the expected concrete shape.
  EXPECT_EQ(kindOf(exe.run({{"a", {DType::F32, {7, 4}, a.data()}},
                            {"b", {DType::F32, {10, 2}, b.data()}}},
                           out, {{"T", 5}}),
                   &msg),
            ErrorKind::Shape);
  EXPECT_EQ(msg, "%a: expected [5, 4] (T x 4 with T = 5), got [7, 4]");
  // A dim no value of 2*T gives.
  EXPECT_EQ(kindOf(exe.inferSymbols({{"b", {DType::F32, {7, 2}, b.data()}}}), &msg),
            ErrorKind::Shape);
  EXPECT_EQ(msg, "%b: dim 0 is 7, which is no value of 2*T");
  // An inferred value out of range.
  std::vector<float> big = input(65, 4);
  EXPECT_EQ(kindOf(exe.inferSymbols({{"a", {DType::F32, {65, 4}, big.data()}}}), &msg),
            ErrorKind::Shape);
  EXPECT_EQ(msg, "%a: shape [65, 4] gives T = 65, outside its range [1, 64]");
  // A symbol given twice, or out of range.
  EXPECT_EQ(kindOf(exe.run({{"a", {DType::F32, {5, 4}, a.data()}},
                            {"b", {DType::F32, {10, 2}, b.data()}}},
                           out, {{"T", 5}, {"T", 5}}),
                   &msg),
            ErrorKind::Bind);
  EXPECT_EQ(msg, "symbol T is given twice");
  EXPECT_EQ(kindOf(exe.run({{"a", {DType::F32, {5, 4}, a.data()}},
                            {"b", {DType::F32, {10, 2}, b.data()}}},
                           out, {{"T", 0}}),
                   &msg),
            ErrorKind::Shape);
  EXPECT_EQ(msg, "symbol T = 0 is outside its range [1, 64]");
  EXPECT_TRUE(out.empty());
}

//===----------------------------------------------------------------------===//
// Results into caller memory
//===----------------------------------------------------------------------===//

TEST_F(TwoFixture, OutputViewsEqualOwnedResults) {
  const int64_t T = 5;
  std::vector<float> a = input(T, 4), b = input(2 * T, 2, 2.f);
  std::vector<std::pair<std::string, TensorView>> in = {{"a", {DType::F32, {T, 4}, a.data()}},
                                                         {"b", {DType::F32, {2 * T, 2}, b.data()}}};
  std::vector<HostTensor> owned;
  ASSERT_EQ(message(exe.run(in, owned)), "");
  // Canaries after each view: nothing is written past a result.
  const float canary = -12345.f;
  std::vector<float> r0(T * 4 + 16, canary), r1(T * 3 + 16, canary);
  ASSERT_EQ(message(exe.run(in, {MutableTensorView{DType::F32, {T, 4}, r0.data()},
                                 MutableTensorView{DType::F32, {T, 3}, r1.data()}})),
            "");
  EXPECT_EQ(std::memcmp(r0.data(), owned[0].bytes.data(), owned[0].bytes.size()), 0);
  EXPECT_EQ(std::memcmp(r1.data(), owned[1].bytes.data(), owned[1].bytes.size()), 0);
  for (size_t i = T * 4; i < r0.size(); ++i)
    EXPECT_EQ(r0[i], canary);
  for (size_t i = T * 3; i < r1.size(); ++i)
    EXPECT_EQ(r1[i], canary);
}

TEST_F(TwoFixture, OutputViewsAreChecked) {
  std::vector<float> a = input(2, 4), b = input(4, 2), r0(8), r1(6);
  std::vector<std::pair<std::string, TensorView>> in = {{"a", {DType::F32, {2, 4}, a.data()}},
                                                         {"b", {DType::F32, {4, 2}, b.data()}}};
  std::string msg;
  EXPECT_EQ(kindOf(exe.run(in, {MutableTensorView{DType::F32, {2, 4}, r0.data()}}), &msg),
            ErrorKind::Shape);
  EXPECT_EQ(msg, "@two has 2 results, got 1 output view");
  EXPECT_EQ(kindOf(exe.run(in, {MutableTensorView{DType::F32, {2, 4}, r0.data()},
                                MutableTensorView{DType::F32, {3, 3}, r1.data()}}),
                   &msg),
            ErrorKind::Shape);
  EXPECT_EQ(msg, "output view 1: expected f32 [2, 3] (tensor<T x 3 x f32> with T = 2), got "
                 "f32 [3, 3]");
  EXPECT_EQ(kindOf(exe.run(in, {MutableTensorView{DType::I32, {2, 4}, r0.data()},
                                MutableTensorView{DType::F32, {2, 3}, r1.data()}}),
                   &msg),
            ErrorKind::Shape);
  EXPECT_EQ(msg, "output view 0: expected f32 [2, 4] (tensor<T x 4 x f32> with T = 2), got "
                 "i32 [2, 4]");
  EXPECT_EQ(kindOf(exe.run(in, {MutableTensorView{DType::F32, {2, 4}, nullptr},
                                MutableTensorView{DType::F32, {2, 3}, r1.data()}}),
                   &msg),
            ErrorKind::Shape);
  EXPECT_EQ(msg, "output view 0: null data");
}

TEST(ApiOutputs, ResultsThatAreInputsOrReturnedTwiceAreCopiedIn) {
  jit::Executable exe = compileText(R"(
func @f(%a: tensor<N x 3 x f32>) -> tensor<N x 3 x f32>, tensor<N x 3 x f32>,
                                     tensor<N x 3 x f32> where N in [1, 8] {
  %e = exp %a
  return %a, %e, %e
}
)",
                                    "f");
  std::vector<float> a = input(2, 3), r0(6, 0.f), r1(6, 0.f), r2(6, 0.f);
  ASSERT_EQ(message(exe.run({{"a", {DType::F32, {2, 3}, a.data()}}},
                            {MutableTensorView{DType::F32, {2, 3}, r0.data()},
                             MutableTensorView{DType::F32, {2, 3}, r1.data()},
                             MutableTensorView{DType::F32, {2, 3}, r2.data()}})),
            "");
  EXPECT_EQ(r0, a);
  for (int i = 0; i < 6; ++i)
    EXPECT_FLOAT_EQ(r1[i], std::exp(a[i]));
  EXPECT_EQ(r2, r1);
}

//===----------------------------------------------------------------------===//
// Error kinds
//===----------------------------------------------------------------------===//

TEST(ApiErrors, EveryEntryPointSaysItsKind) {
  std::string msg;
  auto bad = parse("func @f(%a: tensor<4 x f32>) -> tensor<4 x f32> { %b = frobnicate %a\n return %b }");
  EXPECT_EQ(kindOf(bad, &msg), ErrorKind::Parse);
  EXPECT_NE(msg.find("frobnicate"), std::string::npos) << msg;

  // Text that parses (types are checked as it is read) but breaks a rule
  // of the module as a whole, which the verifier checks after.
  auto invalid = parse("func @f(%a: tensor<4 x f32>) -> tensor<4 x f32> attributes "
                       "{variants = [\"g\"]} {\n  return %a\n}");
  EXPECT_EQ(kindOf(invalid, &msg), ErrorKind::Verify) << msg;
  EXPECT_NE(msg.find("\"g\" is not another function of the module"), std::string::npos)
      << msg;

  auto noFile = parseFile("/nonexistent/layer.moe");
  EXPECT_EQ(kindOf(noFile, &msg), ErrorKind::IO);
  EXPECT_EQ(msg, "cannot read '/nonexistent/layer.moe': No such file or directory");

  auto m = parse(kTwo);
  ASSERT_TRUE(!!m) << message(m.takeError());
  EXPECT_EQ(kindOf(runPipeline(*m, "no-such-pass"), &msg), ErrorKind::Pass);
  EXPECT_NE(msg.find("no-such-pass"), std::string::npos) << msg;

  auto noFn = jit::compile(*m, "nope");
  EXPECT_EQ(kindOf(noFn, &msg), ErrorKind::Compile);
  EXPECT_EQ(msg, "no function @nope in the module");

  auto exe = jit::compile(*m, "two");
  ASSERT_TRUE(!!exe) << message(exe.takeError());
  std::vector<float> w(4, 1.f), a(8), b(8);
  EXPECT_EQ(kindOf(exe->bindParam("v", {DType::F32, {4}, w.data()}), &msg), ErrorKind::Bind);
  EXPECT_EQ(msg, "@two has no param 'v'");
  EXPECT_EQ(kindOf(exe->bindParam("w", {DType::BF16, {4}, w.data()}), &msg), ErrorKind::Shape);
  EXPECT_EQ(kindOf(exe->bindParam("w", {DType::F32, {5}, w.data()}), &msg), ErrorKind::Shape);
  EXPECT_EQ(msg, "%w: expected shape [4] (tensor<4 x f32>), got [5]");
  std::vector<HostTensor> out;
  std::vector<std::pair<std::string, TensorView>> in = {{"a", {DType::F32, {2, 4}, a.data()}},
                                                         {"b", {DType::F32, {4, 2}, b.data()}}};
  EXPECT_EQ(kindOf(exe->run(in, out), &msg), ErrorKind::Bind);
  EXPECT_EQ(msg, "param 'w' of @two is not bound (bindParam, bindGgufParams or bindRandomParams)");
  EXPECT_EQ(kindOf(exe->bindGgufParams("/nonexistent/model.gguf"), &msg), ErrorKind::IO);
  EXPECT_NE(msg.find("/nonexistent/model.gguf"), std::string::npos) << msg;
  ASSERT_EQ(message(exe->bindRandomParams(1)), "");
  EXPECT_EQ(kindOf(exe->run({{"a", {DType::F32, {2, 4}, a.data()}}}, out), &msg),
            ErrorKind::Bind);
  EXPECT_EQ(msg, "input 'b' of @two is not given");
  EXPECT_EQ(kindOf(exe->run({{"a", {DType::F32, {2, 4}, a.data()}},
                             {"a", {DType::F32, {2, 4}, a.data()}}},
                            out),
                   &msg),
            ErrorKind::Bind);
  EXPECT_EQ(msg, "input 'a' given twice");
  EXPECT_EQ(kindOf(exe->run({{"a", {DType::I32, {2, 4}, a.data()}},
                             {"b", {DType::F32, {4, 2}, b.data()}}},
                            out),
                   &msg),
            ErrorKind::Shape);
  EXPECT_EQ(msg, "%a: expected f32 (tensor<T x 4 x f32>), got i32");
  EXPECT_EQ(out.size(), 0u);
}

TEST(ApiErrors, KernelErrorsAreRuntimeErrors) {
  jit::Executable exe = compileText(R"(
func @route(%x: tensor<T x 1 x 8 x f32>, %w: tensor<4 x 8 x 8 x f32> {param},
            %ids: tensor<T x 2 x i32>) -> tensor<T x 2 x 8 x f32> where T in [1, 16] {
  %y = matmul_id %x, %w, %ids
  return %y
}
)",
                                    "route");
  ASSERT_EQ(message(exe.bindRandomParams(2)), "");
  std::vector<float> x = input(2, 8);
  std::vector<int32_t> ids = {0, 1, 2, 9};
  std::vector<HostTensor> out;
  std::string msg;
  EXPECT_EQ(kindOf(exe.run({{"x", {DType::F32, {2, 1, 8}, x.data()}},
                            {"ids", {DType::I32, {2, 2}, ids.data()}}},
                           out),
                   &msg),
            ErrorKind::Runtime);
  EXPECT_NE(msg.find("expert id 9 is out of range [0, 4)"), std::string::npos) << msg;
  // The kind is read without consuming the error, which still holds its text.
  llvm::Error e = exe.run({{"x", {DType::F32, {2, 1, 8}, x.data()}},
                           {"ids", {DType::I32, {2, 2}, ids.data()}}},
                          out);
  EXPECT_EQ(errorKind(e), ErrorKind::Runtime);
  EXPECT_EQ(errorKind(e), ErrorKind::Runtime);
  bool handled = false;
  llvm::handleAllErrors(std::move(e), [&](const ApiError &a) {
    handled = true;
    EXPECT_EQ(a.kind(), ErrorKind::Runtime);
    EXPECT_STREQ(errorKindName(a.kind()), "runtime");
    EXPECT_NE(a.message().find("out of range"), std::string::npos);
  });
  EXPECT_TRUE(handled);
  EXPECT_EQ(errorKind(llvm::Error::success()), std::nullopt);
  llvm::Error foreign = llvm::createStringError(llvm::inconvertibleErrorCode(), "x");
  EXPECT_EQ(errorKind(foreign), std::nullopt);
  llvm::consumeError(std::move(foreign));
}
