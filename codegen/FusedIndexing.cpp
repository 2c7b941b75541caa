//===- FusedIndexing.cpp - Views, concat, gather and add_id ---------------===//
//
// The fused lowerings of the ops that move elements (Lowering.h): a view
// maps the index it is asked for back to its operand's (reshape linearises
// and delinearises, permute permutes, slice offsets, broadcast zeroes, view
// applies its strides), so no view is ever a copy; concat branches on the
// axis index; gather and add_id load through an id that is range-checked
// first (a bad id reports through moe_rt_error and the kernel returns 1).
//
//===----------------------------------------------------------------------===//
#include "codegen/Lowering.h"

using namespace moe;
using namespace moe::codegen;
using llvm::ArrayRef;

static const Value *operand(const Value *v, unsigned i) {
  return v->getDefiningOp()->getOperand(i);
}

llvm::Value *codegen::exprReshape(KernelEmitter &E, const Value *v, ArrayRef<llvm::Value *> idx) {
  const Value *x = operand(v, 0);
  return E.emitValue(x, E.delinearize(E.linearize(idx, v->getType().dims), x->getType().dims));
}

llvm::Value *codegen::exprPermute(KernelEmitter &E, const Value *v, ArrayRef<llvm::Value *> idx) {
  auto perm = v->getDefiningOp()->getAttr("perm")->asInts().value_or(std::vector<int64_t>{});
  std::vector<llvm::Value *> in(perm.size());
  for (size_t i = 0; i < perm.size(); ++i)
    in[perm[i]] = idx[i];
  return E.emitValue(operand(v, 0), in);
}

llvm::Value *codegen::exprSlice(KernelEmitter &E, const Value *v, ArrayRef<llvm::Value *> idx) {
  const Operation &op = *v->getDefiningOp();
  std::vector<llvm::Value *> in(idx.begin(), idx.end());
  int64_t ax = axisOf(op, v->getType().rank());
  in[ax] = E.B.CreateAdd(in[ax], E.dim(op.getAttr("start")->getDim()));
  return E.emitValue(operand(v, 0), in);
}

llvm::Value *codegen::exprBroadcast(KernelEmitter &E, const Value *v,
                                    ArrayRef<llvm::Value *> idx) {
  return E.broadcastOperand(operand(v, 0), v->getType(), idx);
}

llvm::Value *codegen::exprView(KernelEmitter &E, const Value *v, ArrayRef<llvm::Value *> idx) {
  const Operation &op = *v->getDefiningOp();
  auto &strides = op.getAttr("strides")->getList();
  llvm::Value *flat = op.getAttr("offset") ? E.dim(op.getAttr("offset")->getDim()) : E.c64(0);
  for (size_t d = 0; d < idx.size(); ++d)
    flat = E.B.CreateAdd(flat, E.B.CreateMul(idx[d], E.dim(strides[d].getDim())));
  return E.emitValue(operand(v, 0), E.delinearize(flat, operand(v, 0)->getType().dims));
}

/// Operand i covers [start_i, start_i + n_i) of the axis: a chain of
/// branches, joined by a phi.
llvm::Value *codegen::exprConcat(KernelEmitter &E, const Value *v, ArrayRef<llvm::Value *> idx) {
  auto &B = E.B;
  const Operation &op = *v->getDefiningOp();
  const TensorType &ty = v->getType();
  int64_t ax = axisOf(op, ty.rank());
  llvm::Type *et = ty.elem == ElemType::I32 ? E.i32() : E.f32();
  auto *join = llvm::BasicBlock::Create(E.C, "concat.join", E.fn);
  llvm::BasicBlock *cur = B.GetInsertBlock();
  B.SetInsertPoint(join);
  auto *phi = B.CreatePHI(et, op.getNumOperands());
  B.SetInsertPoint(cur);
  llvm::Value *start = E.c64(0);
  for (unsigned i = 0; i < op.getNumOperands(); ++i) {
    llvm::Value *next = B.CreateAdd(start, E.dim(operand(v, i)->getType().dims[ax]));
    bool last = i + 1 == op.getNumOperands();
    auto *take = llvm::BasicBlock::Create(E.C, "concat.take", E.fn);
    auto *skip = last ? nullptr : llvm::BasicBlock::Create(E.C, "concat.next", E.fn);
    if (last)
      B.CreateBr(take);
    else
      B.CreateCondBr(B.CreateICmpULT(idx[ax], next), take, skip);
    B.SetInsertPoint(take);
    std::vector<llvm::Value *> in(idx.begin(), idx.end());
    in[ax] = B.CreateSub(idx[ax], start);
    llvm::Value *x = E.emitValue(operand(v, i), in);
    phi->addIncoming(x, B.GetInsertBlock());
    B.CreateBr(join);
    if (skip)
      B.SetInsertPoint(skip);
    start = next;
  }
  B.SetInsertPoint(join);
  return phi;
}

/// The index `ids` holds at `at`, as i64. A kernel never writes a buffer it
/// reads (a step's result has a buffer of its own), so a load of the ids is
/// marked invariant: where the index does not change along the innermost
/// loop (a row's expert id, read for each of the row's elements), LLVM
/// moves the load and the range check after it out of that loop, which
/// then vectorises (gpt-oss's swiglu_oai with the bias add fused: 21 ms a
/// call at T = 512 with them in the loop, 3.9 out of it).
static llvm::Value *loadIndex(KernelEmitter &E, const Value *ids, ArrayRef<llvm::Value *> at) {
  llvm::Value *raw = E.emitValue(ids, at);
  if (auto *load = llvm::dyn_cast<llvm::LoadInst>(raw))
    load->setMetadata(llvm::LLVMContext::MD_invariant_load, llvm::MDNode::get(E.C, {}));
  return E.B.CreateSExt(raw, E.i64());
}

llvm::Value *codegen::exprGather(KernelEmitter &E, const Value *v, ArrayRef<llvm::Value *> idx) {
  const Operation &op = *v->getDefiningOp();
  const Value *src = operand(v, 0), *ids = operand(v, 1);
  int64_t ax = axisOf(op, src->getType().rank());
  size_t ir = ids->getType().rank();
  std::vector<llvm::Value *> ii(idx.begin(), idx.begin() + ir);
  llvm::Value *id = loadIndex(E, ids, ii);
  llvm::Value *at = E.linearize(ii, ids->getType().dims);
  E.checkIndex(E.S.errorSite(ErrorSite::Kind::GatherIndex, op), at, id,
               E.dim(src->getType().dims[ax]));
  std::vector<llvm::Value *> si(idx.begin(), idx.begin() + ax);
  si.push_back(id);
  si.insert(si.end(), idx.begin() + ir, idx.end());
  return E.emitValue(src, si);
}

llvm::Value *codegen::exprAddId(KernelEmitter &E, const Value *v, ArrayRef<llvm::Value *> idx) {
  const Operation &op = *v->getDefiningOp();
  const Value *x = operand(v, 0), *b = operand(v, 1), *ids = operand(v, 2);
  std::vector<llvm::Value *> ii(idx.begin(), idx.begin() + 2);
  llvm::Value *id = loadIndex(E, ids, ii); // the row's expert id
  llvm::Value *at = E.linearize(ii, ids->getType().dims);
  E.checkIndex(E.S.errorSite(ErrorSite::Kind::BiasId, op), at, id, E.dim(b->getType().dims[0]));
  llvm::Value *xv = E.emitValue(x, idx);
  llvm::Value *r = E.B.CreateFAdd(xv, E.emitValue(b, {id, idx[2]}));
  return v->getType().elem == ElemType::F32 ? r : E.roundTo(v->getType().elem, r);
}
