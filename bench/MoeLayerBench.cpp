//===- MoeLayerBench.cpp - The JIT on model-shaped MoE FFN layers ---------===//
//
// Google Benchmark of one MoE feed-forward layer at real model size, run by
// the JIT (runtime/Executable.h), as DESIGN.md ("Tests and benchmarks") and
// /work/shared/perf/README.md describe. Layers (examples/*.moe, sizes from the
// models' published config.json, cited in each file's comment):
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
// The router weight stays f32, as in the llama.cpp models and in the perf
// README's figures ("type is the expert weights' type").
//
// Build and run: `ninja -j2 MoeLayerBench` (bench/CMakeLists.txt: one binary
// per bench/*.cpp), then `build/bench/MoeLayerBench [flags]`.
//
// Benchmarks (names, each followed by /manual_time; --benchmark_filter picks
// among them):
//
//   moe/<layer>/<type>/T:<T>   layer qwen3|gptoss|gemma4, type
//                              f32|bf16|q8_0|q4_0|mxfp4, T 1|32|128|512
//   compile/<layer>/cold       Executable::compile with the object cache off
//   compile/<layer>/warm       the same with the cache on, after one compile
//                              that filled it (so: cache load + link)
//
// Without --benchmark_filter the default set runs (a few minutes):
// moe/{qwen3,gptoss}/{f32,bf16,q8_0}/T:{1,128,512} and compile/*. Everything:
// --benchmark_filter=. ; e.g. --benchmark_filter='moe/gemma4/q4_0/' or
// --benchmark_filter='moe/qwen3/q8_0/T:(1|512)/'.
// Extra flags: --moe_threads=N (JIT worker threads, default 0 = every core;
// also used by the FMA probe), --moe_seed=N (default 1), --moe_examples=DIR
// (default: examples/ next to this file's bench/ directory), --moe_perf=1
// (register the JIT's code with perf: `perf record -k 1 ...`, then
// `perf inject --jit`).
//
// Timing: UseManualTime. Each iteration times one Executable::runRaw call
// (steady_clock; it includes the run's arena allocation and the copy of the
// result into a Tensor, nothing else), over the JIT's own worker pool. The
// reported Time is the mean; the counters use the median, as the README's
// gflops_median. Weights are generated (runtime/Random.h via Binder +
// randomSource), quantised and converted to their stored layout once per
// (layer, type) and kept while the T values of that pair run (benchmarks run
// in registration order: layer, type, T); inputs are built once for the
// largest T, 16 different random inputs cycled over the iterations so the
// tokens spread over the experts and the caches do not keep one expert set
// (the README's "realistic routing"). A run of T tokens uses the first T rows
// of an input.
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
//   gflops           2 x T x n_used x 3 x n_embd x n_ff / median (the README's
//                    formula; the router and the elementwise ops not counted)
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
//                    float array, measured at start-up (best of 3 passes), as
//                    the perf README's probe (the layer runs on every thread,
//                    so frac_dram_bw can pass 1; the context line also gives
//                    the read bandwidth of all threads together)
//   frac_fma_peak    gflops / fma_peak_gflops
//   frac_dram_bw     weight_gbps / dram_read_gbps
//   faults_per_run   minor page faults per layer run (the run's arena is
//                    allocated per run; in a VM each fault is costly)
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
#include "ir/ElemType.h"
#include "ir/IR.h"
#include "ir/Parser.h"
#include "ir/Verifier.h"
#include "passes/Pass.h"
#include "runtime/Binder.h"
#include "runtime/Executable.h"
#include "runtime/Formats.h"
#include "runtime/Random.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace moe;

namespace {

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

//===----------------------------------------------------------------------===//
// Settings
//===----------------------------------------------------------------------===//

unsigned gThreads = 0; // JIT worker threads (0: every core)
bool gPerf = false;    // register the JIT's code with perf (jitdump)
uint64_t gSeed = 1;
std::string gExamples; // directory of the .moe files

constexpr int64_t kVariants = 16; // different random inputs, cycled
constexpr int64_t kMaxT = 512;    // inputs are built for the largest T once

unsigned effectiveThreads() {
  if (gThreads)
    return gThreads;
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

struct LayerDesc {
  const char *name;
  const char *file;
  // Hard-coded from the config.json sizes cited in each example file (and
  // checked against the IR's types when the layer is built).
  int64_t nEmbd, nFf, nExpert, nUsed;
};

const LayerDesc kLayers[] = {
    {"qwen3", "qwen3.moe", 2048, 768, 128, 8},   // Qwen3-30B-A3B
    {"gptoss", "gptoss.moe", 2880, 2880, 32, 4}, // gpt-oss-20b
    {"gemma4", "gemma4.moe", 2816, 704, 128, 8}, // Gemma-4-26B-A4B
};
const ElemType kTypes[] = {ElemType::F32, ElemType::BF16, ElemType::Q8_0, ElemType::Q4_0,
                           ElemType::MXFP4};
const int64_t kTs[] = {1, 32, 128, 512};

const char *kDefaultFilter =
    "^(compile/|moe/(qwen3|gptoss)/(f32|bf16|q8_0)/T:(1|128|512)/)";

//===----------------------------------------------------------------------===//
// Machine peaks, measured once at start-up
//===----------------------------------------------------------------------===//

double gFmaPeakGflops = 0;
double gDramReadGbps = 0;

/// Horizontal sum (not _mm512_reduce_add_ps: GCC 12 warns spuriously in it).
__attribute__((target("avx512f"))) float hsum512(__m512 v) {
  alignas(64) float x[16];
  _mm512_store_ps(x, v);
  float s = 0;
  for (float e : x)
    s += e;
  return s;
}

constexpr int kChains = 12; // independent FMA chains per thread (>= 2 pipes x latency 4)

__attribute__((target("avx512f"))) float fmaChains512(int64_t iters) {
  __m512 a[kChains];
  for (int j = 0; j < kChains; ++j)
    a[j] = _mm512_set1_ps(0.001f * (float)(j + 1));
  const __m512 b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j)
      a[j] = _mm512_fmadd_ps(a[j], b, c);
  }
  __m512 s = a[0];
  for (int j = 1; j < kChains; ++j)
    s = _mm512_add_ps(s, a[j]);
  return hsum512(s);
}

__attribute__((target("avx2,fma"))) float fmaChains256(int64_t iters) {
  __m256 a[kChains];
  for (int j = 0; j < kChains; ++j)
    a[j] = _mm256_set1_ps(0.001f * (float)(j + 1));
  const __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j)
      a[j] = _mm256_fmadd_ps(a[j], b, c);
  }
  __m256 s = a[0];
  for (int j = 1; j < kChains; ++j)
    s = _mm256_add_ps(s, a[j]);
  float v[8];
  _mm256_storeu_ps(v, s);
  return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

/// FP32 FMA GFLOP/s over `threads` threads, all running together (best of 3).
double measureFmaPeak(unsigned threads) {
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

__attribute__((target("avx512f"))) float sum512(const float *p, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
         a7 = a0;
  for (int64_t i = 0; i < n; i += 128) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
    a4 = _mm512_add_ps(a4, _mm512_load_ps(p + i + 64));
    a5 = _mm512_add_ps(a5, _mm512_load_ps(p + i + 80));
    a6 = _mm512_add_ps(a6, _mm512_load_ps(p + i + 96));
    a7 = _mm512_add_ps(a7, _mm512_load_ps(p + i + 112));
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  return hsum512(s);
}

__attribute__((target("avx2"))) float sum256(const float *p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
         a7 = a0;
  for (int64_t i = 0; i < n; i += 64) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
    a4 = _mm256_add_ps(a4, _mm256_load_ps(p + i + 32));
    a5 = _mm256_add_ps(a5, _mm256_load_ps(p + i + 40));
    a6 = _mm256_add_ps(a6, _mm256_load_ps(p + i + 48));
    a7 = _mm256_add_ps(a7, _mm256_load_ps(p + i + 56));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  float v[8];
  _mm256_storeu_ps(v, s);
  return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

/// Streaming-read GB/s (1e9 bytes) over a 1 GiB float array (best of 3
/// passes after the first touch): with 1 thread (the per-benchmark reference)
/// and, for the context line only, with `threads` threads each summing a slice.
std::pair<double, double> measureDramRead(unsigned threads) {
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

//===----------------------------------------------------------------------===//
// Building a layer
//===----------------------------------------------------------------------===//

std::string errStr(llvm::Error e) { return llvm::toString(std::move(e)); }

/// Parses, verifies, retypes the expert weights to `wt` (when given) and runs
/// the `default` pipeline.
llvm::Expected<std::unique_ptr<Module>> loadLayer(const LayerDesc &L,
                                                  std::optional<ElemType> wt) {
  llvm::SmallString<256> path(gExamples);
  llvm::sys::path::append(path, L.file);
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf)
    return llvm::createStringError(buf.getError(), "cannot read %s: %s", path.c_str(),
                                   buf.getError().message().c_str());
  auto m = parseModuleString((*buf)->getBuffer(), path);
  if (!m)
    return m.takeError();
  DiagEngine diag;
  if (!verifyModule(**m, diag))
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s does not verify",
                                   path.c_str());
  if (wt)
    for (auto &f : (*m)->functions)
      for (Value *a : f->getArguments()) {
        if (!a->isParam())
          continue;
        bool expertWeight = false;
        for (auto &u : a->getUses())
          expertWeight |= u.user->is(OpKind::MatmulId) && u.index == 1;
        if (!expertWeight)
          continue;
        TensorType t = a->getType();
        t.elem = *wt;
        a->setType(t);
      }
  PassManager pm;
  if (auto e = pm.addPipeline("default"))
    return e;
  if (auto e = pm.run(**m, diag))
    return e;
  if ((*m)->functions.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s has no function",
                                   path.c_str());
  return m;
}

const Value *findArg(const Function &f, llvm::StringRef name) {
  for (Value *a : f.getArguments())
    if (a->getName() == name)
      return a;
  return nullptr;
}

std::optional<int64_t> constDim(const Value *v, unsigned i) {
  if (!v || v->getType().dims.size() <= i)
    return std::nullopt;
  return v->getType().dims[i].getConstant();
}

/// One (layer, weight type): the compiled layer, its params in their stored
/// layout, kVariants inputs of kMaxT tokens and the experts each token picks.
struct Built {
  std::string error;
  const LayerDesc *layer = nullptr;
  ElemType wt = ElemType::F32;
  std::unique_ptr<Module> module;
  std::unique_ptr<Executable> exe;
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

/// Top-`k` indices of logits (largest first).
void topk(const float *logits, int64_t n, int64_t k, int32_t *out) {
  std::vector<int32_t> idx(n);
  for (int64_t i = 0; i < n; ++i)
    idx[i] = (int32_t)i;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  std::copy(idx.begin(), idx.begin() + k, out);
}

float dot(const float *a, const float *b, int64_t n) {
  float s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j)
      s[j] += a[i + j] * b[i + j];
  float r = 0;
  for (; i < n; ++i)
    r += a[i] * b[i];
  for (float v : s)
    r += v;
  return r;
}

/// The plain (not derived) params of `f`, generated as randomSource would
/// (runtime/Random.h: a pure function of seed, name, type and shape), several
/// at once on the machine's threads (the real-size weights take 10-30 s per
/// (layer, type), mostly first-touch page faults).
llvm::Expected<std::shared_ptr<llvm::StringMap<Tensor>>>
pregenerateParams(const Function &f, const SymbolBindings &syms) {
  struct Job {
    const Value *arg;
    std::vector<int64_t> shape;
    Tensor result;
    std::string error;
  };
  std::vector<Job> jobs;
  for (Value *a : f.getArguments()) {
    if (!a->isParam() || a->argAttrs().has("derive"))
      continue;
    auto shape = evaluateShape(a->getType(), syms);
    if (!shape)
      return shape.takeError();
    jobs.push_back({a, std::move(*shape), Tensor(), std::string()});
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t j; (j = next.fetch_add(1)) < jobs.size();) {
      Job &job = jobs[j];
      auto t = randomTensor(gSeed, job.arg->getName(), job.arg->getType().elem, job.shape,
                            /*isParam=*/true);
      if (t)
        job.result = std::move(*t);
      else
        job.error = errStr(t.takeError());
    }
  };
  std::vector<std::thread> ts;
  for (unsigned i = 1; i < effectiveThreads(); ++i)
    ts.emplace_back(work);
  work();
  for (auto &t : ts)
    t.join();
  auto out = std::make_shared<llvm::StringMap<Tensor>>();
  for (Job &job : jobs) {
    if (!job.error.empty())
      return llvm::createStringError(llvm::inconvertibleErrorCode(), "%%%s: %s",
                                     job.arg->getName().c_str(), job.error.c_str());
    (*out)[job.arg->getName()] = std::move(job.result);
  }
  return out;
}

std::unique_ptr<Built> buildLayer(const LayerDesc &L, ElemType wt) {
  auto b = std::make_unique<Built>();
  b->layer = &L;
  b->wt = wt;
  auto t0 = Clock::now();
  auto fail = [&](std::string m) {
    b->error = std::string(L.name) + "/" + elemTypeName(wt).str() + ": " + m;
    return std::move(b);
  };

  auto m = loadLayer(L, wt);
  if (!m)
    return fail(errStr(m.takeError()));
  b->module = std::move(*m);
  const Function &f = *b->module->functions[0];

  // The hard-coded sizes must be the IR's.
  const Value *x = findArg(f, "x"), *down = findArg(f, "down_exps");
  if (constDim(x, 1) != L.nEmbd || constDim(down, 0) != L.nExpert ||
      constDim(down, 1) != L.nEmbd || constDim(down, 2) != L.nFf)
    return fail("the IR's sizes (x, down_exps) are not the benchmark's");

  ExecOptions eo;
  eo.threads = gThreads;
  eo.jit.useCache = true;
  eo.jit.perf = gPerf;
  auto exe = Executable::compile(f, eo);
  if (!exe)
    return fail(errStr(exe.takeError()));
  b->exe = std::move(*exe);

  // Params: whole values through the Binder (derived ones computed from their
  // sources), only those the function uses, converted to the stored layout.
  SymbolBindings syms;
  syms["T"] = 1;
  double compileS = secondsSince(t0), genS = 0;
  auto t1 = Clock::now();
  {
    std::vector<Value *> args = f.getArguments();
    auto tg = Clock::now();
    auto pregen = pregenerateParams(f, syms);
    genS = secondsSince(tg);
    if (!pregen)
      return fail(errStr(pregen.takeError()));
    auto fallback = randomSource(gSeed);
    Binder binder(
        f,
        [pre = std::move(*pregen), fallback](const Value &arg, ElemType elem,
                                             llvm::ArrayRef<int64_t> shape) mutable
            -> llvm::Expected<Tensor> {
          auto it = pre->find(arg.getName());
          if (it == pre->end() || it->second.elem != elem ||
              llvm::ArrayRef<int64_t>(it->second.shape) != shape)
            return fallback(arg, elem, shape);
          Tensor t = std::move(it->second);
          pre->erase(it);
          return t;
        },
        syms);
    // Every whole value first (a derived one reads its sources from the
    // Binder's cache), then moved out of the Binder, which goes right after.
    std::vector<Tensor *> whole(args.size(), nullptr);
    for (unsigned i = 0; i < args.size(); ++i) {
      Value *a = args[i];
      if (!a->isParam() || a->use_empty())
        continue;
      auto w = binder.whole(a->getName());
      if (!w)
        return fail(errStr(w.takeError()));
      whole[i] = const_cast<Tensor *>(*w);
    }
    b->argPtr.assign(args.size(), nullptr);
    b->params.reserve(args.size()); // stable addresses
    b->halves.reserve(args.size());
    for (unsigned i = 0; i < args.size(); ++i) {
      if (!whole[i])
        continue;
      Tensor &t = *whole[i];
      switch (t.elem) {
      case ElemType::F16:
      case ElemType::BF16: {
        auto &h = b->halves.emplace_back(t.f.size());
        for (size_t j = 0; j < h.size(); ++j)
          h[j] = t.elem == ElemType::F16 ? f32ToF16(t.f[j]) : f32ToBF16(t.f[j]);
        b->argPtr[i] = h.data();
        t = Tensor();
        break;
      }
      default: {
        Tensor &c = b->params.emplace_back(std::move(t));
        b->argPtr[i] = c.elem == ElemType::F32   ? (const void *)c.f.data()
                       : c.elem == ElemType::I32 ? (const void *)c.i.data()
                                                 : (const void *)c.raw.data();
      }
      }
    }
  } // the Binder's whole values (also the unused merged-away ones) go here

  double paramsS = secondsSince(t1);
  auto t2 = Clock::now();

  // Inputs: kVariants x kMaxT tokens of each non-param argument.
  std::vector<Value *> args = f.getArguments();
  for (unsigned i = 0; i < args.size(); ++i) {
    Value *a = args[i];
    if (a->isParam())
      continue;
    const TensorType &ty = a->getType();
    if (ty.dims.empty() || ty.dims[0].getConstant() || ty.elem != ElemType::F32)
      return fail("input %" + a->getName() + " is not an f32 tensor of T rows");
    int64_t rowElems = 1;
    for (size_t d = 1; d < ty.dims.size(); ++d) {
      auto c = ty.dims[d].getConstant();
      if (!c)
        return fail("input %" + a->getName() + " has a symbolic inner dim");
      rowElems *= *c;
    }
    std::vector<int64_t> shape = {kVariants * kMaxT};
    for (size_t d = 1; d < ty.dims.size(); ++d)
      shape.push_back(*ty.dims[d].getConstant());
    auto t = randomTensor(gSeed, a->getName(), ElemType::F32, shape, /*isParam=*/false);
    if (!t)
      return fail(errStr(t.takeError()));
    b->inputs.push_back({i, rowElems, std::move(t->f)});
  }

  double inputsS = secondsSince(t2);
  auto t3 = Clock::now();

  // Routing on the host: which experts each token picks (top-k is taken on
  // the logits; the softmax before it does not change the order).
  auto inputData = [&](llvm::StringRef name) -> const Built::Input * {
    for (auto &in : b->inputs)
      if (args[in.arg]->getName() == name)
        return &in;
    return nullptr;
  };
  auto paramData = [&](llvm::StringRef name) -> const float * {
    for (unsigned i = 0; i < args.size(); ++i)
      if (args[i]->getName() == name && args[i]->getType().elem == ElemType::F32)
        return static_cast<const float *>(b->argPtr[i]);
    return nullptr;
  };
  const Built::Input *xin = inputData("x"), *login = inputData("logits");
  const float *router = paramData("gate_inp"), *routerBias = paramData("gate_inp_b");
  if (!(xin && router) && !login)
    return fail("cannot find the router (param gate_inp or input logits)");
  b->ids.assign(kVariants, std::vector<int32_t>(kMaxT * L.nUsed));
  std::vector<float> logits(L.nExpert);
  for (int64_t v = 0; v < kVariants; ++v)
    for (int64_t t = 0; t < kMaxT; ++t) {
      int64_t tok = v * kMaxT + t;
      const float *lp;
      if (xin && router) {
        const float *xr = xin->data.data() + tok * L.nEmbd;
        for (int64_t e = 0; e < L.nExpert; ++e)
          logits[e] = dot(xr, router + e * L.nEmbd, L.nEmbd) + (routerBias ? routerBias[e] : 0);
        lp = logits.data();
      } else {
        lp = login->data.data() + tok * L.nExpert;
      }
      topk(lp, L.nExpert, L.nUsed, b->ids[v].data() + t * L.nUsed);
    }

  b->expertBytes = 2 * L.nFf * rowBytes(wt, L.nEmbd) + L.nEmbd * rowBytes(wt, L.nFf);
  b->routerBytes = router ? L.nExpert * L.nEmbd * 4 + (routerBias ? L.nExpert * 4 : 0) : 0;
  double routingS = secondsSince(t3);
  b->buildSeconds = secondsSince(t0);
  std::fprintf(stderr, "[moe-bench] built %s/%s in %.1f s: parse+pipeline+compile %.2f s "
                       "(JIT %.0f ms, %u kernels, %u from cache), params %.1f s (generated in %.1f s), inputs %.1f "
                       "s, host routing %.1f s\n",
               L.name, elemTypeName(wt).str().c_str(), b->buildSeconds, compileS,
               b->exe->jitStats().compileMs, b->exe->numKernels(),
               b->exe->jitStats().modulesFromCache, paramsS, genS, inputsS, routingS);
  return b;
}

/// The built layer of (layer, type). Real-size weights take GBs (f32 gpt-oss:
/// 3.2 GB), so the map keeps only the pair last asked for: benchmarks run in
/// registration order, every T of a pair one after another.
Built *getBuilt(int layer, ElemType wt) {
  static std::map<std::pair<int, int>, std::unique_ptr<Built>> cache;
  auto key = std::make_pair(layer, (int)wt);
  auto it = cache.find(key);
  if (it != cache.end())
    return it->second.get();
  cache.clear(); // free the previous pair's weights before building this one
  return (cache[key] = buildLayer(kLayers[layer], wt)).get();
}

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

double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
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
  auto setInputs = [&](int64_t v) {
    for (auto &in : b->inputs)
      args[in.arg] = in.data.data() + v * kMaxT * in.rowElems;
  };
  // Warm-up: the memory plan for this T, the pool's threads.
  for (int64_t v = 0; v < 2; ++v) {
    setInputs(v);
    auto r = b->exe->runRaw(args, syms);
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
    auto t0 = Clock::now();
    auto r = b->exe->runRaw(args, syms);
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
  state.counters["frac_dram_bw"] = gDramReadGbps > 0 ? gbps / gDramReadGbps : 0;
  double runs = (double)times.size();
  state.counters["faults_per_run"] = (double)(u1.minorFaults - u0.minorFaults) / runs;
  state.counters["preempt_per_run"] = (double)(u1.preempted - u0.preempted) / runs;
  state.counters["cpu_util"] = (u1.cpuSeconds - u0.cpuSeconds) / (wall * b->exe->threads());
  state.SetLabel(std::to_string(b->exe->threads()) + " threads");
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
  ExecOptions eo;
  eo.threads = gThreads;
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

} // namespace

int main(int argc, char **argv) {
  std::vector<char *> args(argv, argv + argc);
  std::string v;
  if (takeFlag(args, "moe_threads", v))
    gThreads = (unsigned)std::strtoul(v.c_str(), nullptr, 10);
  if (takeFlag(args, "moe_perf", v))
    gPerf = v == "1" || v == "true";
  if (takeFlag(args, "moe_seed", v))
    gSeed = std::strtoull(v.c_str(), nullptr, 10);
  if (takeFlag(args, "moe_examples", v))
    gExamples = v;
  if (gExamples.empty()) { // <repo>/bench/MoeLayerBench.cpp -> <repo>/examples
    llvm::SmallString<256> p(__FILE__);
    llvm::sys::path::remove_filename(p);
    llvm::sys::path::remove_filename(p);
    llvm::sys::path::append(p, "examples");
    gExamples = std::string(p);
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
    auto [dram1, dramN] = measureDramRead(effectiveThreads());
    gDramReadGbps = dram1;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f", gFmaPeakGflops);
    benchmark::AddCustomContext("fma_peak_gflops", buf);
    std::snprintf(buf, sizeof buf, "%u", effectiveThreads());
    benchmark::AddCustomContext("fma_peak_threads", buf);
    std::snprintf(buf, sizeof buf, "%.1f", gDramReadGbps);
    benchmark::AddCustomContext("dram_read_gbps_1thread", buf);
    std::snprintf(buf, sizeof buf, "%.1f", dramN);
    benchmark::AddCustomContext("dram_read_gbps_all_threads", buf);
  }
  benchmark::AddCustomContext("moe_examples", gExamples);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
