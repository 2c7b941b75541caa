//===- RmsFusion.cpp - Fuse RMS normalisation into rms_norm ---------------===//
//
// Rewrites `x * rsqrt(mean(x*x, last axis) + eps) [* w]` into
// `rms_norm x [, w] {eps}`. Matched from each reduce_mean/reduce_sum along
// use-def chains, never by body order: the square is `mul x, x`, `pow{2}` or
// `sqr`; the per-row value may pass through any chain of `scale{factor,
// bias}`, `add`/`mul`/`div` by splat constants and reshapes, tracked as
// `a * reduce + b`; the inverse root is `rsqrt`, `pow{-0.5}`, `1 / sqrt` or
// `x / sqrt`; a final `mul` by a param or constant w of shape [N] or
// [1, ..., N] is fused too. x may be a cast (f32 compute): two identical
// casts of one value count as one x; casts around the pattern stay.
//
// Legal when: the reduction is over the innermost axis; the square and the
// product use the same x; the mean divides by exactly that axis's length
// (`a * N == 1` for a sum, with N static, `a == 1` for a mean, symbolic N
// being fine); eps (`b`) comes from constants only; the per-row factor
// broadcasts along the normalised axis only (keepdim, or a reshape back);
// every intermediate value has no other user; x is f32. A near miss gets a
// remark on the reduction saying why. A legal match is then checked against
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
#include "passes/TargetDesc.h"
#include "ir/Builder.h"

#include "fmt/format.h"
#include "llvm/ADT/DenseSet.h"
#include <cmath>

using namespace moe;

namespace {

/// The value of a float splat constant (a number, or a list of equal numbers).
std::optional<double> splatValue(Value *v) {
  Operation *d = v->getDefiningOp();
  if (!d || !d->is(OpKind::Constant) || v->getType().elem == ElemType::I32)
    return std::nullopt;
  const Attribute *a = d->attrs().get("value");
  if (!a)
    return std::nullopt;
  if (a->isNumber())
    return a->getNumber();
  if (!a->isList() || a->getList().empty() || !a->getList()[0].isNumber())
    return std::nullopt;
  double first = a->getList()[0].getNumber();
  for (auto &e : a->getList())
    if (!e.isNumber() || e.getNumber() != first)
      return std::nullopt;
  return first;
}

/// Same value, looking through identical casts of one value.
bool sameValue(Value *a, Value *b) {
  if (a == b)
    return true;
  Operation *da = a->getDefiningOp(), *db = b->getDefiningOp();
  return da && db && da->is(OpKind::Cast) && db->is(OpKind::Cast) &&
         da->getOperand(0) == db->getOperand(0) && a->getType() == b->getType();
}

bool isOne(Value *v) {
  auto c = splatValue(v);
  return c && *c == 1;
}

double exponent(const Operation *op) { return op->getAttr("exponent")->getNumber(); }

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

/// Everything found on the use-def chains around one reduction.
struct RmsMatch {
  Operation *reduce = nullptr;
  Value *squaredA = nullptr, *squaredB = nullptr; ///< the square's operand(s)
  Value *x = nullptr;                             ///< what the product normalises
  Value *factor = nullptr;                        ///< the per-row 1/rms x meets
  Value *w = nullptr;
  std::vector<Operation *> ops; ///< the ops the fused op replaces, last one last
  double a = 1, b = 0;          ///< the per-row value is a * reduce + b
  Value *nonConstEps = nullptr;
  Value *sharedValue = nullptr; ///< first intermediate with another user
};

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
      auto m = match(r);
      if (!m)
        continue;
      if (auto why = illegal(*m)) {
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

  /// How far along the chain after the reduction a walk is.
  enum class Stage { Row, Root, InvRoot, Done };

  static std::optional<RmsMatch> match(Operation *reduce);
  static std::optional<Stage> step(RmsMatch &m, Operation *u, Value *cur, Stage s);
  static std::optional<std::string> illegal(const RmsMatch &m);
  llvm::Error fuse(Function &f, const RmsMatch &m);
};

/// Advances the walk by one user `u` of `cur` at stage `s`: the new stage,
/// or nullopt when `u` does not continue the pattern.
std::optional<RmsFusionPass::Stage> RmsFusionPass::step(RmsMatch &m, Operation *u, Value *cur,
                                                        Stage s) {
  Value *other = u->getNumOperands() == 2 ? u->getOperand(u->getOperand(0) == cur ? 1 : 0)
                                          : nullptr;
  if (u->is(OpKind::Reshape))
    return s;
  switch (s) {
  case Stage::Row: {
    if (u->is(OpKind::Scale)) {
      double f = u->getAttr("factor")->getNumber(), c = u->getAttr("bias")->getNumber();
      m.a *= f, m.b = m.b * f + c;
      return Stage::Row;
    }
    if (u->is(OpKind::Rsqrt) || (u->is(OpKind::Pow) && exponent(u) == -0.5))
      return Stage::InvRoot;
    if (u->is(OpKind::Sqrt) || (u->is(OpKind::Pow) && exponent(u) == 0.5))
      return Stage::Root;
    // A constant operand must not widen the per-row value.
    if (!(u->is(OpKind::Add) || u->is(OpKind::Mul) || u->is(OpKind::Div)) || other == cur ||
        u->getResult()->getType() != cur->getType())
      return std::nullopt;
    auto c = splatValue(other);
    if (u->is(OpKind::Add)) {
      if (c)
        m.b += *c;
      else if (!m.nonConstEps)
        m.nonConstEps = other;
      return Stage::Row;
    }
    if (!c || *c == 0 || (u->is(OpKind::Div) && u->getOperand(1) != other))
      return std::nullopt;
    double f = u->is(OpKind::Mul) ? *c : 1 / *c;
    m.a *= f, m.b *= f;
    return Stage::Row;
  }
  case Stage::Root: // 1 / sqrt(v), or x / sqrt(v)
    if (!u->is(OpKind::Div) || u->getOperand(1) != cur || other == cur)
      return std::nullopt;
    if (isOne(other) && u->getResult()->getType() == cur->getType())
      return Stage::InvRoot;
    if (u->getResult()->getType() != other->getType())
      return std::nullopt;
    m.x = other, m.factor = cur;
    return Stage::Done;
  case Stage::InvRoot: // x * rsqrt(v); a constant in place of x is some other formula
    if (!u->is(OpKind::Mul) || other == cur || splatValue(other) ||
        u->getResult()->getType() != other->getType())
      return std::nullopt;
    m.x = other, m.factor = cur;
    return Stage::Done;
  case Stage::Done:
    break;
  }
  return std::nullopt;
}

std::optional<RmsMatch> RmsFusionPass::match(Operation *reduce) {
  RmsMatch m;
  m.reduce = reduce;
  Operation *sq = reduce->getOperand(0)->getDefiningOp();
  if (!sq)
    return std::nullopt;
  if (sq->is(OpKind::Mul))
    m.squaredA = sq->getOperand(0), m.squaredB = sq->getOperand(1);
  else if (sq->is(OpKind::Sqr) ||
           (sq->is(OpKind::Pow) && sq->getAttr("exponent")->getNumber() == 2))
    m.squaredA = m.squaredB = sq->getOperand(0);
  else
    return std::nullopt;
  m.ops = {sq, reduce};
  if (!sq->getResult()->hasOneUse())
    m.sharedValue = sq->getResult();

  // Walk down from the reduction: each value's users are tried in turn and
  // the first that continues the pattern is taken.
  Value *cur = reduce->getResult();
  Stage s = Stage::Row;
  while (s != Stage::Done) {
    std::optional<Stage> next;
    Operation *taken = nullptr;
    std::vector<Operation *> users = cur->getUsers();
    std::stable_partition(users.begin(), users.end(),
                          [](Operation *u) { return !u->is(OpKind::Reshape); });
    for (Operation *u : users) {
      RmsMatch trial = m;
      if ((next = step(trial, u, cur, s))) {
        m = trial, taken = u;
        break;
      }
    }
    if (!taken)
      return std::nullopt;
    if (cur->getUses().size() > 1 && !m.sharedValue)
      m.sharedValue = cur;
    m.ops.push_back(taken);
    s = *next;
    cur = taken->getResult();
  }

  // An optional `* w`, w a param or constant along the normalised axis only.
  if (!cur->hasOneUse())
    return m;
  Operation *u = cur->getUses()[0].user;
  if (!u->is(OpKind::Mul) || u->getResult()->getType() != cur->getType())
    return m;
  Value *w = u->getOperand(u->getOperand(0) == cur ? 1 : 0);
  const Shape &xd = cur->getType().dims, &wd = w->getType().dims;
  bool constant = w->getDefiningOp() && w->getDefiningOp()->is(OpKind::Constant);
  if (w == cur || !(w->isParam() || constant) || wd.empty() || wd.size() > xd.size() ||
      wd.back() != xd.back())
    return m;
  for (size_t i = 0; i + 1 < wd.size(); ++i)
    if (!wd[i].isConstant(1))
      return m;
  m.w = w;
  m.ops.push_back(u);
  return m;
}

std::optional<std::string> RmsFusionPass::illegal(const RmsMatch &m) {
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
