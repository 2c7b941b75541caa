//===- Layout.h - Strided layouts of view-like ops --------------*- C++ -*-===//
//
// Every view-like op (reshape, permute, slice, broadcast, view) reads its
// input's row-major elements through a strided layout, result[i] =
// in[offset + sum_k i_k * strides_k], with dims and strides symbolic. These
// helpers compute such layouts, compose them and compare them; view-reuse
// folds views with them. Row-major strides themselves are ir/Type.h's
// rowMajorStrides (dyn-dims re-derives `view` strides against them).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"

#include "llvm/ADT/ArrayRef.h"

namespace moe {

/// result[i] = input[offset + sum_k i[k] * strides[k]] (row-major input).
struct Layout {
  Shape shape, strides;
  DimExpr offset;
};

/// Row-major strides for its own shape (offset aside); the stride of a
/// size-1 dim does not matter.
bool isDense(const Layout &l);
/// Every element of `in`, in order: a reshape.
bool isFullReshape(const Layout &l, const TensorType &in);
/// The layout of `in` itself: same shape, row-major, offset 0.
bool isIdentity(const Layout &l, const TensorType &in);

/// The layout a view-like op reads its operand 0 through; nullopt for any
/// other op.
std::optional<Layout> layoutOf(const Operation &op);

/// Strides viewing a layout `in` (dims and strides over x) as `shape`, the
/// same number of elements in row-major order: runs of `in`'s dims with the
/// product of a run of `shape`'s dims must be contiguous among themselves.
std::optional<Shape> regroup(const Layout &in, const Shape &shape);

/// The layout of `outer` (a view-like op of a value with layout `in`) over
/// `in`'s own input, if it is strided.
std::optional<Layout> compose(const Layout &in, const Operation &outer);

} // namespace moe
