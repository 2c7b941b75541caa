//===- InterpActivationTest.cpp - Interpreter: matmul activation precision ===//
//
// The `act` attribute of matmul/matmul_id (docs/IR.md, "Activation
// precision"): act = q8_0 with q8_0, q4_0 and mxfp4 weights built by hand
// from integer codes and scales, act = bf16 with bf16 weights, for matmul
// and matmul_id with T > 1. Expected values are computed by hand below; the
// last test checks that q8_0 activations differ from f32 ones by exactly
// what quantising x implies.
//
//===----------------------------------------------------------------------===//
#include "InterpTestUtil.h"

#include "runtime/Formats.h"

#include <cstring>

using namespace moe;
using namespace moe::test;

namespace {

/// One block of 32 weight codes and its scale (codes[i] * scale is element i).
struct HandBlock {
  float scale;
  std::vector<int> codes; // 32
};

/// Encodes hand blocks as type t: q8_0 and q4_0 store the scale as f16 and
/// the codes as int8 / nibble + 8; mxfp4 stores the scale as an E8M0 exponent
/// (scale = 2^(e - 128), a power of two) and each code as the index of its
/// value in kMxfp4Values.
Tensor handWeights(ElemType t, std::vector<int64_t> shape,
                   const std::vector<std::vector<HandBlock>> &rows) {
  Tensor w;
  w.elem = t;
  w.shape = std::move(shape);
  for (auto &row : rows)
    for (auto &b : row) {
      std::vector<uint8_t> blk(blockBytes(t));
      if (t == ElemType::MXFP4) {
        blk[0] = (uint8_t)(std::lround(std::log2(b.scale)) + 128);
        EXPECT_EQ(e8m0ToF32Half(blk[0]), b.scale);
      } else {
        uint16_t d = f32ToF16(b.scale);
        std::memcpy(blk.data(), &d, 2);
      }
      auto code = [&](int v) -> uint8_t {
        if (t == ElemType::Q4_0)
          return (uint8_t)(v + 8);
        for (uint8_t j = 0; j < 16; ++j)
          if (kMxfp4Values[j] == v)
            return j;
        ADD_FAILURE() << v << " is not an mxfp4 value";
        return 0;
      };
      for (int i = 0; i < 32; ++i) {
        if (t == ElemType::Q8_0)
          blk[2 + i] = (uint8_t)(int8_t)b.codes[i];
        else if (i < 16)
          blk[(t == ElemType::Q4_0 ? 2 : 1) + i] =
              code(b.codes[i]) | (uint8_t)(code(b.codes[i + 16]) << 4);
      }
      w.raw.insert(w.raw.end(), blk.begin(), blk.end());
    }
  EXPECT_FALSE((bool)w.validate());
  return w;
}

std::vector<int> codes(std::initializer_list<std::pair<int, int>> nonzero, int rest = 0) {
  std::vector<int> c(32, rest);
  for (auto [i, v] : nonzero)
    c[i] = v;
  return c;
}

// Two weight rows of K = 64 (two blocks each), codes representable in every
// block type (q4_0: [-8, 7]; mxfp4: 0, +-1, 2, 3, 4, 6, 8, 12), scales powers
// of two so that f16 and E8M0 hold them exactly.
//   W0: block 0 scale 0.5,  codes w[0..3] = 2, -1, 3, 4, w[16] = 3, w[31] = -8
//       block 1 scale 0.25, codes w[0..2] = 1, 6, -4, w[31] = 4
//   W1: block 0 scale 0.5, every code 1; block 1 scale 0.25, every code -1
const std::vector<HandBlock> kW0 = {
    {0.5f, codes({{0, 2}, {1, -1}, {2, 3}, {3, 4}, {16, 3}, {31, -8}})},
    {0.25f, codes({{0, 1}, {1, 6}, {2, -4}, {31, 4}})}};
const std::vector<HandBlock> kW1 = {{0.5f, codes({}, 1)}, {0.25f, codes({}, -1)}};

// Two activation rows of K = 64.
//   x0: block 0 = 127, 63.5, -63.5 at 0..2, -31.5 at 16: amax 127, d = 1,
//       q = 127, 64, -64, -32 (roundf rounds the .5 away from zero);
//       block 1 all zero: d = 0, q = 0.
//   x1: block 0 = -31.75, 1.125, -0.375, 0.625 at 0..3, 0.875 at 16: amax
//       31.75, d = 0.25, x * 4 = -127, 4.5, -1.5, 2.5, 3.5 ->
//       q = -127, 5, -2, 3, 4 (negative values, ties away from zero);
//       block 1 = 254, -3, 5 at 0..2: d = 2, q = 127, -2, 3 (-1.5 -> -2).
std::vector<float> activations() {
  std::vector<float> x(2 * 64, 0.0f);
  x[0] = 127, x[1] = 63.5f, x[2] = -63.5f, x[16] = -31.5f;
  float *x1 = x.data() + 64;
  x1[0] = -31.75f, x1[1] = 1.125f, x1[2] = -0.375f, x1[3] = 0.625f, x1[16] = 0.875f;
  x1[32] = 254, x1[33] = -3, x1[34] = 5;
  return x;
}

// Per block: sumi = sum q_i * w_i, s = dx * dw, result sum s * sumi.
//   x0.W0: (127*2 - 64 - 64*3 - 32*3) * (1 * 0.5) + 0        = -98 * 0.5  = -49
//   x0.W1: (127 + 64 - 64 - 32) * 0.5 + 0                    =  95 * 0.5  = 47.5
//   x1.W0: (-254 - 5 - 6 + 12 + 12) * 0.125 + (127 - 12 - 12) * 0.5
//        = -241 * 0.125 + 103 * 0.5                          = 21.375
//   x1.W1: (-127 + 5 - 2 + 3 + 4) * 0.125 - (127 - 2 + 3) * 0.5
//        = -117 * 0.125 - 128 * 0.5                          = -78.625
const std::vector<double> kQ8 = {-49, 47.5, 21.375, -78.625};
// The same with f32 activations (the exact products with the decoded
// weights): x0.W0 = 127 - 31.75 - 95.25 - 47.25 = -47.25, x0.W1 = 0.5 *
// (127 + 63.5 - 63.5 - 31.5) = 47.75; x1.W0 = 23.6875, x1.W1 = -78.75.
// x0.W0 differs by -1.75 = 0.5 * (-0.5) - 0.5 * 1.5 - 0.5 * 1.5: the three
// ties rounded away from zero, times their weights.
const std::vector<double> kF32 = {-47.25, 47.75, 23.6875, -78.75};

const ElemType kBlockTypes[] = {ElemType::Q8_0, ElemType::Q4_0, ElemType::MXFP4};

TEST(InterpActivation, MatmulQ8_0EveryBlockType) {
  for (ElemType t : kBlockTypes) {
    SCOPED_TRACE(elemTypeName(t).str());
    std::string ty = elemTypeName(t).str();
    std::string text = "func @f(%x: tensor<T x 64 x f32>, %w: tensor<2 x 64 x " + ty +
                       "> {param})\n    -> tensor<T x 2 x f32>, tensor<T x 2 x f32> "
                       "where T in [1, 8] {\n"
                       "  %q = matmul %x, %w {act = q8_0}\n"
                       "  %e = matmul %x, %w\n"
                       "  return %q, %e\n}";
    auto r = run(text, {F({2, 64}, activations()), handWeights(t, {2, 64}, {kW0, kW1})},
                 {{"T", 2}});
    ASSERT_EQ(r.size(), 2u);
    expectF(r[0], {2, 2}, kQ8);
    expectF(r[1], {2, 2}, kF32);
  }
}

TEST(InterpActivation, MatmulIdQ8_0EveryBlockType) {
  for (ElemType t : kBlockTypes) {
    SCOPED_TRACE(elemTypeName(t).str());
    std::string text = "func @f(%x: tensor<T x 1 x 64 x f32>, %w: tensor<2 x 2 x 64 x " +
                       elemTypeName(t).str() +
                       "> {param},\n        %ids: tensor<T x 2 x i32>)\n"
                       "    -> tensor<T x 2 x 2 x f32> where T in [1, 8] {\n"
                       "  %y = matmul_id %x, %w, %ids {act = q8_0}\n  return %y\n}";
    // Expert 0 = [W1, W0], expert 1 = [W0, W1]; ids = [[1, 0], [0, 1]].
    Tensor w = handWeights(t, {2, 2, 64}, {kW1, kW0, kW0, kW1});
    Tensor y = run1(text, {F({2, 1, 64}, activations()), w, I({2, 2}, {1, 0, 0, 1})},
                    {{"T", 2}});
    expectF(y, {2, 2, 2},
            {kQ8[0], kQ8[1], kQ8[1], kQ8[0], kQ8[3], kQ8[2], kQ8[2], kQ8[3]});
  }
}

// bf16 activations: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 and goes to the
// even 1; 1 + 3 * 2^-8 a tie going to the even 1 + 2^-6 = 1.015625;
// -(1 + 2^-8 + 2^-16) is past the tie, -(1 + 2^-7) = -1.0078125; 3 is exact.
const std::vector<float> kBf16X = {1 + 0x1p-8f, 1 + 3 * 0x1p-8f, -(1 + 0x1p-8f + 0x1p-16f), 3};
// Weights [1, 2, -1, 0.5] and [0.5, -0.25, 2, 1]:
//   1 + 2 * 1.015625 + 1.0078125 + 1.5            = 5.5390625
//   0.5 - 0.25 * 1.015625 - 2 * 1.0078125 + 3     = 1.23046875
// (with f32 activations: 5.53126525878906, 1.24118041992188).
const std::vector<float> kBf16W = {1, 2, -1, 0.5f, 0.5f, -0.25f, 2, 1};

TEST(InterpActivation, MatmulBf16) {
  const char *text = R"(
func @f(%x: tensor<T x 4 x f32>, %w: tensor<2 x 4 x bf16> {param})
    -> tensor<T x 2 x f32>, tensor<T x 2 x f32> where T in [1, 8] {
  %b = matmul %x, %w {act = bf16}
  %e = matmul %x, %w
  return %b, %e
})";
  // Row 1 holds a NaN, which stays a NaN through the bf16 rounding.
  std::vector<float> x = kBf16X;
  x.insert(x.end(), {1, std::nanf(""), 0, 0});
  auto r = run(text, {F({2, 4}, x), F({2, 4}, kBf16W, ElemType::BF16)}, {{"T", 2}});
  ASSERT_EQ(r.size(), 2u);
  double nan = std::nan("");
  expectF(r[0], {2, 2}, {5.5390625, 1.23046875, nan, nan});
  expectF(r[1], {2, 2}, {5.53126525878906, 1.24118041992188, nan, nan}, 1e-7);
}

TEST(InterpActivation, MatmulIdBf16) {
  const char *text = R"(
func @f(%x: tensor<T x 2 x 4 x f32>, %w: tensor<2 x 1 x 4 x bf16> {param},
        %ids: tensor<T x 2 x i32>) -> tensor<T x 2 x 1 x f32> where T in [1, 8] {
  %y = matmul_id %x, %w, %ids {act = bf16}
  return %y
})";
  // B = k: token 0 slot 0 = kBf16X, the others a row that bf16 holds exactly.
  std::vector<float> x = kBf16X;
  for (int r = 0; r < 3; ++r)
    x.insert(x.end(), {1, 2, 3, 4});
  Tensor y = run1(text, {F({2, 2, 4}, x), F({2, 1, 4}, kBf16W, ElemType::BF16),
                         I({2, 2}, {0, 1, 1, 0})},
                  {{"T", 2}});
  // [1,2,3,4].W0 = 1 + 4 - 3 + 2 = 4; [1,2,3,4].W1 = 0.5 - 0.5 + 6 + 4 = 10.
  expectF(y, {2, 2, 1}, {5.5390625, 10, 10, 4});
}

/// act = q8_0 changes the result by exactly the quantisation of x: it equals
/// the f32-activation matmul of x' = dequantize(quantize_q8_0(x)) (up to the
/// order of the double sum), and differs from the one of x by at most
/// sum_k |x_k - x'_k| |w_k|.
TEST(InterpActivation, Q8_0DiffersByTheQuantisationOfX) {
  const int64_t M = 3, N = 5, K = 128;
  std::vector<float> x(M * K), w(N * K);
  for (int64_t i = 0; i < M * K; ++i)
    x[i] = std::sin(0.7 * i) * (i % 32 == 5 ? 4.0 : 1.0) * (i / K + 1);
  for (int64_t i = 0; i < N * K; ++i)
    w[i] = std::cos(0.3 * i + 1);
  // x' row by row through ggml's reference quantiser.
  std::vector<float> xq(M * K);
  std::vector<uint8_t> blocks(rowBytes(ElemType::Q8_0, K));
  for (int64_t m = 0; m < M; ++m) {
    quantizeRow(ElemType::Q8_0, x.data() + m * K, blocks.data(), K);
    dequantizeRow(ElemType::Q8_0, blocks.data(), xq.data() + m * K, K);
  }
  for (ElemType t : kBlockTypes) {
    SCOPED_TRACE(elemTypeName(t).str());
    std::string text = "func @f(%x: tensor<3 x 128 x f32>, %xq: tensor<3 x 128 x f32>, "
                       "%w: tensor<5 x 128 x " +
                       elemTypeName(t).str() +
                       "> {param})\n    -> tensor<3 x 5 x f32>, tensor<3 x 5 x f32>, "
                       "tensor<3 x 5 x f32> {\n"
                       "  %q = matmul %x, %w {act = q8_0}\n"
                       "  %e = matmul %x, %w\n"
                       "  %d = matmul %xq, %w\n"
                       "  return %q, %e, %d\n}";
    Tensor wt = F({N, K}, w, t);
    std::vector<float> wd = wt.toF32();
    auto r = run(text, {F({M, K}, x), F({M, K}, xq), wt});
    ASSERT_EQ(r.size(), 3u);
    int differ = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        float q = r[0].f[m * N + n], e = r[1].f[m * N + n], d = r[2].f[m * N + n];
        double mag = 0, bound = 0;
        for (int64_t k = 0; k < K; ++k) {
          mag += std::fabs(xq[m * K + k] * wd[n * K + k]);
          bound += std::fabs(x[m * K + k] - xq[m * K + k]) * std::fabs(wd[n * K + k]);
        }
        EXPECT_NEAR(q, d, 0x1p-24 * mag) << m << ", " << n;
        EXPECT_LE(std::fabs(q - e), bound + 0x1p-23 * mag) << m << ", " << n;
        differ += q != e;
      }
    EXPECT_GT(differ, M * N / 2);
  }
}

} // namespace
