//===- OpTraitsTest.cpp - Trait queries and shared IR helpers -------------===//
//
// What passes ask of the IR instead of listing op kinds: isLinearIn (with
// scale's conditional trait read against its bias), isSummandIn, the splat
// value of a constant, row-major strides and the strided layouts of views.
//
//===----------------------------------------------------------------------===//
#include "ir/Builder.h"
#include "ir/Layout.h"
#include "ir/Parser.h"
#include "tests/unit/IRTestUtil.h"

#include <gtest/gtest.h>

using namespace moe;
using namespace moe::test;

namespace {

const char *kOps = R"(func @f(%x: tensor<T x 8 x f32>, %b: tensor<4 x 8 x f32> {param},
          %ids: tensor<T x 2 x i32>, %y: tensor<T x 2 x 8 x f32>)
    -> tensor<T x 2 x 8 x f32> where T in [4, 64] {
  %s0 = scale %x {factor = 2.0}
  %s1 = scale %x {factor = 2.0, bias = 0.0}
  %s2 = scale %x {factor = 2.0, bias = 1.0}
  %c = concat %x, %s0, %s1 {axis = 1}
  %m = mul %x, %s0
  %a = add %x, %s0
  %sm = softmax %x
  %ai = add_id %y, %b, %ids
  %k = constant {value = 3.0} : tensor<8 x f32>
  %kl = constant {value = [2.0, 2.0]} : tensor<2 x f32>
  %kd = constant {value = [2.0, 3.0]} : tensor<2 x f32>
  %ki = constant {value = 3} : tensor<2 x i32>
  %p = permute %y {perm = [1, 0, 2]}
  %sl = slice %p {axis = 1, start = 1, size = 2}
  return %ai
}
)";

class OpTraitsTest : public ::testing::Test {
protected:
  std::unique_ptr<Module> module;
  void SetUp() override {
    auto m = parseModuleString(kOps);
    ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
    module = std::move(*m);
  }
  const Operation &op(llvm::StringRef name) {
    for (auto &o : module->functions.front()->getBody())
      if (o.getNumResults() && o.getResult()->getName() == name)
        return o;
    ADD_FAILURE() << "no op %" << name.str();
    return module->functions.front()->getBody().front();
  }
  Value *value(llvm::StringRef name) { return const_cast<Operation &>(op(name)).getResult(); }
};

TEST_F(OpTraitsTest, ScaleIsLinearOnlyWithoutBias) {
  EXPECT_TRUE(isLinearIn(op("s0"), 0));  // bias defaults to 0
  EXPECT_TRUE(isLinearIn(op("s1"), 0));
  EXPECT_FALSE(isLinearIn(op("s2"), 0)); // x*2 + 1 is affine, not linear
}

TEST_F(OpTraitsTest, MatmulIsLinearInActivationsOnlyWhenExact) {
  // act = q8_0 / bf16 rounds each activation row before the product.
  auto m = parseModuleString(R"(func @g(%x: tensor<T x 32 x f32>, %w: tensor<8 x 32 x q8_0> {param},
          %wb: tensor<8 x 32 x bf16> {param})
    -> tensor<T x 8 x f32>, tensor<T x 8 x f32>, tensor<T x 8 x f32> where T in [1, 8] {
  %e = matmul %x, %w
  %q = matmul %x, %w {act = q8_0}
  %b = matmul %x, %wb {act = bf16}
  return %e, %q, %b
})");
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  auto it = (*m)->functions.front()->getBody().begin();
  const Operation &e = *it++, &q = *it++, &b = *it;
  EXPECT_TRUE(isLinearIn(e, 0)); // act defaults to f32
  EXPECT_FALSE(isLinearIn(q, 0));
  EXPECT_FALSE(isLinearIn(b, 0));
  for (auto *o : {&e, &q, &b})
    EXPECT_TRUE(isLinearIn(*o, 1)); // always linear in the weight
}

TEST_F(OpTraitsTest, LinearInTheTable) {
  for (unsigned i = 0; i < 3; ++i)
    EXPECT_TRUE(isLinearIn(op("c"), i)) << i; // every operand of a variadic concat
  EXPECT_TRUE(isLinearIn(op("m"), 0));
  EXPECT_TRUE(isLinearIn(op("m"), 1));
  EXPECT_FALSE(isLinearIn(op("a"), 0)); // a sum is affine: isSummandIn
  EXPECT_FALSE(isLinearIn(op("sm"), 0));
  EXPECT_FALSE(isLinearIn(op("ai"), 0));
}

TEST_F(OpTraitsTest, SummandsOfAdditiveOps) {
  EXPECT_TRUE(isSummandIn(op("a"), 0));
  EXPECT_TRUE(isSummandIn(op("a"), 1));
  EXPECT_TRUE(isSummandIn(op("ai"), 0));
  EXPECT_FALSE(isSummandIn(op("ai"), 1)); // b enters indexed by ids
  EXPECT_FALSE(isSummandIn(op("ai"), 2));
  EXPECT_FALSE(isSummandIn(op("m"), 0));
}

TEST_F(OpTraitsTest, SplatValue) {
  EXPECT_EQ(splatValue(value("k")), 3.0);
  EXPECT_EQ(splatValue(value("kl")), 2.0);
  EXPECT_EQ(splatValue(value("kd")), std::nullopt); // not a splat
  EXPECT_EQ(splatValue(value("ki")), std::nullopt); // i32: not a float splat
  EXPECT_EQ(splatValue(value("m")), std::nullopt);  // not a constant
}

TEST(RowMajorStrides, StaticAndSymbolic) {
  EXPECT_EQ(rowMajorStrides(std::vector<int64_t>{2, 3, 4}), (std::vector<int64_t>{12, 4, 1}));
  EXPECT_TRUE(rowMajorStrides(std::vector<int64_t>{}).empty());
  EXPECT_EQ(rowMajorStrides(Shape{T, 2, 8}), (Shape{DimExpr(16), DimExpr(8), DimExpr(1)}));
  EXPECT_EQ(rowMajorStrides(Shape{2, T, 8}), (Shape{DimExpr(8) * T, DimExpr(8), DimExpr(1)}));
}

TEST_F(OpTraitsTest, LayoutsOfViewsCompose) {
  // permute [T, 2, 8] -> [2, T, 8]: strides [8, 16, 1] over %y.
  auto p = layoutOf(op("p"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->shape, (Shape{DimExpr(2), T, DimExpr(8)}));
  EXPECT_EQ(p->strides, (Shape{DimExpr(8), DimExpr(16), DimExpr(1)}));
  EXPECT_FALSE(isDense(*p));
  // slice axis 1 [1, 3) of the permute, read directly over %y: offset 16.
  auto s = compose(*p, op("sl"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->shape, (Shape{DimExpr(2), DimExpr(2), DimExpr(8)}));
  EXPECT_EQ(s->offset, DimExpr(16));
  EXPECT_FALSE(layoutOf(op("m"))); // not a view
  // A reshape's layout is its input's identity only at the same shape.
  Layout rm{Shape{T, DimExpr(2), DimExpr(8)}, rowMajorStrides(Shape{T, 2, 8}), DimExpr(0)};
  EXPECT_TRUE(isIdentity(rm, f32({T, 2, 8})));
  EXPECT_FALSE(isIdentity(rm, f32({T, 16})));
  EXPECT_TRUE(isFullReshape(rm, f32({T, 16})));
}

TEST(Layout, RegroupMergesContiguousDims) {
  // [T, 2, 8] row-major viewed as [T, 16]: the last two dims are contiguous.
  Layout in{Shape{T, DimExpr(2), DimExpr(8)}, rowMajorStrides(Shape{T, 2, 8}), DimExpr(0)};
  auto st = regroup(in, Shape{T, DimExpr(16)});
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, (Shape{DimExpr(16), DimExpr(1)}));
  // Permuted dims are not contiguous: no strided regrouping.
  Layout perm{Shape{DimExpr(2), T, DimExpr(8)}, Shape{DimExpr(8), DimExpr(16), DimExpr(1)},
              DimExpr(0)};
  EXPECT_FALSE(regroup(perm, Shape{DimExpr(2) * T, DimExpr(8)}));
}

} // namespace
