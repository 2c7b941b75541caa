//===- Lowering.h - One lowering per op -------------------------*- C++ -*-===//
//
// Private to codegen/. Every op of ir/Ops.def has one OpLowering, named
// `lower<Enum>` (lowerExp, lowerGather, lowerMatmulId, ...), declared below
// by family next to the file that defines its parts; Lowering.cpp collects
// them into a table indexed by OpKind, with a static_assert that there is
// one per op (as the interpreter's kInterp). An op is lowered one of two
// ways:
//
//   fused   `expr(E, v, idx)` computes element `idx` of `v` inside the loop
//           of whichever kernel reads it (elementwise ops, GLUs, casts,
//           constants, views, gather, add_id, concat). When the planner
//           gives such a value a buffer (returned, used twice, read from
//           memory by a matmul), the store kernel fills it with `expr`.
//   kernel  `kernel(K, op, buf)` adds the kernel steps that fill the op's
//           buffer `buf` (matmuls, reductions, norms, sorts, all_reduce).
//
// `memoryOperands` has bit i set when the op reads operand i from memory
// (matmul operands) or re-reads it so often that it should be (softmax,
// sorts, norms); the planner (Planner.cpp) gives those operands buffers.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/Emitter.h"

namespace moe::codegen {

/// The parallel extent of a kernel's step: items are the product of
/// ceil(dim / divisor) over the factors; `grain` items are worth one task.
struct Extent {
  std::vector<std::pair<DimExpr, int64_t>> factors;
  int64_t grain = 1;
  Extent(DimExpr items, int64_t grain) : factors{{std::move(items), 1}}, grain(grain) {}
  Extent(std::vector<std::pair<DimExpr, int64_t>> f, int64_t grain)
      : factors(std::move(f)), grain(grain) {}
};

/// What a kernel lowering adds to the program: buffers and steps. Kept by
/// the planner; the reads of a step are the buffers under its op's operands
/// (through fused values) plus any it names.
class StepBuilder {
public:
  StepBuilder(LowerState &s, std::vector<Step> &steps, std::string prefix)
      : S(s), steps(steps), prefix(std::move(prefix)) {}
  LowerState &S;

  unsigned addBuffer(BufferDesc d);
  /// Adds a kernel step for `op`; `body` emits the kernel (the emitter has
  /// created the function) and returns the step's extent.
  void addKernel(const Operation &op, llvm::StringRef suffix, std::vector<unsigned> writes,
                 llvm::function_ref<Extent(KernelEmitter &)> body,
                 std::vector<unsigned> extraReads = {});
  /// Adds one kernel step filling the buffers of `ops` (a row group, see
  /// Planner.cpp), labelled `softmax %probs + topk %ids + ...`.
  void addRowGroup(llvm::ArrayRef<const Operation *> ops, std::vector<unsigned> writes,
                   llvm::function_ref<Extent(KernelEmitter &)> body);
  /// Sums buffer `buf` (f32) over the ranks, in place.
  void addAllReduce(const Operation &op, unsigned buf);
  /// Marks the last step added as the prepare step of Packed buffer `buf`.
  void markPrepare(unsigned buf);
  /// Buffers read by the expression of `v` (through fused values).
  void collectReads(const Value *v, std::vector<unsigned> &out) const;

private:
  std::vector<Step> &steps;
  std::string prefix;
  /// Emits kernel `<prefix>_k<step>_<what>` with `body` (LLVM may unroll
  /// its loops if `unroll`): a step with its symbol, extent and grain.
  Step kernelStep(const std::string &what, bool unroll,
                  llvm::function_ref<Extent(KernelEmitter &)> body);
};

using ExprFn = llvm::Value *(*)(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
using LowerFn = void (*)(StepBuilder &, const Operation &, unsigned buf);

struct OpLowering {
  ExprFn expr = nullptr;   ///< fused ops
  LowerFn kernel = nullptr; ///< ops with kernels of their own
  unsigned memoryOperands = 0;
};

/// The kernel lowering of an op computed by one kernel that `Emit` emits.
template <Extent (*Emit)(KernelEmitter &, const Operation &)>
void singleKernel(StepBuilder &K, const Operation &op, unsigned buf) {
  K.addKernel(op, "", {buf}, [&](KernelEmitter &E) { return Emit(E, op); });
}

/// The lowering of op kind `k` (the table of Lowering.cpp).
const OpLowering &loweringOf(OpKind k);

/// Fills the buffer of `v` with `source(idx)` at every index: items are the
/// rows of `v` (all dims but the last), the last dim the inner loop
/// (KernelsStore.cpp).
Extent emitStoreKernel(KernelEmitter &E, const Value *v,
                       const std::function<llvm::Value *(llvm::ArrayRef<llvm::Value *>)> &source);
/// Items worth one task when each item costs about `perItem` inner
/// iterations (about 16K iterations a task).
int64_t grainFor(const DimExpr &perItem);

/// The work of one *position* of a kernel whose items are positions (a
/// row of a softmax, a sort, a norm, a reduction over the last axis, a
/// store kernel's row): `emit(pos)` emits it for the position index `pos`
/// (an index of `positions`). Row bodies over the same positions can share
/// one item loop (the planner's row groups); each position is still
/// computed by one thread, start to end.
struct RowBody {
  Shape positions;
  DimExpr perRow; ///< inner iterations a position costs (for the grain)
  std::function<void(llvm::ArrayRef<llvm::Value *> pos)> emit;
};
/// One loop over the positions of `bodies` (all alike), each position
/// running the bodies in order (KernelsStore.cpp).
Extent emitRowKernel(KernelEmitter &E, llvm::ArrayRef<RowBody> bodies);
/// The store kernel's row body: the row `pos` of `v` (rank >= 1) filled
/// with `source(idx)`, the last dim the inner loop.
RowBody storeRowBody(KernelEmitter &E, const Value *v,
                     std::function<llvm::Value *(llvm::ArrayRef<llvm::Value *>)> source);
/// The positions of `op`'s own kernel where they are the leading dims of
/// its operand and each is one row body (softmax, sorts and norms over the
/// last axis, reduce_* over the last axis); none for other kernels.
std::optional<Shape> rowPositions(const Operation &op);
/// That row body (KernelsReduce.cpp); `op` has rowPositions.
RowBody rowBodyOf(KernelEmitter &E, const Operation &op);

//===----------------------------------------------------------------------===//
// The parts each family's file defines
//===----------------------------------------------------------------------===//

// FusedElementwise.cpp: ir/Scalar.h's semantics on f32 (and i32) values.
llvm::Value *exprBinary(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
llvm::Value *exprUnary(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
llvm::Value *exprGlu(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
llvm::Value *exprCast(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
llvm::Value *exprConstant(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);

// FusedIndexing.cpp: views as index arithmetic, concat, gather, add_id.
llvm::Value *exprReshape(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
llvm::Value *exprPermute(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
llvm::Value *exprSlice(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
llvm::Value *exprBroadcast(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
llvm::Value *exprView(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
llvm::Value *exprConcat(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
llvm::Value *exprGather(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);
llvm::Value *exprAddId(KernelEmitter &, const Value *, llvm::ArrayRef<llvm::Value *>);

// KernelsReduce.cpp: reductions, softmax, norms and sorts, one kernel each
// (of row bodies, but for reduce_* over an outer axis).
Extent emitReduceKernel(KernelEmitter &, const Operation &);
Extent emitRowsKernel(KernelEmitter &, const Operation &);

// KernelsMatmul.cpp (and MatmulParts.h): matmul, and matmul_id with the
// routing kernel of its ids; by activation precision (`act`).
void kernelMatmul(StepBuilder &, const Operation &, unsigned);
void kernelMatmulId(StepBuilder &, const Operation &, unsigned);

// KernelsStore.cpp: all_reduce (a store of the operand, then the reduction).
void kernelAllReduce(StepBuilder &, const Operation &, unsigned);

//===----------------------------------------------------------------------===//
// One lowering per op, by family
//===----------------------------------------------------------------------===//

inline constexpr OpLowering kFused(ExprFn f) { return {f, nullptr, 0}; }
inline constexpr OpLowering kKernel(LowerFn f, unsigned memoryOperands = 0) {
  return {nullptr, f, memoryOperands};
}

// linear
inline constexpr OpLowering lowerMatmul = kKernel(kernelMatmul, 0b11);
inline constexpr OpLowering lowerMatmulId = kKernel(kernelMatmulId, 0b11);
inline constexpr OpLowering lowerAddId = kFused(exprAddId);

// elementwise binary
inline constexpr OpLowering lowerAdd = kFused(exprBinary), lowerSub = kFused(exprBinary),
                            lowerMul = kFused(exprBinary), lowerDiv = kFused(exprBinary),
                            lowerMax = kFused(exprBinary), lowerMin = kFused(exprBinary);

// elementwise unary
inline constexpr OpLowering lowerNeg = kFused(exprUnary), lowerExp = kFused(exprUnary),
                            lowerLog = kFused(exprUnary), lowerSqr = kFused(exprUnary),
                            lowerSqrt = kFused(exprUnary), lowerRsqrt = kFused(exprUnary),
                            lowerAbs = kFused(exprUnary), lowerTanh = kFused(exprUnary),
                            lowerSigmoid = kFused(exprUnary), lowerSoftplus = kFused(exprUnary),
                            lowerRelu = kFused(exprUnary), lowerSilu = kFused(exprUnary),
                            lowerGelu = kFused(exprUnary), lowerGeluErf = kFused(exprUnary),
                            lowerPow = kFused(exprUnary), lowerScale = kFused(exprUnary),
                            lowerClamp = kFused(exprUnary);
inline constexpr OpLowering lowerCast = kFused(exprCast);

// GLU
inline constexpr OpLowering lowerSwiglu = kFused(exprGlu), lowerGeglu = kFused(exprGlu),
                            lowerSwigluOai = kFused(exprGlu);

// reductions, softmax, sorts, norms
inline constexpr OpLowering lowerReduceSum = kKernel(singleKernel<emitReduceKernel>),
                            lowerReduceMean = kKernel(singleKernel<emitReduceKernel>),
                            lowerReduceMax = kKernel(singleKernel<emitReduceKernel>);
inline constexpr OpLowering lowerSoftmax = kKernel(singleKernel<emitRowsKernel>, 0b1);
inline constexpr OpLowering lowerArgsort = kKernel(singleKernel<emitRowsKernel>, 0b1),
                            lowerTopk = kKernel(singleKernel<emitRowsKernel>, 0b1);
inline constexpr OpLowering lowerRmsNorm = kKernel(singleKernel<emitRowsKernel>, 0b1),
                            lowerLayerNorm = kKernel(singleKernel<emitRowsKernel>, 0b1);

// index and shape
inline constexpr OpLowering lowerGather = kFused(exprGather);
inline constexpr OpLowering lowerReshape = kFused(exprReshape), lowerPermute = kFused(exprPermute),
                            lowerSlice = kFused(exprSlice), lowerConcat = kFused(exprConcat),
                            lowerBroadcast = kFused(exprBroadcast), lowerView = kFused(exprView);

// collective and other
inline constexpr OpLowering lowerAllReduce = kKernel(kernelAllReduce);
inline constexpr OpLowering lowerConstant = kFused(exprConstant);
/// `return` computes nothing: its operands are the function's results.
inline constexpr OpLowering lowerReturn = {};

} // namespace moe::codegen
