//===- BuilderTest.cpp - Building IR with inferred types ------------------===//
//
// moe::Builder creates ops with the op table's inferred result types at an
// insertion point; a shape-rule violation is an error and creates nothing.
// The function built here is qwen3_tiny.moe's routed-expert FFN (DESIGN.md,
// "The three real layers").
//
//===----------------------------------------------------------------------===//
#include "ir/Builder.h"
#include "tests/unit/IRTestUtil.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include <gtest/gtest.h>

using namespace moe;
using namespace moe::test;

namespace {

AttrDict paramAttr() { return attrs({{"param", Attribute::getBool(true)}}); }

/// Errors collected from a DiagEngine.
struct Collector {
  DiagEngine diag;
  std::vector<std::string> errors;
  Collector() {
    diag.setHandler([this](const Diagnostic &d) {
      if (d.severity == Severity::Error)
        errors.push_back(d.message);
    });
  }
};

Value *mustCreate(Builder &b, OpKind k, std::vector<Value *> ops, AttrDict a = {},
                  std::string name = "") {
  auto op = b.create(k, ops, std::move(a), std::move(name));
  if (!op) {
    ADD_FAILURE() << "create(" << getOpInfo(k).name.str()
                  << ") failed: " << llvm::toString(op.takeError());
    return nullptr;
  }
  return (*op)->getResult();
}

/// qwen3_tiny's FFN: n_embd 64, n_ff 64, 8 experts, top-2.
std::unique_ptr<Function> buildQwen3Tiny() {
  auto f = std::make_unique<Function>("moe_ffn");
  f->symbols().push_back(SymbolDecl{"T", 1, 512, {}});
  Value *x = f->addArgument(f32({T, 64}), "x");
  Value *gateInp = f->addArgument(f32({8, 64}), "gate_inp", paramAttr());
  Value *up = f->addArgument(f32({8, 64, 64}), "up_exps", paramAttr());
  Value *gate = f->addArgument(f32({8, 64, 64}), "gate_exps", paramAttr());
  Value *down = f->addArgument(f32({8, 64, 64}), "down_exps", paramAttr());
  f->resultTypes().push_back(f32({T, 64}));

  Builder b(*f);
  Value *logits = mustCreate(b, OpKind::Matmul, {x, gateInp}, {}, "logits");
  Value *probs = mustCreate(b, OpKind::Softmax, {logits}, attrs({{"axis", Attribute::getInt(-1)}}),
                            "probs");
  Value *ids = mustCreate(b, OpKind::Topk, {probs}, attrs({{"k", Attribute::getInt(2)}}), "ids");
  Value *w = mustCreate(b, OpKind::Gather, {probs, ids}, attrs({{"axis", Attribute::getInt(1)}}),
                        "w");
  Value *wsum = mustCreate(b, OpKind::ReduceSum, {w},
                           attrs({{"axis", Attribute::getInt(1)},
                                  {"keepdim", Attribute::getBool(true)}}),
                           "wsum");
  Value *wsc = mustCreate(b, OpKind::Clamp, {wsum}, attrs({{"min", Attribute::getFloat(6.1e-5)}}),
                          "wsc");
  Value *wn = mustCreate(b, OpKind::Div, {w, wsc}, {}, "wn");
  Value *x3 = mustCreate(b, OpKind::Reshape, {x},
                         attrs({{"shape", Attribute::getDims(Shape{T, 1, 64})}}), "x3");
  Value *upv = mustCreate(b, OpKind::MatmulId, {x3, up, ids}, {}, "up");
  Value *gatev = mustCreate(b, OpKind::MatmulId, {x3, gate, ids}, {}, "gate");
  Value *act = mustCreate(b, OpKind::Swiglu, {gatev, upv}, {}, "act");
  Value *downv = mustCreate(b, OpKind::MatmulId, {act, down, ids}, {}, "down");
  Value *wn3 = mustCreate(b, OpKind::Reshape, {wn},
                          attrs({{"shape", Attribute::getDims(Shape{T, 2, 1})}}), "wn3");
  Value *wd = mustCreate(b, OpKind::Mul, {downv, wn3}, {}, "wd");
  Value *out = mustCreate(b, OpKind::ReduceSum, {wd}, attrs({{"axis", Attribute::getInt(1)}}),
                          "out");
  b.createWithType(OpKind::Return, {out}, {}, TensorType());
  return f;
}

std::vector<std::string> opNames(const Function &f) {
  std::vector<std::string> r;
  for (auto &op : f.getBody())
    r.push_back(op.getNumResults() ? op.getResult()->getName() : op.getName().str());
  return r;
}

} // namespace

TEST(Builder, BuildsAMoEFunctionWithInferredTypes) {
  auto f = buildQwen3Tiny();
  ASSERT_FALSE(HasFailure());
  std::map<std::string, TensorType> types;
  for (auto &op : f->getBody())
    if (op.getNumResults())
      types[op.getResult()->getName()] = op.getResult()->getType();
  EXPECT_EQ(types["logits"], f32({T, 8}));
  EXPECT_EQ(types["probs"], f32({T, 8}));
  EXPECT_EQ(types["ids"], i32({T, 2}));
  EXPECT_EQ(types["w"], f32({T, 2}));
  EXPECT_EQ(types["wsum"], f32({T, 1}));
  EXPECT_EQ(types["wsc"], f32({T, 1}));
  EXPECT_EQ(types["wn"], f32({T, 2}));
  EXPECT_EQ(types["x3"], f32({T, 1, 64}));
  EXPECT_EQ(types["up"], f32({T, 2, 64}));
  EXPECT_EQ(types["gate"], f32({T, 2, 64}));
  EXPECT_EQ(types["act"], f32({T, 2, 64}));
  EXPECT_EQ(types["down"], f32({T, 2, 64}));
  EXPECT_EQ(types["wn3"], f32({T, 2, 1}));
  EXPECT_EQ(types["wd"], f32({T, 2, 64}));
  EXPECT_EQ(types["out"], f32({T, 64}));
  // Ops are appended in creation order, the return last.
  EXPECT_EQ(opNames(*f), (std::vector<std::string>{"logits", "probs", "ids", "w", "wsum", "wsc",
                                                  "wn", "x3", "up", "gate", "act", "down", "wn3",
                                                  "wd", "out", "return"}));
  EXPECT_EQ(f->getReturn(), &f->getBody().back());
  for (auto &op : f->getBody())
    EXPECT_EQ(op.getParent(), f.get());
  Collector c;
  EXPECT_TRUE(verifyFunction(*f, c.diag));
  EXPECT_TRUE(c.errors.empty()) << c.errors.front();
}

TEST(Builder, CreateReturnsAnErrorForBadShapesAndInsertsNothing) {
  auto f = buildQwen3Tiny();
  size_t before = f->getBody().size();
  Builder b(*f);
  Value *x = f->getArgument(0);           // T x 64
  Value *gateInp = f->getArgument(1);     // 8 x 64
  Value *up = f->getArgument(2);          // 8 x 64 x 64
  // matmul with K mismatch: x[T, 64] vs w[64, 8, 64] (rank 3).
  auto bad = b.create(OpKind::Matmul, {x, up});
  ASSERT_FALSE(bad);
  EXPECT_NE(llvm::toString(bad.takeError()).find("rank"), std::string::npos);
  // reshape to a different element count.
  auto r = b.create(OpKind::Reshape, {x}, attrs({{"shape", Attribute::getDims(Shape{7, 64})}}));
  ASSERT_FALSE(r);
  EXPECT_NE(llvm::toString(r.takeError()).find("elements"), std::string::npos);
  // T does not broadcast with 8.
  auto add = b.create(OpKind::Add, {x, gateInp});
  ASSERT_FALSE(add);
  llvm::consumeError(add.takeError());
  // Wrong operand count.
  auto neg = b.create(OpKind::Neg, {x, x});
  ASSERT_FALSE(neg);
  llvm::consumeError(neg.takeError());
  EXPECT_EQ(f->getBody().size(), before);
  // No use was recorded by a failed create.
  EXPECT_EQ(x->getUses().size(), 2u); // matmul (logits) and reshape (x3)
}

TEST(Builder, InsertionPoints) {
  auto f = std::make_unique<Function>("f");
  f->symbols().push_back(SymbolDecl{"T", 1, 16, {}});
  Value *x = f->addArgument(f32({T, 8}), "x");
  f->resultTypes().push_back(f32({T, 8}));
  Builder b(*f);
  Value *a = mustCreate(b, OpKind::Neg, {x}, {}, "a");
  Operation *ret = b.createWithType(OpKind::Return, {a}, {}, TensorType());
  // Appending keeps the return last.
  Value *c = mustCreate(b, OpKind::Exp, {a}, {}, "c");
  EXPECT_EQ(opNames(*f), (std::vector<std::string>{"a", "c", "return"}));
  // Before a given op.
  b.setInsertionPoint(c->getDefiningOp());
  mustCreate(b, OpKind::Abs, {x}, {}, "b");
  EXPECT_EQ(opNames(*f), (std::vector<std::string>{"a", "b", "c", "return"}));
  // After a given op.
  b.setInsertionPointAfter(a->getDefiningOp());
  mustCreate(b, OpKind::Relu, {a}, {}, "a2");
  EXPECT_EQ(opNames(*f), (std::vector<std::string>{"a", "a2", "b", "c", "return"}));
  // After the return's predecessor, then to the end.
  b.setInsertionPointToEnd();
  mustCreate(b, OpKind::Tanh, {x}, {}, "d");
  EXPECT_EQ(opNames(*f), (std::vector<std::string>{"a", "a2", "b", "c", "d", "return"}));
  EXPECT_EQ(f->getReturn(), ret);
  Collector col;
  EXPECT_TRUE(verifyFunction(*f, col.diag));
}

TEST(Builder, ConstantsAndExplicitTypes) {
  auto f = std::make_unique<Function>("f");
  f->symbols().push_back(SymbolDecl{"T", 1, 16, {}});
  Value *x = f->addArgument(f32({T, 8}), "x");
  f->resultTypes().push_back(f32({T, 8}));
  Builder b(*f);
  Value *eps = b.constant(1.0e-6, TensorType({}, ElemType::F32), "eps");
  EXPECT_EQ(eps->getType(), f32({}));
  EXPECT_EQ(eps->getName(), "eps");
  Operation *c = eps->getDefiningOp();
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->is(OpKind::Constant));
  ASSERT_TRUE(c->attrs().get("value"));
  EXPECT_EQ(c->attrs().get("value")->getNumber(), 1.0e-6);
  // A splat constant of a symbolic type.
  Value *zeros = b.constant(0.0, f32({T, 8}), "zeros");
  EXPECT_EQ(zeros->getType(), f32({T, 8}));
  // A constant cannot be created with an inferred type.
  AttrDict v = attrs({{"value", Attribute::getFloat(1.0)}});
  auto bad = b.create(OpKind::Constant, {}, v);
  ASSERT_FALSE(bad);
  llvm::consumeError(bad.takeError());
  Value *s = mustCreate(b, OpKind::Add, {x, eps}, {}, "s");
  Value *s2 = mustCreate(b, OpKind::Add, {s, zeros}, {}, "s2");
  b.createWithType(OpKind::Return, {s2}, {}, TensorType());
  Collector col;
  EXPECT_TRUE(verifyFunction(*f, col.diag)) << (col.errors.empty() ? "" : col.errors.front());
  // Printed as DESIGN.md's constant form.
  std::string text = toString(*f);
  EXPECT_NE(text.find("%eps = constant {value = 1.0e-6} : tensor<f32>"), std::string::npos)
      << text;
}

TEST(Builder, VerifierCatchesWrongExplicitTypes) {
  auto f = std::make_unique<Function>("f");
  f->symbols().push_back(SymbolDecl{"T", 1, 16, {}});
  Value *x = f->addArgument(f32({T, 8}), "x");
  f->resultTypes().push_back(f32({T, 8}));
  Builder b(*f);
  Operation *bad = b.createWithType(OpKind::Neg, {x}, {}, f32({7, 8}), "bad");
  b.createWithType(OpKind::Return, {x}, {}, TensorType());
  Collector col;
  EXPECT_FALSE(verifyFunction(*f, col.diag));
  ASSERT_EQ(col.errors.size(), 1u);
  EXPECT_NE(col.errors[0].find("'neg' op"), std::string::npos) << col.errors[0];
  EXPECT_NE(col.errors[0].find("does not match the inferred type"), std::string::npos)
      << col.errors[0];
  (void)bad;
}

// Builder::create is documented as creating ops "with inferred types; an error
// if the shape rule fails", and Ops.def says block-quantised operands are
// rejected everywhere the quantOperands mask does not allow them. A Builder
// must therefore never produce an op the verifier rejects.
// DISABLED: product bug, inferResultType (used by Builder::create) only runs
// the shape rule: it skips the quantOperands mask (inferPermute accepts a
// q8_0 operand) and the attribute specs (required attributes such as pow's
// `exponent`, unknown attribute names), so Builder::create returns ops that
// verifyFunction then rejects.
TEST(Builder, CreateRejectsWhatTheVerifierRejects) {
  auto f = std::make_unique<Function>("f");
  f->symbols().push_back(SymbolDecl{"T", 1, 16, {}});
  Value *x = f->addArgument(f32({T, 64}), "x");
  Value *wq = f->addArgument(TensorType({8, 64}, ElemType::Q8_0), "wq", paramAttr());
  f->resultTypes().push_back(f32({T, 64}));
  Builder b(*f);
  // A quantised operand where the table does not allow one.
  auto p = b.create(OpKind::Permute, {wq}, attrs({{"perm", Attribute::getInts({1, 0})}}));
  EXPECT_FALSE(p) << "permute of a q8_0 tensor was created";
  if (!p)
    llvm::consumeError(p.takeError());
  // A required attribute missing.
  auto pw = b.create(OpKind::Pow, {x});
  EXPECT_FALSE(pw) << "pow without 'exponent' was created";
  if (!pw)
    llvm::consumeError(pw.takeError());
  // An unknown attribute.
  auto rs = b.create(OpKind::ReduceSum, {x},
                     attrs({{"axis", Attribute::getInt(1)}, {"bogus", Attribute::getInt(1)}}));
  EXPECT_FALSE(rs) << "reduce_sum with attribute 'bogus' was created";
  if (!rs)
    llvm::consumeError(rs.takeError());
}
