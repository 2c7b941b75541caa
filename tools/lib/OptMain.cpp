//===- OptMain.cpp - The moe-opt driver -----------------------------------===//
//
// Every flag of moe-opt lives here (mlir-opt's habits): read the input,
// optionally split it at `// -----`, parse and verify each chunk, run the
// pipeline with the requested instrumentation, print the result. Exit code
// 0 on success, 1 on any diagnostic or failure.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/OptMain.h"
#include "tools/lib/DiagVerifier.h"
#include "tools/lib/InputSplit.h"
#include "tools/lib/ToolCommon.h"

#include "codegen/Jit.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "passes/Pass.h"
#include "passes/TargetDesc.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace moe;
namespace cl = llvm::cl;

namespace {
enum class Emit { IR, Dot, Llvm };

struct OptFlags {
  cl::OptionCategory cat{"moe-opt options"};
  cl::opt<std::string> input{cl::Positional, cl::desc("<input .moe file>"), cl::init("-"),
                             cl::cat(cat)};
  cl::opt<std::string> output{"o", cl::desc("Output file (default: standard output)"),
                              cl::value_desc("file"), cl::init("-"), cl::cat(cat)};
  cl::opt<bool> noQuantizeActivations{
      "no-quantize-activations",
      cl::desc("Leave quantize-activations out of the pipeline (also out of `default`): "
               "matmuls keep exact f32 activations"),
      cl::cat(cat)};
  cl::opt<std::string> pipeline{"p", cl::desc("Pass pipeline, e.g. 'default,tp-split{ranks=2}'"),
                                cl::value_desc("pipeline"), cl::cat(cat)};
  cl::alias pipelineAlias{"pass-pipeline", cl::desc("Alias for -p"), cl::aliasopt(pipeline)};
  cl::opt<bool> listPasses{"list-passes", cl::desc("List the passes and pipelines, then exit"),
                           cl::cat(cat)};
  cl::opt<bool> printAfterAll{"print-ir-after-all", cl::desc("Print the IR after every pass"),
                              cl::cat(cat)};
  cl::opt<bool> printAfterChange{"print-ir-after-change",
                                 cl::desc("Print the IR after every pass that changed it"),
                                 cl::cat(cat)};
  cl::opt<bool> verifyEach{"verify-each", cl::desc("Verify the IR after each pass (default on)"),
                           cl::init(true), cl::cat(cat)};
  cl::opt<bool> timing{"pass-timing", cl::desc("Report the time of each pass"), cl::cat(cat)};
  cl::opt<bool> statistics{"pass-statistics", cl::desc("Report the statistics of each pass"),
                           cl::cat(cat)};
  cl::opt<bool> splitInputFile{"split-input-file",
                               cl::desc("Split the input at '// -----' and process each chunk"),
                               cl::cat(cat)};
  cl::opt<bool> verifyDiagnostics{
      "verify-diagnostics",
      cl::desc("Check emitted diagnostics against '// expected-error @+1 {{...}}' annotations"),
      cl::cat(cat)};
  cl::opt<Emit> emit{"emit", cl::desc("What to print"), cl::init(Emit::IR),
                     cl::values(clEnumValN(Emit::IR, "ir", "the IR as text (default)"),
                                clEnumValN(Emit::Dot, "dot", "Graphviz DOT of each function"),
                                clEnumValN(Emit::Llvm, "llvm",
                                           "the optimised LLVM IR of each function's kernels "
                                           "(as the JIT compiles them for this host)")),
                     cl::cat(cat)};
  cl::opt<std::string> dumpObjectDir{
      "dump-object-dir",
      cl::desc("JIT-compile each function and write its object file (<module>.o) here"),
      cl::value_desc("DIR"), cl::cat(cat)};
  cl::opt<std::string> targetDesc{
      "target-desc",
      cl::desc("Target description (JSON) saying which shape classes its fused kernels are "
               "valid for (default: the built-in cpu target, valid for all)"),
      cl::value_desc("file"), cl::cat(cat)};
  NumericsFlags numerics{cat};
};
} // namespace

/// Parses, runs and prints one chunk. Returns false on failure.
static bool processChunk(OptFlags &flags, const InputChunk &chunk, llvm::StringRef bufName,
                         const TargetDesc &target, llvm::raw_ostream &os) {
  llvm::SourceMgr sm;
  unsigned id = sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(chunk.text, bufName),
                                      llvm::SMLoc());
  DiagEngine diag(&sm);
  std::unique_ptr<DiagVerifier> dv;
  if (flags.verifyDiagnostics) {
    dv = std::make_unique<DiagVerifier>(sm, id);
    diag.setHandler([&](const Diagnostic &d) { dv->handle(d); });
  }
  auto finish = [&](bool ok) { return dv ? dv->verify() : ok; };

  auto module = parseModule(sm, id, diag);
  if (!module || !verifyModule(*module, diag))
    return finish(false);

  PassManager::Options o;
  o.verifyEach = flags.verifyEach;
  o.printAfterAll = flags.printAfterAll;
  o.printAfterChange = flags.printAfterChange;
  o.timing = flags.timing;
  o.statistics = flags.statistics;
  PassManager pm(o);
  pm.setTarget(&target);
  if (auto e = pm.addPipeline(flags.pipeline)) {
    llvm::errs() << "moe-opt: error: " << llvm::toString(std::move(e)) << "\n";
    return false;
  }
  if (flags.noQuantizeActivations)
    pm.removePasses("quantize-activations");
  if (auto e = addNumericsInstrumentation(pm, flags.numerics, *module)) {
    llvm::errs() << "moe-opt: error: " << llvm::toString(std::move(e)) << "\n";
    return false;
  }
  unsigned errorsBefore = diag.getNumErrors();
  if (auto e = pm.run(*module, diag)) {
    // A failure that emitted diagnostics is checked against the annotations;
    // one that emitted none (a pass's internal error, an instrumentation
    // such as --verify-numerics) must fail even under --verify-diagnostics.
    if (dv && diag.getNumErrors() != errorsBefore) {
      llvm::consumeError(std::move(e));
      return finish(false);
    }
    llvm::errs() << bufName << ": error: " << llvm::toString(std::move(e)) << "\n";
    finish(false);
    return false;
  }
  if (!flags.dumpObjectDir.empty())
    for (auto &f : module->functions) {
      codegen::JitOptions jo;
      jo.useCache = false;
      jo.dumpObjectDir = flags.dumpObjectDir;
      auto prog = codegen::lowerFunction(*f);
      auto jit = prog ? codegen::Jit::create(jo) : prog.takeError();
      llvm::Error e = jit ? (*jit)->addProgram(*prog) : jit.takeError();
      if (e) {
        llvm::errs() << bufName << ": error: @" << f->getName() << ": "
                     << llvm::toString(std::move(e)) << "\n";
        return finish(false);
      }
    }
  if (flags.emit == Emit::Dot) {
    for (auto &f : module->functions)
      printDot(*f, os);
  } else if (flags.emit == Emit::Llvm) {
    auto target = codegen::Target::host();
    auto tm = target ? codegen::createTargetMachine(*target)
                     : llvm::Expected<std::unique_ptr<llvm::TargetMachine>>(target.takeError());
    if (!tm) {
      llvm::errs() << "moe-opt: error: " << llvm::toString(tm.takeError()) << "\n";
      return finish(false);
    }
    for (auto &f : module->functions) {
      auto prog = codegen::lowerFunction(*f);
      if (!prog) {
        llvm::errs() << bufName << ": error: @" << f->getName() << ": "
                     << llvm::toString(prog.takeError()) << "\n";
        return finish(false);
      }
      codegen::optimizeModule(*prog->module, **tm);
      prog->module->print(os, nullptr);
    }
  } else {
    printModule(*module, os);
  }
  return finish(true);
}

int moe::moeOptMain(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  OptFlags flags;
  cl::HideUnrelatedOptions(flags.cat);
  cl::ParseCommandLineOptions(argc, argv,
                              "moe-opt: parse, optimise and print MoE layers\n\n"
                              "  moe-opt FILE -p 'pipeline' [-o OUT]   (see --list-passes)\n");
  if (flags.listPasses) {
    PassRegistry::printList(llvm::outs());
    return 0;
  }
  // Check the pipeline once up front so a typo is one clear error.
  if (auto ps = PassRegistry::parsePipeline(flags.pipeline); !ps) {
    llvm::errs() << "moe-opt: error: " << llvm::toString(ps.takeError()) << "\n";
    return 1;
  }
  std::optional<TargetDesc> loaded;
  if (!flags.targetDesc.empty()) {
    auto t = TargetDesc::load(flags.targetDesc);
    if (!t) {
      llvm::errs() << "moe-opt: error: " << llvm::toString(t.takeError()) << "\n";
      return 1;
    }
    loaded = std::move(*t);
  }
  const TargetDesc &target = loaded ? *loaded : TargetDesc::cpu();
  auto buf = llvm::MemoryBuffer::getFileOrSTDIN(flags.input, /*IsText=*/true);
  if (!buf) {
    llvm::errs() << "moe-opt: error: cannot read '" << flags.input
                 << "': " << buf.getError().message() << "\n";
    return 1;
  }
  std::error_code ec;
  llvm::ToolOutputFile out(flags.output, ec, llvm::sys::fs::OF_None);
  if (ec) {
    llvm::errs() << "moe-opt: error: cannot write '" << flags.output << "': " << ec.message()
                 << "\n";
    return 1;
  }
  llvm::StringRef name = flags.input == "-" ? "<stdin>" : llvm::StringRef(flags.input);
  auto chunks = splitInput((*buf)->getBuffer(), flags.splitInputFile);
  bool ok = true;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i)
      out.os() << "// -----\n";
    ok &= processChunk(flags, chunks[i], name, target, out.os());
  }
  if (!ok)
    return 1;
  out.keep();
  return 0;
}
