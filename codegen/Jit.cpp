//===- Jit.cpp - ORC LLJIT for the host, with an object cache -------------===//
//
// See Jit.h. The cache file is the object followed by a 16-byte trailer:
// "MOEOBJ1\0" and the xxh3 of the object, so a truncated or overwritten file
// is detected before it reaches the linker.
//
//===----------------------------------------------------------------------===//
#include "codegen/Jit.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/ExecutionEngine/JITEventListener.h"
#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/RTDyldObjectLinkingLayer.h"
#include "llvm/ExecutionEngine/SectionMemoryManager.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Object/ObjectFile.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"

#include "fmt/format.h"

#include <chrono>
#include <cstring>

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

/// Bumped whenever the kernels' ABI or code generation changes meaning.
static constexpr const char *kCodegenVersion = "moe-codegen-1";
static constexpr char kTrailerMagic[8] = {'M', 'O', 'E', 'O', 'B', 'J', '1', '\0'};

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

static llvm::Expected<orc::JITTargetMachineBuilder> hostBuilder() {
  initNative();
  auto jtmb = orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb)
    return jtmb.takeError();
  jtmb->setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  return jtmb;
}

llvm::Expected<std::unique_ptr<llvm::TargetMachine>> codegen::createHostTargetMachine() {
  auto jtmb = hostBuilder();
  if (!jtmb)
    return jtmb.takeError();
  return jtmb->createTargetMachine();
}

std::string codegen::hostDescription() {
  auto jtmb = hostBuilder();
  if (!jtmb) {
    llvm::consumeError(jtmb.takeError());
    return "unknown";
  }
  return jtmb->getCPU() + " " + jtmb->getFeatures().getString();
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
  auto jtmb = hostBuilder();
  if (!jtmb)
    return jtmb.takeError();
  std::unique_ptr<Jit> j(new Jit());
  j->opts = opts;
  if (j->opts.cacheDir.empty())
    j->opts.cacheDir = defaultCacheDir();
  auto tm = jtmb->createTargetMachine();
  if (!tm)
    return tm.takeError();
  j->tm = std::move(*tm);

  Jit *self = j.get();
  auto built =
      orc::LLJITBuilder()
          .setJITTargetMachineBuilder(*jtmb)
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

  // O3 in the IR transform layer; the object layer's transform stores what
  // the compile layer produced in the cache (and the dump directory).
  j->jit->getIRTransformLayer().setTransform(
      [self](orc::ThreadSafeModule tsm, const orc::MaterializationResponsibility &)
          -> llvm::Expected<orc::ThreadSafeModule> {
        tsm.withModuleDo([&](llvm::Module &m) { optimizeModule(m, *self->tm); });
        return tsm;
      });
  j->jit->getObjTransformLayer().setTransform(
      [self](std::unique_ptr<llvm::MemoryBuffer> obj)
          -> llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> {
        self->storeObject(*obj);
        return obj;
      });

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

void Jit::storeObject(const llvm::MemoryBuffer &obj) {
  llvm::StringRef bytes = obj.getBuffer();
  if (!opts.dumpObjectDir.empty()) {
    std::string path = opts.dumpObjectDir + "/" + (pendingName.empty() ? "kernels" : pendingName) + ".o";
    if (auto ec = llvm::sys::fs::create_directories(opts.dumpObjectDir))
      warn(fmt::format("cannot create {}: {}", opts.dumpObjectDir, ec.message()));
    else {
      std::error_code ec2;
      llvm::raw_fd_ostream os(path, ec2);
      if (ec2)
        warn(fmt::format("cannot write {}: {}", path, ec2.message()));
      else
        os << bytes;
    }
  }
  if (!opts.useCache || !storeToCache || pendingKey.empty())
    return;
  if (auto ec = llvm::sys::fs::create_directories(opts.cacheDir)) {
    warn(fmt::format("object cache {} is not usable ({}); continuing without it",
                     opts.cacheDir, ec.message()));
    return;
  }
  std::string path = opts.cacheDir + "/" + pendingKey + ".o";
  llvm::SmallString<128> tmp;
  int fd;
  if (auto ec = llvm::sys::fs::createUniqueFile(path + ".tmp-%%%%%%", fd, tmp)) {
    warn(fmt::format("cannot write to the object cache {} ({}); continuing without it",
                     opts.cacheDir, ec.message()));
    return;
  }
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    uint64_t h = llvm::xxh3_64bits(bytes);
    os << bytes;
    os.write(kTrailerMagic, 8);
    os.write(reinterpret_cast<const char *>(&h), 8);
    os.close();
    if (os.has_error()) {
      warn(fmt::format("cannot write {} ({}); continuing without it", tmp.str().str(),
                       os.error().message()));
      os.clear_error();
      llvm::sys::fs::remove(tmp);
      return;
    }
  }
  if (auto ec = llvm::sys::fs::rename(tmp, path)) {
    warn(fmt::format("cannot write {} ({})", path, ec.message()));
    llvm::sys::fs::remove(tmp);
  }
}

/// The object in a cache file, if the trailer checks out.
static std::unique_ptr<llvm::MemoryBuffer> readCached(const std::string &path,
                                                      std::string &problem) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!buf) {
    if (buf.getError() != std::errc::no_such_file_or_directory)
      problem = fmt::format("cannot read {} ({})", path, buf.getError().message());
    return nullptr;
  }
  llvm::StringRef all = (*buf)->getBuffer();
  if (all.size() < 16 || std::memcmp(all.data() + all.size() - 16, kTrailerMagic, 8) != 0) {
    problem = fmt::format("{} is not a moe cache object; recompiling", path);
    return nullptr;
  }
  llvm::StringRef obj = all.drop_back(16);
  uint64_t h;
  std::memcpy(&h, all.data() + all.size() - 8, 8);
  if (llvm::xxh3_64bits(obj) != h) {
    problem = fmt::format("{} is corrupt (checksum mismatch); recompiling", path);
    return nullptr;
  }
  auto parsed = llvm::object::ObjectFile::createObjectFile(llvm::MemoryBufferRef(obj, path));
  if (!parsed) {
    problem = fmt::format("{} is corrupt ({}); recompiling", path,
                          llvm::toString(parsed.takeError()));
    return nullptr;
  }
  return llvm::MemoryBuffer::getMemBufferCopy(obj, path);
}

llvm::Error Jit::addProgram(Program &p) {
  auto t0 = std::chrono::steady_clock::now();
  llvm::Module &m = *p.module;
  m.setDataLayout(jit->getDataLayout());
  m.setTargetTriple(jit->getTargetTriple().str());
  if (llvm::verifyModule(m, &llvm::errs()))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "internal error: codegen produced invalid LLVM IR");

  std::string ir;
  llvm::raw_string_ostream os(ir);
  m.print(os, nullptr);
  os << kCodegenVersion << LLVM_VERSION_STRING << jit->getTargetTriple().str()
     << hostDescription();
  pendingKey = fmt::format("{:016x}", llvm::xxh3_64bits(llvm::StringRef(ir)));
  pendingName = m.getModuleIdentifier();

  bool fromCache = false;
  if (opts.useCache) {
    std::string path = opts.cacheDir + "/" + pendingKey + ".o", problem;
    st.cachePath = path;
    if (auto obj = readCached(path, problem)) {
      if (auto e = jit->addObjectFile(std::move(obj))) {
        warn(fmt::format("{}: {}; recompiling", path, llvm::toString(std::move(e))));
      } else {
        fromCache = true;
      }
    } else if (!problem.empty()) {
      warn(problem);
    }
  }
  if (!fromCache) {
    orc::ThreadSafeModule tsm(std::move(p.module), std::move(p.context));
    if (auto e = jit->addIRModule(std::move(tsm)))
      return e;
  }
  storeToCache = !fromCache;
  // Resolve every kernel now, so compilation happens here and is timed.
  for (auto &s : p.steps)
    if (s.kind == StepKind::Kernel)
      if (auto a = jit->lookup(s.symbol); !a)
        return a.takeError();
  (fromCache ? st.modulesFromCache : st.modulesCompiled)++;
  st.compileMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  pendingKey.clear();
  return llvm::Error::success();
}

llvm::Expected<KernelFn> Jit::lookup(llvm::StringRef symbol) {
  auto a = jit->lookup(symbol);
  if (!a)
    return a.takeError();
  return a->toPtr<KernelFn>();
}
