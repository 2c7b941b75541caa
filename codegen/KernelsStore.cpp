//===- KernelsStore.cpp - Materialising a fused value; all_reduce ---------===//
//
// The store kernel fills the buffer of a value whose op is fused (Lowering.h)
// when the planner gives it one: items are the value's rows, the last dim
// the inner, vectorisable loop. all_reduce is lowered as a store of its
// operand's expression into its buffer, then the reduction step, in place.
//
//===----------------------------------------------------------------------===//
#include "codegen/Lowering.h"

using namespace moe;
using namespace moe::codegen;
using llvm::ArrayRef;

/// Items worth one task: about 16K inner iterations of `perItem` each.
int64_t codegen::grainFor(const DimExpr &perItem) {
  int64_t n = perItem.getConstant().value_or(64);
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1));
}

/// Items = rows of `shape` (dims but the last); calls fn(full index) for
/// every element of the rows in [begin, end), the last dim innermost.
static void forEachRowElement(KernelEmitter &E, const Shape &shape,
                              const std::function<void(ArrayRef<llvm::Value *>)> &fn) {
  if (shape.empty()) {
    E.loop(E.begin, E.end, [&](llvm::Value *) { fn({}); }, "item");
    return;
  }
  Shape rows(shape.begin(), shape.end() - 1);
  E.loop(E.begin, E.end, [&](llvm::Value *row) {
    std::vector<llvm::Value *> idx = E.delinearize(row, rows);
    E.loop(E.c64(0), E.dim(shape.back()), [&](llvm::Value *j) {
      idx.push_back(j);
      fn(idx);
      idx.pop_back();
    }, "j");
  }, "row");
}

Extent codegen::emitStoreKernel(
    KernelEmitter &E, const Value *v,
    const std::function<llvm::Value *(ArrayRef<llvm::Value *>)> &source) {
  const TensorType &ty = v->getType();
  llvm::Value *base = E.bufferPtr(E.S.bufferOf.lookup(v));
  forEachRowElement(E, ty.dims, [&](ArrayRef<llvm::Value *> idx) {
    // One statement per emitted value: C++ leaves the order of a call's
    // arguments open, and the IR (the cache key) must not depend on the
    // compiler that built moe.
    llvm::Value *v = source(idx);
    E.storeElem(base, ty.elem, E.linearize(idx, ty.dims), v);
  });
  E.finish();
  if (ty.dims.empty())
    return {DimExpr(1), 1};
  Shape rows(ty.dims.begin(), ty.dims.end() - 1);
  return {numElements(rows), grainFor(ty.dims.back())};
}

void codegen::kernelAllReduce(StepBuilder &K, const Operation &op, unsigned buf) {
  const Value *v = op.getResult(), *src = op.getOperand(0);
  K.addKernel(op, "", {buf}, [&](KernelEmitter &E) {
    return emitStoreKernel(E, v, [&](ArrayRef<llvm::Value *> idx) { return E.emitValue(src, idx); });
  });
  K.addAllReduce(op, buf);
}
