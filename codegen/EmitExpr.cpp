//===- EmitExpr.cpp - Fused expressions: element `idx` of a value ---------===//
//
// emitValue/emitCompute (Emitter.h). A value with a buffer is loaded; any
// other value is computed from its operands at the index it is asked for:
// elementwise ops apply ir/Scalar.h's semantics to their (broadcast)
// operands, views map the index back to their operand's, gather and add_id
// load through a range-checked id, concat branches on the axis index. A
// computed f16/bf16 value is rounded to its type, exactly as the interpreter
// rounds every op result.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

using namespace moe;
using namespace moe::codegen;
using llvm::ArrayRef;

llvm::Value *KernelEmitter::emitValue(const Value *v, ArrayRef<llvm::Value *> idx) {
  auto it = S.bufferOf.find(v);
  if (it == S.bufferOf.end())
    return emitCompute(v, idx);
  const TensorType &ty = v->getType();
  return loadElem(bufferPtr(it->second), ty.elem, linearize(idx, ty.dims));
}

/// The index of `operand` for element `idx` of a broadcasting result.
llvm::Value *KernelEmitter::broadcastOperand(const Value *operand, const TensorType &result,
                                             ArrayRef<llvm::Value *> idx) {
  const Shape &od = operand->getType().dims;
  size_t lead = result.dims.size() - od.size();
  std::vector<llvm::Value *> oi(od.size());
  for (size_t d = 0; d < od.size(); ++d)
    oi[d] = od[d].isConstant(1) ? c64(0) : idx[lead + d];
  return emitValue(operand, oi);
}

static std::vector<int64_t> intsOf(const Attribute *a) {
  auto v = a ? a->asInts() : std::nullopt;
  return v ? *v : std::vector<int64_t>{};
}

static int64_t axisOf(const Operation &op, int64_t rank) {
  const Attribute *a = op.getInfo().attrOrDefault(op.attrs(), "axis");
  return *normalizeAxis(a->getInt(), rank);
}

/// A dense constant list as a private global of f32 or i32.
static llvm::GlobalVariable *constantTable(KernelEmitter &E, const Operation &op,
                                           ElemType elem) {
  auto &list = op.getAttr("value")->getList();
  std::vector<llvm::Constant *> vals;
  for (auto &a : list) {
    if (elem == ElemType::I32)
      vals.push_back(llvm::ConstantInt::get(E.i32(), a.isInt()
                                                         ? std::clamp<int64_t>(a.getInt(), INT32_MIN, INT32_MAX)
                                                         : (int64_t)a.getNumber()));
    else
      vals.push_back(llvm::ConstantFP::get(E.f32(), (float)a.getNumber()));
  }
  auto *ty = llvm::ArrayType::get(elem == ElemType::I32 ? E.i32() : E.f32(), vals.size());
  return new llvm::GlobalVariable(E.S.module, ty, true, llvm::GlobalValue::PrivateLinkage,
                                  llvm::ConstantArray::get(ty, vals), "moe.const");
}

llvm::Value *KernelEmitter::emitCompute(const Value *v, ArrayRef<llvm::Value *> idx) {
  const Operation &op = *v->getDefiningOp();
  const TensorType &ty = v->getType();
  OpKind k = op.getKind();
  auto operand = [&](unsigned i) { return op.getOperand(i); };
  scalar::Params params = scalar::readParams(op.getInfo(), op.attrs());
  llvm::Value *r = nullptr;

  if (scalar::isBinary(k)) {
    llvm::Value *a = broadcastOperand(operand(0), ty, idx);
    llvm::Value *b = broadcastOperand(operand(1), ty, idx);
    if (k == OpKind::Div && ty.elem == ElemType::I32)
      failUnless(S.errorSite(ErrorSite::Kind::DivByZero, op),
                 B.CreateICmpNE(b, B.getInt32(0)), linearize(idx, ty.dims), c64(0), c64(0));
    r = binary(k, a, b);
  } else if (scalar::isUnary(k)) {
    r = unary(k, params, emitValue(operand(0), idx));
  } else if (scalar::isGlu(k)) {
    r = glu(k, params, emitValue(operand(0), idx), emitValue(operand(1), idx));
  } else {
    switch (k) {
    case OpKind::Cast: {
      llvm::Value *x = emitValue(operand(0), idx);
      bool fromInt = operand(0)->getType().elem == ElemType::I32;
      if (ty.elem == ElemType::I32)
        r = fromInt ? x : B.CreateIntrinsic(llvm::Intrinsic::fptosi_sat, {i32(), f32()}, {x});
      else
        r = fromInt ? B.CreateSIToFP(x, f32()) : x;
      break;
    }
    case OpKind::Constant: {
      const Attribute *a = op.getAttr("value");
      if (a->isList()) {
        auto *g = constantTable(*this, op, ty.elem);
        llvm::Type *et = ty.elem == ElemType::I32 ? i32() : f32();
        r = B.CreateLoad(et, B.CreateGEP(g->getValueType(), g, {c64(0), linearize(idx, ty.dims)}));
      } else if (ty.elem == ElemType::I32) {
        double d = a->getNumber();
        int64_t iv = a->isInt() ? std::clamp<int64_t>(a->getInt(), INT32_MIN, INT32_MAX)
                                : (std::isnan(d) ? 0 : (int64_t)std::clamp(d, -2147483648.0, 2147483647.0));
        r = B.getInt32((int32_t)iv);
      } else {
        r = cf((float)a->getNumber());
      }
      break;
    }
    case OpKind::Reshape:
      return emitValue(operand(0),
                       delinearize(linearize(idx, ty.dims), operand(0)->getType().dims));
    case OpKind::Permute: {
      auto perm = intsOf(op.getAttr("perm"));
      std::vector<llvm::Value *> in(perm.size());
      for (size_t i = 0; i < perm.size(); ++i)
        in[perm[i]] = idx[i];
      return emitValue(operand(0), in);
    }
    case OpKind::Slice: {
      std::vector<llvm::Value *> in(idx.begin(), idx.end());
      int64_t ax = axisOf(op, ty.rank());
      in[ax] = B.CreateAdd(in[ax], dim(op.getAttr("start")->getDim()));
      return emitValue(operand(0), in);
    }
    case OpKind::Broadcast:
      return broadcastOperand(operand(0), ty, idx);
    case OpKind::View: {
      auto &strides = op.getAttr("strides")->getList();
      llvm::Value *flat = op.getAttr("offset") ? dim(op.getAttr("offset")->getDim()) : c64(0);
      for (size_t d = 0; d < idx.size(); ++d)
        flat = B.CreateAdd(flat, B.CreateMul(idx[d], dim(strides[d].getDim())));
      return emitValue(operand(0), delinearize(flat, operand(0)->getType().dims));
    }
    case OpKind::Concat: {
      // Branch on the axis index: operand i covers [start_i, start_i + n_i).
      int64_t ax = axisOf(op, ty.rank());
      llvm::Type *et = ty.elem == ElemType::I32 ? i32() : f32();
      auto *join = llvm::BasicBlock::Create(C, "concat.join", fn);
      llvm::BasicBlock *cur = B.GetInsertBlock();
      B.SetInsertPoint(join);
      auto *phi = B.CreatePHI(et, op.getNumOperands());
      B.SetInsertPoint(cur);
      llvm::Value *start = c64(0);
      for (unsigned i = 0; i < op.getNumOperands(); ++i) {
        llvm::Value *n = dim(operand(i)->getType().dims[ax]);
        llvm::Value *next = B.CreateAdd(start, n);
        bool last = i + 1 == op.getNumOperands();
        auto *take = llvm::BasicBlock::Create(C, "concat.take", fn);
        auto *skip = last ? nullptr : llvm::BasicBlock::Create(C, "concat.next", fn);
        if (last)
          B.CreateBr(take);
        else
          B.CreateCondBr(B.CreateICmpULT(idx[ax], next), take, skip);
        B.SetInsertPoint(take);
        std::vector<llvm::Value *> in(idx.begin(), idx.end());
        in[ax] = B.CreateSub(idx[ax], start);
        llvm::Value *x = emitValue(operand(i), in);
        phi->addIncoming(x, B.GetInsertBlock());
        B.CreateBr(join);
        if (skip)
          B.SetInsertPoint(skip);
        start = next;
      }
      B.SetInsertPoint(join);
      return phi;
    }
    case OpKind::Gather: {
      const Value *src = operand(0), *ids = operand(1);
      int64_t ax = axisOf(op, src->getType().rank());
      size_t ir = ids->getType().rank();
      std::vector<llvm::Value *> ii(idx.begin(), idx.begin() + ir);
      llvm::Value *id = B.CreateSExt(emitValue(ids, ii), i64());
      checkIndex(S.errorSite(ErrorSite::Kind::GatherIndex, op), linearize(ii, ids->getType().dims),
                 id, dim(src->getType().dims[ax]));
      std::vector<llvm::Value *> si(idx.begin(), idx.begin() + ax);
      si.push_back(id);
      si.insert(si.end(), idx.begin() + ir, idx.end());
      return emitValue(src, si);
    }
    case OpKind::AddId: {
      const Value *x = operand(0), *b = operand(1), *ids = operand(2);
      std::vector<llvm::Value *> ii(idx.begin(), idx.begin() + 2);
      llvm::Value *id = B.CreateSExt(emitValue(ids, ii), i64());
      checkIndex(S.errorSite(ErrorSite::Kind::BiasId, op), linearize(ii, ids->getType().dims), id,
                 dim(b->getType().dims[0]));
      r = B.CreateFAdd(emitValue(x, idx), emitValue(b, {id, idx[2]}));
      break;
    }
    default:
      llvm_unreachable("the planner gives this op a kernel of its own");
    }
  }
  return ty.elem == ElemType::I32 ? r : roundTo(ty.elem, r);
}
