//===- KernelsMatmulPack.cpp - The prepare step of the packed kernels -----===//
//
// Fills the packed weight tiles (codegen/PackedTiles.h) that the int8 and
// bf16 kernels (KernelsMatmulPacked.cpp) stream: one prepare kernel per
// weight argument, run once per binding (never per run), whose items are
// (expert, column tile) pairs. Each tile takes TR weight rows, block by
// block: the rows' codes transposed so that a vector holds 4 bytes (int8)
// or a bf16 pair of each of L rows, the offset added that makes int8 codes
// unsigned, the scales beside them; q4_0/mxfp4 keep their nibbles as they
// are. Rows past N repeat the last row (int8 tiles with scale 0); the
// kernels never store their outputs.
//
//===----------------------------------------------------------------------===//
#include "codegen/PackedTiles.h"

using namespace moe;
using namespace moe::codegen;
using namespace moe::codegen::mm;
using namespace moe::codegen::mm::packed;

namespace {
/// Repacks weight rows [c, c + TR) of the item (rows at or past n1 read
/// row n1 - 1 with scale 0) into the tile.
void repack(KernelEmitter &E, const PackedTile &t, ElemType welem, const Item &it, llvm::Value *c) {
  auto &B = E.B;
  unsigned L = t.m.lanes;
  int64_t bb = rowBytes(welem, t.m.blockElems());
  unsigned V = t.m.vectorsPerBlock();
  // Row by row in a loop, each row's block stored as V dwords, dword qd at
  // lane l of the tile's vector qd: the tile is [V][L] dwords (vector-
  // major). (Rows unrolled, with the rows' blocks concatenated and
  // transposed by shuffles, an AVX-512 mxfp4 prepare kernel was 682
  // instructions before O3 and compiled in 23 ms.)
  E.loop(E.c64(0), E.c64(t.m.tg), [&](llvm::Value *g) {
    llvm::Value *g0 = B.CreateAdd(c, B.CreateMul(g, E.c64(L)));
    E.loop(E.c64(0), t.nb, [&](llvm::Value *b) {
      llvm::Value *codesAt = t.codes(E, g, b);
      llvm::Value *scalesAt = t.scales(E, g, b);
      E.loop(E.c64(0), E.c64(L), [&](llvm::Value *l) {
        llvm::Value *n = B.CreateAdd(g0, l);
        llvm::Value *valid = B.CreateICmpSLT(n, it.n1);
        llvm::Value *row = it.weightAt(B.CreateSelect(valid, n, B.CreateSub(it.n1, E.c64(1))));
        llvm::Value *at = B.CreateGEP(E.i8(), row, B.CreateMul(b, E.c64(bb)));
        llvm::Value *dwords, *d = nullptr;
        if (t.m.bf16) { // 32 bf16 = 16 pairs, no scale
          dwords = B.CreateAlignedLoad(vec(E.i32(), 16), at, llvm::Align(2));
        } else if (t.m.nibbles) { // the 16 bytes of nibbles as they are
          d = blockCodes(E, welem, at).second;
          dwords = B.CreateAlignedLoad(vec(E.i32(), 4),
                                       B.CreateConstGEP1_64(E.i8(), at, t.m.mxfp4 ? 1 : 2),
                                       llvm::Align(1));
        } else {
          auto [codes, scale] = blockCodes(E, welem, at);
          d = scale;
          if (t.m.offset)
            codes = B.CreateAdd(codes, B.CreateVectorSplat(32, B.getInt8((int8_t)t.m.offset)));
          dwords = B.CreateBitCast(codes, vec(E.i32(), 8));
        }
        for (unsigned qd = 0; qd < V; ++qd) {
          llvm::Value *lane = B.CreateAdd(l, E.c64(qd * L));
          llvm::Value *dst = B.CreateGEP(E.i32(), codesAt, lane);
          B.CreateAlignedStore(B.CreateExtractElement(dwords, qd), dst, llvm::Align(4));
        }
        if (d) {
          llvm::Value *scale = B.CreateSelect(valid, d, E.cf(0.0f));
          if (t.m.f16Scales()) {
            llvm::Value *half = B.CreateFPTrunc(scale, B.getHalfTy());
            B.CreateAlignedStore(half, B.CreateGEP(B.getHalfTy(), scalesAt, l), llvm::Align(2));
          } else
            B.CreateAlignedStore(scale, B.CreateGEP(E.f32(), scalesAt, l), llvm::Align(4));
        }
      }, "row");
    }, "blk");
  }, "group");
}

/// The prepare kernel: items are (expert, column tile) pairs, each
/// repacking TR weight rows into its tile of the packed buffer.
Extent emitPack(KernelEmitter &E, const Operation &op, unsigned packed) {
  auto &B = E.B;
  const Value *w = op.getOperand(1);
  ElemType welem = w->getType().elem;
  auto [Ed, Nd, Kd] = weightDims(op);
  PackedMode m = packedMode(E.S.target, welem);
  unsigned tr = m.lanes * m.tg;
  llvm::Value *k = E.dim(Kd), *n = E.dim(Nd), *nt = ceilDivV(E, n, tr);
  llvm::Value *wb = E.bufferPtr(E.S.bufferOf.lookup(w)), *pb = E.bufferPtr(packed);
  llvm::Value *tb = tileBytes(E, m, k);
  E.loop(E.begin, E.end, [&](llvm::Value *item) {
    llvm::Value *e = B.CreateUDiv(item, nt), *c = B.CreateMul(B.CreateURem(item, nt), E.c64(tr));
    Item it{};
    it.n1 = n;
    it.weightAt = [&](llvm::Value *row) {
      return weightRow(E, wb, welem, Kd, B.CreateAdd(B.CreateMul(e, n), row));
    };
    PackedTile t{B.CreateGEP(E.i8(), pb, B.CreateMul(item, tb)), blocks(E, m, k), m};
    repack(E, t, welem, it, c);
  }, "tile");
  E.finish();
  return {{{Ed, 1}, {Nd, tr}}, 1};
}

} // namespace

unsigned mm::packedWeights(StepBuilder &K, const Operation &op) {
  unsigned wbuf = K.S.bufferOf.lookup(op.getOperand(1));
  if (!K.S.packedOf.count(wbuf)) {
    PackedMode m = packedMode(K.S.target, op.getOperand(1)->getType().elem);
    auto [Ed, Nd, Kd] = weightDims(op);
    int64_t tr = m.lanes * m.tg;
    // ceil(N / TR) tiles of TR rows per expert: at most N + TR - 1 rows,
    // of blockBytes per 32 elements (2K bytes where the blocks
    // do not divide K in the dim algebra), plus each row's share of its
    // tile's group pads (tg pads over tg x lanes rows; rounded up, so a
    // pad that is no multiple of the lanes still fits).
    auto perBlock = Kd.divExact(m.blockElems());
    K.S.packedOf[wbuf] = addPackedWeight(
        K, op,
        Ed * (Nd + DimExpr(tr - 1)) *
            ((perBlock ? *perBlock * DimExpr(m.blockBytes()) : Kd + Kd) +
             DimExpr((m.groupPad + m.lanes - 1) / m.lanes)),
        emitPack);
  }
  return K.S.packedOf.lookup(wbuf);
}
