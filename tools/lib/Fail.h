//===- Fail.h - How a tool reports an error and exits -----------*- C++ -*-===//
//
// Every tool ends on an error the same way: `TOOL: error: MESSAGE` on
// standard error, exit status 1. Header-only and on LLVM Support alone, so
// the reader-only moe-gguf (linked with io/ and nothing else) uses it too.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace moe {

/// Prints `tool: error: <e's message>` in one write (so lines of processes
/// failing together do not interleave) and returns 1, the exit status.
inline int fail(llvm::StringRef tool, llvm::Error e) {
  std::string line = tool.str() + ": error: " + llvm::toString(std::move(e)) + "\n";
  llvm::errs() << line;
  llvm::errs().flush();
  return 1;
}

} // namespace moe
