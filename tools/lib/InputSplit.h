//===- InputSplit.h - --split-input-file ------------------------*- C++ -*-===//
#pragma once

#include "llvm/ADT/StringRef.h"
#include <string>
#include <vector>

namespace moe {

/// One chunk of a file split at `// -----` lines. The text is padded with
/// newlines in front so that line numbers in diagnostics are the file's own.
struct InputChunk {
  std::string text;
  unsigned firstLine;
};

std::vector<InputChunk> splitInput(llvm::StringRef buffer, bool split);

} // namespace moe
