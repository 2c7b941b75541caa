//===- KernelsMatmul.cpp - matmul, routing and matmul_id kernels ----------===//
//
// Weights are read in their stored form: f32, f16 and bf16 rows as vectors
// of 16, and the GGUF blocks (q8_0, q4_0, mxfp4) a block of 32 at a time,
// decoded in registers and multiplied into a vector accumulator, so a
// quantised weight is never expanded in memory. Activations are f32 rows of
// a buffer (the planner materialises them). The dot product accumulates in
// f32 vector lanes and is reduced once per output; the interpreter's double
// accumulation differs from it by rounding only.
//
// matmul_id first routes: one single-item kernel checks every id (an id out
// of range stops the run before any weight is read) and lists the (token,
// slot) pairs of each expert in scratch. The GEMM kernel's items are
// (expert, column block) pairs, so a block of an expert's weight rows is
// loaded once for all the tokens routed to it.
//
// These are the correct, generic kernels the fast tiled ones replace.
//
//===----------------------------------------------------------------------===//
#include "codegen/Kernels.h"

#include "llvm/IR/Intrinsics.h"

using namespace moe;
using namespace moe::codegen;

namespace {
constexpr int64_t kLanes = 16;     ///< f32 lanes of the dot product's accumulator
constexpr int64_t kColBlock = 16;  ///< output columns per item
constexpr int64_t kRowBlock = 32;  ///< matmul rows per item

llvm::FixedVectorType *vec(llvm::Type *t, unsigned n) { return llvm::FixedVectorType::get(t, n); }

/// Horizontal sum of a float vector (a tree: the lanes are partial sums).
llvm::Value *hsum(KernelEmitter &E, llvm::Value *v) {
  auto &B = E.B;
  auto *call = B.CreateIntrinsic(llvm::Intrinsic::vector_reduce_fadd, {v->getType()},
                                 {llvm::ConstantFP::get(E.f32(), -0.0), v});
  call->setHasAllowReassoc(true);
  return call;
}

llvm::Value *fma(KernelEmitter &E, llvm::Value *a, llvm::Value *b, llvm::Value *c) {
  return E.B.CreateIntrinsic(llvm::Intrinsic::fmuladd, {a->getType()}, {a, b, c});
}

/// `n` consecutive stored elements of a float type at element `off` of `p`,
/// as <n x float>.
llvm::Value *loadFloatVec(KernelEmitter &E, ElemType elem, llvm::Value *p, llvm::Value *off,
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

/// The 32 values of the block at byte `p` of a q8_0/q4_0/mxfp4 row, as
/// <32 x float> without the scale, and the scale.
std::pair<llvm::Value *, llvm::Value *> decodeBlock(KernelEmitter &E, ElemType elem,
                                                    llvm::Value *p) {
  auto &B = E.B;
  auto *v32f = vec(E.f32(), 32);
  if (elem == ElemType::Q8_0) {
    llvm::Value *d = B.CreateFPExt(B.CreateAlignedLoad(B.getHalfTy(), p, llvm::Align(1)), E.f32());
    llvm::Value *q = B.CreateAlignedLoad(vec(E.i8(), 32), B.CreateConstGEP1_64(E.i8(), p, 2),
                                         llvm::Align(1));
    return {B.CreateSIToFP(q, v32f), d};
  }
  int64_t qoff = elem == ElemType::Q4_0 ? 2 : 1;
  llvm::Value *bytes = B.CreateAlignedLoad(vec(E.i8(), 16),
                                           B.CreateConstGEP1_64(E.i8(), p, qoff), llvm::Align(1));
  llvm::Value *lo = B.CreateAnd(bytes, B.CreateVectorSplat(16, B.getInt8(15)));
  llvm::Value *hi = B.CreateLShr(bytes, B.CreateVectorSplat(16, B.getInt8(4)));
  llvm::SmallVector<int, 32> mask;
  for (int i = 0; i < 32; ++i)
    mask.push_back(i);
  llvm::Value *codes = B.CreateZExt(B.CreateShuffleVector(lo, hi, mask), vec(E.i32(), 32));
  if (elem == ElemType::Q4_0) {
    llvm::Value *d = B.CreateFPExt(B.CreateAlignedLoad(B.getHalfTy(), p, llvm::Align(1)), E.f32());
    return {B.CreateSIToFP(B.CreateSub(codes, B.CreateVectorSplat(32, B.getInt32(8))), v32f), d};
  }
  // mxfp4: doubled E2M1 magnitude of m = code & 7 is m (m < 4), 2(m - 2)
  // (m = 4, 5) or 4(m - 4) (m = 6, 7); code & 8 is the sign.
  auto splat = [&](int v) { return B.CreateVectorSplat(32, B.getInt32(v)); };
  llvm::Value *m = B.CreateAnd(codes, splat(7));
  llvm::Value *mag = B.CreateSelect(
      B.CreateICmpULT(m, splat(4)), m,
      B.CreateSelect(B.CreateICmpULT(m, splat(6)), B.CreateShl(B.CreateSub(m, splat(2)), 1),
                     B.CreateShl(B.CreateSub(m, splat(4)), 2)));
  llvm::Value *neg = B.CreateICmpNE(B.CreateAnd(codes, splat(8)), splat(0));
  llvm::Value *val = B.CreateSelect(neg, B.CreateSub(splat(0), mag), mag);
  llvm::Value *d = E.e8m0Half(B.CreateAlignedLoad(E.i8(), p, llvm::Align(1)));
  return {B.CreateSIToFP(val, v32f), d};
}

/// dot(x[0, K), w row at byte pointer `w`) for an f32 activation row `x`.
llvm::Value *dotRow(KernelEmitter &E, llvm::Value *x, llvm::Value *w, ElemType welem,
                    const DimExpr &K) {
  auto &B = E.B;
  llvm::Value *k = E.dim(K);
  if (isQuantized(welem)) {
    int64_t bb = rowBytes(welem, 32);
    auto *zero = llvm::ConstantAggregateZero::get(vec(E.f32(), 32));
    llvm::Value *acc = E.loopAcc(E.c64(0), B.CreateUDiv(k, E.c64(32)), zero,
                                 [&](llvm::Value *blk, llvm::Value *acc) {
      auto [q, d] = decodeBlock(E, welem, B.CreateGEP(E.i8(), w, B.CreateMul(blk, E.c64(bb))));
      llvm::Value *xv = loadFloatVec(E, ElemType::F32, x, B.CreateMul(blk, E.c64(32)), 32);
      return fma(E, B.CreateFMul(xv, q), B.CreateVectorSplat(32, d), acc);
    }, "blk");
    return hsum(E, acc);
  }
  auto *zero = llvm::ConstantAggregateZero::get(vec(E.f32(), kLanes));
  llvm::Value *chunks = B.CreateUDiv(k, E.c64(kLanes));
  llvm::Value *acc = E.loopAcc(E.c64(0), chunks, zero, [&](llvm::Value *c, llvm::Value *acc) {
    llvm::Value *off = B.CreateMul(c, E.c64(kLanes));
    return fma(E, loadFloatVec(E, ElemType::F32, x, off, kLanes),
               loadFloatVec(E, welem, w, off, kLanes), acc);
  }, "kc");
  llvm::Value *sum = hsum(E, acc);
  return E.loopAcc(B.CreateMul(chunks, E.c64(kLanes)), k, sum,
                   [&](llvm::Value *j, llvm::Value *acc) {
    return fma(E, E.loadElem(x, ElemType::F32, j), E.loadElem(w, welem, j), acc);
  }, "kt");
}

/// Byte pointer to row `row` (i64) of a weight buffer with rows of K elements.
llvm::Value *weightRow(KernelEmitter &E, llvm::Value *base, ElemType welem, const DimExpr &K,
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

llvm::Value *minI64(KernelEmitter &E, llvm::Value *a, llvm::Value *b) {
  return E.B.CreateSelect(E.B.CreateICmpSLT(a, b), a, b);
}

llvm::Value *ceilDivV(KernelEmitter &E, llvm::Value *a, int64_t b) {
  return E.B.CreateUDiv(E.B.CreateAdd(a, E.c64(b - 1)), E.c64(b));
}
} // namespace

/// out[r, n] = dot(x[r, :], w[n, :]) over (row block, column block) tiles.
Extent codegen::emitMatmulKernel(KernelEmitter &E, const Operation &op) {
  auto &B = E.B;
  const Value *x = op.getOperand(0), *w = op.getOperand(1), *v = op.getResult();
  const Shape &xs = x->getType().dims;
  const DimExpr &K = xs.back(), &N = w->getType().dims[0];
  ElemType welem = w->getType().elem;
  DimExpr rows = numElements(Shape(xs.begin(), xs.end() - 1));
  llvm::Value *xb = E.bufferPtr(E.S.bufferOf.lookup(x));
  llvm::Value *wb = E.bufferPtr(E.S.bufferOf.lookup(w));
  llvm::Value *ob = E.bufferPtr(E.S.bufferOf.lookup(v));
  ElemType xelem = x->getType().elem;
  llvm::Value *nBlocks = ceilDivV(E, E.dim(N), kColBlock);
  E.loop(E.begin, E.end, [&](llvm::Value *item) {
    llvm::Value *rb = B.CreateUDiv(item, nBlocks), *nb = B.CreateURem(item, nBlocks);
    llvm::Value *r0 = B.CreateMul(rb, E.c64(kRowBlock));
    llvm::Value *r1 = minI64(E, B.CreateAdd(r0, E.c64(kRowBlock)), E.dim(rows));
    llvm::Value *n0 = B.CreateMul(nb, E.c64(kColBlock));
    llvm::Value *n1 = minI64(E, B.CreateAdd(n0, E.c64(kColBlock)), E.dim(N));
    E.loop(r0, r1, [&](llvm::Value *r) {
      llvm::Value *xr = B.CreateGEP(E.f32(), xb, B.CreateMul(r, E.dim(K)));
      E.loop(n0, n1, [&](llvm::Value *n) {
        llvm::Value *d;
        if (xelem == ElemType::F32) {
          d = dotRow(E, xr, weightRow(E, wb, welem, K, n), welem, K);
        } else { // f16/bf16 activations: the generic element path
          llvm::Value *wr = weightRow(E, wb, welem, K, n);
          llvm::Value *xrow = B.CreateMul(r, E.dim(K));
          d = E.loopAcc(E.c64(0), E.dim(K), E.cf(0), [&](llvm::Value *j, llvm::Value *acc) {
            return fma(E, E.loadElem(xb, xelem, B.CreateAdd(xrow, j)), E.loadElem(wr, welem, j), acc);
          }, "k");
        }
        E.storeElem(ob, ElemType::F32, B.CreateAdd(B.CreateMul(r, E.dim(N)), n), d);
      }, "n");
    }, "r");
  }, "tile");
  E.finish();
  return {{{rows, kRowBlock}, {N, kColBlock}}, 1};
}

//===----------------------------------------------------------------------===//
// matmul_id
//===----------------------------------------------------------------------===//

/// Scratch layout (i32): counts[E] | offsets[E + 1] | list[T * k].
DimExpr codegen::routeScratchBytes(const Operation &op) {
  const Shape &ids = op.getOperand(2)->getType().dims;
  int64_t E = *op.getOperand(1)->getType().dims[0].getConstant();
  return (DimExpr(2 * E + 1) + ids[0] * ids[1]) * DimExpr(4);
}

Extent codegen::emitRouteKernel(KernelEmitter &E, const Operation &op, unsigned route) {
  auto &B = E.B;
  const Value *ids = op.getOperand(2);
  const Shape &is = ids->getType().dims;
  int64_t nE = *op.getOperand(1)->getType().dims[0].getConstant();
  llvm::Value *sb = E.bufferPtr(route);
  llvm::Value *counts = sb, *offsets = B.CreateConstGEP1_64(E.i32(), sb, nE),
              *list = B.CreateConstGEP1_64(E.i32(), sb, 2 * nE + 1);
  llvm::Value *n = B.CreateMul(E.dim(is[0]), E.dim(is[1])), *k = E.dim(is[1]);
  E.loop(E.c64(0), E.c64(nE), [&](llvm::Value *e) {
    E.storeElem(counts, ElemType::I32, e, B.getInt32(0));
  }, "z");
  auto idAt = [&](llvm::Value *tj) {
    return B.CreateSExt(E.emitValue(ids, {B.CreateUDiv(tj, k), B.CreateURem(tj, k)}), E.i64());
  };
  // Every id is checked before any is used.
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
    E.storeElem(list, ElemType::I32, B.CreateSExt(c, E.i64()), B.CreateTrunc(tj, E.i32()));
    E.storeElem(counts, ElemType::I32, id, B.CreateAdd(c, B.getInt32(1)));
  }, "fill");
  E.finish();
  return {DimExpr(1), 1};
}

Extent codegen::emitMatmulIdKernel(KernelEmitter &E, const Operation &op, unsigned route) {
  auto &B = E.B;
  const Value *x = op.getOperand(0), *w = op.getOperand(1), *v = op.getResult();
  const Shape &xs = x->getType().dims, &ws = w->getType().dims;
  const DimExpr &K = xs[2], &N = ws[1], &Bd = xs[1];
  int64_t nE = *ws[0].getConstant();
  ElemType welem = w->getType().elem, xelem = x->getType().elem;
  llvm::Value *sb = E.bufferPtr(route);
  llvm::Value *offsets = B.CreateConstGEP1_64(E.i32(), sb, nE),
              *list = B.CreateConstGEP1_64(E.i32(), sb, 2 * nE + 1);
  llvm::Value *xb = E.bufferPtr(E.S.bufferOf.lookup(x));
  llvm::Value *wb = E.bufferPtr(E.S.bufferOf.lookup(w));
  llvm::Value *ob = E.bufferPtr(E.S.bufferOf.lookup(v));
  llvm::Value *k = E.dim(op.getOperand(2)->getType().dims[1]);
  llvm::Value *nBlocks = ceilDivV(E, E.dim(N), kColBlock);
  E.loop(E.begin, E.end, [&](llvm::Value *item) {
    llvm::Value *e = B.CreateUDiv(item, nBlocks), *nb = B.CreateURem(item, nBlocks);
    llvm::Value *lo = B.CreateSExt(E.loadElem(offsets, ElemType::I32, e), E.i64());
    llvm::Value *hi = B.CreateSExt(E.loadElem(offsets, ElemType::I32, B.CreateAdd(e, E.c64(1))), E.i64());
    llvm::Value *n0 = B.CreateMul(nb, E.c64(kColBlock));
    llvm::Value *n1 = minI64(E, B.CreateAdd(n0, E.c64(kColBlock)), E.dim(N));
    E.loop(lo, hi, [&](llvm::Value *p) {
      llvm::Value *tj = B.CreateSExt(E.loadElem(list, ElemType::I32, p), E.i64());
      llvm::Value *t = B.CreateUDiv(tj, k), *j = B.CreateURem(tj, k);
      llvm::Value *b = Bd.isConstant(1) ? E.c64(0) : j;
      llvm::Value *xrow = B.CreateMul(B.CreateAdd(B.CreateMul(t, E.dim(Bd)), b), E.dim(K));
      E.loop(n0, n1, [&](llvm::Value *n) {
        llvm::Value *wr = weightRow(E, wb, welem, K, B.CreateAdd(B.CreateMul(e, E.dim(N)), n));
        llvm::Value *d;
        if (xelem == ElemType::F32) {
          d = dotRow(E, B.CreateGEP(E.f32(), xb, xrow), wr, welem, K);
        } else {
          d = E.loopAcc(E.c64(0), E.dim(K), E.cf(0), [&](llvm::Value *jj, llvm::Value *acc) {
            return fma(E, E.loadElem(xb, xelem, B.CreateAdd(xrow, jj)), E.loadElem(wr, welem, jj), acc);
          }, "k");
        }
        E.storeElem(ob, ElemType::F32, B.CreateAdd(B.CreateMul(tj, E.dim(N)), n), d);
      }, "n");
    }, "tok");
  }, "item");
  E.finish();
  return {{{DimExpr(nE), 1}, {N, kColBlock}}, 1};
}
