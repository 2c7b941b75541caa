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

inline llvm::StringRef elemTypeName(ElemType t) {
  switch (t) {
#define X(E, N, BE, BB)                                                        \
  case ElemType::E:                                                            \
    return N;
    MOE_ELEM_TYPES(X)
#undef X
  }
  return "?";
}

inline std::optional<ElemType> parseElemType(llvm::StringRef s) {
#define X(E, N, BE, BB)                                                        \
  if (s == N)                                                                  \
    return ElemType::E;
  MOE_ELEM_TYPES(X)
#undef X
  return std::nullopt;
}

/// Elements per storage block (32 for the quantised types, else 1).
inline int64_t blockElems(ElemType t) {
  switch (t) {
#define X(E, N, BE, BB)                                                        \
  case ElemType::E:                                                            \
    return BE;
    MOE_ELEM_TYPES(X)
#undef X
  }
  return 1;
}

/// Bytes per storage block.
inline int64_t blockBytes(ElemType t) {
  switch (t) {
#define X(E, N, BE, BB)                                                        \
  case ElemType::E:                                                            \
    return BB;
    MOE_ELEM_TYPES(X)
#undef X
  }
  return 0;
}

inline bool isQuantized(ElemType t) { return blockElems(t) > 1; }
inline bool isFloat(ElemType t) { return t != ElemType::I32; }

/// Bytes of a row of n elements (n a multiple of blockElems(t)).
inline int64_t rowBytes(ElemType t, int64_t n) {
  return n / blockElems(t) * blockBytes(t);
}

} // namespace moe
