//===- Probes.h - The machine's peaks and DRAM read bandwidth ---*- C++ -*-===//
//
// What the benchmark's fractions are fractions of, measured in the same run
// (bench/MoeLayerBench.cpp): the FP32 FMA peak (independent vfmadd chains on
// zmm, or ymm without AVX-512, one std::thread per JIT thread), the int8
// kernels' inner step (q8_0) and the streaming-read bandwidth of a 1 GiB
// float array.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <utility>

namespace moe::bench {

/// FP32 FMA GFLOP/s over `threads` threads, all running together (best of 3).
double measureFmaPeak(unsigned threads);

/// GOP/s (2 per byte product) of the q8_0 kernels' inner step on this
/// host (AVX-512 VNNI's vpdpbusd, else AVX2's sign, vpmaddubsw, vpmaddwd,
/// vpaddd; 0 without AVX2) over `threads` threads (best of 3): the ceiling
/// of the int8 dot products before any scale, load or loop overhead.
double measureInt8Peak(unsigned threads);

/// Streaming-read GB/s (1e9 bytes) over a 1 GiB float array (best of 3
/// passes after the first touch): with 1 thread (the per-benchmark reference)
/// and, for the context line only, with `threads` threads each summing a slice.
std::pair<double, double> measureDramRead(unsigned threads);

} // namespace moe::bench
