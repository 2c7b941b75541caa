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
  // Concatenating the L rows' <V x i32> blocks gives row-major [L][V]
  // dwords; the tile wants [V][L] (vector-major), one shuffle.
  unsigned V = t.m.vectorsPerBlock();
  llvm::SmallVector<int, 128> transpose;
  for (unsigned qd = 0; qd < V; ++qd)
    for (unsigned l = 0; l < L; ++l)
      transpose.push_back(l * V + qd);
  // Group by group in a loop (a body per group was 354 instructions of a
  // q8_0 prepare kernel with AVX-512 after O3, compiled in 26 ms).
  E.loop(E.c64(0), E.c64(t.m.tg), [&](llvm::Value *g) {
    llvm::Value *g0 = B.CreateAdd(c, B.CreateMul(g, E.c64(L)));
    std::vector<llvm::Value *> rows, valid;
    for (unsigned l = 0; l < L; ++l) {
      llvm::Value *n = B.CreateAdd(g0, E.c64(l));
      valid.push_back(B.CreateICmpSLT(n, it.n1));
      rows.push_back(it.weightAt(B.CreateSelect(valid.back(), n, B.CreateSub(it.n1, E.c64(1)))));
    }
    E.loop(E.c64(0), t.nb, [&](llvm::Value *b) {
      std::vector<llvm::Value *> blocks;
      llvm::Value *scales = llvm::PoisonValue::get(vec(E.f32(), L));
      for (unsigned l = 0; l < L; ++l) {
        llvm::Value *at = B.CreateGEP(E.i8(), rows[l], B.CreateMul(b, E.c64(bb)));
        if (t.m.bf16) { // 32 bf16 = 16 pairs, no scale
          blocks.push_back(B.CreateAlignedLoad(vec(E.i32(), 16), at, llvm::Align(2)));
          continue;
        }
        if (t.m.nibbles) { // the 16 bytes of nibbles as they are
          llvm::Value *d = blockCodes(E, welem, at).second;
          blocks.push_back(B.CreateAlignedLoad(
              vec(E.i32(), 4), B.CreateConstGEP1_64(E.i8(), at, t.m.mxfp4 ? 1 : 2), llvm::Align(1)));
          scales = B.CreateInsertElement(scales, B.CreateSelect(valid[l], d, E.cf(0.0f)), l);
          continue;
        }
        auto [codes, d] = blockCodes(E, welem, at);
        if (t.m.offset)
          codes = B.CreateAdd(codes, B.CreateVectorSplat(32, B.getInt8((int8_t)t.m.offset)));
        blocks.push_back(B.CreateBitCast(codes, vec(E.i32(), 8)));
        scales = B.CreateInsertElement(scales, B.CreateSelect(valid[l], d, E.cf(0.0f)), l);
      }
      // Concatenate pairwise up to [L][8].
      while (blocks.size() > 1) {
        std::vector<llvm::Value *> next;
        for (size_t i = 0; i < blocks.size(); i += 2) {
          unsigned n = llvm::cast<llvm::FixedVectorType>(blocks[i]->getType())->getNumElements();
          llvm::SmallVector<int, 128> cat;
          for (unsigned j = 0; j < 2 * n; ++j)
            cat.push_back(j);
          next.push_back(B.CreateShuffleVector(blocks[i], blocks[i + 1], cat));
        }
        blocks = std::move(next);
      }
      // Records are 64-byte multiples with AVX-512, 32 with AVX2, 16 on the
      // baseline (34-byte q8_0 blocks): the stores claim what the layout
      // guarantees.
      int64_t rb = t.recordBytes();
      llvm::Value *codes = B.CreateShuffleVector(blocks[0], transpose);
      B.CreateAlignedStore(codes, t.codes(E, g, b),
                           llvm::Align(std::min<int64_t>(64, rb & -rb)));
      if (!t.m.bf16) {
        llvm::Value *s =
            t.m.f16Scales() ? B.CreateFPTrunc(scales, vec(B.getHalfTy(), L)) : scales;
        B.CreateAlignedStore(s, t.scales(E, g, b), llvm::Align(2));
      }
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
    // do not divide K in the dim algebra).
    auto perBlock = Kd.divExact(m.blockElems());
    K.S.packedOf[wbuf] = addPackedWeight(
        K, op, Ed * (Nd + DimExpr(tr - 1)) * (perBlock ? *perBlock * DimExpr(m.blockBytes()) : Kd + Kd),
        emitPack);
  }
  return K.S.packedOf.lookup(wbuf);
}
