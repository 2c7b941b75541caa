//===- InputSplit.cpp - --split-input-file --------------------------------===//
#include "tools/lib/InputSplit.h"

using namespace moe;

std::vector<InputChunk> moe::splitInput(llvm::StringRef buffer, bool split) {
  std::vector<InputChunk> chunks;
  if (!split) {
    chunks.push_back({buffer.str(), 1});
    return chunks;
  }
  unsigned line = 1, chunkStart = 1;
  std::string cur;
  while (!buffer.empty()) {
    auto [l, rest] = buffer.split('\n');
    bool hadNewline = buffer.size() > l.size();
    buffer = rest;
    if (l.trim() == "// -----") {
      chunks.push_back({std::string(chunkStart - 1, '\n') + cur, chunkStart});
      cur.clear();
      chunkStart = line + 1;
    } else {
      cur += l.str();
      if (hadNewline)
        cur += '\n';
    }
    ++line;
  }
  chunks.push_back({std::string(chunkStart - 1, '\n') + cur, chunkStart});
  return chunks;
}
