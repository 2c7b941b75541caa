//===- TensorCut.h - Cutting and joining tensors along an axis --*- C++ -*-===//
//
// What the Binder (runtime/Binder.h) does to a param's data to derive a param
// (a slice, a concatenation: ir/ParamDerive.h) or to give a rank its shard:
// rows of one axis cut out and joined, on Tensors, or on tensors in their
// stored layout (raw bytes, as mapped from a GGUF file or as the JIT takes
// them). Block-quantised tensors are only cut at block boundaries.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Tensor.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace moe {

/// Rows [begin, end) of `axis`, for every element type (a block-quantised
/// tensor only along a non-innermost axis, or along the innermost axis at
/// multiples of 32).
llvm::Expected<Tensor> sliceAxis(const Tensor &t, int64_t axis, int64_t begin, int64_t end);
/// Tensors of one element type joined along `axis` (same rules).
llvm::Expected<Tensor> concatAxis(llvm::ArrayRef<const Tensor *> ts, int64_t axis);

/// Rows `ranges` of `axis` of the stored tensor at `data` (type `elem`,
/// shape `shape`), joined along `axis`, in stored layout, written to `dst`
/// unless it is null; returns the bytes that takes. Cuts must respect
/// blocks (the shard rules ensure it; checked again here).
llvm::Expected<int64_t> cutStored(ElemType elem, llvm::ArrayRef<int64_t> shape,
                                  const uint8_t *data, int64_t axis,
                                  llvm::ArrayRef<std::pair<int64_t, int64_t>> ranges,
                                  uint8_t *dst);

/// One stored tensor to join: its data and shape.
struct StoredPart {
  const uint8_t *data;
  llvm::ArrayRef<int64_t> shape;
};
/// The stored tensors `parts` (type `elem`, equal but for `axis`) joined
/// along `axis`, written to `dst` unless it is null; returns the bytes that
/// takes. Each part's rows must be whole blocks.
llvm::Expected<int64_t> joinStored(ElemType elem, llvm::ArrayRef<StoredPart> parts,
                                   int64_t axis, uint8_t *dst);

} // namespace moe
