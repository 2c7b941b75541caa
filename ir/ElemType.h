//===- ElemType.h - Tensor element types ------------------------*- C++ -*-===//
//
// The element types of moe tensors. Block-quantised types (q8_0, q4_0, mxfp4)
// store blocks of 32 elements along the innermost axis with the exact byte
// layouts of GGUF/ggml, so weights are used from a GGUF file unconverted.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/ADT/StringRef.h"
#include <cstdint>
#include <iterator>
#include <optional>

namespace moe {

#define MOE_ELEM_TYPES(X)                                                      \
  /* enum, name, block elems, block bytes */                                   \
  X(F32, "f32", 1, 4)                                                          \
  X(F16, "f16", 1, 2)                                                          \
  X(BF16, "bf16", 1, 2)                                                        \
  X(I32, "i32", 1, 4)                                                          \
  X(Q8_0, "q8_0", 32, 34)                                                      \
  X(Q4_0, "q4_0", 32, 18)                                                      \
  X(MXFP4, "mxfp4", 32, 17)

enum class ElemType : uint8_t {
#define X(E, N, BE, BB) E,
  MOE_ELEM_TYPES(X)
#undef X
};

/// One row of MOE_ELEM_TYPES, indexed by the enum.
struct ElemTypeInfo {
  const char *name;
  int64_t blockElems, blockBytes;
};

inline constexpr ElemTypeInfo kElemTypes[] = {
#define X(E, N, BE, BB) {N, BE, BB},
    MOE_ELEM_TYPES(X)
#undef X
};

inline const ElemTypeInfo &elemTypeInfo(ElemType t) { return kElemTypes[(size_t)t]; }

inline llvm::StringRef elemTypeName(ElemType t) { return elemTypeInfo(t).name; }

inline std::optional<ElemType> parseElemType(llvm::StringRef s) {
  for (size_t i = 0; i < std::size(kElemTypes); ++i)
    if (s == kElemTypes[i].name)
      return ElemType(i);
  return std::nullopt;
}

/// Elements per storage block (32 for the quantised types, else 1).
inline int64_t blockElems(ElemType t) { return elemTypeInfo(t).blockElems; }

/// Bytes per storage block.
inline int64_t blockBytes(ElemType t) { return elemTypeInfo(t).blockBytes; }

inline bool isQuantized(ElemType t) { return blockElems(t) > 1; }
inline bool isFloat(ElemType t) { return t != ElemType::I32; }

/// Bytes of a row of n elements (n a multiple of blockElems(t)).
inline int64_t rowBytes(ElemType t, int64_t n) {
  return n / blockElems(t) * blockBytes(t);
}

} // namespace moe
