//===- RmsMatch.cpp - The RMS-norm pattern rms-fusion looks for -----------===//
#include "passes/RmsMatch.h"
#include "ir/Builder.h"

#include <algorithm>

using namespace moe;

namespace {

/// How far along the chain after the reduction a walk is.
enum class Stage { Row, Root, InvRoot, Done };

bool isOne(Value *v) {
  auto c = splatValue(v);
  return c && *c == 1;
}

double exponent(const Operation *op) { return op->getAttr("exponent")->getNumber(); }

/// Advances the walk by one user `u` of `cur` at stage `s`: the new stage,
/// or nullopt when `u` does not continue the pattern.
std::optional<Stage> step(RmsMatch &m, Operation *u, Value *cur, Stage s) {
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

} // namespace

std::optional<RmsMatch> moe::matchRms(Operation *reduce) {
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

