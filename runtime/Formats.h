//===- Formats.h - Scalar and block weight formats --------------*- C++ -*-===//
//
// Conversions between f32 and every moe element type, with exactly ggml's
// semantics: IEEE half and bfloat16 scalars, and the GGUF block-quantised
// formats q8_0, q4_0 and mxfp4. The byte layouts below are the ones GGUF files
// store, so weights mapped from a GGUF file are used as they are, and a tensor
// quantised here is bit-identical to one written by ggml's reference
// quantisers (`quantize_row_*_ref` in ggml-quants.c).
//
// These are the scalar reference routines: the interpreter, parameter binding
// and tests use them; the JIT kernels in codegen/ are checked against them.
//
// Host byte order is assumed little-endian (as GGUF and .npy data are); every
// multi-byte field is read with memcpy, so blocks need no alignment.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/ElemType.h"

#include <cstddef>
#include <cstdint>

namespace moe {

//===----------------------------------------------------------------------===//
// Block layouts (ggml-common.h). Documentation of the on-disk bytes; the
// routines below read raw bytes, so these structs are never required to be
// aligned in memory.
//===----------------------------------------------------------------------===//

/// q8_0: 32 signed bytes and one f16 scale; value j = qs[j] * d.
struct BlockQ8_0 {
  uint16_t d; ///< IEEE half scale.
  int8_t qs[32];
};

/// q4_0: 32 4-bit codes and one f16 scale. Element j < 16 is the low nibble of
/// qs[j], element j + 16 its high nibble; value = (nibble - 8) * d.
struct BlockQ4_0 {
  uint16_t d; ///< IEEE half scale.
  uint8_t qs[16];
};

/// mxfp4 (OCP microscaling FP4): 32 E2M1 codes and one E8M0 shared exponent.
/// Nibble order as q4_0; value = kMxfp4Values[nibble] * e8m0ToF32Half(e).
struct BlockMXFP4 {
  uint8_t e; ///< E8M0 exponent, bias 127.
  uint8_t qs[16];
};

static_assert(sizeof(BlockQ8_0) == 34 && offsetof(BlockQ8_0, qs) == 2);
static_assert(sizeof(BlockQ4_0) == 18 && offsetof(BlockQ4_0, qs) == 2);
static_assert(sizeof(BlockMXFP4) == 17 && offsetof(BlockMXFP4, qs) == 1);

/// The E2M1 code points, doubled so they are integers (ggml's
/// `kvalues_mxfp4`); the scale is halved to match (see e8m0ToF32Half).
/// Codes 0 and 8 are +0 and -0; both decode to +0 here, as in ggml.
inline constexpr int8_t kMxfp4Values[16] = {0,  1,  2,  3,  4,  6,  8,  12,
                                            0, -1, -2, -3, -4, -6, -8, -12};

//===----------------------------------------------------------------------===//
// Scalars
//===----------------------------------------------------------------------===//

/// IEEE binary16 to binary32; exact, subnormals kept. A NaN keeps its payload
/// and is made quiet, as in ggml.
float f16ToF32(uint16_t h);

/// binary32 to binary16, round to nearest even; overflow gives infinity,
/// subnormal halves are produced (not flushed). Every NaN becomes the quiet
/// NaN 0x7E00 with the input's sign, as ggml's ggml_compute_fp32_to_fp16.
uint16_t f32ToF16(float f);

/// bfloat16 to binary32; exact.
float bf16ToF32(uint16_t h);

/// binary32 to bfloat16 as ggml's GGML_FP32_TO_BF16: round to nearest even on
/// the dropped 16 bits; a NaN keeps its sign and top payload bits and is
/// forced quiet.
uint16_t f32ToBF16(float f);

/// An E8M0 exponent as 2^(e - 128): half the OCP scale 2^(e - 127), because
/// kMxfp4Values are doubled. e = 0 and 1 give subnormal floats; no NaN code
/// (ggml ignores e = 255's NaN meaning too, giving 2^127).
float e8m0ToF32Half(uint8_t e);

//===----------------------------------------------------------------------===//
// Rows
//===----------------------------------------------------------------------===//

/// Decodes n elements of type t from src (rowBytes(t, n) bytes) into dst.
/// I32 converts each integer to the nearest float.
///
/// Precondition (not checked): n >= 0 and n is a multiple of blockElems(t).
void dequantizeRow(ElemType t, const void *src, float *dst, int64_t n);

/// Encodes n floats into rowBytes(t, n) bytes of type t at dst, bit-identical
/// to ggml's reference quantisers (`quantize_row_{q8_0,q4_0,mxfp4}_ref`, the
/// f16/bf16 scalar conversions above). For I32, which ggml never quantises to,
/// each value is truncated toward zero and saturated, NaN giving 0, so
/// integral values round-trip through dequantizeRow exactly.
///
/// Where ggml's C code has undefined behaviour (a float-to-int conversion out
/// of range: non-finite inputs, or a block so small its scale's reciprocal
/// overflows) the result is what that code produces on x86-64, computed here
/// without undefined behaviour.
///
/// Precondition (not checked): n >= 0 and n is a multiple of blockElems(t).
void quantizeRow(ElemType t, const float *src, void *dst, int64_t n);

} // namespace moe
