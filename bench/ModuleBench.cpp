//===- ModuleBench.cpp - Compiling a whole model's 48 blocks --------------===//
//
// compile/module48/{pipeline,cold,warm}: the module `moe-import --all` makes
// of a 48-block model with Qwen3-30B-A3B's sizes and q8_0 experts (#19:
// "whole models compile in a blink"). One block is written at real size
// (`moe-gguf tiny`, as bind/ does: bench/BindBench.h) and imported
// (`moe-import --layer 0`); its function is repeated for blocks 0..47 with
// each block's function and tensor names, the text `--all` writes for 48
// blocks of that shape (a 48-block file at real size would be 31 GB).
//
//   pipeline  parse + verify + the `default` pipeline over the 48 functions
//   cold      Executable::compileAll of the 48, object cache off
//   warm      the same with the cache on, after one compile that filled it
//
// Counters: median_ms; functions; kernels (the steps' kernels over the 48
// functions); kernels_shared (left out as identical to one kept:
// codegen/ShareKernels.h); modules_compiled / modules_from_cache.
//
//===----------------------------------------------------------------------===//
#include "bench/BindBench.h"
#include "bench/Layers.h"
#include "bench/ModuleBench.h"

#include "io/Gguf.h"
#include "ir/Parser.h"
#include "runtime/Executable.h"
#include "tools/lib/Importer.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <unistd.h>

using namespace moe;
using namespace moe::bench;

namespace {

constexpr int kBlocks = 48;

/// The 48-block module's text, made once per process.
llvm::Expected<std::string> moduleText() {
  static std::string text;
  if (!text.empty())
    return text;
  llvm::SmallString<128> path;
  llvm::sys::path::system_temp_directory(true, path);
  llvm::sys::path::append(path, "moe-module48-" + std::to_string(getpid()) + ".gguf");
  std::string file = path.str().str();
  const LayerDesc &L = kLayers[0]; // qwen3
  if (auto e = writeLayerModel(L, ElemType::Q8_0, file))
    return e;
  auto g = gguf::GgufFile::open(file);
  llvm::sys::fs::remove(file); // the mapping stays valid
  if (!g)
    return g.takeError();
  auto block = importLayer(**g, 0);
  if (!block)
    return block.takeError();
  for (int b = 0; b < kBlocks; ++b) {
    std::string t = *block;
    t = llvm::join(llvm::split(t, "@ffn_blk_0("), ("@ffn_blk_" + std::to_string(b) + "(").c_str());
    t = llvm::join(llvm::split(t, "\"blk.0."), ("\"blk." + std::to_string(b) + ".").c_str());
    text += (b ? "\n" : "") + t;
  }
  return text;
}

llvm::Expected<std::unique_ptr<Module>> pipelined(const std::string &text) {
  auto m = parseModuleString(text, "module48");
  if (!m)
    return m.takeError();
  if (auto e = runDefaultPipeline(**m))
    return e;
  return m;
}

enum class Phase { Pipeline, Cold, Warm };

void BM_Module(benchmark::State &state, Phase phase) {
  auto fail = [&](llvm::Error e) {
    std::string m = errStr(std::move(e));
    state.SkipWithError(m.c_str());
  };
  auto text = moduleText();
  if (!text)
    return fail(text.takeError());
  std::vector<double> times;
  if (phase == Phase::Pipeline) {
    for (auto _ : state) {
      auto t0 = Clock::now();
      auto m = pipelined(*text);
      double s = secondsSince(t0);
      if (!m)
        return fail(m.takeError());
      state.SetIterationTime(s);
      times.push_back(s);
    }
    state.counters["median_ms"] = median(times) * 1e3;
    state.counters["functions"] = kBlocks;
    return;
  }
  auto m = pipelined(*text);
  if (!m)
    return fail(m.takeError());
  std::vector<const Function *> fs;
  for (auto &f : (*m)->functions)
    fs.push_back(f.get());
  ExecOptions eo = benchExecOptions();
  eo.jit.useCache = phase == Phase::Warm;
  if (phase == Phase::Warm) // fill the cache
    if (auto x = Executable::compileAll(fs, eo); !x)
      return fail(x.takeError());
  unsigned kernels = 0, shared = 0, compiled = 0, fromCache = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto x = Executable::compileAll(fs, eo);
    double s = secondsSince(t0);
    if (!x)
      return fail(x.takeError());
    state.SetIterationTime(s);
    times.push_back(s);
    kernels = 0;
    for (auto &e : *x)
      kernels += e->numKernels();
    shared = x->front()->kernelsShared();
    compiled = x->front()->jitStats().modulesCompiled;
    fromCache = x->front()->jitStats().modulesFromCache;
  }
  state.counters["median_ms"] = median(times) * 1e3;
  state.counters["functions"] = (double)fs.size();
  state.counters["kernels"] = kernels;
  state.counters["kernels_shared"] = shared;
  state.counters["modules_compiled"] = compiled;
  state.counters["modules_from_cache"] = fromCache;
}

} // namespace

void moe::bench::registerModuleBenchmarks() {
  for (auto [name, phase] : {std::pair{"pipeline", Phase::Pipeline}, std::pair{"cold", Phase::Cold},
                             std::pair{"warm", Phase::Warm}})
    benchmark::RegisterBenchmark((std::string("compile/module48/") + name).c_str(),
                                 [phase](benchmark::State &s) { BM_Module(s, phase); })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
}
