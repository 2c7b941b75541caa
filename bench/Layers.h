//===- Layers.h - The benchmark's layers, built once per weight type -*- C++ -*-===//
//
// The model-shaped layers the benchmark runs (examples/*.moe) and how one is
// made ready to run: parsed, verified, its expert weights retyped
// (runtime/WeightType.h), the `default` pipeline run and JIT-compiled; its
// params generated (runtime/Random.h) and kept in their stored layout; its
// inputs built; and the experts each token picks computed on the host (a
// router of the benchmark's own, for the weight_gbps counter) from the same
// inputs and router weights.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/ElemType.h"
#include "ir/IR.h"
#include "runtime/Executable.h"
#include "runtime/Tensor.h"

#include "llvm/Support/Error.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moe::bench {

using Clock = std::chrono::steady_clock;
inline double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
inline std::string errStr(llvm::Error e) { return llvm::toString(std::move(e)); }
/// The median of `v` (0 when empty).
double median(std::vector<double> v);
/// Runs the `default` pipeline over `m`.
llvm::Error runDefaultPipeline(Module &m);

/// The benchmark's own flags (--moe_threads, --moe_perf, --moe_seed,
/// --moe_examples, --moe_profile) and the probes measured at start-up.
struct Settings {
  unsigned threads = 0;  ///< JIT worker threads (0: every core)
  bool perf = false;     ///< register the JIT's code with perf (jitdump)
  uint64_t seed = 1;
  std::string examples;  ///< directory of the .moe files
  bool profile = false;  ///< print each layer benchmark's per-kernel profile
  uint64_t flushMiB = 0;  ///< read this many MiB before each timed run (0: none)
  std::string cpu;        ///< the CPU the JIT generates code for (empty: the host)
  double fmaPeakGflops = 0; ///< measured at start-up
};
extern Settings gSettings;

/// gSettings.threads, or every core.
unsigned effectiveThreads();

/// The options every benchmark compiles with: gSettings' thread count and
/// target CPU (--moe_threads, --moe_cpu).
ExecOptions benchExecOptions();

constexpr int64_t kVariants = 16; ///< different random inputs, cycled
constexpr int64_t kMaxT = 512;    ///< inputs are built for the largest T once

struct LayerDesc {
  const char *name;
  const char *file;
  // Hard-coded from the config.json sizes cited in each example file (and
  // checked against the IR's types when the layer is built).
  int64_t nEmbd, nFf, nExpert, nUsed;
};

inline const LayerDesc kLayers[] = {
    {"qwen3", "qwen3.moe", 2048, 768, 128, 8},   // Qwen3-30B-A3B
    {"gptoss", "gptoss.moe", 2880, 2880, 32, 4}, // gpt-oss-20b
    {"gemma4", "gemma4.moe", 2816, 704, 128, 8}, // Gemma-4-26B-A4B
};
/// Parses, verifies, retypes the expert weights to `wt` (when given) and runs
/// the `default` pipeline.
llvm::Expected<std::unique_ptr<Module>> loadLayer(const LayerDesc &L,
                                                  std::optional<ElemType> wt);

/// One (layer, weight type): the compiled layer, its params in their stored
/// layout, kVariants inputs of kMaxT tokens and the experts each token picks.
struct Built {
  std::string error;
  const LayerDesc *layer = nullptr;
  ElemType wt = ElemType::F32;
  std::unique_ptr<Module> module;
  std::unique_ptr<Executable> exe;
  /// RunOptions::paramsVersion of the bound weights (new for each setup).
  uint64_t paramsVersion = Executable::newParamsVersion();
  std::vector<Tensor> params;                ///< kept alive (f32, i32, blocks)
  std::vector<std::vector<uint16_t>> halves; ///< f16/bf16 params, stored layout
  std::vector<const void *> argPtr;          ///< per argument: param data or null
  struct Input {
    unsigned arg;
    int64_t rowElems; ///< elements of one token
    std::vector<float> data; ///< kVariants x kMaxT tokens
  };
  std::vector<Input> inputs;
  std::vector<std::vector<int32_t>> ids; ///< per variant: kMaxT x nUsed experts
  int64_t expertBytes = 0; ///< one expert's gate, up and down weights
  int64_t routerBytes = 0;
  double buildSeconds = 0;

  /// Distinct experts of the first T tokens, mean over the variants.
  double meanDistinctExperts(int64_t T) const {
    double sum = 0;
    for (auto &v : ids) {
      std::vector<char> seen(layer->nExpert, 0);
      int64_t n = 0;
      for (int64_t k = 0; k < T * layer->nUsed; ++k)
        if (!seen[v[k]]) {
          seen[v[k]] = 1;
          ++n;
        }
      sum += (double)n;
    }
    return ids.empty() ? 0 : sum / (double)ids.size();
  }
};

/// The built layer of (layer, type), kLayers[layer] with expert weights of
/// type `wt`; Built::error says why when it could not be built. Only the
/// pair last asked for is kept (real-size weights take GBs).
Built *getBuilt(int layer, ElemType wt);

} // namespace moe::bench
