//===- DimExprTest.cpp - Symbolic dim algebra -----------------------------===//
#include "ir/DimExpr.h"
#include "tests/unit/IRTestUtil.h"

#include <gtest/gtest.h>

using namespace moe;
using moe::test::T;

namespace {
const DimExpr U = DimExpr::symbol("U");
} // namespace

TEST(DimExpr, CanonicalFormMakesEqualExpressionsEqual) {
  EXPECT_EQ(T + T, DimExpr(2) * T);
  EXPECT_EQ((T + 1) * (T - 1), T * T - 1);
  EXPECT_EQ(T * U, U * T);
  EXPECT_EQ(T - T, DimExpr(0));
  EXPECT_NE(T, DimExpr(7));
  EXPECT_NE(T, U);
}

TEST(DimExpr, PrintsCanonically) {
  EXPECT_EQ(T.str(), "T");
  EXPECT_EQ((DimExpr(8) * T).str(), "8*T");
  EXPECT_EQ((T + 1).str(), "T+1");
  EXPECT_EQ((DimExpr(1) + T).str(), "T+1");
  EXPECT_EQ((T - 1).str(), "T-1");
  EXPECT_EQ((DimExpr(8) - T).str(), "-T+8");
  EXPECT_EQ((T * U * 2 + T).str(), "2*T*U+T");
  EXPECT_EQ((T * T).str(), "T*T");
  EXPECT_EQ(DimExpr(0).str(), "0");
  EXPECT_EQ(DimExpr(-3).str(), "-3");
}

TEST(DimExpr, ConstantsAndEvaluation) {
  EXPECT_TRUE(DimExpr(5).isConstant());
  EXPECT_EQ(DimExpr(5).getConstant(), 5);
  EXPECT_FALSE(T.getConstant().has_value());
  SymbolBindings b;
  b["T"] = 7;
  EXPECT_EQ((T * 8 + 1).evaluate(b), 57);
  EXPECT_FALSE((T * U).evaluate(b).has_value());
}

TEST(DimExpr, ExactDivision) {
  EXPECT_EQ((T * 8).divExact(8), T);
  EXPECT_FALSE((T * 8 + 1).divExact(8).has_value());
  EXPECT_EQ((T * 64).divExact(T), DimExpr(64));
  EXPECT_EQ((T * U * 4).divExact(T * 2), U * 2);
  EXPECT_FALSE(DimExpr(64).divExact(T).has_value());
  EXPECT_EQ((T + 1).divExact(T + 1), DimExpr(1));
}

TEST(DimExpr, MultiplesAndBounds) {
  EXPECT_TRUE((T * 32).isMultipleOf(32));
  EXPECT_FALSE((T * 32 + 16).isMultipleOf(32));
  EXPECT_TRUE(DimExpr(2048).isMultipleOf(32));
  SymbolRanges r;
  r["T"] = {1, 16};
  auto b = (T * 2 - 1).bounds(r);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->first, 1);
  EXPECT_EQ(b->second, 31);
  EXPECT_FALSE(U.bounds(r).has_value());
}

TEST(DimExpr, Substitution) {
  EXPECT_EQ((T * 8 + 1).substitute("T", DimExpr(7)), DimExpr(57));
  EXPECT_EQ((T * T).substitute("T", U + 1), U * U + U * 2 + 1);
}
