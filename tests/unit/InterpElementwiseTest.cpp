//===- InterpElementwiseTest.cpp - Interpreter: elementwise ops -----------===//
//
// Binary ops with numpy broadcasting (f32 and i32), every unary op, the GLUs
// (swiglu_oai's clipping included), cast (f16/bf16 rounding), rounding of
// f16/bf16 results after each op, constant splat and dense, all_reduce.
// Expected values are written from the math (DESIGN.md "Ops"), evaluated in
// double by hand, not produced by the interpreter.
//
//===----------------------------------------------------------------------===//
#include "InterpTestUtil.h"
#include "runtime/InProcessRanks.h"

using namespace moe;
using namespace moe::test;

namespace {

TEST(InterpElementwise, BinaryBroadcasting) {
  const char *text = R"(
func @f(%a: tensor<2 x 3 x f32>, %b: tensor<3 x f32>, %c: tensor<2 x 1 x f32>,
        %s: tensor<f32>)
    -> tensor<2 x 3 x f32>, tensor<2 x 3 x f32>, tensor<2 x 3 x f32>,
       tensor<2 x 3 x f32>, tensor<2 x 3 x f32>, tensor<2 x 3 x f32>,
       tensor<2 x 3 x f32> {
  %add = add %a, %b
  %sub = sub %a, %c
  %mul = mul %c, %b
  %div = div %a, %s
  %max = max %a, %b
  %min = min %b, %a
  %outer = add %c, %b
  return %add, %sub, %mul, %div, %max, %min, %outer
})";
  auto r = run(text, {F({2, 3}, {1, 2, 3, 4, 5, 6}), F({3}, {10, -20, 4}),
                      F({2, 1}, {100, 200}), F({}, {2})});
  ASSERT_EQ(r.size(), 7u);
  expectF(r[0], {2, 3}, {11, -18, 7, 14, -15, 10});
  expectF(r[1], {2, 3}, {-99, -98, -97, -196, -195, -194});
  expectF(r[2], {2, 3}, {1000, -2000, 400, 2000, -4000, 800});
  expectF(r[3], {2, 3}, {0.5, 1, 1.5, 2, 2.5, 3});
  expectF(r[4], {2, 3}, {10, 2, 4, 10, 5, 6});
  expectF(r[5], {2, 3}, {1, -20, 3, 4, -20, 4});
  expectF(r[6], {2, 3}, {110, 80, 104, 210, 180, 204});
}

TEST(InterpElementwise, BinarySymbolicBroadcast) {
  const char *text = R"(
func @f(%a: tensor<T x 2 x f32>, %b: tensor<1 x 2 x f32>) -> tensor<T x 2 x f32>
    where T in [1, 16] {
  %r = mul %a, %b
  return %r
})";
  Tensor r = run1(text, {F({3, 2}, {1, 2, 3, 4, 5, 6}), F({1, 2}, {10, 100})}, {{"T", 3}});
  expectF(r, {3, 2}, {10, 200, 30, 400, 50, 600});
}

TEST(InterpElementwise, BinaryI32) {
  const char *text = R"(
func @f(%a: tensor<4 x i32>, %b: tensor<4 x i32>)
    -> tensor<4 x i32>, tensor<4 x i32>, tensor<4 x i32>, tensor<4 x i32> {
  %add = add %a, %b
  %mul = mul %a, %b
  %div = div %a, %b
  %max = max %a, %b
  return %add, %mul, %div, %max
})";
  auto r = run(text, {I({4}, {7, -7, 2147483647, -2147483648}), I({4}, {2, 2, 1, -1})});
  ASSERT_EQ(r.size(), 4u);
  expectI(r[0], {4}, {9, -5, -2147483648, 2147483647}); // wraps
  expectI(r[1], {4}, {14, -14, 2147483647, -2147483648});
  expectI(r[2], {4}, {3, -3, 2147483647, -2147483648}); // truncates; INT_MIN/-1 wraps
  expectI(r[3], {4}, {7, 2, 2147483647, -1});
}

/// Each unary op on a few points, against the formulas of DESIGN.md.
TEST(InterpElementwise, EveryUnary) {
  const double e = 2.718281828459045;
  struct Case {
    const char *op;
    std::vector<float> in;
    std::vector<double> want;
  } cases[] = {
      {"neg", {1.5, -2, 0}, {-1.5, 2, 0}},
      {"exp", {0, 1, -1}, {1, e, 1 / e}},
      {"log", {1, 4, float(e)}, {0, 1.3862943611198906, 1}},
      {"sqr", {3, -0.5}, {9, 0.25}},
      {"sqrt", {4, 2}, {2, 1.4142135623730951}},
      {"rsqrt", {4, 0.25}, {0.5, 2}},
      {"abs", {-2, 3, -0.0f}, {2, 3, 0}},
      {"tanh", {0, 0.5}, {0, 0.46211715726000974}},
      {"sigmoid", {0, 2}, {0.5, 0.8807970779778823}},
      {"softplus", {0, 1, 30}, {0.6931471805599453, 1.3132616875182228, 30}},
      {"relu", {-1, 2, 0}, {0, 2, 0}},
      {"silu", {1, -2, 0}, {0.7310585786300049, -0.2384058440442351, 0}},
      {"gelu", {1, -0.5, 0}, {0.8411919906082768, -0.15428599017485606, 0}},
      {"gelu_erf", {1, -1, 0}, {0.8413447460685429, -0.15865525393145707, 0}},
      {"pow {exponent = 3.0}", {2, -1.5}, {8, -3.375}},
      {"pow {exponent = 0.5}", {9, 2.25}, {3, 1.5}},
      {"scale {factor = 2.0, bias = 1.0}", {3, -1}, {7, -1}},
      {"scale {factor = -0.5}", {3, -1}, {-1.5, 0.5}},
      {"clamp {min = 0.0}", {-1, 2}, {0, 2}},
      {"clamp {max = 1.0}", {-1, 2}, {-1, 1}},
      {"clamp {min = -1.0, max = 1.0}", {-3, 0.25, 3}, {-1, 0.25, 1}},
  };
  for (auto &c : cases) {
    SCOPED_TRACE(c.op);
    int64_t n = c.in.size();
    // `%r = op %x {attrs}`: put the operand before the attributes.
    std::string op = c.op, name = op.substr(0, op.find(' ')),
                attrs = op.find(' ') == std::string::npos ? "" : op.substr(op.find(' '));
    std::string text = "func @f(%x: tensor<" + std::to_string(n) + " x f32>) -> tensor<" +
           std::to_string(n) + " x f32> {\n  %r = " + name + " %x" + attrs +
           "\n  return %r\n}";
    Tensor r = run1(text, {F({n}, c.in)});
    expectF(r, {n}, c.want, 1e-6);
  }
}

TEST(InterpElementwise, Glus) {
  const char *text = R"(
func @f(%g: tensor<4 x f32>, %u: tensor<4 x f32>)
    -> tensor<4 x f32>, tensor<4 x f32>, tensor<4 x f32> {
  %s = swiglu %g, %u
  %ge = geglu %g, %u
  %o = swiglu_oai %g, %u {alpha = 1.702, limit = 7.0}
  return %s, %ge, %o
})";
  // swiglu_oai: g' = min(g, 7), u' = clamp(u, -7, 7); g' * sigmoid(1.702 g') * (u' + 1).
  //   (10, 10):  7 * sigmoid(11.914) * 8           (both clipped)
  //   (1, -10):  1 * sigmoid(1.702) * (-7 + 1)     (u clipped from below)
  //   (-10, 0.5): -10 * sigmoid(-17.02) * 1.5      (g not clipped from below)
  //   (2, 3):    2 * sigmoid(3.404) * 4            (nothing clipped)
  auto r = run(text, {F({4}, {10, 1, -10, 2}), F({4}, {10, -10, 0.5, 3})});
  ASSERT_EQ(r.size(), 3u);
  auto silu = [](double x) { return x / (1 + std::exp(-x)); };
  auto gelu = [](double x) {
    return 0.5 * x * (1 + std::tanh(0.7978845608028654 * x * (1 + 0.044715 * x * x)));
  };
  expectF(r[0], {4}, {silu(10) * 10, silu(1) * -10, silu(-10) * 0.5, silu(2) * 3}, 1e-6);
  expectF(r[1], {4}, {gelu(10) * 10, gelu(1) * -10, gelu(-10) * 0.5, gelu(2) * 3}, 1e-6);
  expectF(r[2], {4},
          {55.99962502642654, -5.074774595596928, -6.086941942282968e-07,
           7.742634492576833},
          1e-6);
}

TEST(InterpElementwise, CastRoundsToF16AndBF16) {
  const char *text = R"(
func @f(%x: tensor<4 x f32>)
    -> tensor<4 x f16>, tensor<4 x bf16>, tensor<4 x i32>, tensor<4 x f32> {
  %h = cast %x {to = f16}
  %b = cast %x {to = bf16}
  %i = cast %x {to = i32}
  %back = cast %i {to = f32}
  return %h, %b, %i, %back
})";
  // 1/3 = 0x3EAAAAAB: f16 keeps 10 fraction bits, 1.0101010101|01.. rounds down
  // to 1365/4096; bf16 keeps 7, 0x3EAA|AAAB rounds up to 0x3EAB = 0.333984375.
  // 1 + 2^-11 is a tie in f16 (to even: 1); 70000 overflows f16 to infinity;
  // in bf16 1 + 2^-11 rounds to 1, 70000 to 70144 (0x4789).
  auto r = run(text, {F({4}, {1.0f / 3, 1 + 0x1p-11f, 70000, -2.75})});
  ASSERT_EQ(r.size(), 4u);
  expectF(r[0], {4}, {1365.0 / 4096, 1, INFINITY, -2.75}, 0, ElemType::F16);
  expectF(r[1], {4}, {0.333984375, 1, 70144, -2.75}, 0, ElemType::BF16);
  expectI(r[2], {4}, {0, 1, 70000, -2}); // truncation toward zero
  expectF(r[3], {4}, {0, 1, 70000, -2});
}

TEST(InterpElementwise, HalfResultsAreRoundedAfterEachOp) {
  const char *text = R"(
func @f(%a: tensor<2 x bf16>, %b: tensor<2 x bf16>, %h: tensor<2 x f16>)
    -> tensor<2 x bf16>, tensor<2 x f16> {
  %s = add %a, %b
  %e = exp %h
  return %s, %e
})";
  // bf16: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> even (1);
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6 -> even (1 + 2^-6).
  // f16: exp(1) = 2.71828.. -> nearest f16 2.71875 (2 + 23/32); exp(0) = 1.
  auto r = run(text, {F({2}, {1, 1}, ElemType::BF16),
                      F({2}, {0x1p-8f, 3 * 0x1p-8f}, ElemType::BF16),
                      F({2}, {1, 0}, ElemType::F16)});
  ASSERT_EQ(r.size(), 2u);
  expectF(r[0], {2}, {1, 1 + 0x1p-6}, 0, ElemType::BF16);
  expectF(r[1], {2}, {2.71875, 1}, 0, ElemType::F16);
}

TEST(InterpElementwise, ConstantSplatAndDense) {
  const char *text = R"(
func @f(%x: tensor<T x f32>)
    -> tensor<2 x 3 x f32>, tensor<2 x 2 x f32>, tensor<3 x i32>, tensor<T x f32>,
       tensor<f16>, tensor<T x f32> where T in [1, 8] {
  %s = constant {value = 1.5} : tensor<2 x 3 x f32>
  %d = constant {value = [1, 2.5, -3, 4]} : tensor<2 x 2 x f32>
  %i = constant {value = [7, -1, 0]} : tensor<3 x i32>
  %t = constant {value = -2} : tensor<T x f32>
  %h = constant {value = 0.1} : tensor<f16>
  %y = add %x, %t
  return %s, %d, %i, %t, %h, %y
})";
  auto r = run(text, {F({3}, {1, 2, 3})}, {{"T", 3}});
  ASSERT_EQ(r.size(), 6u);
  expectF(r[0], {2, 3}, {1.5, 1.5, 1.5, 1.5, 1.5, 1.5});
  expectF(r[1], {2, 2}, {1, 2.5, -3, 4});
  expectI(r[2], {3}, {7, -1, 0});
  expectF(r[3], {3}, {-2, -2, -2});
  // f16 0.1 = 0x2E66 = 1638/16384.
  expectF(r[4], {}, {1638.0 / 16384}, 0, ElemType::F16);
  expectF(r[5], {3}, {-1, 0, 1});
}

/// Two simulated ranks holding the same data: the sum doubles it.
class TwoEqualRanks : public Communicator {
public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  llvm::Error allReduceSum(float *data, size_t n) override {
    for (size_t k = 0; k < n; ++k)
      data[k] *= 2;
    ++calls;
    return llvm::Error::success();
  }
  int calls = 0;
};

class FailingComm : public Communicator {
public:
  int rank() const override { return 1; }
  int size() const override { return 2; }
  llvm::Error allReduceSum(float *, size_t) override {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "peer 0 went away");
  }
};

TEST(InterpElementwise, AllReduce) {
  const char *text = R"(
func @f(%x: tensor<3 x f32>) -> tensor<3 x f32> {
  %r = all_reduce %x {sum}
  return %r
})";
  // One rank (no communicator): the identity.
  expectF(run1(text, {F({3}, {1, -2, 0.5})}), {3}, {1, -2, 0.5});
  TwoEqualRanks two;
  InterpOptions opts;
  opts.comm = &two;
  auto r = run(text, {F({3}, {1, -2, 0.5})}, {}, opts);
  ASSERT_EQ(r.size(), 1u);
  expectF(r[0], {3}, {2, -4, 1});
  EXPECT_EQ(two.calls, 1);
  FailingComm bad;
  opts.comm = &bad;
  auto e = tryRun(text, {F({3}, {1, -2, 0.5})}, {}, opts);
  ASSERT_FALSE(e);
  std::string msg = llvm::toString(e.takeError());
  EXPECT_NE(msg.find("all_reduce %r"), std::string::npos) << msg;
  EXPECT_NE(msg.find("peer 0 went away"), std::string::npos) << msg;
}

/// 16-bit sums are accumulated in f32 and rounded once: three ranks adding
/// 1, 2^-11, 2^-11 in f16 give 1 + 2^-10 (rounding after each addition would
/// give 1: 1 + 2^-11 is a tie, to even), and 1, 2^-8, 2^-8 in bf16 give
/// 1 + 2^-7. The same through the interpreter's all_reduce of f16 tensors.
TEST(InterpElementwise, AllReduce16RoundsOnce) {
  for (ElemType elem : {ElemType::F16, ElemType::BF16}) {
    float tiny = elem == ElemType::F16 ? 0x1p-11f : 0x1p-8f;
    std::vector<uint16_t> got(3);
    auto e = runInProcessRanks(3, [&](int r, Communicator &comm) -> llvm::Error {
      uint16_t v = narrow16(elem, r == 0 ? 1.0f : tiny);
      if (auto e = comm.allReduceSum(&v, 1, elem))
        return e;
      got[r] = v;
      return llvm::Error::success();
    });
    ASSERT_FALSE(e) << llvm::toString(std::move(e));
    for (uint16_t v : got)
      EXPECT_EQ(widen16(elem, v), 1.0f + 2 * tiny) << elemTypeName(elem).str();
  }
  const char *text = R"(
func @f(%x: tensor<2 x f16>) -> tensor<2 x f16> {
  %r = all_reduce %x {sum}
  return %r
})";
  std::vector<std::vector<float>> outs(3);
  auto e = runInProcessRanks(3, [&](int r, Communicator &comm) -> llvm::Error {
    InterpOptions opts;
    opts.comm = &comm;
    auto x = Tensor::fromF32(ElemType::F16, {2}, {r == 0 ? 1.0f : 0x1p-11f, -2.0f});
    if (!x)
      return x.takeError();
    auto res = run(text, {*x}, {}, opts);
    outs[r] = res[0].f;
    return llvm::Error::success();
  });
  ASSERT_FALSE(e) << llvm::toString(std::move(e));
  for (auto &o : outs)
    EXPECT_EQ(o, (std::vector<float>{1.0f + 0x1p-10f, -6.0f}));
}

} // namespace
