//===- TestSwapDims.cpp - A deliberately wrong re-symbolisation (tests) ---===//
//
// Runs dyn-dims with the same options, then puts T on the wrong one of two
// dims that were equal when captured: in the first reshape whose target has
// the symbol T and a static dim equal to T's captured value, and where the
// function still verifies after the swap, the two swap, and every type after
// it is re-inferred. At the captured size the function
// is unchanged (same shapes, same data); at any other size it is wrong. It
// exists so a test can check that --verify-numerics catches a wrong
// re-symbolisation, which a check at the captured size alone cannot.
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"
#include "ir/Builder.h"

#include "llvm/ADT/StringMap.h"

using namespace moe;

namespace {
class TestSwapDimsPass : public Pass {
public:
  explicit TestSwapDimsPass(const PassOptions &) {}
  llvm::Expected<bool> runOnFunction(Function &f, PassContext &ctx) override {
    // The captured value of each symbol, read before dyn-dims rewrites it.
    llvm::StringMap<int64_t> captured;
    for (auto &[sym, where] : getOptions().entries) {
      auto [arg, axisText] = llvm::StringRef(where).split(':');
      int64_t axis;
      Value *a = f.lookupArgument(arg);
      if (a && !axisText.getAsInteger(10, axis) && axis >= 0 && axis < a->getType().rank())
        if (auto c = a->getType().dims[axis].getConstant())
          captured[sym] = *c;
    }
    auto dyn = createDynDimsPass(getOptions());
    dyn->configure("dyn-dims", getOptions());
    auto changed = dyn->runOnFunction(f, ctx);
    if (!changed || !*changed)
      return changed;
    for (auto &op : f.getBody()) {
      if (!op.is(OpKind::Reshape))
        continue;
      Shape target = *op.getAttr("shape")->asDims();
      for (size_t i = 0; i < target.size(); ++i)
        for (size_t j = 0; j < target.size(); ++j)
          for (auto &[sym, c] : captured)
            if (target[i] == DimExpr::symbol(sym) && target[j].isConstant(c) &&
                trySwap(f, op, target, i, j))
              return true;
    }
    return true;
  }

private:
  /// Swaps dims i and j of `from`'s target and re-infers the result types of
  /// `from` and every op after it; undoes it all and returns false when some
  /// type no longer infers.
  static bool trySwap(Function &f, Operation &from, Shape target, size_t i, size_t j) {
    AttrDict oldAttrs = from.attrs();
    std::vector<std::pair<Operation *, TensorType>> old;
    for (auto &op : f.getBody())
      if (!op.is(OpKind::Return))
        old.push_back({&op, op.getResult()->getType()});
    std::swap(target[i], target[j]);
    from.attrs().set("shape", Attribute::getDims(target));
    bool on = false;
    for (auto &op : f.getBody()) {
      on |= &op == &from;
      if (!on || op.is(OpKind::Return))
        continue;
      std::vector<TensorType> in;
      for (auto *v : op.getOperands())
        in.push_back(v->getType());
      auto t = inferResultType(op.getKind(), in, op.attrs(), f.symbolRanges());
      if (!t) {
        llvm::consumeError(t.takeError());
        from.attrs() = oldAttrs;
        for (auto &[o, ty] : old)
          o->getResult()->setType(ty);
        return false;
      }
      op.getResult()->setType(*t);
    }
    if (Operation *ret = f.getReturn())
      for (unsigned i = 0; i < ret->getNumOperands(); ++i)
        f.resultTypes()[i] = ret->getOperand(i)->getType();
    return true;
  }
};
} // namespace

std::unique_ptr<Pass> moe::createTestSwapDimsPass(const PassOptions &o) {
  return std::make_unique<TestSwapDimsPass>(o);
}
