//===- Layers.cpp - The benchmark's layers, built once per weight type ----===//
#include "bench/Layers.h"

#include "ir/Error.h"
#include "ir/Parser.h"
#include "ir/Verifier.h"
#include "passes/Pass.h"
#include "runtime/Binder.h"
#include "runtime/Formats.h"
#include "runtime/Random.h"
#include "runtime/WeightType.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <thread>

using namespace moe;
using namespace moe::bench;

Settings moe::bench::gSettings;

double moe::bench::median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

llvm::Error moe::bench::runDefaultPipeline(Module &m) {
  DiagEngine diag;
  PassManager pm;
  if (auto e = pm.addPipeline("default"))
    return e;
  return pm.run(m, diag);
}

ExecOptions moe::bench::benchExecOptions() {
  ExecOptions eo;
  eo.threads = gSettings.threads;
  eo.jit.cpu = gSettings.cpu;
  return eo;
}

unsigned moe::bench::effectiveThreads() {
  if (gSettings.threads)
    return gSettings.threads;
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

/// Parses, verifies, retypes the expert weights to `wt` (when given) and runs
/// the `default` pipeline.
llvm::Expected<std::unique_ptr<Module>> moe::bench::loadLayer(const LayerDesc &L,
                                                              std::optional<ElemType> wt) {
  llvm::SmallString<256> path(gSettings.examples);
  llvm::sys::path::append(path, L.file);
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf)
    return err("cannot read {}: {}", path.str().str(), buf.getError().message());
  auto m = parseModuleString((*buf)->getBuffer(), path);
  if (!m)
    return m.takeError();
  DiagEngine diag;
  if (!verifyModule(**m, diag))
    return err("{} does not verify", path.str().str());
  if (wt)
    if (auto e = retypeWeights(**m, *wt, WeightSet::Experts))
      return e;
  if (auto e = runDefaultPipeline(**m))
    return e;
  if ((*m)->functions.empty())
    return err("{} has no function", path.str().str());
  return m;
}

namespace {

std::optional<int64_t> constDim(const Value *v, unsigned i) {
  if (!v || v->getType().dims.size() <= i)
    return std::nullopt;
  return v->getType().dims[i].getConstant();
}

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
      auto t = randomTensor(gSettings.seed, job.arg->getName(), job.arg->getType().elem, job.shape,
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
      return err("%{}: {}", job.arg->getName(), job.error);
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
  const Value *x = f.lookupArgument("x"), *down = f.lookupArgument("down_exps");
  if (constDim(x, 1) != L.nEmbd || constDim(down, 0) != L.nExpert ||
      constDim(down, 1) != L.nEmbd || constDim(down, 2) != L.nFf)
    return fail("the IR's sizes (x, down_exps) are not the benchmark's");

  ExecOptions eo = benchExecOptions();
  eo.jit.useCache = true;
  eo.jit.perf = gSettings.perf;
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
    auto fallback = randomSource(gSettings.seed);
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
    auto t = randomTensor(gSettings.seed, a->getName(), ElemType::F32, shape, /*isParam=*/false);
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

} // namespace

/// The built layer of (layer, type). Real-size weights take GBs (f32 gpt-oss:
/// 3.2 GB), so the map keeps only the pair last asked for: benchmarks run in
/// registration order, every T of a pair one after another.
Built *moe::bench::getBuilt(int layer, ElemType wt) {
  static std::map<std::pair<int, int>, std::unique_ptr<Built>> cache;
  auto key = std::make_pair(layer, (int)wt);
  auto it = cache.find(key);
  if (it != cache.end())
    return it->second.get();
  cache.clear(); // free the previous pair's weights before building this one
  return (cache[key] = buildLayer(kLayers[layer], wt)).get();
}
