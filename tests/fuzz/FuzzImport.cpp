//===- FuzzImport.cpp - libFuzzer target: moe-import of a whole GGUF ------===//
//
// Any bytes as a GGUF model: import every block (what `moe-import` does
// without --layer). The importer parses and verifies the text it builds, so
// a file it accepts must give a module that parses and verifies; anything
// else is an error naming a key, tensor or architecture, never a crash.
//
//===----------------------------------------------------------------------===//
#include "io/Gguf.h"
#include "ir/Parser.h"
#include "tools/lib/Importer.h"

#include <cstdio>
#include <cstdlib>

using namespace moe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto file = gguf::GgufFile::parse(llvm::ArrayRef<uint8_t>(data, size), "fuzz.gguf");
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  auto text = importAll(**file);
  if (!text) {
    llvm::consumeError(text.takeError());
    return 0;
  }
  auto m = parseModuleString(*text, "imported");
  if (!m) {
    std::fprintf(stderr, "imported text does not parse: %s\n%s\n",
                 llvm::toString(m.takeError()).c_str(), text->c_str());
    std::abort();
  }
  return 0;
}
