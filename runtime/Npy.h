//===- Npy.h - NumPy .npy array files ---------------------------*- C++ -*-===//
//
// Reading and writing NumPy's .npy format (numpy/lib/format.py), the format
// moe-run takes inputs in and writes results to, so they can be produced and
// checked with numpy alone. Supported: format versions 1.0, 2.0 and 3.0,
// C-order arrays of the little-endian scalar types
//
//   <f4 <f2 <f8 <i4 <i8 |u1 |i1 |b1
//
// A corrupt or hostile file gives an llvm::Error naming the file and the
// problem; nothing is allocated before the header's claimed size has been
// checked against the bytes actually present.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moe {

/// An array read from a .npy file: its raw little-endian bytes in C order.
struct NpyArray {
  /// The canonical type string: one of the eight above ("|" for 1-byte
  /// types, "<" otherwise, whatever byte-order mark the file used for them).
  std::string descr;
  /// Dims, outermost first; empty for a rank-0 array (one element).
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  /// The product of shape (1 for rank 0).
  int64_t numElements() const;
};

/// Bytes per element of a supported descr ("<f4" -> 4), or 0 if unsupported.
/// Accepts exactly the canonical strings NpyArray::descr holds.
int64_t npyItemSize(llvm::StringRef descr);

/// Reads and validates a .npy file.
llvm::Expected<NpyArray> readNpy(llvm::StringRef path);

/// Parses the bytes of a .npy file; errors start with "nameForErrors: ".
llvm::Expected<NpyArray> parseNpy(llvm::StringRef bytes,
                                  llvm::StringRef nameForErrors);

/// The values as f32, from the floating-point types (<f2, <f4, <f8; f8 values
/// are rounded, and overflow to infinity). Other types are an error: a
/// caller wanting floats from integers should say so explicitly.
llvm::Expected<std::vector<float>> npyToF32(const NpyArray &a);

/// The values as i32, from the integer and boolean types (an error if an
/// <i8 value does not fit), or from floating-point types when every value is
/// an integer in i32 range (so "ids" written by numpy as floats still load).
llvm::Expected<std::vector<int32_t>> npyToI32(const NpyArray &a);

/// The header numpy.save would write for a C-order array of this descr and
/// shape: magic, version, length, the dict, padding to a 64-byte boundary.
/// Version 1.0, or 2.0 when the header does not fit 1.0's 16-bit length.
/// An error if descr is unsupported or a dim is negative.
llvm::Expected<std::string> npyHeader(llvm::StringRef descr,
                                      llvm::ArrayRef<int64_t> shape);

/// Writes a .npy file byte-identical to numpy.save's for the same C-order
/// array. bytes must equal the shape's element count times the item size.
llvm::Error writeNpy(llvm::StringRef path, llvm::StringRef descr,
                     llvm::ArrayRef<int64_t> shape, const void *data,
                     size_t bytes);

} // namespace moe
