//===- KernelsQuantize.cpp - Activations quantised for the packed kernels -===//
//
// The helper kernels of act = q8_0 and act = bf16 matmuls
// (KernelsMatmulPacked.cpp): each activation row is quantised once, into a
// scratch buffer (quantRowBytes per row), by its own kernel shared by the
// ops that read the same activations. q8_0: ggml's reference quantiser
// (quantize_row_q8_0: d = amax / 127 rounded to f16, codes roundf(x / d)),
// with the codes' sum per block beside it; bf16: round to nearest even,
// stored as bf16 for vdpbf16ps, as f32 for the AVX2 kernel.
//
//===----------------------------------------------------------------------===//
#include "codegen/MatmulParts.h"

using namespace moe;
using namespace moe::codegen;
using namespace moe::codegen::mm;

bool mm::bf16RowsAsF32(const Target &t) { return !t.avx512bf16; }

DimExpr mm::quantRowBytes(const Target &t, ElemType act, const DimExpr &K) {
  return K * DimExpr(act == ElemType::BF16 && bf16RowsAsF32(t) ? 4 : 2);
}

/// Converts every row of `x` (seen as [rows, K]) into its row of scratch
/// `quant` (rowBytes each) with `row(E, src, dst, k)`: quantizeRow,
/// toBf16Row or toBf16AsF32Row.
using RowFn = std::function<void(KernelEmitter &, llvm::Value *, llvm::Value *, llvm::Value *)>;
static Extent emitRows(KernelEmitter &E, const Value *x, unsigned quant, const DimExpr &rowBytes,
                       const RowFn &row) {
  auto &B = E.B;
  const Shape &xs = x->getType().dims;
  const DimExpr &K = xs.back();
  DimExpr rows = numElements(Shape(xs.begin(), xs.end() - 1));
  llvm::Value *xb = E.bufferPtr(E.S.bufferOf.lookup(x)), *qb = E.bufferPtr(quant);
  llvm::Value *k = E.dim(K);
  E.loop(E.begin, E.end, [&](llvm::Value *r) {
    llvm::Value *xr = B.CreateGEP(E.f32(), xb, B.CreateMul(r, k));
    llvm::Value *qr = B.CreateGEP(E.i8(), qb, B.CreateMul(r, E.dim(rowBytes)));
    row(E, xr, qr, k);
  }, "row");
  E.finish();
  return {rows, grainFor(K)};
}

/// roundf(x) lane by lane (halves away from zero) without libm: x86 has
/// no such rounding mode, and llvm.round on a vector becomes a call per
/// lane. t = trunc(x) and x - t are exact, so t + sign(x) where
/// |x - t| >= 0.5 is roundf exactly (NaN stays NaN).
static llvm::Value *roundHalfAway(KernelEmitter &E, llvm::Value *x) {
  auto &B = E.B;
  llvm::Value *t = E.intrinsic(llvm::Intrinsic::trunc, {x});
  llvm::Value *half = llvm::ConstantFP::get(x->getType(), 0.5);
  llvm::Value *away = B.CreateFCmpOGE(E.intrinsic(llvm::Intrinsic::fabs, {B.CreateFSub(x, t)}), half);
  llvm::Value *step = E.intrinsic(llvm::Intrinsic::copysign,
                                  {llvm::ConstantFP::get(x->getType(), 1.0), x});
  return B.CreateSelect(away, B.CreateFAdd(t, step), t);
}

void mm::quantizeRow(KernelEmitter &E, llvm::Value *xr, llvm::Value *qr, llvm::Value *k,
                     int32_t sumScale) {
  auto &B = E.B;
  auto *v32f = vec(E.f32(), 32);
  llvm::Value *dr = B.CreateGEP(E.i8(), qr, k);
  llvm::Value *sr = B.CreateGEP(E.i8(), dr, B.CreateUDiv(k, E.c64(8)));
  E.loop(E.c64(0), B.CreateUDiv(k, E.c64(32)), [&](llvm::Value *blk) {
    llvm::Value *xv = B.CreateAlignedLoad(
        v32f, B.CreateGEP(E.f32(), xr, B.CreateMul(blk, E.c64(32))), llvm::Align(4));
    // max |x| with llvm.vector.reduce.fmax's meaning (NaN lanes ignored,
    // NaN only when every lane is), as an unsigned integer max of the bit
    // patterns: for non-negative floats the orders agree, and the integer
    // tree is a few instructions where the float reduction (NaN-aware,
    // lane by lane) was a serial chain that bounded the whole kernel.
    auto *v32i = vec(E.i32(), 32);
    llvm::Value *ax = E.intrinsic(llvm::Intrinsic::fabs, {xv});
    llvm::Value *nan = B.CreateFCmpUNO(ax, ax);
    llvm::Value *bits = B.CreateSelect(nan, llvm::ConstantAggregateZero::get(v32i),
                                       B.CreateBitCast(ax, v32i));
    llvm::Value *amax = B.CreateBitCast(
        B.CreateIntrinsic(llvm::Intrinsic::vector_reduce_umax, {v32i}, {bits}), E.f32());
    llvm::Value *allNan =
        B.CreateIntrinsic(llvm::Intrinsic::vector_reduce_and, {nan->getType()}, {nan});
    amax = B.CreateSelect(allNan, B.CreateExtractElement(ax, uint64_t(0)), amax);
    llvm::Value *d = B.CreateFDiv(amax, E.cf(127.0f));
    llvm::Value *nonzero = B.CreateFCmpUNE(d, E.cf(0.0f));
    llvm::Value *id = B.CreateSelect(nonzero, B.CreateFDiv(E.cf(1.0f), d), E.cf(0.0f));
    llvm::Value *qf = roundHalfAway(E, B.CreateFMul(xv, B.CreateVectorSplat(32, id)));
    // fptosi_sat to i8 (NaN to 0, saturating), as a clamp in f32 and a
    // plain conversion: LLVM converts a saturating vector lane by lane.
    llvm::Value *zero = llvm::ConstantAggregateZero::get(v32f);
    llvm::Value *qc = B.CreateSelect(B.CreateFCmpUNO(qf, qf), zero, qf);
    qc = B.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, qc,
                                 B.CreateVectorSplat(32, E.cf(-128.0f)));
    qc = B.CreateBinaryIntrinsic(llvm::Intrinsic::minnum, qc, B.CreateVectorSplat(32, E.cf(127.0f)));
    llvm::Value *q = B.CreateTrunc(B.CreateFPToSI(qc, vec(E.i32(), 32)), vec(E.i8(), 32));
    B.CreateAlignedStore(q, B.CreateGEP(E.i8(), qr, B.CreateMul(blk, E.c64(32))),
                         llvm::Align(1));
    E.storeElem(dr, ElemType::F32, blk, E.roundTo(ElemType::F16, d));
    llvm::Value *s = B.CreateIntrinsic(llvm::Intrinsic::vector_reduce_add, {vec(E.i32(), 32)},
                                       {B.CreateSExt(q, vec(E.i32(), 32))});
    E.storeElem(sr, ElemType::I32, blk, B.CreateMul(s, B.getInt32(sumScale)));
  }, "blk");
}

void mm::toBf16Row(KernelEmitter &E, llvm::Value *src, llvm::Value *dst, llvm::Value *k) {
  auto &B = E.B;
  llvm::Value *chunks = B.CreateUDiv(k, E.c64(16));
  E.loop(E.c64(0), chunks, [&](llvm::Value *c) {
    llvm::Value *off = B.CreateMul(c, E.c64(16));
    llvm::Value *v =
        B.CreateAlignedLoad(vec(E.f32(), 16), B.CreateGEP(E.f32(), src, off), llvm::Align(4));
    E.storeElem(dst, ElemType::BF16, off, v);
  }, "v");
  E.loop(B.CreateMul(chunks, E.c64(16)), k, [&](llvm::Value *j) {
    E.storeElem(dst, ElemType::BF16, j, E.loadElem(src, ElemType::F32, j));
  }, "j");
}

void mm::toBf16AsF32Row(KernelEmitter &E, llvm::Value *src, llvm::Value *dst, llvm::Value *k) {
  auto &B = E.B;
  llvm::Value *chunks = B.CreateUDiv(k, E.c64(16));
  E.loop(E.c64(0), chunks, [&](llvm::Value *c) {
    llvm::Value *off = B.CreateMul(c, E.c64(16));
    llvm::Value *v =
        B.CreateAlignedLoad(vec(E.f32(), 16), B.CreateGEP(E.f32(), src, off), llvm::Align(4));
    llvm::Value *r = E.roundTo(ElemType::BF16, v);
    B.CreateAlignedStore(r, B.CreateGEP(E.f32(), dst, off), llvm::Align(4));
  }, "v");
  E.loop(B.CreateMul(chunks, E.c64(16)), k, [&](llvm::Value *j) {
    E.storeElem(dst, ElemType::F32, j, E.roundTo(ElemType::BF16, E.loadElem(src, ElemType::F32, j)));
  }, "j");
}

unsigned mm::quantizedActivations(StepBuilder &K, const Operation &op) {
  const Value *x = op.getOperand(0);
  bool bf16 = actOf(op) == ElemType::BF16;
  // The sums pre-scaled here: the kernel adds them as they are, a
  // broadcast load per row and block instead of a scalar multiply and a
  // register broadcast (alternating runs on Sapphire Rapids: x86-64-v3
  // q4_0 at T = 128 and 512 2-7% faster, qwen3 and gpt-oss; AVX-512 VNNI
  // q8_0 and q4_0 within -3.5% and +1.7%).
  int32_t sumScale = bf16 ? 0 : packedSumScale(K.S.target, op.getOperand(1)->getType().elem);
  auto key = std::make_pair(x, bf16 ? int64_t(1) << 32 : int64_t(sumScale));
  if (!K.S.quantOf.count(key)) {
    const Shape &xs = x->getType().dims;
    BufferDesc d;
    d.kind = BufferKind::Scratch;
    // 16 rows of slack: the AMX kernel loads whole 16-row tiles.
    DimExpr rowBytes = quantRowBytes(K.S.target, actOf(op), xs.back());
    d.scratchBytes = (numElements(Shape(xs.begin(), xs.end() - 1)) + DimExpr(16)) * rowBytes;
    d.name = (bf16 ? "bf16(%" : "q8_0(%") + x->getName() + ")";
    unsigned quant = K.addBuffer(std::move(d));
    K.S.quantOf[key] = quant;
    K.addKernel(op, "_quant", {quant}, [&](KernelEmitter &E) {
      RowFn q8 = [sumScale](KernelEmitter &E, llvm::Value *src, llvm::Value *dst, llvm::Value *k) {
        quantizeRow(E, src, dst, k, sumScale);
      };
      return emitRows(E, x, quant, rowBytes,
                      !bf16                          ? q8
                      : bf16RowsAsF32(E.S.target) ? RowFn(toBf16AsF32Row)
                                                     : RowFn(toBf16Row));
    });
  }
  return K.S.quantOf.lookup(key);
}
