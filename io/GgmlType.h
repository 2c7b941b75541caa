//===- GgmlType.h - ggml tensor types as stored in GGUF ---------*- C++ -*-===//
//
// The tensor type ids a GGUF file stores (ggml.h's `enum ggml_type`) with
// each type's block geometry (ggml.c's type traits: blck_size, type_size), so
// the reader can check every tensor's byte size, whatever its type, without
// knowing how to decode it. Ids 4, 5, 31-33 and 36-38 were removed from ggml
// and are unknown here, as are ids newer than the last entry.
//
// This layer depends on nothing in moe: the mapping from these ids to
// moe::ElemType belongs to the layer that binds weights to the IR.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>

namespace moe::gguf {

// clang-format off
#define MOE_GGML_TYPES(X)                                                      \
  /* enum,   id, name,      block elems, block bytes, supported by moe */      \
  X(F32,      0, "f32",       1,   4, true)                                    \
  X(F16,      1, "f16",       1,   2, true)                                    \
  X(Q4_0,     2, "q4_0",     32,  18, true)                                    \
  X(Q4_1,     3, "q4_1",     32,  20, false)                                   \
  X(Q5_0,     6, "q5_0",     32,  22, false)                                   \
  X(Q5_1,     7, "q5_1",     32,  24, false)                                   \
  X(Q8_0,     8, "q8_0",     32,  34, true)                                    \
  X(Q8_1,     9, "q8_1",     32,  36, false)                                   \
  X(Q2_K,    10, "q2_K",    256,  84, false)                                   \
  X(Q3_K,    11, "q3_K",    256, 110, false)                                   \
  X(Q4_K,    12, "q4_K",    256, 144, false)                                   \
  X(Q5_K,    13, "q5_K",    256, 176, false)                                   \
  X(Q6_K,    14, "q6_K",    256, 210, false)                                   \
  X(Q8_K,    15, "q8_K",    256, 292, false)                                   \
  X(IQ2_XXS, 16, "iq2_xxs", 256,  66, false)                                   \
  X(IQ2_XS,  17, "iq2_xs",  256,  74, false)                                   \
  X(IQ3_XXS, 18, "iq3_xxs", 256,  98, false)                                   \
  X(IQ1_S,   19, "iq1_s",   256,  50, false)                                   \
  X(IQ4_NL,  20, "iq4_nl",   32,  18, false)                                   \
  X(IQ3_S,   21, "iq3_s",   256, 110, false)                                   \
  X(IQ2_S,   22, "iq2_s",   256,  82, false)                                   \
  X(IQ4_XS,  23, "iq4_xs",  256, 136, false)                                   \
  X(I8,      24, "i8",        1,   1, false)                                   \
  X(I16,     25, "i16",       1,   2, false)                                   \
  X(I32,     26, "i32",       1,   4, false)                                   \
  X(I64,     27, "i64",       1,   8, false)                                   \
  X(F64,     28, "f64",       1,   8, false)                                   \
  X(IQ1_M,   29, "iq1_m",   256,  56, false)                                   \
  X(BF16,    30, "bf16",      1,   2, true)                                    \
  X(TQ1_0,   34, "tq1_0",   256,  54, false)                                   \
  X(TQ2_0,   35, "tq2_0",   256,  66, false)                                   \
  X(MXFP4,   39, "mxfp4",    32,  17, true)                                    \
  X(NVFP4,   40, "nvfp4",    64,  36, false)
// clang-format on

/// A ggml tensor type, valued by its GGUF type id.
enum class GgmlType : uint32_t {
#define X(E, ID, N, BE, BB, S) E = ID,
  MOE_GGML_TYPES(X)
#undef X
};

/// A known type's storage geometry: `blockBytes` bytes hold `blockElems`
/// consecutive elements along ne[0] (the innermost axis).
struct GgmlTypeTraits {
  GgmlType type;
  llvm::StringRef name;
  uint32_t blockElems;
  uint32_t blockBytes;
  /// Whether moe's kernels take this type as stored (f32 f16 bf16 q8_0 q4_0
  /// mxfp4); other known types are readable but refused when used.
  bool supportedByMoe;
};

/// The traits of type id `id`, or nullopt if ggml has no such type (any more).
inline std::optional<GgmlTypeTraits> ggmlTypeTraits(uint32_t id) {
  switch (id) {
#define X(E, ID, N, BE, BB, S)                                                 \
  case ID:                                                                     \
    return GgmlTypeTraits{GgmlType::E, N, BE, BB, S};
    MOE_GGML_TYPES(X)
#undef X
  }
  return std::nullopt;
}

inline GgmlTypeTraits ggmlTypeTraits(GgmlType t) {
  return *ggmlTypeTraits(static_cast<uint32_t>(t));
}

/// ggml's name of the type ("q8_0", "q4_K"), as gguf-py and llama.cpp print it.
inline llvm::StringRef ggmlTypeName(GgmlType t) {
  return ggmlTypeTraits(t).name;
}

/// The type named `name` (ggml's spelling, e.g. "q4_K"), or nullopt.
inline std::optional<GgmlType> parseGgmlType(llvm::StringRef name) {
#define X(E, ID, N, BE, BB, S)                                                 \
  if (name == N)                                                               \
    return GgmlType::E;
  MOE_GGML_TYPES(X)
#undef X
  return std::nullopt;
}

/// "f32, f16, q4_0, q8_0, bf16, mxfp4": the types moe uses as stored.
llvm::StringRef moeSupportedTypesList();

} // namespace moe::gguf
