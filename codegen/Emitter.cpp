//===- Emitter.cpp - Loops, loads, scalar math, fused expressions ---------===//
//
// The building blocks of every kernel (see Emitter.h), and the dispatch of
// emitValue/emitCompute to the ops' fused lowerings. Buffer pointers and
// symbol values are loaded once, in the kernel's entry block, so that they
// are loop-invariant for LLVM whatever the loops store.
//
//===----------------------------------------------------------------------===//
#include "codegen/Lowering.h"

#include "llvm/IR/Intrinsics.h"

using namespace moe;
using namespace moe::codegen;
using llvm::ArrayRef;

KernelEmitter::KernelEmitter(LowerState &s, llvm::StringRef name)
    : S(s), C(s.module.getContext()), B(C) {
  auto *fty = llvm::FunctionType::get(B.getInt32Ty(),
                                      {B.getPtrTy(), B.getPtrTy(), B.getInt64Ty(),
                                       B.getInt64Ty(), B.getPtrTy()},
                                      false);
  fn = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name, S.module);
  fn->addFnAttr(llvm::Attribute::NoUnwind);
  // The loop vectoriser's width: the target's widest f32 vector. LLVM
  // prefers 256 bits on AVX-512 Intel cores (for clock speed on old ones),
  // which ran the loops it vectorises itself (the GLU's store, the sum
  // over the experts' slots) 8 lanes wide.
  fn->addFnAttr("prefer-vector-width", std::to_string(S.target.vectorBits));
  for (unsigned a : {0u, 1u}) {
    fn->addParamAttr(a, llvm::Attribute::NoAlias);
    fn->addParamAttr(a, llvm::Attribute::ReadOnly);
  }
  bufs = fn->getArg(0);
  syms = fn->getArg(1);
  begin = fn->getArg(2);
  end = fn->getArg(3);
  rt = fn->getArg(4);
  auto *entry = llvm::BasicBlock::Create(C, "entry", fn);
  auto *body = llvm::BasicBlock::Create(C, "body", fn);
  B.SetInsertPoint(entry);
  B.CreateBr(body);
  B.SetInsertPoint(body);
}

/// Emits `make` at the end of the entry block (before its branch).
template <typename Fn> static llvm::Value *inEntry(KernelEmitter &E, Fn make) {
  llvm::IRBuilder<> eb(E.fn->getEntryBlock().getTerminator());
  return make(eb);
}

//===----------------------------------------------------------------------===//
// Dims and indices
//===----------------------------------------------------------------------===//

llvm::Value *KernelEmitter::entryAlloca(llvm::Type *t) {
  return inEntry(*this, [&](llvm::IRBuilder<> &eb) { return eb.CreateAlloca(t); });
}

llvm::Value *KernelEmitter::dim(const DimExpr &d) {
  if (auto c = d.getConstant())
    return c64(*c);
  llvm::Value *sum = nullptr;
  for (auto &[mono, coeff] : d.getTerms()) {
    llvm::Value *term = c64(coeff);
    for (auto &[name, power] : mono) {
      unsigned k = S.symbolIndex.lookup(name);
      llvm::Value *sym = inEntry(*this, [&](llvm::IRBuilder<> &eb) {
        return eb.CreateLoad(eb.getInt64Ty(), eb.CreateConstGEP1_64(eb.getInt64Ty(), syms, k),
                             name);
      });
      for (unsigned p = 0; p < power; ++p)
        term = B.CreateMul(term, sym);
    }
    sum = sum ? B.CreateAdd(sum, term) : term;
  }
  return sum ? sum : c64(0);
}

std::vector<llvm::Value *> KernelEmitter::dims(const Shape &s) {
  std::vector<llvm::Value *> r;
  for (auto &d : s)
    r.push_back(dim(d));
  return r;
}

llvm::Value *KernelEmitter::product(ArrayRef<DimExpr> d) {
  DimExpr p(1);
  for (auto &x : d)
    p = p * x;
  return dim(p);
}

llvm::Value *KernelEmitter::linearize(ArrayRef<llvm::Value *> idx, const Shape &shape) {
  llvm::Value *off = c64(0);
  for (size_t d = 0; d < shape.size(); ++d)
    off = d == 0 ? idx[0] : B.CreateAdd(B.CreateMul(off, dim(shape[d])), idx[d]);
  return off;
}

std::vector<llvm::Value *> KernelEmitter::delinearize(llvm::Value *flat, const Shape &shape) {
  std::vector<llvm::Value *> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    if (d == 0) {
      idx[0] = flat;
      break;
    }
    llvm::Value *n = dim(shape[d]);
    if (shape[d].isConstant(1)) {
      idx[d] = c64(0);
      continue;
    }
    idx[d] = B.CreateURem(flat, n);
    flat = B.CreateUDiv(flat, n);
  }
  return idx;
}

//===----------------------------------------------------------------------===//
// Loops
//===----------------------------------------------------------------------===//

llvm::Value *KernelEmitter::loopAcc(
    llvm::Value *lo, llvm::Value *hi, llvm::Value *init,
    const std::function<llvm::Value *(llvm::Value *, llvm::Value *)> &body,
    llvm::StringRef name, bool unroll) {
  llvm::BasicBlock *pre = B.GetInsertBlock();
  auto *header = llvm::BasicBlock::Create(C, name + ".head", fn);
  auto *bodyBB = llvm::BasicBlock::Create(C, name + ".body", fn);
  auto *exit = llvm::BasicBlock::Create(C, name + ".exit", fn);
  B.CreateBr(header);
  B.SetInsertPoint(header);
  auto *iv = B.CreatePHI(i64(), 2, name);
  iv->addIncoming(lo, pre);
  llvm::PHINode *acc = nullptr;
  if (init) {
    acc = B.CreatePHI(init->getType(), 2, name + ".acc");
    acc->addIncoming(init, pre);
  }
  B.CreateCondBr(B.CreateICmpSLT(iv, hi), bodyBB, exit);
  B.SetInsertPoint(bodyBB);
  llvm::Value *next = body(iv, acc);
  auto *ivNext = B.CreateAdd(iv, c64(1), name + ".next", /*NUW=*/true, /*NSW=*/true);
  llvm::BasicBlock *latch = B.GetInsertBlock();
  iv->addIncoming(ivNext, latch);
  if (acc)
    acc->addIncoming(next, latch);
  markBackEdge(B.CreateBr(header), unroll);
  B.SetInsertPoint(exit);
  return acc;
}

void KernelEmitter::markBackEdge(llvm::BranchInst *back, bool unroll) {
  if (unroll && unrollLoops)
    return;
  llvm::MDNode *disable =
      llvm::MDNode::get(C, {llvm::MDString::get(C, "llvm.loop.unroll.disable")});
  llvm::MDNode *self = llvm::MDNode::getDistinct(C, {nullptr, disable});
  self->replaceOperandWith(0, self);
  back->setMetadata(llvm::LLVMContext::MD_loop, self);
}

void KernelEmitter::loop(llvm::Value *lo, llvm::Value *hi,
                         const std::function<void(llvm::Value *)> &body,
                         llvm::StringRef name, bool unroll) {
  loopAcc(lo, hi, nullptr,
          [&](llvm::Value *iv, llvm::Value *) {
            body(iv);
            return nullptr;
          },
          name, unroll);
}

//===----------------------------------------------------------------------===//
// Loads and stores
//===----------------------------------------------------------------------===//

llvm::Value *KernelEmitter::bufferPtr(unsigned id) {
  auto it = bufferPtrs.find(id);
  if (it != bufferPtrs.end())
    return it->second;
  auto *p = inEntry(*this, [&](llvm::IRBuilder<> &eb) {
    return eb.CreateLoad(eb.getPtrTy(), eb.CreateConstGEP1_64(eb.getPtrTy(), bufs, id),
                         "buf" + std::to_string(id));
  });
  bufferPtrs[id] = p;
  return p;
}

llvm::Value *KernelEmitter::e8m0Half(llvm::Value *e8) {
  // i8 -> i32 -> float, or the same lane by lane (constants splat).
  llvm::Type *i32t = e8->getType()->getWithNewBitWidth(32);
  auto k = [&](uint32_t v) { return llvm::ConstantInt::get(i32t, v); };
  llvm::Value *e = B.CreateZExt(e8, i32t);
  llvm::Value *sub = B.CreateShl(k(0x00200000), e);
  llvm::Value *norm = B.CreateShl(B.CreateSub(e, k(1)), k(23));
  llvm::Value *bits = B.CreateSelect(B.CreateICmpULT(e, k(2)), sub, norm);
  return B.CreateBitCast(bits, i32t->getWithNewType(f32()));
}

/// The E2M1 code points doubled, as runtime/Formats.h's kMxfp4Values (ggml's
/// kvalues_mxfp4); the differential tests check the two agree.
static constexpr int8_t kMxfp4ValuesForCodegen[16] = {0,  1,  2,  3,  4,  6,  8,  12,
                                                      0, -1, -2, -3, -4, -6, -8, -12};

/// The mxfp4 code table (doubled E2M1 values) as a global.
static llvm::GlobalVariable *mxfp4Table(KernelEmitter &E) {
  auto &M = E.S.module;
  if (auto *g = M.getNamedGlobal("moe.mxfp4"))
    return g;
  std::vector<llvm::Constant *> vals;
  for (int8_t v : kMxfp4ValuesForCodegen)
    vals.push_back(llvm::ConstantFP::get(E.f32(), v));
  auto *ty = llvm::ArrayType::get(E.f32(), 16);
  return new llvm::GlobalVariable(M, ty, true, llvm::GlobalValue::PrivateLinkage,
                                  llvm::ConstantArray::get(ty, vals), "moe.mxfp4");
}

llvm::Value *KernelEmitter::loadElem(llvm::Value *base, ElemType elem, llvm::Value *off) {
  switch (elem) {
  case ElemType::F32:
    return B.CreateLoad(f32(), B.CreateGEP(f32(), base, off));
  case ElemType::I32:
    return B.CreateLoad(i32(), B.CreateGEP(i32(), base, off));
  case ElemType::F16:
    return B.CreateFPExt(B.CreateLoad(B.getHalfTy(), B.CreateGEP(B.getHalfTy(), base, off)),
                         f32());
  case ElemType::BF16: {
    llvm::Value *h = B.CreateLoad(B.getInt16Ty(), B.CreateGEP(B.getInt16Ty(), base, off));
    return B.CreateBitCast(B.CreateShl(B.CreateZExt(h, i32()), 16), f32());
  }
  case ElemType::Q8_0:
  case ElemType::Q4_0:
  case ElemType::MXFP4: {
    int64_t bytes = rowBytes(elem, 32);
    llvm::Value *blk = B.CreateUDiv(off, c64(32)), *j = B.CreateURem(off, c64(32));
    llvm::Value *p = B.CreateGEP(i8(), base, B.CreateMul(blk, c64(bytes)));
    if (elem == ElemType::Q8_0) {
      llvm::Value *d = B.CreateFPExt(B.CreateLoad(B.getHalfTy(), p), f32());
      llvm::Value *q = B.CreateLoad(i8(), B.CreateGEP(i8(), p, B.CreateAdd(j, c64(2))));
      return B.CreateFMul(B.CreateSIToFP(q, f32()), d);
    }
    int64_t qoff = elem == ElemType::Q4_0 ? 2 : 1;
    llvm::Value *byte = B.CreateLoad(
        i8(), B.CreateGEP(i8(), p, B.CreateAdd(B.CreateURem(j, c64(16)), c64(qoff))));
    llvm::Value *hi = B.CreateICmpUGE(j, c64(16));
    llvm::Value *nib = B.CreateAnd(B.CreateSelect(hi, B.CreateLShr(byte, 4), byte),
                                   B.getInt8(15));
    if (elem == ElemType::Q4_0) {
      llvm::Value *d = B.CreateFPExt(B.CreateLoad(B.getHalfTy(), p), f32());
      llvm::Value *q = B.CreateSub(B.CreateZExt(nib, i32()), B.getInt32(8));
      return B.CreateFMul(B.CreateSIToFP(q, f32()), d);
    }
    llvm::Value *d = e8m0Half(B.CreateLoad(i8(), p));
    auto *table = mxfp4Table(*this);
    llvm::Value *v = B.CreateLoad(
        f32(), B.CreateGEP(table->getValueType(), table, {c64(0), B.CreateZExt(nib, i64())}));
    return B.CreateFMul(v, d);
  }
  }
  return nullptr;
}

/// f32 -> bf16 bits as ggml's GGML_FP32_TO_BF16 (runtime/Formats.cpp).
/// f32 (or a vector of them) to bf16 bits, rounding to nearest even; NaN
/// stays a quiet NaN.
static llvm::Value *toBF16Bits(KernelEmitter &E, llvm::Value *x) {
  auto &B = E.B;
  llvm::Type *it = x->getType()->getWithNewType(E.i32());
  auto c = [&](uint32_t v) { return llvm::ConstantInt::get(it, v); };
  llvm::Value *u = B.CreateBitCast(x, it);
  llvm::Value *isNaN = B.CreateICmpUGT(B.CreateAnd(u, c(0x7fffffff)), c(0x7f800000));
  llvm::Value *nan = B.CreateOr(B.CreateLShr(u, c(16)), c(64));
  llvm::Value *bias = B.CreateAdd(c(0x7fff), B.CreateAnd(B.CreateLShr(u, c(16)), c(1)));
  llvm::Value *rnd = B.CreateLShr(B.CreateAdd(u, bias), c(16));
  return B.CreateTrunc(B.CreateSelect(isNaN, nan, rnd), x->getType()->getWithNewType(B.getInt16Ty()));
}

void KernelEmitter::storeElem(llvm::Value *base, ElemType elem, llvm::Value *off,
                              llvm::Value *v) {
  switch (elem) {
  case ElemType::F32:
    B.CreateStore(v, B.CreateGEP(f32(), base, off));
    return;
  case ElemType::I32:
    B.CreateStore(v, B.CreateGEP(i32(), base, off));
    return;
  case ElemType::F16: {
    llvm::Value *h = B.CreateFPTrunc(v, B.getHalfTy());
    B.CreateStore(h, B.CreateGEP(B.getHalfTy(), base, off));
    return;
  }
  case ElemType::BF16: {
    llvm::Value *bits = toBF16Bits(*this, v);
    B.CreateStore(bits, B.CreateGEP(B.getInt16Ty(), base, off));
    return;
  }
  default:
    llvm_unreachable("block-quantised results are rejected by the planner");
  }
}

llvm::Value *KernelEmitter::roundTo(ElemType elem, llvm::Value *x) {
  if (elem == ElemType::F16)
    return B.CreateFPExt(B.CreateFPTrunc(x, x->getType()->getWithNewType(B.getHalfTy())),
                         x->getType());
  if (elem == ElemType::BF16) {
    llvm::Type *it = x->getType()->getWithNewType(i32());
    return B.CreateBitCast(B.CreateShl(B.CreateZExt(toBF16Bits(*this, x), it),
                                       llvm::ConstantInt::get(it, 16)),
                           x->getType());
  }
  return x;
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

void KernelEmitter::checkIndex(unsigned site, llvm::Value *pos, llvm::Value *id,
                               llvm::Value *limit) {
  // Unsigned compare: a negative id is a huge unsigned value.
  failUnless(site, B.CreateICmpULT(id, limit), pos, id, limit);
}

void KernelEmitter::failUnless(unsigned site, llvm::Value *ok, llvm::Value *pos,
                               llvm::Value *id, llvm::Value *limit) {
  if (!errorBB) {
    llvm::IRBuilder<>::InsertPointGuard g(B);
    errorBB = llvm::BasicBlock::Create(C, "bad.index", fn);
    B.SetInsertPoint(errorBB);
    errSite = B.CreatePHI(i64(), 2, "site");
    errPos = B.CreatePHI(i64(), 2, "pos");
    errId = B.CreatePHI(i64(), 2, "id");
    errLimit = B.CreatePHI(i64(), 2, "limit");
    auto callee = S.module.getOrInsertFunction(
        kRtErrorSymbol,
        llvm::FunctionType::get(B.getVoidTy(), {ptr(), i64(), i64(), i64(), i64()}, false));
    B.CreateCall(callee, {rt, errSite, errPos, errId, errLimit});
    B.CreateRet(B.getInt32(1));
  }
  auto *cont = llvm::BasicBlock::Create(C, "index.ok", fn);
  B.CreateCondBr(ok, cont, errorBB);
  llvm::BasicBlock *from = B.GetInsertBlock();
  errSite->addIncoming(c64(site), from);
  errPos->addIncoming(pos, from);
  errId->addIncoming(id, from);
  errLimit->addIncoming(limit, from);
  B.SetInsertPoint(cont);
}

void KernelEmitter::finish() { B.CreateRet(B.getInt32(0)); }

//===----------------------------------------------------------------------===//
// Fused expressions
//===----------------------------------------------------------------------===//

llvm::Value *KernelEmitter::emitValue(const Value *v, ArrayRef<llvm::Value *> idx) {
  auto it = S.bufferOf.find(v);
  if (it == S.bufferOf.end())
    return emitCompute(v, idx);
  const TensorType &ty = v->getType();
  // One value per statement: the order of a call's arguments is the
  // compiler's (docs/JIT.md), and both emit instructions.
  llvm::Value *base = bufferPtr(it->second);
  llvm::Value *at = linearize(idx, ty.dims);
  return loadElem(base, ty.elem, at);
}

llvm::Value *KernelEmitter::emitCompute(const Value *v, ArrayRef<llvm::Value *> idx) {
  ExprFn expr = loweringOf(v->getDefiningOp()->getKind()).expr;
  assert(expr && "the planner gives this op a kernel of its own");
  return expr(*this, v, idx);
}

llvm::Value *KernelEmitter::broadcastOperand(const Value *operand, const TensorType &result,
                                             ArrayRef<llvm::Value *> idx) {
  const Shape &od = operand->getType().dims;
  size_t lead = result.dims.size() - od.size();
  std::vector<llvm::Value *> oi(od.size());
  for (size_t d = 0; d < od.size(); ++d)
    oi[d] = od[d].isConstant(1) ? c64(0) : idx[lead + d];
  return emitValue(operand, oi);
}

int64_t codegen::axisOf(const Operation &op, int64_t rank) {
  const Attribute *a = op.getInfo().attrOrDefault(op.attrs(), "axis");
  return *normalizeAxis(a->getInt(), rank);
}
