//===- KernelsStore.cpp - Materialising a fused value; all_reduce ---------===//
//
// The store kernel fills the buffer of a value whose op is fused (Lowering.h)
// when the planner gives it one: items are the value's rows, the last dim
// the inner, vectorisable loop; a row is a row body (RowBody), which the
// planner may run in one loop with its neighbours' (a row group). The
// loop of row bodies is here too. all_reduce is lowered as a store of its
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

Extent codegen::emitRowKernel(KernelEmitter &E, ArrayRef<RowBody> bodies) {
  const Shape &positions = bodies.front().positions;
  DimExpr perRow(0);
  for (const RowBody &b : bodies) {
    assert(b.positions == positions && "a row group shares its positions");
    perRow = perRow + b.perRow;
  }
  E.loop(E.begin, E.end, [&](llvm::Value *item) {
    std::vector<llvm::Value *> pos = E.delinearize(item, positions);
    for (const RowBody &b : bodies)
      b.emit(pos);
  }, "pos");
  E.finish();
  // A task's positions are a multiple of 16: two threads never write one
  // cache line of an arena buffer (64-byte aligned) with a float or more
  // per position (routing's weight sums), and a streaming store takes
  // longer runs (the GLU's store
  // at T = 512, 21 rows a task before: 6-9% faster, qwen3 and gemma4).
  return {numElements(positions), (grainFor(perRow) + 15) / 16 * 16};
}

RowBody codegen::storeRowBody(KernelEmitter &E, const Value *v,
                              std::function<llvm::Value *(ArrayRef<llvm::Value *>)> source) {
  const TensorType &ty = v->getType();
  llvm::Value *base = E.bufferPtr(E.S.bufferOf.lookup(v));
  RowBody r;
  r.positions = Shape(ty.dims.begin(), ty.dims.end() - 1);
  r.perRow = ty.dims.back();
  r.emit = [&E, &ty, base, source = std::move(source)](ArrayRef<llvm::Value *> pos) {
    std::vector<llvm::Value *> idx(pos.begin(), pos.end());
    E.loop(E.c64(0), E.dim(ty.dims.back()), [&](llvm::Value *j) {
      idx.push_back(j);
      // One statement per emitted value: C++ leaves the order of a call's
      // arguments open, and the IR (the cache key) must not depend on the
      // compiler that built moe.
      llvm::Value *x = source(idx);
      E.storeElem(base, ty.elem, E.linearize(idx, ty.dims), x);
      idx.pop_back();
    }, "j");
  };
  return r;
}

Extent codegen::emitStoreKernel(
    KernelEmitter &E, const Value *v,
    const std::function<llvm::Value *(ArrayRef<llvm::Value *>)> &source) {
  const TensorType &ty = v->getType();
  if (!ty.dims.empty())
    return emitRowKernel(E, {storeRowBody(E, v, source)});
  llvm::Value *base = E.bufferPtr(E.S.bufferOf.lookup(v));
  E.loop(E.begin, E.end, [&](llvm::Value *) {
    llvm::Value *x = source({});
    E.storeElem(base, ty.elem, E.c64(0), x);
  }, "item");
  E.finish();
  return {DimExpr(1), 1};
}

void codegen::kernelAllReduce(StepBuilder &K, const Operation &op, unsigned buf) {
  const Value *v = op.getResult(), *src = op.getOperand(0);
  K.addKernel(op, "", {buf}, [&](KernelEmitter &E) {
    return emitStoreKernel(E, v, [&](ArrayRef<llvm::Value *> idx) { return E.emitValue(src, idx); });
  });
  K.addAllReduce(op, buf);
}
