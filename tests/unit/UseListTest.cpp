//===- UseListTest.cpp - Use-def chains, body edits, cloning --------------===//
//
// Every Value knows its uses (operand `index` of `user`); passes walk these
// chains and never the body order, so every edit must keep both sides in
// step: setOperand, replaceAllUsesWith, erase, dropAllReferences, insertion,
// topological sorting and cloning.
//
//===----------------------------------------------------------------------===//
#include "ir/Builder.h"
#include "tests/unit/IRTestUtil.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

using namespace moe;
using namespace moe::test;

namespace {

bool verifies(const Function &f, std::string *firstError = nullptr) {
  DiagEngine diag;
  std::vector<std::string> errs;
  diag.setHandler([&](const Diagnostic &d) { errs.push_back(d.message); });
  bool ok = verifyFunction(f, diag);
  if (firstError && !errs.empty())
    *firstError = errs.front();
  return ok;
}

/// Checks every operand appears in its value's use list and vice versa.
void expectUseListsConsistent(const Function &f) {
  std::vector<Value *> values = f.getArguments();
  for (auto &op : f.getBody())
    for (unsigned i = 0; i < op.getNumResults(); ++i)
      values.push_back(op.getResult(i));
  size_t totalUses = 0, totalOperands = 0;
  for (Value *v : values) {
    for (const Use &u : v->getUses()) {
      ASSERT_LT(u.index, u.user->getNumOperands());
      EXPECT_EQ(u.user->getOperand(u.index), v);
      EXPECT_EQ(u.user->getParent(), &f);
      ++totalUses;
    }
  }
  for (auto &op : f.getBody())
    for (Value *v : op.getOperands()) {
      ASSERT_NE(v, nullptr);
      ++totalOperands;
      (void)v;
    }
  EXPECT_EQ(totalUses, totalOperands);
}

/// f(x: T x 8, y: T x 8) with a small DAG.
struct Fixture {
  std::unique_ptr<Function> f = std::make_unique<Function>("f");
  Value *x, *y;
  Builder b{*f};

  Fixture() {
    f->symbols().push_back(SymbolDecl{"T", 1, 64, {}});
    x = f->addArgument(f32({T, 8}), "x");
    y = f->addArgument(f32({T, 8}), "y");
    f->resultTypes().push_back(f32({T, 8}));
  }
  Operation *op(OpKind k, std::vector<Value *> ops, std::string name, AttrDict a = {}) {
    auto r = b.create(k, ops, std::move(a), std::move(name));
    if (!r) {
      ADD_FAILURE() << llvm::toString(r.takeError());
      return nullptr;
    }
    return *r;
  }
  Operation *ret(Value *v) { return b.createWithType(OpKind::Return, {v}, {}, TensorType()); }
};

std::vector<std::string> order(const Function &f) {
  std::vector<std::string> r;
  for (auto &op : f.getBody())
    r.push_back(op.getNumResults() ? op.getResult()->getName() : op.getName().str());
  return r;
}

} // namespace

TEST(UseList, UsesAndUsers) {
  Fixture fx;
  Operation *a = fx.op(OpKind::Add, {fx.x, fx.y}, "a");
  Operation *n = fx.op(OpKind::Neg, {fx.x}, "n");
  Operation *m = fx.op(OpKind::Mul, {a->getResult(), n->getResult()}, "m");
  fx.ret(m->getResult());

  EXPECT_EQ(fx.x->getUses().size(), 2u);
  EXPECT_EQ(fx.x->getUses()[0], (Use{a, 0}));
  EXPECT_EQ(fx.x->getUses()[1], (Use{n, 0}));
  EXPECT_EQ(fx.x->getUsers(), (std::vector<Operation *>{a, n}));
  EXPECT_FALSE(fx.x->hasOneUse());
  EXPECT_TRUE(fx.y->hasOneUse());
  EXPECT_EQ(fx.y->getUses()[0], (Use{a, 1}));
  EXPECT_TRUE(a->getResult()->hasOneUse());
  EXPECT_EQ(m->getResult()->getUsers(), (std::vector<Operation *>{fx.f->getReturn()}));
  EXPECT_EQ(a->getResult()->getDefiningOp(), a);
  EXPECT_TRUE(fx.x->isArgument());
  EXPECT_EQ(fx.y->getArgIndex(), 1u);
  EXPECT_FALSE(a->getResult()->isArgument());
  expectUseListsConsistent(*fx.f);
}

TEST(UseList, SameValueUsedTwice) {
  Fixture fx;
  Operation *sq = fx.op(OpKind::Mul, {fx.x, fx.x}, "sq");
  fx.ret(sq->getResult());
  // Two uses, one user.
  ASSERT_EQ(fx.x->getUses().size(), 2u);
  EXPECT_EQ(fx.x->getUses()[0], (Use{sq, 0}));
  EXPECT_EQ(fx.x->getUses()[1], (Use{sq, 1}));
  EXPECT_EQ(fx.x->getUsers(), (std::vector<Operation *>{sq}));
  EXPECT_FALSE(fx.x->hasOneUse());
  // Replacing one operand leaves the other use in place.
  sq->setOperand(1, fx.y);
  ASSERT_EQ(fx.x->getUses().size(), 1u);
  EXPECT_EQ(fx.x->getUses()[0], (Use{sq, 0}));
  ASSERT_EQ(fx.y->getUses().size(), 1u);
  EXPECT_EQ(fx.y->getUses()[0], (Use{sq, 1}));
  // And back: replaceAllUsesWith moves both.
  sq->setOperand(1, fx.x);
  fx.x->replaceAllUsesWith(fx.y);
  EXPECT_TRUE(fx.x->use_empty());
  EXPECT_EQ(sq->getOperand(0), fx.y);
  EXPECT_EQ(sq->getOperand(1), fx.y);
  EXPECT_EQ(fx.y->getUses().size(), 2u);
  EXPECT_EQ(fx.y->getUsers(), (std::vector<Operation *>{sq}));
  expectUseListsConsistent(*fx.f);
}

TEST(UseList, SetOperandUpdatesBothLists) {
  Fixture fx;
  Operation *a = fx.op(OpKind::Add, {fx.x, fx.y}, "a");
  Operation *n = fx.op(OpKind::Neg, {fx.y}, "n");
  fx.ret(a->getResult());
  a->setOperand(0, n->getResult());
  EXPECT_EQ(a->getOperand(0), n->getResult());
  EXPECT_TRUE(fx.x->use_empty());
  ASSERT_EQ(n->getResult()->getUses().size(), 1u);
  EXPECT_EQ(n->getResult()->getUses()[0], (Use{a, 0}));
  // y is still used by a (#1) and n (#0).
  EXPECT_EQ(fx.y->getUses().size(), 2u);
  // setOperands replaces all of them.
  a->setOperands({fx.x, fx.x});
  EXPECT_TRUE(n->getResult()->use_empty());
  EXPECT_EQ(fx.x->getUses().size(), 2u);
  EXPECT_EQ(fx.y->getUses().size(), 1u);
  expectUseListsConsistent(*fx.f);
  // The body order no longer matters to the users: n is dead now.
  std::string err;
  EXPECT_TRUE(verifies(*fx.f, &err)) << err;
}

TEST(UseList, ReplaceAllUsesWith) {
  Fixture fx;
  Operation *a = fx.op(OpKind::Add, {fx.x, fx.y}, "a");
  Operation *b = fx.op(OpKind::Add, {fx.x, fx.y}, "b");
  Operation *c = fx.op(OpKind::Mul, {a->getResult(), b->getResult()}, "c");
  Operation *d = fx.op(OpKind::Sub, {b->getResult(), a->getResult()}, "d");
  Operation *e = fx.op(OpKind::Add, {c->getResult(), d->getResult()}, "e");
  fx.ret(e->getResult());
  b->getResult()->replaceAllUsesWith(a->getResult());
  EXPECT_TRUE(b->getResult()->use_empty());
  EXPECT_EQ(c->getOperand(1), a->getResult());
  EXPECT_EQ(d->getOperand(0), a->getResult());
  EXPECT_EQ(a->getResult()->getUses().size(), 4u);
  EXPECT_EQ(a->getResult()->getUsers(), (std::vector<Operation *>{c, d}));
  // RAUW with itself is a no-op.
  a->getResult()->replaceAllUsesWith(a->getResult());
  EXPECT_EQ(a->getResult()->getUses().size(), 4u);
  expectUseListsConsistent(*fx.f);
  // The dead op can now be erased.
  size_t n = fx.f->getBody().size();
  b->erase();
  EXPECT_EQ(fx.f->getBody().size(), n - 1);
  EXPECT_EQ(fx.x->getUses().size(), 1u);
  EXPECT_EQ(fx.y->getUses().size(), 1u);
  expectUseListsConsistent(*fx.f);
  std::string err;
  EXPECT_TRUE(verifies(*fx.f, &err)) << err;
}

TEST(UseList, EraseRemovesTheUses) {
  Fixture fx;
  Operation *a = fx.op(OpKind::Add, {fx.x, fx.y}, "a");
  Operation *dead = fx.op(OpKind::Mul, {fx.x, a->getResult()}, "dead");
  fx.ret(a->getResult());
  EXPECT_EQ(fx.x->getUses().size(), 2u);
  EXPECT_EQ(a->getResult()->getUses().size(), 2u);
  dead->erase();
  EXPECT_EQ(order(*fx.f), (std::vector<std::string>{"a", "return"}));
  EXPECT_EQ(fx.x->getUses().size(), 1u);
  EXPECT_EQ(fx.x->getUses()[0], (Use{a, 0}));
  EXPECT_TRUE(a->getResult()->hasOneUse());
  expectUseListsConsistent(*fx.f);
  // A detached op (never inserted) can be erased too.
  auto detached = Operation::create(OpKind::Neg, {fx.x}, {}, {f32({T, 8})});
  EXPECT_EQ(fx.x->getUses().size(), 2u);
  detached.release()->erase();
  EXPECT_EQ(fx.x->getUses().size(), 1u);
}

/// An op erased while its result is still used (a rewrite's bug, e.g.
/// delay-allreduce under the mutant delay-allreduce-merge-one-use) is not
/// freed: the verifier names the use, and the function's destruction does
/// not touch freed memory (it used to corrupt the heap, and a tool then
/// crashed or hung in the crash handler instead of failing).
TEST(UseList, EraseOfAUsedOpIsReportedNotFreed) {
  auto fx = std::make_unique<Fixture>();
  Operation *a = fx->op(OpKind::Add, {fx->x, fx->y}, "a");
  fx->ret(a->getResult());
  a->erase();
  EXPECT_EQ(order(*fx->f), (std::vector<std::string>{"return"}));
  EXPECT_TRUE(fx->x->use_empty()); // its own operands are dropped
  std::string first;
  EXPECT_FALSE(verifies(*fx->f, &first));
  EXPECT_NE(first.find("defined outside this function"), std::string::npos) << first;
  fx.reset(); // under ASan: no use after free
}

TEST(UseList, DropAllReferences) {
  Fixture fx;
  Operation *a = fx.op(OpKind::Add, {fx.x, fx.y}, "a");
  Operation *b = fx.op(OpKind::Mul, {a->getResult(), a->getResult()}, "b");
  fx.ret(a->getResult());
  b->dropAllReferences();
  EXPECT_EQ(b->getNumOperands(), 2u);
  EXPECT_EQ(b->getOperand(0), nullptr);
  EXPECT_EQ(b->getOperand(1), nullptr);
  EXPECT_TRUE(a->getResult()->hasOneUse());
  EXPECT_EQ(a->getResult()->getUsers(), (std::vector<Operation *>{fx.f->getReturn()}));
  // Dropping twice is harmless; the op can then be erased.
  b->dropAllReferences();
  b->erase();
  EXPECT_EQ(order(*fx.f), (std::vector<std::string>{"a", "return"}));
  // Dropping the references of ops that use each other lets both be erased
  // (what DCE does with a dead chain).
  Operation *c = fx.op(OpKind::Neg, {fx.x}, "c");
  Operation *d = fx.op(OpKind::Neg, {c->getResult()}, "d");
  c->dropAllReferences();
  d->dropAllReferences();
  c->erase();
  d->erase();
  EXPECT_EQ(order(*fx.f), (std::vector<std::string>{"a", "return"}));
  expectUseListsConsistent(*fx.f);
}

TEST(UseList, InsertBeforeAndAfter) {
  Fixture fx;
  Operation *a = fx.op(OpKind::Add, {fx.x, fx.y}, "a");
  Operation *ret = fx.ret(a->getResult());
  auto mk = [&](const char *name, Value *in) {
    auto op = Operation::create(OpKind::Neg, {in}, {}, {f32({T, 8})});
    op->getResult()->setName(name);
    return op;
  };
  Operation *first = fx.f->insertBefore(a, mk("first", fx.x));
  Operation *mid = fx.f->insertAfter(a, mk("mid", a->getResult()));
  Operation *last = fx.f->insertBefore(ret, mk("last", mid->getResult()));
  EXPECT_EQ(order(*fx.f), (std::vector<std::string>{"first", "a", "mid", "last", "return"}));
  for (Operation *op : {first, mid, last})
    EXPECT_EQ(op->getParent(), fx.f.get());
  ret->setOperand(0, last->getResult());
  EXPECT_EQ(a->getResult()->getUsers(), (std::vector<Operation *>{mid}));
  expectUseListsConsistent(*fx.f);
  std::string err;
  EXPECT_TRUE(verifies(*fx.f, &err)) << err;
}

TEST(UseList, SortTopologicallyKeepsAValidOrder) {
  Fixture fx;
  Operation *a = fx.op(OpKind::Add, {fx.x, fx.y}, "a");
  Operation *b = fx.op(OpKind::Neg, {fx.x}, "b");
  Operation *c = fx.op(OpKind::Mul, {a->getResult(), b->getResult()}, "c");
  fx.ret(c->getResult());
  ASSERT_TRUE(fx.f->sortTopologically());
  EXPECT_EQ(order(*fx.f), (std::vector<std::string>{"a", "b", "c", "return"}));
}

TEST(UseList, SortTopologicallyOnAShuffledBody) {
  Fixture fx;
  // A diamond-rich DAG: 12 ops.
  std::vector<Value *> vals{fx.x, fx.y};
  for (int i = 0; i < 12; ++i) {
    Value *l = vals.back(), *r = vals[(i * 7 + 1) % vals.size()];
    OpKind k = i % 2 ? OpKind::Add : OpKind::Mul;
    vals.push_back(fx.op(k, {l, r}, "v" + std::to_string(i))->getResult());
  }
  fx.ret(vals.back());
  std::string err;
  ASSERT_TRUE(verifies(*fx.f, &err)) << err;
  std::string printed = toString(*fx.f);

  for (unsigned seed = 0; seed < 20; ++seed) {
    // Shuffle the body, return included.
    std::vector<Operation *> ops;
    for (auto &op : fx.f->getBody())
      ops.push_back(&op);
    std::mt19937 rng(seed);
    std::shuffle(ops.begin(), ops.end(), rng);
    for (Operation *op : ops)
      fx.f->getBody().remove(op);
    for (Operation *op : ops)
      fx.f->getBody().push_back(op);
    ASSERT_TRUE(fx.f->sortTopologically()) << "seed " << seed;
    // Every operand is defined before its use; return is last.
    std::set<const Value *> defined(vals.begin(), vals.begin() + 2);
    for (auto &op : fx.f->getBody()) {
      for (Value *v : op.getOperands())
        EXPECT_TRUE(defined.count(v)) << "seed " << seed << ": use before def in "
                                      << op.getName().str();
      for (unsigned i = 0; i < op.getNumResults(); ++i)
        defined.insert(op.getResult(i));
    }
    EXPECT_TRUE(fx.f->getBody().back().is(OpKind::Return));
    EXPECT_EQ(fx.f->getBody().size(), 13u);
    EXPECT_TRUE(verifies(*fx.f, &err)) << err;
    expectUseListsConsistent(*fx.f);
  }
}

TEST(UseList, SortTopologicallyDetectsACycle) {
  Fixture fx;
  Operation *a = fx.op(OpKind::Neg, {fx.x}, "a");
  Operation *b = fx.op(OpKind::Exp, {a->getResult()}, "b");
  Operation *c = fx.op(OpKind::Add, {b->getResult(), fx.y}, "c");
  fx.ret(c->getResult());
  // a = neg(b): a cycle a -> b -> a.
  a->setOperand(0, b->getResult());
  auto before = order(*fx.f);
  EXPECT_FALSE(fx.f->sortTopologically());
  // The body is left as it was.
  EXPECT_EQ(order(*fx.f), before);
  std::string err;
  EXPECT_FALSE(verifies(*fx.f, &err));
  // Breaking the cycle makes it sortable again.
  a->setOperand(0, fx.x);
  EXPECT_TRUE(fx.f->sortTopologically());
}

TEST(UseList, FunctionCloneKeepsNamesTypesAndUses) {
  Fixture fx;
  fx.y->argAttrs().set("param", Attribute::getBool(true));
  fx.f->attrs().set("ranks", Attribute::getInt(2));
  Operation *a = fx.op(OpKind::Add, {fx.x, fx.y}, "a");
  Operation *s = fx.op(OpKind::Mul, {a->getResult(), a->getResult()}, "s");
  Operation *r = fx.op(OpKind::ReduceSum, {s->getResult()}, "r",
                       attrs({{"axis", Attribute::getInt(1)}, {"keepdim", Attribute::getBool(true)}}));
  Operation *o = fx.op(OpKind::Div, {s->getResult(), r->getResult()}, "o");
  fx.ret(o->getResult());

  auto g = fx.f->clone();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->getName(), "f");
  EXPECT_EQ(toString(*g), toString(*fx.f));
  ASSERT_EQ(g->symbols().size(), 1u);
  EXPECT_EQ(g->symbols()[0].name, "T");
  EXPECT_EQ(g->symbols()[0].hi, 64);
  EXPECT_EQ(g->resultTypes(), fx.f->resultTypes());
  EXPECT_EQ(g->attrs(), fx.f->attrs());
  ASSERT_EQ(g->getNumArguments(), 2u);
  EXPECT_TRUE(g->getArgument(1)->isParam());
  EXPECT_FALSE(g->getArgument(0)->isParam());
  // Fresh values, none shared with the original.
  for (unsigned i = 0; i < 2; ++i)
    EXPECT_NE(g->getArgument(i), fx.f->getArgument(i));
  auto it = g->getBody().begin();
  for (auto &op : fx.f->getBody()) {
    ASSERT_NE(it, g->getBody().end());
    Operation &c = *it++;
    EXPECT_NE(&c, &op);
    EXPECT_EQ(c.getKind(), op.getKind());
    EXPECT_EQ(c.getParent(), g.get());
    EXPECT_EQ(c.attrs(), op.attrs());
    ASSERT_EQ(c.getNumResults(), op.getNumResults());
    for (unsigned i = 0; i < c.getNumResults(); ++i) {
      EXPECT_EQ(c.getResult(i)->getName(), op.getResult(i)->getName());
      EXPECT_EQ(c.getResult(i)->getType(), op.getResult(i)->getType());
      EXPECT_EQ(c.getResult(i)->getUses().size(), op.getResult(i)->getUses().size());
    }
    for (Value *v : c.getOperands()) {
      // Operands point into the clone.
      bool inClone = v->isArgument() ? v == g->getArgument(v->getArgIndex())
                                     : v->getDefiningOp()->getParent() == g.get();
      EXPECT_TRUE(inClone);
    }
  }
  EXPECT_EQ(g->getArgument(0)->getUses().size(), 1u);
  expectUseListsConsistent(*g);
  std::string err;
  EXPECT_TRUE(verifies(*g, &err)) << err;
  // Editing the clone leaves the original alone.
  g->getReturn()->setOperand(0, g->getArgument(0));
  EXPECT_EQ(fx.f->getReturn()->getOperand(0), o->getResult());
  EXPECT_TRUE(o->getResult()->hasOneUse());
}

TEST(UseList, ModuleClone) {
  Module m;
  m.name = "layer";
  for (const char *n : {"f", "g"}) {
    auto f = std::make_unique<Function>(n);
    Value *x = f->addArgument(f32({4}), "x");
    f->resultTypes().push_back(f32({4}));
    Builder b(*f);
    auto e = b.create(OpKind::Exp, {x}, {}, "e");
    ASSERT_TRUE(bool(e));
    b.createWithType(OpKind::Return, {(*e)->getResult()}, {}, TensorType());
    m.functions.push_back(std::move(f));
  }
  auto c = m.clone();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "layer");
  ASSERT_EQ(c->functions.size(), 2u);
  EXPECT_NE(c->lookup("f"), nullptr);
  EXPECT_NE(c->lookup("g"), nullptr);
  EXPECT_NE(c->lookup("f"), m.lookup("f"));
  EXPECT_EQ(c->lookup("h"), nullptr);
  EXPECT_EQ(toString(*c), toString(m));
  DiagEngine diag;
  EXPECT_TRUE(verifyModule(*c, diag));
}
