//===- ExecutableCompile.cpp - Functions lowered together, compiled once --===//
//
// Executable::compile and compileAll: every function given (a model's
// blocks) and every variant of one is lowered into one LLVM module, with a
// per-function kernel-name prefix; functions that lower alike (codegenKey)
// are lowered once and the others copy the program; identical kernels are
// then shared by content (codegen/ShareKernels.h), and the module is one
// object-cache entry, compiled in parts on the JIT's threads on a miss
// (codegen/Jit.h). The rest of Executable is in Executable.cpp.
//
//===----------------------------------------------------------------------===//
#include "runtime/Executable.h"
#include "codegen/ShareKernels.h"
#include "ir/Error.h"

#include "fmt/format.h"

#include "llvm/ADT/StringSet.h"

#include <map>

using namespace moe;
using namespace moe::codegen;

llvm::Expected<std::unique_ptr<Executable>> Executable::compile(const Function &f,
                                                                const ExecOptions &opts) {
  auto all = compileAll({&f}, opts);
  if (!all)
    return all.takeError();
  return std::move(all->front());
}

llvm::Expected<std::vector<std::unique_ptr<Executable>>>
Executable::compileAll(llvm::ArrayRef<const Function *> fs, const ExecOptions &opts,
                       llvm::ArrayRef<unsigned> threads) {
  auto jit = Jit::create(opts.jit);
  if (!jit)
    return jit.takeError();
  std::shared_ptr<Jit> shared = std::move(*jit);
  std::map<unsigned, std::shared_ptr<WorkerPool>> pools;
  auto poolOf = [&](size_t i) {
    unsigned n = i < threads.size() ? threads[i] : opts.threads;
    auto &p = pools[n];
    if (!p)
      p = std::make_shared<WorkerPool>(n);
    return p;
  };
  // Every function and variant lowered into one module. The kernel names'
  // prefix tells them apart: one function keeps `moe` (its cache key is
  // the one `moe-run` computes), several are `moe_f<i>`; variant j adds
  // `_v<j>`. Variants run on their function's pool (their own has only
  // the caller).
  if (fs.empty())
    return err("internal error: no function to compile");
  llvm::LLVMContext context;
  llvm::Module module(
      fs.size() == 1 ? "moe." + fs[0]->getName()
                     : fmt::format("moe.{}+{}", fs[0]->getName(), fs.size() - 1),
      context);
  LowerOptions lo;
  lo.target = shared->target();
  lo.into = &module;
  std::vector<std::unique_ptr<Executable>> out;
  std::vector<Executable *> all;
  // Several functions that lower alike (a model's blocks: codegenKey, their
  // text without their names and tensor names) are lowered once: the others
  // take a copy of the first one's program, kernels included. A function
  // with variants is always lowered (its variants belong to it).
  std::map<std::string, const Executable *> lowered;
  auto make = [&](const Function &f, std::string prefix,
                  std::shared_ptr<WorkerPool> p) -> llvm::Expected<std::unique_ptr<Executable>> {
    std::unique_ptr<Executable> x(new Executable());
    x->fn = f.clone();
    x->jit = shared;
    x->pool = std::move(p);
    std::string key = fs.size() > 1 && f.getVariants().empty() ? codegenKey(f) : "";
    if (auto it = lowered.find(key); !key.empty() && it != lowered.end()) {
      x->prog = copyProgram(it->second->prog, *it->second->fn, *x->fn);
    } else {
      lo.prefix = std::move(prefix);
      auto prog = lowerFunction(*x->fn, lo);
      if (!prog)
        return prog.takeError();
      x->prog = std::move(*prog);
      if (!key.empty())
        lowered[key] = x.get();
    }
    all.push_back(x.get());
    return x;
  };
  for (size_t i = 0; i < fs.size(); ++i) {
    std::string prefix = fs.size() == 1 ? "moe" : fmt::format("moe_f{}", i);
    auto x = make(*fs[i], prefix, poolOf(i));
    if (!x)
      return x.takeError();
    unsigned j = 0;
    for (const Function *v : fs[i]->getVariants()) {
      auto ve = make(*v, fmt::format("{}_v{}", prefix, j++), std::make_shared<WorkerPool>(1));
      if (!ve)
        return ve.takeError();
      (*x)->variants.push_back(std::move(*ve));
    }
    out.push_back(std::move(*x));
  }
  // Kernels shared: the definitions each function would have compiled on
  // its own, less those compiled.
  std::vector<std::vector<codegen::Step> *> stepsOf;
  size_t definitions = 0;
  for (Executable *x : all) {
    stepsOf.push_back(&x->prog.steps);
    llvm::StringSet<> own;
    for (const auto &s : x->prog.steps)
      if (s.kind == StepKind::Kernel)
        own.insert(s.symbol);
    definitions += own.size();
  }
  shareIdenticalKernels(module, stepsOf);
  llvm::StringSet<> compiled;
  for (Executable *x : all)
    for (const auto &s : x->prog.steps)
      if (s.kind == StepKind::Kernel)
        compiled.insert(s.symbol);
  unsigned sharedKernels = (unsigned)(definitions - compiled.size());
  std::vector<const std::vector<codegen::Step> *> lists(stepsOf.begin(), stepsOf.end());
  if (auto e = shared->addKernels(module, lists))
    return e;
  for (Executable *x : all) {
    x->shared = sharedKernels;
    for (auto &s : x->prog.steps) {
      codegen::KernelFn k = nullptr;
      if (s.kind == StepKind::Kernel) {
        auto a = shared->lookup(s.symbol);
        if (!a)
          return a.takeError();
        k = *a;
      }
      x->kernels.push_back(k);
    }
  }
  return out;
}
