//===- Emitter.h - Building one kernel's LLVM IR ----------------*- C++ -*-===//
//
// Private to codegen/. A KernelEmitter builds one LLVM function with the
// kernel ABI of Program.h and offers what every kernel needs: dims as i64
// values (static dims are constants, so LLVM can unroll and vectorise;
// symbolic dims are read from `syms`), counted loops, element loads and
// stores of every element type (f16/bf16 converted, block-quantised weights
// decoded), the scalar semantics of ir/Scalar.h, and the expression emitter:
//
//   emitValue(v, idx)  the element of value `v` at multi-index `idx`:
//                      a load if `v` has a buffer, otherwise `v`'s op
//                      computed in place from its operands by the op's
//                      fused lowering (Lowering.h).
//
// Index operands (gather, add_id) are range-checked before the load they
// guard; a bad index reports through moe_rt_error and the kernel returns 1.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/Program.h"
#include "ir/Scalar.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/IR/IRBuilder.h"

#include <functional>

namespace moe::codegen {

/// What the planner decided, shared by every kernel of one function.
struct LowerState {
  const Function &f;
  llvm::Module &module;
  /// The buffer of each value that has one (arguments, materialised values
  /// and reshapes aliasing a buffer).
  llvm::DenseMap<const Value *, unsigned> bufferOf;
  std::vector<BufferDesc> &buffers;
  /// Index of each symbol in the `syms` array.
  llvm::StringMap<unsigned> symbolIndex;
  std::vector<ErrorSite> &errorSites;
  /// The routing scratch buffer of each ids value that a matmul_id routes by
  /// (shared by every matmul_id with the same ids).
  llvm::DenseMap<const Value *, unsigned> routeOf;
  /// The scratch buffer of each activation value converted for the packed
  /// kernels, per form (bf16 tiles, or q8_0 blocks with their sums scaled
  /// for the weights' offset; shared by every matmul reading the value in
  /// that form, never across them).
  llvm::DenseMap<std::pair<const Value *, int64_t /*form*/>, unsigned> quantOf;
  /// The Packed buffer of each argument buffer a kernel streams repacked.
  llvm::DenseMap<unsigned, unsigned> packedOf;
  /// The scratch of each (activation buffer, routing) pair rounded to bf16
  /// in routing-list order for the AMX kernel.
  llvm::DenseMap<std::pair<unsigned, unsigned>, unsigned> gatheredOf;
  /// The Packed buffer of f32 column panels of each f32 weight argument
  /// (KernelsMatmulF32.cpp).
  llvm::DenseMap<unsigned, unsigned> panelOf;
  /// The CPU the kernels are specialised to.
  Target target;

  unsigned errorSite(ErrorSite::Kind k, const Operation &op) {
    for (unsigned i = 0; i < errorSites.size(); ++i)
      if (errorSites[i].op == &op && errorSites[i].kind == k)
        return i;
    errorSites.push_back({k, &op});
    return errorSites.size() - 1;
  }
};

class KernelEmitter {
public:
  KernelEmitter(LowerState &s, llvm::StringRef name);

  LowerState &S;
  llvm::LLVMContext &C;
  llvm::IRBuilder<> B;
  llvm::Function *fn;
  llvm::Value *bufs, *syms, *begin, *end, *rt;
  /// Whether LLVM may unroll this kernel's loops. Only the matmul
  /// microkernels gain from it (their K loops); for every other kernel
  /// (routing, sorts, reductions, element-wise stores, quantising, packing)
  /// unrolling doubled the compile time and the loop vectorizer's own
  /// interleaving keeps the loops fast, so StepBuilder::addKernel turns it
  /// off there: each loop then carries llvm.loop.unroll.disable.
  bool unrollLoops = true;

  // Types and constants.
  llvm::Type *i8() { return B.getInt8Ty(); }
  llvm::Type *i32() { return B.getInt32Ty(); }
  llvm::Type *i64() { return B.getInt64Ty(); }
  llvm::Type *f32() { return B.getFloatTy(); }
  llvm::Type *f64() { return B.getDoubleTy(); }
  llvm::Type *ptr() { return B.getPtrTy(); }
  llvm::Value *c64(int64_t v) { return B.getInt64(v); }
  llvm::Value *cf(float v) { return llvm::ConstantFP::get(f32(), v); }

  /// A dim as an i64 value.
  llvm::Value *dim(const DimExpr &d);
  std::vector<llvm::Value *> dims(const Shape &s);
  /// Row-major offset of `idx` in `shape`.
  llvm::Value *linearize(llvm::ArrayRef<llvm::Value *> idx, const Shape &shape);
  /// The multi-index of row-major offset `flat` in `shape`.
  std::vector<llvm::Value *> delinearize(llvm::Value *flat, const Shape &shape);
  /// Product of the dims (1 for none).
  llvm::Value *product(llvm::ArrayRef<DimExpr> d);

  /// for (iv = lo; iv < hi; ++iv) body(iv); the builder ends after the loop.
  void loop(llvm::Value *lo, llvm::Value *hi, const std::function<void(llvm::Value *)> &body,
            llvm::StringRef name = "i", bool unroll = true);
  /// A loop with a loop-carried value: acc = body(iv, acc); returns the final.
  /// `unroll` false (or unrollLoops false): the loop carries
  /// llvm.loop.unroll.disable (also because LLVM 19's AMX lowering
  /// miscompiles a runtime-unrolled loop whose tile values cross its
  /// remainder).
  llvm::Value *loopAcc(llvm::Value *lo, llvm::Value *hi, llvm::Value *init,
                       const std::function<llvm::Value *(llvm::Value *, llvm::Value *)> &body,
                       llvm::StringRef name = "i", bool unroll = true);

  /// The back edge of a loop built by hand: carries
  /// llvm.loop.unroll.disable as loopAcc's do (unless `unroll` and
  /// unrollLoops).
  void markBackEdge(llvm::BranchInst *back, bool unroll = true);

  /// An alloca in the kernel's entry block (promoted to registers by LLVM).
  llvm::Value *entryAlloca(llvm::Type *t);

  /// Base pointer of buffer `id`.
  llvm::Value *bufferPtr(unsigned id);
  /// Element `off` (i64) of a buffer of type `elem`: f32 for the float and
  /// block types, i32 for i32.
  llvm::Value *loadElem(llvm::Value *base, ElemType elem, llvm::Value *off);
  /// Stores `v` (f32 or i32) as element `off` of type `elem` (float or i32).
  void storeElem(llvm::Value *base, ElemType elem, llvm::Value *off, llvm::Value *v);
  /// An mxfp4 E8M0 exponent (i8, or a vector of them) as its half scale
  /// 2^(e - 128) in f32 (runtime/Formats.h's e8m0ToF32Half).
  llvm::Value *e8m0Half(llvm::Value *e8);
  /// f32 (or a vector of them) rounded to f16/bf16 and back, as a stored
  /// value would be.
  llvm::Value *roundTo(ElemType elem, llvm::Value *x);

  /// Element `idx` of `v` (see the file comment).
  llvm::Value *emitValue(const Value *v, llvm::ArrayRef<llvm::Value *> idx);
  /// Element `idx` of `v`'s op computed from its operands by the op's
  /// lowering (Lowering.h), even if `v` has a buffer (the kernel that fills
  /// the buffer uses this).
  llvm::Value *emitCompute(const Value *v, llvm::ArrayRef<llvm::Value *> idx);
  /// Element `idx` of `operand` broadcast (numpy rules) to `result`'s shape.
  llvm::Value *broadcastOperand(const Value *operand, const TensorType &result,
                                llvm::ArrayRef<llvm::Value *> idx);

  /// Scalar semantics (ir/Scalar.h) on f32 values (FusedElementwise.cpp).
  llvm::Value *unary(OpKind k, const scalar::Params &p, llvm::Value *x);
  llvm::Value *binary(OpKind k, llvm::Value *a, llvm::Value *b);
  llvm::Value *glu(OpKind k, const scalar::Params &p, llvm::Value *g, llvm::Value *u);
  llvm::Value *callF32(llvm::StringRef libm, llvm::Value *x);
  llvm::Value *intrinsic(llvm::Intrinsic::ID id, llvm::ArrayRef<llvm::Value *> args);

  /// Branches to the error exit unless 0 <= id < limit (i64 values):
  /// reports (site, pos, id, limit) through moe_rt_error, returns 1.
  void checkIndex(unsigned site, llvm::Value *pos, llvm::Value *id, llvm::Value *limit);
  /// Branches to the error exit unless `ok` (i1), reporting (site, pos, id,
  /// limit).
  void failUnless(unsigned site, llvm::Value *ok, llvm::Value *pos, llvm::Value *id,
                  llvm::Value *limit);

  /// Ends the kernel: `ret 0`.
  void finish();

private:
  llvm::BasicBlock *errorBB = nullptr;
  llvm::PHINode *errSite = nullptr, *errPos = nullptr, *errId = nullptr, *errLimit = nullptr;
  llvm::DenseMap<unsigned, llvm::Value *> bufferPtrs;
};

/// The `axis` attribute of `op` (or the table's default) as an axis of a
/// rank-`rank` value, negative axes counted from the end.
int64_t axisOf(const Operation &op, int64_t rank);


/// Symbol name of the run-time error helper kernels call.
inline constexpr const char *kRtErrorSymbol = "moe_rt_error";

} // namespace moe::codegen
