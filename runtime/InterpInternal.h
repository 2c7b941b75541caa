//===- InterpInternal.h - Shared parts of the interpreter's ops -*- C++ -*-===//
//
// Private to runtime/Interp*.cpp. Each op of ir/Ops.def has a function
// `interp<Enum>(Ctx &)` that fills the pre-allocated result; Interpreter.cpp
// dispatches through a table built from Ops.def. The declarations below are
// written out by hand on purpose: an op added to Ops.def without one is a
// compile error in that table, not a silent gap.
//
// By the time an op function runs, the interpreter has re-run the op's
// verifier (checkOp) on the concrete operand types with every symbolic
// attribute evaluated, and the result shape equals the IR type evaluated
// under the bindings. So operand counts, ranks, matching dims, attribute
// kinds and static bounds (slice, view, topk) hold for the concrete shapes;
// the functions check only what depends on data (ids) or could overflow.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Interpreter.h"
#include "ir/Error.h"

#include "fmt/format.h"
#include "llvm/ADT/SmallVector.h"

#include <array>

namespace moe::interp {

struct Ctx {
  const Operation &op;
  llvm::SmallVector<const Tensor *, 4> in;
  /// The op's attributes with every symbolic dim evaluated (an Int).
  AttrDict attrs;
  /// The result, allocated (zeros) with the evaluated result type.
  Tensor &out;
  const SymbolBindings &syms;
  const InterpOptions &opts;

  /// `matmul_id %up`: the op and its result, for messages.
  std::string where() const;
  template <typename... Args>
  llvm::Error error(fmt::format_string<Args...> f, Args &&...args) const {
    return err(where() + ": " + fmt::format(f, std::forward<Args>(args)...));
  }

  /// The attribute as written (evaluated), else the op table's default.
  const Attribute *attr(llvm::StringRef name) const {
    return op.getInfo().attrOrDefault(attrs, name);
  }
  int64_t intAttr(llvm::StringRef name, int64_t dflt = 0) const;
  double numAttr(llvm::StringRef name, double dflt) const;
  bool flag(llvm::StringRef name) const { return attrs.getFlag(name); }
  std::vector<int64_t> intsAttr(llvm::StringRef name) const;
  /// Attribute `name` as an axis of a rank-`rank` tensor, negative counted
  /// from the end.
  llvm::Expected<int64_t> axisAttr(int64_t rank, llvm::StringRef name = "axis") const;
};

using InterpFn = llvm::Error (*)(Ctx &);

// linear / index (InterpLinear.cpp)
llvm::Error interpMatmul(Ctx &);
llvm::Error interpMatmulId(Ctx &);
llvm::Error interpAddId(Ctx &);
llvm::Error interpGather(Ctx &);

// elementwise, GLU, cast, constant, collectives (InterpElementwise.cpp)
llvm::Error interpBinary(Ctx &);
llvm::Error interpUnary(Ctx &);
llvm::Error interpGlu(Ctx &);
inline constexpr InterpFn interpAdd = interpBinary, interpSub = interpBinary,
                          interpMul = interpBinary, interpDiv = interpBinary,
                          interpMax = interpBinary, interpMin = interpBinary;
inline constexpr InterpFn interpNeg = interpUnary, interpExp = interpUnary,
                          interpLog = interpUnary, interpSqr = interpUnary,
                          interpSqrt = interpUnary, interpRsqrt = interpUnary,
                          interpAbs = interpUnary, interpTanh = interpUnary,
                          interpSigmoid = interpUnary, interpSoftplus = interpUnary,
                          interpRelu = interpUnary, interpSilu = interpUnary,
                          interpGelu = interpUnary, interpGeluErf = interpUnary,
                          interpPow = interpUnary, interpScale = interpUnary,
                          interpClamp = interpUnary;
inline constexpr InterpFn interpSwiglu = interpGlu, interpGeglu = interpGlu,
                          interpSwigluOai = interpGlu;
llvm::Error interpCast(Ctx &);
llvm::Error interpConstant(Ctx &);
llvm::Error interpAllReduce(Ctx &);

// reductions and norms (InterpReduce.cpp)
llvm::Error interpReduceSum(Ctx &);
llvm::Error interpReduceMean(Ctx &);
llvm::Error interpReduceMax(Ctx &);
llvm::Error interpSoftmax(Ctx &);
llvm::Error interpArgsort(Ctx &);
llvm::Error interpTopk(Ctx &);
llvm::Error interpRmsNorm(Ctx &);
llvm::Error interpLayerNorm(Ctx &);

// shape (InterpShape.cpp)
llvm::Error interpReshape(Ctx &);
llvm::Error interpPermute(Ctx &);
llvm::Error interpSlice(Ctx &);
llvm::Error interpConcat(Ctx &);
llvm::Error interpBroadcast(Ctx &);
llvm::Error interpView(Ctx &);

// handled by the interpreter loop itself (Interpreter.cpp)
llvm::Error interpReturn(Ctx &);

//===----------------------------------------------------------------------===//
// Index helpers
//===----------------------------------------------------------------------===//

int64_t product(llvm::ArrayRef<int64_t> dims);

/// A tensor of shape `shape` seen around `axis`: outer x len x inner.
struct AxisSplit {
  int64_t outer, len, inner;
};
AxisSplit splitAt(llvm::ArrayRef<int64_t> shape, int64_t axis);

/// Strides to read a tensor of shape `from` while walking shape `to` under
/// numpy broadcasting (dims aligned from the right; 0 where `from` has 1).
/// Precondition: `from` broadcasts to `to`.
std::vector<int64_t> broadcastStrides(llvm::ArrayRef<int64_t> from,
                                      llvm::ArrayRef<int64_t> to);

/// The values of float tensor `t` broadcast to `shape`, as f32, row-major.
std::vector<float> broadcastValues(const Tensor &t, llvm::ArrayRef<int64_t> shape);

/// Visits every index of `shape` in row-major order, calling
/// fn(flatIndex, offsets) where offsets[k] = base[k] + sum_d idx[d] *
/// strides[k][d] for each of the N stride sets.
template <size_t N, typename Fn>
void walk(llvm::ArrayRef<int64_t> shape, const std::array<std::vector<int64_t>, N> &strides,
          std::array<int64_t, N> base, Fn fn) {
  int64_t n = product(shape);
  size_t rank = shape.size();
  std::vector<int64_t> idx(rank, 0);
  std::array<int64_t, N> off = base;
  for (int64_t flat = 0; flat < n; ++flat) {
    fn(flat, off);
    // Never steps past the last index, so offsets stay inside the extents.
    for (size_t d = rank; d-- > 0;) {
      if (idx[d] + 1 < shape[d]) {
        ++idx[d];
        for (size_t k = 0; k < N; ++k)
          off[k] += strides[k][d];
        break;
      }
      for (size_t k = 0; k < N; ++k)
        off[k] -= strides[k][d] * idx[d];
      idx[d] = 0;
    }
  }
}

/// dst[di] = src[si] for non-quantised tensors of the same element kind.
inline void copyElem(const Tensor &src, int64_t si, Tensor &dst, int64_t di) {
  if (dst.elem == ElemType::I32)
    dst.i[di] = src.i[si];
  else
    dst.f[di] = src.f[si];
}


} // namespace moe::interp
