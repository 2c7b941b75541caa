//===- InterpShapeTest.cpp - Interpreter: shape ops -----------------------===//
//
// reshape (static and symbolic), permute (2-D transpose and a rank-3
// rotation), slice (symbolic start), concat along each axis, broadcast, and
// strided views (a transposing view with an offset, overlapping windows),
// on f32 and i32. Expected values from the index formulas.
//
//===----------------------------------------------------------------------===//
#include "InterpTestUtil.h"

using namespace moe;
using namespace moe::test;

namespace {

std::vector<float> iota(int n) {
  std::vector<float> v(n);
  for (int k = 0; k < n; ++k)
    v[k] = k;
  return v;
}

TEST(InterpShape, Reshape) {
  const char *text = R"(
func @f(%x: tensor<T x 4 x f32>, %i: tensor<2 x 3 x i32>)
    -> tensor<2 x 2 x T x f32>, tensor<3 x 2 x i32> where T in [1, 8] {
  %a = reshape %x {shape = [2, 2, T]}
  %b = reshape %i {shape = [3, 2]}
  return %a, %b
})";
  auto r = run(text, {F({3, 4}, iota(12)), I({2, 3}, {1, 2, 3, 4, 5, 6})}, {{"T", 3}});
  ASSERT_EQ(r.size(), 2u);
  std::vector<double> want(12);
  for (int k = 0; k < 12; ++k)
    want[k] = k;
  expectF(r[0], {2, 2, 3}, want);
  expectI(r[1], {3, 2}, {1, 2, 3, 4, 5, 6});
}

TEST(InterpShape, Permute) {
  const char *text = R"(
func @f(%x: tensor<2 x 3 x f32>, %y: tensor<2 x 3 x 4 x f32>)
    -> tensor<3 x 2 x f32>, tensor<4 x 2 x 3 x f32> {
  %t = permute %x {perm = [1, 0]}
  %r = permute %y {perm = [2, 0, 1]}
  return %t, %r
})";
  auto r = run(text, {F({2, 3}, iota(6)), F({2, 3, 4}, iota(24))});
  ASSERT_EQ(r.size(), 2u);
  expectF(r[0], {3, 2}, {0, 3, 1, 4, 2, 5});
  // result[i, j, k] = y[j, k, i] = 12 j + 4 k + i.
  std::vector<double> want;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k)
        want.push_back(12 * j + 4 * k + i);
  expectF(r[1], {4, 2, 3}, want);
}

TEST(InterpShape, Slice) {
  const char *text = R"(
func @f(%x: tensor<2 x 4 x f32>, %y: tensor<T+2 x 2 x f32>)
    -> tensor<2 x 2 x f32>, tensor<T x 2 x f32> where T in [1, 8] {
  %a = slice %x {axis = -1, start = 1, size = 2}
  %b = slice %y {axis = 0, start = 2, size = T}
  return %a, %b
})";
  auto r = run(text, {F({2, 4}, iota(8)), F({4, 2}, iota(8))}, {{"T", 2}});
  ASSERT_EQ(r.size(), 2u);
  expectF(r[0], {2, 2}, {1, 2, 5, 6});
  expectF(r[1], {2, 2}, {4, 5, 6, 7});
}

TEST(InterpShape, Concat) {
  const char *text = R"(
func @f(%a: tensor<2 x 2 x f32>, %b: tensor<2 x 1 x f32>, %c: tensor<1 x 2 x f32>)
    -> tensor<2 x 3 x f32>, tensor<3 x 2 x f32>, tensor<2 x 5 x f32> {
  %x = concat %a, %b {axis = 1}
  %y = concat %a, %c {axis = 0}
  %z = concat %a, %b, %a {axis = -1}
  return %x, %y, %z
})";
  auto r = run(text, {F({2, 2}, {1, 2, 3, 4}), F({2, 1}, {10, 20}), F({1, 2}, {7, 8})});
  ASSERT_EQ(r.size(), 3u);
  expectF(r[0], {2, 3}, {1, 2, 10, 3, 4, 20});
  expectF(r[1], {3, 2}, {1, 2, 3, 4, 7, 8});
  expectF(r[2], {2, 5}, {1, 2, 10, 1, 2, 3, 4, 20, 3, 4});
}

TEST(InterpShape, Broadcast) {
  const char *text = R"(
func @f(%a: tensor<3 x f32>, %b: tensor<2 x 1 x i32>)
    -> tensor<2 x 3 x f32>, tensor<2 x 3 x i32>, tensor<T x 2 x 3 x f32>
    where T in [1, 4] {
  %x = broadcast %a {shape = [2, 3]}
  %y = broadcast %b {shape = [2, 3]}
  %z = broadcast %a {shape = [T, 2, 3]}
  return %x, %y, %z
})";
  auto r = run(text, {F({3}, {1, 2, 3}), I({2, 1}, {5, 6})}, {{"T", 2}});
  ASSERT_EQ(r.size(), 3u);
  expectF(r[0], {2, 3}, {1, 2, 3, 1, 2, 3});
  expectI(r[1], {2, 3}, {5, 5, 5, 6, 6, 6});
  expectF(r[2], {2, 2, 3}, {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3});
}

TEST(InterpShape, StridedView) {
  const char *text = R"(
func @f(%x: tensor<6 x f32>, %y: tensor<T x 4 x f32>)
    -> tensor<2 x 2 x f32>, tensor<3 x 3 x f32>, tensor<4 x T x f32>
    where T in [1, 8] {
  %a = view %x {shape = [2, 2], strides = [1, 2], offset = 1}
  %b = view %x {shape = [3, 3], strides = [1, 1]}
  %c = view %y {shape = [4, T], strides = [1, 4]}
  return %a, %b, %c
})";
  // a[i, j] = x[1 + i + 2 j]; b: overlapping windows b[i, j] = x[i + j];
  // c: a transposing view of y[T, 4], c[i, j] = y[j, i].
  auto r = run(text, {F({6}, iota(6)), F({3, 4}, iota(12))}, {{"T", 3}});
  ASSERT_EQ(r.size(), 3u);
  expectF(r[0], {2, 2}, {1, 3, 2, 4});
  expectF(r[1], {3, 3}, {0, 1, 2, 1, 2, 3, 2, 3, 4});
  expectF(r[2], {4, 3}, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
}

TEST(InterpShape, EmptyTensors) {
  const char *text = R"(
func @f(%x: tensor<T x 4 x f32>) -> tensor<T x 4 x f32>, tensor<4 x f32>
    where T in [0, 8] {
  %a = exp %x
  %s = reduce_sum %x {axis = 0}
  return %a, %s
})";
  auto r = run(text, {F({0, 4}, {})}, {{"T", 0}});
  ASSERT_EQ(r.size(), 2u);
  expectF(r[0], {0, 4}, {});
  expectF(r[1], {4}, {0, 0, 0, 0});
}

} // namespace
