//===- DelayAllReduce.cpp - Sink all_reduce past linear ops ---------------===//
//
// An all_reduce right after the partial down projection sums k*n_embd values
// per token; after the expert weighting and sum it would sum n_embd. For each
// all_reduce A(p) this pass finds, along use-def edges (whatever the body
// order), the largest region R of ops downstream of A that is linear in the
// region's values while every other operand is replicated: `mul` by routing
// weights or gathered per-expert scales (any chain), `div` by replicated
// values, `scale` without a bias, views, `gather`, `reduce_sum`/`reduce_mean`, the `add`
// chain of an expert sum (region + region), and bias adds (`add`, `sub`,
// `add_id` of a replicated value). R must have a single escaping value o:
// every other value of R is used only inside R. Then, by linearity,
//   o = f(A(p), b) = A(f(p, 0)) + f(0, b)
// so the region is cloned on the partial p with biases dropped and reduced
// once at the end, and, only if R had a bias, cloned again on zeros with the
// biases kept (computed once, replicated), so no bias is summed N times. o is
// never a bias op itself: a trailing bias (a residual add after the expert
// sum) simply stays after the reduction. Afterwards two all_reduces feeding
// one `add` become one; so a sum with a value computed from another
// all_reduce ends a region instead of being taken as a bias (each side sinks
// to the add, then the pair merges). Stops at anything nonlinear (GLU, norm,
// softmax), at partial-by-partial products and at values with users outside
// the region. Which operands an op is linear in is the op table's
// (isLinearIn, isSummandIn in ir/OpInfo.h).
//
// Where along the region it goes is a matter of cost, not of how far it can
// go: a linear op may widen what is reduced (a matmul by a replicated
// [1024, 64] weight, a mul broadcasting [T,1,64] by [T,8,1]). Of the legal
// end points o the pass takes the one with the fewest bytes per token
// (elements per token of the reduced tensor times the element size; ties:
// the latest), and only if that is no more than where the all_reduce is; a
// later legal end point refused for its cost is a remark with both byte
// counts. Run after tp-split.
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"
#include "ir/Builder.h"
#include "ir/Spmd.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"

#include "fmt/format.h"

using namespace moe;

namespace {

using ValueSet = llvm::DenseSet<const Value *>;
using OpSet = llvm::DenseSet<const Operation *>;

/// An additive op of the region that adds a replicated term (a bias).
bool isBiasOp(const Operation &op, const ValueSet &inR) {
  return op.hasTrait(Trait::Additive) &&
         !(inR.count(op.getOperand(0)) && inR.count(op.getOperand(1)));
}

/// Can a region value sink through operand `i` of `op`? Where `op` is linear
/// in it, or affine (a term of a sum, whose other term is then a bias).
bool linearPosition(const Operation &op, unsigned i) {
  return isLinearIn(op, i) || isSummandIn(op, i);
}

class DelayAllReducePass : public Pass {
public:
  explicit DelayAllReducePass(const PassOptions &) {}
  Statistic numMoved{this, "num-moved", "all_reduces moved past linear ops"};
  Statistic numMerged{this, "num-merged", "all_reduce pairs feeding one add merged"};
  Statistic bytesBefore{this, "bytes-per-token-before", "bytes all-reduced per token, before"};
  Statistic bytesAfter{this, "bytes-per-token-after", "bytes all-reduced per token, after"};

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &ctx) override {
    bytesBefore += bytesPerToken(f);
    bool changed = false, progress = true;
    while (progress) {
      progress = false;
      std::vector<Operation *> ars;
      for (auto &op : f.getBody())
        if (op.is(OpKind::AllReduce))
          ars.push_back(&op);
      for (Operation *a : ars) {
        auto sunk = sink(f, a);
        if (!sunk)
          return sunk.takeError();
        if (*sunk) {
          ++numMoved;
          progress = true;
          break; // the body changed: collect again
        }
      }
      if (!progress) {
        auto merged = mergePair(f);
        if (!merged)
          return merged.takeError();
        if (*merged) {
          ++numMerged;
          progress = true;
        }
      }
      changed |= progress;
    }
    // Every all_reduce is where it costs least; say where moving on was
    // refused for its cost.
    ValueSet local = rankLocalValues(f);
    for (auto &op : f.getBody())
      if (op.is(OpKind::AllReduce))
        if (auto c = choose(f, &op, local); c.refused)
          ctx.diag.opRemark(&op, fmt::format("not moved past %{}: {}",
                                             c.refused->getResult()->getName(), c.whyRefused));
    bytesAfter += bytesPerToken(f);
    return changed;
  }

private:
  /// The token count of an all_reduce: its leading dim (1 for a scalar).
  static DimExpr tokensOf(const Value *v) {
    const TensorType &t = v->getType();
    return t.rank() ? t.dims[0] : DimExpr(1);
  }

  /// Bytes per token were the all_reduce on `v`: its elements per `tokens`
  /// times the element size; none when that is not a constant.
  static std::optional<int64_t> bytesPerToken(const Value *v, const DimExpr &tokens) {
    const TensorType &t = v->getType();
    auto perToken = numElements(t.dims).divExact(tokens);
    if (!perToken)
      return std::nullopt;
    auto n = perToken->getConstant();
    if (!n)
      return std::nullopt;
    return *n / blockElems(t.elem) * blockBytes(t.elem);
  }

  /// Sum over all_reduces of the bytes per token, when static.
  static int64_t bytesPerToken(const Function &f) {
    int64_t total = 0;
    for (auto &op : f.getBody())
      if (op.is(OpKind::AllReduce))
        total += bytesPerToken(op.getResult(), tokensOf(op.getResult())).value_or(0);
    return total;
  }

  /// Where an all_reduce goes: the legal end point with the fewest bytes
  /// per token, if no more than where it is (empty: it stays); and the
  /// latest legal end point refused for its cost, with the reason.
  struct Choice {
    std::vector<Operation *> sub; ///< the ops it moves past, the end last
    Operation *refused = nullptr;
    std::string whyRefused;
  };

  /// Sinks `a` to where it costs least; whether it moved.
  llvm::Expected<bool> sink(Function &f, Operation *a) {
    Choice c = choose(f, a, rankLocalValues(f));
    if (c.sub.empty())
      return false;
    if (auto e = rewrite(f, a, c.sub))
      return e;
    return true;
  }

  static Choice choose(Function &f, Operation *a, const ValueSet &local) {
    Value *ar = a->getResult();
    // Values computed from another all_reduce: added to the region they are
    // not a bias but the other half of a pair that mergePair joins into one
    // reduction (routed experts + shared expert), so the region stops there.
    ValueSet otherReduced;
    for (auto &op : f.getBody()) {
      if (&op == a || op.getNumResults() == 0)
        continue;
      bool from = op.is(OpKind::AllReduce);
      for (auto *v : op.getOperands())
        from |= otherReduced.count(v) > 0;
      if (from)
        otherReduced.insert(op.getResult());
    }
    // 1. The admissible region, in topological (body) order.
    ValueSet downstream{ar}, inR{ar};
    std::vector<Operation *> region;
    for (auto &op : f.getBody()) {
      bool touches = false;
      for (auto *v : op.getOperands())
        touches |= downstream.count(v) > 0;
      if (!touches || op.is(OpKind::Return))
        continue;
      downstream.insert(op.getResult());
      if (!admissible(op, inR, downstream, local, otherReduced))
        continue;
      inR.insert(op.getResult());
      region.push_back(&op);
    }
    // 2. The legal end points: values whose ancestors in R close over their
    // uses. A region never ends on a bias op: `A(f(p)) + b` already adds the
    // bias once, after the reduction, where `A(f(p) + 0) + f(0, b)` would
    // clone the region on zeros (e.g. a residual add after the expert sum).
    // 3. Of those, the cheapest (latest first, so a tie keeps the latest),
    // if it costs no more than where the all_reduce is.
    DimExpr tokens = tokensOf(ar);
    std::optional<int64_t> here = bytesPerToken(ar, tokens), best;
    Choice c;
    for (auto it = region.rbegin(); it != region.rend(); ++it) {
      if (isBiasOp(**it, inR))
        continue;
      std::vector<Operation *> sub = ancestorsIn(*it, region, ar);
      // Moving past bias adds alone gains nothing (and would never stop).
      ValueSet subR{ar};
      for (auto *op : sub)
        subR.insert(op->getResult());
      bool worthIt = false;
      for (auto *op : sub)
        worthIt |= !isBiasOp(*op, subR);
      if (!worthIt || whyNotSink(sub, ar, (*it)->getResult()))
        continue;
      if (Refusal why = whyNotWorth(here, bytesPerToken((*it)->getResult(), tokens))) {
        if (!c.refused) {
          c.refused = *it;
          c.whyRefused = *why;
        }
        continue;
      }
      auto bytes = bytesPerToken((*it)->getResult(), tokens);
      if (!best || *bytes < *best) {
        best = bytes;
        c.sub = std::move(sub);
      }
    }
    return c;
  }

  /// The cost check: refused where the bytes reduced per token would grow,
  /// or cannot be compared.
  static Refusal whyNotWorth(std::optional<int64_t> here, std::optional<int64_t> there) {
    if (!here || !there)
      return std::string("the bytes reduced per token are not static");
    if (*there > *here)
      return fmt::format("the bytes reduced per token would grow from {} to {}", *here, *there);
    return std::nullopt;
  }

  static bool admissible(const Operation &op, const ValueSet &inR, const ValueSet &downstream,
                         const ValueSet &local, const ValueSet &otherReduced) {
    if (op.is(OpKind::AllReduce) || op.getNumResults() == 0)
      return false;
    unsigned inRegion = 0;
    for (unsigned i = 0; i < op.getNumOperands(); ++i) {
      Value *v = op.getOperand(i);
      if (inR.count(v)) {
        if (!linearPosition(op, i))
          return false;
        ++inRegion;
      } else if (downstream.count(v) || local.count(v)) {
        return false; // mixes a non-linear descendant or a rank-local value
      } else if (op.hasTrait(Trait::Additive) && otherReduced.count(v)) {
        return false; // a sum with another reduction's value: merged, not a bias
      }
    }
    if (op.is(OpKind::Concat))
      return inRegion == op.getNumOperands();
    // Two region operands: only a sum is linear (not a product).
    return inRegion == 1 || (inRegion == 2 && op.hasTrait(Trait::Additive));
  }

  static std::vector<Operation *> ancestorsIn(Operation *o, const std::vector<Operation *> &region,
                                              Value *ar) {
    OpSet inRegion(region.begin(), region.end()), keep{o};
    std::vector<Operation *> work{o};
    while (!work.empty()) {
      Operation *op = work.back();
      work.pop_back();
      for (auto *v : op->getOperands())
        if (Operation *d = v->getDefiningOp(); d && inRegion.count(d) && keep.insert(d).second)
          work.push_back(d);
    }
    std::vector<Operation *> out;
    for (auto *op : region)
      if (keep.count(op))
        out.push_back(op);
    return out;
  }

  /// Legal when every value of the sub-region but `out` (and the
  /// all_reduce's result) is used only inside it, and the all_reduce feeds
  /// only the sub-region. (No remark: a smaller region is tried next.)
  static Refusal whyNotSink(const std::vector<Operation *> &sub, Value *ar, Value *out) {
    OpSet s(sub.begin(), sub.end());
    for (auto &u : ar->getUses())
      if (!s.count(u.user))
        return std::string("the all_reduce has users outside the region");
    for (auto *op : sub)
      if (op->getResult() != out)
        for (auto &u : op->getResult()->getUses())
          if (!s.count(u.user))
            return "%" + op->getResult()->getName() + " has users outside the region";
    return std::nullopt;
  }

  /// Clones `sub` with the all_reduce's result replaced by `root`. In the
  /// partial clone (keepBias false) replicated bias operands of additive ops
  /// are dropped; in the bias clone they are kept.
  static llvm::Expected<Value *> cloneRegion(Builder &b, const std::vector<Operation *> &sub,
                                             Value *ar, Value *root, bool keepBias) {
    llvm::DenseMap<const Value *, Value *> map{{ar, root}};
    ValueSet inR{ar};
    for (auto *op : sub)
      inR.insert(op->getResult());
    for (auto *op : sub) {
      b.setInsertionPoint(op);
      b.setLoc(op->getLoc());
      std::vector<Value *> ops;
      for (auto *v : op->getOperands())
        ops.push_back(map.count(v) ? map[v] : v);
      Value *r;
      if (isBiasOp(*op, inR) && !keepBias) {
        // Drop the replicated term: x + b -> x, b - x -> -x, add_id -> x.
        r = inR.count(op->getOperand(0)) ? ops[0] : ops[1];
        if (!inR.count(op->getOperand(0)) && op->is(OpKind::Sub)) {
          auto neg = b.createValue(OpKind::Neg, {r});
          if (!neg)
            return neg.takeError();
          r = *neg;
        }
        if (r->getType() != op->getResult()->getType()) {
          AttrDict a;
          a.set("shape", Attribute::getDims(op->getResult()->getType().dims));
          auto bc = b.createValue(OpKind::Broadcast, {r}, a);
          if (!bc)
            return bc.takeError();
          r = *bc;
        }
      } else {
        r = b.createWithType(op->getKind(), ops, op->attrs(), op->getResult()->getType(),
                             op->getResult()->getName())
                ->getResult();
      }
      map[op->getResult()] = r;
    }
    return map[sub.back()->getResult()];
  }

  static llvm::Error rewrite(Function &f, Operation *a, const std::vector<Operation *> &sub) {
    Value *ar = a->getResult(), *out = sub.back()->getResult();
    Builder b(f);
    auto partial = cloneRegion(b, sub, ar, a->getOperand(0), /*keepBias=*/false);
    if (!partial)
      return partial.takeError();
    b.setInsertionPoint(sub.back());
    b.setLoc(a->getLoc()); // the moved all_reduce keeps its place in the source
    AttrDict sum;
    sum.set("sum", Attribute::getBool(true));
    auto reduced = b.createValue(OpKind::AllReduce, {*partial}, sum, out->getName() + "_sum");
    if (!reduced)
      return reduced.takeError();
    ValueSet inR{ar};
    for (auto *op : sub)
      inR.insert(op->getResult());
    bool hasBias = false;
    for (auto *op : sub)
      hasBias |= isBiasOp(*op, inR);
    Value *result = *reduced;
    if (hasBias) {
      b.setInsertionPoint(sub.front());
      Value *zero = b.constant(0.0, ar->getType(), "zero");
      auto biasTerm = cloneRegion(b, sub, ar, zero, /*keepBias=*/true);
      if (!biasTerm)
        return biasTerm.takeError();
      b.setInsertionPoint(sub.back());
      auto add = b.createValue(OpKind::Add, {*reduced, *biasTerm}, {}, out->getName());
      if (!add)
        return add.takeError();
      result = *add;
    }
    out->replaceAllUsesWith(result);
    for (auto it = sub.rbegin(); it != sub.rend(); ++it)
      (*it)->erase();
    a->erase();
    return llvm::Error::success();
  }

  /// add(all_reduce a, all_reduce b) -> all_reduce(add(a, b)).
  static llvm::Expected<bool> mergePair(Function &f) {
    for (auto &op : f.getBody()) {
      if (!op.is(OpKind::Add))
        continue;
      Operation *a = op.getOperand(0)->getDefiningOp(), *c = op.getOperand(1)->getDefiningOp();
      if (!a || !c || a == c || !a->is(OpKind::AllReduce) || !c->is(OpKind::AllReduce) ||
          !a->getResult()->hasOneUse() || !c->getResult()->hasOneUse())
        continue;
      Builder b(f);
      b.setInsertionPoint(&op);
      b.setLoc(op.getLoc());
      auto s = b.createValue(OpKind::Add, {a->getOperand(0), c->getOperand(0)}, {},
                             op.getResult()->getName() + "_partial");
      if (!s)
        return s.takeError();
      auto r = b.createValue(OpKind::AllReduce, {*s}, a->attrs(), op.getResult()->getName());
      if (!r)
        return r.takeError();
      op.getResult()->replaceAllUsesWith(*r);
      op.erase();
      a->erase();
      c->erase();
      return true;
    }
    return false;
  }
};
} // namespace

std::unique_ptr<Pass> moe::createDelayAllReducePass(const PassOptions &o) {
  return std::make_unique<DelayAllReducePass>(o);
}
