//===- ObjectCache.h - Compiled kernels on disk, by key ---------*- C++ -*-===//
//
// The JIT's object cache: a compiled program is stored as `<dir>/<key>.o`:
// its object followed by a 16-byte trailer ("MOEOBJ1\0" and the xxh3 of
// the object), or, compiled in parts, each part's object after its
// little-endian u64 size, then "MOEOBJ2\0" and the xxh3 of all of it, so a
// truncated or overwritten file is detected before it reaches the linker. Writes are atomic (a temporary file renamed). A
// corrupt, unreadable or unwritable cache costs a warning (and so a
// recompile), never a failure.
//
// The key (keyOf) is computed from the module's unoptimised IR (as bitcode:
// a third of the time of printing it as text), the codegen
// and LLVM versions, the target triple and the target's CPU and features,
// so a hit skips the O3 pipeline as well as code generation.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/ADT/StringRef.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/MemoryBuffer.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace moe::codegen {

class ObjectCache {
public:
  using WarnFn = std::function<void(const std::string &)>;
  ObjectCache(std::string dir, WarnFn warn) : dir(std::move(dir)), warn(std::move(warn)) {}

  /// The key of `m` compiled for `target` (triple, CPU and features).
  static std::string keyOf(const llvm::Module &m, llvm::StringRef target);
  /// The file that holds (or would hold) the object of `key`.
  std::string pathOf(llvm::StringRef key) const;
  /// The objects stored under `key` (one, or a program's parts), or none
  /// when there are none or they do not check out (which is warned about).
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> load(llvm::StringRef key) const;
  /// Stores `objects` (at least one) under `key`.
  void store(llvm::StringRef key, llvm::ArrayRef<llvm::StringRef> objects) const;

private:
  std::string dir;
  WarnFn warn;
};

} // namespace moe::codegen
