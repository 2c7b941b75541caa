//===- FormatsTest.cpp - Scalar and block weight formats ------------------===//
//
// Known byte patterns for every format, worked out by hand from ggml's
// definitions (ggml-common.h, ggml-impl.h, ggml-quants.c), so a change that
// breaks GGUF compatibility fails here and not as a subtly wrong model.
//
//===----------------------------------------------------------------------===//
#include "runtime/Formats.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace moe;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

/// Quantises `x` (a multiple of 32 floats) and returns the bytes.
std::vector<uint8_t> quantize(ElemType t, const std::vector<float> &x) {
  std::vector<uint8_t> out(rowBytes(t, x.size()));
  quantizeRow(t, x.data(), out.data(), x.size());
  return out;
}

std::vector<float> dequantize(ElemType t, const std::vector<uint8_t> &bytes,
                              int64_t n) {
  std::vector<float> out(n);
  dequantizeRow(t, bytes.data(), out.data(), n);
  return out;
}

//===----------------------------------------------------------------------===//
// f16
//===----------------------------------------------------------------------===//

/// Check that the special and boundary halves decode to their exact values.
TEST(FormatsTest, F16ToF32KnownValues) {
  EXPECT_EQ(f16ToF32(0x3C00), 1.0f);
  EXPECT_EQ(f16ToF32(0xC000), -2.0f);
  EXPECT_EQ(f16ToF32(0x3555), 0.333251953125f);
  EXPECT_EQ(f16ToF32(0x7BFF), 65504.0f);           // largest finite
  EXPECT_EQ(f16ToF32(0x0400), std::ldexp(1.0f, -14)); // smallest normal
  EXPECT_EQ(f16ToF32(0x0001), std::ldexp(1.0f, -24)); // smallest subnormal
  EXPECT_EQ(f16ToF32(0x03FF), 1023 * std::ldexp(1.0f, -24));
  EXPECT_EQ(f16ToF32(0x7C00), kInf);
  EXPECT_EQ(f16ToF32(0xFC00), -kInf);
  EXPECT_EQ(std::bit_cast<uint32_t>(f16ToF32(0x8000)), 0x80000000u); // -0
  EXPECT_TRUE(std::isnan(f16ToF32(0x7E00)));
  // A signalling NaN keeps its payload and is made quiet, as in ggml.
  EXPECT_EQ(std::bit_cast<uint32_t>(f16ToF32(0x7C01)), 0x7FC02000u);
}

/// Check round-to-nearest-even at ties, overflow, and subnormal results.
TEST(FormatsTest, F32ToF16Rounding) {
  EXPECT_EQ(f32ToF16(1.0f), 0x3C00);
  EXPECT_EQ(f32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(f32ToF16(1.0f / 3), 0x3555);
  // 1 + 2^-11 is halfway between 0x3C00 and 0x3C01: to even, down.
  EXPECT_EQ(f32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  // 1 + 3 * 2^-11 is halfway between 0x3C01 and 0x3C02: to even, up.
  EXPECT_EQ(f32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(f32ToF16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32ToF16(65519.99f), 0x7BFF);
  EXPECT_EQ(f32ToF16(65520.0f), 0x7C00); // tie between 65504 and 2^16: even
  EXPECT_EQ(f32ToF16(1e10f), 0x7C00);
  EXPECT_EQ(f32ToF16(kInf), 0x7C00);
  EXPECT_EQ(f32ToF16(-kInf), 0xFC00);
  EXPECT_EQ(f32ToF16(kNaN), 0x7E00);
  EXPECT_EQ(f32ToF16(-kNaN), 0xFE00);
  EXPECT_EQ(f32ToF16(std::bit_cast<float>(0x7F800001)), 0x7E00); // signalling NaN
  // Subnormal halves are multiples of 2^-24.
  EXPECT_EQ(f32ToF16(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(f32ToF16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(f32ToF16(std::ldexp(1.0f, -25)), 0x0000); // tie: to even 0
  EXPECT_EQ(f32ToF16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(f32ToF16(3 * std::ldexp(1.0f, -25)), 0x0002); // 1.5 ulp: to 2
  EXPECT_EQ(f32ToF16(5 * std::ldexp(1.0f, -25)), 0x0002); // 2.5 ulp: to 2
  EXPECT_EQ(f32ToF16(-std::ldexp(1.0f, -30)), 0x8000);
  // Just below the smallest normal rounds up into it.
  EXPECT_EQ(f32ToF16(std::nextafter(std::ldexp(1.0f, -14), 0.0f)), 0x0400);
}

/// Check that every non-NaN half survives f16 -> f32 -> f16 unchanged.
TEST(FormatsTest, F16RoundTripsExactly) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF))
      continue; // NaN
    ASSERT_EQ(f32ToF16(f16ToF32(h)), h) << std::hex << h;
  }
}

//===----------------------------------------------------------------------===//
// bf16
//===----------------------------------------------------------------------===//

/// Check ggml's GGML_FP32_TO_BF16: ties to even, quiet NaNs, overflow.
TEST(FormatsTest, BF16KnownValues) {
  EXPECT_EQ(bf16ToF32(0x3F80), 1.0f);
  EXPECT_EQ(bf16ToF32(0xC000), -2.0f);
  EXPECT_EQ(bf16ToF32(0x7F80), kInf);
  EXPECT_EQ(f32ToBF16(1.0f), 0x3F80);
  EXPECT_EQ(f32ToBF16(std::bit_cast<float>(0x3F808000)), 0x3F80); // tie: even, down
  EXPECT_EQ(f32ToBF16(std::bit_cast<float>(0x3F818000)), 0x3F82); // tie: even, up
  EXPECT_EQ(f32ToBF16(std::bit_cast<float>(0x3F808001)), 0x3F81); // above the tie
  EXPECT_EQ(f32ToBF16(std::bit_cast<float>(0x3F807FFF)), 0x3F80); // below the tie
  EXPECT_EQ(f32ToBF16(-kInf), 0xFF80);
  EXPECT_EQ(f32ToBF16(std::bit_cast<float>(0x7F7FFFFF)), 0x7F80); // FLT_MAX rounds to inf
  EXPECT_EQ(f32ToBF16(std::bit_cast<float>(0x7F800001)), 0x7FC0); // sNaN made quiet
  EXPECT_EQ(f32ToBF16(std::bit_cast<float>(0xFFC00000)), 0xFFC0);
  EXPECT_EQ(f32ToBF16(std::bit_cast<float>(0x00000001)), 0x0000); // subnormal, not flushed
  EXPECT_EQ(f32ToBF16(std::bit_cast<float>(0x00018000)), 0x0002); // ... but rounded
}

//===----------------------------------------------------------------------===//
// q8_0
//===----------------------------------------------------------------------===//

/// Check a block with d = 1.0 (0x3C00) and qs = {1, -2, 3, -4, ...}, and a
/// second block with d = 0.5 and the extreme codes -128 and 127.
TEST(FormatsTest, Q8_0Dequantize) {
  std::vector<uint8_t> b(2 * 34, 0);
  b[0] = 0x00, b[1] = 0x3C; // d = 1.0, little-endian
  for (int j = 0; j < 32; ++j)
    b[2 + j] = static_cast<uint8_t>(j % 2 ? -(j + 1) : j + 1);
  b[34] = 0x00, b[35] = 0x38; // d = 0.5
  b[36] = 0x80;               // -128
  b[37] = 0x7F;               // 127
  b[38] = 0x03;
  std::vector<float> y = dequantize(ElemType::Q8_0, b, 64);
  for (int j = 0; j < 32; ++j)
    EXPECT_EQ(y[j], j % 2 ? -(j + 1.0f) : j + 1.0f) << j;
  EXPECT_EQ(y[32], -64.0f);
  EXPECT_EQ(y[33], 63.5f);
  EXPECT_EQ(y[34], 1.5f);
  EXPECT_EQ(y[35], 0.0f);
}

/// Check quantize_row_q8_0_ref's arithmetic: d = amax / 127, codes by
/// roundf (ties away from zero, not to even), scale stored as f16.
TEST(FormatsTest, Q8_0QuantizeKnownBytes) {
  std::vector<float> x(96, 0.0f);
  // Block 0: amax 127, so d = 1 (0x3C00) and codes are round(x).
  const float in0[] = {127, -127, 0.5f, -0.5f, 1.4f, 2.5f, -2.5f, 100.49f};
  const int8_t q0[] = {127, -127, 1, -1, 1, 3, -3, 100};
  std::copy(std::begin(in0), std::end(in0), x.begin());
  // Block 1: amax 63.5, so d = 0.5 (0x3800), id = 2.
  const float in1[] = {63.5f, 0.25f, -0.75f, 10.0f, -63.5f};
  const int8_t q1[] = {127, 1, -2, 20, -127};
  std::copy(std::begin(in1), std::end(in1), x.begin() + 32);
  // Block 2 is all zero: d = 0 and every code 0.

  std::vector<uint8_t> b = quantize(ElemType::Q8_0, x);
  ASSERT_EQ(b.size(), 3u * 34);
  EXPECT_EQ(b[0], 0x00);
  EXPECT_EQ(b[1], 0x3C);
  for (int j = 0; j < 8; ++j)
    EXPECT_EQ(static_cast<int8_t>(b[2 + j]), q0[j]) << j;
  EXPECT_EQ(b[34], 0x00);
  EXPECT_EQ(b[35], 0x38);
  for (int j = 0; j < 5; ++j)
    EXPECT_EQ(static_cast<int8_t>(b[36 + j]), q1[j]) << j;
  for (int j = 0; j < 34; ++j)
    EXPECT_EQ(b[68 + j], 0) << j;
}

/// Check a scale that f16 cannot hold: amax 1 gives d = 1/127, stored as
/// 0x2008 (1.0078125 * 2^-7), while the codes use the exact f32 1/d.
TEST(FormatsTest, Q8_0ScaleRoundedToF16) {
  std::vector<float> x(32, 0.0f);
  x[0] = 1.0f, x[1] = -1.0f, x[2] = 0.25f;
  std::vector<uint8_t> b = quantize(ElemType::Q8_0, x);
  EXPECT_EQ(b[0] | b[1] << 8, 0x2008);
  EXPECT_EQ(static_cast<int8_t>(b[2]), 127);
  EXPECT_EQ(static_cast<int8_t>(b[3]), -127);
  EXPECT_EQ(static_cast<int8_t>(b[4]), 32); // 31.75 rounds to 32
}

//===----------------------------------------------------------------------===//
// q4_0
//===----------------------------------------------------------------------===//

/// Check the nibble order: element j is qs[j]'s low nibble, element j + 16
/// its high nibble, each decoded as (nibble - 8) * d.
TEST(FormatsTest, Q4_0Dequantize) {
  std::vector<uint8_t> b(18);
  b[0] = 0x00, b[1] = 0x40; // d = 2.0
  for (int j = 0; j < 16; ++j)
    b[2 + j] = static_cast<uint8_t>(j | (15 - j) << 4);
  std::vector<float> y = dequantize(ElemType::Q4_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 2.0f) << j;
    EXPECT_EQ(y[16 + j], (7 - j) * 2.0f) << j;
  }
}

/// Check quantize_row_q4_0_ref: d = max / -8 with max the signed value of
/// largest magnitude, codes trunc(x/d + 8.5) clamped to 15.
TEST(FormatsTest, Q4_0QuantizeKnownBytes) {
  std::vector<float> x(64, 0.0f);
  // Block 0: max = -8, so d = 1 (0x3C00): codes are x + 8, halves round up.
  const float in0[] = {-8, 7, 0, 3, -3, 0.5f, -0.5f, 1.5f};
  const uint8_t c0[] = {0, 15, 8, 11, 5, 9, 8, 10};
  std::copy(std::begin(in0), std::end(in0), x.begin());
  x[16] = 2; // high nibble of qs[0]: code 10
  // Block 1: max = +8, so d = -1 (0xBC00): codes are 8 - x; -8 would be
  // code 16 and is clamped to 15 (decoding to -7: q4_0's one-sided range).
  const float in1[] = {8, -8, 3, -3, 0, 0.5f, -0.5f, 1.5f};
  const uint8_t c1[] = {0, 15, 5, 11, 8, 8, 9, 7};
  std::copy(std::begin(in1), std::end(in1), x.begin() + 32);

  std::vector<uint8_t> b = quantize(ElemType::Q4_0, x);
  ASSERT_EQ(b.size(), 2u * 18);
  EXPECT_EQ(b[0] | b[1] << 8, 0x3C00);
  EXPECT_EQ(b[2], c0[0] | 10 << 4);
  for (int j = 1; j < 8; ++j)
    EXPECT_EQ(b[2 + j], c0[j] | 8 << 4) << j; // high nibbles: zeros, code 8
  EXPECT_EQ(b[18] | b[19] << 8, 0xBC00);
  for (int j = 0; j < 8; ++j)
    EXPECT_EQ(b[20 + j], c1[j] | 8 << 4) << j;
  std::vector<float> y = dequantize(ElemType::Q4_0, b, 64);
  EXPECT_EQ(y[33], -7.0f);
}

/// Check that the first of two equal magnitudes picks the scale's sign.
TEST(FormatsTest, Q4_0FirstLargestMagnitudeWins) {
  std::vector<float> x(32, 0.0f);
  x[3] = 4, x[5] = -4;
  std::vector<uint8_t> b = quantize(ElemType::Q4_0, x);
  EXPECT_EQ(b[0] | b[1] << 8, 0xB800); // d = 4 / -8 = -0.5
}

//===----------------------------------------------------------------------===//
// mxfp4
//===----------------------------------------------------------------------===//

/// Check ggml's half-scale convention: e = 127 is 0.5, e = 128 is 1.
TEST(FormatsTest, E8M0HalfScale) {
  EXPECT_EQ(e8m0ToF32Half(127), 0.5f);
  EXPECT_EQ(e8m0ToF32Half(128), 1.0f);
  EXPECT_EQ(e8m0ToF32Half(130), 4.0f);
  EXPECT_EQ(e8m0ToF32Half(2), std::ldexp(1.0f, -126));
  EXPECT_EQ(e8m0ToF32Half(1), std::ldexp(1.0f, -127)); // subnormal
  EXPECT_EQ(e8m0ToF32Half(0), std::ldexp(1.0f, -128)); // subnormal
  EXPECT_EQ(e8m0ToF32Half(255), std::ldexp(1.0f, 127));
}

/// Check both E2M1 tables through blocks with e = 127 and e = 128.
TEST(FormatsTest, MXFP4Dequantize) {
  std::vector<uint8_t> b(2 * 17);
  b[0] = 127;
  b[17] = 128;
  for (int j = 0; j < 16; ++j)
    b[1 + j] = b[18 + j] = static_cast<uint8_t>(j | (15 - j) << 4);
  std::vector<float> y = dequantize(ElemType::MXFP4, b, 64);
  const float e2m1[16] = {0,  0.5f,  1,  1.5f,  2,  3,  4,  6,
                          0, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], e2m1[j]) << j;
    EXPECT_EQ(y[16 + j], e2m1[15 - j]) << j;
    EXPECT_EQ(y[32 + j], 2 * e2m1[j]) << j;
    EXPECT_EQ(y[48 + j], 2 * e2m1[15 - j]) << j;
  }
  EXPECT_FALSE(std::signbit(y[8])); // code 8 (-0) decodes to +0, as in ggml
}

/// Check quantize_row_mxfp4_ref: e = floor(log2(amax)) - 2 + 127, nearest
/// code with ties to the lower code index, saturation at 6 * 2^(e-127).
TEST(FormatsTest, MXFP4QuantizeKnownBytes) {
  std::vector<float> x(96, 0.0f);
  // Block 0: amax 6, e = 127, grid {0, .5, 1, 1.5, 2, 3, 4, 6}.
  const float in0[] = {6, -6, 0.5f, -1.5f, 5, 2.5f, 0.25f, -0.25f, -0.0f, 1.2f};
  const uint8_t c0[] = {7, 15, 1, 11, 6, 4, 0, 0, 0, 2};
  std::copy(std::begin(in0), std::end(in0), x.begin());
  // Block 1: amax 7 still gives e = 127; 7 saturates to 6 (code 7).
  x[32] = 7, x[33] = -7, x[48] = 3;
  // Block 2: amax 8, e = 128, grid doubled: 8 -> code 6, -12 unreachable.
  x[64] = 8, x[65] = -2, x[80] = 5; // 5 ties 4 and 6: lower code 4 (= 4)

  std::vector<uint8_t> b = quantize(ElemType::MXFP4, x);
  ASSERT_EQ(b.size(), 3u * 17);
  EXPECT_EQ(b[0], 127);
  for (int j = 0; j < 10; ++j)
    EXPECT_EQ(b[1 + j], c0[j]) << j;
  EXPECT_EQ(b[17], 127);
  EXPECT_EQ(b[18], 7 | 5 << 4); // x[32] = 7 low, x[48] = 3 high
  EXPECT_EQ(b[19], 15);
  EXPECT_EQ(b[34], 128);
  EXPECT_EQ(b[35], 6 | 4 << 4);
  EXPECT_EQ(b[36], 10); // -2 is -1 * 2: code 9 + 1
}

/// Check that an all-zero block encodes as e = 0 and all codes 0.
TEST(FormatsTest, MXFP4ZeroBlock) {
  std::vector<uint8_t> b = quantize(ElemType::MXFP4, std::vector<float>(32));
  for (uint8_t v : b)
    EXPECT_EQ(v, 0);
}

//===----------------------------------------------------------------------===//
// Round trips and the plain types
//===----------------------------------------------------------------------===//

/// Check each format's worst-case error bound on random data, block by block.
TEST(FormatsTest, RoundTripWithinFormatError) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = 32 * 256;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i)
    x[i] = normal(rng) * std::ldexp(1.0f, static_cast<int>(i / 32 % 9) - 4);

  for (ElemType t : {ElemType::F32, ElemType::F16, ElemType::BF16,
                     ElemType::Q8_0, ElemType::Q4_0, ElemType::MXFP4}) {
    std::vector<float> y = dequantize(t, quantize(t, x), n);
    for (int64_t b = 0; b < n / 32; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j)
        amax = std::max(amax, std::fabs(x[b * 32 + j]));
      for (int j = 0; j < 32; ++j) {
        const float v = x[b * 32 + j], err = std::fabs(y[b * 32 + j] - v);
        float bound = 0;
        switch (t) {
        case ElemType::F16:
          bound = std::fabs(v) * 0x1p-11f + 0x1p-25f; // or half a subnormal
          break;
        case ElemType::BF16:
          bound = std::fabs(v) * 0x1p-8f;
          break;
        case ElemType::Q8_0: // half a step, plus the f16 rounding of d
          bound = amax / 127 * (0.5f + 127 * 0x1p-11f) * 1.001f;
          break;
        case ElemType::Q4_0: // a full step, at the clamped +8 end
          bound = amax / 8 * (1 + 8 * 0x1p-11f) * 1.001f;
          break;
        case ElemType::MXFP4: // amax in [4s, 8s): saturation above 6s, or
          bound = amax / 4;   // half the gap 4s -> 6s
          break;
        default:
          break;
        }
        ASSERT_LE(err, bound) << elemTypeName(t).str() << " element "
                              << b * 32 + j << " value " << v;
      }
    }
  }
}

/// Check I32: exact for every i32 that a float holds; quantising truncates
/// and saturates.
TEST(FormatsTest, I32Conversions) {
  const int32_t ints[] = {0, -1, 7, 1 << 24, INT32_MIN};
  std::vector<uint8_t> b(sizeof ints);
  std::memcpy(b.data(), ints, sizeof ints);
  std::vector<float> y = dequantize(ElemType::I32, b, 5);
  EXPECT_EQ(y, (std::vector<float>{0, -1, 7, 16777216.0f, -2147483648.0f}));

  const float in[] = {1.9f, -1.9f, kNaN, 3e9f, -3e9f};
  int32_t out[5];
  quantizeRow(ElemType::I32, in, out, 5);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[1], -1);
  EXPECT_EQ(out[2], 0);
  EXPECT_EQ(out[3], INT32_MAX);
  EXPECT_EQ(out[4], INT32_MIN);
}

/// Check that F32 is a copy and that an empty row touches nothing.
TEST(FormatsTest, F32AndEmptyRows) {
  const float in[] = {1.5f, -kInf, 0x1p-140f};
  float out[3];
  quantizeRow(ElemType::F32, in, out, 3);
  EXPECT_EQ(std::memcmp(in, out, sizeof in), 0);
  for (ElemType t : {ElemType::F32, ElemType::Q8_0, ElemType::MXFP4}) {
    quantizeRow(t, nullptr, nullptr, 0);
    dequantizeRow(t, nullptr, nullptr, 0);
  }
}

} // namespace
