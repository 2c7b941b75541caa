//===- FuzzParse.cpp - libFuzzer target: the text parser and verifier -----===//
//
// Any bytes: parse them as a module (the parser verifies what it builds) and,
// when that succeeds, print the module and parse the printed text again, which
// must succeed and print the same (the round trip moe-opt promises). Either
// way, no crash, no sanitizer report, no hang.
//
//===----------------------------------------------------------------------===//
#include "ir/Diagnostics.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <cstdlib>

using namespace moe;

static std::unique_ptr<Module> parse(llvm::StringRef text, llvm::SourceMgr &sm) {
  DiagEngine diag(&sm);
  diag.setHandler([](const Diagnostic &) {}); // errors are expected; only crashes count
  unsigned id = sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, "fuzz"),
                                      llvm::SMLoc());
  auto m = parseModule(sm, id, diag);
  if (m && !verifyModule(*m, diag))
    return nullptr;
  return m;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  if (!m)
    return 0;
  std::string printed;
  llvm::raw_string_ostream os(printed);
  printModule(*m, os);
  llvm::SourceMgr sm2;
  auto again = parse(printed, sm2);
  if (!again) {
    std::fprintf(stderr, "printed module does not parse:\n%s\n", printed.c_str());
    std::abort();
  }
  std::string reprinted;
  llvm::raw_string_ostream os2(reprinted);
  printModule(*again, os2);
  if (reprinted != printed) {
    std::fprintf(stderr, "print/parse/print differs:\n%s\n---\n%s\n", printed.c_str(),
                 reprinted.c_str());
    std::abort();
  }
  return 0;
}
