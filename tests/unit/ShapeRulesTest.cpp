//===- ShapeRulesTest.cpp - The op table's shape rules --------------------===//
//
// Every shape rule of ir/Ops.def, positive and negative, through the two entry
// points the rest of the compiler uses: moe::inferResultType (the Builder's:
// operand count + shape rule) and moe::checkOp (the parser's and verifier's:
// operand count, attribute names/kinds/required ones, block-quantised operands,
// then the shape rule). Expected results follow DESIGN.md ("Ops").
//
//===----------------------------------------------------------------------===//
#include "ir/Builder.h"
#include "tests/unit/IRTestUtil.h"
#include "ir/ShapeRules.h"
#include "ir/Verifier.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

using namespace moe;
using namespace moe::test;

namespace {

const DimExpr U = DimExpr::symbol("U");

TensorType ty(Shape dims, ElemType e = ElemType::F32) { return TensorType(std::move(dims), e); }

SymbolRanges ranges(int64_t lo = 1, int64_t hi = 8192) {
  SymbolRanges r;
  r["T"] = SymbolRange{lo, hi};
  return r;
}

Attribute I(int64_t v) { return Attribute::getInt(v); }
Attribute F(double v) { return Attribute::getFloat(v); }
Attribute Flag() { return Attribute::getBool(true); }
Attribute Dims(std::initializer_list<DimExpr> l) { return Attribute::getDims(Shape(l)); }
Attribute Ints(std::initializer_list<int64_t> l) { return Attribute::getInts(std::vector<int64_t>(l)); }
Attribute Ident(const char *s) { return Attribute::getIdent(s); }

/// Result of checkOp as a type or the error text.
struct Outcome {
  std::optional<TensorType> type;
  std::string error;
};

Outcome check(OpKind k, std::vector<TensorType> ops, AttrDict a = {},
              const SymbolRanges &r = ranges(), const TensorType *written = nullptr) {
  auto t = checkOp(k, ops, a, r, written);
  if (!t)
    return {std::nullopt, llvm::toString(t.takeError())};
  return {*t, ""};
}

Outcome infer(OpKind k, std::vector<TensorType> ops, AttrDict a = {},
              const SymbolRanges &r = ranges()) {
  auto t = inferResultType(k, ops, a, r);
  if (!t)
    return {std::nullopt, llvm::toString(t.takeError())};
  return {*t, ""};
}

/// Both entry points agree on the result type.
#define EXPECT_TYPE(KIND, OPS, ATTRS, RANGES, EXPECTED)                        \
  do {                                                                         \
    auto c_ = check(KIND, OPS, ATTRS, RANGES);                                 \
    ASSERT_TRUE(c_.type.has_value()) << "checkOp: " << c_.error;               \
    EXPECT_EQ(c_.type->str(), (EXPECTED).str());                               \
    auto i_ = infer(KIND, OPS, ATTRS, RANGES);                                 \
    ASSERT_TRUE(i_.type.has_value()) << "inferResultType: " << i_.error;       \
    EXPECT_EQ(i_.type->str(), (EXPECTED).str());                               \
  } while (0)

/// checkOp rejects, with a message containing SUBSTR.
#define EXPECT_CHECK_ERROR(KIND, OPS, ATTRS, RANGES, SUBSTR)                   \
  do {                                                                         \
    auto c_ = check(KIND, OPS, ATTRS, RANGES);                                 \
    ASSERT_FALSE(c_.type.has_value()) << "accepted as " << c_.type->str();     \
    EXPECT_NE(c_.error.find(SUBSTR), std::string::npos) << c_.error;           \
  } while (0)

/// A shape-rule violation: both entry points reject it.
#define EXPECT_SHAPE_ERROR(KIND, OPS, ATTRS, RANGES, SUBSTR)                   \
  do {                                                                         \
    EXPECT_CHECK_ERROR(KIND, OPS, ATTRS, RANGES, SUBSTR);                      \
    auto i_ = infer(KIND, OPS, ATTRS, RANGES);                                 \
    EXPECT_FALSE(i_.type.has_value()) << "inferResultType accepted as "        \
                                      << i_.type->str();                       \
  } while (0)

using Ops = std::vector<TensorType>;

} // namespace

//===----------------------------------------------------------------------===//
// Elementwise binary: numpy broadcasting on symbolic dims.
//===----------------------------------------------------------------------===//

TEST(ShapeRules, BroadcastSymbolicWithStatic) {
  // T x 1 x 64 with 8 x 64 -> T x 8 x 64 (both operand orders).
  EXPECT_TYPE(OpKind::Add, (Ops{f32({T, 1, 64}), f32({8, 64})}), {}, ranges(),
              f32({T, 8, 64}));
  EXPECT_TYPE(OpKind::Add, (Ops{f32({8, 64}), f32({T, 1, 64})}), {}, ranges(),
              f32({T, 8, 64}));
  EXPECT_TYPE(OpKind::Mul, (Ops{f32({T, 8, 64}), f32({T, 8, 1})}), {}, ranges(),
              f32({T, 8, 64}));
  EXPECT_TYPE(OpKind::Div, (Ops{f32({T, 8}), f32({T, 1})}), {}, ranges(), f32({T, 8}));
  // A 1 broadcasts against a symbolic dim; rank 0 against anything.
  EXPECT_TYPE(OpKind::Sub, (Ops{f32({1, 64}), f32({T, 64})}), {}, ranges(), f32({T, 64}));
  EXPECT_TYPE(OpKind::Max, (Ops{f32({T, 64}), f32({})}), {}, ranges(), f32({T, 64}));
  EXPECT_TYPE(OpKind::Min, (Ops{f32({}), f32({})}), {}, ranges(), f32({}));
  // Equal canonical forms are equal dims: T+T is 2*T.
  EXPECT_TYPE(OpKind::Add, (Ops{f32({T + T, 4}), f32({DimExpr(2) * T, 4})}), {}, ranges(),
              f32({DimExpr(2) * T, 4}));
  // Element type is kept.
  EXPECT_TYPE(OpKind::Add, (Ops{ty({T, 4}, ElemType::F16), ty({T, 4}, ElemType::F16)}), {},
              ranges(), ty({T, 4}, ElemType::F16));
}

TEST(ShapeRules, BroadcastIncompatible) {
  // T is not 7, even though T may take the value 7.
  EXPECT_SHAPE_ERROR(OpKind::Add, (Ops{f32({T, 64}), f32({7, 64})}), {}, ranges(),
                     "broadcast");
  EXPECT_SHAPE_ERROR(OpKind::Mul, (Ops{f32({T}), f32({T + 1})}), {}, ranges(), "broadcast");
  EXPECT_SHAPE_ERROR(OpKind::Sub, (Ops{f32({T, 64}), f32({T, 32})}), {}, ranges(),
                     "broadcast");
  EXPECT_SHAPE_ERROR(OpKind::Max, (Ops{f32({T, 64}), f32({U, 64})}), {}, ranges(),
                     "broadcast");
  // Different element types.
  EXPECT_SHAPE_ERROR(OpKind::Add, (Ops{f32({T, 64}), ty({T, 64}, ElemType::F16)}), {},
                     ranges(), "element type");
}

TEST(ShapeRules, BinaryOpsAllShareTheBroadcastRule) {
  for (OpKind k : {OpKind::Add, OpKind::Sub, OpKind::Mul, OpKind::Div, OpKind::Max,
                   OpKind::Min}) {
    SCOPED_TRACE(getOpInfo(k).name.str());
    EXPECT_TYPE(k, (Ops{f32({T, 1, 64}), f32({8, 64})}), {}, ranges(), f32({T, 8, 64}));
    EXPECT_SHAPE_ERROR(k, (Ops{f32({T}), f32({7})}), {}, ranges(), "broadcast");
    EXPECT_CHECK_ERROR(k, (Ops{f32({T})}), {}, ranges(), "expects 2 operands, got 1");
  }
}

//===----------------------------------------------------------------------===//
// Elementwise unary.
//===----------------------------------------------------------------------===//

TEST(ShapeRules, UnaryKeepTheType) {
  for (OpKind k : {OpKind::Neg, OpKind::Exp, OpKind::Log, OpKind::Sqr, OpKind::Sqrt,
                   OpKind::Rsqrt, OpKind::Abs, OpKind::Tanh, OpKind::Sigmoid,
                   OpKind::Softplus, OpKind::Relu, OpKind::Silu, OpKind::Gelu,
                   OpKind::GeluErf}) {
    SCOPED_TRACE(getOpInfo(k).name.str());
    EXPECT_TYPE(k, (Ops{f32({T, 64})}), {}, ranges(), f32({T, 64}));
    EXPECT_TYPE(k, (Ops{ty({T, 8}, ElemType::BF16)}), {}, ranges(),
                ty({T, 8}, ElemType::BF16));
    EXPECT_TYPE(k, (Ops{f32({})}), {}, ranges(), f32({}));
    EXPECT_SHAPE_ERROR(k, (Ops{i32({T, 64})}), {}, ranges(), "f32");
    EXPECT_CHECK_ERROR(k, (Ops{ty({8, 64}, ElemType::Q8_0)}), {}, ranges(),
                       "block-quantised");
    EXPECT_CHECK_ERROR(k, (Ops{f32({T}), f32({T})}), {}, ranges(), "expects 1 operand, got 2");
    // These ops take no attributes at all.
    EXPECT_CHECK_ERROR(k, (Ops{f32({T})}), attrs({{"axis", I(0)}}), ranges(),
                       "has no attribute 'axis'");
  }
}

TEST(ShapeRules, UnaryWithAttributes) {
  EXPECT_TYPE(OpKind::Pow, (Ops{f32({T, 64})}), attrs({{"exponent", F(2.0)}}), ranges(),
              f32({T, 64}));
  // An integer is a number where a float is expected.
  EXPECT_TYPE(OpKind::Pow, (Ops{f32({T, 64})}), attrs({{"exponent", I(2)}}), ranges(),
              f32({T, 64}));
  EXPECT_CHECK_ERROR(OpKind::Pow, (Ops{f32({T, 64})}), {}, ranges(),
                     "requires attribute 'exponent'");

  EXPECT_TYPE(OpKind::Scale, (Ops{f32({T, 64})}), attrs({{"factor", F(0.125)}}), ranges(),
              f32({T, 64}));
  EXPECT_TYPE(OpKind::Scale, (Ops{f32({T, 64})}),
              attrs({{"factor", F(0.5)}, {"bias", F(1.0)}}), ranges(), f32({T, 64}));
  EXPECT_CHECK_ERROR(OpKind::Scale, (Ops{f32({T, 64})}), attrs({{"bias", F(1.0)}}), ranges(),
                     "requires attribute 'factor'");

  // clamp takes min, max or both, never neither.
  EXPECT_TYPE(OpKind::Clamp, (Ops{f32({T, 1})}), attrs({{"min", F(6.1e-5)}}), ranges(),
              f32({T, 1}));
  EXPECT_TYPE(OpKind::Clamp, (Ops{f32({T, 1})}), attrs({{"max", F(7.0)}}), ranges(),
              f32({T, 1}));
  EXPECT_TYPE(OpKind::Clamp, (Ops{f32({T, 1})}), attrs({{"min", F(-7.0)}, {"max", F(7.0)}}),
              ranges(), f32({T, 1}));
  EXPECT_CHECK_ERROR(OpKind::Clamp, (Ops{f32({T, 1})}), {}, ranges(), "'min', 'max' or both");
}

TEST(ShapeRules, Cast) {
  EXPECT_TYPE(OpKind::Cast, (Ops{f32({T, 64})}), attrs({{"to", Ident("f16")}}), ranges(),
              ty({T, 64}, ElemType::F16));
  EXPECT_TYPE(OpKind::Cast, (Ops{ty({T, 64}, ElemType::BF16)}), attrs({{"to", Ident("f32")}}),
              ranges(), f32({T, 64}));
  EXPECT_TYPE(OpKind::Cast, (Ops{f32({T, 64})}), attrs({{"to", Ident("i32")}}), ranges(),
              i32({T, 64}));
  EXPECT_CHECK_ERROR(OpKind::Cast, (Ops{f32({T, 64})}), {}, ranges(), "'to'");
  EXPECT_CHECK_ERROR(OpKind::Cast, (Ops{f32({T, 64})}), attrs({{"to", Ident("f64")}}),
                     ranges(), "element type");
  EXPECT_CHECK_ERROR(OpKind::Cast, (Ops{f32({T, 64})}), attrs({{"to", I(1)}}), ranges(),
                     "attribute 'to' must be an element type");
  // Never to or from a block-quantised type.
  EXPECT_SHAPE_ERROR(OpKind::Cast, (Ops{f32({8, 64})}), attrs({{"to", Ident("q8_0")}}),
                     ranges(), "block-quantised");
  EXPECT_CHECK_ERROR(OpKind::Cast, (Ops{ty({8, 64}, ElemType::Q4_0)}),
                     attrs({{"to", Ident("f32")}}), ranges(), "block-quantised");
}

//===----------------------------------------------------------------------===//
// Gated linear units.
//===----------------------------------------------------------------------===//

TEST(ShapeRules, Glu) {
  Ops ok{f32({T, 8, 768}), f32({T, 8, 768})};
  EXPECT_TYPE(OpKind::Swiglu, ok, {}, ranges(), f32({T, 8, 768}));
  EXPECT_TYPE(OpKind::Geglu, ok, {}, ranges(), f32({T, 8, 768}));
  EXPECT_TYPE(OpKind::SwigluOai, ok, attrs({{"alpha", F(1.702)}, {"limit", F(7.0)}}),
              ranges(), f32({T, 8, 768}));
  EXPECT_CHECK_ERROR(OpKind::SwigluOai, ok, attrs({{"alpha", F(1.702)}}), ranges(),
                     "requires attribute 'limit'");
  EXPECT_CHECK_ERROR(OpKind::SwigluOai, ok, attrs({{"limit", F(7.0)}}), ranges(),
                     "requires attribute 'alpha'");
  // Gate and up must match exactly (no broadcasting).
  EXPECT_SHAPE_ERROR(OpKind::Swiglu, (Ops{f32({T, 8, 768}), f32({T, 8, 1})}), {}, ranges(),
                     "same type");
  EXPECT_SHAPE_ERROR(OpKind::Geglu, (Ops{f32({T, 8, 768}), f32({T, 8, 384})}), {}, ranges(),
                     "same type");
  EXPECT_SHAPE_ERROR(OpKind::Swiglu, (Ops{i32({T, 8}), i32({T, 8})}), {}, ranges(), "f32");
}

//===----------------------------------------------------------------------===//
// Linear: matmul, matmul_id, add_id.
//===----------------------------------------------------------------------===//

TEST(ShapeRules, Matmul) {
  // x[..., M, K] times w[N, K] -> [..., M, N].
  EXPECT_TYPE(OpKind::Matmul, (Ops{f32({T, 2048}), f32({128, 2048})}), {}, ranges(),
              f32({T, 128}));
  EXPECT_TYPE(OpKind::Matmul, (Ops{f32({4, T, 64}), f32({8, 64})}), {}, ranges(),
              f32({4, T, 8}));
  EXPECT_TYPE(OpKind::Matmul, (Ops{f32({T, 64}), f32({U, 64})}), {}, ranges(), f32({T, U}));
  // Block-quantised weights are allowed; the result is f32.
  for (ElemType e : {ElemType::Q8_0, ElemType::Q4_0, ElemType::MXFP4, ElemType::BF16,
                     ElemType::F16}) {
    SCOPED_TRACE(elemTypeName(e).str());
    EXPECT_TYPE(OpKind::Matmul, (Ops{f32({T, 64}), ty({32, 64}, e)}), {}, ranges(),
                f32({T, 32}));
  }
  // K mismatch.
  EXPECT_SHAPE_ERROR(OpKind::Matmul, (Ops{f32({T, 64}), f32({8, 32})}), {}, ranges(),
                     "contraction dim K");
  EXPECT_SHAPE_ERROR(OpKind::Matmul, (Ops{f32({64, T}), f32({8, 64})}), {}, ranges(),
                     "contraction dim K");
  // Ranks.
  EXPECT_SHAPE_ERROR(OpKind::Matmul, (Ops{f32({64}), f32({8, 64})}), {}, ranges(), "rank");
  EXPECT_SHAPE_ERROR(OpKind::Matmul, (Ops{f32({T, 64}), f32({2, 8, 64})}), {}, ranges(),
                     "rank");
  // A quantised activation is not allowed (only operand #1 may be).
  EXPECT_CHECK_ERROR(OpKind::Matmul, (Ops{ty({T, 64}, ElemType::Q8_0), f32({8, 64})}), {},
                     ranges(), "operand #0 cannot be block-quantised");
  EXPECT_SHAPE_ERROR(OpKind::Matmul, (Ops{f32({T, 64}), i32({8, 64})}), {}, ranges(),
                     "weight");
}

TEST(ShapeRules, MatmulId) {
  Ops b1{f32({T, 1, 2048}), ty({128, 768, 2048}, ElemType::Q8_0), i32({T, 8})};
  // B = 1 broadcasts over the k selected experts.
  EXPECT_TYPE(OpKind::MatmulId, b1, {}, ranges(), f32({T, 8, 768}));
  // B = k: one input row per selected expert.
  EXPECT_TYPE(OpKind::MatmulId,
              (Ops{f32({T, 8, 768}), ty({128, 2048, 768}, ElemType::Q4_0), i32({T, 8})}), {},
              ranges(), f32({T, 8, 2048}));
  EXPECT_TYPE(OpKind::MatmulId, (Ops{f32({T, 2, 64}), f32({4, 32, 64}), i32({T, 2})}), {},
              ranges(), f32({T, 2, 32}));
  // B neither 1 nor k.
  EXPECT_SHAPE_ERROR(OpKind::MatmulId, (Ops{f32({T, 3, 64}), f32({4, 32, 64}), i32({T, 2})}),
                     {}, ranges(), "B must be 1 or k");
  // K mismatch.
  EXPECT_SHAPE_ERROR(OpKind::MatmulId, (Ops{f32({T, 1, 64}), f32({4, 32, 48}), i32({T, 2})}),
                     {}, ranges(), "contraction dim K");
  // ids: i32, rank 2, same token dim.
  EXPECT_SHAPE_ERROR(OpKind::MatmulId, (Ops{f32({T, 1, 64}), f32({4, 32, 64}), f32({T, 2})}),
                     {}, ranges(), "i32");
  EXPECT_SHAPE_ERROR(OpKind::MatmulId, (Ops{f32({T, 1, 64}), f32({4, 32, 64}), i32({7, 2})}),
                     {}, ranges(), "token dim T");
  EXPECT_SHAPE_ERROR(OpKind::MatmulId, (Ops{f32({T, 1, 64}), f32({4, 32, 64}), i32({T})}), {},
                     ranges(), "rank");
  EXPECT_SHAPE_ERROR(OpKind::MatmulId, (Ops{f32({T, 64}), f32({4, 32, 64}), i32({T, 2})}), {},
                     ranges(), "rank");
  EXPECT_SHAPE_ERROR(OpKind::MatmulId, (Ops{f32({T, 1, 64}), f32({32, 64}), i32({T, 2})}), {},
                     ranges(), "rank");
  // Quantised input or ids are rejected.
  EXPECT_CHECK_ERROR(OpKind::MatmulId,
                     (Ops{ty({T, 1, 64}, ElemType::Q8_0), f32({4, 32, 64}), i32({T, 2})}), {},
                     ranges(), "operand #0 cannot be block-quantised");
  EXPECT_CHECK_ERROR(OpKind::MatmulId, (Ops{f32({T, 1, 64}), f32({4, 32, 64})}), {}, ranges(),
                     "expects 3 operands, got 2");
}

TEST(ShapeRules, MatmulAct) {
  auto act = [](const char *a) { return attrs({{"act", Ident(a)}}); };
  // Each weight type takes f32 and its vec_dot_type; nothing else.
  struct Case { ElemType w; const char *ok; const char *bad; const char *msg; };
  for (auto c : {Case{ElemType::Q8_0, "q8_0", "bf16", "needs bf16 weights"},
                 Case{ElemType::Q4_0, "q8_0", "bf16", "needs bf16 weights"},
                 Case{ElemType::MXFP4, "q8_0", "bf16", "needs bf16 weights"},
                 Case{ElemType::BF16, "bf16", "q8_0", "needs q8_0, q4_0 or mxfp4 weights"},
                 Case{ElemType::F16, "f32", "bf16", "needs bf16 weights"},
                 Case{ElemType::F32, "f32", "q8_0", "needs q8_0, q4_0 or mxfp4 weights"}}) {
    SCOPED_TRACE(elemTypeName(c.w).str());
    EXPECT_EQ(elemTypeName(vecDotType(c.w)), c.ok);
    EXPECT_TYPE(OpKind::Matmul, (Ops{f32({T, 64}), ty({8, 64}, c.w)}), act("f32"), ranges(),
                f32({T, 8}));
    EXPECT_TYPE(OpKind::Matmul, (Ops{f32({T, 64}), ty({8, 64}, c.w)}), act(c.ok), ranges(),
                f32({T, 8}));
    EXPECT_TYPE(OpKind::MatmulId, (Ops{f32({T, 1, 64}), ty({4, 8, 64}, c.w), i32({T, 2})}),
                act(c.ok), ranges(), f32({T, 2, 8}));
    EXPECT_SHAPE_ERROR(OpKind::Matmul, (Ops{f32({T, 64}), ty({8, 64}, c.w)}), act(c.bad),
                       ranges(), c.msg);
    EXPECT_SHAPE_ERROR(OpKind::MatmulId,
                       (Ops{f32({T, 1, 64}), ty({4, 8, 64}, c.w), i32({T, 2})}), act(c.bad),
                       ranges(), c.msg);
  }
  // A contraction dim that is not a multiple of 32 (unreachable through the
  // verifier, which already requires it of block-quantised params).
  EXPECT_SHAPE_ERROR(OpKind::Matmul, (Ops{f32({T, 48}), ty({8, 48}, ElemType::Q8_0)}),
                     act("q8_0"), ranges(), "multiple of 32, got 48");
  EXPECT_TYPE(OpKind::Matmul, (Ops{f32({T, T * DimExpr(32)}), ty({8, T * DimExpr(32)}, ElemType::Q4_0)}),
              act("q8_0"), ranges(), f32({T, 8}));
  // Not an activation precision; not an element type.
  EXPECT_SHAPE_ERROR(OpKind::Matmul, (Ops{f32({T, 64}), ty({8, 64}, ElemType::F16)}),
                     act("f16"), ranges(), "not an activation precision");
  EXPECT_CHECK_ERROR(OpKind::Matmul, (Ops{f32({T, 64}), f32({8, 64})}), act("f64"), ranges(),
                     "attribute 'act' must be an element type");
  // The default, read through the op table.
  EXPECT_EQ(activationType(getOpInfo(OpKind::Matmul), {}), ElemType::F32);
  EXPECT_EQ(activationType(getOpInfo(OpKind::MatmulId), act("q8_0")), ElemType::Q8_0);
}

TEST(ShapeRules, AddId) {
  Ops ok{f32({T, 4, 64}), f32({32, 64}), i32({T, 4})};
  EXPECT_TYPE(OpKind::AddId, ok, {}, ranges(), f32({T, 4, 64}));
  EXPECT_SHAPE_ERROR(OpKind::AddId, (Ops{f32({T, 4, 64}), f32({32, 48}), i32({T, 4})}), {},
                     ranges(), "dim N");
  EXPECT_SHAPE_ERROR(OpKind::AddId, (Ops{f32({T, 4, 64}), f32({32, 64}), i32({T, 2})}), {},
                     ranges(), "k");
  EXPECT_SHAPE_ERROR(OpKind::AddId, (Ops{f32({T, 4, 64}), f32({32, 64}), i32({7, 4})}), {},
                     ranges(), "token dim T");
  EXPECT_SHAPE_ERROR(OpKind::AddId, (Ops{f32({T, 4, 64}), f32({32, 64}), f32({T, 4})}), {},
                     ranges(), "i32");
  EXPECT_SHAPE_ERROR(OpKind::AddId, (Ops{f32({T, 64}), f32({32, 64}), i32({T, 4})}), {},
                     ranges(), "rank");
  // A quantised bias is not allowed (add_id allows no quantised operand).
  EXPECT_CHECK_ERROR(OpKind::AddId,
                     (Ops{f32({T, 4, 64}), ty({32, 64}, ElemType::Q8_0), i32({T, 4})}), {},
                     ranges(), "operand #1 cannot be block-quantised");
}

//===----------------------------------------------------------------------===//
// Reductions, softmax, argsort, topk.
//===----------------------------------------------------------------------===//

TEST(ShapeRules, Reductions) {
  for (OpKind k : {OpKind::ReduceSum, OpKind::ReduceMean, OpKind::ReduceMax}) {
    SCOPED_TRACE(getOpInfo(k).name.str());
    Ops x{f32({T, 8, 64})};
    EXPECT_TYPE(k, x, attrs({{"axis", I(1)}}), ranges(), f32({T, 64}));
    EXPECT_TYPE(k, x, attrs({{"axis", I(0)}}), ranges(), f32({8, 64}));
    // Negative axes count from the end.
    EXPECT_TYPE(k, x, attrs({{"axis", I(-1)}}), ranges(), f32({T, 8}));
    EXPECT_TYPE(k, x, attrs({{"axis", I(-3)}}), ranges(), f32({8, 64}));
    // keepdim keeps the axis as size 1.
    EXPECT_TYPE(k, x, attrs({{"axis", I(1)}, {"keepdim", Flag()}}), ranges(),
                f32({T, 1, 64}));
    EXPECT_TYPE(k, x, attrs({{"axis", I(-3)}, {"keepdim", Flag()}}), ranges(),
                f32({1, 8, 64}));
    EXPECT_TYPE(k, (Ops{f32({T})}), attrs({{"axis", I(0)}}), ranges(), f32({}));
    // Out of range.
    EXPECT_SHAPE_ERROR(k, x, attrs({{"axis", I(3)}}), ranges(), "out of range");
    EXPECT_SHAPE_ERROR(k, x, attrs({{"axis", I(-4)}}), ranges(), "out of range");
    EXPECT_SHAPE_ERROR(k, (Ops{f32({})}), attrs({{"axis", I(0)}}), ranges(), "out of range");
    // Attribute errors.
    EXPECT_CHECK_ERROR(k, x, {}, ranges(), "requires attribute 'axis'");
    EXPECT_CHECK_ERROR(k, x, attrs({{"axis", F(1.5)}}), ranges(),
                       "attribute 'axis' must be an integer");
    EXPECT_CHECK_ERROR(k, x, attrs({{"axis", Attribute::getDim(T)}}), ranges(),
                       "attribute 'axis' must be an integer");
    EXPECT_CHECK_ERROR(k, x, attrs({{"axis", I(1)}, {"keepdim", I(1)}}), ranges(),
                       "attribute 'keepdim' must be a flag");
    EXPECT_CHECK_ERROR(k, x, attrs({{"axis", I(1)}, {"keep", Flag()}}), ranges(),
                       "has no attribute 'keep'");
    EXPECT_SHAPE_ERROR(k, (Ops{i32({T, 8})}), attrs({{"axis", I(1)}}), ranges(), "f32");
  }
}

TEST(ShapeRules, SoftmaxDefaultAxis) {
  // Default axis is -1; softmax keeps the type.
  EXPECT_TYPE(OpKind::Softmax, (Ops{f32({T, 128})}), {}, ranges(), f32({T, 128}));
  EXPECT_TYPE(OpKind::Softmax, (Ops{f32({T, 128})}), attrs({{"axis", I(-1)}}), ranges(),
              f32({T, 128}));
  EXPECT_TYPE(OpKind::Softmax, (Ops{f32({T, 128})}), attrs({{"axis", I(0)}}), ranges(),
              f32({T, 128}));
  EXPECT_SHAPE_ERROR(OpKind::Softmax, (Ops{f32({T, 128})}), attrs({{"axis", I(2)}}), ranges(),
                     "out of range");
  // The default -1 is out of range for a rank-0 operand.
  EXPECT_SHAPE_ERROR(OpKind::Softmax, (Ops{f32({})}), {}, ranges(), "out of range");
  EXPECT_CHECK_ERROR(OpKind::Softmax, (Ops{f32({T, 128})}), attrs({{"axis", F(1.0)}}),
                     ranges(), "must be an integer");
}

TEST(ShapeRules, Argsort) {
  EXPECT_TYPE(OpKind::Argsort, (Ops{f32({T, 128})}), {}, ranges(), i32({T, 128}));
  EXPECT_TYPE(OpKind::Argsort, (Ops{f32({T, 128})}), attrs({{"desc", Flag()}}), ranges(),
              i32({T, 128}));
  EXPECT_SHAPE_ERROR(OpKind::Argsort, (Ops{f32({})}), {}, ranges(), "rank");
  EXPECT_CHECK_ERROR(OpKind::Argsort, (Ops{f32({T, 8})}), attrs({{"k", I(1)}}), ranges(),
                     "has no attribute 'k'");
}

TEST(ShapeRules, Topk) {
  EXPECT_TYPE(OpKind::Topk, (Ops{f32({T, 128})}), attrs({{"k", I(8)}}), ranges(),
              i32({T, 8}));
  EXPECT_TYPE(OpKind::Topk, (Ops{f32({T, 128})}), attrs({{"k", I(128)}}), ranges(),
              i32({T, 128}));
  // k > dim.
  EXPECT_SHAPE_ERROR(OpKind::Topk, (Ops{f32({T, 128})}), attrs({{"k", I(129)}}), ranges(),
                     "exceeds");
  EXPECT_SHAPE_ERROR(OpKind::Topk, (Ops{f32({T, 128})}), attrs({{"k", I(0)}}), ranges(),
                     "k must be >= 1");
  // k <= a symbolic dim only when provable from the symbol's range.
  EXPECT_SHAPE_ERROR(OpKind::Topk, (Ops{f32({4, T})}), attrs({{"k", I(8)}}), ranges(1, 8192),
                     "exceeds");
  EXPECT_TYPE(OpKind::Topk, (Ops{f32({4, T})}), attrs({{"k", I(8)}}), ranges(8, 8192),
              i32({4, 8}));
  EXPECT_TYPE(OpKind::Topk, (Ops{f32({4, DimExpr(2) * T})}), attrs({{"k", I(8)}}),
              ranges(4, 16), i32({4, 8}));
  EXPECT_SHAPE_ERROR(OpKind::Topk, (Ops{f32({4, DimExpr(2) * T})}), attrs({{"k", I(9)}}),
                     ranges(4, 16), "exceeds");
  EXPECT_CHECK_ERROR(OpKind::Topk, (Ops{f32({T, 128})}), {}, ranges(), "requires attribute 'k'");
  EXPECT_CHECK_ERROR(OpKind::Topk, (Ops{f32({T, 128})}), attrs({{"k", F(8.0)}}), ranges(),
                     "attribute 'k' must be an integer");
  EXPECT_SHAPE_ERROR(OpKind::Topk, (Ops{i32({T, 128})}), attrs({{"k", I(8)}}), ranges(), "f32");
}

//===----------------------------------------------------------------------===//
// Norms.
//===----------------------------------------------------------------------===//

TEST(ShapeRules, NormWeightsBroadcast) {
  AttrDict eps = attrs({{"eps", F(1.0e-6)}});
  EXPECT_TYPE(OpKind::RmsNorm, (Ops{f32({T, 64})}), eps, ranges(), f32({T, 64}));
  EXPECT_TYPE(OpKind::RmsNorm, (Ops{f32({T, 64}), f32({64})}), eps, ranges(), f32({T, 64}));
  EXPECT_TYPE(OpKind::RmsNorm, (Ops{f32({T, 64}), f32({1, 64})}), eps, ranges(), f32({T, 64}));
  EXPECT_TYPE(OpKind::RmsNorm, (Ops{f32({T, 64}), f32({T, 64})}), eps, ranges(), f32({T, 64}));
  EXPECT_TYPE(OpKind::LayerNorm, (Ops{f32({T, 64}), f32({64}), f32({64})}), eps, ranges(),
              f32({T, 64}));
  // A weight that does not broadcast to the input, or would grow it.
  EXPECT_SHAPE_ERROR(OpKind::RmsNorm, (Ops{f32({T, 64}), f32({32})}), eps, ranges(),
                     "does not broadcast");
  EXPECT_SHAPE_ERROR(OpKind::RmsNorm, (Ops{f32({T, 64}), f32({4, T, 64})}), eps, ranges(),
                     "does not broadcast");
  EXPECT_SHAPE_ERROR(OpKind::RmsNorm, (Ops{f32({1, 64}), f32({T, 64})}), eps, ranges(),
                     "does not broadcast");
  EXPECT_SHAPE_ERROR(OpKind::LayerNorm, (Ops{f32({T, 64}), f32({64}), f32({7})}), eps,
                     ranges(), "operand #2");
  EXPECT_CHECK_ERROR(OpKind::RmsNorm, (Ops{f32({T, 64}), f32({64}), f32({64})}), eps, ranges(),
                     "expects 1 to 2 operands, got 3");
  EXPECT_CHECK_ERROR(OpKind::RmsNorm, (Ops{f32({T, 64})}), {}, ranges(),
                     "requires attribute 'eps'");
  EXPECT_CHECK_ERROR(OpKind::RmsNorm, (Ops{f32({T, 64}), ty({64}, ElemType::Q8_0)}), eps,
                     ranges(), "block-quantised");
}

//===----------------------------------------------------------------------===//
// gather: DESIGN.md's exact rule.
//===----------------------------------------------------------------------===//

TEST(ShapeRules, GatherTakeAlongAxis) {
  // gather probs[T,E], ids[T,k] {axis = 1} -> [T,k] (take_along_axis).
  EXPECT_TYPE(OpKind::Gather, (Ops{f32({T, 128}), i32({T, 8})}), attrs({{"axis", I(1)}}),
              ranges(), f32({T, 8}));
  // Negative axis: -1 is axis 1 here.
  EXPECT_TYPE(OpKind::Gather, (Ops{f32({T, 128}), i32({T, 8})}), attrs({{"axis", I(-1)}}),
              ranges(), f32({T, 8}));
  // Batch dims + rest of idx + src dims after the axis: src[T,E,N], ids[T,k] axis 1.
  EXPECT_TYPE(OpKind::Gather, (Ops{f32({T, 8, 64}), i32({T, 2})}), attrs({{"axis", I(1)}}),
              ranges(), f32({T, 2, 64}));
  // idx that is exactly the batch dims: src[T,E], ids[T] axis 1 -> [T].
  EXPECT_TYPE(OpKind::Gather, (Ops{f32({T, 128}), i32({T})}), attrs({{"axis", I(1)}}),
              ranges(), f32({T}));
  // src[T,E,N], ids[T,k,j] axis 1 -> [T,k,j,N].
  EXPECT_TYPE(OpKind::Gather, (Ops{f32({T, 8, 64}), i32({T, 2, 3})}), attrs({{"axis", I(1)}}),
              ranges(), f32({T, 2, 3, 64}));
}

TEST(ShapeRules, GatherTake) {
  // gather s[E], ids[T,k] {axis = 0} -> [T,k] (NumPy take).
  EXPECT_TYPE(OpKind::Gather, (Ops{f32({128}), i32({T, 8})}), attrs({{"axis", I(0)}}),
              ranges(), f32({T, 8}));
  // ggml get_rows: table[V, D], ids[T] axis 0 -> [T, D].
  EXPECT_TYPE(OpKind::Gather, (Ops{f32({1000, 64}), i32({T})}), attrs({{"axis", I(0)}}),
              ranges(), f32({T, 64}));
  EXPECT_TYPE(OpKind::Gather, (Ops{ty({1000, 64}, ElemType::F16), i32({T, 2})}),
              attrs({{"axis", I(0)}}), ranges(), ty({T, 2, 64}, ElemType::F16));
}

TEST(ShapeRules, GatherQuantisedSourceGivesF32) {
  for (ElemType e : {ElemType::Q8_0, ElemType::Q4_0, ElemType::MXFP4}) {
    SCOPED_TRACE(elemTypeName(e).str());
    EXPECT_TYPE(OpKind::Gather, (Ops{ty({1000, 64}, e), i32({T})}), attrs({{"axis", I(0)}}),
                ranges(), f32({T, 64}));
  }
  // The indices may not be quantised (only operand #0 may be).
  EXPECT_CHECK_ERROR(OpKind::Gather, (Ops{f32({1000, 64}), ty({T, 32}, ElemType::Q8_0)}),
                     attrs({{"axis", I(0)}}), ranges(), "operand #1 cannot be block-quantised");
}

TEST(ShapeRules, GatherErrors) {
  // Batch dims must match: T is not 7.
  EXPECT_SHAPE_ERROR(OpKind::Gather, (Ops{f32({T, 128}), i32({7, 8})}), attrs({{"axis", I(1)}}),
                     ranges(), "batch dim");
  // idx must at least hold the batch dims.
  EXPECT_SHAPE_ERROR(OpKind::Gather, (Ops{f32({T, 8, 64}), i32({T})}), attrs({{"axis", I(2)}}),
                     ranges(), "batch dims");
  EXPECT_SHAPE_ERROR(OpKind::Gather, (Ops{f32({T, 128}), f32({T, 8})}), attrs({{"axis", I(1)}}),
                     ranges(), "i32");
  EXPECT_SHAPE_ERROR(OpKind::Gather, (Ops{f32({T, 128}), i32({T, 8})}), attrs({{"axis", I(2)}}),
                     ranges(), "out of range");
  EXPECT_CHECK_ERROR(OpKind::Gather, (Ops{f32({T, 128}), i32({T, 8})}), {}, ranges(),
                     "requires attribute 'axis'");
}

//===----------------------------------------------------------------------===//
// Shape ops.
//===----------------------------------------------------------------------===//

TEST(ShapeRules, ReshapeSymbolicElementCount) {
  Ops x{f32({T, 64})};
  EXPECT_TYPE(OpKind::Reshape, x, attrs({{"shape", Dims({T, 8, 8})}}), ranges(),
              f32({T, 8, 8}));
  EXPECT_TYPE(OpKind::Reshape, x, attrs({{"shape", Dims({DimExpr(8) * T, 8})}}), ranges(),
              f32({DimExpr(8) * T, 8}));
  EXPECT_TYPE(OpKind::Reshape, x, attrs({{"shape", Dims({T, 1, 64})}}), ranges(),
              f32({T, 1, 64}));
  EXPECT_TYPE(OpKind::Reshape, x, attrs({{"shape", Dims({DimExpr(64) * T})}}), ranges(),
              f32({DimExpr(64) * T}));
  EXPECT_TYPE(OpKind::Reshape, (Ops{f32({T, T})}), attrs({{"shape", Dims({T * T})}}), ranges(),
              f32({T * T}));
  // [T, 64] to [7, 64]: T*64 is not 448 symbolically.
  EXPECT_SHAPE_ERROR(OpKind::Reshape, x, attrs({{"shape", Dims({7, 64})}}), ranges(),
                     "elements");
  EXPECT_SHAPE_ERROR(OpKind::Reshape, x, attrs({{"shape", Dims({T, 65})}}), ranges(),
                     "elements");
  EXPECT_SHAPE_ERROR(OpKind::Reshape, x, attrs({{"shape", Dims({T + 1, 64})}}), ranges(),
                     "elements");
  EXPECT_SHAPE_ERROR(OpKind::Reshape, x, attrs({{"shape", Dims({-T, -64})}}), ranges(),
                     "negative");
  EXPECT_CHECK_ERROR(OpKind::Reshape, x, {}, ranges(), "requires attribute 'shape'");
  EXPECT_CHECK_ERROR(OpKind::Reshape, x, attrs({{"shape", I(64)}}), ranges(),
                     "attribute 'shape' must be a list of dims");
  EXPECT_CHECK_ERROR(OpKind::Reshape, x,
                     attrs({{"shape", Attribute::getList({F(1.0), I(64)})}}), ranges(),
                     "attribute 'shape' must be a list of dims");
  EXPECT_CHECK_ERROR(OpKind::Reshape, (Ops{ty({8, 64}, ElemType::Q8_0)}),
                     attrs({{"shape", Dims({8, 64})}}), ranges(), "block-quantised");
}

TEST(ShapeRules, Permute) {
  Ops x{f32({T, 8, 64})};
  EXPECT_TYPE(OpKind::Permute, x, attrs({{"perm", Ints({2, 0, 1})}}), ranges(),
              f32({64, T, 8}));
  EXPECT_TYPE(OpKind::Permute, x, attrs({{"perm", Ints({0, 1, 2})}}), ranges(),
              f32({T, 8, 64}));
  EXPECT_TYPE(OpKind::Permute, x, attrs({{"perm", Ints({1, 0, 2})}}), ranges(),
              f32({8, T, 64}));
  EXPECT_SHAPE_ERROR(OpKind::Permute, x, attrs({{"perm", Ints({0, 0, 1})}}), ranges(),
                     "not a permutation");
  EXPECT_SHAPE_ERROR(OpKind::Permute, x, attrs({{"perm", Ints({0, 1, 3})}}), ranges(),
                     "not a permutation");
  EXPECT_SHAPE_ERROR(OpKind::Permute, x, attrs({{"perm", Ints({0, -1, 1})}}), ranges(),
                     "not a permutation");
  EXPECT_SHAPE_ERROR(OpKind::Permute, x, attrs({{"perm", Ints({1, 0})}}), ranges(), "rank");
  EXPECT_CHECK_ERROR(OpKind::Permute, x, attrs({{"perm", Dims({T, 0, 1})}}), ranges(),
                     "attribute 'perm' must be a list of integers");
  EXPECT_CHECK_ERROR(OpKind::Permute, x, {}, ranges(), "requires attribute 'perm'");
}

TEST(ShapeRules, SliceBoundsAgainstSymbolRanges) {
  auto sl = [](int64_t axis, DimExpr start, DimExpr size) {
    return attrs({{"axis", I(axis)},
                  {"start", Attribute::getDim(start)},
                  {"size", Attribute::getDim(size)}});
  };
  Ops x{f32({T, 2, 128})};
  // Static slices of a static axis.
  EXPECT_TYPE(OpKind::Slice, x, sl(2, 0, 64), ranges(), f32({T, 2, 64}));
  EXPECT_TYPE(OpKind::Slice, x, sl(2, 64, 64), ranges(), f32({T, 2, 64}));
  EXPECT_TYPE(OpKind::Slice, x, sl(-1, 64, 64), ranges(), f32({T, 2, 64}));
  EXPECT_SHAPE_ERROR(OpKind::Slice, x, sl(2, 65, 64), ranges(), "exceeds");
  EXPECT_SHAPE_ERROR(OpKind::Slice, x, sl(2, 0, 129), ranges(), "exceeds");
  EXPECT_SHAPE_ERROR(OpKind::Slice, x, sl(2, -1, 64), ranges(), "non-negative");
  EXPECT_SHAPE_ERROR(OpKind::Slice, x, sl(3, 0, 1), ranges(), "out of range");
  // Symbolic bounds on a symbolic axis.
  EXPECT_TYPE(OpKind::Slice, x, sl(0, 0, T), ranges(), f32({T, 2, 128}));
  EXPECT_TYPE(OpKind::Slice, x, sl(0, 1, T - 1), ranges(), f32({T - 1, 2, 128}));
  EXPECT_SHAPE_ERROR(OpKind::Slice, x, sl(0, 1, T), ranges(), "exceeds");
  // A static size on a symbolic axis is legal only when every T in range has room.
  EXPECT_SHAPE_ERROR(OpKind::Slice, x, sl(0, 0, 8), ranges(1, 8192), "exceeds");
  EXPECT_TYPE(OpKind::Slice, x, sl(0, 0, 8), ranges(8, 8192), f32({8, 2, 128}));
  EXPECT_SHAPE_ERROR(OpKind::Slice, x, sl(0, 1, 8), ranges(8, 8192), "exceeds");
  // T-1 may be negative when T can be 0.
  EXPECT_SHAPE_ERROR(OpKind::Slice, x, sl(0, 1, T - 1), ranges(0, 16), "non-negative");
  // Second half of a 2*T axis.
  EXPECT_TYPE(OpKind::Slice, (Ops{f32({DimExpr(2) * T})}), sl(0, T, T), ranges(), f32({T}));
  EXPECT_SHAPE_ERROR(OpKind::Slice, (Ops{f32({T})}), sl(0, 0, DimExpr(2) * T), ranges(),
                     "exceeds");
  // Attribute kinds and presence.
  EXPECT_CHECK_ERROR(OpKind::Slice, x, attrs({{"axis", I(2)}, {"start", I(0)}}), ranges(),
                     "requires attribute 'size'");
  EXPECT_CHECK_ERROR(OpKind::Slice, x,
                     attrs({{"axis", I(2)}, {"start", F(0.5)}, {"size", I(2)}}), ranges(),
                     "attribute 'start' must be a dim");
  EXPECT_CHECK_ERROR(OpKind::Slice, (Ops{ty({8, 64}, ElemType::Q8_0)}), sl(0, 0, 4), ranges(),
                     "block-quantised");
}

TEST(ShapeRules, ConcatSumsDims) {
  // T + T = 2*T.
  EXPECT_TYPE(OpKind::Concat, (Ops{f32({T, 64}), f32({T, 64})}), attrs({{"axis", I(0)}}),
              ranges(), f32({DimExpr(2) * T, 64}));
  EXPECT_TYPE(OpKind::Concat, (Ops{f32({T, 64}), f32({T, 32})}), attrs({{"axis", I(1)}}),
              ranges(), f32({T, 96}));
  EXPECT_TYPE(OpKind::Concat, (Ops{f32({T, 64}), f32({T, 32})}), attrs({{"axis", I(-1)}}),
              ranges(), f32({T, 96}));
  EXPECT_TYPE(OpKind::Concat, (Ops{f32({T}), f32({T}), f32({1})}), attrs({{"axis", I(0)}}),
              ranges(), f32({DimExpr(2) * T + 1}));
  EXPECT_TYPE(OpKind::Concat, (Ops{f32({T, 64})}), attrs({{"axis", I(0)}}), ranges(),
              f32({T, 64}));
  // Other dims must match, symbolically.
  EXPECT_SHAPE_ERROR(OpKind::Concat, (Ops{f32({T, 64}), f32({7, 64})}), attrs({{"axis", I(1)}}),
                     ranges(), "dim 0");
  EXPECT_SHAPE_ERROR(OpKind::Concat, (Ops{f32({T, 64}), f32({T, 64, 1})}),
                     attrs({{"axis", I(0)}}), ranges(), "does not match");
  EXPECT_SHAPE_ERROR(OpKind::Concat, (Ops{f32({T, 64}), ty({T, 64}, ElemType::F16)}),
                     attrs({{"axis", I(0)}}), ranges(), "does not match");
  EXPECT_CHECK_ERROR(OpKind::Concat, (Ops{}), attrs({{"axis", I(0)}}), ranges(),
                     "expects at least 1 operand, got 0");
  EXPECT_CHECK_ERROR(OpKind::Concat, (Ops{f32({T}), f32({T})}), {}, ranges(),
                     "requires attribute 'axis'");
}

TEST(ShapeRules, BroadcastTo) {
  EXPECT_TYPE(OpKind::Broadcast, (Ops{f32({1, 64})}), attrs({{"shape", Dims({T, 64})}}),
              ranges(), f32({T, 64}));
  EXPECT_TYPE(OpKind::Broadcast, (Ops{f32({64})}), attrs({{"shape", Dims({T, 8, 64})}}),
              ranges(), f32({T, 8, 64}));
  EXPECT_TYPE(OpKind::Broadcast, (Ops{f32({T, 2, 1})}), attrs({{"shape", Dims({T, 2, 64})}}),
              ranges(), f32({T, 2, 64}));
  // 8 does not broadcast to T; the target cannot be smaller than the input.
  EXPECT_SHAPE_ERROR(OpKind::Broadcast, (Ops{f32({8, 64})}), attrs({{"shape", Dims({T, 64})}}),
                     ranges(), "cannot broadcast");
  EXPECT_SHAPE_ERROR(OpKind::Broadcast, (Ops{f32({T, 64})}), attrs({{"shape", Dims({1, 64})}}),
                     ranges(), "cannot broadcast");
  EXPECT_SHAPE_ERROR(OpKind::Broadcast, (Ops{f32({T, 64})}), attrs({{"shape", Dims({64})}}),
                     ranges(), "cannot broadcast");
  EXPECT_CHECK_ERROR(OpKind::Broadcast, (Ops{f32({1, 64})}), {}, ranges(),
                     "requires attribute 'shape'");
}

TEST(ShapeRules, ViewBounds) {
  auto v = [](std::initializer_list<DimExpr> shape, std::initializer_list<DimExpr> strides,
              std::optional<DimExpr> offset = std::nullopt) {
    AttrDict a = attrs({{"shape", Dims(shape)}, {"strides", Dims(strides)}});
    if (offset)
      a.set("offset", Attribute::getDim(*offset));
    return a;
  };
  Ops x{f32({T, 64})};
  // Identity view, offset defaulting to 0.
  EXPECT_TYPE(OpKind::View, x, v({T, 64}, {64, 1}), ranges(), f32({T, 64}));
  // Right half of every row: last element 32 + (T-1)*64 + 31 = 64*T - 1.
  EXPECT_TYPE(OpKind::View, x, v({T, 32}, {64, 1}, 32), ranges(), f32({T, 32}));
  EXPECT_SHAPE_ERROR(OpKind::View, x, v({T, 32}, {64, 1}, 33), ranges(), "view reads");
  // Transposed view.
  EXPECT_TYPE(OpKind::View, x, v({64, T}, {1, 64}), ranges(), f32({64, T}));
  // Too many rows, or a stride walking off the end.
  EXPECT_SHAPE_ERROR(OpKind::View, x, v({DimExpr(2) * T, 64}, {64, 1}), ranges(),
                     "view reads");
  EXPECT_SHAPE_ERROR(OpKind::View, x, v({T, 64}, {65, 1}), ranges(), "view reads");
  // A broadcasting view (stride 0) stays inside.
  EXPECT_TYPE(OpKind::View, (Ops{f32({64})}), v({T, 64}, {0, 1}), ranges(), f32({T, 64}));
  // Static view of a symbolic input: legal only if T is always large enough.
  EXPECT_SHAPE_ERROR(OpKind::View, x, v({4, 64}, {64, 1}), ranges(1, 100), "view reads");
  EXPECT_TYPE(OpKind::View, x, v({4, 64}, {64, 1}), ranges(4, 100), f32({4, 64}));
  // An empty view touches nothing.
  EXPECT_TYPE(OpKind::View, (Ops{f32({4})}), v({0, 100}, {100, 1}, 0), ranges(), f32({0, 100}));
  // Malformed.
  EXPECT_SHAPE_ERROR(OpKind::View, x, v({T, 64}, {64}), ranges(), "strides");
  EXPECT_SHAPE_ERROR(OpKind::View, x, v({T, 64}, {64, -1}), ranges(), "negative");
  EXPECT_SHAPE_ERROR(OpKind::View, x, v({T, 64}, {64, 1}, -1), ranges(), "negative");
  EXPECT_CHECK_ERROR(OpKind::View, x, attrs({{"shape", Dims({T, 64})}}), ranges(),
                     "requires attribute 'strides'");
}

//===----------------------------------------------------------------------===//
// Collectives, constants.
//===----------------------------------------------------------------------===//

TEST(ShapeRules, AllReduce) {
  EXPECT_TYPE(OpKind::AllReduce, (Ops{f32({T, 64})}), attrs({{"sum", Flag()}}), ranges(),
              f32({T, 64}));
  EXPECT_SHAPE_ERROR(OpKind::AllReduce, (Ops{f32({T, 64})}), {}, ranges(), "sum");
  EXPECT_CHECK_ERROR(OpKind::AllReduce, (Ops{f32({T, 64})}), attrs({{"max", Flag()}}),
                     ranges(), "has no attribute 'max'");
}

TEST(ShapeRules, ConstantNeedsAWrittenType) {
  AttrDict eps = attrs({{"value", F(1.0e-6)}});
  // No type can be inferred for a constant.
  EXPECT_FALSE(infer(OpKind::Constant, {}, eps).type.has_value());
  auto noType = check(OpKind::Constant, {}, eps);
  ASSERT_FALSE(noType.type.has_value());
  EXPECT_NE(noType.error.find("written result type"), std::string::npos) << noType.error;

  TensorType scalar = f32({});
  auto c = check(OpKind::Constant, {}, eps, ranges(), &scalar);
  ASSERT_TRUE(c.type.has_value()) << c.error;
  EXPECT_EQ(*c.type, scalar);
  // A splat of a symbolic type.
  TensorType splat = f32({T, 8});
  c = check(OpKind::Constant, {}, attrs({{"value", F(0.0)}}), ranges(), &splat);
  ASSERT_TRUE(c.type.has_value()) << c.error;
  EXPECT_EQ(*c.type, splat);
  // An integer value is a number.
  c = check(OpKind::Constant, {}, attrs({{"value", I(3)}}), ranges(), &scalar);
  EXPECT_TRUE(c.type.has_value()) << c.error;
  // Missing value.
  c = check(OpKind::Constant, {}, {}, ranges(), &scalar);
  ASSERT_FALSE(c.type.has_value());
  EXPECT_NE(c.error.find("requires attribute 'value'"), std::string::npos) << c.error;
  // Non-number value.
  c = check(OpKind::Constant, {}, attrs({{"value", Ident("pi")}}), ranges(), &scalar);
  ASSERT_FALSE(c.type.has_value());
  EXPECT_NE(c.error.find("attribute 'value' must be"), std::string::npos) << c.error;
  // No operands.
  c = check(OpKind::Constant, {f32({})}, eps, ranges(), &scalar);
  ASSERT_FALSE(c.type.has_value());
  EXPECT_NE(c.error.find("expects 0 operands, got 1"), std::string::npos) << c.error;
  // Never block-quantised.
  TensorType q = ty({32}, ElemType::Q8_0);
  c = check(OpKind::Constant, {}, eps, ranges(), &q);
  ASSERT_FALSE(c.type.has_value());
  EXPECT_NE(c.error.find("block-quantised"), std::string::npos) << c.error;
}

TEST(ShapeRules, ConstantDenseListCount) {
  auto list = Attribute::getList({F(1.0), F(2.0), I(3)});
  TensorType three = f32({3}), four = f32({4}), twoByTwo = f32({2, 2});
  auto c = check(OpKind::Constant, {}, attrs({{"value", list}}), ranges(), &three);
  ASSERT_TRUE(c.type.has_value()) << c.error;
  EXPECT_EQ(*c.type, three);
  c = check(OpKind::Constant, {}, attrs({{"value", list}}), ranges(), &four);
  ASSERT_FALSE(c.type.has_value());
  EXPECT_NE(c.error.find("3 elements"), std::string::npos) << c.error;
  c = check(OpKind::Constant, {},
            attrs({{"value", Attribute::getList({F(1), F(2), F(3), F(4)})}}), ranges(),
            &twoByTwo);
  EXPECT_TRUE(c.type.has_value()) << c.error;
  // A dense list needs a static type.
  TensorType sym = f32({T});
  c = check(OpKind::Constant, {}, attrs({{"value", list}}), ranges(), &sym);
  ASSERT_FALSE(c.type.has_value());
  EXPECT_NE(c.error.find("static"), std::string::npos) << c.error;
  // Every list element must be a number.
  c = check(OpKind::Constant, {}, attrs({{"value", Attribute::getList({F(1.0), Ident("a"),
                                                                      F(2.0)})}}),
            ranges(), &three);
  EXPECT_FALSE(c.type.has_value());
}

//===----------------------------------------------------------------------===//
// Cross-cutting checks of checkOp.
//===----------------------------------------------------------------------===//

TEST(ShapeRules, QuantisedOperandRules) {
  TensorType q = ty({128, 768, 2048}, ElemType::Q8_0);
  // Allowed as a matmul / matmul_id weight and as a gather source.
  EXPECT_TRUE(check(OpKind::Matmul, {f32({T, 2048}), ty({768, 2048}, ElemType::Q8_0)})
                  .type.has_value());
  EXPECT_TRUE(check(OpKind::MatmulId, {f32({T, 1, 2048}), q, i32({T, 8})}).type.has_value());
  // Rejected for elementwise ops, shape ops, reductions, norms.
  TensorType q2 = ty({8, 64}, ElemType::Q4_0);
  EXPECT_CHECK_ERROR(OpKind::Add, (Ops{q2, q2}), {}, ranges(), "block-quantised");
  EXPECT_CHECK_ERROR(OpKind::Add, (Ops{f32({8, 64}), q2}), {}, ranges(),
                     "operand #1 cannot be block-quantised");
  EXPECT_CHECK_ERROR(OpKind::Mul, (Ops{q2, f32({8, 64})}), {}, ranges(),
                     "operand #0 cannot be block-quantised");
  EXPECT_CHECK_ERROR(OpKind::ReduceSum, (Ops{q2}), attrs({{"axis", I(0)}}), ranges(),
                     "block-quantised");
  EXPECT_CHECK_ERROR(OpKind::Permute, (Ops{q2}), attrs({{"perm", Ints({1, 0})}}), ranges(),
                     "block-quantised");
  EXPECT_CHECK_ERROR(OpKind::Concat, (Ops{q2, q2}), attrs({{"axis", I(0)}}), ranges(),
                     "block-quantised");
  EXPECT_CHECK_ERROR(OpKind::AllReduce, (Ops{q2}), attrs({{"sum", Flag()}}), ranges(),
                     "block-quantised");
  // The Builder path (shape rule only) rejects them too, for add.
  EXPECT_FALSE(infer(OpKind::Add, {q2, q2}).type.has_value());
}

TEST(ShapeRules, UnknownAttributesNameTheExpectedOnes) {
  auto c = check(OpKind::ReduceSum, {f32({T, 8})}, attrs({{"axis", I(1)}, {"foo", I(2)}}));
  ASSERT_FALSE(c.type.has_value());
  EXPECT_NE(c.error.find("has no attribute 'foo'"), std::string::npos) << c.error;
  EXPECT_NE(c.error.find("axis"), std::string::npos) << c.error;
  EXPECT_NE(c.error.find("keepdim"), std::string::npos) << c.error;
  c = check(OpKind::Matmul, {f32({T, 8}), f32({4, 8})}, attrs({{"transpose", Flag()}}));
  ASSERT_FALSE(c.type.has_value());
  EXPECT_NE(c.error.find("has no attribute 'transpose'"), std::string::npos) << c.error;
}

TEST(ShapeRules, AttributeKindErrors) {
  // int where a list is expected, float where an int is, list where a flag is.
  EXPECT_CHECK_ERROR(OpKind::Permute, (Ops{f32({T, 8})}), attrs({{"perm", I(1)}}), ranges(),
                     "attribute 'perm' must be a list of integers");
  EXPECT_CHECK_ERROR(OpKind::Topk, (Ops{f32({T, 8})}), attrs({{"k", F(2.5)}}), ranges(),
                     "attribute 'k' must be an integer");
  EXPECT_CHECK_ERROR(OpKind::ReduceSum, (Ops{f32({T, 8})}),
                     attrs({{"axis", I(0)}, {"keepdim", Ints({1})}}), ranges(),
                     "attribute 'keepdim' must be a flag");
  EXPECT_CHECK_ERROR(OpKind::Pow, (Ops{f32({T, 8})}), attrs({{"exponent", Ident("two")}}),
                     ranges(), "attribute 'exponent' must be a number");
  EXPECT_CHECK_ERROR(OpKind::Clamp, (Ops{f32({T, 8})}),
                     attrs({{"min", Attribute::getString("0")}}), ranges(),
                     "attribute 'min' must be a number");
  EXPECT_CHECK_ERROR(OpKind::View, (Ops{f32({T, 8})}),
                     attrs({{"shape", Dims({T, 8})}, {"strides", Dims({8, 1})},
                            {"offset", F(0.5)}}),
                     ranges(), "attribute 'offset' must be a dim");
}

TEST(ShapeRules, TheReturnOpHasNoResultType) {
  EXPECT_FALSE(infer(OpKind::Return, {f32({T})}).type.has_value());
}

/// One valid example per op: every op of the table has a working shape rule.
TEST(ShapeRules, EveryOpOfTheTableHasAWorkingRule) {
  struct Ex {
    Ops ops;
    AttrDict a;
    TensorType result;
  };
  TensorType x = f32({T, 64});
  std::map<std::string, Ex> ex = {
      {"matmul", {{x, f32({8, 64})}, {}, f32({T, 8})}},
      {"matmul_id", {{f32({T, 1, 64}), f32({8, 16, 64}), i32({T, 2})}, {}, f32({T, 2, 16})}},
      {"add_id", {{f32({T, 2, 16}), f32({8, 16}), i32({T, 2})}, {}, f32({T, 2, 16})}},
      {"add", {{x, x}, {}, x}},
      {"sub", {{x, x}, {}, x}},
      {"mul", {{x, x}, {}, x}},
      {"div", {{x, x}, {}, x}},
      {"max", {{x, x}, {}, x}},
      {"min", {{x, x}, {}, x}},
      {"neg", {{x}, {}, x}},
      {"exp", {{x}, {}, x}},
      {"log", {{x}, {}, x}},
      {"sqr", {{x}, {}, x}},
      {"sqrt", {{x}, {}, x}},
      {"rsqrt", {{x}, {}, x}},
      {"abs", {{x}, {}, x}},
      {"tanh", {{x}, {}, x}},
      {"sigmoid", {{x}, {}, x}},
      {"softplus", {{x}, {}, x}},
      {"relu", {{x}, {}, x}},
      {"silu", {{x}, {}, x}},
      {"gelu", {{x}, {}, x}},
      {"gelu_erf", {{x}, {}, x}},
      {"pow", {{x}, attrs({{"exponent", F(2.0)}}), x}},
      {"scale", {{x}, attrs({{"factor", F(0.5)}}), x}},
      {"clamp", {{x}, attrs({{"min", F(0.0)}}), x}},
      {"cast", {{x}, attrs({{"to", Ident("bf16")}}), ty({T, 64}, ElemType::BF16)}},
      {"swiglu", {{x, x}, {}, x}},
      {"geglu", {{x, x}, {}, x}},
      {"swiglu_oai", {{x, x}, attrs({{"alpha", F(1.702)}, {"limit", F(7.0)}}), x}},
      {"reduce_sum", {{x}, attrs({{"axis", I(1)}}), f32({T})}},
      {"reduce_mean", {{x}, attrs({{"axis", I(-1)}, {"keepdim", Flag()}}), f32({T, 1})}},
      {"reduce_max", {{x}, attrs({{"axis", I(0)}}), f32({64})}},
      {"softmax", {{x}, {}, x}},
      {"argsort", {{x}, attrs({{"desc", Flag()}}), i32({T, 64})}},
      {"topk", {{x}, attrs({{"k", I(4)}}), i32({T, 4})}},
      {"rms_norm", {{x, f32({64})}, attrs({{"eps", F(1e-6)}}), x}},
      {"layer_norm", {{x, f32({64}), f32({64})}, attrs({{"eps", F(1e-5)}}), x}},
      {"gather", {{x, i32({T, 2})}, attrs({{"axis", I(1)}}), f32({T, 2})}},
      {"reshape", {{x}, attrs({{"shape", Dims({T, 8, 8})}}), f32({T, 8, 8})}},
      {"permute", {{x}, attrs({{"perm", Ints({1, 0})}}), f32({64, T})}},
      {"slice",
       {{x}, attrs({{"axis", I(1)}, {"start", I(8)}, {"size", I(8)}}), f32({T, 8})}},
      {"concat", {{x, x}, attrs({{"axis", I(1)}}), f32({T, 128})}},
      {"broadcast", {{f32({64})}, attrs({{"shape", Dims({T, 64})}}), x}},
      {"view", {{x}, attrs({{"shape", Dims({T, 64})}, {"strides", Dims({64, 1})}}), x}},
      {"all_reduce", {{x}, attrs({{"sum", Flag()}}), x}},
  };
  std::set<std::string> skipped = {"constant", "return"}; // tested above
  for (const OpInfo &info : allOps()) {
    std::string n = info.name.str();
    if (skipped.count(n))
      continue;
    SCOPED_TRACE(n);
    auto it = ex.find(n);
    ASSERT_NE(it, ex.end()) << "op '" << n << "' has no example in this test";
    EXPECT_TYPE(info.kind, it->second.ops, it->second.a, ranges(), it->second.result);
  }
}
