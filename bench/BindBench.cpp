//===- BindBench.cpp - Binding a real-size layer from a GGUF file ---------===//
//
// bind/<layer>/<type> (qwen3 and gptoss; q8_0, q4_0, bf16): the layer's
// block written as a GGUF model at real size (`moe-gguf tiny` with the
// layer's sizes, one block, into $TMPDIR), imported (`moe-import --layer
// 0`), the `default` pipeline run, compiled, then bound the way `moe-run
// --weights` binds it: the file mapped, every param in place, the weights
// packed at bind time (Executable::packWeights) with the mapped pages the
// packed copies replace dropped and the merged gate_up joined per chunk.
// Each iteration binds afresh (the mapping's pages come back from the page
// cache) and runs the layer once at T = 1.
//
// In a VM, bind_ms is dominated by first-touch faults of the packed
// copies' fresh pages (the host backing them; `perf`: 60% of the time in
// page faults, clear_page), and varies with what the process touched
// before: on the same file moe-run --weights --time binds qwen3 q8_0 in
// 110-250 ms, this benchmark (a process that has touched GBs) in 0.7-1.3 s.
//
// Counters:
//   bind_ms          median time of a binding (storedArgsForRank +
//                    packWeights)
//   weight_mb        bytes of the layer's tensors in the file (MB)
//   packed_mb        bytes of the packed copies
//   resident_mb      growth of the process's resident memory from before
//                    the binding to after it and one run
//   peak_mb          growth of its peak resident memory over the same span
//                    (VmHWM, reset before each binding through
//                    /proc/self/clear_refs)
//   arena_mb         the run's memory plan (T = 1)
//   peak_over_weights (peak_mb - arena_mb) / weight_mb: #19's measure of
//                    "peak resident memory after binding at most 1.1x the
//                    weights' bytes plus the arena"
//
//===----------------------------------------------------------------------===//
#include "bench/BindBench.h"
#include "bench/Layers.h"

#include "io/Gguf.h"
#include "ir/Error.h"
#include "ir/ParamDerive.h"
#include "ir/Parser.h"
#include "runtime/Binder.h"
#include "runtime/Executable.h"
#include "runtime/GgufSource.h"
#include "runtime/Random.h"
#include "tools/lib/Importer.h"
#include "tools/lib/TinyModel.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <fcntl.h>
#include <unistd.h>

using namespace moe;
using namespace moe::bench;

namespace {

/// Resident memory now and at its peak since the last reset, in bytes
/// (/proc/self/status VmRSS, VmHWM).
std::pair<double, double> resident() {
  double rss = 0, hwm = 0;
  if (std::FILE *f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      long kb;
      if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1)
        rss = 1024.0 * (double)kb;
      if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1)
        hwm = 1024.0 * (double)kb;
    }
    std::fclose(f);
  }
  return {rss, hwm};
}

/// Resets the peak (VmHWM) to the current resident memory.
void resetPeak() {
  if (std::FILE *f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

const char *archOf(const LayerDesc &L) {
  return std::string(L.name) == "gptoss" ? "gpt-oss" : "qwen3moe";
}

} // namespace

/// The layer's block as a GGUF file at `path`.
llvm::Error moe::bench::writeLayerModel(const LayerDesc &L, ElemType wt, const std::string &path) {
  TinyModelOptions o;
  o.arch = archOf(L);
  o.type = wt;
  o.blocks = 1;
  o.nEmbd = L.nEmbd;
  o.nFf = L.nFf;
  o.nExpert = L.nExpert;
  o.nExpertUsed = L.nUsed;
  o.seed = gSettings.seed;
  auto bytes = makeTinyModel(o);
  if (!bytes)
    return bytes.takeError();
  {
    std::ofstream os(path, std::ios::binary);
    os.write(bytes->data(), (std::streamsize)bytes->size());
    if (!os)
      return err("cannot write {}", path);
  }
  // On disk before the binding is timed: a file still being written back
  // makes its pages slow to map (3-10x, measured), which no user's
  // model file is.
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0)
    return err("cannot sync {}", path);
  ::close(fd);
  return llvm::Error::success();
}

namespace {

void BM_Bind(benchmark::State &state, int layer, ElemType wt) {
  const LayerDesc &L = kLayers[layer];
  auto fail = [&](llvm::Error e) {
    std::string m = errStr(std::move(e));
    state.SkipWithError(m.c_str());
  };
  llvm::SmallString<128> path;
  llvm::sys::path::system_temp_directory(true, path);
  llvm::sys::path::append(path, "moe-bind-" + std::to_string(getpid()) + ".gguf");
  std::string file = path.str().str();
  if (auto e = writeLayerModel(L, wt, file))
    return fail(std::move(e));
  struct Remove {
    std::string p;
    ~Remove() { llvm::sys::fs::remove(p); }
  } remove{file};
  std::shared_ptr<const gguf::GgufFile> gguf;
  {
    auto g = gguf::GgufFile::open(file);
    if (!g)
      return fail(g.takeError());
    gguf = std::move(*g);
  }
  auto text = importLayer(*gguf, 0);
  if (!text)
    return fail(text.takeError());
  auto m = parseModuleString(*text, file);
  if (!m)
    return fail(m.takeError());
  if (auto e = runDefaultPipeline(**m))
    return fail(std::move(e));
  const Function &f = *(*m)->functions[0];
  ExecOptions eo = benchExecOptions();
  auto exe = Executable::compile(f, eo);
  if (!exe)
    return fail(exe.takeError());
  SymbolBindings syms{{"T", 1}};
  auto plan = (*exe)->plan(syms);
  if (!plan)
    return fail(plan.takeError());

  InPlaceSource inPlace = ggufInPlaceSource(gguf);
  ArgSource source = ggufSource(gguf, randomSource(gSettings.seed));
  ReleaseFn release = [gguf](const void *p, size_t n) { gguf->releasePages(p, n); };
  double weightBytes = 0;
  for (const Value *a : f.getArguments()) {
    auto d = getDerivation(*a);
    if (!d)
      return fail(d.takeError());
    if (!a->isParam() || *d)
      continue;
    auto shape = evaluateShape(a->getType(), syms);
    if (!shape)
      return fail(shape.takeError());
    int64_t n = 1;
    for (int64_t x : *shape)
      n *= x;
    weightBytes += (double)rowBytes(a->getType().elem, n);
  }

  std::vector<double> times;
  double residentGrowth = 0, peakGrowth = 0, packedBytes = 0;
  for (auto _ : state) {
    resetPeak();
    double before = resident().first;
    auto t0 = Clock::now();
    Binder binder(f, source, syms, inPlace, release);
    auto stored = binder.storedArgsForRank(0, (*exe)->packedOnly(syms));
    if (!stored)
      return fail(stored.takeError());
    uint64_t version = Executable::newParamsVersion();
    if (auto e = (*exe)->packWeights(*stored, syms, version))
      return fail(std::move(e));
    double s = secondsSince(t0);
    state.SetIterationTime(s);
    times.push_back(s);
    RunOptions ro;
    ro.paramsVersion = version;
    auto r = (*exe)->runRaw(stored->ptrs, syms, ro);
    if (!r)
      return fail(r.takeError());
    auto [now, peak] = resident();
    residentGrowth = now - before;
    peakGrowth = peak - before;
    packedBytes = (double)stored->stats.packedBytes;
  }
  std::sort(times.begin(), times.end());
  double arena = (double)plan->peakBytes;
  state.counters["bind_ms"] = times.empty() ? 0 : times[times.size() / 2] * 1e3;
  state.counters["weight_mb"] = weightBytes / 1e6;
  state.counters["packed_mb"] = packedBytes / 1e6;
  state.counters["resident_mb"] = residentGrowth / 1e6;
  state.counters["peak_mb"] = peakGrowth / 1e6;
  state.counters["arena_mb"] = arena / 1e6;
  state.counters["peak_over_weights"] = weightBytes > 0 ? (peakGrowth - arena) / weightBytes : 0;
}

} // namespace

void moe::bench::registerBindBenchmarks() {
  for (int l = 0; l < 2; ++l) // qwen3, gptoss
    for (ElemType wt : {ElemType::Q8_0, ElemType::Q4_0, ElemType::BF16})
      benchmark::RegisterBenchmark(
          (std::string("bind/") + kLayers[l].name + "/" + elemTypeName(wt).str()).c_str(),
          [l, wt](benchmark::State &s) { BM_Bind(s, l, wt); })
          ->UseManualTime()
          ->Iterations(3)
          ->Unit(benchmark::kMillisecond);
}
