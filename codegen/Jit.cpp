//===- Jit.cpp - ORC LLJIT for the host, with an object cache -------------===//
//
// See Jit.h.
//
//===----------------------------------------------------------------------===//
#include "codegen/Jit.h"
#include "codegen/ObjectCache.h"
#include "ir/Error.h"

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
#include "llvm/TargetParser/Host.h"
#include "llvm/Support/raw_ostream.h"

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
  pto.SLPVectorization = true;
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

llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> Jit::compile(llvm::Module &m) {
  optimizeModule(m, *tm);
  orc::SimpleCompiler compiler(*tm);
  return compiler(m);
}

llvm::Error Jit::addProgram(Program &p) {
  auto t0 = std::chrono::steady_clock::now();
  llvm::Module &m = *p.module;
  m.setDataLayout(jit->getDataLayout());
  m.setTargetTriple(jit->getTargetTriple().str());
  std::string problems;
  llvm::raw_string_ostream ps(problems);
  if (llvm::verifyModule(m, &ps))
    return err("internal error: codegen produced invalid LLVM IR: {}", problems);

  ObjectCache cache(opts.cacheDir, [this](const std::string &w) { warn(w); });
  std::string key = ObjectCache::keyOf(m, jit->getTargetTriple().str() + tgt.description());
  st.cacheKey = key;
  std::string name = m.getModuleIdentifier();
  std::unique_ptr<llvm::MemoryBuffer> obj;
  if (opts.useCache) {
    st.cachePath = cache.pathOf(key);
    obj = cache.load(key);
  }
  bool fromCache = obj != nullptr;
  if (obj) {
    if (!opts.dumpObjectDir.empty())
      dumpObject(name, obj->getBuffer());
    if (auto e = jit->addObjectFile(std::move(obj))) {
      warn(fmt::format("{}: {}; recompiling", st.cachePath, llvm::toString(std::move(e))));
      fromCache = false;
    }
  }
  if (!fromCache) {
    auto compiled = compile(m);
    if (!compiled)
      return compiled.takeError();
    if (!opts.dumpObjectDir.empty())
      dumpObject(name, (*compiled)->getBuffer());
    if (opts.useCache)
      cache.store(key, (*compiled)->getBuffer());
    if (auto e = jit->addObjectFile(std::move(*compiled)))
      return e;
  }
  // Resolve every kernel now, so linking happens here and is timed.
  for (auto &s : p.steps)
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
