//===- FuzzPipeline.cpp - libFuzzer target: parse, then the pipelines -----===//
//
// Any bytes that parse and verify as a module go through the `default`
// pipeline and then `tp-split{ranks=3},delay-allreduce`, verifying after each
// pass (--verify-each). A pass may refuse or fail with an error; it may not
// crash, trip a sanitizer, hang, or leave IR that does not verify (which
// --verify-each turns into an error, and this target into an abort).
//
//===----------------------------------------------------------------------===//
#include "ir/Diagnostics.h"
#include "ir/Parser.h"
#include "ir/Verifier.h"
#include "passes/Pass.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

#include <cstdio>
#include <cstdlib>

using namespace moe;

static void runPipeline(Module &m, llvm::StringRef pipeline) {
  DiagEngine diag;
  diag.setHandler([](const Diagnostic &) {});
  PassManager pm(PassManager::Options{/*verifyEach=*/true});
  if (auto e = pm.addPipeline(pipeline)) {
    std::fprintf(stderr, "bad pipeline text %s\n", pipeline.str().c_str());
    std::abort();
  }
  if (auto e = pm.run(m, diag)) {
    std::string msg = llvm::toString(std::move(e));
    // --verify-each catching a pass that broke the IR is a bug, not an input error.
    if (msg.find("invalid IR") != std::string::npos ||
        msg.find("does not verify") != std::string::npos) {
      std::fprintf(stderr, "%s: %s\n", pipeline.str().c_str(), msg.c_str());
      std::abort();
    }
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::SourceMgr sm;
  DiagEngine diag(&sm);
  diag.setHandler([](const Diagnostic &) {});
  unsigned id = sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, "fuzz"),
                                      llvm::SMLoc());
  auto m = parseModule(sm, id, diag);
  if (!m || !verifyModule(*m, diag))
    return 0;
  runPipeline(*m, "default");
  runPipeline(*m, "tp-split{ranks=3},delay-allreduce");
  return 0;
}
