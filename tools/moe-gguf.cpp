//===- moe-gguf.cpp - Inspect GGUF files ----------------------------------===//
//
//   moe-gguf dump FILE          header, metadata and tensor table
//   moe-gguf data FILE TENSOR   use one tensor's data as moe would: its type
//                               must be one moe supports; prints its size,
//                               file offset and an xxh3 hash of its bytes
//   moe-gguf tiny ARCH -o FILE  a tiny model of a MoE architecture with the
//                               real tensor names and keys (TinyModel.h):
//                               --type, --blocks, sizes, --merged-gate-up,
//                               --no-gate, --expert-scales, --seed
//
// The reader-only build (moe-gguf-sanitized, MOE_GGUF_READER_ONLY) has dump
// and data alone: it links io/ and nothing else.
//
// A malformed file, a missing tensor or an unsupported tensor type is
// "moe-gguf: error: FILE: ..." on standard error and exit status 1.
//
//===----------------------------------------------------------------------===//
#include "io/Gguf.h"
#include "io/GgufDump.h"
#include "tools/lib/Fail.h"
#ifndef MOE_GGUF_READER_ONLY
#include "ir/Error.h"
#include "tools/lib/TinyModel.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/ToolOutputFile.h"
#endif

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/xxhash.h"

using namespace llvm;
using namespace moe::gguf;

/// Every option of moe-gguf, so --help can hide LLVM's own (as the other
/// tools do).
static cl::OptionCategory GgufCat("moe-gguf options");

static cl::SubCommand DumpCmd("dump", "Print the header, metadata and tensors");
static cl::opt<std::string> DumpFile(cl::Positional, cl::Required,
                                     cl::desc("<file.gguf>"), cl::sub(DumpCmd), cl::cat(GgufCat));

static cl::SubCommand DataCmd("data", "Check and hash one tensor's data");
static cl::opt<std::string> DataFile(cl::Positional, cl::Required,
                                     cl::desc("<file.gguf>"), cl::sub(DataCmd), cl::cat(GgufCat));
static cl::opt<std::string> DataTensor(cl::Positional, cl::Required,
                                       cl::desc("<tensor>"), cl::sub(DataCmd), cl::cat(GgufCat));
static cl::opt<bool> AnyType("any-type",
                             cl::desc("Accept types moe does not use"),
                             cl::sub(DataCmd), cl::cat(GgufCat));

#ifndef MOE_GGUF_READER_ONLY
static cl::SubCommand TinyCmd("tiny", "Write a tiny model of a MoE architecture");
static cl::opt<std::string> TinyArch(cl::Positional, cl::Required, cl::desc("<architecture>"),
                                     cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<std::string> TinyOut("o", cl::Required, cl::desc("Output file"),
                                    cl::value_desc("FILE"), cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<std::string> TinyType("type", cl::init("f32"),
                                     cl::desc("Matmul weight type: f32, f16, bf16, q8_0, "
                                              "q4_0, mxfp4"),
                                     cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<int64_t> TinyBlocks("blocks", cl::init(2), cl::desc("Blocks"), cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<int64_t> TinyEmbd("n-embd", cl::init(64), cl::desc("n_embd"), cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<int64_t> TinyFf("n-ff", cl::init(64), cl::desc("Expert n_ff"), cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<int64_t> TinyExperts("experts", cl::init(8), cl::desc("Experts"),
                                    cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<int64_t> TinyTopK("top-k", cl::init(2), cl::desc("Experts used per token"),
                                 cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<int64_t> TinyShared("n-ff-shared", cl::init(64),
                                   cl::desc("Shared expert n_ff (qwen2moe, qwen35moe)"), cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<int64_t> TinyDense("n-ff-dense", cl::init(64),
                                  cl::desc("Dense MLP n_ff (gemma4)"), cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<bool> TinyMerged("merged-gate-up",
                                cl::desc("One ffn_gate_up_exps (gate rows first) instead of "
                                         "ffn_gate_exps and ffn_up_exps"),
                                cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<bool> TinyNoGate("no-gate", cl::desc("llama: experts without ffn_gate_exps"),
                                cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<bool> TinyScales("expert-scales",
                                cl::desc("Per-expert ffn_*_exps.scale tensors"),
                                cl::sub(TinyCmd), cl::cat(GgufCat));
static cl::opt<uint64_t> TinySeed("seed", cl::init(1), cl::desc("Seed of the values"),
                                  cl::sub(TinyCmd), cl::cat(GgufCat));
#endif


int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  std::vector<cl::SubCommand *> subs = {&cl::SubCommand::getTopLevel(), &DumpCmd, &DataCmd};
#ifndef MOE_GGUF_READER_ONLY
  subs.push_back(&TinyCmd);
#endif
  for (cl::SubCommand *sub : subs)
    cl::HideUnrelatedOptions(GgufCat, *sub);
  cl::ParseCommandLineOptions(argc, argv,
                              "moe-gguf: inspect GGUF files, write tiny test models\n");

  if (DumpCmd) {
    Expected<std::unique_ptr<GgufFile>> file = GgufFile::open(DumpFile);
    if (!file)
      return moe::fail("moe-gguf", file.takeError());
    dump(outs(), **file);
    return 0;
  }
  if (DataCmd) {
    Expected<std::unique_ptr<GgufFile>> file = GgufFile::open(DataFile);
    if (!file)
      return moe::fail("moe-gguf", file.takeError());
    Expected<ArrayRef<uint8_t>> data =
        (*file)->tensorData(DataTensor, /*requireSupported=*/!AnyType);
    if (!data)
      return moe::fail("moe-gguf", data.takeError());
    const TensorInfo &t = *(*file)->findTensor(DataTensor);
    outs() << t.name << ": " << t.typeName() << ", " << data->size()
           << " bytes at file offset "
           << (data->data() - (*file)->bytes().data()) << ", xxh3 "
           << format_hex(xxh3_64bits(*data), 18) << "\n";
    return 0;
  }
#ifndef MOE_GGUF_READER_ONLY
  if (TinyCmd) {
    moe::TinyModelOptions o;
    o.arch = TinyArch;
    auto type = moe::parseElemType(TinyType);
    if (!type || *type == moe::ElemType::I32)
      return moe::fail("moe-gguf", moe::err("--type=" + TinyType +
                                            ": expected f32, f16, bf16, q8_0, q4_0 or mxfp4"));
    o.type = *type;
    o.blocks = TinyBlocks;
    o.nEmbd = TinyEmbd;
    o.nFf = TinyFf;
    o.nExpert = TinyExperts;
    o.nExpertUsed = TinyTopK;
    o.nFfShared = TinyShared;
    o.nFfDense = TinyDense;
    o.mergedGateUp = TinyMerged;
    o.noGate = TinyNoGate;
    o.expertScales = TinyScales;
    o.seed = TinySeed;
    Expected<std::string> bytes = moe::makeTinyModel(o);
    if (!bytes)
      return moe::fail("moe-gguf", bytes.takeError());
    std::error_code ec;
    ToolOutputFile out(TinyOut, ec, sys::fs::OF_None);
    if (ec)
      return moe::fail("moe-gguf", moe::err("-o " + TinyOut + ": " + ec.message()));
    out.os() << *bytes;
    out.os().flush();
    if (out.os().has_error())
      return moe::fail("moe-gguf", moe::err("-o " + TinyOut + ": write error"));
    out.keep();
    return 0;
  }
#endif
  errs() << "moe-gguf: expected a command: dump, data or tiny (see --help)\n";
  return 1;
}
