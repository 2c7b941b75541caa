//===- BindBench.h - Binding a real-size layer from a GGUF file -*- C++ -*-===//
//
// bind/<layer>/<type>: the time and the resident memory of binding a
// real-size layer from a GGUF file, as `moe-run --weights` binds it (weights
// packed at bind time). See BindBench.cpp for the counters.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "bench/Layers.h"

#include <string>

namespace moe::bench {

/// The layer's block as a one-block GGUF model at real size (`moe-gguf
/// tiny` with the layer's sizes and `wt` experts), written and synced to
/// `path`.
llvm::Error writeLayerModel(const LayerDesc &L, ElemType wt, const std::string &path);

/// Registers the bind/ benchmarks (bind/qwen3/q8_0 is in the default set).
void registerBindBenchmarks();

} // namespace moe::bench
