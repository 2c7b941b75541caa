//===- ImportMain.cpp - The moe-import driver -----------------------------===//
//
// moe-import model.gguf (--layer L | --all) [-o OUT]
//
// Writes the MoE feed-forward sub-block of a GGUF model's block L (or of
// every block, one function each) as `.moe` text, to OUT or standard output;
// the importer itself is tools/lib/Importer.h (docs/Import.md). Errors are
// `moe-import: error: ...` and exit code 1.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/ImportMain.h"
#include "ir/Error.h"
#include "tools/lib/Fail.h"
#include "tools/lib/Importer.h"

#include "fmt/format.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace moe;
namespace cl = llvm::cl;

namespace {
struct ImportFlags {
  cl::OptionCategory cat{"moe-import options"};
  cl::opt<std::string> input{cl::Positional, cl::desc("<model.gguf>"), cl::Required,
                             cl::cat(cat)};
  cl::opt<int64_t> layer{"layer", cl::desc("The block whose feed-forward sub-block to import"),
                         cl::value_desc("L"), cl::init(-1), cl::cat(cat)};
  cl::opt<bool> all{"all", cl::desc("Import every block, one function each"), cl::cat(cat)};
  cl::opt<std::string> output{"o", cl::desc("Output file (default: standard output)"),
                              cl::value_desc("OUT"), cl::init("-"), cl::cat(cat)};
};
} // namespace

int moe::moeImportMain(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  ImportFlags flags;
  cl::HideUnrelatedOptions(flags.cat);
  cl::ParseCommandLineOptions(argc, argv,
                              "moe-import: a GGUF model's MoE feed-forward sub-blocks as .moe\n");
  if (flags.all == (flags.layer.getNumOccurrences() > 0))
    return fail("moe-import", err("give exactly one of --layer L and --all"));
  auto file = gguf::GgufFile::open(flags.input);
  if (!file)
    return fail("moe-import", file.takeError());
  auto text = flags.all ? importAll(**file) : importLayer(**file, flags.layer);
  if (!text)
    return fail("moe-import", text.takeError());
  std::error_code ec;
  llvm::ToolOutputFile out(flags.output, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return fail("moe-import",
                err(fmt::format("-o {}: {}", flags.output.getValue(), ec.message())));
  out.os() << *text;
  out.os().flush();
  if (out.os().has_error())
    return fail("moe-import", err(fmt::format("-o {}: write error", flags.output.getValue())));
  out.keep();
  return 0;
}
