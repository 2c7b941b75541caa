//===- InterpReduceTest.cpp - Interpreter: reductions, sorting, norms -----===//
//
// reduce_sum/mean/max with positive and negative axes and keepdim, softmax
// along the last and a leading axis, topk and argsort ties (lower index
// first, stable), rms_norm and layer_norm with and without weights. Expected
// values are written from the math.
//
//===----------------------------------------------------------------------===//
#include "InterpTestUtil.h"

using namespace moe;
using namespace moe::test;

namespace {

TEST(InterpReduce, SumMeanMaxAxesAndKeepdim) {
  const char *text = R"(
func @f(%x: tensor<2 x 3 x f32>)
    -> tensor<2 x f32>, tensor<2 x 1 x f32>, tensor<3 x f32>, tensor<1 x 3 x f32>,
       tensor<2 x f32>, tensor<3 x f32>, tensor<2 x 1 x f32> {
  %s1 = reduce_sum %x {axis = 1}
  %s2 = reduce_sum %x {axis = -1, keepdim}
  %s3 = reduce_sum %x {axis = 0}
  %s4 = reduce_sum %x {axis = -2, keepdim}
  %m = reduce_mean %x {axis = -1}
  %mx = reduce_max %x {axis = 0}
  %mx2 = reduce_max %x {axis = 1, keepdim}
  return %s1, %s2, %s3, %s4, %m, %mx, %mx2
})";
  // x = [[1, 2, 3], [4, 5, -6]]
  auto r = run(text, {F({2, 3}, {1, 2, 3, 4, 5, -6})});
  ASSERT_EQ(r.size(), 7u);
  expectF(r[0], {2}, {6, 3});
  expectF(r[1], {2, 1}, {6, 3});
  expectF(r[2], {3}, {5, 7, -3});
  expectF(r[3], {1, 3}, {5, 7, -3});
  expectF(r[4], {2}, {2, 1});
  expectF(r[5], {3}, {4, 5, 3});
  expectF(r[6], {2, 1}, {3, 5});
}

TEST(InterpReduce, MiddleAxisOfRank3) {
  const char *text = R"(
func @f(%x: tensor<2 x 2 x 2 x f32>) -> tensor<2 x 2 x f32>, tensor<2 x 1 x 2 x f32> {
  %s = reduce_sum %x {axis = 1}
  %m = reduce_mean %x {axis = -2, keepdim}
  return %s, %m
})";
  // x[i, j, k] = 4i + 2j + k: sums over j are [[0+2, 1+3], [4+6, 5+7]].
  auto r = run(text, {F({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7})});
  ASSERT_EQ(r.size(), 2u);
  expectF(r[0], {2, 2}, {2, 4, 10, 12});
  expectF(r[1], {2, 1, 2}, {1, 2, 5, 6});
}

TEST(InterpReduce, ReduceMaxPropagatesNaN) {
  const char *text = R"(
func @f(%x: tensor<3 x f32>) -> tensor<f32> {
  %m = reduce_max %x {axis = 0}
  return %m
})";
  expectF(run1(text, {F({3}, {1, NAN, 2})}), {}, {NAN});
}

TEST(InterpReduce, Softmax) {
  const char *text = R"(
func @f(%x: tensor<2 x 3 x f32>, %y: tensor<2 x 2 x f32>)
    -> tensor<2 x 3 x f32>, tensor<2 x 2 x f32> {
  %a = softmax %x {axis = -1}
  %b = softmax %y {axis = 0}
  return %a, %b
})";
  // Row [1, 2, 3]: e^(x-3) / sum = [0.0900.., 0.2447.., 0.6652..]; a row of
  // equal values is uniform (and large values do not overflow: x - max).
  // Columns of [[0, 1], [0, 3]]: [1/2, 1/2] and [1/(1+e^2), e^2/(1+e^2)].
  auto r = run(text, {F({2, 3}, {1, 2, 3, 1000, 1000, 1000}), F({2, 2}, {0, 1, 0, 3})});
  ASSERT_EQ(r.size(), 2u);
  double third = 1.0 / 3;
  expectF(r[0], {2, 3},
          {0.09003057317038046, 0.24472847105479764, 0.6652409557748218, third, third,
           third},
          1e-6);
  expectF(r[1], {2, 2}, {0.5, 0.11920292202211757, 0.5, 0.8807970779778825}, 1e-6);
}

TEST(InterpReduce, TopkTiesToLowerIndex) {
  const char *text = R"(
func @f(%x: tensor<4 x f32>, %y: tensor<2 x 4 x f32>)
    -> tensor<2 x i32>, tensor<3 x i32>, tensor<2 x 2 x i32> {
  %a = topk %x {k = 2}
  %b = topk %x {k = 3}
  %c = topk %y {k = 2}
  return %a, %b, %c
})";
  auto r = run(text, {F({4}, {1, 3, 3, 2}), F({2, 4}, {5, 1, 5, 0, 0, 0, 0, 0})});
  ASSERT_EQ(r.size(), 3u);
  expectI(r[0], {2}, {1, 2});
  expectI(r[1], {3}, {1, 2, 3});
  expectI(r[2], {2, 2}, {0, 2, 0, 1});
}

TEST(InterpReduce, ArgsortStable) {
  const char *text = R"(
func @f(%x: tensor<4 x f32>, %y: tensor<2 x 4 x f32>)
    -> tensor<4 x i32>, tensor<2 x 4 x i32>, tensor<2 x 4 x i32> {
  %a = argsort %x {desc}
  %b = argsort %y
  %c = argsort %y {desc}
  return %a, %b, %c
})";
  // [1, 3, 3, 2] descending: 3 (index 1), 3 (index 2), 2, 1.
  // [3, 1, 3, 1]: ascending 1 (1), 1 (3), 3 (0), 3 (2); descending 0, 2, 1, 3.
  // [-0, 0, -1, 0]: -0 and 0 are equal, so they keep index order.
  auto r = run(text, {F({4}, {1, 3, 3, 2}), F({2, 4}, {3, 1, 3, 1, -0.0f, 0, -1, 0})});
  ASSERT_EQ(r.size(), 3u);
  expectI(r[0], {4}, {1, 2, 3, 0});
  expectI(r[1], {2, 4}, {1, 3, 0, 2, 2, 0, 1, 3});
  expectI(r[2], {2, 4}, {0, 2, 1, 3, 0, 1, 3, 2});
}

TEST(InterpReduce, RmsNorm) {
  const char *text = R"(
func @f(%x: tensor<2 x 2 x f32>, %w: tensor<2 x f32>)
    -> tensor<2 x 2 x f32>, tensor<2 x 2 x f32>, tensor<2 x 2 x f32> {
  %a = rms_norm %x {eps = 0.0}
  %b = rms_norm %x, %w {eps = 0.0}
  %c = rms_norm %x {eps = 1.0}
  return %a, %b, %c
})";
  // Row [3, 4]: mean(x^2) = 12.5, x / sqrt(12.5); with eps = 1, x / sqrt(13.5).
  // Row [0, 0] with eps = 0 is 0/0 (NaN, as the formula says); with eps = 1, 0.
  auto r = run(text, {F({2, 2}, {3, 4, 0, 0}), F({2}, {2, 0.5})});
  ASSERT_EQ(r.size(), 3u);
  expectF(r[0], {2, 2}, {0.848528137423857, 1.131370849898476, NAN, NAN}, 1e-6);
  expectF(r[1], {2, 2}, {1.697056274847714, 0.565685424949238, NAN, NAN}, 1e-6);
  expectF(r[2], {2, 2}, {0.816496580927726, 1.0886621079036347, 0, 0}, 1e-6);
}

TEST(InterpReduce, LayerNorm) {
  const char *text = R"(
func @f(%x: tensor<1 x 4 x f32>, %w: tensor<4 x f32>, %b: tensor<1 x 4 x f32>)
    -> tensor<1 x 4 x f32>, tensor<1 x 4 x f32>, tensor<1 x 4 x f32> {
  %a = layer_norm %x {eps = 0.0}
  %c = layer_norm %x, %w, %b {eps = 0.0}
  %d = layer_norm %x, %w {eps = 3.75}
  return %a, %c, %d
})";
  // [1, 2, 3, 4]: mean 2.5, biased variance 1.25. With eps = 3.75 the
  // denominator is sqrt(5).
  auto r = run(text, {F({1, 4}, {1, 2, 3, 4}), F({4}, {1, 2, 1, 2}), F({1, 4}, {0, 0, 1, 1})});
  ASSERT_EQ(r.size(), 3u);
  expectF(r[0], {1, 4},
          {-1.3416407864998738, -0.4472135954999579, 0.4472135954999579,
           1.3416407864998738},
          1e-6);
  expectF(r[1], {1, 4},
          {-1.3416407864998738, -0.8944271909999159, 1.4472135954999579,
           3.6832815729997477},
          1e-6);
  double s5 = std::sqrt(5.0);
  expectF(r[2], {1, 4}, {-1.5 / s5, -0.5 * 2 / s5, 0.5 / s5, 1.5 * 2 / s5}, 1e-6);
}

/// Sums run in double, in order: 2^24 + 1 + 1 is exact (an f32 accumulator
/// would give 2^24), and the result is rounded once to f32.
TEST(InterpReduce, SumAccumulatesInDouble) {
  const char *text = R"(
func @f(%x: tensor<3 x f32>) -> tensor<f32> {
  %s = reduce_sum %x {axis = 0}
  return %s
})";
  expectF(run1(text, {F({3}, {0x1p24f, 1, 1})}), {}, {16777218});
}

} // namespace
