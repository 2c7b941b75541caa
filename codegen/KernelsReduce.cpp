//===- KernelsReduce.cpp - Reduction, softmax, norm and sort kernels ------===//
//
// The kernel lowerings of reduce_sum/mean/max, softmax, rms_norm/layer_norm,
// argsort and topk (Lowering.h). Their operands are read through the
// expression emitter, so any elementwise chain, view or gather feeding them
// is fused into their loops. Items are the positions with the reduced axis
// removed, except for reduce_* over an axis that is not the last: there an
// item is a chunk of 256 consecutive elements of an output row, summed in a
// stack row with the reduced axis as the outer loop, so the inner loop is
// over contiguous elements and vectorises (the [T, k, N] -> [T, N] sum of
// an MoE layer's expert outputs). Each position's work is a row body
// (RowBody): a kernel of its own runs one in its item loop, and the
// planner may run several, of neighbouring ops over the same positions,
// in one loop (a row group: an MoE layer's routing is one kernel). Sums
// accumulate in double, index 0 first, and are rounded once, in either
// form, as the interpreter does; maxima and sort orders treat NaN exactly as it
// does (runtime/InterpReduce.cpp), so these kernels agree with it bit for bit
// on f32 data.
//
//===----------------------------------------------------------------------===//
#include "codegen/Lowering.h"

using namespace moe;
using namespace moe::codegen;
using llvm::ArrayRef;

/// The body of one position of `shape` with dim `axis` removed: fn(the
/// index with 0 at axis). perRow: inner iterations a position costs.
static RowBody positionBody(KernelEmitter &E, const Shape &shape, int64_t axis, DimExpr perRow,
                            std::function<void(std::vector<llvm::Value *>)> fn) {
  RowBody r;
  for (int64_t d = 0; d < (int64_t)shape.size(); ++d)
    if (d != axis)
      r.positions.push_back(shape[d]);
  r.perRow = std::move(perRow);
  int64_t rank = shape.size();
  r.emit = [&E, fn = std::move(fn), axis, rank](llvm::ArrayRef<llvm::Value *> o) {
    std::vector<llvm::Value *> idx;
    for (int64_t d = 0, k = 0; d < rank; ++d)
      idx.push_back(d == axis ? E.c64(0) : o[k++]);
    fn(std::move(idx));
  };
  return r;
}

/// What each kernel here starts from: its operand `x` (of shape `xs`),
/// the axis it works along, its result's buffer and type. Copied into the
/// row bodies, which are emitted after the function that makes them
/// returns.
struct RowsOf {
  const Value *x;
  Shape xs;
  int64_t ax;
  llvm::Value *base;
  TensorType ty;
  RowsOf(KernelEmitter &E, const Operation &op, int64_t axis)
      : x(op.getOperand(0)), xs(x->getType().dims), ax(axis),
        base(E.bufferPtr(E.S.bufferOf.lookup(op.getResult()))), ty(op.getResult()->getType()) {}
};

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

/// maxNaN(acc, x) of InterpReduce.cpp: isnan(acc) || acc > x ? acc : x.
static llvm::Value *maxNaN(KernelEmitter &E, llvm::Value *acc, llvm::Value *x) {
  auto &B = E.B;
  llvm::Value *nan = B.CreateFCmpUNO(acc, acc);
  llvm::Value *keep = B.CreateOr(nan, B.CreateFCmpOGT(acc, x));
  return B.CreateSelect(keep, acc, x);
}

/// Output elements a reduction over an outer axis accumulates at once.
static constexpr int64_t kReduceChunk = 256;

/// A reduction over an axis that is not the last: an item is a chunk of up
/// to kReduceChunk consecutive elements of one output row, accumulated in a
/// stack row (double for sums, f32 for max) with the reduced axis as the
/// outer loop, so the inner loop runs over contiguous elements and
/// vectorises. Each element still sees index 0 first, one rounding at the
/// end: the same bits as the scalar form.
static Extent emitReduceOuterAxis(KernelEmitter &E, const Operation &op, const Value *x,
                                  const Shape &xs, int64_t ax, llvm::Value *base,
                                  const TensorType &ty) {
  auto &B = E.B;
  bool keep = op.attrs().getFlag("keepdim");
  bool isMax = op.is(OpKind::ReduceMax);
  int64_t last = (int64_t)xs.size() - 1;
  Shape outer;
  DimExpr rows(1);
  for (int64_t d = 0; d < last; ++d)
    if (d != ax) {
      outer.push_back(xs[d]);
      rows = rows * xs[d];
    }
  llvm::Value *n = E.dim(xs[last]), *len = E.dim(xs[ax]);
  llvm::Value *chunks =
      B.CreateUDiv(B.CreateAdd(n, E.c64(kReduceChunk - 1)), E.c64(kReduceChunk));
  llvm::Type *accT = isMax ? E.f32() : E.f64();
  llvm::Value *init = isMax ? E.cf(-INFINITY) : llvm::ConstantFP::get(E.f64(), 0.0);
  auto *rowT = llvm::ArrayType::get(accT, kReduceChunk);
  llvm::Value *acc = E.entryAlloca(rowT);
  auto slot = [&](llvm::Value *j) { return B.CreateInBoundsGEP(rowT, acc, {E.c64(0), j}); };
  E.loop(E.begin, E.end, [&](llvm::Value *item) {
    llvm::Value *row = B.CreateUDiv(item, chunks);
    llvm::Value *j0 = B.CreateMul(B.CreateURem(item, chunks), E.c64(kReduceChunk));
    llvm::Value *rest = B.CreateSub(n, j0);
    llvm::Value *w = B.CreateSelect(B.CreateICmpULT(rest, E.c64(kReduceChunk)), rest,
                                    E.c64(kReduceChunk));
    std::vector<llvm::Value *> o = E.delinearize(row, outer), idx;
    for (int64_t d = 0, k = 0; d <= last; ++d)
      idx.push_back(d == ax || d == last ? E.c64(0) : o[k++]);
    E.loop(E.c64(0), w, [&](llvm::Value *j) { B.CreateStore(init, slot(j)); }, "z");
    E.loop(E.c64(0), len, [&](llvm::Value *l) {
      E.loop(E.c64(0), w, [&](llvm::Value *j) {
        idx[ax] = l;
        idx[last] = B.CreateAdd(j0, j);
        llvm::Value *v = E.emitValue(x, idx);
        llvm::Value *a = B.CreateLoad(accT, slot(j));
        llvm::Value *r = isMax ? maxNaN(E, a, v) : B.CreateFAdd(a, B.CreateFPExt(v, E.f64()));
        B.CreateStore(r, slot(j));
      }, "j");
    }, "l");
    E.loop(E.c64(0), w, [&](llvm::Value *j) {
      llvm::Value *r = B.CreateLoad(accT, slot(j));
      if (op.is(OpKind::ReduceMean))
        r = B.CreateFDiv(r, B.CreateSIToFP(len, E.f64()));
      if (!isMax)
        r = B.CreateFPTrunc(r, E.f32());
      std::vector<llvm::Value *> out;
      for (int64_t d = 0; d < last; ++d)
        if (d != ax)
          out.push_back(idx[d]);
        else if (keep)
          out.push_back(E.c64(0));
      out.push_back(B.CreateAdd(j0, j));
      E.storeElem(base, ty.elem, E.linearize(out, ty.dims), r);
    }, "w");
  });
  E.finish();
  return Extent({{rows, 1}, {xs[last], kReduceChunk}},
                grainFor(xs[ax] * DimExpr(kReduceChunk)));
}

/// reduce_* over the last axis: one position's sum (double, index 0
/// first, one rounding) or maximum.
static RowBody reduceRow(KernelEmitter &E, const Operation &op) {
  RowsOf r(E, op, axisOf(op, op.getOperand(0)->getType().rank()));
  bool keep = op.attrs().getFlag("keepdim");
  OpKind k = op.getKind();
  return positionBody(E, r.xs, r.ax, r.xs[r.ax], [&E, r, keep, k](std::vector<llvm::Value *> idx) {
    auto &B = E.B;
    auto [x, xs, ax, base, ty] = r;
    llvm::Value *len = E.dim(xs[ax]);
    llvm::Value *res;
    if (k == OpKind::ReduceMax) {
      res = E.loopAcc(E.c64(0), len, E.cf(-INFINITY), [&](llvm::Value *l, llvm::Value *acc) {
        idx[ax] = l;
        return maxNaN(E, acc, E.emitValue(x, idx));
      }, "l");
    } else {
      llvm::Value *sum = E.loopAcc(E.c64(0), len, llvm::ConstantFP::get(E.f64(), 0.0),
                                   [&](llvm::Value *l, llvm::Value *acc) {
        idx[ax] = l;
        return B.CreateFAdd(acc, B.CreateFPExt(E.emitValue(x, idx), E.f64()));
      }, "l");
      if (k == OpKind::ReduceMean)
        sum = B.CreateFDiv(sum, B.CreateSIToFP(len, E.f64()));
      res = B.CreateFPTrunc(sum, E.f32());
    }
    std::vector<llvm::Value *> out;
    for (int64_t d = 0; d < (int64_t)xs.size(); ++d)
      if (d != ax)
        out.push_back(idx[d]);
      else if (keep)
        out.push_back(E.c64(0));
    E.storeElem(base, ty.elem, E.linearize(out, ty.dims), res);
  });
}

Extent codegen::emitReduceKernel(KernelEmitter &E, const Operation &op) {
  const Value *x = op.getOperand(0);
  const Shape &xs = x->getType().dims;
  int64_t ax = axisOf(op, xs.size());
  if (ax + 1 < (int64_t)xs.size())
    return emitReduceOuterAxis(E, op, x, xs, ax,
                               E.bufferPtr(E.S.bufferOf.lookup(op.getResult())),
                               op.getResult()->getType());
  return emitRowKernel(E, {reduceRow(E, op)});
}

static RowBody softmaxRow(KernelEmitter &E, const Operation &op) {
  RowsOf r(E, op, axisOf(op, op.getOperand(0)->getType().rank()));
  DimExpr perRow = r.xs[r.ax] * DimExpr(3);
  return positionBody(E, r.xs, r.ax, perRow, [&E, r](std::vector<llvm::Value *> idx) {
    auto &B = E.B;
    auto [x, xs, ax, base, ty] = r;
    scalar::Params none;
    llvm::Value *len = E.dim(xs[ax]);
    llvm::Value *m = E.loopAcc(E.c64(0), len, E.cf(-INFINITY),
                               [&](llvm::Value *l, llvm::Value *acc) {
      idx[ax] = l;
      return maxNaN(E, acc, E.emitValue(x, idx));
    }, "l");
    auto expAt = [&](llvm::Value *l) {
      idx[ax] = l;
      return E.unary(OpKind::Exp, none, B.CreateFSub(E.emitValue(x, idx), m));
    };
    // An f32 result keeps each e^(x - m) where its quotient goes, so the
    // exp (libm's, as the interpreter's: it decides the routing) runs once
    // per element, not twice; the quotient reads back the same f32.
    bool keepExp = ty.elem == ElemType::F32;
    llvm::Value *sum = E.loopAcc(E.c64(0), len, llvm::ConstantFP::get(E.f64(), 0.0),
                                 [&](llvm::Value *l, llvm::Value *acc) {
      llvm::Value *e = expAt(l);
      if (keepExp)
        E.storeElem(base, ty.elem, E.linearize(idx, ty.dims), e);
      return B.CreateFAdd(acc, B.CreateFPExt(e, E.f64()));
    }, "s");
    E.loop(E.c64(0), len, [&](llvm::Value *l) {
      llvm::Value *e;
      if (keepExp) {
        idx[ax] = l;
        e = E.loadElem(base, ty.elem, E.linearize(idx, ty.dims));
      } else {
        e = expAt(l);
      }
      llvm::Value *y = B.CreateFPTrunc(B.CreateFDiv(B.CreateFPExt(e, E.f64()), sum), E.f32());
      E.storeElem(base, ty.elem, E.linearize(idx, ty.dims), y);
    }, "w");
  });
}

/// rms_norm and layer_norm over the last axis, in double (InterpReduce.cpp).
static RowBody normRow(KernelEmitter &E, const Operation &op) {
  RowsOf r(E, op, op.getOperand(0)->getType().rank() - 1);
  const Operation *opp = &op;
  DimExpr perRow = r.xs[r.ax] * DimExpr(3);
  return positionBody(E, r.xs, r.ax, perRow, [&E, r, opp](std::vector<llvm::Value *> idx) {
    auto &B = E.B;
    const Operation &op = *opp;
    auto [x, xs, ax, base, ty] = r;
    bool layer = op.is(OpKind::LayerNorm);
    double eps = op.getInfo().attrOrDefault(op.attrs(), "eps")->getNumber();
    auto zero = llvm::ConstantFP::get(E.f64(), 0.0);
    /// A broadcast operand (weight, bias) at idx, as double.
    auto operandAt = [&](unsigned i, ArrayRef<llvm::Value *> idx) {
      const Shape &od = op.getOperand(i)->getType().dims;
      std::vector<llvm::Value *> oi;
      for (size_t d = 0; d < od.size(); ++d)
        oi.push_back(od[d].isConstant(1) ? E.c64(0) : idx[xs.size() - od.size() + d]);
      return B.CreateFPExt(E.emitValue(op.getOperand(i), oi), E.f64());
    };
    llvm::Value *n = E.dim(xs[ax]), *nd = B.CreateSIToFP(n, E.f64());
    auto xAt = [&](llvm::Value *j) {
      idx[ax] = j;
      return B.CreateFPExt(E.emitValue(x, idx), E.f64());
    };
    llvm::Value *mean = zero, *inv;
    if (layer) {
      llvm::Value *sum = E.loopAcc(E.c64(0), n, zero, [&](llvm::Value *j, llvm::Value *acc) {
        return B.CreateFAdd(acc, xAt(j));
      }, "m");
      mean = B.CreateFDiv(sum, nd);
      llvm::Value *var = E.loopAcc(E.c64(0), n, zero, [&](llvm::Value *j, llvm::Value *acc) {
        llvm::Value *d = B.CreateFSub(xAt(j), mean);
        return B.CreateFAdd(acc, B.CreateFMul(d, d));
      }, "v");
      inv = B.CreateFDiv(llvm::ConstantFP::get(E.f64(), 1.0),
                         E.intrinsic(llvm::Intrinsic::sqrt,
                                     {B.CreateFAdd(B.CreateFDiv(var, nd),
                                                   llvm::ConstantFP::get(E.f64(), eps))}));
    } else {
      llvm::Value *ss = E.loopAcc(E.c64(0), n, zero, [&](llvm::Value *j, llvm::Value *acc) {
        // (double)p * p: the product of a double and a float promoted.
        llvm::Value *xj = xAt(j);
        return B.CreateFAdd(acc, B.CreateFMul(xj, xj));
      }, "ss");
      inv = B.CreateFDiv(llvm::ConstantFP::get(E.f64(), 1.0),
                         E.intrinsic(llvm::Intrinsic::sqrt,
                                     {B.CreateFAdd(B.CreateFDiv(ss, nd),
                                                   llvm::ConstantFP::get(E.f64(), eps))}));
    }
    E.loop(E.c64(0), n, [&](llvm::Value *j) {
      llvm::Value *y = B.CreateFMul(layer ? B.CreateFSub(xAt(j), mean) : xAt(j), inv);
      if (op.getNumOperands() > 1)
        y = B.CreateFMul(y, operandAt(1, idx));
      if (op.getNumOperands() > 2)
        y = B.CreateFAdd(y, operandAt(2, idx));
      llvm::Value *y32 = B.CreateFPTrunc(y, E.f32());
      E.storeElem(base, ty.elem, E.linearize(idx, ty.dims), y32);
    }, "w");
  });
}

//===----------------------------------------------------------------------===//
// argsort and topk
//===----------------------------------------------------------------------===//

/// "a comes before b" in the stable order of InterpReduce.cpp: values by
/// lessNaNLast (reversed for desc), ties to the lower index.
static llvm::Value *before(KernelEmitter &E, bool desc, llvm::Value *ai, llvm::Value *av,
                           llvm::Value *bi, llvm::Value *bv) {
  auto &B = E.B;
  auto lessNaNLast = [&](llvm::Value *a, llvm::Value *b) {
    llvm::Value *aNum = B.CreateFCmpORD(a, a);
    llvm::Value *bNan = B.CreateFCmpUNO(b, b);
    return B.CreateAnd(aNum, B.CreateOr(bNan, B.CreateFCmpOLT(a, b)));
  };
  llvm::Value *lt = desc ? lessNaNLast(bv, av) : lessNaNLast(av, bv);
  llvm::Value *gt = desc ? lessNaNLast(av, bv) : lessNaNLast(bv, av);
  llvm::Value *notGt = B.CreateNot(gt);
  return B.CreateOr(lt, B.CreateAnd(notGt, B.CreateICmpSLT(ai, bi)));
}

static RowBody sortRow(KernelEmitter &E, const Operation &op) {
  RowsOf r(E, op, op.getOperand(0)->getType().rank() - 1);
  const Operation *opp = &op;
  DimExpr perRow =
      r.xs[r.ax] * (op.is(OpKind::Topk) ? DimExpr(op.getAttr("k")->getInt()) : r.xs[r.ax]);
  return positionBody(E, r.xs, r.ax, perRow, [&E, r, opp](std::vector<llvm::Value *> idx) {
    auto &B = E.B;
    const Operation &op = *opp;
    auto [x, xs, ax, base, ty] = r;
    bool topk = op.is(OpKind::Topk);
    bool desc = topk || op.attrs().getFlag("desc");
    llvm::Value *n = E.dim(xs[ax]);
    auto valueAt = [&](llvm::Value *i) {
      idx[ax] = i;
      return E.emitValue(x, idx);
    };
    auto storeAt = [&](llvm::Value *slot, llvm::Value *i) {
      idx[ax] = slot;
      llvm::Value *i32 = B.CreateTrunc(i, E.i32());
      E.storeElem(base, ty.elem, E.linearize(idx, ty.dims), i32);
    };
    if (!topk) {
      // The rank of i is the number of elements before it; out[rank] = i.
      E.loop(E.c64(0), n, [&](llvm::Value *i) {
        llvm::Value *vi = valueAt(i);
        llvm::Value *rank = E.loopAcc(E.c64(0), n, E.c64(0), [&](llvm::Value *j, llvm::Value *acc) {
          llvm::Value *b = before(E, desc, j, valueAt(j), i, vi);
          return B.CreateAdd(acc, B.CreateZExt(b, E.i64()));
        }, "j");
        storeAt(rank, i);
      }, "i");
      return;
    }
    // topk: one pass over the row keeping the best k so far, in order, in
    // a stack list: an element that does not come before the list's last
    // (once the list is full) costs one comparison; one that does is
    // inserted, the later entries moving down. (k selection passes over
    // the row, each a chain of compare-and-selects, took 2.4 us a row of
    // 128 at k = 8: 1.8% of a qwen3 q4_0 run at T = 512.) The same strict
    // order as the interpreter's, so the same k in the same order.
    int64_t k = op.getAttr("k")->getInt();
    auto *listT = llvm::ArrayType::get(E.i64(), k), *valsT = llvm::ArrayType::get(E.f32(), k);
    llvm::Value *ids = E.entryAlloca(listT), *vals = E.entryAlloca(valsT);
    auto idAt = [&](llvm::Value *j) { return B.CreateInBoundsGEP(listT, ids, {E.c64(0), j}); };
    auto valAt = [&](llvm::Value *j) { return B.CreateInBoundsGEP(valsT, vals, {E.c64(0), j}); };
    llvm::Value *K = E.c64(k);
    E.loop(E.c64(0), K, [&](llvm::Value *s) { // defined, though read only once full
      B.CreateStore(E.c64(-1), idAt(s));
      B.CreateStore(E.cf(0), valAt(s));
    }, "clear");
    E.loopAcc(E.c64(0), n, E.c64(0), [&](llvm::Value *i, llvm::Value *count) {
      llvm::Value *vi = valueAt(i);
      llvm::Value *full = B.CreateICmpEQ(count, K);
      llvm::Value *lastAt = B.CreateSub(K, E.c64(1));
      llvm::Value *lastId = B.CreateLoad(E.i64(), idAt(lastAt));
      llvm::Value *lastV = B.CreateLoad(E.f32(), valAt(lastAt));
      llvm::Value *beats = before(E, true, i, vi, lastId, lastV);
      llvm::Value *enters = B.CreateSelect(full, beats, B.getTrue());
      llvm::BasicBlock *from = B.GetInsertBlock();
      auto *insert = llvm::BasicBlock::Create(E.C, "topk.insert", E.fn);
      auto *shift = llvm::BasicBlock::Create(E.C, "topk.shift", E.fn);
      auto *move = llvm::BasicBlock::Create(E.C, "topk.move", E.fn);
      auto *place = llvm::BasicBlock::Create(E.C, "topk.place", E.fn);
      auto *next = llvm::BasicBlock::Create(E.C, "topk.next", E.fn);
      B.CreateCondBr(enters, insert, next);
      // j: the free slot; while the entry above it comes after i, move
      // that entry down into it.
      B.SetInsertPoint(insert);
      llvm::Value *start = B.CreateSelect(full, lastAt, count);
      B.CreateBr(shift);
      B.SetInsertPoint(shift);
      llvm::PHINode *j = B.CreatePHI(E.i64(), 2, "slot");
      j->addIncoming(start, insert);
      llvm::Value *above = B.CreateSub(j, E.c64(1));
      B.CreateCondBr(B.CreateICmpSGT(j, E.c64(0)), move, place);
      B.SetInsertPoint(move);
      llvm::Value *aboveId = B.CreateLoad(E.i64(), idAt(above));
      llvm::Value *aboveV = B.CreateLoad(E.f32(), valAt(above));
      auto *moveDown = llvm::BasicBlock::Create(E.C, "topk.down", E.fn);
      B.CreateCondBr(before(E, true, i, vi, aboveId, aboveV), moveDown, place);
      B.SetInsertPoint(moveDown);
      B.CreateStore(aboveId, idAt(j));
      B.CreateStore(aboveV, valAt(j));
      j->addIncoming(above, moveDown);
      E.markBackEdge(B.CreateBr(shift));
      B.SetInsertPoint(place);
      B.CreateStore(i, idAt(j));
      B.CreateStore(vi, valAt(j));
      llvm::Value *grown = B.CreateSelect(full, count, B.CreateAdd(count, E.c64(1)));
      B.CreateBr(next);
      B.SetInsertPoint(next);
      llvm::PHINode *after = B.CreatePHI(E.i64(), 2, "count");
      after->addIncoming(count, from);
      after->addIncoming(grown, place);
      return after;
    }, "i");
    E.loop(E.c64(0), K, [&](llvm::Value *s) { storeAt(s, B.CreateLoad(E.i64(), idAt(s))); }, "out");
  });
}

/// The row body of each op whose kernel is one (over the last axis, for
/// the ops with an `axis`); null for the others. The one list of them.
using RowBodyFn = RowBody (*)(KernelEmitter &, const Operation &);
static RowBodyFn rowFnOf(OpKind k) {
  switch (k) {
  case OpKind::ReduceSum:
  case OpKind::ReduceMean:
  case OpKind::ReduceMax: return reduceRow;
  case OpKind::Softmax: return softmaxRow;
  case OpKind::RmsNorm:
  case OpKind::LayerNorm: return normRow;
  case OpKind::Argsort:
  case OpKind::Topk: return sortRow;
  default: return nullptr;
  }
}

RowBody codegen::rowBodyOf(KernelEmitter &E, const Operation &op) {
  return rowFnOf(op.getKind())(E, op);
}

std::optional<Shape> codegen::rowPositions(const Operation &op) {
  const Shape &xs = op.getOperand(0)->getType().dims;
  if (!rowFnOf(op.getKind()) || xs.empty())
    return std::nullopt;
  // Ops without an `axis` (norms, sorts) work along the last one.
  if (op.getInfo().attrOrDefault(op.attrs(), "axis") &&
      axisOf(op, xs.size()) + 1 != (int64_t)xs.size())
    return std::nullopt;
  return Shape(xs.begin(), xs.end() - 1);
}

Extent codegen::emitRowsKernel(KernelEmitter &E, const Operation &op) {
  return emitRowKernel(E, {rowBodyOf(E, op)});
}
