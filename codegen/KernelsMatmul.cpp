//===- KernelsMatmul.cpp - matmul, routing and matmul_id kernels ----------===//
//
// The kernel lowerings of matmul and matmul_id (Lowering.h).
//
// Weights are read in their stored form and never expanded in a buffer of
// their own: a tile of TN weight rows (f16, bf16 and the GGUF blocks q8_0,
// q4_0, mxfp4, a block of 32 at a time, decoded in registers) is converted
// to f32 once into a small stack tile, then every activation row of the item
// is multiplied against it, TM rows at a time (a register tile of TM x TN
// vector accumulators, LANES f32 lanes each: 16 with AVX-512, 8 with AVX2).
// f32 weight rows are read in place. A decoded weight (q * d, with q a small
// integer and d an f16 or a power of two) is exact in f32, so the tile holds
// exactly the stored values. Each output accumulates in f32 lanes over K
// and is reduced once; the interpreter's double accumulation differs from it
// by rounding only.
//
// matmul items are (row block, column block) tiles. matmul_id first routes:
// one single-item kernel checks every id (an id out of range stops the run
// before any weight is read) and lists the (token, slot) pairs of each
// expert in scratch. The GEMM kernel's items are (expert, column block)
// pairs, so a block of an expert's weight rows is decoded once for all the
// tokens routed to it.
//
//===----------------------------------------------------------------------===//
#include "codegen/Lowering.h"

#include "llvm/IR/Intrinsics.h"

using namespace moe;
using namespace moe::codegen;

namespace {
constexpr int64_t kColBlock = 16;  ///< output columns per item
constexpr int64_t kRowBlock = 32;  ///< matmul rows per item

/// The register tile: TM activation rows x TN weight rows of accumulators
/// of `lanes` f32 (AVX-512: 16 zmm accumulators of 32; AVX2: 12 ymm of 16).
struct TileShape {
  unsigned lanes, tm, tn;
};
TileShape tileShape(const KernelEmitter &E) {
  return E.S.target.vectorBits >= 512 ? TileShape{16, 4, 4} : TileShape{8, 3, 4};
}

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
/// dot(x, w) of `n` elements of two rows in memory, f32 activations `x` (any
/// element type for the generic path) and weights of `welem` (float types):
/// the path for non-f32 activations, element by element.
llvm::Value *dotElements(KernelEmitter &E, ElemType xelem, llvm::Value *x, llvm::Value *xoff,
                         ElemType welem, llvm::Value *w, llvm::Value *n) {
  auto &B = E.B;
  return E.loopAcc(E.c64(0), n, E.cf(0), [&](llvm::Value *j, llvm::Value *acc) {
    return fma(E, E.loadElem(x, xelem, B.CreateAdd(xoff, j)), E.loadElem(w, welem, j), acc);
  }, "k");
}

/// if (cond) body(); the builder ends after it.
void ifThen(KernelEmitter &E, llvm::Value *cond, const std::function<void()> &body) {
  auto *then = llvm::BasicBlock::Create(E.C, "then", E.fn);
  auto *join = llvm::BasicBlock::Create(E.C, "join", E.fn);
  E.B.CreateCondBr(cond, then, join);
  E.B.SetInsertPoint(then);
  body();
  E.B.CreateBr(join);
  E.B.SetInsertPoint(join);
}

/// An alloca in the kernel's entry block (promoted to registers by LLVM).
llvm::Value *entryAlloca(KernelEmitter &E, llvm::Type *t) {
  llvm::IRBuilder<> eb(E.fn->getEntryBlock().getTerminator());
  return eb.CreateAlloca(t);
}

/// Converts `tn` weight rows (byte pointers `rows`) of K elements of
/// `welem` to f32 rows of `ld` floats at `tile`: a GGUF block at a time as
/// q * d (exact), f16/bf16 a vector at a time.
void decodeRows(KernelEmitter &E, ElemType welem, const DimExpr &K, llvm::ArrayRef<llvm::Value *> rows,
                llvm::Value *tile, llvm::Value *ld, unsigned lanes) {
  auto &B = E.B;
  llvm::Value *k = E.dim(K);
  for (unsigned j = 0; j < rows.size(); ++j) {
    llvm::Value *dst = B.CreateGEP(E.f32(), tile, B.CreateMul(ld, E.c64(j)));
    if (isQuantized(welem)) {
      int64_t bb = rowBytes(welem, 32);
      E.loop(E.c64(0), B.CreateUDiv(k, E.c64(32)), [&](llvm::Value *blk) {
        auto [q, d] = decodeBlock(E, welem, B.CreateGEP(E.i8(), rows[j], B.CreateMul(blk, E.c64(bb))));
        B.CreateAlignedStore(B.CreateFMul(q, B.CreateVectorSplat(32, d)),
                             B.CreateGEP(E.f32(), dst, B.CreateMul(blk, E.c64(32))), llvm::Align(4));
      }, "blk");
      continue;
    }
    llvm::Value *chunks = B.CreateUDiv(k, E.c64(lanes));
    E.loop(E.c64(0), chunks, [&](llvm::Value *c) {
      llvm::Value *off = B.CreateMul(c, E.c64(lanes));
      B.CreateAlignedStore(loadFloatVec(E, welem, rows[j], off, lanes),
                           B.CreateGEP(E.f32(), dst, off), llvm::Align(4));
    }, "kc");
    E.loop(B.CreateMul(chunks, E.c64(lanes)), k, [&](llvm::Value *i) {
      E.storeElem(dst, ElemType::F32, i, E.loadElem(rows[j], welem, i));
    }, "kt");
  }
}

/// The register tile: out_i[j] = dot(x_i, w_j) over K for every activation
/// row x_i (f32 pointers) and f32 weight row w_j; `outs` point at the
/// outputs' column 0 of the tile.
void microTile(KernelEmitter &E, llvm::ArrayRef<llvm::Value *> xs, llvm::ArrayRef<llvm::Value *> ws,
               llvm::ArrayRef<llvm::Value *> outs, const DimExpr &K, unsigned lanes) {
  auto &B = E.B;
  auto *vt = vec(E.f32(), lanes);
  auto *zero = llvm::ConstantAggregateZero::get(vt);
  std::vector<llvm::Value *> acc;
  for (size_t a = 0; a < xs.size() * ws.size(); ++a) {
    acc.push_back(entryAlloca(E, vt));
    B.CreateStore(zero, acc.back());
  }
  llvm::Value *k = E.dim(K), *chunks = B.CreateUDiv(k, E.c64(lanes));
  E.loop(E.c64(0), chunks, [&](llvm::Value *c) {
    llvm::Value *off = B.CreateMul(c, E.c64(lanes));
    std::vector<llvm::Value *> wv;
    for (llvm::Value *w : ws)
      wv.push_back(loadFloatVec(E, ElemType::F32, w, off, lanes));
    for (size_t i = 0; i < xs.size(); ++i) {
      llvm::Value *xv = loadFloatVec(E, ElemType::F32, xs[i], off, lanes);
      for (size_t j = 0; j < ws.size(); ++j) {
        llvm::Value *a = acc[i * ws.size() + j];
        B.CreateStore(fma(E, xv, wv[j], B.CreateLoad(vt, a)), a);
      }
    }
  }, "kc");
  llvm::Value *tail0 = B.CreateMul(chunks, E.c64(lanes));
  for (size_t i = 0; i < xs.size(); ++i)
    for (size_t j = 0; j < ws.size(); ++j) {
      llvm::Value *sum = hsum(E, B.CreateLoad(vt, acc[i * ws.size() + j]));
      sum = E.loopAcc(tail0, k, sum, [&](llvm::Value *t, llvm::Value *s) {
        return fma(E, E.loadElem(xs[i], ElemType::F32, t), E.loadElem(ws[j], ElemType::F32, t), s);
      }, "kt");
      E.storeElem(outs[i], ElemType::F32, E.c64(j), sum);
    }
}

/// for (i = lo; i + step <= hi; i += step) full(i); then
/// for (; i < hi; ++i) one(i).
void tiledLoop(KernelEmitter &E, llvm::Value *lo, llvm::Value *hi, unsigned step,
               const std::function<void(llvm::Value *, unsigned)> &body, llvm::StringRef name) {
  auto &B = E.B;
  llvm::Value *n = B.CreateSub(hi, lo);
  llvm::Value *full = B.CreateUDiv(n, E.c64(step));
  if (step > 1)
    E.loop(E.c64(0), full, [&](llvm::Value *t) {
      body(B.CreateAdd(lo, B.CreateMul(t, E.c64(step))), step);
    }, name);
  E.loop(B.CreateAdd(lo, B.CreateMul(full, E.c64(step))), hi,
         [&](llvm::Value *i) { body(i, 1); }, name);
}

/// The activation rows of one item: rows [lo, hi) of a list, row p reading
/// x at `rowsAt(p).first` and writing its outputs from `rowsAt(p).second`
/// (f32 pointers at column 0).
struct ItemRows {
  llvm::Value *lo, *hi;
  std::function<std::pair<llvm::Value *, llvm::Value *>(llvm::Value *)> rowsAt;
};

/// Columns [n0, n1) of every row of `rows`: weight row n at `weightAt(n)`
/// (a byte pointer). Float weights are read in place; others are decoded
/// TN rows at a time into `tile` (f32, TN rows of `ld`).
void emitItem(KernelEmitter &E, const ItemRows &rows, llvm::Value *n0, llvm::Value *n1,
              ElemType welem, const DimExpr &K,
              const std::function<llvm::Value *(llvm::Value *)> &weightAt, llvm::Value *tile,
              llvm::Value *ld) {
  auto &B = E.B;
  TileShape ts = tileShape(E);
  tiledLoop(E, n0, n1, ts.tn, [&](llvm::Value *c, unsigned tn) {
    std::vector<llvm::Value *> ws;
    for (unsigned j = 0; j < tn; ++j)
      ws.push_back(weightAt(B.CreateAdd(c, E.c64(j))));
    if (welem != ElemType::F32) {
      decodeRows(E, welem, K, ws, tile, ld, ts.lanes);
      for (unsigned j = 0; j < tn; ++j)
        ws[j] = B.CreateGEP(E.f32(), tile, B.CreateMul(ld, E.c64(j)));
    }
    tiledLoop(E, rows.lo, rows.hi, ts.tm, [&](llvm::Value *p, unsigned tm) {
      std::vector<llvm::Value *> xs, outs;
      for (unsigned i = 0; i < tm; ++i) {
        auto [x, o] = rows.rowsAt(B.CreateAdd(p, E.c64(i)));
        xs.push_back(x);
        outs.push_back(B.CreateGEP(E.f32(), o, c));
      }
      microTile(E, xs, ws, outs, K, ts.lanes);
    }, "rows");
  }, "cols");
}

/// The decode tile of a kernel (null for f32 weights), allocated once in
/// the kernel's body before its item loop, and its row stride.
std::pair<llvm::Value *, llvm::Value *> decodeTile(KernelEmitter &E, ElemType welem,
                                                   const DimExpr &K) {
  if (welem == ElemType::F32)
    return {nullptr, nullptr};
  auto &B = E.B;
  llvm::Value *ld = B.CreateMul(ceilDivV(E, E.dim(K), 16), E.c64(16));
  llvm::Value *tile = B.CreateAlloca(E.f32(), B.CreateMul(ld, E.c64(tileShape(E).tn)), "wtile");
  return {tile, ld};
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
  auto [tile, ld] = decodeTile(E, welem, K);
  E.loop(E.begin, E.end, [&](llvm::Value *item) {
    llvm::Value *rb = B.CreateUDiv(item, nBlocks), *nb = B.CreateURem(item, nBlocks);
    llvm::Value *r0 = B.CreateMul(rb, E.c64(kRowBlock));
    llvm::Value *r1 = minI64(E, B.CreateAdd(r0, E.c64(kRowBlock)), E.dim(rows));
    llvm::Value *n0 = B.CreateMul(nb, E.c64(kColBlock));
    llvm::Value *n1 = minI64(E, B.CreateAdd(n0, E.c64(kColBlock)), E.dim(N));
    auto weightAt = [&](llvm::Value *n) { return weightRow(E, wb, welem, K, n); };
    if (xelem == ElemType::F32) {
      ItemRows ir{r0, r1, [&](llvm::Value *r) {
        return std::make_pair(B.CreateGEP(E.f32(), xb, B.CreateMul(r, E.dim(K))),
                              B.CreateGEP(E.f32(), ob, B.CreateMul(r, E.dim(N))));
      }};
      emitItem(E, ir, n0, n1, welem, K, weightAt, tile, ld);
      return;
    }
    // f16/bf16 activations: the generic element path.
    E.loop(r0, r1, [&](llvm::Value *r) {
      E.loop(n0, n1, [&](llvm::Value *n) {
        llvm::Value *d = dotElements(E, xelem, xb, B.CreateMul(r, E.dim(K)), welem, weightAt(n),
                                     E.dim(K));
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
static DimExpr routeScratchBytes(const Operation &op) {
  const Shape &ids = op.getOperand(2)->getType().dims;
  int64_t E = *op.getOperand(1)->getType().dims[0].getConstant();
  return (DimExpr(2 * E + 1) + ids[0] * ids[1]) * DimExpr(4);
}

static Extent emitRoute(KernelEmitter &E, const Operation &op, unsigned route) {
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

static Extent emitMatmulId(KernelEmitter &E, const Operation &op, unsigned route) {
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
  auto [tile, ld] = decodeTile(E, welem, K);
  E.loop(E.begin, E.end, [&](llvm::Value *item) {
    llvm::Value *e = B.CreateUDiv(item, nBlocks), *nb = B.CreateURem(item, nBlocks);
    llvm::Value *lo = B.CreateSExt(E.loadElem(offsets, ElemType::I32, e), E.i64());
    llvm::Value *hi = B.CreateSExt(E.loadElem(offsets, ElemType::I32, B.CreateAdd(e, E.c64(1))), E.i64());
    llvm::Value *n0 = B.CreateMul(nb, E.c64(kColBlock));
    llvm::Value *n1 = minI64(E, B.CreateAdd(n0, E.c64(kColBlock)), E.dim(N));
    auto weightAt = [&](llvm::Value *n) {
      return weightRow(E, wb, welem, K, B.CreateAdd(B.CreateMul(e, E.dim(N)), n));
    };
    /// The (token, slot) pair at list position p: x row offset, output row offset.
    auto rowsAt = [&](llvm::Value *p) {
      llvm::Value *tj = B.CreateSExt(E.loadElem(list, ElemType::I32, p), E.i64());
      llvm::Value *t = B.CreateUDiv(tj, k), *j = B.CreateURem(tj, k);
      llvm::Value *b = Bd.isConstant(1) ? E.c64(0) : j;
      return std::make_pair(B.CreateMul(B.CreateAdd(B.CreateMul(t, E.dim(Bd)), b), E.dim(K)),
                            B.CreateMul(tj, E.dim(N)));
    };
    if (xelem == ElemType::F32) {
      // An expert no token was routed to costs nothing (no decode).
      ifThen(E, B.CreateICmpSLT(lo, hi), [&] {
        ItemRows ir{lo, hi, [&](llvm::Value *p) {
          auto [xo, oo] = rowsAt(p);
          return std::make_pair(B.CreateGEP(E.f32(), xb, xo), B.CreateGEP(E.f32(), ob, oo));
        }};
        emitItem(E, ir, n0, n1, welem, K, weightAt, tile, ld);
      });
      return;
    }
    // f16/bf16 activations: the generic element path.
    E.loop(lo, hi, [&](llvm::Value *p) {
      auto [xo, oo] = rowsAt(p);
      E.loop(n0, n1, [&](llvm::Value *n) {
        llvm::Value *d = dotElements(E, xelem, xb, xo, welem, weightAt(n), E.dim(K));
        E.storeElem(ob, ElemType::F32, B.CreateAdd(oo, n), d);
      }, "n");
    }, "tok");
  }, "item");
  E.finish();
  return {{{DimExpr(nE), 1}, {N, kColBlock}}, 1};
}

//===----------------------------------------------------------------------===//
// The lowering of matmul_id
//===----------------------------------------------------------------------===//

/// The routing kernel of the op's ids (once per ids value), then the GEMM.
void codegen::kernelMatmulId(StepBuilder &K, const Operation &op, unsigned buf) {
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
  unsigned route = K.S.routeOf.lookup(ids);
  K.addKernel(op, "", {buf}, [&](KernelEmitter &E) { return emitMatmulId(E, op, route); },
              {route});
}
