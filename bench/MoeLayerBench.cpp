//===- MoeLayerBench.cpp - The JIT on model-shaped MoE FFN layers ---------===//
//
// Google Benchmark of one MoE feed-forward layer at real model size, run by
// the JIT (runtime/Executable.h), as DESIGN.md ("Tests and benchmarks")
// describes. Layers (examples/*.moe, sizes from the models' published
// config.json, cited in each file's comment):
//
//   qwen3   Qwen3-30B-A3B    n_embd 2048, expert n_ff 768,  128 experts, top-8
//   gptoss  gpt-oss-20b      n_embd 2880, expert n_ff 2880,  32 experts, top-4
//   gemma4  Gemma-4-26B-A4B  n_embd 2816, expert n_ff 704,  128 experts, top-8
//           (google/gemma-4-26B-A4B-it text_config: hidden_size 2816,
//            moe_intermediate_size 704, num_experts 128, top_k_experts 8;
//            the router runs outside the function: its logits are an input)
//
// Each file is parsed and verified, the expert weights (the params that are
// operand #1 of matmul_id) are retyped to the benchmark's weight type, the
// `default` pipeline runs, and Executable::compile JITs it (object cache on).
// The router weight stays f32, as in the llama.cpp models ("type" is the
// expert weights' type).
//
// Files: this one registers and times the benchmarks and reads the flags;
// bench/Layers.h builds a layer (parse, retype, pipeline, compile, params,
// inputs, host routing), bench/Probes.h measures the machine's peaks.
//
// Build and run: `ninja -j2 MoeLayerBench` (bench/CMakeLists.txt), then
// `build/bench/MoeLayerBench [flags]`.
//
// Benchmarks (names, each followed by /manual_time; --benchmark_filter picks
// among them):
//
//   moe/<layer>/<type>/T:<T>   layer qwen3|gptoss|gemma4, type
//                              f32|bf16|q8_0|q4_0|mxfp4, T 1|8|32|128|512
//   compile/<layer>/cold       Executable::compile with the object cache off
//   compile/<layer>/warm       the same with the cache on, after one compile
//                              that filled it (so: cache load + link)
//   compile/module48/<phase>   a 48-block model's module (bench/ModuleBench.cpp):
//                              the `default` pipeline, compileAll cold and warm
//   bind/<layer>/<type>        binding the layer from a GGUF file written at
//                              real size, weights packed at bind time: time
//                              and resident memory (bench/BindBench.cpp;
//                              qwen3|gptoss, q8_0|q4_0|bf16)
//
// Without --benchmark_filter the default set runs (a few minutes):
// moe/{qwen3,gptoss}/{f32,bf16,q8_0}/T:{1,128,512}, compile/* and
// bind/qwen3/q8_0. Everything:
// --benchmark_filter=. ; e.g. --benchmark_filter='moe/gemma4/q4_0/' or
// --benchmark_filter='moe/qwen3/q8_0/T:(1|512)/'.
// Extra flags: --moe_threads=N (JIT worker threads, default 0 = every core;
// also used by the FMA probe), --moe_seed=N (default 1), --moe_examples=DIR
// (default: examples/ next to this file's bench/ directory), --moe_perf=1
// (register the JIT's code with perf: `perf record -k 1 ...`, then
// `perf inject --jit`), --moe_profile=1 or MOE_BENCH_PROFILE=1 (after each
// layer benchmark's timed loop, 4 more runs with a runtime/Profile.h
// profile, whose per-kernel table, the one `moe-run --profile` prints, goes
// to standard error, after each of Google Benchmark's calls of the
// benchmark, its trial call with one iteration included; the timing itself
// is never profiled), --moe_cpu=NAME (the JIT generates code for CPU
// NAME, as moe-run --cpu: e.g. x86-64-v3 runs the AVX2 kernels on an
// AVX-512 host, beside bench/ik built with IK_AVX2=1; the probes stay the
// host's), --moe_flush_mib=N (before each timed run, untimed,
// read N MiB on the JIT's threads so the layer's weights come from DRAM, as
// in a whole model whose other layers pass through the caches between two
// tokens' runs of this one; bench/ik's --flush-mib is the same. Without it,
// the 16 cycled inputs of one layer find some experts in a large L3: on a
// host with 480 MiB of it, T = 1 ran 1.5-2x faster than with --moe_flush_mib=1024).
//
// moe_tp2/<layer>/<type>/T:<T>/<delay|nodelay>: the layer split over 2
// in-process ranks, with and without delay-allreduce (bench/TpBench.cpp;
// counters median_ms, gflops, weight_gbps, allreduce_bytes, arena_bytes);
// not in the default set.
//
// Timing: UseManualTime. Each iteration times one Executable::runRaw call
// (steady_clock; it includes the run's arena allocation and the copy of the
// result into a Tensor, nothing else), over the JIT's own worker pool. The
// reported Time is the mean; the counters use the median. Weights are
// generated (runtime/Random.h via Binder + randomSource), quantised and
// converted to their stored layout once per (layer, type) and kept while the
// T values of that pair run (benchmarks run in registration order: layer,
// type, T); inputs are built once for the largest T, 16 different random
// inputs cycled over the iterations so the tokens spread over the experts and
// the caches do not keep one expert set (realistic routing). A run of T
// tokens uses the first T rows of an input.
//
// Setting up a (layer, type) takes 10-50 s, nearly all of it first-touch page
// faults of the GBs of generated weights (costly in a VM). With
// GLIBC_TUNABLES=glibc.malloc.hugetlb=1 in the environment, malloc asks for
// transparent huge pages and the setup is 3-5x faster; but the weights, the
// run's arena and the DRAM probe's array then sit in huge pages too, which
// changes what is measured (fewer TLB misses, no per-run arena faults): say
// so when quoting such figures.
//
// Counters (per moe/ benchmark):
//   median_ms        median time of one layer run
//   gflops           2 x T x n_used x 3 x n_embd x n_ff / median (the router
//                    and the elementwise ops not counted)
//   experts          distinct experts the T tokens select, mean over the 16
//                    inputs (routing recomputed on the host from the inputs)
//   weight_gbps      bytes of the expert weights touched (experts x (2 n_ff
//                    rows of n_embd + n_embd rows of n_ff) in the type's
//                    stored size: f32 4, bf16 2, q8_0 34/32, q4_0 18/32, mxfp4
//                    17/32 bytes per element) + the f32 router (and its bias),
//                    over the median time
//   fma_peak_gflops  FP32 FMA peak of this machine on the JIT's thread count,
//                    measured at start-up (independent vfmadd chains on
//                    zmm, or ymm without AVX-512, one std::thread per core)
//   dram_read_gbps   streaming-read bandwidth, 1 thread, summing a 1 GiB
//                    float array, measured at start-up (best of 3 passes;
//                    the layer runs on every thread, so frac_dram_bw can
//                    pass 1; the context line also gives the read
//                    bandwidth of all threads together)
//   frac_fma_peak    gflops / fma_peak_gflops
//   frac_int8_peak   q8_0 only: gflops / int8_peak_gops, the GOP/s of the
//                    int8 kernels' inner step alone (sign, vpmaddubsw,
//                    vpmaddwd, vpaddd on AVX2; vpdpbusd with AVX-512 VNNI;
//                    2 ops per byte product, measured at start-up on the
//                    JIT's threads): the ceiling of q8_0's dot products
//                    before scales, loads and loops
//   frac_dram_bw     weight_gbps / dram_read_gbps
//   frac_dram_bw_all weight_gbps / the read bandwidth of all the JIT's
//                    threads together (the decode target's measure)
//   faults_per_run   minor page faults per layer run (0 in steady state:
//                    the arena is backed once per binding and reused; in a
//                    VM each fault is costly)
//   preempt_per_run  involuntary context switches of the process per run, and
//   cpu_util         CPU time of the process over wall time x JIT threads,
//                    during the timed loop: the machine is shared, so these
//                    say whether another process took cores from this run
//                    (preemptions in the tens per run together with cpu_util
//                    near 0.5 on 2 threads: the figures are not the
//                    machine's; cpu_util alone also drops when the pool's
//                    threads wait for work; the FMA peak, measured once at
//                    start-up, should be ~2 x the 1-thread figure)
//
//===----------------------------------------------------------------------===//
#include "bench/BindBench.h"
#include "bench/ModuleBench.h"
#include "bench/Layers.h"
#include "bench/Probes.h"
#include "bench/TpBench.h"
#include "runtime/Profile.h"

#include "llvm/Support/Path.h"

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace moe;
using namespace moe::bench;

namespace {

const ElemType kTypes[] = {ElemType::F32, ElemType::BF16, ElemType::Q8_0, ElemType::Q4_0,
                           ElemType::MXFP4};
const int64_t kTs[] = {1, 8, 32, 128, 512};

const char *kDefaultFilter =
    "^(compile/|bind/qwen3/q8_0/|moe/(qwen3|gptoss)/(f32|bf16|q8_0)/T:(1|128|512)/)";

double gFmaPeakGflops = 0; // measured once at start-up
double gDramReadGbps = 0, gDramReadGbpsAll = 0;
double gInt8PeakGops = 0; // 0 on a host without AVX2

//===----------------------------------------------------------------------===//
// Benchmarks
//===----------------------------------------------------------------------===//

/// The process's resource use so far (every thread).
struct Usage {
  double cpuSeconds; ///< user + system
  long minorFaults;
  long preempted; ///< involuntary context switches
};
Usage usage() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](timeval t) { return (double)t.tv_sec + 1e-6 * (double)t.tv_usec; };
  return {secs(u.ru_utime) + secs(u.ru_stime), u.ru_minflt, u.ru_nivcsw};
}


/// Reads gSettings.flushMiB MiB, one load per cache line, on as many
/// threads as the JIT has (each its share), so that the layer's weights are
/// in no cache when the run starts and no core idled meanwhile: a real
/// model's other layers pass through the caches between two tokens' runs of
/// one layer, on busy cores. (On a VM, a core left idle for the flush's
/// tens of ms comes back slow: one thread sleeping 50 ms before each run
/// made qwen3 bf16 at T = 1 take 9.1 ms instead of 3.6.)
void flushCaches(unsigned threads) {
  static std::vector<char> buf;
  size_t n = (size_t)gSettings.flushMiB << 20;
  if (n == 0)
    return;
  if (buf.size() != n)
    buf.assign(n, 1);
  threads = std::max(1u, threads);
  auto share = [&](unsigned i) {
    size_t lo = n / threads * i, hi = i + 1 == threads ? n : n / threads * (i + 1);
    unsigned sum = 0;
    for (size_t j = lo; j < hi; j += 64)
      sum += (unsigned char)buf[j];
    benchmark::DoNotOptimize(sum);
  };
  std::vector<std::thread> helpers;
  for (unsigned i = 1; i < threads; ++i)
    helpers.emplace_back(share, i);
  share(0);
  for (auto &h : helpers)
    h.join();
}

void BM_Layer(benchmark::State &state, int layer, ElemType wt, int64_t T) {
  Built *b = getBuilt(layer, wt);
  if (!b->error.empty()) {
    state.SkipWithError(b->error.c_str());
    return;
  }
  const LayerDesc &L = *b->layer;
  SymbolBindings syms;
  syms["T"] = T;
  std::vector<const void *> args = b->argPtr;
  RunOptions ro; // the weights stay bound: repacked once, in the warm-up
  ro.paramsVersion = b->paramsVersion;
  auto setInputs = [&](int64_t v) {
    for (auto &in : b->inputs)
      args[in.arg] = in.data.data() + v * kMaxT * in.rowElems;
  };
  // Warm-up: the memory plan for this T, the pool's threads.
  for (int64_t v = 0; v < 2; ++v) {
    setInputs(v);
    auto r = b->exe->runRaw(args, syms, ro);
    if (!r) {
      std::string m = errStr(r.takeError());
      state.SkipWithError(m.c_str());
      return;
    }
  }
  std::vector<double> times;
  int64_t v = 0;
  Usage u0 = usage();
  auto wall0 = Clock::now();
  for (auto _ : state) {
    setInputs(v);
    v = (v + 1) % kVariants;
    flushCaches(b->exe->threads());
    auto t0 = Clock::now();
    auto r = b->exe->runRaw(args, syms, ro);
    double s = secondsSince(t0);
    if (!r) {
      std::string m = errStr(r.takeError());
      state.SkipWithError(m.c_str());
      break;
    }
    benchmark::DoNotOptimize(r->data());
    state.SetIterationTime(s);
    times.push_back(s);
  }
  Usage u1 = usage();
  double wall = secondsSince(wall0);
  double med = median(times);
  if (med <= 0)
    return;
  double flops = 2.0 * T * L.nUsed * 3.0 * L.nEmbd * L.nFf;
  double experts = b->meanDistinctExperts(T);
  double bytes = experts * (double)b->expertBytes + (double)b->routerBytes;
  double gflops = flops / med / 1e9, gbps = bytes / med / 1e9;
  state.counters["median_ms"] = med * 1e3;
  state.counters["gflops"] = gflops;
  state.counters["experts"] = experts;
  state.counters["weight_gbps"] = gbps;
  state.counters["fma_peak_gflops"] = gFmaPeakGflops;
  state.counters["dram_read_gbps"] = gDramReadGbps;
  state.counters["frac_fma_peak"] = gFmaPeakGflops > 0 ? gflops / gFmaPeakGflops : 0;
  if (wt == ElemType::Q8_0 && gInt8PeakGops > 0)
    state.counters["frac_int8_peak"] = gflops / gInt8PeakGops;
  state.counters["frac_dram_bw"] = gDramReadGbps > 0 ? gbps / gDramReadGbps : 0;
  state.counters["frac_dram_bw_all"] = gDramReadGbpsAll > 0 ? gbps / gDramReadGbpsAll : 0;
  double runs = (double)times.size();
  state.counters["faults_per_run"] = (double)(u1.minorFaults - u0.minorFaults) / runs;
  state.counters["preempt_per_run"] = (double)(u1.preempted - u0.preempted) / runs;
  state.counters["cpu_util"] = (u1.cpuSeconds - u0.cpuSeconds) / (wall * b->exe->threads());
  state.SetLabel(std::to_string(b->exe->threads()) + " threads");
  if (gSettings.profile) { // after the timed loop: the timing is not profiled
    constexpr int kProfiled = 4;
    Profile prof;
    RunOptions po = ro;
    po.profile = &prof;
    for (int i = 0; i < kProfiled; ++i) {
      setInputs(i % kVariants);
      flushCaches(b->exe->threads()); // profiled as timed
      auto r = b->exe->runRaw(args, syms, po);
      if (!r) {
        llvm::consumeError(r.takeError());
        return;
      }
    }
    prof.print(llvm::errs(), "profile of moe/" + std::string(L.name) + "/" +
                                 elemTypeName(wt).str() + "/T:" + std::to_string(T) + ": " + std::to_string(kProfiled) +
                                 " runs, " + std::to_string(b->exe->threads()) +
                                 " threads; totals over the runs");
  }
}

/// Executable::compile of the real-size layer, as the file has it (its own
/// weight types), after the `default` pipeline.
void BM_Compile(benchmark::State &state, int layer, bool warm) {
  auto m = loadLayer(kLayers[layer], std::nullopt);
  if (!m) {
    std::string e = errStr(m.takeError());
    state.SkipWithError(e.c_str());
    return;
  }
  const Function &f = *(*m)->functions[0];
  ExecOptions eo = benchExecOptions();
  eo.jit.useCache = warm;
  if (warm) { // fill the cache
    auto x = Executable::compile(f, eo);
    if (!x) {
      std::string e = errStr(x.takeError());
      state.SkipWithError(e.c_str());
      return;
    }
  }
  double jitMs = 0;
  unsigned kernels = 0, fromCache = 0, compiled = 0;
  std::vector<double> times;
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto x = Executable::compile(f, eo);
    double s = secondsSince(t0);
    if (!x) {
      std::string e = errStr(x.takeError());
      state.SkipWithError(e.c_str());
      break;
    }
    state.SetIterationTime(s);
    times.push_back(s);
    jitMs = (*x)->jitStats().compileMs;
    kernels = (*x)->numKernels();
    fromCache = (*x)->jitStats().modulesFromCache;
    compiled = (*x)->jitStats().modulesCompiled;
  }
  state.counters["median_ms"] = median(times) * 1e3;
  state.counters["jit_ms"] = jitMs; // JitStats: optimise + codegen + link (or load + link)
  state.counters["kernels"] = kernels;
  state.counters["modules_compiled"] = compiled;
  state.counters["modules_from_cache"] = fromCache;
}

void registerAll() {
  for (int l = 0; l < (int)std::size(kLayers); ++l)
    for (bool warm : {false, true})
      benchmark::RegisterBenchmark(
          (std::string("compile/") + kLayers[l].name + (warm ? "/warm" : "/cold")).c_str(),
          [l, warm](benchmark::State &s) { BM_Compile(s, l, warm); })
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
  for (int l = 0; l < (int)std::size(kLayers); ++l)
    for (ElemType wt : kTypes)
      for (int64_t T : kTs) {
        std::string name = std::string("moe/") + kLayers[l].name + "/" +
                           elemTypeName(wt).str() + "/T:" + std::to_string(T);
        benchmark::RegisterBenchmark(name.c_str(), [l, wt, T](benchmark::State &s) {
          BM_Layer(s, l, wt, T);
        })
            ->UseManualTime()
            ->MinTime(1.0)
            ->Unit(benchmark::kMillisecond);
      }
  registerTpBenchmarks();
  registerBindBenchmarks();
  registerModuleBenchmarks();
}

/// Takes --moe_NAME=VALUE flags out of argv.
bool takeFlag(std::vector<char *> &argv, const char *name, std::string &value) {
  std::string prefix = std::string("--") + name + "=";
  for (size_t i = 1; i < argv.size(); ++i)
    if (!std::strncmp(argv[i], prefix.c_str(), prefix.size())) {
      value = argv[i] + prefix.size();
      argv.erase(argv.begin() + i);
      return true;
    }
  return false;
}

/// Takes --moe_NAME=N (a decimal integer) out of argv; anything else is an
/// error that ends the process.
bool takeNumber(std::vector<char *> &argv, const char *name, uint64_t &n) {
  std::string v;
  if (!takeFlag(argv, name, v))
    return false;
  if (llvm::StringRef(v).getAsInteger(10, n)) {
    std::fprintf(stderr, "MoeLayerBench: --%s=%s: expected a non-negative integer\n", name, v.c_str());
    std::exit(2);
  }
  return true;
}

} // namespace

int main(int argc, char **argv) {
  std::vector<char *> args(argv, argv + argc);
  std::string v;
  if (uint64_t t; takeNumber(args, "moe_threads", t))
    gSettings.threads = (unsigned)t;
  if (takeFlag(args, "moe_perf", v))
    gSettings.perf = v == "1" || v == "true";
  takeNumber(args, "moe_seed", gSettings.seed);
  if (takeFlag(args, "moe_examples", v))
    gSettings.examples = v;
  takeNumber(args, "moe_flush_mib", gSettings.flushMiB);
  takeFlag(args, "moe_cpu", gSettings.cpu);
  if (takeFlag(args, "moe_profile", v))
    gSettings.profile = v == "1" || v == "true";
  if (const char *e = std::getenv("MOE_BENCH_PROFILE"))
    gSettings.profile |= std::strcmp(e, "1") == 0;
  if (gSettings.examples.empty()) { // <repo>/bench/MoeLayerBench.cpp -> <repo>/examples
    llvm::SmallString<256> p(__FILE__);
    llvm::sys::path::remove_filename(p);
    llvm::sys::path::remove_filename(p);
    llvm::sys::path::append(p, "examples");
    gSettings.examples = std::string(p);
  }
  bool hasFilter = false, listOnly = false;
  for (char *a : args) {
    hasFilter |= !std::strncmp(a, "--benchmark_filter", 18);
    listOnly |= !std::strncmp(a, "--benchmark_list_tests", 22) &&
                std::strcmp(a, "--benchmark_list_tests=false") != 0;
  }
  std::string filter = std::string("--benchmark_filter=") + kDefaultFilter;
  if (!hasFilter)
    args.push_back(filter.data());
  int n = (int)args.size();
  args.push_back(nullptr);
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data()))
    return 1;

  registerAll();
  if (!listOnly) {
    gFmaPeakGflops = measureFmaPeak(effectiveThreads());
    gSettings.fmaPeakGflops = gFmaPeakGflops;
    gInt8PeakGops = measureInt8Peak(effectiveThreads());
    auto [dram1, dramN] = measureDramRead(effectiveThreads());
    gDramReadGbps = dram1;
    gDramReadGbpsAll = dramN;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f", gFmaPeakGflops);
    benchmark::AddCustomContext("fma_peak_gflops", buf);
    std::snprintf(buf, sizeof buf, "%u", effectiveThreads());
    benchmark::AddCustomContext("fma_peak_threads", buf);
    std::snprintf(buf, sizeof buf, "%.1f", gInt8PeakGops);
    benchmark::AddCustomContext("int8_peak_gops", buf);
    std::snprintf(buf, sizeof buf, "%.1f", gDramReadGbps);
    benchmark::AddCustomContext("dram_read_gbps_1thread", buf);
    std::snprintf(buf, sizeof buf, "%.1f", dramN);
    benchmark::AddCustomContext("dram_read_gbps_all_threads", buf);
  }
  benchmark::AddCustomContext("moe_examples", gSettings.examples);
  benchmark::AddCustomContext("moe_flush_mib", std::to_string(gSettings.flushMiB));
  benchmark::AddCustomContext("moe_cpu", gSettings.cpu.empty() ? "host" : gSettings.cpu);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
