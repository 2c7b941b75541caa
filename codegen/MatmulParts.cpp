//===- MatmulParts.cpp - What the matmul kernels share --------------------===//
//
// See MatmulParts.h.
//
//===----------------------------------------------------------------------===//
#include "codegen/MatmulParts.h"

#include "llvm/IR/Intrinsics.h"

using namespace moe;
using namespace moe::codegen;
using namespace moe::codegen::mm;

llvm::FixedVectorType *mm::vec(llvm::Type *t, unsigned n) {
  return llvm::FixedVectorType::get(t, n);
}

llvm::Value *mm::hsum(KernelEmitter &E, llvm::Value *v) {
  auto *call = E.B.CreateIntrinsic(llvm::Intrinsic::vector_reduce_fadd, {v->getType()},
                                   {llvm::ConstantFP::get(E.f32(), -0.0), v});
  call->setHasAllowReassoc(true);
  return call;
}

llvm::Value *mm::fma(KernelEmitter &E, llvm::Value *a, llvm::Value *b, llvm::Value *c) {
  return E.B.CreateIntrinsic(llvm::Intrinsic::fmuladd, {a->getType()}, {a, b, c});
}

llvm::Value *mm::laneMask(KernelEmitter &E, unsigned lanes, llvm::Value *base,
                          llvm::Value *limit) {
  auto &B = E.B;
  llvm::SmallVector<llvm::Constant *, 16> iota;
  for (unsigned l = 0; l < lanes; ++l)
    iota.push_back(B.getInt64(l));
  // One value per statement (the cache keys of docs/JIT.md).
  llvm::Value *first = B.CreateVectorSplat(lanes, base);
  llvm::Value *cols = B.CreateAdd(first, llvm::ConstantVector::get(iota));
  llvm::Value *bound = B.CreateVectorSplat(lanes, limit);
  return B.CreateICmpSLT(cols, bound);
}

llvm::Value *mm::loadFloatVec(KernelEmitter &E, ElemType elem, llvm::Value *p, llvm::Value *off,
                              unsigned n) {
  auto &B = E.B;
  switch (elem) {
  case ElemType::F32:
    return B.CreateAlignedLoad(vec(E.f32(), n), B.CreateGEP(E.f32(), p, off), llvm::Align(4));
  case ElemType::F16:
    return B.CreateFPExt(B.CreateAlignedLoad(vec(B.getHalfTy(), n),
                                             B.CreateGEP(B.getHalfTy(), p, off), llvm::Align(2)),
                         vec(E.f32(), n));
  case ElemType::BF16: {
    llvm::Value *h = B.CreateAlignedLoad(vec(B.getInt16Ty(), n),
                                         B.CreateGEP(B.getInt16Ty(), p, off), llvm::Align(2));
    llvm::Value *w = B.CreateShl(B.CreateZExt(h, vec(E.i32(), n)), 16);
    return B.CreateBitCast(w, vec(E.f32(), n));
  }
  default:
    llvm_unreachable("not a float type");
  }
}

std::pair<llvm::Value *, llvm::Value *> mm::blockCodes(KernelEmitter &E, ElemType elem,
                                                       llvm::Value *p) {
  auto &B = E.B;
  auto splat = [&](int v) { return B.CreateVectorSplat(32, B.getInt8(v)); };
  if (elem == ElemType::Q8_0) {
    llvm::Value *d = B.CreateFPExt(B.CreateAlignedLoad(B.getHalfTy(), p, llvm::Align(1)), E.f32());
    llvm::Value *q = B.CreateAlignedLoad(vec(E.i8(), 32), B.CreateConstGEP1_64(E.i8(), p, 2),
                                         llvm::Align(1));
    return {q, d};
  }
  int64_t qoff = elem == ElemType::Q4_0 ? 2 : 1;
  llvm::Value *bytes = B.CreateAlignedLoad(vec(E.i8(), 16), B.CreateConstGEP1_64(E.i8(), p, qoff),
                                           llvm::Align(1));
  llvm::Value *lo = B.CreateAnd(bytes, B.CreateVectorSplat(16, B.getInt8(15)));
  llvm::Value *hi = B.CreateLShr(bytes, B.CreateVectorSplat(16, B.getInt8(4)));
  llvm::SmallVector<int, 32> mask;
  for (int i = 0; i < 32; ++i)
    mask.push_back(i);
  llvm::Value *codes = B.CreateShuffleVector(lo, hi, mask); // nibbles 0..15
  if (elem == ElemType::Q4_0) {
    llvm::Value *d = B.CreateFPExt(B.CreateAlignedLoad(B.getHalfTy(), p, llvm::Align(1)), E.f32());
    return {B.CreateSub(codes, splat(8)), d};
  }
  // mxfp4: doubled E2M1 magnitude of m = code & 7 is m (m < 4), 2(m - 2)
  // (m = 4, 5) or 4(m - 4) (m = 6, 7); code & 8 is the sign.
  llvm::Value *m = B.CreateAnd(codes, splat(7));
  llvm::Value *small = B.CreateICmpULT(m, splat(4));
  llvm::Value *mid = B.CreateICmpULT(m, splat(6));
  llvm::Value *midMag = B.CreateShl(B.CreateSub(m, splat(2)), 1);
  llvm::Value *bigMag = B.CreateShl(B.CreateSub(m, splat(4)), 2);
  llvm::Value *mag = B.CreateSelect(small, m, B.CreateSelect(mid, midMag, bigMag));
  llvm::Value *neg = B.CreateICmpNE(B.CreateAnd(codes, splat(8)), splat(0));
  llvm::Value *val = B.CreateSelect(neg, B.CreateSub(splat(0), mag), mag);
  llvm::Value *d = E.e8m0Half(B.CreateAlignedLoad(E.i8(), p, llvm::Align(1)));
  return {val, d};
}

std::pair<llvm::Value *, llvm::Value *> mm::decodeBlock(KernelEmitter &E, ElemType elem,
                                                        llvm::Value *p) {
  auto [codes, d] = blockCodes(E, elem, p);
  return {E.B.CreateSIToFP(codes, vec(E.f32(), 32)), d};
}

llvm::Value *mm::weightRow(KernelEmitter &E, llvm::Value *base, ElemType welem, const DimExpr &K,
                           llvm::Value *row) {
  auto &B = E.B;
  llvm::Value *rb;
  if (auto c = K.getConstant())
    rb = E.c64(rowBytes(welem, *c));
  else if (isQuantized(welem))
    rb = B.CreateMul(B.CreateUDiv(E.dim(K), E.c64(32)), E.c64(rowBytes(welem, 32)));
  else
    rb = B.CreateMul(E.dim(K), E.c64(rowBytes(welem, 1)));
  return B.CreateGEP(E.i8(), base, B.CreateMul(row, rb));
}

llvm::Value *mm::minI64(KernelEmitter &E, llvm::Value *a, llvm::Value *b) {
  return E.B.CreateSelect(E.B.CreateICmpSLT(a, b), a, b);
}

llvm::Value *mm::ceilDivV(KernelEmitter &E, llvm::Value *a, int64_t b) {
  return E.B.CreateUDiv(E.B.CreateAdd(a, E.c64(b - 1)), E.c64(b));
}

void mm::ifThen(KernelEmitter &E, llvm::Value *cond, const std::function<void()> &body) {
  auto *then = llvm::BasicBlock::Create(E.C, "then", E.fn);
  auto *join = llvm::BasicBlock::Create(E.C, "join", E.fn);
  E.B.CreateCondBr(cond, then, join);
  E.B.SetInsertPoint(then);
  body();
  E.B.CreateBr(join);
  E.B.SetInsertPoint(join);
}

llvm::Value *mm::TilePass::at(KernelEmitter &E, unsigned i) const {
  if (!valid || i == 0)
    return E.B.CreateAdd(p, E.c64(i));
  llvm::Value *last = E.B.CreateSub(valid, E.c64(1));
  return E.B.CreateAdd(p, E.B.CreateBinaryIntrinsic(llvm::Intrinsic::umin, E.c64(i), last));
}

void mm::tiledLoop(KernelEmitter &E, llvm::Value *lo, llvm::Value *hi, unsigned step,
                   const std::function<void(const TilePass &)> &body, llvm::StringRef name,
                   Remainder rem) {
  auto &B = E.B;
  if ((rem == Remainder::Clamped || rem == Remainder::ClampedHalving) && step > 2) {
    // One loop over the full passes and, when more than `below` rows are
    // left, their clamped pass: the same body. Fewer are one pass of the
    // smallest halving width that holds them (clamped when it is wider).
    unsigned below = rem == Remainder::Clamped ? 1 : step / 2;
    llvm::Value *full = B.CreateUDiv(B.CreateSub(hi, lo), E.c64(step));
    llvm::Value *i = B.CreateAdd(lo, B.CreateMul(full, E.c64(step)));
    llvm::Value *left = B.CreateSub(hi, i);
    llvm::Value *more = B.CreateZExt(B.CreateICmpUGT(left, E.c64(below)), E.i64());
    E.loop(E.c64(0), B.CreateAdd(full, more), [&](llvm::Value *t) {
      llvm::Value *p = B.CreateAdd(lo, B.CreateMul(t, E.c64(step)));
      llvm::Value *valid =
          B.CreateBinaryIntrinsic(llvm::Intrinsic::umin, B.CreateSub(hi, p), E.c64(step));
      body({p, step, valid});
    }, name);
    for (unsigned w = below; w >= 1; w /= 2) {
      // w / 2 < left <= w (w = 1: left = 1).
      llvm::Value *above = B.CreateICmpUGT(left, E.c64(w / 2));
      llvm::Value *fits = B.CreateAnd(above, B.CreateICmpULE(left, E.c64(w)));
      ifThen(E, fits, [&] { body({i, w, w > 2 ? left : nullptr}); });
    }
    return;
  }
  // Halving: each loop takes what fits, the next the remainder (fewer
  // than `step` rows).
  llvm::Value *i = lo;
  for (unsigned s = step; s >= 1; s /= 2) {
    llvm::Value *full = B.CreateUDiv(B.CreateSub(hi, i), E.c64(s));
    llvm::Value *from = i;
    E.loop(E.c64(0), full, [&](llvm::Value *t) {
      body({B.CreateAdd(from, B.CreateMul(t, E.c64(s))), s, nullptr});
    }, name);
    i = B.CreateAdd(from, B.CreateMul(full, E.c64(s)));
    if (s == 1)
      break;
  }
}

mm::WeightDims mm::weightDims(const Operation &op) {
  const Shape &ws = op.getOperand(1)->getType().dims;
  if (op.is(OpKind::MatmulId))
    return {ws[0], ws[1], ws[2]};
  return {DimExpr(1), ws[0], ws[1]};
}

unsigned mm::addPackedWeight(StepBuilder &K, const Operation &op, DimExpr bytes,
                             Extent (*emit)(KernelEmitter &, const Operation &, unsigned)) {
  const BufferDesc &src = K.S.buffers[K.S.bufferOf.lookup(op.getOperand(1))];
  BufferDesc d;
  d.kind = BufferKind::Packed;
  d.argIndex = src.argIndex;
  d.scratchBytes = std::move(bytes);
  d.name = "packed(" + src.name + ")";
  unsigned packed = K.addBuffer(std::move(d));
  K.addKernel(op, "_pack", {packed}, [&](KernelEmitter &E) { return emit(E, op, packed); });
  K.markPrepare(packed);
  return packed;
}

ElemType mm::actOf(const Operation &op) {
  const Attribute *a = op.getAttr("act");
  if (!a || a->kind() != Attribute::Kind::Ident)
    return ElemType::F32;
  return parseElemType(a->getIdent()).value_or(ElemType::F32);
}

//===----------------------------------------------------------------------===//
// Items
//===----------------------------------------------------------------------===//

Extent mm::emitMatmulItems(KernelEmitter &E, const Operation &op, int64_t rowBlock,
                           int64_t colBlock, const ItemFn &item) {
  auto &B = E.B;
  const Value *x = op.getOperand(0), *w = op.getOperand(1), *v = op.getResult();
  const Shape &xs = x->getType().dims;
  const DimExpr &K = xs.back(), &N = w->getType().dims[0];
  ElemType welem = w->getType().elem;
  DimExpr rows = numElements(Shape(xs.begin(), xs.end() - 1));
  llvm::Value *wb = E.bufferPtr(E.S.bufferOf.lookup(w));
  llvm::Value *ob = E.bufferPtr(E.S.bufferOf.lookup(v));
  llvm::Value *nBlocks = ceilDivV(E, E.dim(N), colBlock);
  E.loop(E.begin, E.end, [&](llvm::Value *it) {
    llvm::Value *rb = B.CreateUDiv(it, nBlocks), *nb = B.CreateURem(it, nBlocks);
    Item i;
    i.lo = B.CreateMul(rb, E.c64(rowBlock));
    llvm::Value *end = B.CreateAdd(i.lo, E.c64(rowBlock));
    i.hi = minI64(E, end, E.dim(rows));
    i.n0 = B.CreateMul(nb, E.c64(colBlock));
    llvm::Value *colEnd = B.CreateAdd(i.n0, E.c64(colBlock));
    i.n1 = minI64(E, colEnd, E.dim(N));
    i.expert = E.c64(0);
    i.xRow = [](llvm::Value *r) { return r; };
    i.outRow = [&](llvm::Value *r) {
      return B.CreateGEP(E.f32(), ob, B.CreateMul(r, E.dim(N)));
    };
    i.weightAt = [&](llvm::Value *n) { return weightRow(E, wb, welem, K, n); };
    item(i);
  }, "item");
  E.finish();
  return {{{rows, rowBlock}, {N, colBlock}}, 1};
}

llvm::Value *mm::routeList(KernelEmitter &E, const Operation &op, unsigned route) {
  int64_t nE = *op.getOperand(1)->getType().dims[0].getConstant();
  return E.B.CreateConstGEP1_64(E.i32(), E.bufferPtr(route), 2 * nE + 1);
}

llvm::Value *mm::routedRow(KernelEmitter &E, const Operation &op, llvm::Value *list,
                           llvm::Value *p) {
  auto &B = E.B;
  // List position p holds the pair tj = t * k + j: x row t * B + (B == 1 ? 0 : j).
  const DimExpr &Bd = op.getOperand(0)->getType().dims[1];
  llvm::Value *k = E.dim(op.getOperand(2)->getType().dims[1]);
  llvm::Value *tj = B.CreateSExt(E.loadElem(list, ElemType::I32, p), E.i64());
  llvm::Value *t = B.CreateUDiv(tj, k);
  llvm::Value *b = Bd.isConstant(1) ? E.c64(0) : B.CreateURem(tj, k);
  return B.CreateAdd(B.CreateMul(t, E.dim(Bd)), b);
}

/// Scratch layout (i32): counts[E] | offsets[E + 1] | list[T * k].
static DimExpr routeScratchBytes(const Operation &op) {
  const Shape &ids = op.getOperand(2)->getType().dims;
  int64_t E = *op.getOperand(1)->getType().dims[0].getConstant();
  return (DimExpr(2 * E + 1) + ids[0] * ids[1]) * DimExpr(4);
}

/// Checks every id (an id out of range stops the run before any weight is
/// read) and lists the (token, slot) pairs of each expert.
static Extent emitRoute(KernelEmitter &E, const Operation &op, unsigned route) {
  auto &B = E.B;
  const Value *ids = op.getOperand(2);
  const Shape &is = ids->getType().dims;
  int64_t nE = *op.getOperand(1)->getType().dims[0].getConstant();
  llvm::Value *sb = E.bufferPtr(route);
  llvm::Value *counts = sb, *offsets = B.CreateConstGEP1_64(E.i32(), sb, nE),
              *list = B.CreateConstGEP1_64(E.i32(), sb, 2 * nE + 1);
  llvm::Value *rows = E.dim(is[0]), *k = E.dim(is[1]);
  llvm::Value *n = B.CreateMul(rows, k);
  E.loop(E.c64(0), E.c64(nE), [&](llvm::Value *e) {
    E.storeElem(counts, ElemType::I32, e, B.getInt32(0));
  }, "z");
  auto idAt = [&](llvm::Value *tj) {
    return B.CreateSExt(E.emitValue(ids, {B.CreateUDiv(tj, k), B.CreateURem(tj, k)}), E.i64());
  };
  E.loop(E.c64(0), n, [&](llvm::Value *tj) {
    llvm::Value *id = idAt(tj);
    E.checkIndex(E.S.errorSite(ErrorSite::Kind::ExpertId, op), tj, id, E.c64(nE));
    llvm::Value *c = E.loadElem(counts, ElemType::I32, id);
    E.storeElem(counts, ElemType::I32, id, B.CreateAdd(c, B.getInt32(1)));
  }, "count");
  llvm::Value *total = E.loopAcc(E.c64(0), E.c64(nE), B.getInt32(0), [&](llvm::Value *e, llvm::Value *acc) {
    E.storeElem(offsets, ElemType::I32, e, acc);
    llvm::Value *next = B.CreateAdd(acc, E.loadElem(counts, ElemType::I32, e));
    E.storeElem(counts, ElemType::I32, e, acc); // counts become fill cursors
    return next;
  }, "off");
  E.storeElem(offsets, ElemType::I32, E.c64(nE), total);
  E.loop(E.c64(0), n, [&](llvm::Value *tj) {
    llvm::Value *id = idAt(tj);
    llvm::Value *c = E.loadElem(counts, ElemType::I32, id);
    llvm::Value *at = B.CreateSExt(c, E.i64());
    E.storeElem(list, ElemType::I32, at, B.CreateTrunc(tj, E.i32()));
    E.storeElem(counts, ElemType::I32, id, B.CreateAdd(c, B.getInt32(1)));
  }, "fill");
  E.finish();
  return {DimExpr(1), 1};
}

unsigned mm::routeFor(StepBuilder &K, const Operation &op) {
  const Value *ids = op.getOperand(2);
  if (!K.S.routeOf.count(ids)) {
    BufferDesc d;
    d.kind = BufferKind::Scratch;
    d.scratchBytes = routeScratchBytes(op);
    d.name = "route(%" + ids->getName() + ")";
    unsigned route = K.addBuffer(std::move(d));
    K.S.routeOf[ids] = route;
    K.addKernel(op, "_route", {route}, [&](KernelEmitter &E) { return emitRoute(E, op, route); });
  }
  return K.S.routeOf.lookup(ids);
}

Extent mm::emitMatmulIdItems(KernelEmitter &E, const Operation &op, unsigned route,
                             int64_t colBlock, const ItemFn &item) {
  auto &B = E.B;
  const Value *x = op.getOperand(0), *w = op.getOperand(1), *v = op.getResult();
  const Shape &xs = x->getType().dims, &ws = w->getType().dims;
  const DimExpr &K = xs[2], &N = ws[1];
  int64_t nE = *ws[0].getConstant();
  ElemType welem = w->getType().elem;
  llvm::Value *sb = E.bufferPtr(route);
  llvm::Value *offsets = B.CreateConstGEP1_64(E.i32(), sb, nE),
              *list = B.CreateConstGEP1_64(E.i32(), sb, 2 * nE + 1);
  llvm::Value *wb = E.bufferPtr(E.S.bufferOf.lookup(w));
  llvm::Value *ob = E.bufferPtr(E.S.bufferOf.lookup(v));
  llvm::Value *nBlocks = ceilDivV(E, E.dim(N), colBlock);
  E.loop(E.begin, E.end, [&](llvm::Value *it) {
    llvm::Value *e = B.CreateUDiv(it, nBlocks), *nb = B.CreateURem(it, nBlocks);
    Item i;
    i.lo = B.CreateSExt(E.loadElem(offsets, ElemType::I32, e), E.i64());
    i.hi = B.CreateSExt(E.loadElem(offsets, ElemType::I32, B.CreateAdd(e, E.c64(1))), E.i64());
    i.n0 = B.CreateMul(nb, E.c64(colBlock));
    llvm::Value *colEnd = B.CreateAdd(i.n0, E.c64(colBlock));
    i.n1 = minI64(E, colEnd, E.dim(N));
    i.expert = e;
    auto pairAt = [&](llvm::Value *p) {
      return B.CreateSExt(E.loadElem(list, ElemType::I32, p), E.i64());
    };
    i.xRow = [&](llvm::Value *p) { return routedRow(E, op, list, p); };
    i.outRow = [&](llvm::Value *p) {
      llvm::Value *row = pairAt(p);
      return B.CreateGEP(E.f32(), ob, B.CreateMul(row, E.dim(N)));
    };
    i.weightAt = [&](llvm::Value *n) {
      return weightRow(E, wb, welem, K, B.CreateAdd(B.CreateMul(e, E.dim(N)), n));
    };
    ifThen(E, B.CreateICmpSLT(i.lo, i.hi), [&] { item(i); });
  }, "item");
  E.finish();
  // A thread takes a third of an expert's column blocks at a time (at most
  // 16): one atomic per chunk instead of per item (most items are empty at
  // small T: 4096 items, 192 busy, for qwen3 at T = 1), adjacent tiles in
  // a row so each prefetches the next one's first chunk for itself, and
  // still several chunks per expert for the threads to share (qwen3 q8_0 on
  // Zen 5: T = 1 1.00 -> 0.73 ms, T = 128 27.1 -> 21.0 ms). Each output is
  // still computed by one item: the chunks change no bit.
  std::optional<int64_t> n = N.getConstant();
  int64_t grain = n ? std::clamp<int64_t>((*n + colBlock - 1) / colBlock / 3, 1, 16) : 8;
  return {{{DimExpr(nE), 1}, {N, colBlock}}, grain};
}
