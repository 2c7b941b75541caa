//===- ModuleBench.h - Compiling a whole model's 48 blocks ------*- C++ -*-===//
//
// compile/module48/{pipeline,cold,warm}: the `default` pipeline and the
// compile of the 48-function module `moe-import --all` writes for a
// Qwen3-30B-A3B-sized model. See ModuleBench.cpp.
//
//===----------------------------------------------------------------------===//
#pragma once

namespace moe::bench {

/// Registers the compile/module48/ benchmarks (in the default set).
void registerModuleBenchmarks();

} // namespace moe::bench
