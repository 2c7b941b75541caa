//===- Canonicalize.cpp - Constant folding and identity elimination -------===//
//
// Folds elementwise ops whose operands are all f32 splat constants into one
// constant (computed with the shared scalar semantics of ir/Scalar.h, so the
// fold equals what the interpreter computes), and drops identities whose
// input already has the result type: `mul x, 1`, `add x, 0`, `sub x, 0`,
// `div x, 1`, `scale{factor = 1}`, `pow{exponent = 1}`, `neg(neg x)`, a
// reshape/broadcast to the same shape, an identity permute, slice or cast,
// a one-operand concat; and folds `reshape(reshape x)` into one reshape.
// Runs to a fixed point. Needs nothing before it.
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"
#include "ir/Builder.h"
#include "ir/Scalar.h"

using namespace moe;

namespace {

/// The value of an f32 splat constant: folding computes in f32 (as the
/// interpreter does), so other float types are left alone.
std::optional<float> f32Splat(Value *v) {
  if (v->getType().elem != ElemType::F32)
    return std::nullopt;
  auto s = splatValue(v);
  return s ? std::optional<float>((float)*s) : std::nullopt;
}

bool isSplat(Value *v, float x) {
  auto s = f32Splat(v);
  return s && *s == x;
}

class CanonicalizePass : public Pass {
public:
  explicit CanonicalizePass(const PassOptions &) {}
  Statistic numFolded{this, "num-folded", "ops folded to constants"};
  Statistic numIdentities{this, "num-identities", "identity ops removed"};
  Statistic numReshapeChains{this, "num-reshape-chains", "reshape(reshape x) folded"};

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &) override {
    bool changedAny = false, changed = true;
    while (changed) {
      changed = false;
      std::vector<Operation *> ops;
      for (auto &op : f.getBody())
        ops.push_back(&op);
      for (auto *op : ops) {
        if (op->is(OpKind::Return) || op->getResult()->use_empty())
          continue;
        if (Value *r = foldConstant(f, op)) {
          replace(op, r);
          ++numFolded;
        } else if (Value *r = identity(op)) {
          replace(op, r);
          ++numIdentities;
        } else if (foldReshapeChain(op)) {
          ++numReshapeChains;
        } else {
          continue;
        }
        changed = changedAny = true;
      }
    }
    return changedAny;
  }

private:
  static void replace(Operation *op, Value *v) {
    op->getResult()->replaceAllUsesWith(v);
    op->erase();
  }

  Value *foldConstant(Function &f, Operation *op) {
    OpKind k = op->getKind();
    const TensorType &rt = op->getResult()->getType();
    if (rt.elem != ElemType::F32)
      return nullptr;
    std::vector<float> in;
    for (auto *v : op->getOperands()) {
      auto s = f32Splat(v);
      if (!s)
        return nullptr;
      in.push_back(*s);
    }
    auto p = scalar::readParams(op->getInfo(), op->attrs());
    float r;
    if (scalar::isUnary(k))
      r = scalar::unary(k, p, in[0]);
    else if (scalar::isBinary(k))
      r = scalar::binary(k, in[0], in[1]);
    else if (scalar::isGlu(k))
      r = scalar::glu(k, p, in[0], in[1]);
    else
      return nullptr;
    Builder b(f);
    b.setInsertionPoint(op);
    b.setLoc(op->getLoc());
    return b.constant(r, rt, op->getResult()->getName());
  }

  static Value *identity(Operation *op) {
    const TensorType &rt = op->getResult()->getType();
    auto same = [&](Value *v) { return v->getType() == rt ? v : nullptr; };
    Value *a = op->getNumOperands() ? op->getOperand(0) : nullptr;
    Value *b = op->getNumOperands() > 1 ? op->getOperand(1) : nullptr;
    switch (op->getKind()) {
    case OpKind::Mul:
      if (isSplat(b, 1))
        return same(a);
      if (isSplat(a, 1))
        return same(b);
      return nullptr;
    case OpKind::Add:
      if (isSplat(b, 0))
        return same(a);
      if (isSplat(a, 0))
        return same(b);
      return nullptr;
    case OpKind::Sub:
      return isSplat(b, 0) ? same(a) : nullptr;
    case OpKind::Div:
      return isSplat(b, 1) ? same(a) : nullptr;
    case OpKind::Scale: {
      auto p = scalar::readParams(op->getInfo(), op->attrs());
      return p.factor == 1 && p.bias == 0 ? same(a) : nullptr;
    }
    case OpKind::Pow:
      return scalar::readParams(op->getInfo(), op->attrs()).exponent == 1 ? same(a) : nullptr;
    case OpKind::Neg: {
      Operation *d = a->getDefiningOp();
      return d && d->is(OpKind::Neg) ? same(d->getOperand(0)) : nullptr;
    }
    case OpKind::Reshape:
    case OpKind::Broadcast:
    case OpKind::Cast:
    case OpKind::Slice:
    case OpKind::Concat:
      if (op->is(OpKind::Concat) && op->getNumOperands() != 1)
        return nullptr;
      return same(a);
    case OpKind::Permute: {
      auto perm = op->attrs().get("perm")->asInts();
      for (size_t i = 0; perm && i < perm->size(); ++i)
        if ((*perm)[i] != (int64_t)i)
          return nullptr;
      return same(a);
    }
    default:
      return nullptr;
    }
  }

  /// reshape(reshape(x)) -> reshape(x); the inner one dies if unused.
  static bool foldReshapeChain(Operation *op) {
    if (!op->is(OpKind::Reshape))
      return false;
    Operation *inner = op->getOperand(0)->getDefiningOp();
    if (!inner || !inner->is(OpKind::Reshape))
      return false;
    op->setOperand(0, inner->getOperand(0));
    if (inner->getResult()->use_empty())
      inner->erase();
    return true;
  }
};
} // namespace

std::unique_ptr<Pass> moe::createCanonicalizePass(const PassOptions &o) {
  return std::make_unique<CanonicalizePass>(o);
}
