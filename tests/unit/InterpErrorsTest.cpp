//===- InterpErrorsTest.cpp - Interpreter: errors, never crashes ----------===//
//
// Bad input is an llvm::Error with a message naming what is wrong: ids out
// of range in matmul_id, add_id and gather (naming the op, its result, the
// token and the id); symbols out of range, unbound or unknown; wrong argument
// count, element type, shape and storage; i32 division by zero; an IR type
// inconsistent with its operands (unverified IR) is caught before it runs.
//
//===----------------------------------------------------------------------===//
#include "InterpTestUtil.h"

#include "ir/Builder.h"

using namespace moe;
using namespace moe::test;

namespace {

void expectContains(const std::string &msg, std::initializer_list<const char *> parts) {
  for (const char *p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "missing '" << p << "' in: " << msg;
}

TEST(InterpErrors, MatmulIdIdOutOfRange) {
  const char *text = R"(
func @f(%x: tensor<2 x 1 x 2 x f32>, %w: tensor<3 x 2 x 2 x f32> {param},
        %ids: tensor<2 x 2 x i32>) -> tensor<2 x 2 x 2 x f32> {
  %up = matmul_id %x, %w, %ids
  return %up
})";
  std::string msg = runError(text, {F({2, 1, 2}, {1, 2, 3, 4}), F({3, 2, 2}, std::vector<float>(12)),
                                    I({2, 2}, {0, 1, 5, 0})});
  expectContains(msg, {"matmul_id %up", "token 1", "slot 0", "id 5", "[0, 3)"});
}

TEST(InterpErrors, AddIdIdOutOfRange) {
  const char *text = R"(
func @f(%x: tensor<2 x 2 x 2 x f32>, %b: tensor<3 x 2 x f32> {param},
        %ids: tensor<2 x 2 x i32>) -> tensor<2 x 2 x 2 x f32> {
  %y = add_id %x, %b, %ids
  return %y
})";
  std::string msg = runError(text, {F({2, 2, 2}, std::vector<float>(8)),
                                    F({3, 2}, std::vector<float>(6)), I({2, 2}, {0, -1, 2, 2})});
  expectContains(msg, {"add_id %y", "token 0", "slot 1", "id -1", "[0, 3)"});
}

TEST(InterpErrors, GatherIdOutOfRange) {
  const char *text = R"(
func @f(%p: tensor<2 x 4 x f32>, %ids: tensor<2 x 2 x i32>, %s: tensor<3 x f32>,
        %r: tensor<2 x i32>) -> tensor<2 x 2 x f32>, tensor<2 x f32> {
  %w = gather %p, %ids {axis = 1}
  %v = gather %s, %r {axis = 0}
  return %w, %v
})";
  std::string msg = runError(text, {F({2, 4}, std::vector<float>(8)), I({2, 2}, {0, 1, 3, 4}),
                                    F({3}, {1, 2, 3}), I({2}, {0, 1})});
  expectContains(msg, {"gather %w", "token 1", "index 4", "[0, 4)"});
  msg = runError(text, {F({2, 4}, std::vector<float>(8)), I({2, 2}, {0, 1, 3, 3}),
                        F({3}, {1, 2, 3}), I({2}, {0, 3})});
  expectContains(msg, {"gather %v", "token 1", "index 3", "[0, 3)"});
}

const char *kSym = R"(
func @f(%x: tensor<T x 4 x f32>) -> tensor<T x 4 x f32> where T in [1, 8192] {
  %y = exp %x
  return %y
})";

TEST(InterpErrors, Symbols) {
  expectContains(runError(kSym, {F({1, 4}, std::vector<float>(4))}, {{"T", 9000}}),
                 {"symbol T = 9000 is outside its range [1, 8192]"});
  expectContains(runError(kSym, {F({1, 4}, std::vector<float>(4))}, {{"T", 0}}),
                 {"symbol T = 0 is outside its range [1, 8192]"});
  expectContains(runError(kSym, {F({1, 4}, std::vector<float>(4))}, {}),
                 {"symbol T", "not bound"});
  expectContains(runError(kSym, {F({1, 4}, std::vector<float>(4))}, {{"T", 1}, {"U", 2}}),
                 {"symbol U", "declares no such symbol"});
}

TEST(InterpErrors, Arguments) {
  std::vector<float> four(4);
  expectContains(runError(kSym, {}, {{"T", 1}}), {"@f takes 1 argument, got 0"});
  expectContains(runError(kSym, {F({1, 4}, four), F({1, 4}, four)}, {{"T", 1}}),
                 {"@f takes 1 argument, got 2"});
  expectContains(runError(kSym, {F({2, 2}, four)}, {{"T", 2}}),
                 {"argument %x", "expected shape [2, 4]", "T = 2", "got [2, 2]"});
  expectContains(runError(kSym, {F({1, 4}, four, ElemType::F16)}, {{"T", 1}}),
                 {"argument %x", "expected element type f32", "f16"});
  // Inconsistent storage in a hand-built tensor.
  Tensor bad;
  bad.shape = {1, 4};
  bad.f = {1, 2, 3};
  expectContains(runError(kSym, {bad}, {{"T", 1}}), {"argument %x", "needs 4 floats"});
  // An f16 tensor holding a value f16 cannot represent.
  Tensor h;
  h.elem = ElemType::F16;
  h.shape = {1};
  h.f = {0.1f};
  expectContains(runError("func @g(%h: tensor<1 x f16>) -> tensor<1 x f16> {\n"
                          "  %y = neg %h\n  return %y\n}",
                          {h}),
                 {"argument %h", "not representable in f16"});
  // A quantised param given as f32 must be quantised by the caller.
  expectContains(
      runError("func @g(%x: tensor<1 x 32 x f32>, %w: tensor<2 x 32 x q8_0> {param})"
               " -> tensor<1 x 2 x f32> {\n  %y = matmul %x, %w\n  return %y\n}",
               {F({1, 32}, std::vector<float>(32)), F({2, 32}, std::vector<float>(64))}),
      {"argument %w", "expected element type q8_0", "Tensor::fromF32"});
}

TEST(InterpErrors, IntegerDivisionByZero) {
  expectContains(runError("func @g(%a: tensor<2 x i32>, %b: tensor<2 x i32>) -> "
                          "tensor<2 x i32> {\n  %q = div %a, %b\n  return %q\n}",
                          {I({2}, {1, 2}), I({2}, {1, 0})}),
                 {"div %q", "division by zero", "[1]"});
}

/// IR whose written type disagrees with its operands (as a buggy pass could
/// leave it when not verifying) is reported before the op runs.
TEST(InterpErrors, InconsistentIRIsCaught) {
  auto m = parseModuleString("func @g(%x: tensor<2 x 3 x f32>) -> tensor<2 x 3 x f32> {\n"
                             "  %y = exp %x\n  return %y\n}");
  ASSERT_TRUE(!!m) << llvm::toString(m.takeError());
  Function &f = *(*m)->functions[0];
  Operation &exp = f.getBody().front();
  exp.getResult(0)->setType(TensorType({DimExpr(2), DimExpr(4)}, ElemType::F32));
  auto r = interpret(f, {F({2, 3}, std::vector<float>(6))}, {});
  ASSERT_FALSE(r);
  expectContains(llvm::toString(r.takeError()), {"exp %y", "tensor<2 x 4 x f32>",
                                                 "tensor<2 x 3 x f32>"});

  // A slice made out of bounds after verification.
  auto m2 = parseModuleString("func @g(%x: tensor<4 x f32>) -> tensor<2 x f32> {\n"
                              "  %y = slice %x {axis = 0, start = 1, size = 2}\n"
                              "  return %y\n}");
  ASSERT_TRUE(!!m2) << llvm::toString(m2.takeError());
  Function &f2 = *(*m2)->functions[0];
  f2.getBody().front().attrs().set("start", Attribute::getInt(3));
  auto r2 = interpret(f2, {F({4}, {1, 2, 3, 4})}, {});
  ASSERT_FALSE(r2);
  expectContains(llvm::toString(r2.takeError()), {"slice %y"});
}

} // namespace
