//===- Target.cpp - The CPU the kernels are generated for -----------------===//
#include "codegen/Target.h"
#include "ir/Error.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

#include <memory>

#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

using namespace moe;
using namespace moe::codegen;

/// Does Linux let this process use the AMX tile data (asked once; the
/// permission is the process's, for every thread)?
static bool amxPermitted() {
#if defined(__linux__) && defined(__x86_64__)
  static const bool ok = [] {
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
#else
  return false;
#endif
}

/// Can this process run AMX tile code: the host has amx-tile and amx-bf16,
/// and the kernel grants the tile state?
static bool hostAmx() {
  static const bool ok = [] {
    auto f = llvm::sys::getHostCPUFeatures();
    return f.lookup("amx-tile") && f.lookup("amx-bf16") && amxPermitted();
  }();
  return ok;
}

static llvm::Expected<Target> describe(const std::string &cpu, std::string features) {
  llvm::InitializeNativeTarget();
  std::string triple = llvm::sys::getProcessTriple(), error;
  const llvm::Target *t = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!t)
    return err("no LLVM target for {}: {}", triple, error);
  std::unique_ptr<llvm::MCSubtargetInfo> sti(t->createMCSubtargetInfo(triple, cpu, features));
  if (!sti || !sti->isCPUStringValid(cpu))
    return err("unknown CPU '{}' (an LLVM CPU name such as x86-64-v3, x86-64-v4, znver2, "
               "skylake-avx512)", cpu);
  auto has = [&](const char *f) { return sti->checkFeatures(std::string("+") + f); };
  // AMX code for a process that cannot run it would fault: compile without.
  if (has("amx-tile") && !hostAmx()) {
    features += std::string(features.empty() ? "" : ",") + "-amx-tile,-amx-bf16,-amx-int8";
    sti.reset(t->createMCSubtargetInfo(triple, cpu, features));
  }
  Target r;
  r.cpu = cpu;
  r.features = features;
  r.avx2 = has("avx2");
  r.fma = has("fma");
  r.f16c = has("f16c");
  r.avx512bw = has("avx512bw");
  r.avx512vnni = has("avx512vnni") && r.avx512bw;
  r.avx512bf16 = has("avx512bf16");
  r.amxBf16 = has("amx-tile") && has("amx-bf16");
  r.vectorBits = has("avx512f") ? 512 : 256;
  return r;
}

llvm::Expected<Target> Target::host() {
  llvm::SubtargetFeatures f;
  for (auto &kv : llvm::sys::getHostCPUFeatures())
    f.AddFeature(kv.getKey(), kv.getValue());
  return describe(llvm::sys::getHostCPUName().str(), f.getString());
}

llvm::Expected<Target> Target::named(llvm::StringRef name) {
  if (name.empty() || name == "host")
    return host();
  return describe(name.str(), "");
}
