//===- KernelsMatmulAmx.cpp - matmul on AMX tiles: act = bf16 -------------===//
//
// act = bf16 with bf16 weights, on a host with AMX (amx-tile, amx-bf16) that
// grants this process the tile state (codegen/Target.h): tdpbf16ps
// multiplies a tile of 16 activation rows x 32 bf16 by a tile of 32 bf16 x
// 16 output columns into 16 x 16 f32 accumulators, 8192 multiply-adds an
// instruction (about 16 times the work of an AVX-512 FMA a cycle).
//
// The weights are the packed bf16 tiles of KernelsMatmulPacked.cpp as they
// are: a group's 16 vectors of 16 row-pairs per block of 32 are exactly
// the tile B of tdpbf16ps (16 rows of 64 bytes per 32 elements of K). The
// activations are rounded to bf16 once per layer: matmul's by the
// conversion kernel, matmul_id's in the routing list's order
// (`gatheredActivations`), so the rows of an expert are equally spaced for
// one tile load; its vdpbf16ps body for small items reads them there too.
// An item (expert, 64 columns) then runs 16 of its rows at a time: four f32
// accumulator tiles (64 columns), for each 32 elements of K one activation
// tile and four weight tiles, four tdpbf16ps; the accumulators are stored
// once, through a stack buffer, to the rows' outputs (masked at the last
// column). The rows past an item's last row in its last tile are computed
// and dropped (the activation scratch has 16 rows of slack).
//
// An item with fewer than kMinRows rows (decode: an expert with a token or
// two) takes the vdpbf16ps body instead, where a tile would be mostly
// padding. Which body runs depends on the expert's row count, never on the
// thread count. tdpbf16ps, like vdpbf16ps, rounds each pair product sum
// into the f32 accumulator and flushes denormals.
//
//===----------------------------------------------------------------------===//
#include "codegen/MatmulParts.h"

#include "llvm/IR/Intrinsics.h"
#include "llvm/IR/IntrinsicsX86.h"

using namespace moe;
using namespace moe::codegen;
using namespace moe::codegen::mm;

namespace {
constexpr int64_t kTileRows = 16; ///< rows of an activation (and accumulator) tile
constexpr int64_t kGroups = 4;    ///< 16-column accumulator tiles per item tile
constexpr int64_t kMinRows = 4;   ///< fewer rows take the vdpbf16ps body

/// Rounds the activation row of each list position p to bf16 into row p
/// of `out`.
Extent emitGather(KernelEmitter &E, const Operation &op, unsigned route, unsigned out) {
  auto &B = E.B;
  const Value *x = op.getOperand(0);
  const Shape &is = op.getOperand(2)->getType().dims;
  const DimExpr &K = x->getType().dims.back();
  llvm::Value *k = E.dim(K), *rowBytes = E.dim(quantRowBytes(E.S.target, ElemType::BF16, K));
  llvm::Value *list = routeList(E, op, route);
  llvm::Value *xb = E.bufferPtr(E.S.bufferOf.lookup(x)), *gb = E.bufferPtr(out);
  E.loop(E.begin, E.end, [&](llvm::Value *p) {
    llvm::Value *src = B.CreateGEP(E.f32(), xb, B.CreateMul(routedRow(E, op, list, p), k));
    toBf16Row(E, src, B.CreateGEP(E.i8(), gb, B.CreateMul(p, rowBytes)), k);
  }, "p");
  E.finish();
  return {is[0] * is[1], 16};
}

/// The two bodies of an AMX kernel: items with fewer than kMinRows rows
/// take `small`, the others `amx`.
void splitBySize(KernelEmitter &E, const Item &it, const ItemFn &small,
                 const std::function<void()> &amx) {
  auto &B = E.B;
  auto *tiles = llvm::BasicBlock::Create(E.C, "amx", E.fn);
  auto *few = llvm::BasicBlock::Create(E.C, "few", E.fn);
  auto *join = llvm::BasicBlock::Create(E.C, "amx.join", E.fn);
  B.CreateCondBr(B.CreateICmpSLT(B.CreateSub(it.hi, it.lo), E.c64(kMinRows)), few, tiles);
  B.SetInsertPoint(few);
  small(it);
  B.CreateBr(join);
  B.SetInsertPoint(tiles);
  amx();
  B.CreateBr(join);
  B.SetInsertPoint(join);
}

/// Tile operations on <256 x i32> values (the form LLVM's AMX lowering
/// keeps in registers across loops).
struct Tiles {
  KernelEmitter &E;
  llvm::FixedVectorType *v256 = vec(E.i32(), 256);
  llvm::Value *toVec(llvm::Value *t) {
    return E.B.CreateIntrinsic(llvm::Intrinsic::x86_cast_tile_to_vector, {v256}, {t});
  }
  llvm::Value *toTile(llvm::Value *v) {
    return E.B.CreateIntrinsic(llvm::Intrinsic::x86_cast_vector_to_tile, {v256}, {v});
  }
  llvm::Value *load(unsigned rows, unsigned colBytes, llvm::Value *base, llvm::Value *stride) {
    return E.B.CreateIntrinsic(llvm::Intrinsic::x86_tileloadd64_internal, {},
                               {E.B.getInt16(rows), E.B.getInt16(colBytes), base, stride});
  }
  llvm::Value *zero(unsigned rows, unsigned colBytes) {
    return E.B.CreateIntrinsic(llvm::Intrinsic::x86_tilezero_internal, {},
                               {E.B.getInt16(rows), E.B.getInt16(colBytes)});
  }
  void store(unsigned rows, unsigned colBytes, llvm::Value *base, llvm::Value *stride,
             llvm::Value *tile) {
    E.B.CreateIntrinsic(llvm::Intrinsic::x86_tilestored64_internal, {},
                        {E.B.getInt16(rows), E.B.getInt16(colBytes), base, stride, tile});
  }
};

/// Stores rows [0, valid) of the f32 tile `buf` (rows of `ld` floats) to
/// the outputs of list positions p + r, columns [first, first + 16 * groups)
/// below n1.
void storeRows(KernelEmitter &E, const Item &it, llvm::Value *buf, int64_t ld, unsigned groups,
               llvm::Value *p, llvm::Value *valid, llvm::Value *first) {
  auto &B = E.B;
  auto *vf = vec(E.f32(), 16);
  E.loop(E.c64(0), valid, [&](llvm::Value *i) {
    llvm::Value *out = it.outRow(B.CreateAdd(p, i));
    for (unsigned g = 0; g < groups; ++g) {
      llvm::Value *col = B.CreateAdd(first, E.c64(g * 16));
      llvm::Value *mask = laneMask(E, 16, col, it.n1);
      llvm::Value *src = B.CreateGEP(E.f32(), buf, B.CreateAdd(B.CreateMul(i, E.c64(ld)), E.c64(g * 16)));
      llvm::Value *v = B.CreateAlignedLoad(vf, src, llvm::Align(4));
      B.CreateMaskedStore(v, B.CreateGEP(E.f32(), out, col), llvm::Align(4), mask);
    }
  }, "row");
}
} // namespace

bool mm::hasAmxBf16Kernel(const Target &t, const Operation &op) {
  return t.amxBf16 && t.avx512bf16 && hasBf16Kernel(t, op);
}

unsigned mm::gatheredActivations(StepBuilder &K, const Operation &op, unsigned route) {
  const Value *x = op.getOperand(0);
  unsigned xbuf = K.S.bufferOf.lookup(x);
  auto key = std::make_pair(xbuf, route);
  if (!K.S.gatheredOf.count(key)) {
    const Shape &is = op.getOperand(2)->getType().dims;
    const DimExpr &Kd = x->getType().dims.back();
    BufferDesc d;
    d.kind = BufferKind::Scratch;
    d.scratchBytes = (is[0] * is[1] + DimExpr(kTileRows)) * (Kd * DimExpr(2));
    d.name = "bf16(%" + x->getName() + ") by expert";
    unsigned out = K.addBuffer(std::move(d));
    K.S.gatheredOf[key] = out;
    K.addKernel(op, "_gather", {out},
                [&](KernelEmitter &E) { return emitGather(E, op, route, out); }, {route});
  }
  return K.S.gatheredOf.lookup(key);
}

ItemFn mm::amxBf16Items(KernelEmitter &E, const Operation &op, unsigned rows, unsigned packed,
                        ItemFn small) {
  auto &B = E.B;
  assert(packedTileRows(E.S.target, ElemType::BF16) == kGroups * 16 && "tile = 4 groups of 16");
  const DimExpr K = op.getOperand(0)->getType().dims.back();
  llvm::Value *k = E.dim(K);
  llvm::Value *rowBytes = B.CreateMul(k, E.c64(2));
  llvm::Value *steps = B.CreateUDiv(k, E.c64(32));
  llvm::Value *xb = E.bufferPtr(rows);
  Tiles T{E};
  std::vector<llvm::Value *> acc;
  for (int64_t g = 0; g < kGroups; ++g)
    acc.push_back(E.entryAlloca(T.v256));
  llvm::Value *cbuf = E.entryAlloca(llvm::ArrayType::get(E.f32(), kTileRows * kGroups * 16));
  return [&E, &op, packed, small, rowBytes, steps, xb, T, acc, cbuf](const Item &it) mutable {
    splitBySize(E, it, small, [&] {
      auto &B = E.B;
      int64_t cols = kGroups * 16;
      llvm::Value *tiles = ceilDivV(E, B.CreateSub(it.n1, it.n0), cols);
      E.loop(E.c64(0), tiles, [&](llvm::Value *ti) {
        llvm::Value *c = B.CreateAdd(it.n0, B.CreateMul(ti, E.c64(cols)));
        llvm::Value *tile = packedTile(E, op, packed, it.expert, c);
        llvm::Value *rtiles = ceilDivV(E, B.CreateSub(it.hi, it.lo), kTileRows);
        E.loop(E.c64(0), rtiles, [&](llvm::Value *rt) {
          llvm::Value *p = B.CreateAdd(it.lo, B.CreateMul(rt, E.c64(kTileRows)));
          for (llvm::Value *a : acc)
            B.CreateStore(T.toVec(T.zero(kTileRows, 64)), a);
          llvm::Value *xrow = B.CreateGEP(E.i8(), xb, B.CreateMul(p, rowBytes));
          E.loop(E.c64(0), steps, [&](llvm::Value *j) {
            llvm::Value *a = T.load(kTileRows, 64, B.CreateGEP(E.i8(), xrow, B.CreateMul(j, E.c64(64))),
                                    rowBytes);
            for (int64_t g = 0; g < kGroups; ++g) {
              // Group g's block j: 16 rows of 64 bytes.
              llvm::Value *at = packedBf16Block(E, tile, steps, E.c64(g), j);
              llvm::Value *w = T.load(16, 64, at, E.c64(64));
              llvm::Value *cv = B.CreateIntrinsic(
                  llvm::Intrinsic::x86_tdpbf16ps_internal, {},
                  {B.getInt16(kTileRows), B.getInt16(64), B.getInt16(64),
                   T.toTile(B.CreateLoad(T.v256, acc[g])), a, w});
              B.CreateStore(T.toVec(cv), acc[g]);
            }
          }, "k32", /*unroll=*/false);
          // One value per statement: the IR's order must not depend on the
          // compiler's argument order (the cache keys of docs/JIT.md).
          for (int64_t g = 0; g < kGroups; ++g) {
            llvm::Value *at = B.CreateConstGEP1_64(E.f32(), cbuf, g * 16);
            llvm::Value *tile = T.toTile(B.CreateLoad(T.v256, acc[g]));
            T.store(kTileRows, 64, at, E.c64(cols * 4), tile);
          }
          storeRows(E, it, cbuf, cols, kGroups, p,
                    minI64(E, E.c64(kTileRows), B.CreateSub(it.hi, p)), c);
        }, "rtile");
      }, "ctile");
    });
  };
}
