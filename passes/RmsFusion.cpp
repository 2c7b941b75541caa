//===- RmsFusion.cpp - Fuse RMS normalisation into rms_norm ---------------===//
//
// Rewrites `x * rsqrt(mean(x*x, last axis) + eps) [* w]` into
// `rms_norm x [, w] {eps}`. Matched from each reduce_mean/reduce_sum along
// use-def chains, never by body order (the forms matched are listed in
// RmsMatch.h: squares, per-row scalings, inverse roots, an optional `* w`).
// x may be a cast (f32 compute): two identical casts of one value count as
// one x; casts around the pattern stay.
//
// Legal when: the reduction is over the innermost axis; the square and the
// product use the same x; the mean divides by exactly that axis's length
// (`a * N == 1` for a sum, with N static, `a == 1` for a mean, symbolic N
// being fine); eps (`b`) comes from constants only; the per-row factor
// broadcasts along the normalised axis only (keepdim, or a reshape back);
// every intermediate value has no other user; x is f32 (whyNotFuse). A near
// miss gets a remark on the reduction saying why. A legal match is then checked against
// the target (`--target-desc`, else the built-in cpu): when its fused
// rms_norm is not valid for x's shape class (e.g. dynamic rows), the graph
// stays unfused with a remark naming the target and the reason.
//
// Run after dyn-dims (the target check needs the real, symbolic shape
// class). The fused ops, and the constants and casts only they used, are
// erased here; nothing is left for dce.
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"
#include "passes/RmsMatch.h"
#include "passes/TargetDesc.h"
#include "ir/Builder.h"

#include "fmt/format.h"
#include "llvm/ADT/DenseSet.h"
#include <cmath>

using namespace moe;

namespace {

/// Same value, looking through identical casts of one value.
bool sameValue(Value *a, Value *b) {
  if (a == b)
    return true;
  Operation *da = a->getDefiningOp(), *db = b->getDefiningOp();
  return da && db && da->is(OpKind::Cast) && db->is(OpKind::Cast) &&
         da->getOperand(0) == db->getOperand(0) && a->getType() == b->getType();
}

std::string valueName(const Value *v) { return "%" + v->getName(); }

bool near(double a, double b) { return std::fabs(a - b) <= 1e-6 * std::fabs(b); }

/// `d` as an integer when it is one up to float text rounding (1/63 written
/// as 0.015873015873015872 is a divisor of 63).
std::optional<int64_t> asInteger(double d) {
  if (!std::isfinite(d) || std::fabs(d) > 1e15 || !near(d, std::round(d)))
    return std::nullopt;
  return (int64_t)std::round(d);
}

/// `63`, or `63.5` when not an integer.
std::string numText(double d) {
  auto i = asInteger(d);
  return i ? std::to_string(*i) : formatFloat(d);
}

class RmsFusionPass : public Pass {
public:
  explicit RmsFusionPass(const PassOptions &) {}
  Statistic numFused{this, "num-fused", "RMS norms fused into rms_norm"};
  Statistic numIllegal{this, "num-rejected-illegal",
                       "near misses left unfused (remark emitted)"};
  Statistic numByTarget{this, "num-rejected-by-target",
                        "legal matches the target's fused rms_norm is not valid for"};

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &ctx) override {
    const TargetDesc &target = ctx.target ? *ctx.target : TargetDesc::cpu();
    std::vector<Operation *> reductions;
    for (auto &op : f.getBody())
      if (op.is(OpKind::ReduceMean) || op.is(OpKind::ReduceSum))
        reductions.push_back(&op);
    erased.clear();
    bool changed = false;
    for (Operation *r : reductions) {
      if (erased.count(r))
        continue;
      auto m = matchRms(r);
      if (!m)
        continue;
      if (auto why = whyNotFuse(*m)) {
        ctx.diag.opRemark(r, "not fused into rms_norm: " + *why);
        ++numIllegal;
        continue;
      }
      if (auto why = target.whyInvalid("rms_norm", m->x->getType(), f.symbolRanges())) {
        ctx.diag.opRemark(r, fmt::format("not fused into rms_norm for target '{}': {}",
                                         target.getName(), *why));
        ++numByTarget;
        continue;
      }
      if (auto e = fuse(f, *m))
        return e;
      ++numFused;
      changed = true;
    }
    return changed;
  }

private:
  llvm::DenseSet<Operation *> erased;

  static Refusal whyNotFuse(const RmsMatch &m);
  llvm::Error fuse(Function &f, const RmsMatch &m);
};

/// Legality of a match: the near miss's remark text, or none.
Refusal RmsFusionPass::whyNotFuse(const RmsMatch &m) {
  const TensorType &in = m.reduce->getOperand(0)->getType();
  int64_t rank = in.rank();
  auto axis = normalizeAxis(m.reduce->attrs().getInt("axis", -1), rank);
  if (!axis || *axis != rank - 1)
    return fmt::format("it reduces axis {}, not the innermost axis {}",
                       axis ? *axis : m.reduce->attrs().getInt("axis", -1), rank - 1);
  if (m.x->getType().elem != ElemType::F32)
    return fmt::format("it computes in {}; only f32 computations are fused (rounding would "
                       "change)",
                       elemTypeName(m.x->getType().elem).str());
  if (!sameValue(m.squaredA, m.squaredB))
    return fmt::format("the square multiplies two different values, {} and {}",
                       valueName(m.squaredA), valueName(m.squaredB));
  if (!sameValue(m.squaredA, m.x))
    return fmt::format("it squares {} but normalises {}", valueName(m.squaredA), valueName(m.x));
  // The mean must divide by exactly N, the normalised axis's length. A
  // reduce_mean does (for symbolic N too) when nothing rescales it; a sum is
  // divided by the constant 1/a, which as a dim must equal N.
  const DimExpr &n = in.dims.back();
  if (m.reduce->is(OpKind::ReduceMean)) {
    if (!near(m.a, 1.0))
      return n.getConstant()
                 ? fmt::format("the mean divides by {}, not by the length {} of the normalised "
                               "axis",
                               numText(*n.getConstant() / m.a), n.str())
                 : fmt::format("the mean over the normalised axis (length {}) is scaled by {}",
                               n.str(), numText(m.a));
  } else {
    double d = 1 / m.a;
    if (near(d, 1.0) && !n.isConstant(1))
      return fmt::format("the sum is not divided by the length {} of the normalised axis",
                         n.str());
    auto divisor = asInteger(d);
    if (!divisor || DimExpr(*divisor) != n)
      return fmt::format("the mean divides by {}, not by the length {} of the normalised axis",
                         numText(d), n.str());
  }
  if (m.nonConstEps)
    return fmt::format("eps {} is not a constant", valueName(m.nonConstEps));
  Shape want(m.x->getType().dims);
  want.back() = DimExpr(1);
  Shape got(want.size() - std::min(want.size(), m.factor->getType().dims.size()), DimExpr(1));
  for (auto &d : m.factor->getType().dims)
    got.push_back(d);
  if (got != want)
    return fmt::format("the per-row factor {} does not broadcast along the normalised axis "
                       "only (use keepdim or reshape it back)",
                       m.factor->getType().str());
  if (m.sharedValue)
    return fmt::format("{} has other users", valueName(m.sharedValue));
  return std::nullopt;
}

llvm::Error RmsFusionPass::fuse(Function &f, const RmsMatch &m) {
  Operation *last = m.ops.back();
  Builder b(f);
  b.setInsertionPoint(last);
  b.setLoc(last->getLoc());
  AttrDict attrs;
  attrs.set("eps", Attribute::getFloat(m.b));
  std::vector<Value *> operands{m.x};
  if (m.w)
    operands.push_back(m.w);
  auto norm = b.create(OpKind::RmsNorm, operands, attrs, last->getResult()->getName());
  if (!norm)
    return norm.takeError();
  last->getResult()->replaceAllUsesWith((*norm)->getResult());

  // Erase the pattern, then whatever only it used (eps, 1/n, a second cast).
  std::vector<Operation *> producers;
  for (Operation *op : m.ops)
    for (Value *v : op->getOperands())
      if (Operation *d = v->getDefiningOp())
        producers.push_back(d);
  for (Operation *op : m.ops)
    op->dropAllReferences();
  for (Operation *op : m.ops) {
    erased.insert(op);
    op->erase();
  }
  while (!producers.empty()) {
    Operation *d = producers.back();
    producers.pop_back();
    if (erased.count(d) || !d->getResult()->use_empty())
      continue;
    for (Value *v : d->getOperands())
      if (Operation *p = v->getDefiningOp())
        producers.push_back(p);
    d->dropAllReferences();
    erased.insert(d);
    d->erase();
  }
  return llvm::Error::success();
}

} // namespace

std::unique_ptr<Pass> moe::createRmsFusionPass(const PassOptions &o) {
  return std::make_unique<RmsFusionPass>(o);
}
