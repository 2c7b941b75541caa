//===- ViewReuse.cpp - Drop, fold and share views -------------------------===//
//
// Reads every view-like op (reshape, permute, slice, broadcast, view) as a
// strided layout over its input's row-major elements, result[i] =
// in[offset + sum_k i_k * strides_k], dims compared symbolically (`2*T` ==
// `T+T`, `T` != `U`; the stride of a size-1 dim does not matter). Along
// use-def chains, to a fixed point, it
//  1. drops a view whose layout is its input's identity (same shape,
//     row-major strides, offset 0), whether the dims are static or not;
//  2. folds a view of a view into one op: reshape, permute, broadcast and
//     same-axis slice chains into one op of that kind; a chain with a general
//     `view` in it into one `view` where that is strided (the inner view is
//     dense, or the outer one is a full row-major reshape of the inner one
//     whose merged dims are contiguous), else it stays; a `view` that is a
//     full row-major reshape becomes a `reshape`;
//  3. makes equal views (same input, same layout, after folding) one value:
//     the one whose name sorts first, so the body order does not matter.
// Every rewrite is exact and keeps the replaced value's type. The layout
// algebra (layoutOf, compose, regroup) is ir/Layout.h's. Needs nothing
// before it; in `default` it follows dyn-dims, whose symbols it compares.
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"
#include "ir/Builder.h"
#include "ir/Layout.h"

#include "llvm/ADT/DenseSet.h"
#include <map>

using namespace moe;

namespace {

/// Sharing key of a layout: strides of size-1 dims do not count.
std::string layoutKey(const Layout &l) {
  std::string k;
  for (size_t i = 0; i < l.shape.size(); ++i)
    k += l.shape[i].str() + ":" + (l.shape[i].isConstant(1) ? "0" : l.strides[i].str()) + ",";
  return k + "+" + l.offset.str();
}

class ViewReusePass : public Pass {
public:
  explicit ViewReusePass(const PassOptions &) {}
  Statistic numDropped{this, "num-views-dropped", "views whose input already had their layout"};
  Statistic numFolded{this, "num-chains-folded", "views of views folded into one"};
  Statistic numShared{this, "num-views-shared", "views replaced by an equal view of the same value"};
  Statistic numToReshape{this, "num-views-to-reshape", "row-major views turned into reshapes"};

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &) override {
    bool changedAny = false, changed = true;
    while (changed) {
      std::vector<Operation *> ops;
      for (auto &op : f.getBody())
        if (op.hasTrait(Trait::ViewLike))
          ops.push_back(&op);
      changed = needSort = false;
      replaced.clear();
      maybeDead.clear();
      reps.clear();
      for (auto *op : ops)
        if (!replaced.count(op))
          changed |= visit(f, op);
      if (needSort)
        f.sortTopologically();
      eraseDead(f);
      changedAny |= changed;
    }
    return changedAny;
  }

private:
  /// Ops whose results were replaced this round (erased at its end).
  llvm::DenseSet<Operation *> replaced;
  /// Ops that lost a use to a rewrite: erased at the round's end if unused.
  llvm::DenseSet<Operation *> maybeDead;
  /// The representative of each (input, layout).
  std::map<std::pair<Value *, std::string>, Operation *> reps;
  bool needSort = false;

  void replace(Operation *op, Value *v) {
    op->getResult()->replaceAllUsesWith(v);
    replaced.insert(op);
    maybeDead.insert(op);
  }

  /// `op` recomputed as `kind(x){attrs}`, in place when the kind is the same;
  /// null when that would not have exactly op's result type.
  Operation *rebuild(Function &f, Operation *op, OpKind kind, Value *x, AttrDict attrs) {
    auto t = inferResultType(kind, {x->getType()}, attrs, f.symbolRanges());
    if (!t) {
      llvm::consumeError(t.takeError());
      return nullptr;
    }
    if (*t != op->getResult()->getType())
      return nullptr;
    if (Operation *d = op->getOperand(0)->getDefiningOp())
      maybeDead.insert(d);
    if (kind == op->getKind()) {
      op->setOperand(0, x);
      op->attrs() = std::move(attrs);
      return op;
    }
    Builder b(f);
    b.setInsertionPoint(op);
    b.setLoc(op->getLoc());
    Operation *n = b.createWithType(kind, {x}, std::move(attrs), *t, op->getResult()->getName());
    replace(op, n->getResult());
    return n;
  }

  static AttrDict viewAttrs(const Layout &l) {
    AttrDict a;
    a.set("shape", Attribute::getDims(l.shape));
    a.set("strides", Attribute::getDims(l.strides));
    a.set("offset", Attribute::getDim(l.offset));
    return a;
  }

  /// Folds `op` into its view-like producer `inner`; returns the op now
  /// computing op's result, or null when the chain stays.
  Operation *fold(Function &f, Operation *op, Operation *inner) {
    Value *x = inner->getOperand(0);
    OpKind k = op->getKind(), ik = inner->getKind();
    if (k == ik && (k == OpKind::Reshape || k == OpKind::Broadcast))
      return rebuild(f, op, k, x, op->attrs()); // the outer target says it all
    if (k == ik && k == OpKind::Permute) {
      auto p1 = *inner->getAttr("perm")->asInts(), p2 = *op->getAttr("perm")->asInts();
      std::vector<int64_t> p;
      for (int64_t i : p2)
        p.push_back(p1[i]);
      AttrDict a = op->attrs();
      a.set("perm", Attribute::getInts(p));
      return rebuild(f, op, k, x, a);
    }
    if (k == ik && k == OpKind::Slice) {
      int64_t rank = x->getType().rank();
      if (normalizeAxis(op->getAttr("axis")->getInt(), rank) !=
          normalizeAxis(inner->getAttr("axis")->getInt(), rank))
        return nullptr;
      AttrDict a = op->attrs();
      a.set("start", Attribute::getDim(inner->getAttr("start")->getDim() +
                                       op->getAttr("start")->getDim()));
      return rebuild(f, op, k, x, a);
    }
    if (k != OpKind::View && ik != OpKind::View)
      return nullptr; // e.g. permute(reshape x): two readable ops stay two
    auto l = compose(*layoutOf(*inner), *op);
    if (!l)
      return nullptr;
    if (isFullReshape(*l, x->getType())) {
      AttrDict a;
      a.set("shape", Attribute::getDims(l->shape));
      return rebuild(f, op, OpKind::Reshape, x, a);
    }
    return rebuild(f, op, OpKind::View, x, viewAttrs(*l));
  }

  /// Drops `op` if it is its input's identity.
  bool dropIdentity(Operation *op) {
    Value *in = op->getOperand(0);
    if (in->getType() != op->getResult()->getType() || !isIdentity(*layoutOf(*op), in->getType()))
      return false;
    replace(op, in);
    ++numDropped;
    return true;
  }

  bool visit(Function &f, Operation *op) {
    // An input that already has the target layout, static dims or not.
    if (dropIdentity(op))
      return true;
    bool changed = false;
    // Fold into the producing view, as long as one folds.
    while (Operation *inner = op->getOperand(0)->getDefiningOp()) {
      if (!inner->hasTrait(Trait::ViewLike))
        break;
      Operation *n = fold(f, op, inner);
      if (!n)
        break;
      op = n;
      ++numFolded;
      changed = true;
    }
    if (dropIdentity(op))
      return true;
    Value *in = op->getOperand(0);
    Layout l = *layoutOf(*op);
    // A row-major view of all of its input is a reshape.
    if (op->is(OpKind::View) && isFullReshape(l, in->getType())) {
      AttrDict a;
      a.set("shape", *op->getAttr("shape"));
      if (Operation *n = rebuild(f, op, OpKind::Reshape, in, a)) {
        op = n;
        ++numToReshape;
        changed = true;
      }
    }
    auto [it, inserted] = reps.try_emplace({in, layoutKey(l)}, op);
    if (inserted)
      return changed;
    Operation *keep = it->second, *drop = op;
    const std::string &kn = keep->getResult()->getName(), &dn = drop->getResult()->getName();
    if (!kn.empty() && !dn.empty() && dn < kn) {
      std::swap(keep, drop);
      needSort = true; // `keep` may now come after some of drop's users
    }
    it->second = keep;
    replace(drop, keep->getResult());
    ++numShared;
    return true;
  }

  /// Erases the ops this round left unused: users first (reverse body order),
  /// then the producers that erasing them left unused.
  void eraseDead(Function &f) {
    std::vector<Operation *> ops;
    for (auto &op : f.getBody())
      ops.push_back(&op);
    for (auto it = ops.rbegin(); it != ops.rend(); ++it) {
      Operation *op = *it;
      if (!maybeDead.count(op) || op->getNumResults() != 1 || !op->getResult()->use_empty() ||
          (!replaced.count(op) && !op->hasTrait(Trait::ViewLike)))
        continue; // a non-view producer is not ours to erase
      if (Operation *d = op->getOperand(0)->getDefiningOp())
        maybeDead.insert(d);
      op->erase();
    }
  }
};

} // namespace

std::unique_ptr<Pass> moe::createViewReusePass(const PassOptions &o) {
  return std::make_unique<ViewReusePass>(o);
}
