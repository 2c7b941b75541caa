//===- KernelsMatmul.cpp - matmul and matmul_id ---------------------------===//
//
// The kernel lowerings of matmul and matmul_id (Lowering.h): the op's
// activation precision (`act`) picks the per-item body, the item loops and
// the routing are MatmulParts.h's.
//
// act = f32 and bf16 (this file): weights are read in their stored form and
// never expanded in a buffer of their own. A tile of TN weight rows (f16,
// bf16 and the GGUF blocks q8_0, q4_0, mxfp4, a block of 32 at a time,
// decoded in registers) is converted to f32 once per item into a small
// stack tile, then every activation row of the item is multiplied against
// it, TM rows at a time (a register tile of TM x TN vector accumulators of
// LANES f32 lanes: 16 with AVX-512, 8 with AVX2). f32 weight rows are read in
// place (those of an f32 param weight with f32 activations and act = f32 go
// to KernelsMatmulF32.cpp's repacked panels instead). A decoded weight (q *
// d, with q a small integer and d an f16 or a power of two) is exact in
// f32, so the tile holds exactly the stored values. With act = bf16 each activation element is rounded to bf16 as it
// is loaded. Each output accumulates in f32 lanes over K and is reduced
// once; the interpreter's double accumulation differs from it by rounding
// only.
//
// act = q8_0, and bf16 where the target has AVX-512 BF16:
// KernelsMatmulPacked.cpp; act = bf16 on AMX: KernelsMatmulAmx.cpp; act =
// f32 on f32 param weights: KernelsMatmulF32.cpp.
//
//===----------------------------------------------------------------------===//
#include "codegen/MatmulParts.h"

#include "llvm/IR/Intrinsics.h"

using namespace moe;
using namespace moe::codegen;
using namespace moe::codegen::mm;

namespace {
constexpr int64_t kColBlock = 16; ///< output columns per item
constexpr int64_t kRowBlock = 32; ///< matmul rows per item
constexpr int64_t kAmxGrain = 16;  ///< matmul_id items per call of an AMX kernel

/// The register tile: TM activation rows x TN weight rows of accumulators
/// of `lanes` f32 (AVX-512: 16 zmm accumulators; AVX2: 12 ymm).
struct TileShape {
  unsigned lanes, tm, tn;
};
TileShape tileShape(const KernelEmitter &E) {
  return E.S.target.vectorBits >= 512 ? TileShape{16, 4, 4} : TileShape{8, 3, 4};
}

/// Converts `rows.size()` weight rows (byte pointers) of K elements of
/// `welem` to f32 rows of `ld` floats at `tile`: a GGUF block at a time as
/// q * d (exact), f16/bf16 a vector at a time.
void decodeRows(KernelEmitter &E, ElemType welem, const DimExpr &K,
                llvm::ArrayRef<llvm::Value *> rows, llvm::Value *tile, llvm::Value *ld,
                unsigned lanes) {
  auto &B = E.B;
  llvm::Value *k = E.dim(K);
  for (unsigned j = 0; j < rows.size(); ++j) {
    llvm::Value *dst = B.CreateGEP(E.f32(), tile, B.CreateMul(ld, E.c64(j)));
    if (isQuantized(welem)) {
      int64_t bb = rowBytes(welem, 32);
      E.loop(E.c64(0), B.CreateUDiv(k, E.c64(32)), [&](llvm::Value *blk) {
        auto [q, d] = decodeBlock(E, welem, B.CreateGEP(E.i8(), rows[j], B.CreateMul(blk, E.c64(bb))));
        llvm::Value *v = B.CreateFMul(q, B.CreateVectorSplat(32, d));
        B.CreateAlignedStore(v, B.CreateGEP(E.f32(), dst, B.CreateMul(blk, E.c64(32))),
                             llvm::Align(4));
      }, "blk");
      continue;
    }
    llvm::Value *chunks = B.CreateUDiv(k, E.c64(lanes));
    E.loop(E.c64(0), chunks, [&](llvm::Value *c) {
      llvm::Value *off = B.CreateMul(c, E.c64(lanes));
      llvm::Value *v = loadFloatVec(E, welem, rows[j], off, lanes);
      B.CreateAlignedStore(v, B.CreateGEP(E.f32(), dst, off), llvm::Align(4));
    }, "kc");
    E.loop(B.CreateMul(chunks, E.c64(lanes)), k, [&](llvm::Value *i) {
      E.storeElem(dst, ElemType::F32, i, E.loadElem(rows[j], welem, i));
    }, "kt");
  }
}

/// x rounded to bf16 and back (act = bf16), else x.
llvm::Value *activation(KernelEmitter &E, ElemType act, llvm::Value *x) {
  return act == ElemType::BF16 ? E.roundTo(ElemType::BF16, x) : x;
}

/// The register tile: out_i[j] = dot(x_i, w_j) over K for every activation
/// row x_i (f32 pointers) and f32 weight row w_j; `outs` point at the
/// outputs' column 0 of the tile.
void microTile(KernelEmitter &E, ElemType act, llvm::ArrayRef<llvm::Value *> xs,
               llvm::ArrayRef<llvm::Value *> ws, llvm::ArrayRef<llvm::Value *> outs,
               const DimExpr &K, unsigned lanes) {
  auto &B = E.B;
  auto *vt = vec(E.f32(), lanes);
  auto *zero = llvm::ConstantAggregateZero::get(vt);
  std::vector<llvm::Value *> acc;
  for (size_t a = 0; a < xs.size() * ws.size(); ++a) {
    acc.push_back(E.entryAlloca(vt));
    B.CreateStore(zero, acc.back());
  }
  llvm::Value *k = E.dim(K), *chunks = B.CreateUDiv(k, E.c64(lanes));
  E.loop(E.c64(0), chunks, [&](llvm::Value *c) {
    llvm::Value *off = B.CreateMul(c, E.c64(lanes));
    std::vector<llvm::Value *> wv;
    for (llvm::Value *w : ws)
      wv.push_back(loadFloatVec(E, ElemType::F32, w, off, lanes));
    for (size_t i = 0; i < xs.size(); ++i) {
      llvm::Value *xv = activation(E, act, loadFloatVec(E, ElemType::F32, xs[i], off, lanes));
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
        llvm::Value *xa = activation(E, act, E.loadElem(xs[i], ElemType::F32, t));
        return fma(E, xa, E.loadElem(ws[j], ElemType::F32, t), s);
      }, "kt");
      E.storeElem(outs[i], ElemType::F32, E.c64(j), sum);
    }
}

/// dot(x, w) of `n` elements element by element: the path for f16/bf16
/// activation buffers.
llvm::Value *dotElements(KernelEmitter &E, ElemType xelem, llvm::Value *x, llvm::Value *xoff,
                         ElemType welem, llvm::Value *w, llvm::Value *n) {
  auto &B = E.B;
  return E.loopAcc(E.c64(0), n, E.cf(0), [&](llvm::Value *j, llvm::Value *acc) {
    llvm::Value *xv = E.loadElem(x, xelem, B.CreateAdd(xoff, j));
    return fma(E, xv, E.loadElem(w, welem, j), acc);
  }, "k");
}

/// The f32 per-item body of `op` (see the file comment). The decode tile
/// is allocated once, in the kernel's body before its item loop.
ItemFn f32Items(KernelEmitter &E, const Operation &op) {
  auto &B = E.B;
  const Value *x = op.getOperand(0), *w = op.getOperand(1);
  const DimExpr K = x->getType().dims.back();
  ElemType welem = w->getType().elem, xelem = x->getType().elem, act = actOf(op);
  llvm::Value *xb = E.bufferPtr(E.S.bufferOf.lookup(x));
  TileShape ts = tileShape(E);
  llvm::Value *tile = nullptr, *ld = nullptr;
  if (welem != ElemType::F32 && xelem == ElemType::F32) {
    ld = B.CreateMul(ceilDivV(E, E.dim(K), 16), E.c64(16));
    tile = B.CreateAlloca(E.f32(), B.CreateMul(ld, E.c64(ts.tn)), "wtile");
  }
  return [&E, K, welem, xelem, act, xb, ts, tile, ld](const Item &it) {
    auto &B = E.B;
    llvm::Value *k = E.dim(K);
    if (xelem != ElemType::F32) { // f16/bf16 activations: element by element
      E.loop(it.lo, it.hi, [&](llvm::Value *p) {
        llvm::Value *xo = B.CreateMul(it.xRow(p), k), *out = it.outRow(p);
        E.loop(it.n0, it.n1, [&](llvm::Value *n) {
          E.storeElem(out, ElemType::F32, n, dotElements(E, xelem, xb, xo, welem, it.weightAt(n), k));
        }, "n");
      }, "r");
      return;
    }
    tiledLoop(E, it.n0, it.n1, ts.tn, [&](const TilePass &cols) {
      llvm::Value *c = cols.p;
      unsigned tn = cols.tm;
      std::vector<llvm::Value *> ws;
      for (unsigned j = 0; j < tn; ++j)
        ws.push_back(it.weightAt(B.CreateAdd(c, E.c64(j))));
      if (tile) {
        decodeRows(E, welem, K, ws, tile, ld, ts.lanes);
        for (unsigned j = 0; j < tn; ++j)
          ws[j] = B.CreateGEP(E.f32(), tile, B.CreateMul(ld, E.c64(j)));
      }
      tiledLoop(E, it.lo, it.hi, ts.tm, [&](const TilePass &rows) {
        std::vector<llvm::Value *> xs, outs;
        for (unsigned i = 0; i < rows.tm; ++i) {
          llvm::Value *pi = rows.at(E, i);
          xs.push_back(B.CreateGEP(E.f32(), xb, B.CreateMul(it.xRow(pi), k)));
          outs.push_back(B.CreateGEP(E.f32(), it.outRow(pi), c));
        }
        microTile(E, act, xs, ws, outs, K, ts.lanes);
      }, "rows");
    }, "cols");
  };
}
} // namespace

//===----------------------------------------------------------------------===//
// The lowerings
//===----------------------------------------------------------------------===//

/// act = q8_0 always takes the packed int8 kernel; act = bf16 the packed
/// bf16 one where the target has it.
static bool packedKernel(const StepBuilder &K, const Operation &op) {
  ElemType act = actOf(op);
  return act == ElemType::Q8_0 || (act == ElemType::BF16 && hasBf16Kernel(K.S.target, op));
}

/// Does the target have AMX tiles for `op`?
static bool amxKernel(const Target &t, const Operation &op) {
  return hasAmxBf16Kernel(t, op);
}

/// The packed per-item body: AMX tiles where the target has them for `op`
/// (activation rows of `rows`; `vector`, the vector body, for small items),
/// else `vector`.
static ItemFn packedBody(KernelEmitter &E, const Operation &op, unsigned rows, unsigned packed,
                         ItemFn vector) {
  if (hasAmxBf16Kernel(E.S.target, op))
    return amxBf16Items(E, op, rows, packed, std::move(vector));
  return vector;
}

void codegen::kernelMatmul(StepBuilder &K, const Operation &op, unsigned buf) {
  if (packedKernel(K, op)) {
    unsigned quant = quantizedActivations(K, op), packed = packedWeights(K, op);
    K.addKernel(op, "", {buf}, [&](KernelEmitter &E) {
      return emitMatmulItems(E, op, kRowBlock, packedColumnBlock(E.S.target),
                             packedBody(E, op, quant, packed, packedItems(E, op, quant, packed)));
    }, {quant, packed});
    return;
  }
  if (hasF32Panels(K.S, op)) {
    unsigned panels = f32Panels(K, op);
    K.addKernel(op, "", {buf}, [&](KernelEmitter &E) {
      return emitMatmulItems(E, op, kRowBlock, f32PanelColumnBlock(E.S.target, op),
                             f32PanelItems(E, op, panels));
    }, {panels});
    return;
  }
  K.addKernel(op, "", {buf}, [&](KernelEmitter &E) {
    return emitMatmulItems(E, op, kRowBlock, kColBlock, f32Items(E, op));
  });
}

/// The routing kernel of the op's ids (once per ids value), then the GEMM.
void codegen::kernelMatmulId(StepBuilder &K, const Operation &op, unsigned buf) {
  unsigned route = routeFor(K, op);
  if (packedKernel(K, op)) {
    if (amxKernel(K.S.target, op)) {
      // The activations in list order serve both bodies: position p is row p.
      unsigned rows = gatheredActivations(K, op, route), packed = packedWeights(K, op);
      K.addKernel(op, "", {buf}, [&](KernelEmitter &E) {
        ItemFn vector = packedItems(E, op, rows, packed);
        Extent x = emitMatmulIdItems(E, op, route, packedColumnBlock(E.S.target),
                                     packedBody(E, op, rows, packed, [vector](const Item &it) {
                                       Item byPosition = it;
                                       byPosition.xRow = [](llvm::Value *p) { return p; };
                                       vector(byPosition);
                                     }));
        // Each call of an AMX kernel configures the tiles (ldtilecfg, at
        // its entry): 16 items a call, not one (decode: 18% of the time).
        x.grain = kAmxGrain;
        return x;
      }, {route, rows, packed});
      return;
    }
    unsigned quant = quantizedActivations(K, op), packed = packedWeights(K, op);
    K.addKernel(op, "", {buf}, [&](KernelEmitter &E) {
      return emitMatmulIdItems(E, op, route, packedColumnBlock(E.S.target),
                               packedItems(E, op, quant, packed));
    }, {route, quant, packed});
    return;
  }
  if (hasF32Panels(K.S, op)) {
    unsigned panels = f32Panels(K, op);
    K.addKernel(op, "", {buf}, [&](KernelEmitter &E) {
      return emitMatmulIdItems(E, op, route, f32PanelColumnBlock(E.S.target, op),
                               f32PanelItems(E, op, panels));
    }, {route, panels});
    return;
  }
  K.addKernel(op, "", {buf}, [&](KernelEmitter &E) {
    return emitMatmulIdItems(E, op, route, kColBlock, f32Items(E, op));
  }, {route});
}
