//===- Tensor.h - Concrete tensors of the reference interpreter -*- C++ -*-===//
//
// A Tensor is a concrete value: an element type, a concrete shape (outermost
// first, as the IR) and its elements in row-major order, stored by kind:
//
//   f32, f16, bf16  `f`, as f32. An f16/bf16 tensor only ever holds values
//                   representable in its type (fromF32 and the interpreter
//                   round through runtime/Formats.h after every op, as ggml
//                   stores them).
//   i32             `i`.
//   q8_0 q4_0 mxfp4 `raw`: GGUF blocks, byte-exact, rows of the innermost
//                   axis one after another (a weight mapped from a GGUF file
//                   is its `raw` unchanged). The innermost dim is a multiple
//                   of 32.
//
// The struct is plain data so tests and tools can build one directly;
// validate() says whether such a hand-built tensor is consistent.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Type.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct NpyArray;

struct Tensor {
  ElemType elem = ElemType::F32;
  std::vector<int64_t> shape;
  std::vector<float> f;      ///< f32 / f16 / bf16 elements
  std::vector<int32_t> i;    ///< i32 elements
  std::vector<uint8_t> raw;  ///< q8_0 / q4_0 / mxfp4 blocks

  int64_t rank() const { return (int64_t)shape.size(); }
  /// Product of the dims (1 for rank 0).
  int64_t numElements() const;
  /// The innermost dim (1 for rank 0): the length of a "row".
  int64_t rowLength() const { return shape.empty() ? 1 : shape.back(); }
  /// numElements() / rowLength() (0 when the row length is 0).
  int64_t numRows() const;
  /// Row-major element strides (the innermost is 1).
  std::vector<int64_t> strides() const;
  /// `[7, 64]`
  std::string shapeStr() const;

  /// A tensor of zeros (for the quantised types: all-zero blocks, which
  /// decode to 0). Precondition: checkShape(elem, shape) succeeds.
  static Tensor zeros(ElemType elem, llvm::ArrayRef<int64_t> shape);
  /// A tensor of type `elem` holding `values` (row-major, as many as the shape
  /// has elements): rounded for f16/bf16, quantised row by row for the block
  /// types (bit-identical to ggml's reference quantisers), truncated toward
  /// zero for i32 (Formats.h's quantizeRow(I32)).
  static llvm::Expected<Tensor> fromF32(ElemType elem, llvm::ArrayRef<int64_t> shape,
                                        llvm::ArrayRef<float> values);
  static llvm::Expected<Tensor> fromI32(llvm::ArrayRef<int64_t> shape,
                                        llvm::ArrayRef<int32_t> values);

  /// Every element as f32: dequantised for the block types, converted for i32.
  std::vector<float> toF32() const;
  /// Rows [firstRow, firstRow + count) (rows of the innermost axis) as f32
  /// into dst (count * rowLength() floats). Any element type.
  void dequantizeRows(int64_t firstRow, int64_t count, float *dst) const;
  /// Elements [first, first + count) of the row-major order as f32 into dst;
  /// for the block types, the blocks covering the range are decoded.
  void readF32(int64_t first, int64_t count, float *dst) const;

  /// Checks the shape (checkShape) and that the storage of this element type
  /// has exactly the size the shape needs (the others empty), and that f16 /
  /// bf16 values are representable.
  llvm::Error validate() const;
  /// Rounds `f` to the element type (no-op unless f16/bf16).
  void roundToElemType();

  /// The elements in their stored layout (what kernels read and GGUF
  /// holds): f32 and i32 as such, f16/bf16 as 16-bit patterns, block types
  /// as their blocks.
  std::vector<uint8_t> storedBytes() const;
  /// The inverse: a tensor from `shape`'s elements in stored layout at `data`.
  static Tensor fromStored(ElemType elem, std::vector<int64_t> shape, const void *data);

  /// FNV-1a (64-bit) over the bit patterns of toF32(), in row-major order.
  uint64_t checksum() const;
  /// `shape=[7, 64] f32 min=-0.98 max=0.99 mean=0.0012 checksum=0x...`
  /// (min/max/mean over toF32(), `nan` for an empty tensor).
  std::string summary() const;

  /// Writes a .npy file: f32 as <f4, f16 as <f2 (exact), i32 as <i4; bf16
  /// and the block types as <f4 of their (dequantised) values.
  llvm::Error save(llvm::StringRef path) const;
  /// Reads a .npy file in its own type: <f4 and <f8 as f32 (f8 rounded),
  /// <f2 as f16, the integer and boolean types as i32.
  static llvm::Expected<Tensor> load(llvm::StringRef path);
  /// Reads a .npy file as type `as`: floating-point data is converted with
  /// fromF32 (so a quantised param is bound from f32 data by quantising it),
  /// integer data only to i32.
  static llvm::Expected<Tensor> load(llvm::StringRef path, ElemType as);
  static llvm::Expected<Tensor> fromNpy(const NpyArray &a, ElemType as);
};

/// Checks a concrete shape for an element type: dims non-negative, element
/// count (and byte size) without int64 overflow, and for the block types an
/// innermost dim that is a multiple of 32 (rank >= 1).
llvm::Error checkShape(ElemType elem, llvm::ArrayRef<int64_t> shape);

/// `v` rounded to the nearest value of `elem` (f16, bf16); `v` otherwise.
float roundToElem(ElemType elem, float v);

/// A dim evaluated under the bindings; an error naming the symbol if one is
/// unbound, or if the value overflows int64. (DimExpr::evaluate does not
/// check overflow, so run-time code uses this.)
llvm::Expected<int64_t> evaluateDim(const DimExpr &d, const SymbolBindings &syms);
/// Total physical memory of this machine in bytes.
uint64_t physicalMemoryBytes();
/// A type's concrete shape: every dim evaluated and non-negative, and its
/// storage no larger than this machine's physical memory (an error naming
/// the type and its byte count otherwise, before anything is allocated).
llvm::Expected<std::vector<int64_t>> evaluateShape(const TensorType &t,
                                                    const SymbolBindings &syms);

/// `[7, 64]`
std::string formatShape(llvm::ArrayRef<int64_t> shape);

/// The multi-index of row-major offset `flat` in `shape`, as `[a, b]`.
std::string formatIndex(int64_t flat, llvm::ArrayRef<int64_t> shape);

} // namespace moe
