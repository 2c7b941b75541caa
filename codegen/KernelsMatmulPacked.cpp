//===- KernelsMatmulPacked.cpp - matmul on packed weights: int8, bf16 -----===//
//
// act = q8_0 (docs/IR.md): the activation rows are quantised once, by their
// own kernel (KernelsQuantize.cpp), to 8-bit blocks of 32 as ggml's
// reference quantiser does (the f16-rounded scale d, and each block's sum of
// codes times -o, the weights' offset below); the weights' blocks
// (q8_0, q4_0, mxfp4) are integer codes times a scale. A dot product is then
// Σ_blocks (dx * dw) * Σ_i qx_i * w_i, the inner sums exact in 32-bit
// integers, the product of the scales rounded to f32 as the interpreter
// rounds it, accumulated in f32.
//
// The weight is packed (by a prepare step, below) into column tiles of
// TR = TG x L rows (L = 32-bit lanes of a vector: 16 with AVX-512, 8 with
// AVX2) in which one vector holds, for L rows, 4 consecutive codes of each
// (so a lane is a row), plus offset o (q4_0 and mxfp4 keep their nibbles,
// two quads to a vector, unpacked in registers). Every activation row of an
// item meets each tile TM rows at a time: for each 4 codes of a token
// (broadcast), one 4-way byte dot product per group of L rows accumulates
// into 32-bit lanes (AVX-512 VNNI: vpdpbusd, unsigned weight bytes times
// signed activation bytes; AVX2: vpmaddubsw + vpmaddwd; otherwise plain
// integer IR), and once per block the lanes are scaled into f32
// accumulators, so the results need no horizontal sums. The offset o makes
// weight codes unsigned (q8_0: 128, q4_0: 8, mxfp4: 12); the accumulator
// starts each block at -o * Σ qx, so the sum is exact. AVX2 has no
// saturation-free unsigned q8_0 form, so q8_0 keeps signed codes there and
// multiplies |w| by sign(w) * qx (ggml's sign trick).
//
// act = bf16 with bf16 weights, on a target with AVX-512 BF16 or AVX2 and
// FMA: the same packed tiles with blocks of 32 bf16 (a lane holds a row's
// pair of consecutive weights), activations rounded to bf16 once by their
// own kernel. AVX-512 BF16: vdpbf16ps accumulates each pair product
// straight into the f32 lanes (no scales). AVX2: a shift and a mask split
// each pair into two f32 vectors, and two FMAs with the activation pair
// (stored as f32, broadcast from memory) accumulate them, 4 rows x 16
// weight rows at a time. Other targets run act = bf16 on the f32 tiles
// (KernelsMatmul.cpp).
//
// The packed weights are a Packed buffer (codegen/Program.h) filled by a
// prepare step (KernelsMatmulPack.cpp): the runtime runs it once per
// binding. The tile layout both use is codegen/PackedTiles.h (block-major
// records; group-major for AVX-512 BF16, see packedMode).
//
//===----------------------------------------------------------------------===//
#include "codegen/PackedTiles.h"

#include "llvm/IR/Intrinsics.h"
#include "llvm/IR/IntrinsicsX86.h"

using namespace moe;
using namespace moe::codegen;
using namespace moe::codegen::mm;
using namespace moe::codegen::mm::packed;

PackedMode packed::packedMode(const Target &t, ElemType welem) {
  if (welem == ElemType::BF16) {
    if (t.avx512bf16) {
      // Group-major tiles, each group's stream 1 KB + 64 bytes past a
      // multiple of 1 KB from the last: the four streams of a tile that
      // the kernel reads side by side. Alternating runs (Sapphire Rapids,
      // against block-major records of the four groups): T = 1, 8 and 32
      // 8-14% faster on qwen3, gpt-oss and gemma4, T = 128 5-7%, T = 512
      // 0-4% (AMX). Without the pad, streams a power of two apart (qwen3's
      // K = 2048: 64 KB) ran 2-5% slower than block-major; with a 64-byte
      // or 4 KB + 64 pad, no faster than without.
      PackedMode m{Isa::Bf16_512, 16, 4, 4, 0, true};
      m.groupMajor = true;
      m.groupPad = 1088;
      return m;
    }
    // 4 x 2 accumulators; with each group's two f32 halves and the two
    // broadcasts, 14 of the 16 ymm registers.
    // (Zen 3: 2 x 5, 1 x 6, 3 x 3 and 2 x 6 measured 10-50% slower.)
    return {Isa::Bf16Avx2, 8, 2, 4, 0, true};
  }
  int unsignedOffset = welem == ElemType::Q8_0 ? 128 : welem == ElemType::Q4_0 ? 8 : 12;
  bool nib = welem != ElemType::Q8_0, mx = welem == ElemType::MXFP4;
  if (t.avx512vnni)
    return {Isa::Vnni512, 16, 2, 4, unsignedOffset, false, nib, mx};
  // AVX2: one group of 8 rows, 3 activation rows (Zen 3, T = 128 and
  // 512: q4_0 46-170 ms against 70-222 with 2 x 2, q8_0 63-217 against
  // 75-318; 1 x 4, 1 x 5, 2 x 3, 2 x 4 and 1 x 6 measured in between).
  if (t.avx2)
    return {Isa::Avx2, 8, 1, 3, welem == ElemType::Q8_0 ? 0 : unsignedOffset, false, nib, mx};
  return {Isa::Generic, 8, 1, 2, 0};
}

namespace {

/// acc + the 4-way byte dot products of `w` (unsigned codes, or signed in
/// signed mode) and `x` (signed), lane by lane.
llvm::Value *dot4(KernelEmitter &E, const PackedMode &m, llvm::Value *acc, llvm::Value *w,
                  llvm::Value *wabs, llvm::Value *x) {
  auto &B = E.B;
  unsigned L = m.lanes;
  auto *bytes = vec(E.i8(), 4 * L);
  switch (m.isa) {
  case Isa::Vnni512:
    return B.CreateIntrinsic(llvm::Intrinsic::x86_avx512_vpdpbusd_512, {}, {acc, w, x});
  case Isa::Avx2: {
    llvm::Value *wb = B.CreateBitCast(w, bytes), *xb = B.CreateBitCast(x, bytes);
    llvm::Value *a = wb, *b = xb;
    if (m.offset == 0) { // |w| times sign(w) * x
      a = B.CreateBitCast(wabs, bytes);
      b = B.CreateIntrinsic(llvm::Intrinsic::x86_avx2_psign_b, {}, {xb, wb});
    }
    llvm::Value *p16 = B.CreateIntrinsic(llvm::Intrinsic::x86_avx2_pmadd_ub_sw, {}, {a, b});
    llvm::Value *p32 = B.CreateIntrinsic(llvm::Intrinsic::x86_avx2_pmadd_wd, {},
                                         {p16, B.CreateVectorSplat(16, B.getInt16(1))});
    return B.CreateAdd(acc, p32);
  }
  case Isa::Generic: {
    auto *wide = vec(E.i32(), 4 * L);
    llvm::Value *ws = B.CreateSExt(B.CreateBitCast(w, bytes), wide);
    llvm::Value *p = B.CreateMul(ws, B.CreateSExt(B.CreateBitCast(x, bytes), wide));
    llvm::Value *sum = acc;
    for (unsigned j = 0; j < 4; ++j) {
      llvm::SmallVector<int, 16> lanes;
      for (unsigned l = 0; l < L; ++l)
        lanes.push_back(4 * l + j);
      sum = B.CreateAdd(sum, B.CreateShuffleVector(p, lanes));
    }
    return sum;
  }
  case Isa::Bf16_512:
  case Isa::Bf16Avx2:
    break; // bf16 tiles take microTile's bf16 body, not byte dot products
  }
  llvm_unreachable("isa");
}

/// Prefetches the line at `p` into L2 (locality 2) or L1 (3): a hint,
/// never a fault. (Prefetching the activation rows too, 4 blocks ahead,
/// and the next chunk 2 chunks ahead or into L1 instead of L2, measured
/// the same as this within the noise at T = 1, 128 and 512; without the
/// weight prefetch qwen3 q8_0 at T = 128 takes 41.6 ms instead of 34.)
void prefetch(KernelEmitter &E, llvm::Value *p, int locality = 2) {
  E.B.CreateIntrinsic(llvm::Intrinsic::prefetch, {E.ptr()},
                      {p, E.B.getInt32(0), E.B.getInt32(locality), E.B.getInt32(1)});
}

/// mxfp4 E2M1 codes (one per byte) to their doubled value plus the offset,
/// through a byte shuffle (the table repeated in every 16-byte lane).
llvm::Value *mxfp4Lookup(KernelEmitter &E, const PackedMode &m, llvm::Value *codes) {
  auto &B = E.B;
  static const int kValues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  unsigned n = 4 * m.lanes;
  llvm::SmallVector<llvm::Constant *, 64> table;
  for (unsigned i = 0; i < n; ++i)
    table.push_back(B.getInt8((int8_t)(kValues[i % 16] + m.offset)));
  auto *bytes = vec(E.i8(), n);
  auto id = n == 64 ? llvm::Intrinsic::x86_avx512_pshuf_b_512 : llvm::Intrinsic::x86_avx2_pshuf_b;
  return B.CreateBitCast(B.CreateIntrinsic(id, {}, {llvm::ConstantVector::get(table),
                                                    B.CreateBitCast(codes, bytes)}),
                         codes->getType());
}

/// A vector of nibbles (quads j and j + 4 of L rows) as the two quads of
/// byte codes plus the offset (mxfp4 through its table).
std::pair<llvm::Value *, llvm::Value *> unpackNibbles(KernelEmitter &E, const PackedMode &m,
                                                      llvm::Value *v) {
  auto &B = E.B;
  unsigned L = m.lanes;
  llvm::Value *low = B.CreateVectorSplat(L, B.getInt32(0x0F0F0F0F));
  llvm::Value *a = B.CreateAnd(v, low);
  llvm::Value *b = B.CreateAnd(B.CreateLShr(v, B.CreateVectorSplat(L, B.getInt32(4))), low);
  if (m.mxfp4)
    return {mxfp4Lookup(E, m, a), mxfp4Lookup(E, m, b)};
  return {a, b};
}

/// Blocks [b0, b1) of out_i[c + r] for the tm activation rows `qx`
/// (quantised rows) and the TR rows of the tile: the accumulators start at
/// 0 when `first`, else at the stored outputs, and go back to them;
/// outputs at or past n1 are neither read nor stored. Lines [pfLo, pfHi)
/// of the weight stream's next chunk (from `next`) are this row tile's
/// share to prefetch, spread evenly over its blocks, so that the stream
/// from DRAM overlaps the dot products of every row tile.
void microTile(KernelEmitter &E, const PackedTile &t, llvm::ArrayRef<llvm::Value *> qx,
               llvm::ArrayRef<llvm::Value *> outs, llvm::Value *k, llvm::Value *c,
               llvm::Value *n1, llvm::Value *b0, llvm::Value *b1, llvm::Value *first,
               llvm::Value *next, llvm::Value *pfLo, llvm::Value *pfHi) {
  auto &B = E.B;
  const PackedMode &m = t.m;
  unsigned L = m.lanes, tm = qx.size();
  auto *vf = vec(E.f32(), L), *vi = vec(E.i32(), L);
  std::vector<llvm::Value *> masks(m.tg);
  for (unsigned g = 0; g < m.tg; ++g)
    masks[g] = laneMask(E, L, B.CreateAdd(c, E.c64(g * L)), n1);
  auto *zero = llvm::ConstantAggregateZero::get(vf);
  auto outAt = [&](unsigned i, unsigned g) {
    return B.CreateGEP(E.f32(), outs[i], B.CreateAdd(c, E.c64(g * L)));
  };
  std::vector<llvm::Value *> facc;
  for (unsigned i = 0; i < tm; ++i)
    for (unsigned g = 0; g < m.tg; ++g) {
      facc.push_back(E.entryAlloca(vf));
      llvm::Value *old = B.CreateMaskedLoad(vf, outAt(i, g), llvm::Align(4), masks[g], zero);
      B.CreateStore(B.CreateSelect(first, zero, old), facc.back());
    }
  // Block b's part of this row tile's share: lines [pfLo + (j inc >> 16),
  // pfLo + ((j + 1) inc >> 16)) for j = b - b0, inc = (pfHi - pfLo) / (b1 -
  // b0) in 16.16 fixed point (the last block ends at pfHi); no division
  // per block.
  // (b1 = b0 with K = 0: no block, nothing to prefetch, no division by 0.)
  llvm::Value *span = B.CreateShl(B.CreateSub(pfHi, pfLo), 16);
  llvm::Value *some = B.CreateICmpUGT(b1, b0);
  llvm::Value *blocks = B.CreateSelect(some, B.CreateSub(b1, b0), E.c64(1));
  llvm::Value *inc = B.CreateUDiv(span, blocks);
  auto prefetchShare = [&](llvm::Value *b) {
    llvm::Value *j = B.CreateSub(b, b0);
    llvm::Value *lo = B.CreateAdd(pfLo, B.CreateLShr(B.CreateMul(j, inc), 16));
    llvm::Value *last = B.CreateICmpEQ(B.CreateAdd(b, E.c64(1)), b1);
    llvm::Value *hi = B.CreateSelect(
        last, pfHi, B.CreateAdd(pfLo, B.CreateLShr(B.CreateMul(B.CreateAdd(j, E.c64(1)), inc), 16)));
    E.loop(lo, hi, [&](llvm::Value *line) {
      prefetch(E, t.chunkLine(E, b1, blocks, line), 2);
    }, "pf");
  };
  if (m.isa == Isa::Bf16Avx2) {
    // A lane holds a row's pair (w_2j, w_2j+1) of bf16: w_2j as f32 is the
    // lane shifted left by 16, w_2j+1 the lane with its low half cleared.
    // The activation rows are f32 already rounded to bf16, so each
    // product is exact and two FMAs (even, then odd) add it to the lane.
    auto *hiMask = B.CreateVectorSplat(L, B.getInt32(int32_t(0xFFFF0000u)));
    auto *sixteen = B.CreateVectorSplat(L, B.getInt32(16));
    E.loop(b0, b1, [&](llvm::Value *b) {
      prefetchShare(b);
      for (unsigned qd = 0; qd < m.vectorsPerBlock(); ++qd) {
        std::vector<llvm::Value *> we(m.tg), wo(m.tg);
        for (unsigned g = 0; g < m.tg; ++g) {
          llvm::Value *v = B.CreateAlignedLoad(vi, t.codes(E, g, b, qd), llvm::Align(4));
          we[g] = B.CreateBitCast(B.CreateShl(v, sixteen), vf);
          wo[g] = B.CreateBitCast(B.CreateAnd(v, hiMask), vf);
        }
        for (unsigned i = 0; i < tm; ++i) {
          llvm::Value *at = B.CreateGEP(E.i8(), qx[i], B.CreateAdd(B.CreateMul(b, E.c64(128)),
                                                                   E.c64(8 * qd)));
          llvm::Value *xe = B.CreateVectorSplat(L, B.CreateAlignedLoad(E.f32(), at, llvm::Align(4)));
          llvm::Value *xo = B.CreateVectorSplat(
              L, B.CreateAlignedLoad(E.f32(), B.CreateConstGEP1_64(E.i8(), at, 4), llvm::Align(4)));
          for (unsigned g = 0; g < m.tg; ++g) {
            llvm::Value *a = facc[i * m.tg + g];
            B.CreateStore(fma(E, wo[g], xo, fma(E, we[g], xe, B.CreateLoad(vf, a))), a);
          }
        }
      }
    }, "blk");
  } else if (m.bf16) { // f32 lanes accumulate bf16 pair products directly
    auto *vbf = vec(B.getBFloatTy(), 2 * L);
    E.loop(b0, b1, [&](llvm::Value *b) {
      prefetchShare(b);
      for (unsigned qd = 0; qd < m.vectorsPerBlock(); ++qd) {
        std::vector<llvm::Value *> w(m.tg);
        for (unsigned g = 0; g < m.tg; ++g)
          w[g] = B.CreateBitCast(B.CreateAlignedLoad(vi, t.codes(E, g, b, qd), llvm::Align(4)), vbf);
        for (unsigned i = 0; i < tm; ++i) {
          llvm::Value *q = B.CreateAlignedLoad(
              E.i32(), B.CreateGEP(E.i8(), qx[i], B.CreateAdd(B.CreateMul(b, E.c64(64)), E.c64(4 * qd))),
              llvm::Align(4));
          llvm::Value *xs = B.CreateBitCast(B.CreateVectorSplat(L, q), vbf);
          for (unsigned g = 0; g < m.tg; ++g) {
            llvm::Value *a = facc[i * m.tg + g];
            B.CreateStore(B.CreateIntrinsic(llvm::Intrinsic::x86_avx512bf16_dpbf16ps_512, {},
                                            {B.CreateLoad(vf, a), w[g], xs}),
                          a);
          }
        }
      }
    }, "blk");
  } else {
  llvm::Value *dOff = k, *sOff = B.CreateAdd(k, B.CreateUDiv(k, E.c64(8)));
  // AVX2 with nibbles (q4_0, mxfp4) sums in 16-bit lanes (sum16, below).
  // Its block loop is one basic block: the row tile that prefetches (the
  // first) asks for the next chunk's record of each block, straight-line,
  // and the others for their own record, in L1 already (no prefetch loop
  // per block); and the -o * Σ qx correction joins the sums after they are
  // widened, so no splat is live across the block. (Zen 3, alternating
  // runs: q4_0 at T = 128 qwen3 52-55 ms against 63-68, gpt-oss 118-144
  // against 139-170, qwen3 at T = 512 197 against 249; T = 1 and 32 the
  // same.)
  bool sum16 = m.isa == Isa::Avx2 && m.nibbles;
  llvm::Value *pfMine = sum16 ? B.CreateICmpULT(pfLo, pfHi) : nullptr;
  auto correction = [&](llvm::Value *b, unsigned i) {
    llvm::Value *s = B.CreateAlignedLoad(
        E.i32(), B.CreateGEP(E.i8(), qx[i], B.CreateAdd(sOff, B.CreateMul(b, E.c64(4)))),
        llvm::Align(4));
    return B.CreateVectorSplat(L, s); // -o * Σ qx (packedSumScale)
  };
  E.loop(b0, b1, [&](llvm::Value *b) {
    if (sum16) {
      // One value per statement: the IR's order must not depend on the
      // compiler's argument order (the cache keys of docs/JIT.md).
      llvm::Value *ahead =
          B.CreateGEP(E.i8(), next, B.CreateMul(B.CreateSub(b, b0), E.c64(t.recordBytes())));
      llvm::Value *own = t.record(E, b);
      llvm::Value *rec = B.CreateSelect(pfMine, ahead, own);
      for (int64_t off = 0; off < t.recordBytes(); off += 64)
        prefetch(E, B.CreateConstGEP1_64(E.i8(), rec, off), 2);
    } else {
      prefetchShare(b);
    }
    std::vector<llvm::Value *> dx(tm), iacc(tm * m.tg);
    for (unsigned i = 0; i < tm; ++i) {
      llvm::Value *b4 = B.CreateMul(b, E.c64(4));
      dx[i] = B.CreateAlignedLoad(E.f32(), B.CreateGEP(E.i8(), qx[i], B.CreateAdd(dOff, b4)),
                                  llvm::Align(4));
      llvm::Value *init = llvm::ConstantAggregateZero::get(vi);
      if (m.offset && !sum16)
        init = correction(b, i);
      for (unsigned g = 0; g < m.tg; ++g)
        iacc[i * m.tg + g] = init;
    }
    // Quad by quad (a vector of nibbles holds quads j and j + 4, so those
    // two go together), each group's codes loaded once for the tm rows:
    // only a quad's tg vectors are live beside the accumulators.
    // AVX2 with nibbles (q4_0, mxfp4): the vpmaddubsw pair sums of
    // several quads add up in 16-bit lanes before one vpmaddwd widens
    // them, half the multiplies of a widening per quad. Bounds: q4_0 codes
    // (0..15) times |qx| <= 127 give at most 3810 per pair sum, 8 quads
    // 30480; mxfp4's (0..24) 6096, 4 quads 24384: never past 32767.
    unsigned quadsPer16 = m.mxfp4 ? 4 : 8, quads16 = 0;
    std::vector<llvm::Value *> acc16(tm * m.tg, nullptr);
    auto widen16 = [&] {
      for (unsigned a = 0; a < tm * m.tg; ++a)
        if (acc16[a]) {
          iacc[a] = B.CreateAdd(iacc[a], B.CreateIntrinsic(llvm::Intrinsic::x86_avx2_pmadd_wd, {},
                                                           {acc16[a], B.CreateVectorSplat(16, B.getInt16(1))}));
          acc16[a] = nullptr;
        }
      quads16 = 0;
    };
    auto quadProducts = [&](unsigned qd, llvm::ArrayRef<llvm::Value *> w) {
      if (sum16) {
        if (quads16 == quadsPer16)
          widen16();
        ++quads16;
      }
      std::vector<llvm::Value *> wabs(m.tg, nullptr);
      if (m.isa == Isa::Avx2 && m.offset == 0)
        for (unsigned g = 0; g < m.tg; ++g)
          wabs[g] = B.CreateBitCast(
              B.CreateBinaryIntrinsic(llvm::Intrinsic::abs, B.CreateBitCast(w[g], vec(E.i8(), 4 * L)),
                                      B.getFalse()),
              vi);
      for (unsigned i = 0; i < tm; ++i) {
        llvm::Value *qp =
            B.CreateGEP(E.i8(), qx[i], B.CreateAdd(B.CreateMul(b, E.c64(32)), E.c64(4 * qd)));
        llvm::Value *q = B.CreateAlignedLoad(E.i32(), qp, llvm::Align(4));
        llvm::Value *xs = B.CreateVectorSplat(L, q);
        for (unsigned g = 0; g < m.tg; ++g) {
          unsigned a = i * m.tg + g;
          if (sum16) {
            auto *bytes = vec(E.i8(), 4 * L);
            llvm::Value *p16 = B.CreateIntrinsic(llvm::Intrinsic::x86_avx2_pmadd_ub_sw, {},
                                                 {B.CreateBitCast(w[g], bytes), B.CreateBitCast(xs, bytes)});
            acc16[a] = acc16[a] ? B.CreateAdd(acc16[a], p16) : p16;
          } else {
            iacc[a] = dot4(E, m, iacc[a], w[g], wabs[g], xs);
          }
        }
      }
    };
    for (unsigned j = 0; j < m.vectorsPerBlock(); ++j) {
      std::vector<llvm::Value *> lo(m.tg), hi(m.tg);
      for (unsigned g = 0; g < m.tg; ++g) {
        llvm::Value *v = B.CreateAlignedLoad(vi, t.codes(E, g, b, j), llvm::Align(4));
        if (!m.nibbles)
          lo[g] = v;
        else
          std::tie(lo[g], hi[g]) = unpackNibbles(E, m, v);
      }
      quadProducts(j, lo);
      if (m.nibbles)
        quadProducts(j + 4, hi);
    }
    widen16();
    if (m.offset && sum16)
      for (unsigned i = 0; i < tm; ++i) {
        llvm::Value *corr = correction(b, i);
        for (unsigned g = 0; g < m.tg; ++g)
          iacc[i * m.tg + g] = B.CreateAdd(iacc[i * m.tg + g], corr);
      }
    for (unsigned g = 0; g < m.tg; ++g) {
      llvm::Value *dw = t.loadScales(E, g, b);
      for (unsigned i = 0; i < tm; ++i) {
        llvm::Value *s = B.CreateFMul(dw, B.CreateVectorSplat(L, dx[i]));
        llvm::Value *a = facc[i * m.tg + g];
        llvm::Value *dot = B.CreateSIToFP(iacc[i * m.tg + g], vf);
        B.CreateStore(fma(E, dot, s, B.CreateLoad(vf, a)), a);
      }
    }
  }, "blk");
  }
  for (unsigned g = 0; g < m.tg; ++g)
    for (unsigned i = 0; i < tm; ++i) {
      llvm::Value *sum = B.CreateLoad(vf, facc[i * m.tg + g]);
      B.CreateMaskedStore(sum, outAt(i, g), llvm::Align(4), masks[g]);
    }
}
} // namespace


int32_t mm::packedSumScale(const Target &t, ElemType welem) {
  return -packedMode(t, welem).offset;
}

bool mm::hasBf16Kernel(const Target &t, const Operation &op) {
  const DimExpr &K = op.getOperand(0)->getType().dims.back();
  return ((t.avx512bf16 && t.avx512bw) || (t.avx2 && t.fma)) &&
         op.getOperand(1)->getType().elem == ElemType::BF16 && K.divExact(32).has_value();
}

int64_t mm::packedColumnBlock(const Target &t) {
  PackedMode m = packedMode(t, ElemType::Q8_0);
  return 2 * m.lanes * m.tg;
}

unsigned mm::packedTileRows(const Target &t, ElemType welem) {
  PackedMode m = packedMode(t, welem);
  return m.lanes * m.tg;
}

llvm::Value *mm::packedBf16Block(KernelEmitter &E, llvm::Value *tile, llvm::Value *nb,
                                 llvm::Value *g, llvm::Value *b) {
  PackedMode m = packedMode(E.S.target, ElemType::BF16);
  return PackedTile{tile, nb, m}.codes(E, g, b);
}

llvm::Value *mm::packedTile(KernelEmitter &E, const Operation &op, unsigned packed,
                            llvm::Value *expert, llvm::Value *c) {
  PackedMode m = packedMode(E.S.target, op.getOperand(1)->getType().elem);
  unsigned tr = m.lanes * m.tg;
  llvm::Value *nt = ceilDivV(E, E.dim(weightDims(op).N), tr);
  llvm::Value *tb = tileBytes(E, m, E.dim(op.getOperand(0)->getType().dims.back()));
  return tileAt(E, E.bufferPtr(packed), nt, tb, tr, expert, c);
}

ItemFn mm::packedItems(KernelEmitter &E, const Operation &op, unsigned quant, unsigned packed) {
  const Value *x = op.getOperand(0), *w = op.getOperand(1);
  const DimExpr K = x->getType().dims.back();
  PackedMode m = packedMode(E.S.target, w->getType().elem);
  unsigned tr = m.lanes * m.tg;
  llvm::Value *k = E.dim(K), *nb = blocks(E, m, k);
  llvm::Value *tb = tileBytes(E, m, k);
  llvm::Value *nt = ceilDivV(E, E.dim(weightDims(op).N), tr);
  llvm::Value *qb = E.bufferPtr(quant), *pb = E.bufferPtr(packed);
  llvm::Value *rowBytes = E.dim(quantRowBytes(E.S.target, actOf(op), K));
  // The rows left after the full row tiles take one pass, of the smallest
  // width of tm, tm / 2, ..., 1 that holds them, its rows past the last
  // real one repeating it (AVX-512: a remainder of 3 is a 4-row pass, 2 a
  // 2-row pass; AVX2: 2 is a 3-row pass). A pass per width (3, 2, 1) was
  // 10 rows of body in a kernel, now 7 (AVX2: 6, now 4): real-size layers
  // compiled in 160-161 ms, not 207-220 (qwen3, gpt-oss; Sapphire Rapids, 2
  // threads), and ran as fast or faster (q8_0 T = 1 to 32 2-12% faster:
  // fewer loops per K chunk). A matmul's remainder is the tail of its tokens, once per
  // column block: one clamped pass of the full tile.
  Remainder rem = op.is(OpKind::MatmulId) ? Remainder::ClampedHalving : Remainder::Clamped;
  return [&E, m, tr, k, nb, tb, nt, qb, pb, rowBytes, rem](const Item &it) {
    auto &B = E.B;
    llvm::Value *nrows = B.CreateSub(it.hi, it.lo);
    // Row tiles sharing each chunk's prefetch (below): one with nibbles.
    llvm::Value *nrt = m.nibbles ? E.c64(1) : ceilDivV(E, nrows, m.tm);
    // AVX-512 BF16 with one activation row (decode): one vdpbf16ps per
    // 64 bytes streamed, which the hardware prefetchers keep up with
    // alone; asking for the next chunk too made the stream slower
    // (Sapphire Rapids, alternating runs: qwen3 bf16 at T = 1 and 8
    // 5-6% faster, gpt-oss at T = 1 9%; gpt-oss at T = 8 and 32 within
    // 2%; with no prefetch for 2-4 rows too, qwen3 at T = 32 was 18%
    // slower).
    llvm::Value *noPrefetch =
        m.isa == Isa::Bf16_512 ? B.CreateICmpEQ(nrows, E.c64(1)) : nullptr;
    llvm::Value *tiles = ceilDivV(E, B.CreateSub(it.n1, it.n0), tr);
    E.loop(E.c64(0), tiles, [&](llvm::Value *ti) {
      llvm::Value *c = B.CreateAdd(it.n0, B.CreateMul(ti, E.c64(tr)));
      PackedTile t{tileAt(E, pb, nt, tb, tr, it.expert, c), nb, m};
      // K chunks: the tile's chunk stays in L1 while every row tile of the
      // item passes over it, the partial sums going to the outputs and
      // back between chunks (each output still accumulates its blocks in
      // order, so the chunking does not change a bit). At least one chunk:
      // with K = 0 (an empty tensor-parallel shard) it stores the empty
      // sums, 0.
      int64_t cb = m.chunkBlocks();
      llvm::Value *noBlock = B.CreateICmpEQ(nb, E.c64(0));
      llvm::Value *chunks = B.CreateSelect(noBlock, E.c64(1), ceilDivV(E, nb, cb));
      E.loop(E.c64(0), chunks, [&](llvm::Value *kc) {
        llvm::Value *b0 = B.CreateMul(kc, E.c64(cb));
        llvm::Value *b1 = minI64(E, B.CreateAdd(b0, E.c64(cb)), nb);
        llvm::Value *first = B.CreateICmpEQ(kc, E.c64(0));
        // The chunk after this one in memory: this tile's next, or at the
        // last chunk the next tile's first (an item's tiles are adjacent).
        llvm::Value *next = t.record(E, b1);
        // The next chunk's lines, split among the item's row tiles (q8_0,
        // bf16), so that the stream runs while every row tile computes
        // (qwen3 bf16 at T = 128 on Zen 5: 49.9 -> 42.0 ms, gpt-oss q8_0
        // 43.1 -> 35.0 ms); the first row tile asks for them all with
        // nibbles, whose blocks are too short for a prefetch loop each
        // (q4_0 measured 5-10% slower split).
        llvm::Value *lines = B.CreateMul(B.CreateSub(b1, b0), E.c64((t.recordBytes() + 63) / 64));
        if (noPrefetch)
          lines = B.CreateSelect(noPrefetch, E.c64(0), lines);
        tiledLoop(E, it.lo, it.hi, m.tm, [&](const TilePass &rows) {
          llvm::Value *r = B.CreateUDiv(B.CreateSub(rows.p, it.lo), E.c64(m.tm));
          llvm::Value *pfLo = minI64(E, B.CreateUDiv(B.CreateMul(r, lines), nrt), lines);
          llvm::Value *pfHi =
              minI64(E, B.CreateUDiv(B.CreateMul(B.CreateAdd(r, E.c64(1)), lines), nrt), lines);
          std::vector<llvm::Value *> qx, outs;
          for (unsigned i = 0; i < rows.tm; ++i) {
            llvm::Value *pi = rows.at(E, i);
            qx.push_back(B.CreateGEP(E.i8(), qb, B.CreateMul(it.xRow(pi), rowBytes)));
            outs.push_back(it.outRow(pi));
          }
          microTile(E, t, qx, outs, k, c, it.n1, b0, b1, first, next, pfLo, pfHi);
          // A remainder is one pass over the tile's chunk: two (an earlier
          // halving loop's 3 = 2 + 1) ran q8_0/q4_0 1-16% and bf16 3-13%
          // slower on Zen 3 at T = 8 to 128, where most experts hold 1-8
          // rows.
        }, "rows", rem);
      }, "kc");
    }, "ctile");
  };
}
