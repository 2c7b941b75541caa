//===- PackedTiles.h - Packed tiles of the int8 and bf16 kernels -*- C++ -*-===//
//
// Private to codegen/KernelsMatmulPacked.cpp (the microkernel that streams
// the tiles) and codegen/KernelsMatmulPack.cpp (the prepare step that fills
// them once per binding): the kernel's shape per target and weight type,
// and the tile layout both address. KernelsMatmulPacked.cpp's header
// describes the kernels.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/MatmulParts.h"

namespace moe::codegen::mm::packed {

enum class Isa { Vnni512, Avx2, Generic, Bf16_512, Bf16Avx2 };

/// The int8 kernel's shape and instructions for a target and weight type.
struct PackedMode {
  Isa isa;
  unsigned lanes; ///< i32 lanes of a vector: rows per group
  unsigned tg;    ///< groups of rows in a column tile
  unsigned tm;    ///< activation rows in a register tile
  int offset;     ///< added to the weight codes in the tile
  /// bf16 weights and activations (vdpbf16ps): blocks of 32 elements, no
  /// scales; else int8 codes in blocks of 32 with a scale each.
  bool bf16 = false;
  /// q4_0/mxfp4 with a byte shuffle (AVX2, AVX-512): the tile keeps the
  /// GGUF nibbles, two quads per vector (low nibbles quad j, high nibbles
  /// quad j + 4, exactly the blocks' byte order), unpacked in registers.
  bool nibbles = false;
  bool mxfp4 = false; ///< nibbles are E2M1 codes, mapped through a table
  /// bf16 with vdpbf16ps: a tile is group-major (group g's blocks in a
  /// row, then group g + 1's), so each group is one sequential stream,
  /// not four interleaved in every 4 KB block record (see PackedTile).
  bool groupMajor = false;
  /// Group-major: bytes between one group's last block and the next
  /// group's first.
  int64_t groupPad = 0;
  unsigned blockElems() const { return 32; }
  /// Vectors of codes per block and group.
  unsigned vectorsPerBlock() const { return bf16 ? 16 : nibbles ? 4 : 8; }
  /// The scales are the blocks' own f16 d (q8_0, q4_0), kept as f16 so
  /// the tile is no larger than the GGUF blocks it holds; mxfp4's scales
  /// (2^(e - 128)) reach beyond f16 and stay f32.
  bool f16Scales() const { return !bf16 && !mxfp4; }
  unsigned scaleBytes() const { return bf16 ? 0 : f16Scales() ? 2 : 4; }
  /// Bytes of a tile block per row: the codes, plus the scale.
  unsigned blockBytes() const { return (bf16 ? 64 : nibbles ? 16 : 32) + scaleBytes(); }
  /// Bytes of one block of a column tile: every group's codes and scales.
  int64_t recordBytes() const { return int64_t(blockBytes()) * lanes * tg; }
  /// Within a record: bytes of one vector of codes (L rows x 4 bytes), of
  /// one group's codes, where the scales start, bytes of one group's scales.
  int64_t vectorBytes() const { return int64_t(4) * lanes; }
  int64_t groupCodeBytes() const { return vectorsPerBlock() * vectorBytes(); }
  int64_t scalesOffset() const { return tg * groupCodeBytes(); }
  int64_t groupScaleBytes() const { return int64_t(scaleBytes()) * lanes; }
  /// Blocks per K chunk: a tile's chunk (about 16 KB) stays in L1 while
  /// every row tile of the item passes over it.
  int64_t chunkBlocks() const { return std::max<int64_t>(1, 16384 / recordBytes()); }
};

/// The shape for a target and weight type (KernelsMatmulPacked.cpp).
PackedMode packedMode(const Target &t, ElemType welem);

/// One packed column tile (see repack), block-major: block b of every
/// group, then block b + 1, so a tile (and a K chunk of it) is one
/// sequential stream. A block's record is the groups' codes, then (int8)
/// their scales. Group-major tiles (PackedMode::groupMajor, no scales)
/// hold group g's block b at g * (nb * groupCodeBytes + groupPad) +
/// b * groupCodeBytes.
struct PackedTile {
  llvm::Value *base, *nb; ///< byte pointer; blocks per row
  const PackedMode &m;
  int64_t recordBytes() const { return m.recordBytes(); }
  llvm::Value *record(KernelEmitter &E, llvm::Value *b) const {
    return E.B.CreateGEP(E.i8(), base, E.B.CreateMul(b, E.c64(recordBytes())));
  }
  /// Vector qd of the codes of group g, block b (L rows x 4 bytes: one
  /// quad, or with nibbles quads qd and qd + 4; bf16: one pair).
  llvm::Value *codes(KernelEmitter &E, unsigned g, llvm::Value *b, unsigned qd) const {
    if (m.groupMajor)
      return E.B.CreateConstGEP1_64(E.i8(), groupBlock(E, E.c64(g), b), qd * m.vectorBytes());
    return E.B.CreateConstGEP1_64(E.i8(), record(E, b),
                                  g * m.groupCodeBytes() + qd * m.vectorBytes());
  }
  /// Group-major: the codes of group g, block b.
  llvm::Value *groupBlock(KernelEmitter &E, llvm::Value *g, llvm::Value *b) const {
    llvm::Value *stride = E.B.CreateAdd(E.B.CreateMul(nb, E.c64(m.groupCodeBytes())),
                                        E.c64(m.groupPad));
    llvm::Value *at = E.B.CreateGEP(E.i8(), base, E.B.CreateMul(g, stride));
    return E.B.CreateGEP(E.i8(), at, E.B.CreateMul(b, E.c64(m.groupCodeBytes())));
  }
  /// Line `line` of the K chunk from block b1 (the chunk after one of
  /// `blocks` blocks): the record-major chunk is contiguous; a group-major
  /// one is each group's `blocks` blocks from b1, group by group.
  llvm::Value *chunkLine(KernelEmitter &E, llvm::Value *b1, llvm::Value *blocks,
                         llvm::Value *line) const {
    auto &B = E.B;
    if (!m.groupMajor) {
      // One value per statement: the IR's order must not depend on the
      // compiler's argument order (the cache keys of docs/JIT.md).
      llvm::Value *rec = record(E, b1);
      return B.CreateGEP(E.i8(), rec, B.CreateMul(line, E.c64(64)));
    }
    llvm::Value *perGroup = B.CreateMul(blocks, E.c64(m.groupCodeBytes() / 64));
    llvm::Value *g = B.CreateUDiv(line, perGroup);
    llvm::Value *within = B.CreateURem(line, perGroup);
    llvm::Value *at = groupBlock(E, g, b1);
    return B.CreateGEP(E.i8(), at, B.CreateMul(within, E.c64(64)));
  }
  /// The first vector of group g (i64), block b: the prepare step's loop
  /// over the groups.
  llvm::Value *codes(KernelEmitter &E, llvm::Value *g, llvm::Value *b) const {
    if (m.groupMajor)
      return groupBlock(E, g, b);
    // One value per statement: the IR's order must not depend on the
    // compiler's argument order (the cache keys of docs/JIT.md).
    llvm::Value *rec = record(E, b);
    llvm::Value *off = E.B.CreateMul(g, E.c64(m.groupCodeBytes()));
    return E.B.CreateGEP(E.i8(), rec, off);
  }
  /// The L scales of group g, block b (f16 or f32, PackedMode::f16Scales).
  llvm::Value *scales(KernelEmitter &E, unsigned g, llvm::Value *b) const {
    return E.B.CreateConstGEP1_64(E.i8(), record(E, b),
                                  m.scalesOffset() + g * m.groupScaleBytes());
  }
  llvm::Value *scales(KernelEmitter &E, llvm::Value *g, llvm::Value *b) const {
    llvm::Value *at = E.B.CreateConstGEP1_64(E.i8(), record(E, b), m.scalesOffset());
    llvm::Value *off = E.B.CreateMul(g, E.c64(m.groupScaleBytes()));
    return E.B.CreateGEP(E.i8(), at, off);
  }
  /// Those scales as <L x float> (an f16 scale converts exactly).
  llvm::Value *loadScales(KernelEmitter &E, unsigned g, llvm::Value *b) const {
    if (!m.f16Scales())
      return E.B.CreateAlignedLoad(vec(E.f32(), m.lanes), scales(E, g, b), llvm::Align(4));
    return E.B.CreateFPExt(
        E.B.CreateAlignedLoad(vec(E.B.getHalfTy(), m.lanes), scales(E, g, b), llvm::Align(2)),
        vec(E.f32(), m.lanes));
  }
};

/// Blocks per row of K elements.
inline llvm::Value *blocks(KernelEmitter &E, const PackedMode &m, llvm::Value *k) {
  return E.B.CreateUDiv(k, E.c64(m.blockElems()));
}

/// Bytes of one packed column tile: a record per block.
inline llvm::Value *tileBytes(KernelEmitter &E, const PackedMode &m, llvm::Value *k) {
  llvm::Value *codes = E.B.CreateMul(blocks(E, m, k), E.c64(m.recordBytes()));
  return E.B.CreateAdd(codes, E.c64(m.tg * m.groupPad));
}

/// Byte pointer to the tile of expert `expert` (0 for matmul) holding rows
/// [c, c + TR) (c a multiple of TR): an expert's `nt` tiles are adjacent,
/// `tb` bytes each, from `base`.
inline llvm::Value *tileAt(KernelEmitter &E, llvm::Value *base, llvm::Value *nt, llvm::Value *tb,
                           unsigned tr, llvm::Value *expert, llvm::Value *c) {
  auto &B = E.B;
  llvm::Value *expertTiles = B.CreateMul(expert, nt);
  llvm::Value *tile = B.CreateAdd(expertTiles, B.CreateUDiv(c, E.c64(tr)));
  return B.CreateGEP(E.i8(), base, B.CreateMul(tile, tb));
}

} // namespace moe::codegen::mm::packed
