//===- WeightType.cpp - Retyping a module's weights -----------------------===//
#include "runtime/WeightType.h"

#include "ir/Error.h"

using namespace moe;

namespace {
bool isWeight(const Value &a, WeightSet which) {
  for (auto &u : a.getUses())
    if (u.index == 1 && (u.user->is(OpKind::MatmulId) ||
                         (which == WeightSet::Matmul && u.user->is(OpKind::Matmul))))
      return true;
  return false;
}
} // namespace

llvm::Error moe::retypeWeights(Module &m, ElemType type, WeightSet which) {
  for (auto &f : m.functions)
    for (Value *a : f->getArguments()) {
      if (!a->isParam() || !isWeight(*a, which))
        continue;
      TensorType t = a->getType();
      t.elem = type;
      if (isQuantized(type) && (t.dims.empty() || !t.dims.back().isMultipleOf(blockElems(type))))
        return err("%{} has rows of {} elements, not a multiple of {}", a->getName(),
                   t.dims.empty() ? "1" : t.dims.back().str(), blockElems(type));
      a->setType(t);
    }
  return llvm::Error::success();
}
