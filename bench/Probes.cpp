//===- Probes.cpp - The machine's FMA and int8 peaks, DRAM read bandwidth ===//
#include "bench/Probes.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

using namespace moe::bench;

namespace {
using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The probes are written once over GCC vector types and compiled twice,
// for AVX-512 (zmm) and for AVX2 (ymm): the generic bodies are inlined into
// the callers, each compiled for its instruction set.
typedef float Floats16 __attribute__((vector_size(64)));
typedef float Floats8 __attribute__((vector_size(32)));

template <typename V> constexpr int kLanes = sizeof(V) / sizeof(float);

template <typename V> [[gnu::always_inline]] inline float sumLanes(const V &v) {
  float s = 0;
  for (int k = 0; k < kLanes<V>; ++k)
    s += v[k];
  return s;
}

constexpr int kChains = 12; // independent FMA chains per thread (>= 2 pipes x latency 4)

/// `iters` rounds of kChains independent a = a * b + c (one vfmadd each:
/// GNU C++ contracts the multiply-add).
template <typename V> [[gnu::always_inline]] inline float fmaChains(int64_t iters) {
  V a[kChains];
  for (int j = 0; j < kChains; ++j)
    a[j] = V{} + 0.001f * (float)(j + 1);
  const V b = V{} + 0.9999999f, c = V{} + 1e-7f;
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j)
      a[j] = a[j] * b + c;
  }
  for (int j = 1; j < kChains; ++j)
    a[0] += a[j];
  return sumLanes(a[0]);
}

/// The sum of n floats (n a multiple of 8 vectors) through 8 independent
/// accumulators.
template <typename V> [[gnu::always_inline]] inline float sumVectors(const float *p, int64_t n) {
  constexpr int kAcc = 8;
  V a[kAcc] = {};
  for (int64_t i = 0; i < n; i += kAcc * kLanes<V>)
#pragma GCC unroll 8
    for (int j = 0; j < kAcc; ++j)
      a[j] += *reinterpret_cast<const V *>(p + i + j * kLanes<V>);
  for (int j = 1; j < kAcc; ++j)
    a[0] += a[j];
  return sumLanes(a[0]);
}

__attribute__((target("avx512f"))) float fmaChains512(int64_t iters) {
  return fmaChains<Floats16>(iters);
}
__attribute__((target("avx2,fma"))) float fmaChains256(int64_t iters) {
  return fmaChains<Floats8>(iters);
}
__attribute__((target("avx512f"))) float sum512(const float *p, int64_t n) {
  return sumVectors<Floats16>(p, n);
}
__attribute__((target("avx2"))) float sum256(const float *p, int64_t n) {
  return sumVectors<Floats8>(p, n);
}

/// `iters` rounds of the q8_0 kernels' inner step on this host, as the
/// JIT emits it (codegen/KernelsMatmulPacked.cpp), in assembly so that no
/// compiler hoists the loop-invariant products: per round two weight
/// vectors (from L1), each met by 3 broadcast activation quads, the AVX2
/// kernel's register tile (8 rows x 3 activation rows) twice. AVX2: |w|,
/// then per token sign(x, w), vpmaddubsw, vpmaddwd by ones, vpaddd: 6 x 32
/// byte products. AVX-512 VNNI: one vpdpbusd per token: 6 x 64 products.
///
/// One AVX2 token: the activation quad at byte OFF of x broadcast into
/// ymmT, signed by weight vector ymmW, multiplied with its |w| (ymmA),
/// widened by ymm12 and added to accumulator ymmACC.
#define MOE_Q8_AVX2_TOKEN(OFF, T, W, A, ACC)                                                  \
  "vpbroadcastd " OFF "(%0), %%ymm" T "\n vpsignb %%ymm" W ", %%ymm" T ", %%ymm" T "\n"        \
  "vpmaddubsw %%ymm" T ", %%ymm" A ", %%ymm" T "\n vpmaddwd %%ymm12, %%ymm" T ", %%ymm" T "\n" \
  "vpaddd %%ymm" T ", %%ymm" ACC ", %%ymm" ACC "\n"
__attribute__((target("avx2"))) void int8Steps256(int64_t iters, const void *w, const void *x) {
  for (int64_t i = 0; i < iters; ++i)
    __asm__ volatile("vmovdqa (%1), %%ymm15\n vpabsb %%ymm15, %%ymm14\n"
                     MOE_Q8_AVX2_TOKEN("", "13", "15", "14", "0")
                     MOE_Q8_AVX2_TOKEN("4", "11", "15", "14", "1")
                     MOE_Q8_AVX2_TOKEN("8", "10", "15", "14", "2")
                     "vmovdqa 32(%1), %%ymm9\n vpabsb %%ymm9, %%ymm8\n"
                     MOE_Q8_AVX2_TOKEN("12", "7", "9", "8", "3")
                     MOE_Q8_AVX2_TOKEN("16", "6", "9", "8", "4")
                     MOE_Q8_AVX2_TOKEN("20", "13", "9", "8", "5")
                     :
                     : "r"(x), "r"(w)
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                       "xmm9", "xmm10", "xmm11", "xmm13", "xmm14", "xmm15", "memory");
}
#undef MOE_Q8_AVX2_TOKEN
/// One VNNI token: the quad at byte OFF of x broadcast into zmmT, its
/// products with weight vector zmmW added to accumulator zmmACC.
#define MOE_Q8_VNNI_TOKEN(OFF, T, W, ACC)                                                     \
  "vpbroadcastd " OFF "(%0), %%zmm" T "\n vpdpbusd %%zmm" T ", %%zmm" W ", %%zmm" ACC "\n"
__attribute__((target("avx512f,avx512vnni"))) void int8Steps512(int64_t iters, const void *w,
                                                               const void *x) {
  for (int64_t i = 0; i < iters; ++i)
    __asm__ volatile("vmovdqa64 (%1), %%zmm15\n vmovdqa64 64(%1), %%zmm14\n"
                     MOE_Q8_VNNI_TOKEN("", "13", "15", "0")
                     MOE_Q8_VNNI_TOKEN("4", "12", "15", "1")
                     MOE_Q8_VNNI_TOKEN("8", "11", "15", "2")
                     MOE_Q8_VNNI_TOKEN("12", "10", "14", "3")
                     MOE_Q8_VNNI_TOKEN("16", "9", "14", "4")
                     MOE_Q8_VNNI_TOKEN("20", "8", "14", "5")
                     :
                     : "r"(x), "r"(w)
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm8", "xmm9", "xmm10",
                       "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory");
}
#undef MOE_Q8_VNNI_TOKEN

} // namespace

/// The shortest wall time of 3 trials of `body(t)` on `threads` threads
/// t, started together once all are ready.
template <typename F> static double shortestOf3(unsigned threads, F body) {
  double best = 0;
  for (int trial = 0; trial < 3; ++trial) {
    std::atomic<unsigned> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire))
          ;
        body(t);
      });
    while (ready.load() != threads)
      ;
    auto t0 = Clock::now();
    go.store(true, std::memory_order_release);
    for (auto &t : ts)
      t.join();
    double s = secondsSince(t0);
    best = trial == 0 ? s : std::min(best, s);
  }
  return best;
}

/// The q8_0 inner step's GOP/s (2 per byte product) over `threads` threads
/// (best of 3).
double moe::bench::measureInt8Peak(unsigned threads) {
  bool vnni = __builtin_cpu_supports("avx512vnni");
  if (!vnni && !__builtin_cpu_supports("avx2"))
    return 0;
  const int64_t iters = 20'000'000;
  alignas(64) static const int8_t w[128] = {1, -2, 3, -4};
  alignas(64) static const int8_t x[64] = {5, -6, 7, -8};
  double s = shortestOf3(threads, [&](unsigned) {
    vnni ? int8Steps512(iters, w, x) : int8Steps256(iters, w, x);
  });
  return 2.0 * 6 * (vnni ? 64 : 32) * (double)iters * threads / s / 1e9;
}

/// FP32 FMA GFLOP/s over `threads` threads, all running together (best of 3).
double moe::bench::measureFmaPeak(unsigned threads) {
  bool avx512 = __builtin_cpu_supports("avx512f");
  int lanes = avx512 ? 16 : 8;
  const int64_t iters = 50'000'000;
  std::vector<float> sink(threads);
  double s = shortestOf3(threads, [&](unsigned t) {
    sink[t] = avx512 ? fmaChains512(iters) : fmaChains256(iters);
  });
  benchmark::DoNotOptimize(sink.data());
  return 2.0 * lanes * kChains * (double)iters * threads / s / 1e9;
}

/// Streaming-read GB/s (1e9 bytes) over a 1 GiB float array (best of 3
/// passes after the first touch): with 1 thread (the per-benchmark reference)
/// and, for the context line only, with `threads` threads each summing a slice.
std::pair<double, double> moe::bench::measureDramRead(unsigned threads) {
  const size_t bytes = size_t(1) << 30;
  const int64_t n = (int64_t)(bytes / sizeof(float));
  float *p = static_cast<float *>(std::aligned_alloc(64, bytes));
  if (!p)
    return {0, 0};
  for (int64_t i = 0; i < n; ++i) // first touch, and values that stay finite
    p[i] = (float)(i & 1023) * 1e-3f;
  bool avx512 = __builtin_cpu_supports("avx512f");
  auto sum = [&](const float *q, int64_t m) { return avx512 ? sum512(q, m) : sum256(q, m); };
  double best1 = 0, bestN = 0;
  for (int pass = 0; pass < 3; ++pass) {
    auto t0 = Clock::now();
    float s = sum(p, n);
    double secs = secondsSince(t0);
    benchmark::DoNotOptimize(s);
    best1 = std::max(best1, (double)bytes / secs / 1e9);
  }
  const int64_t slice = n / threads / 128 * 128; // whole 128-float steps
  for (int pass = 0; pass < 3 && threads > 1; ++pass) {
    std::vector<float> sink(threads);
    std::vector<std::thread> ts;
    auto t0 = Clock::now();
    for (unsigned t = 0; t < threads; ++t)
      ts.emplace_back([&, t] { sink[t] = sum(p + t * slice, slice); });
    for (auto &t : ts)
      t.join();
    double secs = secondsSince(t0);
    benchmark::DoNotOptimize(sink.data());
    bestN = std::max(bestN, (double)(slice * threads * sizeof(float)) / secs / 1e9);
  }
  std::free(p);
  return {best1, threads > 1 ? bestN : best1};
}
