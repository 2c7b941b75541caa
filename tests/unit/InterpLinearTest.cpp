//===- InterpLinearTest.cpp - Interpreter: matmul, matmul_id, add_id, gather ===//
//
// matmul (2-D and batched), block-quantised weights (q8_0 with exact bytes
// built by hand, and q8_0/q4_0/mxfp4 against the dequantised f32 weight),
// matmul_id with B = 1 and B = k, add_id, gather along axis 0 and 1 (also
// from a quantised and an f16 source). Expected values from the math.
//
//===----------------------------------------------------------------------===//
#include "InterpTestUtil.h"

#include "runtime/Formats.h"

using namespace moe;
using namespace moe::test;

namespace {

TEST(InterpLinear, Matmul) {
  const char *text = R"(
func @f(%x: tensor<2 x 3 x f32>, %w: tensor<2 x 3 x f32>, %xb: tensor<2 x 1 x 3 x f32>)
    -> tensor<2 x 2 x f32>, tensor<2 x 1 x 2 x f32> {
  %y = matmul %x, %w
  %yb = matmul %xb, %w
  return %y, %yb
})";
  // x = [[1, 2, 3], [4, 5, 6]], w = [[1, 0, -1], [2, 1, 0]]: y = x w^T.
  auto r = run(text, {F({2, 3}, {1, 2, 3, 4, 5, 6}), F({2, 3}, {1, 0, -1, 2, 1, 0}),
                      F({2, 1, 3}, {1, 2, 3, 4, 5, 6})});
  ASSERT_EQ(r.size(), 2u);
  expectF(r[0], {2, 2}, {-2, 4, -2, 13});
  expectF(r[1], {2, 1, 2}, {-2, 4, -2, 13});
}

/// q8_0 bytes built with quantizeRow from values that quantise exactly
/// (amax 127, so the scale is 1): the products are integers known by hand.
TEST(InterpLinear, MatmulQ8_0ExactBlocks) {
  std::vector<float> w(64);
  for (int k = 0; k < 32; ++k) {
    w[k] = k - 16;  // row 0: -16 .. 14, then 127 at k = 31
    w[32 + k] = -127;
  }
  w[31] = 127;
  Tensor q;
  q.elem = ElemType::Q8_0;
  q.shape = {2, 32};
  q.raw.resize(2 * 34);
  quantizeRow(ElemType::Q8_0, w.data(), q.raw.data(), 32);
  quantizeRow(ElemType::Q8_0, w.data() + 32, q.raw.data() + 34, 32);
  const char *text = R"(
func @f(%x: tensor<1 x 32 x f32>, %w: tensor<2 x 32 x q8_0> {param}) -> tensor<1 x 2 x f32> {
  %y = matmul %x, %w
  return %y
})";
  // x = ones: row sums. Row 0: sum(k - 16, k = 0..30) + 127 = -31 + 127.
  Tensor y = run1(text, {F({1, 32}, std::vector<float>(32, 1)), q});
  expectF(y, {1, 2}, {96, -4064});
}

/// Each block type against the same matmul on its dequantised f32 weight.
TEST(InterpLinear, MatmulQuantisedEqualsDequantised) {
  std::vector<float> w(3 * 64), x(2 * 64);
  for (size_t k = 0; k < w.size(); ++k)
    w[k] = std::sin(0.37 * k) * (k % 7 == 0 ? 3 : 0.5);
  for (size_t k = 0; k < x.size(); ++k)
    x[k] = std::cos(0.11 * k);
  for (ElemType t : {ElemType::Q8_0, ElemType::Q4_0, ElemType::MXFP4}) {
    SCOPED_TRACE(elemTypeName(t).str());
    Tensor q = F({3, 64}, w, t);
    // The dequantised weight, decoded here row by row with Formats.h.
    std::vector<float> deq(w.size());
    for (int n = 0; n < 3; ++n)
      dequantizeRow(t, q.raw.data() + n * rowBytes(t, 64), deq.data() + n * 64, 64);
    std::vector<double> want;
    for (int m = 0; m < 2; ++m)
      for (int n = 0; n < 3; ++n) {
        double acc = 0;
        for (int k = 0; k < 64; ++k)
          acc += (double)x[m * 64 + k] * deq[n * 64 + k];
        want.push_back((float)acc);
      }
    std::string text = "func @f(%x: tensor<2 x 64 x f32>, %w: tensor<3 x 64 x " +
                       elemTypeName(t).str() +
                       "> {param}) -> tensor<2 x 3 x f32> {\n"
                       "  %y = matmul %x, %w\n  return %y\n}";
    expectF(run1(text, {F({2, 64}, x), q}), {2, 3}, want);
  }
}

// Experts: w[0] = identity, w[1] = 2 * identity, w[2] = swap the two entries.
const std::vector<float> kExperts = {1, 0, 0, 1, /**/ 2, 0, 0, 2, /**/ 0, 1, 1, 0};

TEST(InterpLinear, MatmulIdBroadcastInput) {
  const char *text = R"(
func @f(%x: tensor<T x 1 x 2 x f32>, %w: tensor<3 x 2 x 2 x f32> {param},
        %ids: tensor<T x 2 x i32>) -> tensor<T x 2 x 2 x f32> where T in [1, 8] {
  %y = matmul_id %x, %w, %ids
  return %y
})";
  // B = 1: every slot of token t reads x[t, 0].
  Tensor y = run1(text, {F({2, 1, 2}, {1, 2, 3, 4}), F({3, 2, 2}, kExperts),
                         I({2, 2}, {2, 0, 1, 2})},
                  {{"T", 2}});
  expectF(y, {2, 2, 2}, {2, 1, 1, 2, 6, 8, 4, 3});
}

TEST(InterpLinear, MatmulIdPerSlotInput) {
  const char *text = R"(
func @f(%x: tensor<2 x 2 x 2 x f32>, %w: tensor<3 x 2 x 2 x f32> {param},
        %ids: tensor<2 x 2 x i32>) -> tensor<2 x 2 x 2 x f32> {
  %y = matmul_id %x, %w, %ids
  return %y
})";
  // B = k: slot j of token t reads x[t, j].
  Tensor y = run1(text, {F({2, 2, 2}, {1, 2, 5, 6, 3, 4, 7, 8}), F({3, 2, 2}, kExperts),
                         I({2, 2}, {2, 0, 1, 2})});
  expectF(y, {2, 2, 2}, {2, 1, 5, 6, 6, 8, 8, 7});
}

TEST(InterpLinear, MatmulIdQuantisedExperts) {
  std::vector<float> w(2 * 1 * 32);
  for (int k = 0; k < 32; ++k) {
    w[k] = k == 0 ? 127 : 1;   // expert 0: exact with scale 1
    w[32 + k] = k == 5 ? -127 : 0; // expert 1
  }
  const char *text = R"(
func @f(%x: tensor<1 x 1 x 32 x f32>, %w: tensor<2 x 1 x 32 x q8_0> {param},
        %ids: tensor<1 x 2 x i32>) -> tensor<1 x 2 x 1 x f32> {
  %y = matmul_id %x, %w, %ids
  return %y
})";
  std::vector<float> x(32, 1);
  x[5] = 2;
  // Expert 1 (slot 0): -127 * x[5]; expert 0 (slot 1): 127 + 30 * 1 + 1 * 2.
  Tensor y = run1(text, {F({1, 1, 32}, x), F({2, 1, 32}, w, ElemType::Q8_0),
                         I({1, 2}, {1, 0})});
  expectF(y, {1, 2, 1}, {-254, 159});
}

TEST(InterpLinear, AddId) {
  const char *text = R"(
func @f(%x: tensor<2 x 2 x 2 x f32>, %b: tensor<3 x 2 x f32> {param},
        %ids: tensor<2 x 2 x i32>) -> tensor<2 x 2 x 2 x f32> {
  %y = add_id %x, %b, %ids
  return %y
})";
  Tensor y = run1(text, {F({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}),
                         F({3, 2}, {0, 0.5, 10, 11, 20, 21}), I({2, 2}, {2, 0, 1, 1})});
  expectF(y, {2, 2, 2}, {21, 23, 3, 4.5, 15, 17, 17, 19});
}

TEST(InterpLinear, GatherAxis1TakeAlongAxis) {
  const char *text = R"(
func @f(%p: tensor<2 x 4 x f32>, %ids: tensor<2 x 2 x i32>) -> tensor<2 x 2 x f32> {
  %w = gather %p, %ids {axis = 1}
  return %w
})";
  Tensor y = run1(text, {F({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}), I({2, 2}, {3, 0, 1, 1})});
  expectF(y, {2, 2}, {4, 1, 6, 6});
}

TEST(InterpLinear, GatherAxis0Take) {
  const char *text = R"(
func @f(%s: tensor<3 x f32>, %ids: tensor<2 x 2 x i32>, %e: tensor<3 x 2 x f32>,
        %r: tensor<2 x i32>) -> tensor<2 x 2 x f32>, tensor<2 x 2 x f32> {
  %a = gather %s, %ids {axis = 0}
  %b = gather %e, %r {axis = 0}
  return %a, %b
})";
  // take(s, ids); rows of e (ggml get_rows).
  auto r = run(text, {F({3}, {10, 20, 30}), I({2, 2}, {2, 0, 1, 2}),
                      F({3, 2}, {1, 2, 3, 4, 5, 6}), I({2}, {2, 0})});
  ASSERT_EQ(r.size(), 2u);
  expectF(r[0], {2, 2}, {30, 10, 20, 30});
  expectF(r[1], {2, 2}, {5, 6, 1, 2});
}

TEST(InterpLinear, GatherQuantisedAndHalfSources) {
  // Rows quantise exactly (amax 127): row r is 127 at k = r, else r.
  std::vector<float> e(3 * 32);
  for (int r = 0; r < 3; ++r)
    for (int k = 0; k < 32; ++k)
      e[r * 32 + k] = k == r ? 127 : r;
  const char *text = R"(
func @f(%e: tensor<3 x 32 x q8_0> {param}, %r: tensor<2 x i32>, %h: tensor<3 x f16>)
    -> tensor<2 x 32 x f32>, tensor<2 x f16> {
  %a = gather %e, %r {axis = 0}
  %b = gather %h, %r {axis = 0}
  return %a, %b
})";
  auto r = run(text, {F({3, 32}, e, ElemType::Q8_0), I({2}, {2, 1}),
                      F({3}, {0.5, 0.25, -8}, ElemType::F16)});
  ASSERT_EQ(r.size(), 2u);
  std::vector<double> want;
  for (int row : {2, 1})
    for (int k = 0; k < 32; ++k)
      want.push_back(k == row ? 127 : row);
  expectF(r[0], {2, 32}, want);
  expectF(r[1], {2}, {-8, 0.25}, 0, ElemType::F16);
}

/// gather from a quantised source along its innermost axis picks single
/// elements out of blocks.
TEST(InterpLinear, GatherQuantisedInnermost) {
  std::vector<float> e(32);
  for (int k = 0; k < 32; ++k)
    e[k] = k == 31 ? 127 : k - 10;
  const char *text = R"(
func @f(%e: tensor<32 x q8_0> {param}, %r: tensor<3 x i32>) -> tensor<3 x f32> {
  %a = gather %e, %r {axis = 0}
  return %a
})";
  expectF(run1(text, {F({32}, e, ElemType::Q8_0), I({3}, {31, 0, 12})}), {3},
          {127, -10, 2});
}

} // namespace
