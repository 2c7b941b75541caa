//===- BindBench.h - Binding a real-size layer from a GGUF file -*- C++ -*-===//
//
// bind/<layer>/<type>: the time and the resident memory of binding a
// real-size layer from a GGUF file, as `moe-run --weights` binds it (weights
// packed at bind time). See BindBench.cpp for the counters.
//
//===----------------------------------------------------------------------===//
#pragma once

namespace moe::bench {

/// Registers the bind/ benchmarks (bind/qwen3/q8_0 is in the default set).
void registerBindBenchmarks();

} // namespace moe::bench
