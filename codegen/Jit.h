//===- Jit.h - ORC LLJIT for the host, with an object cache -----*- C++ -*-===//
//
// One LLJIT per Executable, targeting the host CPU with all its features
// (JITTargetMachineBuilder::detectHost: AVX2, AVX-512, VNNI, BF16 where
// present). A program's module is looked up in the object cache
// (ObjectCache.h) by the key of its unoptimised IR; on a miss it is
// optimised with LLVM's O3 pipeline and compiled to an object here, which
// is stored in the cache (and the dump directory); either way the object is
// linked into the JIT.
//
// Kernels call two kinds of outside functions: libm (expf, tanhf, ...),
// found in the process, and `moe_rt_error`, defined here.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/Program.h"
#include "codegen/Target.h"

#include "llvm/ExecutionEngine/JITEventListener.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/Target/TargetMachine.h"

#include <atomic>
#include <functional>

namespace moe::codegen {

/// Filled by a kernel that found a bad index (first report wins).
struct KernelErrorSlot {
  std::atomic<int> failed{0};
  int64_t site = 0, pos = 0, id = 0, limit = 0;
};

using KernelFn = int32_t (*)(void *const *bufs, const int64_t *syms, int64_t begin,
                             int64_t end, KernelErrorSlot *rt);

struct JitOptions {
  /// Use the on-disk object cache.
  bool useCache = true;
  /// Empty: $MOE_CACHE_DIR, else $XDG_CACHE_HOME/moe, else ~/.cache/moe.
  std::string cacheDir;
  /// When set, every compiled object is also written here.
  std::string dumpObjectDir;
  /// Register JIT code with perf (jitdump) and gdb.
  bool perf = false;
  /// The CPU to generate code for (Target::named): empty for the host, or
  /// a lesser one, e.g. "x86-64-v3", to run another kernel path.
  std::string cpu;
  /// Threads that compile a program's module, four parts each (0: one
  /// thread per core).
  unsigned compileThreads = 0;
  /// Receives warnings (cache problems); default: standard error.
  std::function<void(const std::string &)> warn;
};

struct JitStats {
  unsigned modulesCompiled = 0; ///< compiled from IR this time
  unsigned modulesFromCache = 0;
  double compileMs = 0; ///< optimise + codegen + link (or cache load + link)
  std::string cachePath; ///< the object's cache file ('' without cache)
  /// The object cache key (ObjectCache::keyOf) of the program's module,
  /// computed with or without a cache: every front end's key for a function.
  std::string cacheKey;
};

/// The cache directory JitOptions::cacheDir resolves to.
std::string defaultCacheDir();

/// The target machine kernels are compiled with for `t` (O3).
llvm::Expected<std::unique_ptr<llvm::TargetMachine>> createTargetMachine(const Target &t);
/// Runs LLVM's O3 pipeline on `m` for `tm`.
void optimizeModule(llvm::Module &m, llvm::TargetMachine &tm);
/// `m`'s kernels in at most `parts` modules of about equal size (in the
/// same context), each with the constants it may use; one part keeps the
/// module's name, several are named <name>.<i>.
std::vector<std::unique_ptr<llvm::Module>> splitForCompile(const llvm::Module &m, unsigned parts);

class Jit {
public:
  static llvm::Expected<std::unique_ptr<Jit>> create(const JitOptions &opts);
  ~Jit();

  /// Adds the program's module (consumed) and resolves the kernels of its
  /// steps; compiles it unless the cache has it.
  llvm::Error addProgram(Program &p);
  /// The same for a module several programs were lowered into
  /// (LowerOptions::into): one cache entry, and on a miss its kernels
  /// compiled in parts on every compile thread; resolves the kernels of
  /// every step list.
  llvm::Error addKernels(llvm::Module &m, llvm::ArrayRef<const std::vector<Step> *> steps);
  llvm::Expected<KernelFn> lookup(llvm::StringRef symbol);
  const JitStats &stats() const { return st; }
  /// The CPU the JIT compiles for; lower functions for the same.
  const Target &target() const { return tgt; }

private:
  Jit() = default;
  std::unique_ptr<llvm::orc::LLJIT> jit;
  std::unique_ptr<llvm::TargetMachine> tm;
  JitOptions opts;
  Target tgt;
  JitStats st;
  std::vector<llvm::JITEventListener *> listeners; ///< process-wide singletons
  void warn(const std::string &m);
  /// O3 and code generation of `m` for the JIT's target.
  llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> compile(llvm::Module &m);
  void dumpObject(llvm::StringRef name, llvm::StringRef object);
};

} // namespace moe::codegen
