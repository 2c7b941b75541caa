//===- ObjectCache.h - Compiled kernels on disk, by key ---------*- C++ -*-===//
//
// The JIT's object cache: a compiled object is stored as
// `<dir>/<key>.o`, followed by a 16-byte trailer ("MOEOBJ1\0" and the xxh3
// of the object), so a truncated or overwritten file is detected before it
// reaches the linker. Writes are atomic (a temporary file renamed). A
// corrupt, unreadable or unwritable cache costs a warning (and so a
// recompile), never a failure.
//
// The key (keyOf) is computed from the module's unoptimised IR, the codegen
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

namespace moe::codegen {

class ObjectCache {
public:
  using WarnFn = std::function<void(const std::string &)>;
  ObjectCache(std::string dir, WarnFn warn) : dir(std::move(dir)), warn(std::move(warn)) {}

  /// The key of `m` compiled for `target` (triple, CPU and features).
  static std::string keyOf(const llvm::Module &m, llvm::StringRef target);
  /// The file that holds (or would hold) the object of `key`.
  std::string pathOf(llvm::StringRef key) const;
  /// The object stored under `key`, or null when there is none or it does
  /// not check out (which is warned about).
  std::unique_ptr<llvm::MemoryBuffer> load(llvm::StringRef key) const;
  /// Stores `object` under `key`.
  void store(llvm::StringRef key, llvm::StringRef object) const;

private:
  std::string dir;
  WarnFn warn;
};

} // namespace moe::codegen
