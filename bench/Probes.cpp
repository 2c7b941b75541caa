//===- Probes.cpp - The machine's FMA peak and DRAM read bandwidth -------===//
#include "bench/Probes.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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

} // namespace

/// FP32 FMA GFLOP/s over `threads` threads, all running together (best of 3).
double moe::bench::measureFmaPeak(unsigned threads) {
  bool avx512 = __builtin_cpu_supports("avx512f");
  int lanes = avx512 ? 16 : 8;
  const int64_t iters = 50'000'000;
  double best = 0;
  for (int trial = 0; trial < 3; ++trial) {
    std::atomic<unsigned> ready{0};
    std::atomic<bool> go{false};
    std::vector<float> sink(threads);
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire))
          ;
        sink[t] = avx512 ? fmaChains512(iters) : fmaChains256(iters);
      });
    while (ready.load() != threads)
      ;
    auto t0 = Clock::now();
    go.store(true, std::memory_order_release);
    for (auto &t : ts)
      t.join();
    double s = secondsSince(t0);
    benchmark::DoNotOptimize(sink.data());
    double flops = 2.0 * lanes * kChains * (double)iters * threads;
    best = std::max(best, flops / s / 1e9);
  }
  return best;
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
