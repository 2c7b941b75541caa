//===- KernelsMatmulF32.cpp - act = f32 matmul on f32 weight panels -------===//
//
// act = f32 with f32 activations and an f32 weight that is a param (so it
// can be repacked once per binding): the classic GEMM micro-kernel, with no
// horizontal sums.
//
// The weight is repacked (by a prepare step, emitPanelPack; the runtime
// runs it once per binding) into column panels of NR = NV x L rows (L = f32
// lanes of a vector: 16 with AVX-512, 8 with AVX2): panel p of expert e
// holds, for each k, the NR floats w[e][p * NR + j][k] (j = 0..NR-1)
// contiguously, rows at or past N as 0. Every activation row of an item
// meets each panel TM rows at a time: for each k, x[m][k] broadcast for the
// TM rows, NV vectors loaded from the panel, TM x NV FMAs into accumulators
// that are the outputs themselves (AVX-512: TM = 8, NV = 3, 24 zmm; AVX2: 6
// x 2, 12 ymm; baseline: 4 x 3 of 4 lanes), masked past N.
//
// K is blocked (kc = 128 with AVX-512, 256 otherwise): a block's panel
// slice stays in L1 while every row tile of the item passes over it, the
// partial sums going to the outputs and back between blocks. Each output is
// one f32 lane accumulating its products in k order, so the result does not
// depend on the tiling, the blocking or the thread count; the interpreter's
// double accumulation differs from it by rounding only. While a block
// runs, its row tiles prefetch the next slice in memory into L2 (spread
// evenly over them), so the weight stream from DRAM overlaps the FMAs.
//
// Decode (AVX-512, a matmul_id item of one activation row) is bound by the
// stream alone: the item's panels are read side by side, k by k over all of
// K, four streams per thread that the hardware prefetchers keep ahead with
// no prefetch asked for (the same products in the same k order, so the
// same bits).
//
// Everything else with act = f32 (f16/bf16 activations, other weight
// types, weights that are not params) takes KernelsMatmul.cpp's tiles.
//
//===----------------------------------------------------------------------===//
#include "codegen/MatmulParts.h"

#include "llvm/IR/Intrinsics.h"

using namespace moe;
using namespace moe::codegen;
using namespace moe::codegen::mm;

namespace {

/// The register tile and panel width for a target.
struct PanelShape {
  unsigned lanes; ///< f32 lanes of a vector
  unsigned tm;    ///< activation rows of a register tile
  unsigned nv;    ///< vectors of output columns of a register tile
  unsigned nr() const { return lanes * nv; } ///< rows of a panel
  /// k per K block: a panel slice of kc x NR floats (AVX-512: 24 KB; AVX2:
  /// 16 KB) stays in the 32-48 KB L1 beside the row tiles' activations.
  int64_t kc() const { return nr() >= 48 ? 128 : 256; }
};

PanelShape panelShape(const Target &t) {
  if (t.vectorBits >= 512)
    return {16, 8, 3};
  if (t.avx2)
    return {8, 6, 2};
  return {4, 4, 3};
}

/// Panels per item: output columns per item / NR.
constexpr unsigned kPanelsPerItem = 4;


/// The prepare kernel: items are (expert, panel) pairs, each transposing
/// NR weight rows into its panel (rows at or past N as 0).
Extent emitPanelPack(KernelEmitter &E, const Operation &op, unsigned packed) {
  auto &B = E.B;
  const Value *w = op.getOperand(1);
  auto [Ed, Nd, Kd] = weightDims(op);
  PanelShape s = panelShape(E.S.target);
  unsigned nr = s.nr();
  llvm::Value *k = E.dim(Kd), *n = E.dim(Nd), *np = ceilDivV(E, n, nr);
  llvm::Value *wb = E.bufferPtr(E.S.bufferOf.lookup(w)), *pb = E.bufferPtr(packed);
  E.loop(E.begin, E.end, [&](llvm::Value *item) {
    llvm::Value *e = B.CreateUDiv(item, np), *c = B.CreateMul(B.CreateURem(item, np), E.c64(nr));
    llvm::Value *dst = B.CreateGEP(E.f32(), pb, B.CreateMul(item, B.CreateMul(k, E.c64(nr))));
    // Row by row in a loop, k by k inside it (a vector of L rows at a
    // time, the L rows' loads unrolled into it, an AVX-512 pack kernel was
    // 211 instructions before O3 and compiled in 16 ms; the rows' nv
    // vectors unrolled too, 254 after O3 and 29 ms).
    E.loop(E.c64(0), E.c64(nr), [&](llvm::Value *j) {
      llvm::Value *r = B.CreateAdd(c, j);
      llvm::Value *valid = B.CreateICmpSLT(r, n);
      llvm::Value *last = B.CreateSub(n, E.c64(1));
      llvm::Value *first = B.CreateMul(e, n);
      llvm::Value *at = B.CreateSelect(valid, r, last);
      llvm::Value *row = weightRow(E, wb, ElemType::F32, Kd, B.CreateAdd(first, at));
      llvm::Value *col = B.CreateGEP(E.f32(), dst, j);
      E.loop(E.c64(0), k, [&](llvm::Value *kk) {
        llvm::Value *f = E.loadElem(row, ElemType::F32, kk);
        llvm::Value *x = B.CreateSelect(valid, f, E.cf(0.0f));
        B.CreateAlignedStore(x, B.CreateGEP(E.f32(), col, B.CreateMul(kk, E.c64(nr))),
                             llvm::Align(4));
      }, "k");
    }, "rows");
  }, "panel");
  E.finish();
  return {{{Ed, 1}, {Nd, nr}}, 1};
}

/// One K block [k0, k1) of the register tile: out_i[c + j] (+)= Σ_k
/// x_i[k] * panel[k][j] for the tm activation rows `xs` (f32 pointers at
/// column 0) and the NR rows of the panel (at its k = 0); `outs` point at
/// the outputs' column c. The accumulators start at 0 when `first`, else
/// at the stored outputs; columns j >= `valid` are neither read nor
/// stored. Iteration k prefetches the 64-byte line ((g0 + k) * inc) >> 16
/// of `prefetch`, and the line after it when `twoLines`.
void panelTile(KernelEmitter &E, const PanelShape &s, llvm::ArrayRef<llvm::Value *> xs,
               llvm::Value *panel, llvm::ArrayRef<llvm::Value *> outs, llvm::Value *k0,
               llvm::Value *k1, llvm::Value *first, llvm::Value *valid, llvm::Value *prefetch,
               llvm::Value *g0, llvm::Value *inc, llvm::Value *twoLines) {
  auto &B = E.B;
  unsigned L = s.lanes, nv = s.nv, nr = s.nr(), tm = xs.size();
  auto *vt = vec(E.f32(), L);
  std::vector<llvm::Value *> masks(nv);
  for (unsigned v = 0; v < nv; ++v)
    masks[v] = laneMask(E, L, E.c64(v * L), valid);
  auto *zero = llvm::ConstantAggregateZero::get(vt);
  std::vector<llvm::Value *> acc;
  for (unsigned i = 0; i < tm; ++i)
    for (unsigned v = 0; v < nv; ++v) {
      acc.push_back(E.entryAlloca(vt));
      llvm::Value *old = B.CreateMaskedLoad(vt, B.CreateConstGEP1_64(E.f32(), outs[i], v * L),
                                            llvm::Align(4), masks[v], zero);
      B.CreateStore(B.CreateSelect(first, zero, old), acc.back());
    }
  E.loop(k0, k1, [&](llvm::Value *kk) {
    llvm::Value *row = B.CreateGEP(E.f32(), panel, B.CreateMul(kk, E.c64(nr)));
    llvm::Value *line = B.CreateLShr(B.CreateMul(B.CreateAdd(g0, kk), inc), 16);
    auto prefetchLine = [&](llvm::Value *l) {
      B.CreateIntrinsic(llvm::Intrinsic::prefetch, {E.ptr()},
                        {B.CreateGEP(E.i8(), prefetch, B.CreateMul(l, E.c64(64))), B.getInt32(0),
                         B.getInt32(2), B.getInt32(1)});
    };
    prefetchLine(line);
    // Fewer row tiles than lines per k: one line per k would leave some
    // out, so a second one (the block's tiles then cover 2/3 of a 3-line
    // slice on their own, all of it from 2 tiles on).
    ifThen(E, twoLines, [&] { prefetchLine(B.CreateAdd(line, E.c64(1))); });
    std::vector<llvm::Value *> w(nv);
    for (unsigned v = 0; v < nv; ++v)
      w[v] = B.CreateAlignedLoad(vt, B.CreateConstGEP1_64(E.f32(), row, v * L), llvm::Align(4));
    for (unsigned i = 0; i < tm; ++i) {
      llvm::Value *xv = B.CreateVectorSplat(L, E.loadElem(xs[i], ElemType::F32, kk));
      for (unsigned v = 0; v < nv; ++v) {
        llvm::Value *a = acc[i * nv + v];
        B.CreateStore(fma(E, xv, w[v], B.CreateLoad(vt, a)), a);
      }
    }
  }, "k");
  for (unsigned v = 0; v < nv; ++v)
    for (unsigned i = 0; i < tm; ++i) {
      llvm::Value *sum = B.CreateLoad(vt, acc[i * nv + v]);
      B.CreateMaskedStore(sum, B.CreateConstGEP1_64(E.f32(), outs[i], v * L), llvm::Align(4),
                          masks[v]);
    }
}

/// One activation row `x` against the item's panels (at most
/// kPanelsPerItem, from `panel0`, `panelFloats` apart) side by side: for
/// each k of [0, K), x[k] broadcast, NV vectors of every panel loaded and
/// multiplied into P x NV accumulators, stored once into `out` (the
/// outputs at the item's first column) where column < `cols`. Panels past
/// the item's last (`panels` of them) reread the last, which is in L1, and
/// store nothing.
void panelRowAcross(KernelEmitter &E, const PanelShape &s, llvm::Value *x, llvm::Value *panel0,
                    llvm::Value *panelFloats, llvm::Value *panels, llvm::Value *out,
                    llvm::Value *cols, llvm::Value *k) {
  auto &B = E.B;
  unsigned L = s.lanes, nv = s.nv, nr = s.nr(), np = kPanelsPerItem;
  auto *vt = vec(E.f32(), L);
  llvm::Value *lastPanel = B.CreateSub(panels, E.c64(1));
  std::vector<llvm::Value *> ptrs(np), masks(np * nv), acc(np * nv);
  for (unsigned p = 0; p < np; ++p) {
    llvm::Value *at = B.CreateBinaryIntrinsic(llvm::Intrinsic::umin, E.c64(p), lastPanel);
    ptrs[p] = B.CreateGEP(E.f32(), panel0, B.CreateMul(at, panelFloats));
    for (unsigned v = 0; v < nv; ++v) {
      masks[p * nv + v] = laneMask(E, L, E.c64(p * nr + v * L), cols);
      acc[p * nv + v] = E.entryAlloca(vt);
      B.CreateStore(llvm::ConstantAggregateZero::get(vt), acc[p * nv + v]);
    }
  }
  E.loop(E.c64(0), k, [&](llvm::Value *kk) {
    llvm::Value *xv = B.CreateVectorSplat(L, E.loadElem(x, ElemType::F32, kk));
    llvm::Value *off = B.CreateMul(kk, E.c64(nr));
    for (unsigned p = 0; p < np; ++p) {
      llvm::Value *row = B.CreateGEP(E.f32(), ptrs[p], off);
      for (unsigned v = 0; v < nv; ++v) {
        llvm::Value *w = B.CreateAlignedLoad(vt, B.CreateConstGEP1_64(E.f32(), row, v * L),
                                             llvm::Align(4));
        llvm::Value *a = acc[p * nv + v];
        B.CreateStore(fma(E, xv, w, B.CreateLoad(vt, a)), a);
      }
    }
  }, "k");
  // One value per statement: the IR's order must not depend on the
  // compiler's argument order (the cache keys of docs/JIT.md).
  for (unsigned p = 0; p < np; ++p)
    for (unsigned v = 0; v < nv; ++v) {
      llvm::Value *sum = B.CreateLoad(vt, acc[p * nv + v]);
      llvm::Value *at = B.CreateConstGEP1_64(E.f32(), out, p * nr + v * L);
      B.CreateMaskedStore(sum, at, llvm::Align(4), masks[p * nv + v]);
    }
}
} // namespace

bool mm::hasF32Panels(const LowerState &S, const Operation &op) {
  const Value *x = op.getOperand(0), *w = op.getOperand(1);
  if (actOf(op) != ElemType::F32 || x->getType().elem != ElemType::F32 ||
      w->getType().elem != ElemType::F32)
    return false;
  auto it = S.bufferOf.find(w);
  if (it == S.bufferOf.end())
    return false;
  const BufferDesc &d = S.buffers[it->second];
  return d.kind == BufferKind::Argument && d.value && d.value->isParam();
}

unsigned mm::f32Panels(StepBuilder &K, const Operation &op) {
  unsigned wbuf = K.S.bufferOf.lookup(op.getOperand(1));
  if (!K.S.panelOf.count(wbuf)) {
    PanelShape s = panelShape(K.S.target);
    auto [Ed, Nd, Kd] = weightDims(op);
    // ceil(N / NR) panels of NR rows per expert: at most N + NR - 1 rows.
    K.S.panelOf[wbuf] = addPackedWeight(K, op, Ed * (Nd + DimExpr(s.nr() - 1)) * Kd * DimExpr(4),
                                        emitPanelPack);
  }
  return K.S.panelOf.lookup(wbuf);
}

int64_t mm::f32PanelColumnBlock(const Target &t, const Operation &op) {
  int64_t nr = panelShape(t).nr();
  // A matmul as narrow as one item (a router: qwen3's 128 columns) takes
  // an item per panel, so that a short T (decode: one row block) still
  // splits among the threads (its 1 MB ran on one: qwen3 q4_0 at T = 1
  // 0.71 -> 0.68 ms, T = 8 2% faster, T = 512 the same; Sapphire Rapids).
  std::optional<int64_t> n = weightDims(op).N.getConstant();
  if (op.is(OpKind::Matmul) && n && *n <= kPanelsPerItem * nr)
    return nr;
  return kPanelsPerItem * nr;
}

ItemFn mm::f32PanelItems(KernelEmitter &E, const Operation &op, unsigned packed) {
  const Value *x = op.getOperand(0);
  const DimExpr K = x->getType().dims.back();
  PanelShape s = panelShape(E.S.target);
  unsigned nr = s.nr();
  int64_t kc = s.kc();
  llvm::Value *k = E.dim(K), *np = ceilDivV(E, E.dim(weightDims(op).N), nr);
  llvm::Value *xb = E.bufferPtr(E.S.bufferOf.lookup(x)), *pb = E.bufferPtr(packed);
  llvm::Value *panelFloats = E.B.CreateMul(k, E.c64(nr));
  // A matmul's row remainder is the tail of its tokens, once per column
  // block: one clamped pass of the whole tile's body, and the kernel holds
  // two bodies (the router's kernel: 75 -> 42 ms of O3 and code generation).
  // matmul_id has a remainder per expert: a clamped full tile there costs up
  // to 8x the FMAs of the rows it holds (T = 8 and 32, qwen3 and gpt-oss:
  // 2-5% slower), so it keeps every halving width.
  Remainder rem = op.is(OpKind::MatmulId) ? Remainder::Halving : Remainder::Clamped;
  bool decode = s.lanes >= 16 && op.is(OpKind::MatmulId);
  return [&E, s, nr, kc, k, np, xb, pb, panelFloats, rem, decode](const Item &it) {
    auto &B = E.B;
    llvm::Value *panels = ceilDivV(E, B.CreateSub(it.n1, it.n0), nr);
    llvm::Value *expertTiles = B.CreateMul(it.expert, np);
    // Decode: an item of one row reads its panels side by side, with no
    // prefetch asked for. On Sapphire Rapids two threads reading 2-4
    // sequences each at once read 1.12-1.17x the bytes per second of one
    // sequence each, and the panel tiles' prefetch of the next slice slowed
    // a lone row's stream; alternating runs of qwen3 / gpt-oss / gemma4 f32
    // against one panel at a time with that prefetch: T = 1 0.89-0.95 of
    // the times, T = 8 0.93-0.96, T = 32 within 3%. Only matmul_id's
    // kernels have this body: a plain matmul (the router) reads 1 MB at T
    // = 1, and a second body there cost 8 ms of qwen3's cold compile.
    llvm::Value *oneRow = nullptr;
    if (decode) {
      oneRow = B.CreateICmpEQ(B.CreateSub(it.hi, it.lo), E.c64(1));
      ifThen(E, oneRow, [&] {
        llvm::Value *tile = B.CreateAdd(expertTiles, B.CreateUDiv(it.n0, E.c64(nr)));
        llvm::Value *panel0 = B.CreateGEP(E.f32(), pb, B.CreateMul(tile, panelFloats));
        llvm::Value *x = B.CreateGEP(E.f32(), xb, B.CreateMul(it.xRow(it.lo), k));
        llvm::Value *out = B.CreateGEP(E.f32(), it.outRow(it.lo), it.n0);
        panelRowAcross(E, s, x, panel0, panelFloats, panels, out, B.CreateSub(it.n1, it.n0), k);
      });
    }
    llvm::Value *tiledPanels = oneRow ? B.CreateSelect(oneRow, E.c64(0), panels) : panels;
    E.loop(E.c64(0), tiledPanels, [&](llvm::Value *pi) {
      llvm::Value *c = B.CreateAdd(it.n0, B.CreateMul(pi, E.c64(nr)));
      llvm::Value *tile = B.CreateAdd(expertTiles, B.CreateUDiv(c, E.c64(nr)));
      llvm::Value *panel = B.CreateGEP(E.f32(), pb, B.CreateMul(tile, panelFloats));
      llvm::Value *valid = B.CreateSub(it.n1, c);
      // K blocks of kc: the panel's slice of a block (kc x NR floats) stays
      // in L1 while every row tile of the item passes over it. Meanwhile
      // the row tiles prefetch the next slice in memory (the next block,
      // or the next panel's first: panels are in item order) one line per
      // k, so that the weight stream overlaps the FMAs.
      // At least one block: with K = 0 (an empty tensor-parallel shard) it
      // stores the empty sums, 0.
      llvm::Value *none = B.CreateICmpEQ(k, E.c64(0));
      llvm::Value *blocks = B.CreateSelect(none, E.c64(1), ceilDivV(E, k, kc));
      E.loop(E.c64(0), blocks, [&](llvm::Value *kb) {
        llvm::Value *k0 = B.CreateMul(kb, E.c64(kc));
        llvm::Value *k1 = minI64(E, B.CreateAdd(k0, E.c64(kc)), k);
        llvm::Value *first = B.CreateICmpEQ(kb, E.c64(0));
        llvm::Value *pf = B.CreateGEP(E.f32(), panel, B.CreateMul(k1, E.c64(nr)));
        // The ~NR/16 lines per k of the slice spread evenly over the
        // block's nt x kc iterations (16.16 fixed point: tile t, iteration
        // k prefetches line (t kc + k - k0) * NR / (16 nt)), so the stream
        // asks for no more lines at a time than it needs.
        llvm::Value *nt = ceilDivV(E, B.CreateSub(it.hi, it.lo), s.tm);
        llvm::Value *inc = B.CreateUDiv(E.c64(int64_t(nr) << 12), nt);
        llvm::Value *twoLines = B.CreateICmpUGT(inc, E.c64(1 << 16));
        tiledLoop(E, it.lo, it.hi, s.tm, [&](const TilePass &rows) {
          llvm::Value *t = B.CreateUDiv(B.CreateSub(rows.p, it.lo), E.c64(s.tm));
          llvm::Value *g0 = B.CreateSub(B.CreateMul(t, E.c64(kc)), k0);
          std::vector<llvm::Value *> xs, outs;
          for (unsigned i = 0; i < rows.tm; ++i) {
            llvm::Value *pi = rows.at(E, i);
            xs.push_back(B.CreateGEP(E.f32(), xb, B.CreateMul(it.xRow(pi), k)));
            outs.push_back(B.CreateGEP(E.f32(), it.outRow(pi), c));
          }
          panelTile(E, s, xs, panel, outs, k0, k1, first, valid, pf, g0, inc, twoLines);
        }, "rows", rem);
      }, "kb");
    }, "panel");
  };
}
