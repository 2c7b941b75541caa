//===- Formats.cpp - Scalar and block weight formats ----------------------===//
//
// The reference encoders and decoders of Formats.h. Each quantiser follows
// the arithmetic of ggml's `quantize_row_*_ref` step by step, in float, in the
// same order, because "bit-identical to ggml" is only true if every rounding
// happens where ggml's does: the scale's reciprocal is taken from the f32
// scale before it is rounded to f16, products are rounded before they are
// added, and ties go where ggml's comparisons send them.
//
//===----------------------------------------------------------------------===//
#include "runtime/Formats.h"

#include "llvm/Support/SwapByteOrder.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

// The reference is ggml's C source, where `x*id` and `+ 8.5f` are two
// roundings. Compilers may fuse them into one FMA on FMA targets (GCC in GNU
// mode, the default -std=gnu++20, does across statements), which changes
// q4_0 codes near rounding ties; forbid that in this file. (Clang's
// explicit -ffp-contract=fast ignores this pragma by design; don't use it.)
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

using namespace moe;

// GGUF blocks are little-endian and used in place.
static_assert(!llvm::sys::IsBigEndianHost, "moe needs a little-endian host");

namespace {

uint16_t loadU16(const uint8_t *p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void storeU16(uint8_t *p, uint16_t v) { std::memcpy(p, &v, 2); }

/// What ggml's `(int8_t)f` / `(uint8_t)f` yields when compiled for x86-64:
/// cvttss2si truncates toward zero into 32 bits (NaN and out-of-range values
/// give INT32_MIN, the "integer indefinite"), then the low byte is kept.
/// In range this is plain C truncation; out of range C leaves it undefined,
/// and this pins it to what ggml's shipped binaries do.
int32_t truncLikeX86(float v) {
  if (!(v >= -2147483648.0f && v < 2147483648.0f))
    return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(v);
}

int8_t toInt8LikeX86(float v) { return static_cast<int8_t>(truncLikeX86(v)); }

/// ggml's MAX(a, b): `a > b ? a : b`, so a NaN b wins (this is q8_0's amax).
float ggmlMax(float a, float b) { return a > b ? a : b; }

//===----------------------------------------------------------------------===//
// q8_0
//===----------------------------------------------------------------------===//

void quantizeBlockQ8_0(const float *x, uint8_t *out) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j)
    amax = ggmlMax(amax, std::fabs(x[j]));
  // The divisor is 127, not 128, so the largest magnitude maps to exactly
  // +-127 and the code -128 is never produced.
  const float d = amax / 127;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  storeU16(out, f32ToF16(d));
  for (int j = 0; j < 32; ++j) {
    const float v = x[j] * id;
    out[2 + j] = static_cast<uint8_t>(toInt8LikeX86(std::round(v)));
  }
}

void dequantizeBlockQ8_0(const uint8_t *in, float *y) {
  const float d = f16ToF32(loadU16(in));
  for (int j = 0; j < 32; ++j)
    y[j] = static_cast<int8_t>(in[2 + j]) * d;
}

//===----------------------------------------------------------------------===//
// q4_0
//===----------------------------------------------------------------------===//

/// One q4_0 code: ggml's `MIN(15, (int8_t)(v + 8.5f))`, then stored in a
/// uint8_t. Adding 8.5 and truncating rounds v + 8 half up onto 0..16; the
/// MIN folds 16 (an element of the sign opposite to the block's largest
/// magnitude, and as large, gives v = +8) into 15.
uint8_t q4Code(float v) {
  const float shifted = v + 8.5f;
  const int8_t q = toInt8LikeX86(shifted);
  return static_cast<uint8_t>(q < 15 ? q : 15);
}

void quantizeBlockQ4_0(const float *x, uint8_t *out) {
  // The scale takes the sign of the largest-magnitude element (the first one,
  // on ties) so that element lands on code 0 = -8, using the full range
  // -8..7 on its side; the other side is clamped at +7.
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  storeU16(out, f32ToF16(d));
  for (int j = 0; j < 16; ++j) {
    const float v0 = x[j] * id;
    const float v1 = x[16 + j] * id;
    out[2 + j] = static_cast<uint8_t>(q4Code(v0) | (q4Code(v1) << 4));
  }
}

void dequantizeBlockQ4_0(const uint8_t *in, float *y) {
  const float d = f16ToF32(loadU16(in));
  for (int j = 0; j < 16; ++j) {
    const uint8_t q = in[2 + j];
    y[j] = ((q & 0x0F) - 8) * d;
    y[16 + j] = ((q >> 4) - 8) * d;
  }
}

//===----------------------------------------------------------------------===//
// mxfp4
//===----------------------------------------------------------------------===//

/// The code whose value kMxfp4Values[i] * d is nearest to v; on a tie the
/// lower code wins (so +0, code 0, beats -0, code 8), as ggml's linear scan
/// with a strict `<` does.
uint8_t nearestMxfp4Code(float v, float d) {
  uint8_t best = 0;
  float bestErr = std::fabs(kMxfp4Values[0] * d - v);
  for (uint8_t i = 1; i < 16; ++i) {
    const float err = std::fabs(kMxfp4Values[i] * d - v);
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

/// The shared exponent: floor(log2(amax)) - 2, so amax falls in [4, 8) times
/// the OCP scale, i.e. the largest E2M1 magnitude 6 sits inside the range
/// (values above 6 * scale saturate to 6). log2f is the C library's, as in
/// ggml, and the float-to-uint8 conversion is ggml's (see truncLikeX86).
uint8_t mxfp4Exponent(float amax) {
  if (!(amax > 0.0f))
    return 0;
  const float e = std::floor(std::log2(amax)) - 2 + 127;
  return static_cast<uint8_t>(truncLikeX86(e));
}

void quantizeBlockMXFP4(const float *x, uint8_t *out) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j)
    if (amax < std::fabs(x[j]))
      amax = std::fabs(x[j]);
  const uint8_t e = mxfp4Exponent(amax);
  const float d = e8m0ToF32Half(e);
  out[0] = e;
  for (int j = 0; j < 16; ++j)
    out[1 + j] = static_cast<uint8_t>(nearestMxfp4Code(x[j], d) |
                                      (nearestMxfp4Code(x[16 + j], d) << 4));
}

void dequantizeBlockMXFP4(const uint8_t *in, float *y) {
  const float d = e8m0ToF32Half(in[0]);
  for (int j = 0; j < 16; ++j) {
    const uint8_t q = in[1 + j];
    y[j] = kMxfp4Values[q & 0x0F] * d;
    y[16 + j] = kMxfp4Values[q >> 4] * d;
  }
}

/// I32 from float: truncate toward zero, saturate, NaN to 0 (documented in
/// the header; ggml has no such quantiser to follow).
int32_t saturatingToI32(float v) {
  if (std::isnan(v))
    return 0;
  if (v >= 2147483648.0f)
    return std::numeric_limits<int32_t>::max();
  if (v < -2147483648.0f)
    return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(v);
}

/// Runs a per-block encoder or decoder over a row of n elements of type t,
/// passing each block's first element index and first byte offset.
template <typename Fn> void forEachBlock(ElemType t, int64_t n, Fn fn) {
  const int64_t elems = blockElems(t), bytes = blockBytes(t);
  for (int64_t b = 0; b < n / elems; ++b)
    fn(b * elems, b * bytes);
}

} // namespace

//===----------------------------------------------------------------------===//
// Scalars
//===----------------------------------------------------------------------===//

float moe::f16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  if (exp == 0x1F) {
    // Infinity, or a NaN whose payload moves up; the NaN is made quiet, as
    // ggml's conversion (and F16C's vcvtph2ps) does.
    const uint32_t quiet = mant != 0 ? 0x400000 : 0;
    return std::bit_cast<float>(sign | 0x7F800000 | quiet | (mant << 13));
  }
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in binary32.
    const float mag = static_cast<float>(mant) * 0x1p-24f;
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(mag));
  }
  // Normal: rebias the exponent from 15 to 127.
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t moe::f32ToF16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t a = x & 0x7FFFFFFF;
  if (a > 0x7F800000) // NaN
    return sign | 0x7E00;
  if (a >= 0x47800000) // >= 65536, or infinity: always rounds to infinity.
    return sign | 0x7C00;

  // Keep `keep` significant bits of `mant`, dropping `shift` low bits with
  // round-to-nearest-even; a carry out of the mantissa correctly bumps the
  // exponent (and 65520 and up becomes 0x7C00, infinity).
  auto roundShift = [](uint32_t mant, uint32_t shift) {
    const uint32_t kept = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    return kept + (rest > half || (rest == half && (kept & 1)) ? 1 : 0);
  };

  if (a >= 0x38800000) // >= 2^-14: a normal half. Rebias 127 -> 15.
    return sign | static_cast<uint16_t>(roundShift(a - 0x38000000, 13));

  // Subnormal half: the result is round(|f| * 2^24) in units of 2^-24.
  const uint32_t exp = a >> 23;
  if (exp < 102) // |f| < 2^-25 (half the smallest subnormal): rounds to 0.
    return sign;
  const uint32_t mant = (a & 0x7FFFFF) | 0x800000;
  return sign | static_cast<uint16_t>(roundShift(mant, 126 - exp));
}

float moe::bf16ToF32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

uint16_t moe::f32ToBF16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFF) > 0x7F800000) // NaN: truncate, set the quiet bit.
    return static_cast<uint16_t>((x >> 16) | 0x40);
  // Adding 0x7FFF plus the lowest kept bit rounds to nearest, ties to even;
  // finite values past the largest bf16 carry into infinity.
  const uint32_t bias = 0x7FFF + ((x >> 16) & 1);
  return static_cast<uint16_t>((x + bias) >> 16);
}

float moe::e8m0ToF32Half(uint8_t e) {
  // 2^(e-128): for e >= 2 a normal float with biased exponent e - 1; for
  // e = 1 and 0 the subnormals 2^-127 and 2^-128.
  if (e < 2)
    return std::bit_cast<float>(0x00200000u << e);
  return std::bit_cast<float>(static_cast<uint32_t>(e - 1) << 23);
}

//===----------------------------------------------------------------------===//
// Rows
//===----------------------------------------------------------------------===//

void moe::dequantizeRow(ElemType t, const void *src, float *dst, int64_t n) {
  const auto *in = static_cast<const uint8_t *>(src);
  switch (t) {
  case ElemType::F32:
    if (n > 0) // memcpy's pointers must be valid even for 0 bytes.
      std::memcpy(dst, in, static_cast<size_t>(n) * 4);
    return;
  case ElemType::F16:
    for (int64_t i = 0; i < n; ++i)
      dst[i] = f16ToF32(loadU16(in + 2 * i));
    return;
  case ElemType::BF16:
    for (int64_t i = 0; i < n; ++i)
      dst[i] = bf16ToF32(loadU16(in + 2 * i));
    return;
  case ElemType::I32:
    for (int64_t i = 0; i < n; ++i) {
      int32_t v;
      std::memcpy(&v, in + 4 * i, 4);
      dst[i] = static_cast<float>(v);
    }
    return;
  case ElemType::Q8_0:
    forEachBlock(ElemType::Q8_0, n, [&](int64_t e, int64_t b) {
      dequantizeBlockQ8_0(in + b, dst + e);
    });
    return;
  case ElemType::Q4_0:
    forEachBlock(ElemType::Q4_0, n, [&](int64_t e, int64_t b) {
      dequantizeBlockQ4_0(in + b, dst + e);
    });
    return;
  case ElemType::MXFP4:
    forEachBlock(ElemType::MXFP4, n, [&](int64_t e, int64_t b) {
      dequantizeBlockMXFP4(in + b, dst + e);
    });
    return;
  }
}

void moe::quantizeRow(ElemType t, const float *src, void *dst, int64_t n) {
  auto *out = static_cast<uint8_t *>(dst);
  switch (t) {
  case ElemType::F32:
    if (n > 0) // memcpy's pointers must be valid even for 0 bytes.
      std::memcpy(out, src, static_cast<size_t>(n) * 4);
    return;
  case ElemType::F16:
    for (int64_t i = 0; i < n; ++i)
      storeU16(out + 2 * i, f32ToF16(src[i]));
    return;
  case ElemType::BF16:
    for (int64_t i = 0; i < n; ++i)
      storeU16(out + 2 * i, f32ToBF16(src[i]));
    return;
  case ElemType::I32:
    for (int64_t i = 0; i < n; ++i) {
      const int32_t v = saturatingToI32(src[i]);
      std::memcpy(out + 4 * i, &v, 4);
    }
    return;
  case ElemType::Q8_0:
    forEachBlock(ElemType::Q8_0, n, [&](int64_t e, int64_t b) {
      quantizeBlockQ8_0(src + e, out + b);
    });
    return;
  case ElemType::Q4_0:
    forEachBlock(ElemType::Q4_0, n, [&](int64_t e, int64_t b) {
      quantizeBlockQ4_0(src + e, out + b);
    });
    return;
  case ElemType::MXFP4:
    forEachBlock(ElemType::MXFP4, n, [&](int64_t e, int64_t b) {
      quantizeBlockMXFP4(src + e, out + b);
    });
    return;
  }
}
