//===- Jit.cpp - ORC LLJIT for the host, with an object cache -------------===//
//
// See Jit.h.
//
//===----------------------------------------------------------------------===//
#include "codegen/Jit.h"
#include "codegen/ObjectCache.h"
#include "ir/Error.h"

#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/ExecutionEngine/JITEventListener.h"
#include "llvm/ExecutionEngine/Orc/CompileUtils.h"
#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/RTDyldObjectLinkingLayer.h"
#include "llvm/ExecutionEngine/SectionMemoryManager.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/Transforms/Utils/Cloning.h"

#include "fmt/format.h"

#include <chrono>

using namespace moe;
using namespace moe::codegen;
namespace orc = llvm::orc;

extern "C" void moe_rt_error(KernelErrorSlot *slot, int64_t site, int64_t pos, int64_t id,
                             int64_t limit) {
  int expected = 0;
  if (slot->failed.compare_exchange_strong(expected, 1)) {
    slot->site = site;
    slot->pos = pos;
    slot->id = id;
    slot->limit = limit;
  }
}

static void initNative() {
  static bool done = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)done;
}

std::string codegen::defaultCacheDir() {
  if (auto d = llvm::sys::Process::GetEnv("MOE_CACHE_DIR"); d && !d->empty())
    return *d;
  if (auto d = llvm::sys::Process::GetEnv("XDG_CACHE_HOME"); d && !d->empty())
    return *d + "/moe";
  llvm::SmallString<128> home;
  if (llvm::sys::path::home_directory(home))
    return std::string(home) + "/.cache/moe";
  return "/tmp/moe-cache";
}

static orc::JITTargetMachineBuilder builderFor(const Target &t) {
  initNative();
  orc::JITTargetMachineBuilder jtmb{llvm::Triple(llvm::sys::getProcessTriple())};
  jtmb.setCPU(t.cpu);
  if (!t.features.empty()) {
    llvm::SmallVector<llvm::StringRef, 64> fs;
    llvm::StringRef(t.features).split(fs, ',', -1, false);
    jtmb.addFeatures(std::vector<std::string>(fs.begin(), fs.end()));
  }
  jtmb.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  return jtmb;
}

llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
codegen::createTargetMachine(const Target &t) {
  return builderFor(t).createTargetMachine();
}

void codegen::optimizeModule(llvm::Module &m, llvm::TargetMachine &tm) {
  m.setDataLayout(tm.createDataLayout());
  m.setTargetTriple(tm.getTargetTriple().str());
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PipelineTuningOptions pto;
  pto.LoopVectorization = true;
  // Off: the kernels are vector code already (the matmuls, the prepare
  // steps) or loops for the loop vectoriser; SLP was 7-35% of a kernel's
  // O3 time (a prepare step's 16-lane scale inserts) and, alternating runs
  // on Sapphire Rapids, no kernel of a real-size layer ran slower without
  // it (per-kernel profile of gpt-oss q8_0 at T = 512: 600 against 605 ms).
  pto.SLPVectorization = false;
  llvm::PassBuilder pb(&tm, pto);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  mpm.run(m, mam);
}

llvm::Expected<std::unique_ptr<Jit>> Jit::create(const JitOptions &opts) {
  auto target = Target::named(opts.cpu);
  if (!target)
    return target.takeError();
  orc::JITTargetMachineBuilder jtmb = builderFor(*target);
  std::unique_ptr<Jit> j(new Jit());
  j->opts = opts;
  j->tgt = *target;
  if (j->opts.cacheDir.empty())
    j->opts.cacheDir = defaultCacheDir();
  auto tm = jtmb.createTargetMachine();
  if (!tm)
    return tm.takeError();
  j->tm = std::move(*tm);

  Jit *self = j.get();
  auto built =
      orc::LLJITBuilder()
          .setJITTargetMachineBuilder(jtmb)
          .setObjectLinkingLayerCreator([self](orc::ExecutionSession &es, const llvm::Triple &)
                                            -> llvm::Expected<std::unique_ptr<orc::ObjectLayer>> {
            auto layer = std::make_unique<orc::RTDyldObjectLinkingLayer>(
                es, [] { return std::make_unique<llvm::SectionMemoryManager>(); });
            if (self->opts.perf) {
              for (auto *l : {llvm::JITEventListener::createGDBRegistrationListener(),
                              llvm::JITEventListener::createPerfJITEventListener()})
                if (l) {
                  layer->registerJITEventListener(*l);
                  self->listeners.push_back(l);
                }
            }
            return layer;
          })
          .create();
  if (!built)
    return built.takeError();
  j->jit = std::move(*built);

  auto &main = j->jit->getMainJITDylib();
  auto gen = orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      j->jit->getDataLayout().getGlobalPrefix());
  if (!gen)
    return gen.takeError();
  main.addGenerator(std::move(*gen));
  orc::SymbolMap rtSyms;
  rtSyms[j->jit->mangleAndIntern("moe_rt_error")] = {
      orc::ExecutorAddr::fromPtr(&moe_rt_error), llvm::JITSymbolFlags::Exported};
  if (auto e = main.define(orc::absoluteSymbols(std::move(rtSyms))))
    return e;
  return j;
}

Jit::~Jit() {
  if (jit)
    if (auto e = jit->getExecutionSession().endSession())
      llvm::consumeError(std::move(e));
}

void Jit::warn(const std::string &m) {
  if (opts.warn)
    opts.warn(m);
  else
    llvm::errs() << "moe: warning: " << m << "\n";
}

void Jit::dumpObject(llvm::StringRef name, llvm::StringRef object) {
  std::string path = opts.dumpObjectDir + "/" + (name.empty() ? "kernels" : name.str()) + ".o";
  if (auto ec = llvm::sys::fs::create_directories(opts.dumpObjectDir)) {
    warn(fmt::format("cannot create {}: {}", opts.dumpObjectDir, ec.message()));
    return;
  }
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    warn(fmt::format("cannot write {}: {}", path, ec.message()));
  else
    os << object;
}

/// `m` optimised (O3) and compiled to an object by `tm`.
static llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> compileWith(llvm::Module &m,
                                                                      llvm::TargetMachine &tm) {
  optimizeModule(m, tm);
  orc::SimpleCompiler compiler(tm);
  return compiler(m);
}

llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> Jit::compile(llvm::Module &m) {
  return compileWith(m, *tm);
}

/// The measure parts are balanced by: `f`'s instructions. (Scalar
/// floating-point loops used to count 10 times, when O3 still unrolled them
/// around their vectorised bodies: the slot sum's 90 instructions became
/// 1021. Unrolled only in the matmul microkernels now (KernelEmitter::
/// unrollLoops), a kernel's O3 output is about as long as its input or
/// shorter: the slot sum 78, a q8_0 expert matmul 1273 -> 866.)
static size_t costOf(const llvm::Function &f) {
  return f.getInstructionCount();
}

std::vector<std::unique_ptr<llvm::Module>> codegen::splitForCompile(const llvm::Module &m,
                                                                     unsigned parts) {
  std::vector<const llvm::Function *> kernels;
  for (const llvm::Function &f : m)
    if (!f.isDeclaration())
      kernels.push_back(&f);
  parts = std::max(1u, std::min<unsigned>(parts, kernels.size()));
  // Costliest first, each to the lightest part so far: the parts' O3 and
  // code generation take about as long. With a kernel per part, part 0 is
  // the costliest, so a pool taking them in order starts it first.
  std::vector<std::pair<size_t, const llvm::Function *>> bySize;
  for (const llvm::Function *f : kernels)
    bySize.push_back({costOf(*f), f});
  std::stable_sort(bySize.begin(), bySize.end(),
                   [](const auto &a, const auto &b) { return a.first > b.first; });
  std::vector<size_t> load(parts, 0);
  llvm::DenseMap<const llvm::Function *, unsigned> partOf;
  for (auto &[size, f] : bySize) {
    unsigned best = std::min_element(load.begin(), load.end()) - load.begin();
    partOf[f] = best;
    load[best] += size;
  }
  std::vector<std::unique_ptr<llvm::Module>> out;
  for (unsigned i = 0; i < parts; ++i) {
    llvm::ValueToValueMapTy vmap;
    // A part defines its kernels and every constant (private tables are
    // copied into each part that may use them); other kernels become
    // declarations and are dropped.
    auto part = llvm::CloneModule(m, vmap, [&](const llvm::GlobalValue *gv) {
      auto *f = llvm::dyn_cast<llvm::Function>(gv);
      return !f || partOf.lookup(f) == i;
    });
    for (llvm::Function &f : llvm::make_early_inc_range(*part))
      if (f.isDeclaration() && f.use_empty())
        f.eraseFromParent();
    for (llvm::GlobalVariable &g : llvm::make_early_inc_range(part->globals()))
      if (g.hasLocalLinkage() && g.use_empty())
        g.eraseFromParent();
    part->setModuleIdentifier(parts == 1 ? m.getModuleIdentifier()
                                         : m.getModuleIdentifier() + "." + std::to_string(i));
    out.push_back(std::move(part));
  }
  return out;
}

llvm::Error Jit::addProgram(Program &p) { return addKernels(*p.module, {&p.steps}); }

llvm::Error Jit::addKernels(llvm::Module &m, llvm::ArrayRef<const std::vector<Step> *> steps) {
  auto t0 = std::chrono::steady_clock::now();
  m.setDataLayout(jit->getDataLayout());
  m.setTargetTriple(jit->getTargetTriple().str());
  std::string problems;
  llvm::raw_string_ostream ps(problems);
  if (llvm::verifyModule(m, &ps))
    return err("internal error: codegen produced invalid LLVM IR: {}", problems);

  ObjectCache cache(opts.cacheDir, [this](const std::string &w) { warn(w); });
  std::string target = jit->getTargetTriple().str() + tgt.description();
  st.cacheKey = ObjectCache::keyOf(m, target);
  std::string name = m.getModuleIdentifier();
  // One cache entry per program, under the key of its whole module (what
  // every front end computes for a function). On a miss the module is
  // compiled in parts, up to eight per compile thread (one part when objects are
  // dumped: a function's object file is one file), each part on a thread of
  // the pool with its own LLVMContext and TargetMachine as LLVM requires;
  // the parts' objects are stored together under the key.
  bool fromCache = false;
  if (opts.useCache) {
    st.cachePath = cache.pathOf(st.cacheKey);
    auto objs = cache.load(st.cacheKey);
    fromCache = !objs.empty();
    for (auto &obj : objs) {
      if (!opts.dumpObjectDir.empty())
        dumpObject(objs.size() == 1 ? name : name + "." + std::to_string(&obj - &objs[0]),
                   obj->getBuffer());
      if (auto e = jit->addObjectFile(std::move(obj))) {
        // Parts before this one are linked: a recompile would define their
        // symbols twice, so this is an error, not a warning.
        if (&obj != &objs[0])
          return err("{}: {}", st.cachePath, llvm::toString(std::move(e)));
        warn(fmt::format("{}: {}; recompiling", st.cachePath, llvm::toString(std::move(e))));
        fromCache = false;
        break;
      }
    }
  }
  if (!fromCache) {
    unsigned threads = opts.compileThreads ? opts.compileThreads
                                           : llvm::hardware_concurrency().compute_thread_count();
    std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects;
    if (threads <= 1 || !opts.dumpObjectDir.empty()) {
      auto compiled = compile(m);
      if (!compiled)
        return compiled.takeError();
      objects.push_back(std::move(*compiled));
    } else {
      // A kernel per part, up to eight parts per thread, costliest first:
      // the threads take them as they finish, so one large kernel (an AMX
      // bf16 matmul) does not leave a thread idle. (A real-size layer's 15
      // kernels on 2 threads: 198-208 ms cold against 218-246 in 8 parts
      // balanced by their sizes alone.)
      auto parts = splitForCompile(m, 8 * threads);
      struct Part {
        llvm::SmallVector<char, 0> bitcode;
        std::string name, error;
        std::unique_ptr<llvm::MemoryBuffer> object;
      };
      std::vector<Part> work(parts.size());
      for (size_t i = 0; i < parts.size(); ++i) {
        llvm::raw_svector_ostream os(work[i].bitcode);
        llvm::WriteBitcodeToFile(*parts[i], os);
        work[i].name = parts[i]->getModuleIdentifier();
      }
      llvm::DefaultThreadPool pool(llvm::hardware_concurrency(threads));
      for (Part &w : work)
        pool.async([this, &w] {
          llvm::LLVMContext ctx;
          auto mod = llvm::parseBitcodeFile(
              llvm::MemoryBufferRef(llvm::StringRef(w.bitcode.data(), w.bitcode.size()), w.name),
              ctx);
          if (!mod) {
            w.error = llvm::toString(mod.takeError());
            return;
          }
          auto partTm = createTargetMachine(tgt);
          if (!partTm) {
            w.error = llvm::toString(partTm.takeError());
            return;
          }
          auto compiled = compileWith(**mod, **partTm);
          if (!compiled)
            w.error = llvm::toString(compiled.takeError());
          else
            w.object = std::move(*compiled);
        });
      pool.wait();
      for (Part &w : work) {
        if (!w.error.empty())
          return err("{}", w.error);
        objects.push_back(std::move(w.object));
      }
    }
    std::vector<llvm::StringRef> bytes;
    for (auto &obj : objects)
      bytes.push_back(obj->getBuffer());
    if (!opts.dumpObjectDir.empty())
      dumpObject(name, bytes[0]);
    if (opts.useCache)
      cache.store(st.cacheKey, bytes);
    for (auto &obj : objects)
      if (auto e = jit->addObjectFile(std::move(obj)))
        return e;
  }
  // Resolve every kernel now, so linking happens here and is timed.
  for (const std::vector<Step> *list : steps)
    for (const Step &s : *list)
      if (s.kind == StepKind::Kernel)
        if (auto a = jit->lookup(s.symbol); !a)
          return a.takeError();
  (fromCache ? st.modulesFromCache : st.modulesCompiled)++;
  st.compileMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return llvm::Error::success();
}

llvm::Expected<KernelFn> Jit::lookup(llvm::StringRef symbol) {
  auto a = jit->lookup(symbol);
  if (!a)
    return a.takeError();
  return a->toPtr<KernelFn>();
}
