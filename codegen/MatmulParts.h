//===- MatmulParts.h - What the matmul kernels share ------------*- C++ -*-===//
//
// Private to codegen/KernelsMatmul*.cpp. The matmul and matmul_id kernels
// are one loop over *items* (a block of activation rows x a block of output
// columns) around a per-item body that depends on the activation precision
// (the op's `act`): f32 tiles (KernelsMatmul.cpp), f32 panels of repacked
// f32 weights (KernelsMatmulF32.cpp) or int8 tiles on quantised
// activations or bf16 tiles (KernelsMatmulPacked.cpp). This header has the item
// loops, the routing of matmul_id, and the weight-block decoding both use.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/Lowering.h"

namespace moe::codegen::mm {

llvm::FixedVectorType *vec(llvm::Type *t, unsigned n);
/// Horizontal sum of a float vector (a tree: the lanes are partial sums).
llvm::Value *hsum(KernelEmitter &E, llvm::Value *v);
llvm::Value *fma(KernelEmitter &E, llvm::Value *a, llvm::Value *b, llvm::Value *c);
/// The <lanes x i1> mask of the columns base + l (l = 0..lanes-1) below
/// `limit` (i64, signed): which lanes of a vector of outputs exist.
llvm::Value *laneMask(KernelEmitter &E, unsigned lanes, llvm::Value *base, llvm::Value *limit);
/// `n` consecutive stored elements of a float type at element `off` of `p`,
/// as <n x float>.
llvm::Value *loadFloatVec(KernelEmitter &E, ElemType elem, llvm::Value *p, llvm::Value *off,
                          unsigned n);
/// The integer codes of the block at byte `p` of a q8_0/q4_0/mxfp4 row as
/// <32 x i8> (q8_0: qs; q4_0: nibble - 8; mxfp4: the doubled E2M1 value,
/// -12..12) and its scale as f32 (the f16 d; mxfp4: 2^(e - 128)), so that
/// value j = code j * scale exactly.
std::pair<llvm::Value *, llvm::Value *> blockCodes(KernelEmitter &E, ElemType elem, llvm::Value *p);
/// The same block as <32 x float> codes and the scale.
std::pair<llvm::Value *, llvm::Value *> decodeBlock(KernelEmitter &E, ElemType elem, llvm::Value *p);
/// Byte pointer to row `row` (i64) of a weight buffer with rows of K elements.
llvm::Value *weightRow(KernelEmitter &E, llvm::Value *base, ElemType welem, const DimExpr &K,
                       llvm::Value *row);
llvm::Value *minI64(KernelEmitter &E, llvm::Value *a, llvm::Value *b);
llvm::Value *ceilDivV(KernelEmitter &E, llvm::Value *a, int64_t b);
/// if (cond) body(); the builder ends after it.
void ifThen(KernelEmitter &E, llvm::Value *cond, const std::function<void()> &body);
/// How tiledLoop covers the rows left after its full steps.
enum class Remainder {
  /// Passes of step / 2, step / 4, ..., 1 rows (each at most once but the
  /// last): a remainder of 3 is 2 + 1.
  Halving,
  /// One pass of width step whose rows past the last real one repeat it
  /// (the same inputs, so the same outputs, stored twice), or a pass of
  /// width 1 for a single row: two bodies in all.
  Clamped,
  /// One pass of the smallest of step, step / 2, ..., 1 that holds the
  /// remainder, clamped as above: Halving's bodies, one pass.
  ClampedHalving,
};
/// One pass of tiledLoop: `tm` rows from list position `p`, of which the
/// first `valid` are real (all `tm` when `valid` is null); `at(E, i)` is
/// the position row i reads and writes.
struct TilePass {
  llvm::Value *p;
  unsigned tm;
  llvm::Value *valid;
  llvm::Value *at(KernelEmitter &E, unsigned i) const;
};
/// for (i = lo; i + step <= hi; i += step) body({i, step}); then the
/// remainder as `rem` says. With a clamped remainder the body must load
/// every output it accumulates into before it stores any.
void tiledLoop(KernelEmitter &E, llvm::Value *lo, llvm::Value *hi, unsigned step,
               const std::function<void(const TilePass &)> &body, llvm::StringRef name,
               Remainder rem = Remainder::Halving);

/// The weight of `op` as [E, N, K] (E = 1 for matmul).
struct WeightDims {
  DimExpr E, N, K;
};
WeightDims weightDims(const Operation &op);

/// A Packed buffer of `bytes` holding `op`'s weight argument repacked,
/// named packed(<weight>), filled by the prepare step `emit(E, op, buffer)`
/// (run once per binding).
unsigned addPackedWeight(StepBuilder &K, const Operation &op, DimExpr bytes,
                         Extent (*emit)(KernelEmitter &, const Operation &, unsigned));

/// The activation precision of a matmul/matmul_id: its `act` attribute,
/// f32 when it has none.
ElemType actOf(const Operation &op);

/// One item of work: activation rows at list positions [lo, hi) times
/// output columns [n0, n1). Position p reads activation row `xRow(p)` (a
/// row of the operand seen as [rows, K]) and writes its outputs from
/// `outRow(p)` (an f32 pointer at column 0); weight row n is at byte
/// pointer `weightAt(n)`.
struct Item {
  llvm::Value *lo, *hi, *n0, *n1;
  llvm::Value *expert; ///< matmul_id: the item's expert; matmul: 0
  std::function<llvm::Value *(llvm::Value *)> xRow, outRow, weightAt;
};
using ItemFn = std::function<void(const Item &)>;

/// matmul: items are (block of `rowBlock` rows, block of `colBlock`
/// columns) tiles; `item` is emitted in the loop over the step's range.
Extent emitMatmulItems(KernelEmitter &E, const Operation &op, int64_t rowBlock, int64_t colBlock,
                       const ItemFn &item);
/// matmul_id: items are (expert, block of `colBlock` columns); the rows of
/// an item are the (token, slot) pairs routed to the expert (the routing
/// scratch `route`); an expert no token was routed to costs nothing.
Extent emitMatmulIdItems(KernelEmitter &E, const Operation &op, unsigned route, int64_t colBlock,
                         const ItemFn &item);
/// The routing scratch of matmul_id `op`'s ids (one kernel per ids value,
/// shared by every matmul_id routing by them).
unsigned routeFor(StepBuilder &K, const Operation &op);
/// The list of (token, slot) pairs, expert by expert, in routing scratch
/// `route` (i32 pairs tj = t * k + j).
llvm::Value *routeList(KernelEmitter &E, const Operation &op, unsigned route);
/// The activation row (of x seen as [rows, K]) that list position `p`
/// reads.
llvm::Value *routedRow(KernelEmitter &E, const Operation &op, llvm::Value *list,
                       llvm::Value *p);

/// The packed-weight (act = q8_0, and bf16 with vdpbf16ps) parts,
/// KernelsQuantize.cpp: the scratch holding
/// the op's activation rows quantised (one kernel per activation value,
/// shared), and the per-item body on it.
unsigned quantizedActivations(StepBuilder &K, const Operation &op);
/// Bytes per quantised activation row of K elements for `act` on `t`:
/// q8_0 rows are q[K] (i8) | d[K/32] (f32) | s[K/32] (i32) in 2K bytes,
/// so every part is aligned; bf16 rows are K bf16 (2K bytes) where the
/// target has vdpbf16ps, else K f32 already rounded to bf16 (4K bytes),
/// which the AVX2 kernel broadcasts straight from memory.
DimExpr quantRowBytes(const Target &t, ElemType act, const DimExpr &K);
/// Does the bf16 kernel on `t` read its activation rows as f32 (rounded
/// to bf16)? Targets without AVX-512 BF16.
bool bf16RowsAsF32(const Target &t);
/// Quantises the k f32 at `src` (k a multiple of 32) to a q8_0 activation
/// row at `dst`: codes[k] (i8) | d[k/32] (f32) | s[k/32] (i32, the codes'
/// sum per block times `sumScale`), 2k bytes.
void quantizeRow(KernelEmitter &E, llvm::Value *src, llvm::Value *dst, llvm::Value *k,
                 int32_t sumScale);
/// The factor the int8 kernel for weights `welem` on `t` wants the q8_0
/// rows' block sums multiplied by: -o, its weight codes' offset (the
/// accumulators start each block at -o * Σ qx).
int32_t packedSumScale(const Target &t, ElemType welem);
/// Rounds the k f32 at `src` to bf16 at `dst` (vectors of 16, then the rest).
void toBf16Row(KernelEmitter &E, llvm::Value *src, llvm::Value *dst, llvm::Value *k);
/// Rounds the k f32 at `src` to bf16, stored as the f32 of the same value.
void toBf16AsF32Row(KernelEmitter &E, llvm::Value *src, llvm::Value *dst, llvm::Value *k);
/// The Packed buffer holding the op's weight repacked for the int8 kernel
/// (one prepare step per weight argument, shared).
unsigned packedWeights(StepBuilder &K, const Operation &op);
/// Does `t` have the bf16 kernel (AVX-512 BF16's vdpbf16ps, or on AVX2
/// with FMA each pair split into two f32 by a shift and a mask) for act =
/// bf16 matmul `op` (bf16 weights, K a multiple of 32)? It shares the int8
/// kernels' packed tiles, activation kernel and item body.
bool hasBf16Kernel(const Target &t, const Operation &op);
/// Output columns per item of the int8 kernels.
int64_t packedColumnBlock(const Target &t);
ItemFn packedItems(KernelEmitter &E, const Operation &op, unsigned quant, unsigned packed);
/// Weight rows per packed column tile, and the byte pointer to the tile of
/// expert `expert` (0 for matmul) holding rows [c, c + rows) (c a multiple
/// of rows). For bf16 weights with AVX-512 BF16 a tile is 4 groups of 16
/// rows; group g's block b of 32 elements is 16 vectors of 64 bytes (a
/// row's pair of consecutive weights per 32-bit lane), the groups one after
/// another with packedMode's pad between them (group-major; AVX2: 2 groups
/// of 8 rows in block-major records). PackedTiles.h has the layout.
unsigned packedTileRows(const Target &t, ElemType welem);
/// The codes of group g (16 rows), block b of the bf16 tile at `tile` with
/// nb blocks per row, as the AMX kernel loads them (1 KB: 16 rows of 64
/// bytes).
llvm::Value *packedBf16Block(KernelEmitter &E, llvm::Value *tile, llvm::Value *nb,
                             llvm::Value *g, llvm::Value *b);
llvm::Value *packedTile(KernelEmitter &E, const Operation &op, unsigned packed,
                        llvm::Value *expert, llvm::Value *c);

/// The AMX parts, KernelsMatmulAmx.cpp. Does `t` have the AMX bf16 kernel
/// for act = bf16 `op` (where it has the vdpbf16ps one)?
bool hasAmxBf16Kernel(const Target &t, const Operation &op);
/// matmul_id: the activation rows rounded to bf16 in the routing list's
/// order (expert by expert, one kernel per activation and ids value), so
/// that an expert's rows are equally spaced for a tile load; 16 rows of
/// slack at the end.
unsigned gatheredActivations(StepBuilder &K, const Operation &op, unsigned route);
/// The per-item body: list position p's bf16 row is row p of `rows`; items
/// with fewer rows than a tile pays for take `small` (the vdpbf16ps body).
ItemFn amxBf16Items(KernelEmitter &E, const Operation &op, unsigned rows, unsigned packed,
                    ItemFn small);

/// The f32 panel parts (act = f32 on f32 param weights),
/// KernelsMatmulF32.cpp. Does `op` take them (f32 activations, act = f32,
/// an f32 weight that is a param)?
bool hasF32Panels(const LowerState &S, const Operation &op);
/// The Packed buffer holding the op's weight as f32 column panels (one
/// prepare step per weight argument, shared).
unsigned f32Panels(StepBuilder &K, const Operation &op);
/// Output columns per item of the f32 panel kernel for `op`.
int64_t f32PanelColumnBlock(const Target &t, const Operation &op);
ItemFn f32PanelItems(KernelEmitter &E, const Operation &op, unsigned packed);

} // namespace moe::codegen::mm
