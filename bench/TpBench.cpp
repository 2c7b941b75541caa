//===- TpBench.cpp - The layers split over 2 in-process ranks -------------===//
//
// moe_tp2/<layer>/<type>/T:<n>/<delay|nodelay>, layer qwen3|gptoss|gemma4,
// type f32|bf16|q8_0|q4_0|mxfp4, T 1|32|128|512: the real-size layer of
// MoeLayerBench after `default,tp-split{ranks=2}`, followed by
// `delay-allreduce` for `delay` (the all_reduce moved past the routing
// weights and the sum over the experts) and not for `nodelay` (one
// all_reduce of the experts' partial outputs, k times the bytes). Not in the
// default filter: e.g. --benchmark_filter='moe_tp2/gemma4/q8_0/'.
//
// Setup, once per (layer, type, delay): the whole params are generated
// (runtime/Random.h, the benchmark's seed) and each rank's shards cut by a
// Binder (runtime/Binder.h), kept in their stored layout; inputs as in
// MoeLayerBench (16 random inputs of 512 tokens, cycled). Timing: each
// iteration runs both ranks at once, one thread each and each its own
// WorkerPool of --moe_threads / 2 threads (at least 1), the all_reduce
// through the in-process communicator; the time is the wall time of both
// (a thread start per rank included, tens of microseconds). The weights are
// repacked once, in the warm-up.
//
// Counters:
//   median_ms        median wall time of one run of both ranks
//   gflops           2 x T x n_used x 3 x n_embd x n_ff / median (as moe/)
//   weight_gbps      expert and router weight bytes both ranks read in a run
//                    (counted by a Profile over 4 runs after the timed loop:
//                    the rows of the experts each matmul_id's ids select),
//                    over the median
//   allreduce_bytes  bytes each rank contributes to all_reduce in one run
//   arena_bytes      the memory plan's peak of one rank
//   frac_fma_peak    gflops / the FMA peak of the JIT's threads
//   threads_per_rank
// With --moe_profile=1 the profile's table is printed to standard error.
//
//===----------------------------------------------------------------------===//
#include "bench/TpBench.h"
#include "bench/Layers.h"

#include "ir/Error.h"
#include "ir/Parser.h"
#include "ir/Spmd.h"
#include "ir/Verifier.h"
#include "passes/Pass.h"
#include "runtime/Binder.h"
#include "runtime/InProcessRanks.h"
#include "runtime/Profile.h"
#include "runtime/Random.h"
#include "runtime/WeightType.h"

#include "llvm/Support/raw_ostream.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>

using namespace moe;
using namespace moe::bench;

namespace {

constexpr int kRanks = 2;

struct TpBuilt {
  std::string error;
  const LayerDesc *layer = nullptr;
  std::unique_ptr<Module> module;
  std::unique_ptr<Executable> exe;
  std::unique_ptr<Binder> binder; ///< holds the whole values the shards point into
  std::vector<StoredArgs> stored; ///< per rank
  std::vector<SymbolBindings> rankSyms; ///< per rank, without T
  uint64_t paramsVersion = Executable::newParamsVersion();
  struct Input {
    unsigned arg;
    int64_t rowElems;
    std::vector<float> data; ///< kVariants x kMaxT tokens
  };
  std::vector<Input> inputs;
  unsigned threadsPerRank = 1;
  std::vector<std::unique_ptr<WorkerPool>> pools;
};

std::unique_ptr<TpBuilt> buildTp(const LayerDesc &L, ElemType wt, bool delay) {
  auto b = std::make_unique<TpBuilt>();
  b->layer = &L;
  auto t0 = Clock::now();
  auto fail = [&](std::string m) {
    b->error = std::string(L.name) + "/" + elemTypeName(wt).str() + ": " + m;
    return std::move(b);
  };
  auto m = loadLayer(L, wt); // default already run
  if (!m)
    return fail(errStr(m.takeError()));
  b->module = std::move(*m);
  PassManager pm;
  std::string pipeline = "tp-split{ranks=2}";
  if (delay)
    pipeline += ",delay-allreduce";
  if (auto e = pm.addPipeline(pipeline))
    return fail(errStr(std::move(e)));
  DiagEngine diag;
  if (auto e = pm.run(*b->module, diag))
    return fail(errStr(std::move(e)));
  const Function &f = *b->module->functions[0];
  if (numRanks(f) != kRanks)
    return fail("tp-split did not split the layer over 2 ranks");

  b->threadsPerRank = std::max(1u, effectiveThreads() / kRanks);
  ExecOptions eo = benchExecOptions();
  eo.threads = 1; // the ranks run on their own pools
  eo.jit.useCache = true;
  eo.jit.perf = gSettings.perf;
  auto exe = Executable::compile(f, eo);
  if (!exe)
    return fail(errStr(exe.takeError()));
  b->exe = std::move(*exe);
  for (int r = 0; r < kRanks; ++r)
    b->pools.push_back(std::make_unique<WorkerPool>(b->threadsPerRank));

  // Params: whole values generated, each rank's shards cut from them.
  SymbolBindings syms;
  syms["T"] = 1;
  b->binder = std::make_unique<Binder>(f, randomSource(gSettings.seed), syms);
  for (int r = 0; r < kRanks; ++r) {
    auto s = b->binder->storedArgsForRank(r);
    if (!s)
      return fail(errStr(s.takeError()));
    b->stored.push_back(std::move(*s));
    SymbolBindings rs = b->binder->symbolsForRank(r);
    rs.erase("T");
    b->rankSyms.push_back(std::move(rs));
  }

  // Inputs: kVariants x kMaxT tokens of each non-param argument.
  std::vector<Value *> args = f.getArguments();
  for (unsigned i = 0; i < args.size(); ++i) {
    const Value *a = args[i];
    if (a->isParam())
      continue;
    const TensorType &ty = a->getType();
    if (ty.dims.empty() || ty.dims[0].getConstant() || ty.elem != ElemType::F32)
      return fail("input %" + a->getName() + " is not an f32 tensor of T rows");
    std::vector<int64_t> shape = {kVariants * kMaxT};
    int64_t rowElems = 1;
    for (size_t d = 1; d < ty.dims.size(); ++d) {
      auto c = ty.dims[d].getConstant();
      if (!c)
        return fail("input %" + a->getName() + " has a symbolic inner dim");
      shape.push_back(*c);
      rowElems *= *c;
    }
    auto t = randomTensor(gSettings.seed, a->getName(), ElemType::F32, shape, /*isParam=*/false);
    if (!t)
      return fail(errStr(t.takeError()));
    b->inputs.push_back({i, rowElems, std::move(t->f)});
  }
  std::fprintf(stderr, "[moe-bench] built moe_tp2/%s/%s/%s in %.1f s\n", L.name,
               elemTypeName(wt).str().c_str(), delay ? "delay" : "nodelay", secondsSince(t0));
  return b;
}

/// The built split layer; only the one last asked for is kept.
TpBuilt *getTpBuilt(int layer, ElemType wt, bool delay) {
  static std::map<std::tuple<int, int, bool>, std::unique_ptr<TpBuilt>> cache;
  auto key = std::make_tuple(layer, (int)wt, delay);
  auto it = cache.find(key);
  if (it != cache.end())
    return it->second.get();
  cache.clear();
  return (cache[key] = buildTp(kLayers[layer], wt, delay)).get();
}

/// One run of both ranks on input variant `v`; `profiles` (optional) gets
/// each rank's kernel times.
llvm::Error runBoth(TpBuilt &b, int64_t T, int64_t v, Profile *profiles = nullptr) {
  auto out = gatherRanks(kRanks, [&](int r, Communicator *comm)
                                     -> llvm::Expected<std::vector<Tensor>> {
    std::vector<const void *> args = b.stored[r].ptrs;
    for (auto &in : b.inputs)
      args[in.arg] = in.data.data() + v * kMaxT * in.rowElems;
    SymbolBindings syms = b.rankSyms[r];
    syms["T"] = T;
    RunOptions o;
    o.comm = comm;
    o.pool = b.pools[r].get();
    o.paramsVersion = b.paramsVersion;
    o.profile = profiles ? &profiles[r] : nullptr;
    return b.exe->runRaw(args, syms, o);
  });
  if (!out)
    return out.takeError();
  benchmark::DoNotOptimize(out->data());
  return llvm::Error::success();
}

void BM_LayerTp(benchmark::State &state, int layer, ElemType wt, int64_t T, bool delay) {
  TpBuilt *b = getTpBuilt(layer, wt, delay);
  if (!b->error.empty()) {
    state.SkipWithError(b->error.c_str());
    return;
  }
  const LayerDesc &L = *b->layer;
  for (int64_t v = 0; v < 2; ++v) // warm-up: plans, repacked weights
    if (auto e = runBoth(*b, T, v)) {
      std::string m = errStr(std::move(e));
      state.SkipWithError(m.c_str());
      return;
    }
  std::vector<double> times;
  int64_t v = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    llvm::Error e = runBoth(*b, T, v);
    double s = secondsSince(t0);
    v = (v + 1) % kVariants;
    if (e) {
      std::string m = errStr(std::move(e));
      state.SkipWithError(m.c_str());
      return;
    }
    state.SetIterationTime(s);
    times.push_back(s);
  }
  std::sort(times.begin(), times.end());
  double med = times.empty() ? 0 : times[times.size() / 2];
  if (med <= 0)
    return;
  // Weight bytes read (and the table of --moe_profile) from profiled runs.
  constexpr int kProfiled = 4;
  Profile prof[kRanks];
  for (int i = 0; i < kProfiled; ++i)
    if (auto e = runBoth(*b, T, i % kVariants, prof)) {
      std::string m = errStr(std::move(e));
      state.SkipWithError(m.c_str());
      return;
    }
  prof[0].merge(prof[1]);
  double weightBytes = 0;
  for (const KernelTimes &k : prof[0].kernels())
    weightBytes += k.weightBytes;
  weightBytes /= kProfiled;
  double flops = 2.0 * T * L.nUsed * 3.0 * L.nEmbd * L.nFf;
  SymbolBindings syms0 = b->rankSyms[0];
  syms0["T"] = T;
  double gflops = flops / med / 1e9;
  state.counters["median_ms"] = med * 1e3;
  state.counters["gflops"] = gflops;
  state.counters["weight_gbps"] = weightBytes / med / 1e9;
  state.counters["allreduce_bytes"] = (double)b->exe->allReduceBytes(syms0);
  if (auto p = b->exe->plan(syms0))
    state.counters["arena_bytes"] = (double)p->peakBytes;
  else
    llvm::consumeError(p.takeError());
  double peak = gSettings.fmaPeakGflops;
  state.counters["frac_fma_peak"] = peak > 0 ? gflops / peak : 0;
  state.counters["threads_per_rank"] = b->threadsPerRank;
  state.SetLabel("2 ranks x " + std::to_string(b->threadsPerRank) + " threads");
  if (gSettings.profile) {
    std::string title = "profile of moe_tp2/" + std::string(L.name) + "/" +
                        elemTypeName(wt).str() + "/T:" + std::to_string(T) +
                        (delay ? "/delay: " : "/nodelay: ") + std::to_string(kProfiled) +
                        " runs x 2 ranks in-process, " + std::to_string(b->threadsPerRank) +
                        " thread(s) per rank; totals over the runs, summed over the ranks";
    prof[0].print(llvm::errs(), title);
  }
}

} // namespace

void moe::bench::registerTpBenchmarks() {
  const ElemType types[] = {ElemType::F32, ElemType::BF16, ElemType::Q8_0, ElemType::Q4_0,
                            ElemType::MXFP4};
  for (int l = 0; l < (int)std::size(kLayers); ++l)
    for (ElemType wt : types)
      for (bool delay : {false, true})
        for (int64_t T : {1, 32, 128, 512}) {
          std::string name = std::string("moe_tp2/") + kLayers[l].name + "/" +
                             elemTypeName(wt).str() + "/T:" + std::to_string(T) + "/" +
                             (delay ? "delay" : "nodelay");
          benchmark::RegisterBenchmark(name.c_str(), [l, wt, T, delay](benchmark::State &s) {
            BM_LayerTp(s, l, wt, T, delay);
          })
              ->UseManualTime()
              ->MinTime(1.0)
              ->Unit(benchmark::kMillisecond);
        }
}
