//===- Type.h - Tensor types ------------------------------------*- C++ -*-===//
//
// `tensor<D0 x D1 x ... x ELEM>`: dims outermost first (row-major, as numpy
// and MLIR; ggml's ne[] is the reverse), each an integer or a symbolic
// polynomial. Rank 0 is `tensor<f32>`.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/DimExpr.h"
#include "ir/ElemType.h"

namespace moe {

struct TensorType {
  Shape dims;
  ElemType elem = ElemType::F32;

  TensorType() = default;
  TensorType(Shape dims, ElemType elem) : dims(std::move(dims)), elem(elem) {}

  int64_t rank() const { return (int64_t)dims.size(); }
  bool isStatic() const;
  DimExpr numElements() const { return moe::numElements(dims); }
  /// Shape evaluated under bindings; nullopt if a symbol is unbound.
  std::optional<std::vector<int64_t>> evaluate(const SymbolBindings &b) const;

  bool operator==(const TensorType &o) const {
    return elem == o.elem && dims == o.dims;
  }
  bool operator!=(const TensorType &o) const { return !(*this == o); }

  /// `tensor<T x 64 x f32>`
  std::string str() const;
  /// `T x 64` (dims only, for messages)
  std::string shapeStr() const;
};

/// Row-major (C order) strides of a shape, in elements: the innermost is 1.
Shape rowMajorStrides(const Shape &shape);
std::vector<int64_t> rowMajorStrides(llvm::ArrayRef<int64_t> shape);

} // namespace moe
